//! `http`: POST the event as JSON to a URL. A 2xx answer is success; anything else is a
//! function error with the body as message. A connection that cannot be made is a crash (the
//! function did not run); a request that outlives the timeout, or a crash point, is abandoned
//! (unknown whether the function acted on it).

use super::runtime_api::MAX_RESPONSE_BYTES;
use super::{BoxFuture, Event, Invocation, InvokeOptions, Invoker, Outcome};
use crate::redact::Redactor;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A function behind an HTTP endpoint.
pub struct HttpFunction {
    url: hyper::Uri,
    timeout: Duration,
    redactor: Arc<Redactor>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpFunction {
    /// A function at `url` (http only), with a per-invocation timeout.
    pub fn new(url: &str, timeout: Duration, redactor: Arc<Redactor>) -> Result<HttpFunction, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad function URL {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!("the function URL must be http://host[:port]/path, got {url:?}"));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(HttpFunction { url: uri, timeout, redactor, client })
    }

    async fn call(&self, body: Vec<u8>) -> Outcome {
        let req = hyper::Request::post(self.url.clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => return Outcome::Crashed { detail: format!("no answer from {}: {e}", self.url) },
        };
        let status = resp.status();
        let body = match Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Outcome::Crashed { detail: format!("the answer of {} broke off: {e}", self.url) },
        };
        if status.is_success() {
            return Outcome::Success { payload: payload_of(&body) };
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let error_type = v.get("errorType").and_then(|t| t.as_str()).map(str::to_string).unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let message = v
            .get("errorMessage")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(4096).collect());
        Outcome::FunctionError { error_type, message: self.redactor.redact(&message) }
    }
}

fn payload_of(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

impl Invoker for HttpFunction {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn invoke<'a>(&'a self, event: &'a Event, options: InvokeOptions) -> BoxFuture<'a, Invocation> {
        Box::pin(async move {
            let started = Instant::now();
            let body = serde_json::to_vec(event).expect("events serialize");
            let timeout = options.timeout.unwrap_or(self.timeout);
            let kill = options.kill.clone().unwrap_or_default();
            let outcome = tokio::select! {
                o = self.call(body) => o,
                _ = tokio::time::sleep(timeout) => Outcome::TimedOut,
                reason = kill.wait() => Outcome::Killed { reason },
            };
            if let Some(gate) = &options.gate {
                gate.pass().await;
            }
            let outcome = match kill.fired() {
                Some(reason) => Outcome::Killed { reason },
                None => outcome,
            };
            let outcome = match outcome {
                o @ (Outcome::Success { .. } | Outcome::FunctionError { .. }) if options.drop_result => {
                    Outcome::ResultDropped { answered: Box::new(o) }
                }
                o => o,
            };
            let outcome = match outcome {
                Outcome::Success { payload } => Outcome::Success { payload: self.redactor.redact_json(&payload) },
                o => o,
            };
            Invocation { outcome, logs: String::new(), leaked: Vec::new(), duration: started.elapsed(), cold: false }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
