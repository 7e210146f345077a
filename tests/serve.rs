//! `rotcheck serve` as a user runs it: it prints its endpoint, answers boto3 configured only
//! through AWS_ENDPOINT_URL_SECRETS_MANAGER, and stops cleanly on Ctrl-C (SIGINT). It verifies
//! signatures against `test`/`test` unless told otherwise (flags or `[serve]` in rotcheck.toml),
//! and listens on loopback unless `--bind` says otherwise.

mod common;

use common::python;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    assert!(banner.contains("AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"), "{banner}");
    assert!(banner.contains("credentials: signatures are verified"), "{banner}");

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
    for args in [
        vec!["serve", "--port", port.as_str()],
        vec!["serve", "--port", "0", "--account", "abc"],
        vec!["serve", "--port", "0", "--access-key-id", "a/b"],
        vec!["serve", "--port", "0", "--secret-access-key", ""],
        vec!["serve", "--port", "0", "--config", "/nonexistent/rotcheck.toml"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("rotcheck: error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    for bad in [["--port", "notaport"], ["--bind", "localhost:1"]] {
        let out = Command::new(BIN).arg("serve").args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// A running `rotcheck serve`: its endpoint and the banner it printed.
struct Serve {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    endpoint: String,
    banner: String,
}

impl Serve {
    fn start(args: &[&str], dir: &Path) -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        while !banner.contains("Press Ctrl-C") {
            assert!(stdout.read_line(&mut banner).unwrap() > 0, "serve ended: {banner}");
        }
        let endpoint = banner
            .lines()
            .find_map(|l| l.strip_prefix("  export AWS_ENDPOINT_URL_SECRETS_MANAGER="))
            .expect("the endpoint")
            .to_string();
        Serve { child, stdout, endpoint, banner }
    }

    /// boto3's GetRandomPassword signed with `key`/`secret`, against `endpoint`: "ok" or
    /// "<error code>|<message>".
    fn boto3(&self, endpoint: &str, key: &str, secret: &str) -> String {
        let script = r#"
import boto3, botocore.exceptions, sys
sm = boto3.client("secretsmanager", aws_access_key_id=sys.argv[1], aws_secret_access_key=sys.argv[2])
try:
    sm.get_random_password()
    print("ok")
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"] + "|" + e.response["Error"]["Message"])
"#;
        let out = Command::new(python())
            .args(["-c", script, key, secret])
            .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops it (SIGINT) and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let exit = wait_with_timeout(&mut self.child, Duration::from_secs(10)).expect("serve stops on SIGINT");
        assert!(exit.success(), "{exit:?}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        assert!(rest.contains("stopped"), "{rest}");
        let mut err = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        err
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn here() -> std::path::PathBuf {
    std::env::temp_dir()
}

#[test]
fn serve_refuses_other_credentials_with_aws_errors_that_say_what_it_accepts() {
    let serve = Serve::start(&[], &here());
    let endpoint = serve.endpoint.clone();
    assert_eq!(serve.boto3(&endpoint, "test", "test"), "ok");
    let wrong = serve.boto3(&endpoint, "test", "not-test");
    let (code, message) = wrong.split_once('|').unwrap_or((&wrong, ""));
    assert_eq!(code, "InvalidSignatureException", "{wrong}");
    assert!(message.contains("access key id \"test\""), "{message}");
    assert!(message.contains("--no-verify-signatures"), "{message}");
    let unknown = serve.boto3(&endpoint, "AKIDNOTISSUED", "test");
    assert!(unknown.starts_with("UnrecognizedClientException|"), "{unknown}");
    assert!(unknown.contains("--no-verify-signatures"), "{unknown}");
    serve.stop();
}

#[test]
fn serve_with_no_verify_signatures_accepts_anything() {
    let serve = Serve::start(&["--no-verify-signatures"], &here());
    assert!(serve.banner.contains("signatures are not verified"), "{}", serve.banner);
    let endpoint = serve.endpoint.clone();
    assert_eq!(serve.boto3(&endpoint, "test", "test"), "ok");
    assert_eq!(serve.boto3(&endpoint, "anyone", "anything"), "ok");
    serve.stop();
}

#[test]
fn serve_reads_its_credentials_from_flags_or_rotcheck_toml_and_never_prints_the_secret() {
    let dir = std::env::temp_dir().join(format!("rotcheck-serve-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rotcheck.toml"), "[serve]\naccess_key_id = \"AKIDFROMFILE\"\nsecret_access_key = \"file-secret-0123\"\n").unwrap();

    // From the file in the current directory.
    let serve = Serve::start(&[], &dir);
    assert!(serve.banner.contains("AWS_ACCESS_KEY_ID=AKIDFROMFILE"), "{}", serve.banner);
    assert!(serve.banner.contains("AWS_SECRET_ACCESS_KEY=<your serve.secret_access_key>"), "{}", serve.banner);
    assert!(serve.banner.contains("configuration: rotcheck.toml"), "{}", serve.banner);
    let endpoint = serve.endpoint.clone();
    assert_eq!(serve.boto3(&endpoint, "AKIDFROMFILE", "file-secret-0123"), "ok");
    assert!(serve.boto3(&endpoint, "test", "test").starts_with("UnrecognizedClientException|"));
    let wrong = serve.boto3(&endpoint, "AKIDFROMFILE", "test");
    assert!(wrong.starts_with("InvalidSignatureException|") && wrong.contains("AKIDFROMFILE"), "{wrong}");
    assert!(!wrong.contains("file-secret-0123"), "{wrong}");
    let err = serve.stop();
    assert!(!err.contains("file-secret-0123"), "{err}");

    // Flags win over the file.
    let serve = Serve::start(&["--access-key-id", "AKIDFLAG", "--secret-access-key", "flag-secret-4567"], &dir);
    assert!(serve.banner.contains("AWS_ACCESS_KEY_ID=AKIDFLAG AWS_SECRET_ACCESS_KEY=<your --secret-access-key>"), "{}", serve.banner);
    assert!(!serve.banner.contains("flag-secret-4567") && !serve.banner.contains("file-secret-0123"), "{}", serve.banner);
    let endpoint = serve.endpoint.clone();
    assert_eq!(serve.boto3(&endpoint, "AKIDFLAG", "flag-secret-4567"), "ok");
    assert!(serve.boto3(&endpoint, "AKIDFROMFILE", "file-secret-0123").starts_with("UnrecognizedClientException|"));
    serve.stop();

    // verify_signatures = false in the file, and --config naming another file.
    let other = dir.join("other.toml");
    std::fs::write(&other, "[serve]\nverify_signatures = false\n").unwrap();
    let serve = Serve::start(&["--config", other.to_str().unwrap()], &here());
    let endpoint = serve.endpoint.clone();
    assert_eq!(serve.boto3(&endpoint, "anyone", "anything"), "ok");
    serve.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_listens_on_loopback_unless_bound_elsewhere() {
    // 127.0.0.2 is this machine too, but not the address serve binds by default.
    let serve = Serve::start(&[], &here());
    let port = serve.endpoint.rsplit(':').next().unwrap().to_string();
    assert!(std::net::TcpStream::connect(("127.0.0.2", port.parse::<u16>().unwrap())).is_err(), "reachable on 127.0.0.2");
    assert_eq!(serve.boto3(&serve.endpoint, "test", "test"), "ok");
    let err = serve.stop();
    assert!(!err.contains("warning"), "{err}");

    let serve = Serve::start(&["--bind", "0.0.0.0"], &here());
    assert!(serve.banner.starts_with("rotcheck serve: Secrets Manager emulator listening at http://0.0.0.0:"), "{}", serve.banner);
    assert!(serve.endpoint.starts_with("http://127.0.0.1:"), "{}", serve.endpoint);
    let port = serve.endpoint.rsplit(':').next().unwrap().to_string();
    assert_eq!(serve.boto3(&format!("http://127.0.0.2:{port}"), "test", "test"), "ok");
    let err = serve.stop();
    assert!(err.contains("warning: listening on 0.0.0.0, not loopback"), "{err}");
}
