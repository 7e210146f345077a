//! The emulator's SigV4 verification, through aws-sdk-secretsmanager and raw HTTP: the right
//! credentials pass, wrong ones get AWS's error with a message that says what is accepted, a
//! request changed after signing is refused, a rejected call is logged and reaches neither a
//! fault hook nor the model, and with verification off anything goes.

mod common;

use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_secretsmanager::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents, retry::RetryConfig};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use common::{emulator, raw_post};
use rotcheck_harness::emulator::{CallOutcome, Emulator, Fault, FaultPlan, Server};
use rotcheck_harness::model::ErrorKind;
use std::sync::Arc;

const KEY: &str = "AKIDSIGV4TEST";
const SECRET: &str = "a-secret-key-for-this-test";
const ADVICE: &str = "Accepted: AKIDSIGV4TEST. Turn checking off to accept any.";

/// An emulator that verifies signatures and accepts KEY/SECRET only.
async fn verifying() -> (Arc<Emulator>, Server) {
    let (emu, server) = emulator(7).await;
    emu.verify_signatures(true);
    emu.add_credentials(KEY, SECRET);
    emu.set_signature_advice(ADVICE);
    (emu, server)
}

fn config(endpoint: &str, key: &str, secret: &str) -> aws_sdk_secretsmanager::config::Builder {
    aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
}

fn client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(config(endpoint, key, secret).build())
}

/// The `__type` and message of a failed GetRandomPassword.
async fn refused(sm: &aws_sdk_secretsmanager::Client) -> (String, String) {
    let e = sm.get_random_password().send().await.expect_err("the call must be refused").into_service_error();
    (e.code().unwrap_or("<none>").to_string(), e.message().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issued_credentials_pass_and_others_get_aws_errors() {
    let (emu, server) = verifying().await;
    let endpoint = server.endpoint();

    let sm = client(&endpoint, KEY, SECRET);
    sm.create_secret().name("signed").secret_string("v1").send().await.unwrap();
    assert_eq!(sm.get_secret_value().secret_id("signed").send().await.unwrap().secret_string(), Some("v1"));

    let (code, message) = refused(&client(&endpoint, KEY, "not-the-secret")).await;
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("The request signature we calculated does not match the signature you provided."), "{message}");
    assert!(message.ends_with(ADVICE), "{message}");

    let (code, message) = refused(&client(&endpoint, "AKIDSOMEONEELSE", SECRET)).await;
    assert_eq!(code, "UnrecognizedClientException");
    assert!(message.starts_with("The security token included in the request is invalid"), "{message}");
    assert!(message.contains("AKIDSOMEONEELSE") && message.ends_with(ADVICE), "{message}");

    // A refused PutSecretValue changes nothing; no message or log entry holds the secret key.
    let e = client(&endpoint, KEY, "not-the-secret").put_secret_value().secret_id("signed").secret_string("v2").send().await;
    assert_eq!(e.expect_err("refused").into_service_error().code(), Some("InvalidSignatureException"));
    assert_eq!(sm.get_secret_value().secret_id("signed").send().await.unwrap().secret_string(), Some("v1"));
    for call in emu.log().callers().iter().flat_map(|c| emu.log().calls(c)) {
        assert!(!format!("{call:?}").contains(SECRET), "{call:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_request_is_an_incomplete_signature_in_the_aws_error_shape() {
    let (emu, server) = verifying().await;
    let r = raw_post(server.addr(), Some("secretsmanager.CreateSecret"), br#"{"Name":"unsigned","SecretString":"x"}"#).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(r.header("x-amzn-errortype"), Some("IncompleteSignature"));
    let j = r.json();
    assert_eq!(j["__type"], "IncompleteSignature");
    let message = j["Message"].as_str().unwrap();
    assert!(message.contains("no Authorization header") && message.ends_with(ADVICE), "{message}");
    assert!(emu.model().lock().unwrap().secret("unsigned").is_none());
    // Logged, under the anonymous caller, as rejected.
    let log = emu.log().calls("-");
    assert_eq!(log.len(), 1);
    assert!(matches!(&log[0].outcome, CallOutcome::Rejected { kind: ErrorKind::IncompleteSignature, .. }), "{:?}", log[0]);
    // The body limit still comes first: a huge unsigned body is refused unread.
    let r = raw_post(server.addr(), Some("secretsmanager.GetSecretValue"), &vec![b'a'; 3 * 1024 * 1024]).await;
    assert_eq!(r.status, 413);
}

/// Replaces the request body after the SDK signed it (same length, so Content-Length holds).
#[derive(Debug)]
struct TamperBody;

impl Intercept for TamperBody {
    fn name(&self) -> &'static str {
        "TamperBody"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.request().body().bytes().expect("an in-memory body").to_vec();
        let tampered = String::from_utf8(body).unwrap().replace("\"original\"", "\"tampered\"");
        *context.request_mut().body_mut() = tampered.into_bytes().into();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_changed_after_signing_is_refused_before_any_hook_or_the_model() {
    let (emu, server) = verifying().await;
    let endpoint = server.endpoint();
    // A hook that would answer the key's first call with a throttle.
    emu.set_hook(KEY, Arc::new(FaultPlan::new([(1, None, Fault::throttle())])));

    let tamperer = aws_sdk_secretsmanager::Client::from_conf(config(&endpoint, KEY, SECRET).interceptor(TamperBody).build());
    let e = tamperer.create_secret().name("original").secret_string("x").send().await.expect_err("refused").into_service_error();
    assert_eq!(e.code(), Some("InvalidSignatureException"), "{e:?}");
    {
        let model = emu.model().lock().unwrap();
        assert!(model.secret("original").is_none() && model.secret("tampered").is_none());
    }
    let log = emu.log().calls(KEY);
    assert_eq!(log.len(), 1);
    assert!(matches!(&log[0].outcome, CallOutcome::Rejected { kind: ErrorKind::InvalidSignatureException, .. }), "{:?}", log[0]);

    // The hook did not see the refused call: the next, honest call is the one it throttles.
    let sm = client(&endpoint, KEY, SECRET);
    let e = sm.create_secret().name("original").secret_string("x").send().await.expect_err("throttled").into_service_error();
    assert_eq!(e.code(), Some("ThrottlingException"));
    sm.create_secret().name("original").secret_string("x").send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_verification_off_anything_is_accepted() {
    let (emu, server) = verifying().await;
    emu.verify_signatures(false);
    let endpoint = server.endpoint();
    client(&endpoint, KEY, "wrong").create_secret().name("a").secret_string("x").send().await.unwrap();
    client(&endpoint, "ANYONE", "anything").get_secret_value().secret_id("a").send().await.unwrap();
    let r = raw_post(server.addr(), Some("secretsmanager.GetRandomPassword"), b"{}").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // And a bare emulator does not check at all (the library default).
    let (_emu, bare) = emulator(8).await;
    client(&bare.endpoint(), "AKIDANY", "any").get_random_password().send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_calls_are_not_checked() {
    let (emu, _server) = verifying().await;
    let body = serde_json::json!({"Name": "by-the-service", "SecretString": "x"});
    emu.call("rotcheck-service", rotcheck_harness::model::Operation::CreateSecret, &body).unwrap();
    assert!(emu.model().lock().unwrap().secret("by-the-service").is_some());
}
