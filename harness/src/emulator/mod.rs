//! Secrets Manager over HTTP: awsJson1.1 on `POST /`, backed by the [model](crate::model).
//!
//! The emulator binds to loopback, answers the way AWS shapes its answers (absent fields left
//! out, epoch-second timestamps, base64 blobs, `{"__type", "Message"}` errors), and records
//! every call per caller. The caller is the access key id of the request's SigV4
//! `Authorization` header: the engine gives each function process its own key, so parallel
//! cases and a least-privilege report can tell callers apart. Each caller can have a
//! [`CallHook`] that injects [`Fault`]s.
//!
//! It can also verify the SigV4 signatures against the credentials it issued
//! ([`Emulator::verify_signatures`], [`Emulator::add_credentials`]; see [`sigv4`]). That is off
//! for a bare `Emulator::new` and on under `rotcheck check` and `rotcheck serve`. A rejected
//! request is logged as [`CallOutcome::Rejected`] and reaches neither a fault hook nor the model.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use rotcheck_harness::{emulator::Emulator, model::Model, redact::Redactor};
//! let emulator = Emulator::new(Model::seeded(1), Redactor::new());
//! let server = emulator.serve("127.0.0.1:0".parse().unwrap()).await?;
//! println!("AWS_ENDPOINT_URL_SECRETS_MANAGER={}", server.endpoint());
//! # Ok(()) }
//! ```

pub mod calllog;
pub mod fault;
pub mod sigv4;

pub use calllog::{CallLog, CallOutcome, CallRecord};
pub use fault::{CallHook, CallInfo, Fault, FaultPlan, FaultRule, Gate};
pub use sigv4::SignatureCheck;

use crate::model::{Answer, ApiError, ErrorKind, Model, Operation, RotationTicket, SharedModel};
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
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// The caller of an unsigned request.
pub const ANONYMOUS: &str = "-";
/// The largest request body accepted. A SecretString is at most 65,536 characters; even fully
/// `\u`-escaped that stays well under this.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What the service does once RotateSecret has created the placeholder: invoke the function.
pub trait RotationDriver: Send + Sync {
    /// Starts the rotation (asynchronously: the RotateSecret call has already been answered).
    fn start(&self, emulator: &Arc<Emulator>, ticket: RotationTicket);
}

/// The driver of `serve`, which has no function to invoke. A rotation's placeholder stays, as
/// after a failed invocation (the caller plays the function's part). A test-only rotation
/// (`RotateImmediately=false`) ends at once: the service removes its temporary version
/// whatever testSecret answered (spec 5 step 6), so it never blocks the next rotation.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdleDriver;

impl RotationDriver for IdleDriver {
    fn start(&self, emulator: &Arc<Emulator>, ticket: RotationTicket) {
        if !ticket.rotate_immediately {
            let _ = emulator.model().lock().expect("model lock").end_test_rotation(&ticket.arn, &ticket.token);
        }
    }
}

/// The emulator: a model, a redactor, a call log, hooks, and a rotation driver.
pub struct Emulator {
    model: SharedModel,
    redactor: Arc<Redactor>,
    log: CallLog,
    hooks: RwLock<HashMap<String, Arc<dyn CallHook>>>,
    driver: RwLock<Arc<dyn RotationDriver>>,
    signatures: RwLock<SignatureCheck>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").finish_non_exhaustive()
    }
}

impl Emulator {
    /// An emulator serving `model`, registering stored values with `redactor`.
    pub fn new(model: Model, redactor: Arc<Redactor>) -> Arc<Emulator> {
        Arc::new(Emulator {
            model: Arc::new(Mutex::new(model)),
            redactor,
            log: CallLog::default(),
            hooks: RwLock::new(HashMap::new()),
            driver: RwLock::new(Arc::new(IdleDriver)),
            signatures: RwLock::new(SignatureCheck::default()),
        })
    }

    /// Turns the call log and the redactor's registrations on (the default) or off. `check`
    /// needs both, per case, and takes them away with the case. `serve` runs for days and
    /// nobody reads its log: recording there would only grow, call after call (the soak bench
    /// measures this), so it turns recording off. Nothing is printed either way.
    pub fn set_recording(&self, on: bool) {
        self.log.set_enabled(on);
    }

