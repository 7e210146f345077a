//! The call log: every call the emulator answered, per caller, with secret values redacted.

use crate::model::{ErrorKind, Operation};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// How a call ended, as the caller saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    /// Answered with 200 and this (redacted) body.
    Ok {
        /// The response body.
        response: serde_json::Value,
    },
    /// Answered with an error.
    Error {
        /// `__type`.
        kind: ErrorKind,
        /// `Message` (redacted).
        message: String,
        /// Whether the error was injected by a fault rather than produced by the model.
        injected: bool,
    },
    /// The call was applied and then its answer was lost (connection dropped or 500).
    Lost {
        /// How: `connection dropped` or `500 after apply`.
        how: String,
        /// Whether the model accepted the call before the answer was lost.
        applied: bool,
    },
    /// The request was not understood (bad JSON, unknown operation) or not authenticated (a
    /// signature error, when the emulator verifies signatures).
    Rejected {
        /// `__type`.
        kind: ErrorKind,
        /// `Message`.
        message: String,
    },
}

/// One call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    /// Order of arrival over the whole emulator.
    pub seq: u64,
    /// Access key id of the caller.
    pub caller: String,
    /// 1-based index among this caller's calls.
    pub index: usize,
    /// The operation (`None` when the target named no operation).
    pub op: Option<Operation>,
    /// The request arguments, redacted.
    pub args: serde_json::Value,
    /// The outcome.
    pub outcome: CallOutcome,
    /// Microseconds from arrival to answer (what a case spends in the emulator).
    pub micros: u64,
}

impl CallRecord {
    /// Whether the call changed the model (as far as the emulator knows).
    pub fn applied(&self) -> bool {
        match &self.outcome {
            CallOutcome::Ok { .. } => self.op.is_some_and(Operation::mutates),
            CallOutcome::Lost { applied, .. } => *applied,
            _ => false,
        }
    }
}

/// Per-caller logs. A caller's log is dropped with its case ([`CallLog::take`]).
#[derive(Debug, Default)]
pub struct CallLog {
    inner: Mutex<LogInner>,
    /// Calls are dropped as they come (the log is off); read on every call, so not locked.
    disabled: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct LogInner {
    seq: u64,
    by_caller: HashMap<String, Vec<CallRecord>>,
    counters: HashMap<String, usize>,
}

impl CallLog {
    /// Reserves the sequence number and per-caller index of a new call.
    pub(crate) fn begin(&self, caller: &str) -> (u64, usize) {
        let mut inner = self.inner.lock().expect("log lock");
        inner.seq += 1;
        let seq = inner.seq;
        let counter = inner.counters.entry(caller.to_string()).or_default();
        *counter += 1;
        (seq, *counter)
    }

    pub(crate) fn push(&self, record: CallRecord) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock().expect("log lock");
        inner.by_caller.entry(record.caller.clone()).or_default().push(record);
    }

    /// Keeps calls (the default) or drops them as they come; call indexes are counted either way.
    pub(crate) fn set_enabled(&self, on: bool) {
        self.disabled.store(!on, std::sync::atomic::Ordering::SeqCst);
        if !on {
            self.inner.lock().expect("log lock").by_caller.clear();
        }
    }

    /// Whether calls are kept.
    pub(crate) fn enabled(&self) -> bool {
        !self.disabled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A copy of a caller's calls so far, in order of arrival.
    pub fn calls(&self, caller: &str) -> Vec<CallRecord> {
        let inner = self.inner.lock().expect("log lock");
        let mut calls = inner.by_caller.get(caller).cloned().unwrap_or_default();
        calls.sort_by_key(|c| c.seq);
        calls
    }

    /// Removes and returns a caller's calls, and restarts its call index at 1.
    pub fn take(&self, caller: &str) -> Vec<CallRecord> {
        let mut inner = self.inner.lock().expect("log lock");
        inner.counters.remove(caller);
        let mut calls = inner.by_caller.remove(caller).unwrap_or_default();
        calls.sort_by_key(|c| c.seq);
        calls
    }

    /// Every caller that has calls in the log.
    pub fn callers(&self) -> Vec<String> {
        let inner = self.inner.lock().expect("log lock");
        let mut c: Vec<String> = inner.by_caller.keys().cloned().collect();
        c.sort();
        c
    }
}
