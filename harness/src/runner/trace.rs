//! What happened in a case, as events, and the numbered story a person reads. Events carry
//! aliases (versions `v1`, tokens `t1`), never values, ids or timings, so a trace is the same
//! from run to run and can be snapshotted.

use crate::checker::{Observed, Violation};
use crate::function::Step;
use serde::Serialize;

/// One event of a case.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The case's world before the first command.
    Setup {
        /// The database user.
        username: String,
    },
    /// A command starts.
    Command {
        /// 1-based, as in the story.
        number: usize,
        /// What it is.
        text: String,
    },
    /// Something the service or the runner did or saw.
    Note {
        #[allow(missing_docs)]
        text: String,
    },
    /// A step invocation.
    Invoke {
        /// Which step.
        step: Step,
        /// Of which rotation (`t1`, ...).
        token: String,
        /// Which attempt of the rotation (0 for a delivery outside one).
        attempt: u32,
        /// Which warm process.
        slot: usize,
        /// The fault attached, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        fault: Option<String>,
        /// How it ended.
        outcome: String,
        /// The function's Secrets Manager calls and how they ended.
        calls: Vec<String>,
        /// How many database connections it opened.
        connections: u64,
    },
    /// The observed state.
    State {
        /// Labels, values and logins.
        labels: String,
    },
    /// A property that does not hold.
    Violation(Violation),
    /// An operator command made the state unsafe: not the function's fault.
    OperatorUnsafe {
        #[allow(missing_docs)]
        text: String,
    },
}

impl TraceEvent {
    /// Applies `f` to every text the event carries (normalisation, redaction).
    pub fn for_each_text(&mut self, f: impl Fn(&mut String)) {
        match self {
            TraceEvent::Setup { username } => f(username),
            TraceEvent::Command { text, .. } | TraceEvent::Note { text } | TraceEvent::OperatorUnsafe { text } => f(text),
            TraceEvent::Invoke { fault, outcome, calls, .. } => {
                fault.iter_mut().for_each(&f);
                f(outcome);
                calls.iter_mut().for_each(&f);
            }
            TraceEvent::State { labels } => f(labels),
            TraceEvent::Violation(v) => f(&mut v.message),
        }
    }

    /// A state event from an observation.
    pub fn state(o: &Observed) -> TraceEvent {
        TraceEvent::State { labels: o.labels_text() }
    }
}

/// The numbered story of a trace.
pub fn story(events: &[TraceEvent]) -> String {
    let mut out = String::new();
    for e in events {
        match e {
            TraceEvent::Setup { username } => out.push_str(&format!("0. a user {username:?} with its secret\n")),
            TraceEvent::Command { number, text } => out.push_str(&format!("{number}. {text}\n")),
            TraceEvent::Note { text } => out.push_str(&format!("     {text}\n")),
            TraceEvent::Invoke { step, token, attempt, slot, fault, outcome, calls, connections } => {
                let attempt = if *attempt > 0 { format!(" (attempt {attempt})") } else { String::new() };
                let slot = if *slot > 0 { format!(" in process {}", slot + 1) } else { String::new() };
                let fault = fault.as_ref().map(|f| format!(" [fault: {f}]")).unwrap_or_default();
                out.push_str(&format!("   - {} {token}{attempt}{slot}{fault}: {outcome}\n", step.name()));
                if !calls.is_empty() {
                    out.push_str(&format!("       calls: {}; database connections: {connections}\n", calls.join(", ")));
                }
            }
            TraceEvent::State { labels } => out.push_str(&format!("     state: {labels}\n")),
            TraceEvent::Violation(v) => {
                out.push_str(&format!("   VIOLATION {} ({}): {}\n", v.property.id(), v.property.title(), v.message))
            }
            TraceEvent::OperatorUnsafe { text } => out.push_str(&format!("   OPERATOR-UNSAFE: {text}\n")),
        }
    }
    out
}