    fn recording(&self) -> bool {
        self.log.enabled()
    }

    /// The model, for the runner (acting as the service) and the checker.
    pub fn model(&self) -> &SharedModel {
        &self.model
    }

    /// The run's redactor.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// The call log.
    pub fn log(&self) -> &CallLog {
        &self.log
    }

    /// Installs the hook for `caller`'s calls (replacing any previous one).
    pub fn set_hook(&self, caller: &str, hook: Arc<dyn CallHook>) {
        self.hooks.write().expect("hooks lock").insert(caller.to_string(), hook);
    }

    /// Removes `caller`'s hook.
    pub fn clear_hook(&self, caller: &str) {
        self.hooks.write().expect("hooks lock").remove(caller);
    }

    /// Turns SigV4 verification of HTTP requests on or off. Off after [`Emulator::new`], so that
    /// tests can name callers by any access key id; `rotcheck check` and `rotcheck serve` turn it
    /// on, so that a function signing with credentials other than the ones it was given fails
    /// here as it would on AWS. In-process [`Emulator::call`]s are never checked.
    pub fn verify_signatures(&self, on: bool) {
        self.signatures.write().expect("signatures lock").set_enabled(on);
    }

    /// Accepts requests signed as `access_key_id` with `secret_access_key` (when verifying).
    pub fn add_credentials(&self, access_key_id: &str, secret_access_key: &str) {
        self.signatures.write().expect("signatures lock").add(access_key_id, secret_access_key);
    }

    /// The sentence every signature error ends with: which credentials are accepted and how to
    /// stop checking, in the words of whoever runs the emulator. It must hold no secret key.
    pub fn set_signature_advice(&self, advice: impl Into<String>) {
        self.signatures.write().expect("signatures lock").set_advice(advice);
    }

    /// Sets what RotateSecret starts.
    pub fn set_driver(&self, driver: Arc<dyn RotationDriver>) {
        *self.driver.write().expect("driver lock") = driver;
    }

    /// Runs a call in-process, as `caller`: logged, values registered, rotations started, but
    /// never faulted. The runner uses this to act as the service or as an operator.
    pub fn call(self: &Arc<Self>, caller: &str, op: Operation, body: &serde_json::Value) -> Result<Answer, ApiError> {
        let started = Instant::now();
        let (seq, index) = self.log.begin(caller);
        let bytes = serde_json::to_vec(body).expect("JSON values serialize");
        let result = self.apply(caller, op, &bytes);
        let outcome = match &result {
            Ok(a) => CallOutcome::Ok { response: self.redactor.redact_json(&a.body) },
            Err(e) => CallOutcome::Error { kind: e.kind, message: self.redactor.redact(&e.message), injected: false },
        };
        self.log.push(CallRecord {
            seq,
            caller: caller.to_string(),
            index,
            op: Some(op),
            args: self.redact_args(body),
            outcome,
            micros: started.elapsed().as_micros() as u64,
        });
        if let Ok(a) = &result {
            self.start_rotation(a);
        }
        result
    }

