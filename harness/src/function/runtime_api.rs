//! `runtime-api`: rotcheck hosts the AWS Lambda Runtime API (2018-06-01) and starts the
//! function's own runtime client against it, like Lambda does. Processes stay warm between
//! invocations; each slot of a [`RuntimeApiFunction`] is one warm process with its own
//! Runtime API listener, access key, process group and output, so a case can deliver the same
//! step twice, concurrently.
//!
//! What a runtime client needs from the host (checked with awslambdaric 4.2.2 and
//! lambda_runtime 1.5; see `notes/lambda-runtime.md`): `GET /runtime/invocation/next` is a long
//! poll answered with the event, `Content-Type: application/json` (without it awslambdaric
//! hangs silently), `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` and
//! `Lambda-Runtime-Invoked-Function-Arn`; results come back on `.../{id}/response` or
//! `.../{id}/error`; start-up failures on `/runtime/init/error`.

use super::logs::LogSink;
use super::process::{FunctionProcess, LaunchSpec, ProcessGroup};
use super::{AwsEnvironment, BoxFuture, Event, Invocation, InvokeOptions, Invoker, Outcome};
use crate::redact::Redactor;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// Lambda's limit on a synchronous response payload.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// The default timeout of a rotation function (the rotation templates' default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Warm processes the first slot keeps for environments other than the current one (see
/// [`RuntimeApiFunction::set_env`]). A run's cases vary the function's environment (its
/// password settings: 3 x 3 combinations in generated cases), and a cold Python start with
/// boto3 costs more CPU than a whole case's steps; 8 keeps all of them warm. A warm Python
/// fixture holds about 50 MB; an environment whose process was killed once keeps a spare too.
pub const PARKED_FIRST_SLOT: usize = 8;
/// The same for the other slots, which only concurrent deliveries use.
pub const PARKED_OTHER_SLOTS: usize = 2;

/// A function run through a hosted Runtime API.
pub struct RuntimeApiFunction {
    launcher: Box<dyn Launcher>,
    config: FunctionConfig,
    /// The function's own environment now (see [`RuntimeApiFunction::set_env`]).
    env: std::sync::Mutex<Vec<(String, String)>>,
    redactor: Arc<Redactor>,
    slots: Vec<tokio::sync::Mutex<Slot>>,
}

/// Starts instances of a function (a local process, a container) that poll a Runtime API.
pub trait Launcher: Send + Sync {
    /// What is launched, for messages.
    fn describe(&self) -> String;
    /// The address the Runtime API must listen on for the instance to reach it.
    fn api_bind(&self) -> std::net::IpAddr {
        std::net::IpAddr::from([127, 0, 0, 1])
    }
    /// LAMBDA_TASK_ROOT as the instance sees it.
    fn task_root(&self) -> String;
    /// Extra environment of the instance (e.g. the Python settings).
    fn base_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Starts an instance with `env`, its output going to `sink`.
    fn launch<'a>(&'a self, env: Vec<(String, String)>, sink: Arc<LogSink>) -> BoxFuture<'a, std::io::Result<Box<dyn Instance>>>;
}

/// A running instance.
pub trait Instance: Send {
    /// A synchronous kill, callable from anywhere (a crash point inside an emulator hook).
    fn killer(&self) -> Box<dyn FnOnce() + Send>;
    /// Whether it is still running.
    fn is_running(&mut self) -> bool;
    /// Waits until it ends; describes how.
    fn wait(&mut self) -> BoxFuture<'_, String>;
    /// Kills it and waits until it is gone, with everything it started.
    fn kill(&mut self) -> BoxFuture<'_, ()>;
    /// Its process group, when it is a local process.
    fn group(&self) -> Option<ProcessGroup> {
        None
    }
}

/// Launches a local process from a [`LaunchSpec`].
pub struct ProcessLauncher(pub LaunchSpec);

impl Launcher for ProcessLauncher {
    fn describe(&self) -> String {
        self.0.program.display().to_string()
    }

    fn task_root(&self) -> String {
        self.0.cwd.display().to_string()
    }

    fn base_env(&self) -> Vec<(String, String)> {
        self.0.env.clone()
    }

    fn launch<'a>(&'a self, env: Vec<(String, String)>, sink: Arc<LogSink>) -> BoxFuture<'a, std::io::Result<Box<dyn Instance>>> {
        Box::pin(async move {
            let mut spec = self.0.clone();
            spec.env = env;
            let p = FunctionProcess::spawn(&spec, sink)?;
            Ok(Box::new(p) as Box<dyn Instance>)
        })
    }
}

