//! Ending a run early, cleanly: SIGINT (Ctrl-C), SIGTERM, or the run's time limit.
//!
//! A CI job that is cancelled sends SIGTERM; a user presses Ctrl-C; a run that would outlive
//! its budget must stop by itself. In each case rotcheck stops starting cases, cuts the cases
//! in flight short, prints what it checked so far, stops every function process, the
//! database server (container or local process and its temp dir) and the emulator, and exits
//! with code 2. A second signal while that cleanup runs exits at once; what is left then (a
//! container, a temp dir) carries rotcheck's label or marker, and the next run or
//! `rotcheck doctor --clean` sweeps it.

use std::time::Duration;
use tokio::sync::watch;

/// Why a run was stopped early, once it has been.
#[derive(Clone, Debug)]
pub struct Interrupt {
    reason: watch::Receiver<Option<String>>,
}

impl Interrupt {
    /// Starts watching for SIGINT and SIGTERM, and for `time_limit` when one is given.
    pub fn install(time_limit: Option<Duration>) -> Interrupt {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt()).ok();
            let mut term = signal(SignalKind::terminate()).ok();
            let limit = async {
                match time_limit {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(limit);
            let mut fired = false;
            loop {
                let why = tokio::select! {
                    _ = recv(&mut int) => "interrupted (SIGINT)".to_string(),
                    _ = recv(&mut term) => "terminated (SIGTERM)".to_string(),
                    _ = &mut limit, if !fired => format!("the time limit of {} s was reached", time_limit.unwrap_or_default().as_secs()),
                };
                if fired {
                    if why.starts_with("the time limit") {
                        continue;
                    }
                    eprintln!("rotcheck: error: {why} again during cleanup; exiting now (`rotcheck doctor --clean` sweeps anything left)");
                    std::process::exit(2);
                }
                fired = true;
                let _ = tx.send(Some(why));
            }
        });
        Interrupt { reason: rx }
    }

    /// An interrupt that never fires (for code paths that have none).
    #[cfg(test)]
    pub fn never() -> Interrupt {
        let (tx, rx) = watch::channel(None);
        std::mem::forget(tx);
        Interrupt { reason: rx }
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.borrow().clone()
    }

    /// Waits until the run is stopped; returns why.
    pub async fn fired(&self) -> String {
        let mut rx = self.reason.clone();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Runs `fut` unless the run is stopped first (then `None`; `fut` is dropped, which
    /// drops whatever it held).
    pub async fn guard<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        if self.reason().is_some() {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.fired() => None,
            out = fut => Some(out),
        }
    }
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_limit_fires_and_guard_cuts_short() {
        let i = Interrupt::install(Some(Duration::from_millis(50)));
        assert!(i.reason().is_none());
        let out = i.guard(tokio::time::sleep(Duration::from_secs(30))).await;
        assert!(out.is_none());
        assert!(i.reason().unwrap().contains("time limit"));
        // Once stopped, nothing more starts.
        assert_eq!(i.guard(async { 7 }).await, None);
    }

    #[tokio::test]
    async fn never_lets_work_finish() {
        let i = Interrupt::never();
        assert_eq!(i.guard(async { 3 }).await, Some(3));
        assert!(i.reason().is_none());
    }
}