    /// Serves HTTP on `addr` until the returned [`Server`] is stopped or dropped.
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let emulator = self.clone();
        let task = tokio::spawn(accept_loop(emulator, listener, rx));
        Ok(Server { addr: local, shutdown: tx, task: Some(task) })
    }

    /// Applies a call to the model and registers any value it stored or generated.
    fn apply(&self, caller: &str, op: Operation, body: &[u8]) -> Result<Answer, ApiError> {
        let mut model = self.model.lock().expect("model lock");
        let result = model.call_as(caller, op, body);
        if let (Ok(answer), true) = (&result, self.recording()) {
            let field = |k: &str| answer.body.get(k).and_then(|v| v.as_str());
            match op {
                Operation::CreateSecret | Operation::PutSecretValue | Operation::RotateSecret => {
                    if let (Some(name), Some(vid)) = (field("Name"), field("VersionId"))
                        && let Some(secret) = model.secret(name)
                        && let Some(v) = secret.version(vid)
                        && let Some(value) = &v.value
                    {
                        self.redactor.register_value(name, v.ordinal, value);
                    }
                }
                Operation::GetRandomPassword => {
                    if let Some(pw) = field("RandomPassword") {
                        self.redactor.register_random_password(pw);
                    }
                }
                _ => {}
            }
        }
        result
    }

    fn start_rotation(self: &Arc<Self>, answer: &Answer) {
        if let Some(ticket) = &answer.rotation {
            let driver = self.driver.read().expect("driver lock").clone();
            driver.start(self, ticket.clone());
        }
    }

    /// Request arguments for the log: secret values replaced by their aliases, or by
    /// `<unstored secret value>` when the call did not store them.
    fn redact_args(&self, body: &serde_json::Value) -> serde_json::Value {
        let mut args = body.clone();
        if let Some(map) = args.as_object_mut() {
            for key in ["SecretString", "SecretBinary"] {
                if let Some(v) = map.get_mut(key) {
                    let alias = v.as_str().and_then(|s| self.redactor.alias_of(s));
                    *v = serde_json::Value::String(alias.unwrap_or_else(|| "<unstored secret value>".into()));
                }
            }
        }
        self.redactor.redact_json(&args)
    }

    /// Handles one HTTP request.
    async fn handle(self: Arc<Self>, req: Request<Incoming>, kill: Arc<Notify>) -> Result<Response<Full<Bytes>>, Infallible> {
        let started = Instant::now();
        if req.method() != Method::POST || req.uri().path() != "/" {
            let e = ApiError::new(ErrorKind::UnknownOperationException, "rotcheck's Secrets Manager answers POST / only.");
            return Ok(error_response(&e, StatusCode::NOT_FOUND));
        }
        let (parts, body) = req.into_parts();
        let caller = access_key(&parts.headers).unwrap_or(ANONYMOUS).to_string();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                let e = ApiError::new(
                    ErrorKind::SerializationException,
                    format!("The request body is larger than {MAX_BODY_BYTES} bytes, or could not be read."),
                );
                return Ok(error_response(&e, StatusCode::PAYLOAD_TOO_LARGE));
            }
        };
        let (seq, index) = self.log.begin(&caller);
        let args: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        // Without recording (serve) the record is thrown away: skip the redacted copies.
        let recording = self.recording();
        let record = |op, outcome| CallRecord {
            seq,
            caller: caller.clone(),
            index,
            op,
            args: if recording { self.redact_args(&args) } else { serde_json::Value::Null },
            outcome,
            micros: started.elapsed().as_micros() as u64,
        };
        let op = target.strip_prefix("secretsmanager.").and_then(Operation::parse);
        // Authentication comes first, as on AWS: a rejected request is logged under the key id
        // it claims, and reaches neither a fault hook nor the model.
        let verified = self.signatures.read().expect("signatures lock").verify(&parts.method, &parts.uri, &parts.headers, &body);
        if let Err(e) = verified {
            self.log.push(record(op, CallOutcome::Rejected { kind: e.kind, message: e.message.clone() }));
            return Ok(error_response(&e, status_of(e.kind)));
        }
        let Some(op) = op else {
            let e = ApiError::new(
                ErrorKind::UnknownOperationException,
                format!("The operation {:?} is not an operation of Secrets Manager.", truncate(&target, 100)),
            );
            self.log.push(record(None, CallOutcome::Rejected { kind: e.kind, message: e.message.clone() }));
            return Ok(error_response(&e, StatusCode::BAD_REQUEST));
        };
        let hook = self.hooks.read().expect("hooks lock").get(&caller).cloned();
        let info = CallInfo { caller: &caller, op, index, body: &args };
        let mut fault = hook.as_ref().and_then(|h| h.before(&info));
        while let Some(Fault::Await(gate)) = &fault {
            fault = gate.decide().await;
        }
        if let Some(Fault::Delay(d)) = &fault {
            tokio::time::sleep(*d).await;
        }
        let (rec, response) = match fault {
            Some(Fault::Vanish) => {
                // Not applied, answered or recorded: the caller was dead before it sent this.
                kill.notify_one();
                return std::future::pending().await;
            }
            Some(Fault::Await(_)) => unreachable!("gates are awaited above"),
            Some(Fault::Swallow) => (record(Some(op), CallOutcome::Lost { how: "request swallowed".into(), applied: false }), None),
            Some(Fault::Error(e)) => {
                let rec = record(Some(op), CallOutcome::Error { kind: e.kind, message: e.message.clone(), injected: true });
                (rec, Some(error_response(&e, status_of(e.kind))))
            }
            Some(Fault::ApplyThenDrop) | Some(Fault::ApplyThenFail) => {
                let drop = matches!(fault, Some(Fault::ApplyThenDrop));
                let result = self.apply(&caller, op, &body);
                let applied = result.is_ok();
                if let Ok(a) = &result {
                    self.start_rotation(a);
                }
                let how = if drop { "connection dropped" } else { "500 after apply" };
                let rec = record(Some(op), CallOutcome::Lost { how: how.into(), applied });
                let response = (!drop).then(|| {
                    let e = ApiError::new(ErrorKind::InternalServiceError, "An error occurred on the server side.");
                    error_response(&e, StatusCode::INTERNAL_SERVER_ERROR)
                });
                (rec, response)
            }
            None | Some(Fault::Delay(_)) => {
                let result = self.apply(&caller, op, &body);
                match result {
                    Ok(a) => {
                        let response = if recording { self.redactor.redact_json(&a.body) } else { serde_json::Value::Null };
                        let rec = record(Some(op), CallOutcome::Ok { response });
                        let bytes = serde_json::to_vec(&a.body).expect("JSON values serialize");
                        self.start_rotation(&a);
                        (rec, Some(json_response(StatusCode::OK, bytes, None)))
                    }
                    Err(e) => {
                        let outcome = if matches!(e.kind, ErrorKind::SerializationException) {
                            CallOutcome::Rejected { kind: e.kind, message: e.message.clone() }
                        } else {
                            CallOutcome::Error { kind: e.kind, message: self.redactor.redact(&e.message), injected: false }
                        };
                        (record(Some(op), outcome), Some(error_response(&e, status_of(e.kind))))
                    }
                }
            }
        };
        if let Some(h) = &hook {
            h.after(&info, &rec);
        }
        self.log.push(rec);
        match response {
            Some(r) => Ok(r),
            None => {
                // Close the connection without a byte of response: the caller sees the
                // connection drop after its request was applied.
                kill.notify_one();
                std::future::pending().await
            }
        }
    }
}

