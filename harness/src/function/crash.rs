//! Crash points: kill a function at an *event* (its k-th Secrets Manager call arriving or
//! answered, its k-th database connection closing), never at a time, so that a schedule
//! replays to the same outcome on every run.
//!
//! * A call that *arrives* is swallowed: the function dies with its request unapplied.
//! * A call that is *answered* is applied and the function is killed before the answer is
//!   written: it dies without having read it.
//! * A database connection that *closes* fires the kill from the fault proxy's event; the
//!   function's result is held back until the proxy has seen every connection of the step
//!   end ([`ResultGate`]), so a result never overtakes the crash point. Likewise a Secrets
//!   Manager call made once that connection has opened waits for the proxy's verdict: if the
//!   connection's close killed the function, the call vanishes unrecorded (the process sent
//!   it after its crash point, racing the proxy to notice the close).

use super::KillSwitch;
use crate::database::proxy::{FaultProxy, ProxyEvent};
use crate::emulator::{CallHook, CallInfo, CallRecord, Emulator, Fault, Gate};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Where to kill the function during a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "at")]
pub enum CrashPoint {
    /// When its n-th Secrets Manager call of the step arrives (1-based): not applied.
    ApiCallArrives {
        #[allow(missing_docs)]
        nth: usize,
    },
    /// When its n-th Secrets Manager call of the step has been applied, before it reads the
    /// answer.
    ApiCallAnswered {
        #[allow(missing_docs)]
        nth: usize,
    },
    /// When its n-th database connection of the step closes.
    DbConnectionClosed {
        #[allow(missing_docs)]
        nth: u64,
    },
}

impl CrashPoint {
    /// How the crash point reads in a story.
    pub fn describe(&self) -> String {
        match self {
            CrashPoint::ApiCallArrives { nth } => format!("killed as its Secrets Manager call #{nth} arrived"),
            CrashPoint::ApiCallAnswered { nth } => format!("killed after its Secrets Manager call #{nth} was applied"),
            CrashPoint::DbConnectionClosed { nth } => format!("killed when its database connection #{nth} closed"),
        }
    }
}

/// The emulator hook of an armed crash point: counts the caller's calls from the moment it
/// is installed and fires the switch at the n-th.
struct ApiCrash {
    point: CrashPoint,
    kill: KillSwitch,
    seen: AtomicUsize,
}

impl CallHook for ApiCrash {
    fn before(&self, _call: &CallInfo<'_>) -> Option<Fault> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if let CrashPoint::ApiCallArrives { nth } = self.point
            && n == nth
        {
            self.kill.fire(self.point.describe());
            return Some(Fault::Swallow);
        }
        // After a kill, nothing the dead process might still have in flight is applied.
        self.kill.fired().map(|_| Fault::Swallow)
    }

    fn after(&self, _call: &CallInfo<'_>, _record: &CallRecord) {
        if let CrashPoint::ApiCallAnswered { nth } = self.point
            && self.seen.load(Ordering::SeqCst) == nth
        {
            // Synchronous: the process group dies before the emulator writes the answer.
            self.kill.fire(self.point.describe());
        }
    }
}

/// The emulator hook of a connection crash point: once the n-th connection has opened, a
/// call waits (at most [`CLOSE_VERDICT`]) for the switch, and vanishes if it fired.
struct ConnectionCrash {
    connection: u64,
    proxy: Arc<FaultProxy>,
    kill: KillSwitch,
}

/// How long a call waits for the proxy to see the crash point's connection close. Only a
/// function that calls Secrets Manager while holding that connection open waits this long;
/// after it the call goes ahead.
const CLOSE_VERDICT: Duration = Duration::from_secs(2);

impl CallHook for ConnectionCrash {
    fn before(&self, _call: &CallInfo<'_>) -> Option<Fault> {
        if self.kill.fired().is_some() {
            return Some(Fault::Vanish);
        }
        if self.proxy.total_connections() < self.connection {
            return None;
        }
        let kill = self.kill.clone();
        Some(Fault::Await(Gate::new(move || {
            let kill = kill.clone();
            async move {
                let _ = tokio::time::timeout(CLOSE_VERDICT, kill.wait()).await;
                kill.fired().map(|_| Fault::Vanish)
            }
        })))
    }
}

/// Holds a function's result until every database connection of the step has closed and its
/// events were seen, so that a connection crash point fires before the result is accepted.
#[derive(Clone)]
pub struct ResultGate {
    proxy: Option<Arc<FaultProxy>>,
    /// The proxy's newest connection when the crash point was armed: later ones are the step's.
    base: u64,
}

impl ResultGate {
    /// Waits (at most 5 s) until the step's connections have closed. Older ones do not count:
    /// a warm process may keep one open for good (a socket it never closed after a timeout).
    pub async fn pass(&self) {
        if let Some(p) = &self.proxy {
            p.wait_until_closed_after(self.base, Duration::from_secs(5)).await;
            // Let the event watcher run after the last close.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// An armed crash point; disarm it (or drop it) when the step is over.
pub struct Armed {
    emulator: Arc<Emulator>,
    caller: String,
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// The gate to pass before accepting the function's result.
    pub gate: ResultGate,
}

impl Armed {
    /// Removes the hook and stops watching the proxy.
    pub fn disarm(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.emulator.clear_hook(&self.caller);
        if let Some(p) = &self.gate.proxy {
            p.hold_after(None);
        }
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Arms `point` for the next step of the function that signs as `caller`, whose database
/// connections go through `proxy`: the switch fires at the event.
pub fn arm(point: CrashPoint, kill: KillSwitch, emulator: &Arc<Emulator>, caller: &str, proxy: Option<Arc<FaultProxy>>) -> Armed {
    let mut watcher = None;
    let base = proxy.as_ref().map_or(0, |p| p.total_connections());
    match point {
        CrashPoint::ApiCallArrives { .. } | CrashPoint::ApiCallAnswered { .. } => {
            emulator.set_hook(caller, Arc::new(ApiCrash { point, kill, seen: AtomicUsize::new(0) }));
        }
        CrashPoint::DbConnectionClosed { nth } => {
            if let Some(p) = &proxy {
                let mut events = p.subscribe();
                let hook = ConnectionCrash { connection: base + nth, proxy: p.clone(), kill: kill.clone() };
                emulator.set_hook(caller, Arc::new(hook));
                // Connections after the n-th are held: the kill decides, not the scheduler.
                p.hold_after(Some(base + nth));
                watcher = Some(tokio::spawn(async move {
                    while let Ok(e) = events.recv().await {
                        if let ProxyEvent::Closed { id, .. } = e
                            && id == base + nth
                        {
                            kill.fire(point.describe());
                            return;
                        }
                    }
                }));
            }
        }
    }
    Armed { emulator: emulator.clone(), caller: caller.to_string(), watcher, gate: ResultGate { proxy, base } }
}