impl Instance for FunctionProcess {
    fn killer(&self) -> Box<dyn FnOnce() + Send> {
        let g = self.group();
        Box::new(move || g.kill())
    }

    fn is_running(&mut self) -> bool {
        FunctionProcess::is_running(self)
    }

    fn wait(&mut self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            match FunctionProcess::wait(self).await {
                Some(s) => s.to_string(),
                None => "unknown status".into(),
            }
        })
    }

    fn kill(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(FunctionProcess::kill(self))
    }

    fn group(&self) -> Option<ProcessGroup> {
        Some(FunctionProcess::group(self))
    }
}

/// How the function presents itself.
#[derive(Clone, Debug)]
pub struct FunctionConfig {
    /// AWS_LAMBDA_FUNCTION_NAME.
    pub name: String,
    /// _HANDLER (informational for non-Python runtimes).
    pub handler: String,
    /// AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
    pub memory_mb: u32,
    /// The Lambda timeout.
    pub timeout: Duration,
    /// The function's own environment (EXCLUDE_CHARACTERS, ...).
    pub env: Vec<(String, String)>,
    /// The emulator and the credentials of each slot (one access key per slot).
    pub aws: AwsEnvironment,
    /// Access key ids, one per slot (the first one is `aws.access_key_id`).
    pub slot_keys: Vec<String>,
}

struct Slot {
    key: String,
    /// The process invocations go to now.
    warm: Warm,
    /// How many processes may be parked.
    park_limit: usize,
    /// Warm processes of other environments, the least recently parked first.
    parked: Vec<Warm>,
}

/// A process (or the place for one) with its environment, Runtime API listener and output.
struct Warm {
    /// The function's own environment that `process` runs (or will start) with.
    env: Vec<(String, String)>,
    api: RuntimeApi,
    sink: Arc<LogSink>,
    process: Option<Box<dyn Instance>>,
    /// Invocations run under `env` (for choosing which parked process to stop).
    uses: u64,
    /// Whether `process` was started ahead and has not been invoked yet.
    fresh: bool,
    /// A second process with the same environment, started ahead and not invoked yet: the
    /// next one after a kill (see [`RuntimeApiFunction::replace_killed`]).
    spare: Option<Box<Warm>>,
}

impl Warm {
    /// No process yet, a new listener.
    async fn empty(bind: std::net::IpAddr, config: &FunctionConfig, env: Vec<(String, String)>, redactor: &Arc<Redactor>) -> std::io::Result<Warm> {
        let api = RuntimeApi::start(bind, function_arn(config)).await?;
        Ok(Warm { env, api, sink: LogSink::new(redactor.clone()), process: None, uses: 0, fresh: false, spare: None })
    }

    fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    /// Stops its process and its spare's.
    async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill().await;
        }
        self.api.reset();
        if let Some(mut spare) = self.spare.take() {
            Box::pin(spare.stop()).await;
        }
    }
}

impl RuntimeApiFunction {
    /// A local process function with one warm-process slot per entry of `config.slot_keys`,
    /// each with its own Runtime API listener on 127.0.0.1. No process starts until the first
    /// invocation.
    pub async fn new(launch: LaunchSpec, config: FunctionConfig, redactor: Arc<Redactor>) -> std::io::Result<RuntimeApiFunction> {
        RuntimeApiFunction::with_launcher(Box::new(ProcessLauncher(launch)), config, redactor).await
    }

    /// A function whose instances `launcher` starts (a process, a container).
    pub async fn with_launcher(launcher: Box<dyn Launcher>, config: FunctionConfig, redactor: Arc<Redactor>) -> std::io::Result<RuntimeApiFunction> {
        let mut slots = Vec::new();
        let keys = if config.slot_keys.is_empty() { vec![config.aws.access_key_id.clone()] } else { config.slot_keys.clone() };
        for (i, key) in keys.into_iter().enumerate() {
            let warm = Warm::empty(launcher.api_bind(), &config, config.env.clone(), &redactor).await?;
            let park_limit = if i == 0 { PARKED_FIRST_SLOT } else { PARKED_OTHER_SLOTS };
            slots.push(tokio::sync::Mutex::new(Slot { key, warm, park_limit, parked: Vec::new() }));
        }
        let env = std::sync::Mutex::new(config.env.clone());
        Ok(RuntimeApiFunction { launcher, config, env, redactor, slots })
    }