/// A running HTTP endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes open connections, and waits for the accept loop to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(emulator: Arc<Emulator>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("emulator accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let emulator = emulator.clone();
                let mut shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let k = kill.clone();
                    let svc = service_fn(move |req| emulator.clone().handle(req, k.clone()));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = kill.notified() => {}
                        _ = shutdown.changed() => {}
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// The access key id of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ...`.
pub fn access_key(headers: &hyper::HeaderMap) -> Option<&str> {
    let auth = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    let key = cred.split('/').next()?.trim();
    (!key.is_empty()).then_some(key)
}

fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

fn json_response(status: StatusCode, body: Vec<u8>, error_type: Option<&str>) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", CONTENT_TYPE)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
    if let Some(t) = error_type {
        b = b.header("x-amzn-errortype", t);
    }
    b.body(Full::new(Bytes::from(body))).expect("static headers are valid")
}

fn error_response(e: &ApiError, status: StatusCode) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": e.kind.as_str(), "Message": e.message});
    json_response(status, serde_json::to_vec(&body).expect("JSON"), Some(e.kind.as_str()))
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_from_sigv4_header() {
        let mut h = hyper::HeaderMap::new();
        h.insert(
            hyper::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIDCASE7/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(access_key(&h), Some("AKIDCASE7"));
        h.insert(hyper::header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(access_key(&h), None);
    }
}
