//! The emulator at the HTTP level: bad input gets the AWS error shape (never a panic or a
//! dropped connection), faults behave as their names say, and the call log is per caller and
//! redacted.

mod common;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use common::{client, emulator, raw_post, raw_request, token};
use rotcheck_harness::emulator::{CallOutcome, Fault, FaultPlan};
use rotcheck_harness::model::{ErrorKind, Operation};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_aws_error_shape() {
    let (emu, server) = emulator(1).await;
    let addr = server.addr();
    let cases: Vec<(Option<&str>, &[u8], u16, &str)> = vec![
        (Some("secretsmanager.GetSecretValue"), b"{not json", 400, "SerializationException"),
        (Some("secretsmanager.GetSecretValue"), b"[1,2]", 400, "SerializationException"),
        (Some("secretsmanager.GetSecretValue"), br#"{"SecretId": 17}"#, 400, "SerializationException"),
        (Some("secretsmanager.GetRandomPassword"), br#"{"PasswordLength": "long"}"#, 400, "SerializationException"),
        (Some("secretsmanager.PutSecretValue"), br#"{"SecretId":"s","SecretBinary":"%%%"}"#, 400, "SerializationException"),
        (Some("secretsmanager.GetRandomPassword"), br#"{"PasswordLength": 99999999999}"#, 400, "InvalidParameterException"),
        (Some("secretsmanager.GetRandomPassword"), br#"{"PasswordLength": -1}"#, 400, "InvalidParameterException"),
        (Some("secretsmanager.GetSecretValue"), br#"{"SecretId": ""}"#, 400, "InvalidParameterException"),
        (Some("secretsmanager.GetSecretValue"), b"{}", 400, "InvalidParameterException"),
        (Some("secretsmanager.ListSecretVersionIds"), br#"{"SecretId":"s","MaxResults":0}"#, 400, "InvalidParameterException"),
        (Some("secretsmanager.UpdateSecretVersionStage"), br#"{"SecretId":"s","VersionStage":"","MoveToVersionId":"x"}"#, 400, "InvalidParameterException"),
        (Some("secretsmanager.GetSecretValue"), br#"{"SecretId":"nope"}"#, 400, "ResourceNotFoundException"),
        (Some("secretsmanager.DoSomethingElse"), b"{}", 400, "UnknownOperationException"),
        (Some("kms.Decrypt"), b"{}", 400, "UnknownOperationException"),
        (None, b"{}", 400, "UnknownOperationException"),
    ];
    for (target, body, status, kind) in cases {
        let r = raw_post(addr, target, body).await;
        assert_eq!(r.status, status, "{target:?} {}", String::from_utf8_lossy(body));
        let j = r.json();
        assert_eq!(j["__type"], kind, "{target:?} {}: {}", String::from_utf8_lossy(body), r.body);
        assert!(j["Message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    }
    // A huge body is refused, not buffered.
    let big = vec![b'a'; 3 * 1024 * 1024];
    let r = raw_post(addr, Some("secretsmanager.GetSecretValue"), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["__type"], "SerializationException");
    // Another path or method.
    let r = raw_request(addr, format!("GET /x HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["__type"], "UnknownOperationException");
    // Garbage that is not HTTP does not bring the server down.
    let _ = raw_request(addr, b"\x00\x01\x02 garbage\r\n\r\n").await;
    let r = raw_post(addr, Some("secretsmanager.GetRandomPassword"), b"{}").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["RandomPassword"].as_str().unwrap().len(), 32);
    // Unknown targets are logged as rejected.
    let log = emu.log().calls("-");
    assert!(log.iter().any(|c| c.op.is_none() && matches!(c.outcome, CallOutcome::Rejected { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn success_responses_leave_absent_fields_out() {
    let (_emu, server) = emulator(2).await;
    let r = raw_post(server.addr(), Some("secretsmanager.CreateSecret"), br#"{"Name":"s"}"#).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert!(j.get("VersionId").is_none(), "{j}");
    let r = raw_post(server.addr(), Some("secretsmanager.DescribeSecret"), br#"{"SecretId":"s"}"#).await;
    let j = r.json();
    for absent in ["RotationEnabled", "RotationLambdaARN", "LastRotatedDate", "DeletedDate", "Description", "KmsKeyId"] {
        assert!(j.get(absent).is_none(), "{absent} in {j}");
    }
    assert!(j["CreatedDate"].is_number(), "epoch seconds: {j}");
    assert!(!r.body.contains("null"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_error_is_not_applied() {
    let (emu, server) = emulator(3).await;
    let sm = client(&server.endpoint(), "AKIDFAULT1");
    sm.create_secret().name("s").secret_string("first-value").client_request_token(token('1')).send().await.unwrap();
    emu.set_hook("AKIDFAULT1", Arc::new(FaultPlan::new([(1, Some(Operation::PutSecretValue), Fault::throttle())])));
    let e = sm
        .put_secret_value()
        .secret_id("s")
        .secret_string("second-value")
        .client_request_token(token('2'))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("ThrottlingException"));
    assert!(emu.model().lock().unwrap().secret("s").unwrap().version(&token('2')).is_none());
    // The next put goes through.
    sm.put_secret_value().secret_id("s").secret_string("second-value").client_request_token(token('2')).send().await.unwrap();
    let log = emu.log().take("AKIDFAULT1");
    let puts: Vec<_> = log.iter().filter(|c| c.op == Some(Operation::PutSecretValue)).collect();
    assert_eq!(puts.len(), 2);
    assert!(matches!(&puts[0].outcome, CallOutcome::Error { kind: ErrorKind::ThrottlingException, injected: true, .. }));
    assert!(puts[1].applied());
    // Other callers are untouched by this caller's hook.
    let other = client(&server.endpoint(), "AKIDOTHER");
    other.get_secret_value().secret_id("s").send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn applied_then_dropped_changes_state_but_the_caller_sees_no_answer() {
    let (emu, server) = emulator(4).await;
    let sm = client(&server.endpoint(), "AKIDFAULT2");
    sm.create_secret().name("s").secret_string("first-value").client_request_token(token('1')).send().await.unwrap();
    // A plan counts the calls it sees from the moment it is installed: the put is the first.
    emu.set_hook("AKIDFAULT2", Arc::new(FaultPlan::new([(1, None, Fault::ApplyThenDrop)])));
    let e = sm
        .put_secret_value()
        .secret_id("s")
        .secret_string("second-value")
        .client_request_token(token('2'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().is_none(), "a dropped connection is not a service error: {e:?}");
    {
        let m = emu.model().lock().unwrap();
        let v = m.secret("s").unwrap().version(&token('2')).expect("the put was applied");
        assert_eq!(v.stages, vec!["AWSPENDING"]);
    }
    // The retry with the same token and value is idempotent.
    let p = sm
        .put_secret_value()
        .secret_id("s")
        .secret_string("second-value")
        .client_request_token(token('2'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(p.version_stages(), &["AWSPENDING".to_string()]);
    let log = emu.log().calls("AKIDFAULT2");
    assert!(matches!(&log[1].outcome, CallOutcome::Lost { applied: true, .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn applied_then_500_and_delay() {
    let (emu, server) = emulator(5).await;
    let sm = client(&server.endpoint(), "AKIDFAULT3");
    sm.create_secret().name("s").secret_string("first-value").client_request_token(token('1')).send().await.unwrap();
    emu.set_hook(
        "AKIDFAULT3",
        Arc::new(FaultPlan::new([
            (1, Some(Operation::PutSecretValue), Fault::ApplyThenFail),
            (1, Some(Operation::GetSecretValue), Fault::Delay(Duration::from_millis(300))),
        ])),
    );
    let e = sm
        .put_secret_value()
        .secret_id("s")
        .secret_string("second-value")
        .client_request_token(token('2'))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.code(), Some("InternalServiceError"));
    assert_eq!(emu.model().lock().unwrap().secret("s").unwrap().holder_id("AWSCURRENT"), Some(token('2').as_str()));
    let t = Instant::now();
    let v = sm.get_secret_value().secret_id("s").send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(v.secret_string(), Some("second-value"));
}

#[tokio::test(flavor = "multi_thread")]
async fn call_log_is_per_caller_and_redacted() {
    let (emu, server) = emulator(6).await;
    let a = client(&server.endpoint(), "AKIDCALLERA");
    let b = client(&server.endpoint(), "AKIDCALLERB");
    let secret = r#"{"username":"app","password":"Sup3r:Secret@Pass"}"#;
    a.create_secret().name("s").secret_string(secret).client_request_token(token('1')).send().await.unwrap();
    b.get_secret_value().secret_id("s").send().await.unwrap();
    let pw = b.get_random_password().send().await.unwrap().random_password().unwrap().to_string();
    // A put that fails still must not log its value.
    let _ = a.put_secret_value().secret_id("s").secret_string("Never-Stored-Value").client_request_token(token('1')).send().await;
    let la = emu.log().calls("AKIDCALLERA");
    let lb = emu.log().calls("AKIDCALLERB");
    assert_eq!(la.len(), 2);
    assert_eq!(lb.len(), 2);
    assert_eq!(la[0].op, Some(Operation::CreateSecret));
    assert_eq!(lb[0].op, Some(Operation::GetSecretValue));
    assert_eq!((lb[0].index, lb[1].index), (1, 2));
    let text = serde_json::to_string(&(la, lb)).unwrap();
    for leaked in ["Sup3r:Secret@Pass", "Never-Stored-Value", pw.as_str()] {
        assert!(!text.contains(leaked), "{leaked} leaked into the log: {text}");
    }
    assert!(text.contains("<secret string of s:v1>"), "{text}");
    assert!(text.contains("<unstored secret value>"), "{text}");
    assert!(text.contains("<random password 1>"), "{text}");
    // Taking a log drops it and restarts the caller's index.
    assert_eq!(emu.log().take("AKIDCALLERB").len(), 2);
    assert!(emu.log().calls("AKIDCALLERB").is_empty());
    b.get_random_password().send().await.unwrap();
    assert_eq!(emu.log().calls("AKIDCALLERB")[0].index, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_callers_are_served_in_parallel() {
    let (emu, server) = emulator(7).await;
    emu.set_hook("AKIDSLOW", Arc::new(FaultPlan::new([(1, None, Fault::Delay(Duration::from_millis(500)))])));
    let slow = client(&server.endpoint(), "AKIDSLOW");
    let fast = client(&server.endpoint(), "AKIDFAST");
    let slow_call = tokio::spawn(async move { slow.get_random_password().send().await.map(|_| Instant::now()) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fast.get_random_password().send().await.unwrap();
    let fast_done = Instant::now();
    let slow_done = slow_call.await.unwrap().unwrap();
    assert!(fast_done < slow_done, "a delayed caller must not block others");
    server.stop().await;
    // After stop, nothing listens.
}