    /// Sets the function's own environment (EXCLUDE_CHARACTERS, ...) of the next invocations.
    /// A process runs with the environment it started with, so an invocation under another
    /// one never reaches it: it gets a process started with the new environment (cold, as
    /// after a configuration change of a Lambda), or one parked earlier with exactly that
    /// environment. Up to [`PARKED_FIRST_SLOT`] processes (in the other slots
    /// [`PARKED_OTHER_SLOTS`]) stay parked, each with its own
    /// Runtime API listener, so that cases which return to an environment find it warm.
    pub fn set_env(&self, env: Vec<(String, String)>) {
        *self.env.lock().expect("env lock") = env;
    }

    /// Starts, in the background, a process for `env` in the first slot if none runs or is
    /// parked with it and it is not the environment set now, so that a coming case with that
    /// environment finds it initialized (its 0.4 s start-up overlaps the case before). It is
    /// parked like any other; beyond the limit the least used of the others stops.
    pub async fn prepare_env(&self, env: Vec<(String, String)>) {
        let mut slot = self.slots[0].lock().await;
        let slot = &mut *slot;
        let wanted = self.env.lock().expect("env lock").clone();
        if env == wanted || slot.warm.env == env || slot.parked.iter().any(|p| p.env == env) {
            return;
        }
        let Ok(mut warm) = Warm::empty(self.launcher.api_bind(), &self.config, env, &self.redactor).await else { return };
        if self.launch(&slot.key, &mut warm).await.is_ok() {
            warm.fresh = true;
            slot.parked.push(warm);
            self.evict(slot, Some(slot.parked.len() - 1)).await;
        }
    }

    /// Over the limit, the least used environment's process stops (of equals, the one
    /// parked longest): generated cases favour a few environments and visit others rarely.
    /// The parked process at index `keep` (one just started for a coming case) stays.
    async fn evict(&self, slot: &mut Slot, mut keep: Option<usize>) {
        while slot.parked.len() > slot.park_limit {
            let fewest = (0..slot.parked.len()).filter(|&i| Some(i) != keep).min_by_key(|&i| slot.parked[i].uses).expect("over the limit");
            slot.parked.remove(fewest).stop().await;
            keep = keep.map(|k| if k > fewest { k - 1 } else { k });
        }
    }

    /// Makes `slot` run `want`: parks its process and brings back one parked with `want`, or
    /// prepares a cold start with a new listener. Parked processes beyond the limit stop.
    async fn switch_env(&self, slot: &mut Slot, want: Vec<(String, String)>) -> std::io::Result<()> {
        let found = slot.parked.iter().position(|p| p.env == want);
        let incoming = match found {
            Some(i) => slot.parked.remove(i),
            None => Warm::empty(self.launcher.api_bind(), &self.config, want, &self.redactor).await?,
        };
        let mut outgoing = std::mem::replace(&mut slot.warm, incoming);
        if outgoing.is_running() {
            slot.parked.push(outgoing);
        } else {
            outgoing.stop().await;
        }
        self.evict(slot, None).await;
        Ok(())
    }

    /// How many warm-process slots the function has.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The access key of a slot (the emulator's caller id for that process).
    pub async fn access_key(&self, slot: usize) -> String {
        self.slots[slot].lock().await.key.clone()
    }

    /// The process group of a slot's warm process, if one is running.
    pub async fn process_group(&self, slot: usize) -> Option<ProcessGroup> {
        let mut s = self.slots[slot].lock().await;
        let p = s.warm.process.as_mut()?;
        if p.is_running() { p.group() } else { None }
    }

    /// Invokes the function in a given slot (for duplicate deliveries: one slot each).
    pub async fn invoke_in(&self, slot: usize, event: &Event, options: InvokeOptions) -> Invocation {
        let mut s = self.slots[slot].lock().await;
        self.run(&mut s, event, options).await
    }

