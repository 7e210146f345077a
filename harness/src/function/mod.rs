//! How a rotation function runs: one trait, several ways to invoke it.
//!
//! Secrets Manager calls a rotation function as a Lambda, synchronously, once per step, with
//! `{Step, SecretId, ClientRequestToken, RotationToken}`. An [`Invoker`] does the same to any
//! function, whatever its language and packaging:
//!
//! * [`runtime_api`]: rotcheck hosts the AWS Lambda Runtime API and starts the function's own
//!   runtime client (`python -m awslambdaric`, a Rust `lambda_runtime` binary, ...); processes
//!   stay warm between invocations, like a real Lambda;
//! * [`image`]: a Lambda container image whose runtime client polls rotcheck's Runtime API;
//! * [`http`]: POST the event to a URL;
//! * [`command`]: run a command per invocation with the event on stdin;
//! * `lambda` (cargo feature `lambda`): the Invoke API, for functions that run elsewhere.
//!
//! Any language whose Lambda runtime client reads `AWS_LAMBDA_RUNTIME_API` runs under
//! [`runtime_api`] as a [`process::LaunchSpec`] (program, arguments, directory):
//!
//! | runtime | program and arguments | tested here |
//! |---|---|---|
//! | Python | `<venv>/bin/python -m awslambdaric lambda_function.lambda_handler` ([`python::prepare`] makes the venv) | yes |
//! | Rust | the binary built on the `lambda_runtime` crate | yes (`fixtures/rust`) |
//! | Node.js | `node_modules/.bin/aws-lambda-ric index.handler` (after `npm install aws-lambda-ric`) | no |
//! | Go | the binary built with `github.com/aws/aws-lambda-go/lambda` (`lambda.Start` polls the Runtime API) | no |
//! | Java | `java -cp <jars> com.amazonaws.services.lambda.runtime.api.client.AWSLambda <handler>` | no |
//!
//! A timed-out or killed invocation is an *unknown* outcome (the step may have taken effect in
//! whole, in part, or not at all), never a failure: properties are judged on the states that
//! follow. Every invocation's output is captured, bounded, and redacted.

pub mod command;
pub mod crash;
pub mod http;
pub mod image;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod logs;
pub mod process;
pub mod python;
pub mod runtime_api;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A rotation step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    /// Generate the new secret value and store it under AWSPENDING.
    #[serde(rename = "createSecret")]
    CreateSecret,
    /// Make the database accept the new credentials.
    #[serde(rename = "setSecret")]
    SetSecret,
    /// Exercise the new credentials.
    #[serde(rename = "testSecret")]
    TestSecret,
    /// Move AWSCURRENT to the new version.
    #[serde(rename = "finishSecret")]
    FinishSecret,
}

impl Step {
    /// The four steps in the order Secrets Manager invokes them.
    pub const ALL: [Step; 4] = [Step::CreateSecret, Step::SetSecret, Step::TestSecret, Step::FinishSecret];

    /// The name on the wire (`createSecret`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
        }
    }
}

/// The event Secrets Manager sends (spec 1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The step.
    #[serde(rename = "Step")]
    pub step: Step,
    /// The secret's ARN.
    #[serde(rename = "SecretId")]
    pub secret_id: String,
    /// The new version's id.
    #[serde(rename = "ClientRequestToken")]
    pub token: String,
    /// Where the request came from (assumed-role and cross-account rotation).
    #[serde(rename = "RotationToken", skip_serializing_if = "Option::is_none")]
    pub rotation_token: Option<String>,
}

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The function returned.
    Success {
        /// What it returned (JSON `null` for nothing).
        payload: serde_json::Value,
    },
    /// The function raised or returned an error.
    FunctionError {
        /// `errorType` (an exception class, an HTTP status, an exit code).
        error_type: String,
        /// `errorMessage` (redacted).
        message: String,
    },
    /// The deadline passed and the function was killed: whether the step took effect is
    /// unknown.
    TimedOut,
    /// The runner killed the function at a crash point: unknown.
    Killed {
        /// Which crash point.
        reason: String,
    },
    /// The step ran and its result was dropped on purpose: the service sees no answer.
    ResultDropped {
        /// What the function had answered (redacted), for the trace.
        answered: Box<Outcome>,
    },
    /// The function's process ended (or could not start) without answering.
    Crashed {
        /// What happened: exit status, init error, connection refused.
        detail: String,
    },
}

impl Outcome {
    /// Whether the service counts the step as successful.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success { .. })
    }

    /// Whether the outcome leaves it unknown if the step took effect.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Outcome::TimedOut | Outcome::Killed { .. } | Outcome::ResultDropped { .. } | Outcome::Crashed { .. })
    }
}

/// One invocation: its outcome, the output the function printed while it ran, and timings.
#[derive(Clone, Debug, Serialize)]
pub struct Invocation {
    /// The outcome.
    pub outcome: Outcome,
    /// What the function printed during the invocation: bounded, every secret value replaced
    /// by its alias.
    pub logs: String,
    /// The aliases of secret values that appeared in the output (P8): empty for a clean
    /// function.
    pub leaked: Vec<String>,
    /// Wall time of the invocation.
    pub duration: Duration,
    /// Whether it was its process's first (a process had to be started for it, or was
    /// started ahead after a kill).
    pub cold: bool,
}

