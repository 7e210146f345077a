//! The calls a rotation function makes, through boto3 from Python, against the emulator: the
//! endpoint comes from the environment the way a function gets it, and every call lands in
//! the call log of the function's own access key.

mod common;

use common::{client, emulator, python, root, token};
use rotcheck_harness::model::Operation;

#[tokio::test(flavor = "multi_thread")]
async fn boto3_performs_a_rotation_against_the_emulator() {
    let (emu, server) = emulator(11).await;
    let service = client(&server.endpoint(), "AKIDSERVICE");
    let created = service
        .create_secret()
        .name("app/db")
        .secret_string(r#"{"engine":"postgres","host":"localhost","username":"app","password":"initial-pw-1"}"#)
        .client_request_token(token('1'))
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    service
        .rotate_secret()
        .secret_id(&arn)
        .client_request_token(token('2'))
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:rotate")
        .send()
        .await
        .unwrap();

    let out = tokio::process::Command::new(python())
        .arg(root().join("tests/python/rotation_calls.py"))
        .arg(&arn)
        .arg(token('2'))
        .env("SECRETS_MANAGER_ENDPOINT", server.endpoint())
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "AKIDPYTHONFN")
        .env("AWS_SECRET_ACCESS_KEY", "not-checked")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3 script failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim().lines().last(), Some("ok"));

    // End state through the Rust SDK.
    let d = service.describe_secret().secret_id(&arn).send().await.unwrap();
    let st = d.version_ids_to_stages().unwrap();
    assert!(st[&token('2')].contains(&"AWSCURRENT".to_string()));
    assert_eq!(st[&token('1')], vec!["AWSPREVIOUS"]);

    // The function's calls are in its own log, in order, and its values are redacted.
    let calls = emu.log().calls("AKIDPYTHONFN");
    let ops: Vec<Operation> = calls.iter().filter_map(|c| c.op).collect();
    assert_eq!(&ops[..5], &[
        Operation::DescribeSecret,
        Operation::GetSecretValue,
        Operation::GetSecretValue,
        Operation::GetRandomPassword,
        Operation::PutSecretValue,
    ]);
    let text = serde_json::to_string(&calls).unwrap();
    assert!(!text.contains("initial-pw-1"), "{text}");
    assert!(text.contains("<secret string of app/db:v1>"), "{text}");
    assert!(text.contains("<random password 1>"), "{text}");
    assert!(emu.log().calls("AKIDSERVICE").iter().all(|c| c.caller == "AKIDSERVICE"));
}
