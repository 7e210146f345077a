//! Every operation and every error row of spec section 3, through aws-sdk-secretsmanager
//! against the running emulator.

mod common;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::RotationRulesType;
use common::{client, emulator, token};

const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:rotate";

/// The `__type` and message of an SDK error.
fn code<E: ProvideErrorMetadata>(e: &E) -> (String, String) {
    (e.code().unwrap_or("<none>").to_string(), e.message().unwrap_or("").to_string())
}

macro_rules! err {
    ($call:expr) => {{
        let e = $call.send().await.expect_err("the call must fail");
        let e = e.into_service_error();
        code(&e)
    }};
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn create_describe_get_and_their_errors() {
    let (_emu, server) = emulator(1).await;
    let sm = client(&server.endpoint(), "AKIDTEST1");
    let created = sm
        .create_secret()
        .name("app/db")
        .secret_string(r#"{"username":"app","password":"pw-1-long"}"#)
        .client_request_token(token('1'))
        .description("db creds")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-"));
    assert_eq!(created.version_id(), Some(token('1').as_str()));

    // Again with another token: ResourceExistsException.
    let (c, m) = err!(sm.create_secret().name("app/db").secret_string("x").client_request_token(token('2')));
    assert_eq!(c, "ResourceExistsException");
    assert_eq!(m, "The operation failed because the secret app/db already exists.");
    // Invalid name.
    let (c, _) = err!(sm.create_secret().name("bad name!").secret_string("x"));
    assert_eq!(c, "InvalidParameterException");

    // Describe by name, full ARN and partial ARN.
    for id in [
        "app/db".to_string(),
        arn.clone(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db".to_string(),
    ] {
        let d = sm.describe_secret().secret_id(&id).send().await.unwrap();
        assert_eq!(d.name(), Some("app/db"));
        assert_eq!(d.description(), Some("db creds"));
        assert_eq!(d.rotation_enabled(), None, "absent until rotation is configured");
        let stages = d.version_ids_to_stages().unwrap();
        assert_eq!(stages.get(&token('1')).unwrap(), &vec!["AWSCURRENT".to_string()]);
        assert!(d.created_date().is_some());
    }

    // GetSecretValue rows.
    let v = sm.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(v.secret_string(), Some(r#"{"username":"app","password":"pw-1-long"}"#));
    assert_eq!(v.version_stages(), &["AWSCURRENT".to_string()]);
    let (c, m) = err!(sm.get_secret_value().secret_id("nope"));
    assert_eq!((c.as_str(), m.as_str()), ("ResourceNotFoundException", "Secrets Manager can't find the specified secret."));
    let (c, m) = err!(sm.get_secret_value().secret_id("app/db").version_stage("shell"));
    assert_eq!(c, "ResourceNotFoundException");
    assert_eq!(m, "Secrets Manager can't find the specified secret value for staging label: shell");
    let (c, m) = err!(sm.get_secret_value().secret_id("app/db").version_id(token('9')));
    assert_eq!(c, "ResourceNotFoundException");
    assert!(m.contains(&token('9')));
    let (c, m) = err!(sm.get_secret_value().secret_id("app/db").version_id(token('1')).version_stage("AWSPENDING"));
    assert_eq!(c, "InvalidRequestException");
    assert_eq!(m, "You provided a VersionStage that is not associated to the provided VersionId.");
    let (c, _) = err!(sm.describe_secret().secret_id("nope"));
    assert_eq!(c, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread")]
async fn put_secret_value_rows() {
    let (_emu, server) = emulator(2).await;
    let sm = client(&server.endpoint(), "AKIDTEST2");
    sm.create_secret().name("s").secret_string("value-one").client_request_token(token('1')).send().await.unwrap();

    // Stages omitted: AWSCURRENT moves, AWSPREVIOUS follows.
    let p = sm.put_secret_value().secret_id("s").secret_string("value-two").client_request_token(token('2')).send().await.unwrap();
    assert_eq!(p.version_stages(), &["AWSCURRENT".to_string()]);
    let d = sm.describe_secret().secret_id("s").send().await.unwrap();
    let st = d.version_ids_to_stages().unwrap();
    assert_eq!(st[&token('1')], vec!["AWSPREVIOUS"]);
    assert_eq!(st[&token('2')], vec!["AWSCURRENT"]);

    // [AWSPENDING] leaves AWSCURRENT where it is.
    let p = sm
        .put_secret_value()
        .secret_id("s")
        .secret_string("value-three")
        .client_request_token(token('3'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(p.version_stages(), &["AWSPENDING".to_string()]);
    // Same token, same data: success, no change, the version's current labels echoed.
    let again = sm
        .put_secret_value()
        .secret_id("s")
        .secret_string("value-three")
        .client_request_token(token('3'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(again.version_id(), Some(token('3').as_str()));
    assert_eq!(again.version_stages(), &["AWSPENDING".to_string()]);
    // Same token, different data: ResourceExistsException.
    let (c, m) = err!(sm.put_secret_value().secret_id("s").secret_string("other").client_request_token(token('3')));
    assert_eq!(c, "ResourceExistsException");
    assert!(m.starts_with(&format!("You can't use ClientRequestToken {} because that value is already in use", token('3'))));
    // Neither value.
    let (c, _) = err!(sm.put_secret_value().secret_id("s").client_request_token(token('4')));
    assert_eq!(c, "InvalidRequestException");
    // Both values.
    let (c, _) = err!(sm.put_secret_value().secret_id("s").secret_string("a").secret_binary(Blob::new(vec![1])));
    assert_eq!(c, "InvalidParameterException");
    // Token too short (the Rust SDK does not check lengths client-side).
    let (c, m) = err!(sm.put_secret_value().secret_id("s").secret_string("a").client_request_token("short"));
    assert_eq!((c.as_str(), m.as_str()), ("InvalidParameterException", "ClientRequestToken must be 32-64 characters long."));
    // Unknown secret.
    let (c, _) = err!(sm.put_secret_value().secret_id("nope").secret_string("a"));
    assert_eq!(c, "ResourceNotFoundException");

    // Binary values round-trip as bytes.
    sm.put_secret_value()
        .secret_id("s")
        .secret_binary(Blob::new(vec![0u8, 255, 10, 13]))
        .client_request_token(token('5'))
        .send()
        .await
        .unwrap();
    let v = sm.get_secret_value().secret_id("s").send().await.unwrap();
    assert_eq!(v.secret_binary().unwrap().as_ref(), &[0u8, 255, 10, 13]);
    assert_eq!(v.secret_string(), None);

    // First value of an empty secret: AWSCURRENT is attached too.
    sm.create_secret().name("empty").send().await.unwrap();
    let p = sm
        .put_secret_value()
        .secret_id("empty")
        .secret_string("first-value")
        .client_request_token(token('6'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(sorted(p.version_stages().to_vec()), vec!["AWSCURRENT", "AWSPENDING"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn update_secret_version_stage_rows() {
    let (_emu, server) = emulator(3).await;
    let sm = client(&server.endpoint(), "AKIDTEST3");
    sm.create_secret().name("s").secret_string("value-one").client_request_token(token('1')).send().await.unwrap();
    sm.put_secret_value()
        .secret_id("s")
        .secret_string("value-two")
        .client_request_token(token('2'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();

    let (c, m) = err!(sm.update_secret_version_stage().secret_id("s").version_stage("AWSCURRENT").move_to_version_id(token('2')));
    assert_eq!(c, "InvalidParameterException");
    assert_eq!(
        m,
        format!("The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version {}, so you must explicitly reference that version in RemoveFromVersionId.", token('1'))
    );
    let (c, _) = err!(sm
        .update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token('2'))
        .remove_from_version_id(token('2')));
    assert_eq!(c, "InvalidParameterException");
    let (c, _) = err!(sm
        .update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token('8'))
        .remove_from_version_id(token('1')));
    assert_eq!(c, "InvalidParameterException");

    // The finishSecret move.
    sm.update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token('2'))
        .remove_from_version_id(token('1'))
        .send()
        .await
        .unwrap();
    let d = sm.describe_secret().secret_id("s").send().await.unwrap();
    let st = d.version_ids_to_stages().unwrap();
    assert_eq!(sorted(st[&token('2')].clone()), vec!["AWSCURRENT", "AWSPENDING"], "AWSPENDING stays on the target");
    assert_eq!(st[&token('1')], vec!["AWSPREVIOUS"]);

    // Remove a label: the version keeps only what is left; a version with none is deprecated.
    sm.update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSPREVIOUS")
        .remove_from_version_id(token('1'))
        .send()
        .await
        .unwrap();
    let d = sm.describe_secret().secret_id("s").send().await.unwrap();
    assert!(!d.version_ids_to_stages().unwrap().contains_key(&token('1')));
    let l = sm.list_secret_version_ids().secret_id("s").send().await.unwrap();
    assert_eq!(l.versions().len(), 1);
    let l = sm.list_secret_version_ids().secret_id("s").include_deprecated(true).send().await.unwrap();
    assert_eq!(l.versions().len(), 2);
    // Removing AWSCURRENT without moving it is refused (conservative choice, spec 3.4).
    let (c, _) = err!(sm.update_secret_version_stage().secret_id("s").version_stage("AWSCURRENT").remove_from_version_id(token('2')));
    assert_eq!(c, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_versions_paging() {
    let (_emu, server) = emulator(4).await;
    let sm = client(&server.endpoint(), "AKIDTEST4");
    sm.create_secret().name("s").secret_string("v0-value").send().await.unwrap();
    for i in 1..=5 {
        sm.put_secret_value().secret_id("s").secret_string(format!("v{i}-value")).send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut next = None;
    let mut pages = 0;
    loop {
        let page = sm
            .list_secret_version_ids()
            .secret_id("s")
            .include_deprecated(true)
            .max_results(2)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.versions().len() <= 2);
        seen.extend(page.versions().iter().map(|v| v.version_id().unwrap().to_string()));
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 6);
    let (c, _) = err!(sm.list_secret_version_ids().secret_id("s").next_token("bogus"));
    assert_eq!(c, "InvalidNextTokenException");
    let (c, _) = err!(sm.list_secret_version_ids().secret_id("s").max_results(101));
    assert_eq!(c, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_random_password_options() {
    let (_emu, server) = emulator(5).await;
    let sm = client(&server.endpoint(), "AKIDTEST5");
    let p = sm.get_random_password().send().await.unwrap();
    let pw = p.random_password().unwrap();
    assert_eq!(pw.chars().count(), 32);
    let p = sm
        .get_random_password()
        .password_length(64)
        .exclude_characters(":/@\"'\\")
        .exclude_punctuation(false)
        .include_space(true)
        .require_each_included_type(true)
        .send()
        .await
        .unwrap();
    let pw = p.random_password().unwrap();
    assert_eq!(pw.chars().count(), 64);
    assert!(!pw.chars().any(|c| ":/@\"'\\".contains(c)));
    let p = sm
        .get_random_password()
        .password_length(20)
        .exclude_numbers(true)
        .exclude_uppercase(true)
        .exclude_punctuation(true)
        .send()
        .await
        .unwrap();
    assert!(p.random_password().unwrap().chars().all(|c| c.is_ascii_lowercase()));
    let (c, _) = err!(sm.get_random_password().password_length(4097));
    assert_eq!(c, "InvalidParameterException");
    let (c, m) = err!(sm.get_random_password().password_length(3));
    assert_eq!((c.as_str(), m.as_str()), ("InvalidParameterException", "Password length is too short based on the required types."));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_and_cancel_rows() {
    let (emu, server) = emulator(6).await;
    let sm = client(&server.endpoint(), "AKIDTEST6");
    sm.create_secret().name("s").secret_string("value-one").client_request_token(token('1')).send().await.unwrap();
    // No Lambda configured or given.
    let (c, m) = err!(sm.rotate_secret().secret_id("s"));
    assert_eq!(c, "InvalidRequestException");
    assert!(m.contains("doesn't already have a Lambda function ARN configured"));
    let (c, _) = err!(sm.cancel_rotate_secret().secret_id("s"));
    assert_eq!(c, "InvalidRequestException");
    // Start a rotation: the placeholder has AWSPENDING and no value.
    let r = sm
        .rotate_secret()
        .secret_id("s")
        .client_request_token(token('2'))
        .rotation_lambda_arn(LAMBDA)
        .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version_id(), Some(token('2').as_str()));
    let d = sm.describe_secret().secret_id("s").send().await.unwrap();
    assert_eq!(d.rotation_enabled(), Some(true));
    assert_eq!(d.rotation_lambda_arn(), Some(LAMBDA));
    assert_eq!(d.rotation_rules().unwrap().automatically_after_days(), Some(30));
    assert!(d.next_rotation_date().is_some());
    assert_eq!(d.version_ids_to_stages().unwrap()[&token('2')], vec!["AWSPENDING"]);
    let (c, m) = err!(sm.get_secret_value().secret_id("s").version_id(token('2')).version_stage("AWSPENDING"));
    assert_eq!(c, "ResourceNotFoundException");
    assert_eq!(m, "Secrets Manager can't find the specified secret value for staging label: AWSPENDING");
    // A second rotation while AWSPENDING is elsewhere.
    let (c, m) = err!(sm.rotate_secret().secret_id("s").client_request_token(token('3')));
    assert_eq!((c.as_str(), m.as_str()), ("InvalidRequestException", "A previous rotation isn't complete. That rotation will be reattempted."));
    // Cancel names the pending version and turns rotation off; the label stays.
    let cancel = sm.cancel_rotate_secret().secret_id("s").send().await.unwrap();
    assert_eq!(cancel.version_id(), Some(token('2').as_str()));
    let d = sm.describe_secret().secret_id("s").send().await.unwrap();
    assert_eq!(d.rotation_enabled(), Some(false));
    assert_eq!(d.version_ids_to_stages().unwrap()[&token('2')], vec!["AWSPENDING"]);
    // Clean up and rotate with the stored Lambda; the function completes it.
    sm.update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSPENDING")
        .remove_from_version_id(token('2'))
        .send()
        .await
        .unwrap();
    sm.rotate_secret().secret_id("s").client_request_token(token('3')).send().await.unwrap();
    sm.put_secret_value()
        .secret_id("s")
        .secret_string("value-three")
        .client_request_token(token('3'))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    sm.update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token('3'))
        .remove_from_version_id(token('1'))
        .send()
        .await
        .unwrap();
    assert!(emu.model().lock().unwrap().complete_rotation("s", &token('3')).unwrap());
    let d = sm.describe_secret().secret_id("s").send().await.unwrap();
    assert!(d.last_rotated_date().is_some());
    assert_eq!(d.version_ids_to_stages().unwrap()[&token('3')], vec!["AWSCURRENT"]);
    // A test-only rotation: a temporary version holding a copy of AWSCURRENT, which the
    // service removes again when the test ends (here at once: serve has no function to call),
    // so it does not block the next rotation.
    sm.rotate_secret().secret_id("s").client_request_token(token('4')).rotate_immediately(false).send().await.unwrap();
    let listed = sm.list_secret_version_ids().secret_id("s").include_deprecated(true).send().await.unwrap();
    assert!(listed.versions().iter().any(|v| v.version_id() == Some(token('4').as_str())), "the test version existed");
    let (c, _) = err!(sm.get_secret_value().secret_id("s").version_stage("AWSPENDING"));
    assert_eq!(c, "ResourceNotFoundException", "its AWSPENDING label is gone");
    sm.rotate_secret().secret_id("s").client_request_token(token('5')).send().await.expect("the next rotation is not blocked");
    // Bad rotation rules.
    let (c, _) = err!(sm
        .rotate_secret()
        .secret_id("s")
        .rotation_rules(RotationRulesType::builder().automatically_after_days(0).build()));
    assert_eq!(c, "InvalidParameterException");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_and_restore_rows() {
    let (_emu, server) = emulator(7).await;
    let sm = client(&server.endpoint(), "AKIDTEST7");
    sm.create_secret().name("s").secret_string("value-one").send().await.unwrap();
    let (c, _) = err!(sm.delete_secret().secret_id("s").recovery_window_in_days(31));
    assert_eq!(c, "InvalidParameterException");
    let (c, _) = err!(sm.delete_secret().secret_id("s").recovery_window_in_days(7).force_delete_without_recovery(true));
    assert_eq!(c, "InvalidParameterException");
    let del = sm.delete_secret().secret_id("s").recovery_window_in_days(7).send().await.unwrap();
    assert!(del.deletion_date().is_some());
    // Scheduled for deletion: reads and writes are InvalidRequestException; describe works.
    let (c, m) = err!(sm.get_secret_value().secret_id("s"));
    assert_eq!(c, "InvalidRequestException");
    assert!(m.contains("marked for deletion"));
    let (c, _) = err!(sm.put_secret_value().secret_id("s").secret_string("x-value"));
    assert_eq!(c, "InvalidRequestException");
    let (c, _) = err!(sm.delete_secret().secret_id("s"));
    assert_eq!(c, "InvalidRequestException");
    let (c, _) = err!(sm.create_secret().name("s").secret_string("x-value"));
    assert_eq!(c, "InvalidRequestException");
    assert!(sm.describe_secret().secret_id("s").send().await.unwrap().deleted_date().is_some());
    sm.restore_secret().secret_id("s").send().await.unwrap();
    assert_eq!(sm.get_secret_value().secret_id("s").send().await.unwrap().secret_string(), Some("value-one"));
    sm.delete_secret().secret_id("s").force_delete_without_recovery(true).send().await.unwrap();
    let (c, _) = err!(sm.describe_secret().secret_id("s"));
    assert_eq!(c, "ResourceNotFoundException");
    let (c, _) = err!(sm.restore_secret().secret_id("s"));
    assert_eq!(c, "ResourceNotFoundException");
}