/// Per-invocation options.
#[derive(Clone, Default)]
pub struct InvokeOptions {
    /// How long the function may run (the Lambda timeout). Default: the invoker's own.
    pub timeout: Option<Duration>,
    /// A crash point: when it fires, the function is killed at once and the outcome is
    /// [`Outcome::Killed`]. Crash points are events (the k-th API call, the k-th database
    /// connection), never timers, so a schedule replays exactly.
    pub kill: Option<KillSwitch>,
    /// Run the step, then drop its result ([`Outcome::ResultDropped`]).
    pub drop_result: bool,
    /// Passed before a result is accepted (see [`crash::ResultGate`]).
    pub gate: Option<crash::ResultGate>,
}

/// A one-shot trigger that kills a running invocation.
#[derive(Clone, Default)]
pub struct KillSwitch {
    inner: Arc<KillInner>,
}

type Action = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct KillInner {
    fired: std::sync::Mutex<Option<String>>,
    actions: std::sync::Mutex<Vec<Action>>,
    notify: tokio::sync::Notify,
}

impl KillSwitch {
    /// A switch that has not fired.
    pub fn new() -> KillSwitch {
        KillSwitch::default()
    }

    /// Fires the switch (idempotent: the first reason wins) and runs the registered actions
    /// synchronously, before returning.
    pub fn fire(&self, reason: impl Into<String>) {
        let mut f = self.inner.fired.lock().expect("kill switch lock");
        if f.is_none() {
            *f = Some(reason.into());
        }
        drop(f);
        let actions = std::mem::take(&mut *self.inner.actions.lock().expect("kill switch lock"));
        for a in actions {
            a();
        }
        self.inner.notify.notify_waiters();
        self.inner.notify.notify_one();
    }

    /// Runs `action` synchronously when the switch fires (at once if it already has). The
    /// invoker registers "kill the process group" here, so that a crash point fired inside an
    /// emulator hook kills the function before the hooked response is written.
    pub fn on_fire(&self, action: impl FnOnce() + Send + 'static) {
        let mut actions = self.inner.actions.lock().expect("kill switch lock");
        if self.fired().is_some() {
            drop(actions);
            action();
            return;
        }
        actions.push(Box::new(action));
    }

    /// The reason it fired with, if it did.
    pub fn fired(&self) -> Option<String> {
        self.inner.fired.lock().expect("kill switch lock").clone()
    }

    /// Waits until the switch fires; returns the reason.
    pub async fn wait(&self) -> String {
        loop {
            let notified = self.inner.notify.notified();
            if let Some(r) = self.fired() {
                return r;
            }
            notified.await;
        }
    }
}

/// A boxed future, so that [`Invoker`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs a rotation function.
pub trait Invoker: Send + Sync {
    /// `runtime-api`, `http`, `command`, ...
    fn kind(&self) -> &'static str;
    /// Invokes the function once and waits for the outcome. Never fails: everything that can
    /// happen to an invocation is an [`Outcome`].
    fn invoke<'a>(&'a self, event: &'a Event, options: InvokeOptions) -> BoxFuture<'a, Invocation>;
    /// Stops every process of the function (they start cold next time).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// How the function reaches Secrets Manager, and as whom.
#[derive(Clone, Debug)]
pub struct AwsEnvironment {
    /// The emulator's endpoint (`http://127.0.0.1:<port>`).
    pub endpoint: String,
    /// The region.
    pub region: String,
    /// The access key id the function signs with: the emulator keys its call log and faults
    /// by it, so each function process gets its own.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl AwsEnvironment {
    /// The environment variables that point every AWS SDK at the emulator, and only at it:
    /// the service-specific endpoint, the sample functions' SECRETS_MANAGER_ENDPOINT, and the
    /// global AWS_ENDPOINT_URL (so a call to any other service, such as the RDS lookups of the
    /// AWS samples, fails fast at the emulator instead of hanging on the internet).
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.endpoint.as_str()),
            ("SECRETS_MANAGER_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_DEFAULT_REGION", self.region.as_str()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_secrets_manager_sends_them() {
        let e = Event {
            step: Step::CreateSecret,
            secret_id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf".into(),
            token: "t".repeat(32),
            rotation_token: None,
        };
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["Step"], "createSecret");
        assert!(j.get("RotationToken").is_none());
        assert_eq!(serde_json::from_value::<Event>(j).unwrap(), e);
    }

    #[test]
    fn kill_switch_runs_its_actions_synchronously_once() {
        let k = KillSwitch::new();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        k.on_fire(move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        k.fire("now");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        k.fire("again");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        let h = hits.clone();
        k.on_fire(move || {
            h.fetch_add(10, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 11, "late actions run at once");
    }

    #[tokio::test]
    async fn kill_switch_fires_once_and_wakes_waiters() {
        let k = KillSwitch::new();
        let w = {
            let k = k.clone();
            tokio::spawn(async move { k.wait().await })
        };
        tokio::task::yield_now().await;
        k.fire("first");
        k.fire("second");
        assert_eq!(w.await.unwrap(), "first");
        assert_eq!(k.wait().await, "first");
    }
}