    fn env_for(&self, key: &str, warm: &Warm) -> Vec<(String, String)> {
        let c = &self.config;
        let mut aws = c.aws.clone();
        aws.access_key_id = key.to_string();
        let mut env: Vec<(String, String)> = vec![
            ("AWS_LAMBDA_RUNTIME_API".into(), warm.api.addr.to_string()),
            ("_HANDLER".into(), c.handler.clone()),
            ("LAMBDA_TASK_ROOT".into(), self.launcher.task_root()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), c.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), c.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{}", c.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "rotcheck".into()),
            ("AWS_EXECUTION_ENV".into(), "rotcheck".into()),
        ];
        env.extend(aws.vars());
        env.extend(self.launcher.base_env());
        env.extend(warm.env.iter().cloned());
        env
    }

    async fn run(&self, slot: &mut Slot, event: &Event, options: InvokeOptions) -> Invocation {
        let started = Instant::now();
        let timeout = options.timeout.unwrap_or(self.config.timeout);
        let want = self.env.lock().expect("env lock").clone();
        if slot.warm.env != want
            && let Err(e) = self.switch_env(slot, want).await
        {
            return self.finish(slot, started, true, Outcome::Crashed { detail: format!("cannot start a Runtime API listener: {e}") });
        }
        slot.warm.uses += 1;
        // A process started ahead (after a kill) is still cold for its first invocation.
        let mut cold = std::mem::take(&mut slot.warm.fresh);
        if !slot.warm.is_running() {
            cold = true;
            if let Err(e) = self.launch(&slot.key, &mut slot.warm).await {
                return self.finish(slot, started, cold, Outcome::Crashed { detail: format!("cannot start {}: {e}", self.launcher.describe()) });
            }
        }
        let process = slot.warm.process.as_mut().expect("just ensured");
        let kill = options.kill.clone().unwrap_or_default();
        kill.on_fire(process.killer());
        let body = serde_json::to_vec(event).expect("events serialize");
        let deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64 + timeout.as_millis() as u64;
        let result = slot.warm.api.submit(body, deadline_ms);
        let outcome = tokio::select! {
            r = result => match r {
                Ok(RuntimeResult::Response(bytes)) => Outcome::Success { payload: payload_of(&bytes) },
                Ok(RuntimeResult::Error { error_type, message }) => Outcome::FunctionError { error_type, message },
                Err(_) => Outcome::Crashed { detail: "the Runtime API dropped the invocation".into() },
            },
            status = process.wait() => {
                let init = slot.warm.api.init_error();
                match init {
                    Some((t, m)) => Outcome::Crashed { detail: format!("init error {t}: {m} (process exited: {status})") },
                    None => Outcome::Crashed { detail: format!("the process exited without answering ({status})") },
                }
            }
            _ = tokio::time::sleep(timeout) => Outcome::TimedOut,
            reason = kill.wait() => Outcome::Killed { reason },
        };
        if let Some(gate) = &options.gate
            && !matches!(outcome, Outcome::Killed { .. })
        {
            gate.pass().await;
        }
        // A crash point that fired while a result was racing in wins: the process is dead.
        let outcome = match kill.fired() {
            Some(reason) => Outcome::Killed { reason },
            None => outcome,
        };
        if matches!(outcome, Outcome::TimedOut | Outcome::Killed { .. } | Outcome::Crashed { .. }) {
            if let Some(mut p) = slot.warm.process.take() {
                p.kill().await;
            }
            slot.warm.api.reset();
        }
        let outcome = if options.drop_result && !matches!(outcome, Outcome::TimedOut | Outcome::Killed { .. } | Outcome::Crashed { .. }) {
            Outcome::ResultDropped { answered: Box::new(outcome) }
        } else {
            outcome
        };
        slot.warm.sink.settle().await;
        let restart = matches!(outcome, Outcome::TimedOut | Outcome::Killed { .. });
        let invocation = self.finish(slot, started, cold, outcome);
        if restart {
            self.replace_killed(slot).await;
        }
        invocation
    }

    /// Puts a new process in the place of one that was killed (a crash point, a timeout): the
    /// spare, started ahead when an earlier process of this environment was killed, so that
    /// the retry that follows a kill at once does not wait for a start-up (0.4 s of Python
    /// and boto3); then a new spare starts in the background. Lambda, too, runs a new
    /// instance's initialization before the invocation that needs it. The first kill of an
    /// environment finds no spare: its replacement starts at once (overlapping the engine's
    /// observing), and so does a spare. A new process is cold at its first invocation, which
    /// gets its start-up output. Not after a crash: a function that cannot start would be
    /// started twice per invocation.
    async fn replace_killed(&self, slot: &mut Slot) {
        let dead_uses = slot.warm.uses;
        let mut spare = slot.warm.spare.take();
        let mut next = if spare.as_mut().is_some_and(|s| s.is_running()) {
            let spare = spare.expect("a spare that runs");
            let dead = std::mem::replace(&mut slot.warm, *spare);
            slot.warm.uses = dead_uses;
            dead
        } else {
            if let Some(mut s) = spare {
                s.stop().await;
            }
            if self.launch(&slot.key, &mut slot.warm).await.is_err() {
                return;
            }
            match Warm::empty(self.launcher.api_bind(), &self.config, slot.warm.env.clone(), &self.redactor).await {
                Ok(w) => w,
                Err(_) => {
                    slot.warm.fresh = true;
                    return;
                }
            }
        };
        slot.warm.fresh = true;
        if self.launch(&slot.key, &mut next).await.is_ok() {
            next.fresh = true;
            next.uses = 0;
            slot.warm.spare = Some(Box::new(next));
        }
    }

    /// Starts a process in `warm` on its reset listener, its earlier output dropped.
    async fn launch(&self, key: &str, warm: &mut Warm) -> std::io::Result<()> {
        warm.process = None;
        warm.api.reset();
        let _ = warm.sink.take();
        let env = self.env_for(key, warm);
        warm.process = Some(self.launcher.launch(env, warm.sink.clone()).await?);
        Ok(())
    }

    fn finish(&self, slot: &mut Slot, started: Instant, cold: bool, outcome: Outcome) -> Invocation {
        let captured = slot.warm.sink.take();
        let outcome = redact_outcome(&self.redactor, outcome);
        Invocation { outcome, logs: captured.text, leaked: captured.leaked, duration: started.elapsed(), cold }
    }
}

