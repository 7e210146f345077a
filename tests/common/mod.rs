//! Test support shared by the integration tests: an emulator on a free port, SDK clients that
//! talk to it, raw HTTP for malformed input, and the Python venv the test command creates.

#![allow(dead_code)]

pub mod world;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use rotcheck_harness::emulator::{Emulator, Server};
use rotcheck_harness::model::Model;
use rotcheck_harness::redact::Redactor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A seeded emulator serving on 127.0.0.1 with a free port.
pub async fn emulator(seed: u64) -> (Arc<Emulator>, Server) {
    let emulator = Emulator::new(Model::seeded(seed), Redactor::new());
    let server = emulator.serve("127.0.0.1:0".parse().unwrap()).await.expect("emulator binds");
    (emulator, server)
}

/// An SDK client for `endpoint`, signing with access key `key`, with retries off so that
/// every call is one request.
pub fn client(endpoint: &str, key: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, "secret-key-for-tests", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `body` to `POST /` with `X-Amz-Target: <target>` (when given) over a fresh connection.
pub async fn raw_post(addr: SocketAddr, target: Option<&str>, body: &[u8]) -> Raw {
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = target {
        head.push_str(&format!("X-Amz-Target: {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    raw_request(addr, &req).await.expect("the emulator answers")
}

/// Writes raw bytes, reads the answer to EOF. `None` when nothing listens or the connection
/// closed without a response.
pub async fn raw_request(addr: SocketAddr, bytes: &[u8]) -> Option<Raw> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(bytes).await.ok()?;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    if buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    Some(Raw { status, headers, body: body.to_string() })
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the test venv (boto3, moto[server]). The test command (`scripts/test.sh`)
/// creates it and exports ROTCHECK_TEST_PYTHON; a missing venv is a failure, not a skip.
pub fn python() -> PathBuf {
    let p = std::env::var_os("ROTCHECK_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/test-venv/bin/python"));
    assert!(
        p.exists(),
        "the test venv is missing at {}; run ./scripts/test.sh, which creates it",
        p.display()
    );
    p
}

/// A fixed 36-character token built from a digit, so tests read well.
pub fn token(d: char) -> String {
    std::iter::repeat_n(d, 8).chain(std::iter::once('-')).chain(std::iter::repeat_n(d, 27)).collect()
}
