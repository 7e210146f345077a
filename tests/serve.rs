//! `rotcheck serve` as a user runs it: it prints its endpoint, answers boto3 configured only
//! through AWS_ENDPOINT_URL_SECRETS_MANAGER, and stops cleanly on Ctrl-C (SIGINT).

mod common;

use common::python;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn serve_answers_boto3_and_stops_on_ctrl_c() {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let endpoint = first.split_whitespace().last().expect("endpoint on the first line").to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{first}");
    let mut banner = String::new();
    for _ in 0..4 {
        stdout.read_line(&mut banner).unwrap();
    }
    assert!(banner.contains("AWS_ENDPOINT_URL_SECRETS_MANAGER"), "{banner}");
    assert!(banner.contains("credentials"), "{banner}");

    let script = r#"
import boto3
sm = boto3.client("secretsmanager")
sm.create_secret(Name="from-boto3", SecretString="hello-serve")
assert sm.get_secret_value(SecretId="from-boto3")["SecretString"] == "hello-serve"
assert len(sm.get_random_password()["RandomPassword"]) == 32
print("ok")
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");

    let t = Instant::now();
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = wait_with_timeout(&mut child, Duration::from_secs(10)).expect("serve stops within 10 s of SIGINT");
    assert!(exit.success(), "exit status {exit:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    // The port is free again.
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("port released after stop");
}

#[test]
fn serve_bad_input_is_one_line_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for args in [vec!["serve", "--port", port.as_str()], vec!["serve", "--port", "0", "--account", "abc"]] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("rotcheck: error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = Command::new(BIN).args(["serve", "--port", "notaport"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
