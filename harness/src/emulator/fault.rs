//! Faults the emulator can inject into a call, and the hook that decides them.
//!
//! The engine attaches a hook per caller (per access key) so that "the k-th Secrets Manager
//! call of this step" is an event, not a timer: the same schedule faults the same call on every
//! run.

use super::calllog::CallRecord;
use crate::model::{ApiError, ErrorKind, Operation};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this error; the call is not applied.
    Error(ApiError),
    /// Apply the call, then close the connection without answering (the response is lost).
    ApplyThenDrop,
    /// Apply the call, then answer `500 InternalServiceError` (the caller cannot tell whether
    /// it took effect).
    ApplyThenFail,
    /// Wait this long, then handle the call normally.
    Delay(Duration),
    /// Close the connection without applying the call or answering: the caller died as its
    /// request arrived (a crash point), or the request was lost on the way.
    Swallow,
    /// Close the connection without applying the call, answering it or recording it: the
    /// caller was already dead when it sent the call. A crash point that fires from an event
    /// outside the emulator (a database connection closing) races the function's next call;
    /// the call is held until the event decides, and vanishes if the caller died at it, so
    /// that a schedule's trace is the same on every run.
    Vanish,
    /// Wait for the gate's decision, then apply the fault it returns (`None`: none).
    Await(Gate),
}

/// A decision a hook cannot make at once: the emulator awaits it before handling the call.
#[derive(Clone)]
pub struct Gate(Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Fault>> + Send>> + Send + Sync>);

impl Gate {
    /// A gate whose decision is the output of the future `decide` makes.
    pub fn new<F>(decide: impl Fn() -> F + Send + Sync + 'static) -> Gate
    where
        F: Future<Output = Option<Fault>> + Send + 'static,
    {
        Gate(Arc::new(move || Box::pin(decide())))
    }

    /// Waits for the decision.
    pub async fn decide(&self) -> Option<Fault> {
        (self.0)().await
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Gate {}

impl Fault {
    /// The throttling answer of AWS JSON services.
    pub fn throttle() -> Fault {
        Fault::Error(ApiError::new(ErrorKind::ThrottlingException, "Rate exceeded"))
    }

    /// An error of `kind` with a message that says it was injected.
    pub fn error(kind: ErrorKind) -> Fault {
        Fault::Error(ApiError::new(kind, format!("{kind} injected by rotcheck")))
    }
}

/// What a hook sees of a call before the model does.
#[derive(Clone, Debug)]
pub struct CallInfo<'a> {
    /// The access key id the request was signed with (`-` when unsigned).
    pub caller: &'a str,
    /// The operation.
    pub op: Operation,
    /// 1 for the caller's first call since its log was last taken, 2 for the next, ...
    pub index: usize,
    /// The request body (not redacted: hooks run inside the process).
    pub body: &'a serde_json::Value,
}

/// Decides faults for one caller's calls and observes their outcomes.
pub trait CallHook: Send + Sync {
    /// The fault to inject into this call, if any.
    fn before(&self, call: &CallInfo<'_>) -> Option<Fault>;

    /// Called once the call was answered (or its answer lost). The function piece uses this
    /// to kill a function at "its k-th call has been answered".
    fn after(&self, _call: &CallInfo<'_>, _record: &CallRecord) {}
}

/// A list of faults by call index and operation: the simple hook most schedules need.
#[derive(Debug, Default)]
pub struct FaultPlan {
    rules: Mutex<Vec<FaultRule>>,
}

/// One rule of a [`FaultPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// Fault the n-th matching call (1-based) the plan sees after it was installed, counting
    /// only calls of `op` when it is set.
    pub nth: usize,
    /// Only calls of this operation count.
    pub op: Option<Operation>,
    /// The fault.
    pub fault: Fault,
    /// How many matching calls this rule has seen.
    pub seen: usize,
    /// Whether the rule has fired.
    pub fired: bool,
}

impl FaultPlan {
    /// A plan with these rules: `(nth, op, fault)`.
    pub fn new(rules: impl IntoIterator<Item = (usize, Option<Operation>, Fault)>) -> FaultPlan {
        FaultPlan {
            rules: Mutex::new(
                rules
                    .into_iter()
                    .map(|(nth, op, fault)| FaultRule { nth, op, fault, seen: 0, fired: false })
                    .collect(),
            ),
        }
    }

    /// Which rules fired, for the coverage statistics.
    pub fn fired(&self) -> Vec<FaultRule> {
        self.rules.lock().expect("plan lock").iter().filter(|r| r.fired).cloned().collect()
    }
}

impl CallHook for FaultPlan {
    fn before(&self, call: &CallInfo<'_>) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("plan lock");
        let mut chosen = None;
        for r in rules.iter_mut() {
            if r.op.is_some_and(|op| op != call.op) {
                continue;
            }
            r.seen += 1;
            if r.seen == r.nth && chosen.is_none() {
                r.fired = true;
                chosen = Some(r.fault.clone());
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_fires_on_the_nth_matching_call_once() {
        let plan = FaultPlan::new([(2, Some(Operation::PutSecretValue), Fault::ApplyThenDrop)]);
        let body = serde_json::json!({});
        let call = |op, index| CallInfo { caller: "k", op, index, body: &body };
        assert_eq!(plan.before(&call(Operation::PutSecretValue, 1)), None);
        assert_eq!(plan.before(&call(Operation::GetSecretValue, 2)), None);
        assert_eq!(plan.before(&call(Operation::PutSecretValue, 3)), Some(Fault::ApplyThenDrop));
        assert_eq!(plan.before(&call(Operation::PutSecretValue, 4)), None);
        assert_eq!(plan.fired().len(), 1);
    }
}