/// Error messages pass through the redactor like logs do.
fn redact_outcome(r: &Redactor, o: Outcome) -> Outcome {
    match o {
        Outcome::FunctionError { error_type, message } => Outcome::FunctionError { error_type, message: r.redact(&message) },
        Outcome::Success { payload } => Outcome::Success { payload: r.redact_json(&payload) },
        Outcome::ResultDropped { answered } => Outcome::ResultDropped { answered: Box::new(redact_outcome(r, *answered)) },
        Outcome::Crashed { detail } => Outcome::Crashed { detail: r.redact(&detail) },
        other => other,
    }
}

/// A response payload: JSON when it parses, else the text (Secrets Manager ignores payloads;
/// a function may answer anything).
fn payload_of(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

impl Invoker for RuntimeApiFunction {
    fn kind(&self) -> &'static str {
        "runtime-api"
    }

    /// Uses the first slot that is free, else waits for the first one.
    fn invoke<'a>(&'a self, event: &'a Event, options: InvokeOptions) -> BoxFuture<'a, Invocation> {
        Box::pin(async move {
            for s in &self.slots {
                if let Ok(mut slot) = s.try_lock() {
                    return self.run(&mut slot, event, options).await;
                }
            }
            let mut slot = self.slots[0].lock().await;
            self.run(&mut slot, event, options).await
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for s in &self.slots {
                let mut slot = s.lock().await;
                slot.warm.stop().await;
                for mut parked in std::mem::take(&mut slot.parked) {
                    parked.stop().await;
                }
            }
        })
    }
}

/// The ARN a runtime client is told it runs as.
fn function_arn(config: &FunctionConfig) -> String {
    format!("arn:aws:lambda:{}:123456789012:function:{}", config.aws.region, config.name)
}

// ----- the Runtime API server ------------------------------------------------------------

/// What the runtime client answered.
#[derive(Debug)]
enum RuntimeResult {
    Response(Bytes),
    Error { error_type: String, message: String },
}

struct Pending {
    id: String,
    body: Vec<u8>,
    deadline_ms: u64,
    result: oneshot::Sender<RuntimeResult>,
}

#[derive(Default)]
struct ApiInner {
    queued: Option<Pending>,
    in_flight: HashMap<String, oneshot::Sender<RuntimeResult>>,
    init_error: Option<(String, String)>,
}

struct ApiState {
    inner: Mutex<ApiInner>,
    ready: Notify,
    function_arn: String,
}

