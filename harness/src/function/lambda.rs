//! `lambda` (cargo feature `lambda`, off by default): the Lambda Invoke API through
//! aws-sdk-lambda, for functions that already run somewhere that serves Invoke: AWS itself,
//! LocalStack, or AWS's runtime interface emulator. Crash points cannot reach inside such a
//! function; a timeout or a crash point abandons the call (an unknown outcome).
//!
//! Verified here against a minimal Invoke endpoint (the unit test below); not verified against
//! AWS itself.

use super::{BoxFuture, Event, Invocation, InvokeOptions, Invoker, Outcome};
use crate::redact::Redactor;
use aws_sdk_lambda::config::{BehaviorVersion, Region, retry::RetryConfig};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A function invoked through the Lambda Invoke API.
pub struct LambdaFunction {
    client: aws_sdk_lambda::Client,
    function: String,
    timeout: Duration,
    redactor: Arc<Redactor>,
}

impl LambdaFunction {
    /// Invokes `function` (name or ARN). Credentials and region come from the usual AWS
    /// environment; `endpoint` overrides where Invoke is sent (LocalStack, the emulator of the
    /// runtime interface). Retries are off: one call is one invocation.
    pub async fn new(function: &str, endpoint: Option<&str>, region: &str, timeout: Duration, redactor: Arc<Redactor>) -> LambdaFunction {
        let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
            .region(Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled());
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        let http = if endpoint.is_some_and(|e| e.starts_with("http://")) {
            aws_smithy_http_client::Builder::new().build_http()
        } else {
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
                .build_https()
        };
        let config = loader.http_client(http).load().await;
        LambdaFunction { client: aws_sdk_lambda::Client::new(&config), function: function.into(), timeout, redactor }
    }

    /// A function behind a client built elsewhere (tests).
    pub fn with_client(client: aws_sdk_lambda::Client, function: &str, timeout: Duration, redactor: Arc<Redactor>) -> LambdaFunction {
        LambdaFunction { client, function: function.into(), timeout, redactor }
    }

    async fn call(&self, event: &Event) -> (Outcome, String) {
        let payload = serde_json::to_vec(event).expect("events serialize");
        let sent = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(Blob::new(payload))
            .send()
            .await;
        let out = match sent {
            Ok(o) => o,
            Err(e) => return (Outcome::Crashed { detail: format!("Invoke failed: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)) }, String::new()),
        };
        let logs = out
            .log_result()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let body: serde_json::Value = out
            .payload()
            .map(|p| serde_json::from_slice(p.as_ref()).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(p.as_ref()).into_owned())))
            .unwrap_or(serde_json::Value::Null);
        // Lambda answers 200 for function errors and says so in X-Amz-Function-Error.
        let outcome = match out.function_error() {
            Some(_) => Outcome::FunctionError {
                error_type: body.get("errorType").and_then(|t| t.as_str()).unwrap_or("Unhandled").to_string(),
                message: body.get("errorMessage").and_then(|t| t.as_str()).unwrap_or("").to_string(),
            },
            None => Outcome::Success { payload: body },
        };
        (outcome, logs)
    }
}

impl Invoker for LambdaFunction {
    fn kind(&self) -> &'static str {
        "lambda"
    }

    fn invoke<'a>(&'a self, event: &'a Event, options: InvokeOptions) -> BoxFuture<'a, Invocation> {
        Box::pin(async move {
            let started = Instant::now();
            let kill = options.kill.clone().unwrap_or_default();
            let (outcome, logs) = tokio::select! {
                r = self.call(event) => r,
                _ = tokio::time::sleep(options.timeout.unwrap_or(self.timeout)) => (Outcome::TimedOut, String::new()),
                reason = kill.wait() => (Outcome::Killed { reason }, String::new()),
            };
            let outcome = match outcome {
                o @ (Outcome::Success { .. } | Outcome::FunctionError { .. }) if options.drop_result => Outcome::ResultDropped { answered: Box::new(o) },
                Outcome::FunctionError { error_type, message } => Outcome::FunctionError { error_type, message: self.redactor.redact(&message) },
                Outcome::Success { payload } => Outcome::Success { payload: self.redactor.redact_json(&payload) },
                o => o,
            };
            let leaked = self.redactor.aliases_in(&logs).into_iter().collect();
            Invocation { outcome, logs: self.redactor.redact(&logs), leaked, duration: started.elapsed(), cold: false }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::Step;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;

    /// A minimal Invoke endpoint: the step in the payload decides the answer.
    async fn invoke_endpoint() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        assert!(req.uri().path().starts_with("/2015-03-31/functions/rotate/invocations"), "{}", req.uri());
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let r = hyper::Response::builder().status(200);
                        let r = match event["Step"].as_str().unwrap() {
                            "createSecret" => r.body(Full::new(Bytes::from_static(b"null"))),
                            "setSecret" => r
                                .header("X-Amz-Function-Error", "Unhandled")
                                .body(Full::new(Bytes::from_static(br#"{"errorType":"ValueError","errorMessage":"cannot log in with pw-leaked-123"}"#))),
                            "testSecret" => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                r.body(Full::new(Bytes::from_static(b"null")))
                            }
                            _ => r
                                .header("X-Amz-Log-Result", base64::engine::general_purpose::STANDARD.encode("finishing with pw-leaked-123\n"))
                                .body(Full::new(Bytes::from_static(br#"{"done":true}"#))),
                        };
                        Ok::<_, std::convert::Infallible>(r.unwrap())
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn outcomes_through_a_minimal_invoke_endpoint() {
        let addr = invoke_endpoint().await;
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new("AKIDLAMBDA", "x", None, None, "test"))
            .endpoint_url(format!("http://{addr}"))
            .retry_config(RetryConfig::disabled())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        let redactor = Redactor::new();
        redactor.register("pw-leaked-123", "<password of s:v2>", true);
        let f = LambdaFunction::with_client(aws_sdk_lambda::Client::from_conf(conf), "rotate", Duration::from_millis(800), redactor);
        let ev = |step| Event { step, secret_id: "arn".into(), token: "t".repeat(32), rotation_token: None };
        let e = ev(Step::CreateSecret);
        assert_eq!(f.invoke(&e, InvokeOptions::default()).await.outcome, Outcome::Success { payload: serde_json::Value::Null });
        let e = ev(Step::SetSecret);
        assert_eq!(
            f.invoke(&e, InvokeOptions::default()).await.outcome,
            Outcome::FunctionError { error_type: "ValueError".into(), message: "cannot log in with <password of s:v2>".into() }
        );
        let e = ev(Step::TestSecret);
        assert_eq!(f.invoke(&e, InvokeOptions::default()).await.outcome, Outcome::TimedOut);
        let e = ev(Step::FinishSecret);
        let inv = f.invoke(&e, InvokeOptions::default()).await;
        assert_eq!(inv.outcome, Outcome::Success { payload: serde_json::json!({"done": true}) });
        assert_eq!(inv.logs, "finishing with <password of s:v2>\n");
        assert_eq!(inv.leaked, vec!["<password of s:v2>".to_string()]);
    }
}
