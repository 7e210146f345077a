//! `command`: run a command per invocation with the event as JSON on stdin. Exit status 0 is
//! success; any other status is a function error with the last line of output as message; a
//! death by signal is a crash. Every invocation starts cold.

use super::logs::LogSink;
use super::process::{FunctionProcess, LaunchSpec};
use super::{AwsEnvironment, BoxFuture, Event, Invocation, InvokeOptions, Invoker, Outcome};
use crate::redact::Redactor;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A function run as a command.
pub struct CommandFunction {
    launch: LaunchSpec,
    timeout: Duration,
    redactor: Arc<Redactor>,
}

impl CommandFunction {
    /// Runs `launch` per invocation, with `aws` added to its environment.
    pub fn new(mut launch: LaunchSpec, aws: &AwsEnvironment, timeout: Duration, redactor: Arc<Redactor>) -> CommandFunction {
        let own = std::mem::take(&mut launch.env);
        launch.env = aws.vars();
        launch.env.extend(own);
        CommandFunction { launch, timeout, redactor }
    }
}

impl Invoker for CommandFunction {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn invoke<'a>(&'a self, event: &'a Event, options: InvokeOptions) -> BoxFuture<'a, Invocation> {
        Box::pin(async move {
            let started = Instant::now();
            let sink = LogSink::new(self.redactor.clone());
            let input = serde_json::to_vec(event).expect("events serialize");
            let mut process = match FunctionProcess::spawn_with_input(&self.launch, sink.clone(), Some(input)) {
                Ok(p) => p,
                Err(e) => {
                    let outcome = Outcome::Crashed { detail: format!("cannot start {}: {e}", self.launch.program.display()) };
                    return Invocation { outcome, logs: String::new(), leaked: vec![], duration: started.elapsed(), cold: true };
                }
            };
            let group = process.group();
            let kill = options.kill.clone().unwrap_or_default();
            kill.on_fire(move || group.kill());
            let timeout = options.timeout.unwrap_or(self.timeout);
            let status = tokio::select! {
                s = process.wait() => Some(s),
                _ = tokio::time::sleep(timeout) => None,
                _ = kill.wait() => None,
            };
            if let Some(gate) = &options.gate {
                gate.pass().await;
            }
            // The whole group goes, also children the command left running.
            process.kill().await;
            sink.settle().await;
            let captured = sink.take();
            let outcome = match (kill.fired(), status) {
                (Some(reason), _) => Outcome::Killed { reason },
                (None, None) => Outcome::TimedOut,
                (None, Some(None)) => Outcome::Crashed { detail: "the process could not be waited for".into() },
                (None, Some(Some(s))) => match (s.code(), s.signal()) {
                    (Some(0), _) => Outcome::Success { payload: serde_json::Value::Null },
                    (Some(code), _) => Outcome::FunctionError {
                        error_type: format!("exit status {code}"),
                        message: captured.text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string(),
                    },
                    (None, sig) => Outcome::Crashed { detail: format!("killed by signal {}", sig.unwrap_or(0)) },
                },
            };
            let outcome = match outcome {
                o @ (Outcome::Success { .. } | Outcome::FunctionError { .. }) if options.drop_result => {
                    Outcome::ResultDropped { answered: Box::new(o) }
                }
                o => o,
            };
            Invocation { outcome, logs: captured.text, leaked: captured.leaked, duration: started.elapsed(), cold: true }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