/// One Runtime API listener.
struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<ApiState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    async fn start(bind: std::net::IpAddr, function_arn: String) -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind((bind, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ApiState { inner: Mutex::new(ApiInner::default()), ready: Notify::new(), function_arn });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(RuntimeApi { addr, state, task })
    }

    /// Queues an invocation; the receiver yields the runtime's answer.
    fn submit(&self, body: Vec<u8>, deadline_ms: u64) -> oneshot::Receiver<RuntimeResult> {
        let (tx, rx) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        self.state.inner.lock().expect("api lock").queued = Some(Pending { id, body, deadline_ms, result: tx });
        self.state.ready.notify_waiters();
        self.state.ready.notify_one();
        rx
    }

    /// Forgets queued and in-flight invocations (after a kill) and a past init error.
    fn reset(&self) {
        let mut i = self.state.inner.lock().expect("api lock");
        i.queued = None;
        i.in_flight.clear();
        i.init_error = None;
    }

    fn init_error(&self) -> Option<(String, String)> {
        self.state.inner.lock().expect("api lock").init_error.clone()
    }
}

async fn handle(state: Arc<ApiState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Ok(error(StatusCode::NOT_FOUND, "UnknownPath", "rotcheck hosts /2018-06-01/runtime/ only"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, ["invocation", "next"]) => Ok(next(state).await),
        (Method::POST, ["invocation", id, "response"]) => {
            let body = match Limited::new(req.into_body(), MAX_RESPONSE_BYTES).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    deliver(&state, id, RuntimeResult::Error {
                        error_type: "Function.ResponseSizeTooLarge".into(),
                        message: format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
                    });
                    return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "response too large"));
                }
            };
            Ok(accepted_or_unknown(deliver(&state, id, RuntimeResult::Response(body))))
        }
        (Method::POST, ["invocation", id, "error"]) => {
            let header_type = req
                .headers()
                .get("Lambda-Runtime-Function-Error-Type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = Limited::new(req.into_body(), MAX_RESPONSE_BYTES).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let (t, m) = error_fields(&body, header_type);
            Ok(accepted_or_unknown(deliver(&state, id, RuntimeResult::Error { error_type: t, message: m })))
        }
        (Method::POST, ["init", "error"]) => {
            let header_type = req
                .headers()
                .get("Lambda-Runtime-Function-Error-Type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = Limited::new(req.into_body(), MAX_RESPONSE_BYTES).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            state.inner.lock().expect("api lock").init_error = Some(error_fields(&body, header_type));
            Ok(json(StatusCode::ACCEPTED, br#"{"status":"OK"}"#.to_vec()))
        }
        _ => Ok(error(StatusCode::NOT_FOUND, "UnknownPath", "not a Runtime API path")),
    }
}

/// The long poll: answers when an invocation is queued, with no timeout of its own.
async fn next(state: Arc<ApiState>) -> Response<Full<Bytes>> {
    loop {
        let notified = state.ready.notified();
        let pending = state.inner.lock().expect("api lock").queued.take();
        if let Some(p) = pending {
            state.inner.lock().expect("api lock").in_flight.insert(p.id.clone(), p.result);
            return Response::builder()
                .status(StatusCode::OK)
                .header("Content-Type", "application/json")
                .header("Lambda-Runtime-Aws-Request-Id", &p.id)
                .header("Lambda-Runtime-Deadline-Ms", p.deadline_ms.to_string())
                .header("Lambda-Runtime-Invoked-Function-Arn", &state.function_arn)
                .header("Lambda-Runtime-Trace-Id", format!("Root=1-{}", &p.id[..8]))
                .body(Full::new(Bytes::from(p.body)))
                .expect("static headers are valid");
        }
        notified.await;
    }
}

fn deliver(state: &ApiState, id: &str, result: RuntimeResult) -> bool {
    let tx = state.inner.lock().expect("api lock").in_flight.remove(id);
    match tx {
        Some(tx) => {
            let _ = tx.send(result);
            true
        }
        None => false,
    }
}

/// `{"errorType", "errorMessage"}` (also with the type in the header), tolerating anything.
fn error_fields(body: &[u8], header_type: Option<String>) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let t = v
        .get("errorType")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .or(header_type)
        .unwrap_or_else(|| "Unhandled".into());
    let m = v
        .get("errorMessage")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(4096).collect());
    (t, m)
}

fn accepted_or_unknown(known: bool) -> Response<Full<Bytes>> {
    if known {
        json(StatusCode::ACCEPTED, br#"{"status":"OK"}"#.to_vec())
    } else {
        error(StatusCode::BAD_REQUEST, "InvalidRequestID", "unknown or already answered request id")
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::to_vec(&serde_json::json!({"errorType": kind, "errorMessage": message})).expect("JSON"))
}
