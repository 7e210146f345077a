//! Emulator throughput for the call mix of a rotation, against moto server, in one run (issue 8,
//! benchmark 1). Both servers are driven by the same Rust load client (aws-sdk-secretsmanager,
//! signed requests, retries off, 8 requests in flight) with exactly the same sequence of calls:
//! request n is operation n mod 6 of DescribeSecret, GetSecretValue(VersionStage=AWSCURRENT),
//! GetSecretValue(VersionId), PutSecretValue(new ClientRequestToken), UpdateSecretVersionStage
//! (a custom label BENCH moved between two known versions), GetRandomPassword, on secret
//! (n / 6) mod S. The setup (not timed) gives each secret an initial version, a second one
//! holding BENCH, and a third holding AWSCURRENT. Prints calls, calls/s, p50/p99 latency,
//! errors and CPU time for each server and the ratio against the target (rotcheck at least
//! 20x moto's calls per second); asserts nothing on time.
//!
//!     cargo bench --bench emulator              # 10 s per server
//!     cargo bench --bench emulator -- 20        # another duration, in seconds
//!
//! rotcheck's emulator runs in-process as `rotcheck serve` runs it (system clock, signatures
//! verified, no call log kept); moto server (`python -m moto.server`) runs from the test venv
//! ($ROTCHECK_TEST_PYTHON, else target/test-venv/bin/python, made by scripts/test.sh) and is
//! killed when the bench ends, also on a panic.

// The allocator `rotcheck serve` and `rotcheck check` run with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rotcheck_harness::emulator::Emulator;
use rotcheck_harness::model::{Model, ModelConfig, SystemClock};
use rotcheck_harness::redact::Redactor;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IN_FLIGHT: usize = 8;
const WARM_UP: u64 = 200;
const TARGET_RATIO: f64 = 20.0;
const LABEL: &str = "BENCH";
const OPS: [&str; 6] = [
    "DescribeSecret",
    "GetSecretValue(stage)",
    "GetSecretValue(version)",
    "PutSecretValue",
    "UpdateSecretVersionStage",
    "GetRandomPassword",
];

// ---------------------------------------------------------------------------------------------
// The servers

/// moto server on a free loopback port; killed (and reaped) when dropped, unwinding included.
struct MotoServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv_python() -> PathBuf {
    let p = std::env::var_os("ROTCHECK_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"));
    assert!(p.exists(), "no Python venv with moto at {}; run ./scripts/test.sh, which creates it", p.display());
    p
}

/// `POST /moto-api/reset`: answers 200 once moto serves, and empties its state.
async fn moto_reset(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let status_line = String::from_utf8_lossy(&buf).lines().next()?.to_string();
        Some(status_line.split_whitespace().nth(1) == Some("200"))
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Some(true)))
}

async fn start_moto() -> MotoServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(venv_python())
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto server starts (moto[server] in the test venv)");
    let moto = MotoServer { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
    let started = Instant::now();
    while !moto_reset(moto.addr).await {
        assert!(started.elapsed() < Duration::from_secs(60), "moto server did not come up on {}", moto.addr);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    moto
}

// ---------------------------------------------------------------------------------------------
// The load client

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

fn secret_name(s: u64) -> String {
    format!("bench/{s}")
}

/// The versions of secret `s` that the setup creates: `which` 0 (the initial one, AWSPREVIOUS
/// after the setup) and 1 (holds BENCH at the start) are the known versions the mix reads and
/// moves BENCH between; 2 holds AWSCURRENT after the setup.
fn known_version(s: u64, which: u64) -> String {
    format!("{:08x}-0000-4000-a000-{s:012x}", 0xbe00_0000u64 + which)
}

/// The ClientRequestToken of request `n`'s PutSecretValue.
fn put_token(n: u64) -> String {
    format!("be7c0000-0000-4000-8000-{n:012x}")
}

fn error_name<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> String {
    match e.code() {
        Some(code) => code.to_string(),
        None => {
            let mut s = DisplayErrorContext(&e).to_string();
            s.truncate(160);
            s
        }
    }
}

/// Creates secret `s` with its two known versions, the initial one and a second one holding
/// only BENCH, and a third version that holds AWSCURRENT.
async fn set_up_secret(c: &Client, s: u64) -> Result<(), String> {
    let value = serde_json::json!({"engine": "postgres", "host": "db", "port": 5432, "username": format!("app{s}"), "password": "initial-password-0123456789"});
    c.create_secret()
        .name(secret_name(s))
        .client_request_token(known_version(s, 0))
        .secret_string(value.to_string())
        .send()
        .await
        .map_err(|e| format!("CreateSecret: {}", error_name(e)))?;
    c.put_secret_value()
        .secret_id(secret_name(s))
        .client_request_token(known_version(s, 1))
        .secret_string(value.to_string())
        .version_stages(LABEL)
        .send()
        .await
        .map_err(|e| format!("PutSecretValue(BENCH): {}", error_name(e)))?;
    // A third version takes AWSCURRENT. In moto the version that last received AWSCURRENT by
    // a put is its internal "default" one (spec section 6 item 14), whose labels the next put
    // overwrites with [AWSPREVIOUS]: were that version 0 while BENCH is moved onto it (the
    // first put and the first move of a secret are in flight together), moto would drop BENCH
    // and the next move would fail. With this put, neither known version is moto's default.
    c.put_secret_value()
        .secret_id(secret_name(s))
        .client_request_token(known_version(s, 2))
        .secret_string(value.to_string())
        .send()
        .await
        .map_err(|e| format!("PutSecretValue: {}", error_name(e)))?;
    Ok(())
}

/// Request `n` of the mix, over `secrets` secrets.
async fn request(c: &Client, n: u64, secrets: u64) -> Result<(), String> {
    let round = n / 6;
    let s = round % secrets;
    // How many times this operation has been asked of this secret before: it decides which
    // known version is read, and where BENCH is.
    let k = round / secrets;
    let id = secret_name(s);
    match n % 6 {
        0 => c.describe_secret().secret_id(id).send().await.map(drop).map_err(error_name),
        1 => c.get_secret_value().secret_id(id).version_stage("AWSCURRENT").send().await.map(drop).map_err(error_name),
        2 => c.get_secret_value().secret_id(id).version_id(known_version(s, k % 2)).send().await.map(drop).map_err(error_name),
        3 => {
            let value = serde_json::json!({"engine": "postgres", "host": "db", "port": 5432, "username": format!("app{s}"), "password": format!("bench-password-{n:012}")});
            c.put_secret_value()
                .secret_id(id)
                .client_request_token(put_token(n))
                .secret_string(value.to_string())
                .send()
                .await
                .map(drop)
                .map_err(error_name)
        }
        4 => {
            // BENCH starts on version 1; the k-th move takes it to version k mod 2.
            let (from, to) = (known_version(s, (k + 1) % 2), known_version(s, k % 2));
            c.update_secret_version_stage()
                .secret_id(id)
                .version_stage(LABEL)
                .remove_from_version_id(from)
                .move_to_version_id(to)
                .send()
                .await
                .map(drop)
                .map_err(error_name)
        }
        _ => c
            .get_random_password()
            .password_length(32)
            .exclude_characters("/@\"'\\")
            .send()
            .await
            .map(drop)
            .map_err(error_name),
    }
}

#[derive(Default)]
struct Stats {
    calls: u64,
    elapsed: Duration,
    /// Microseconds, per operation.
    latencies: [Vec<u32>; 6],
    /// (operation, error) -> count.
    errors: BTreeMap<(usize, String), u64>,
    /// CPU seconds (user + system) during the measured phase: this process (load client, and
    /// for rotcheck the emulator too), and the moto server's process.
    cpu_bench: f64,
    cpu_moto: f64,
}

impl Stats {
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
    fn all_latencies(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.latencies.iter().flatten().copied().collect();
        all.sort_unstable();
        all
    }
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// CPU seconds (user + system) that process `pid` ("self" for this one) has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<u64>() as f64 / hz
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// Until the request counter reaches `until_n` or `deadline` passes: `IN_FLIGHT` tasks each
/// take the next request number and play it. Returns the figures and the next request number.
async fn drive(c: &Client, secrets: u64, first_n: u64, until_n: Option<u64>, deadline: Option<Duration>) -> (Stats, u64) {
    let next = Arc::new(AtomicU64::new(first_n));
    let started = Instant::now();
    let end = deadline.map(|d| started + d);
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (c, next) = (c.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            loop {
                if end.is_some_and(|e| Instant::now() >= e) {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if until_n.is_some_and(|u| n >= u) {
                    break;
                }
                let t = Instant::now();
                let r = request(&c, n, secrets).await;
                let op = (n % 6) as usize;
                stats.latencies[op].push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                stats.calls += 1;
                if let Err(e) = r {
                    *stats.errors.entry((op, e)).or_default() += 1;
                }
            }
            stats
        }));
    }
    let mut total = Stats::default();
    for t in tasks {
        let s = t.await.expect("load task");
        total.calls += s.calls;
        for (all, mine) in total.latencies.iter_mut().zip(s.latencies) {
            all.extend(mine);
        }
        for (k, v) in s.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    total.elapsed = started.elapsed();
    // Requests taken by a task after the deadline or past until_n were not played.
    let played_to = first_n + total.calls;
    (total, played_to)
}

/// Sets up `secrets` secrets (8 at a time), warms up, and measures for `duration`. `moto_pid`
/// is the server's process when it is not this one.
async fn run(name: &str, endpoint: &str, secrets: u64, duration: Duration, moto_pid: Option<u32>) -> Stats {
    let c = client(endpoint);
    let t = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (c, next) = (c.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let s = next.fetch_add(1, Ordering::Relaxed);
                if s >= secrets {
                    return Ok::<(), String>(());
                }
                set_up_secret(&c, s).await.map_err(|e| format!("secret {s}: {e}"))?;
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await.expect("setup task") {
            panic!("{name}: setup failed: {e}");
        }
    }
    let setup = t.elapsed();
    let (warm, n) = drive(&c, secrets, 0, Some(WARM_UP), None).await;
    println!(
        "{name}: setup {secrets} secrets in {:.1} s ({:.0} calls/s), warm-up {} calls ({} errors) in {:.2} s",
        setup.as_secs_f64(),
        (3 * secrets) as f64 / setup.as_secs_f64(),
        warm.calls,
        warm.error_count(),
        warm.elapsed.as_secs_f64()
    );
    let moto_pid = moto_pid.map(|p| p.to_string());
    let moto_cpu = || moto_pid.as_deref().map(cpu_seconds).unwrap_or(0.0);
    let (bench0, moto0) = (cpu_seconds("self"), moto_cpu());
    let mut stats = drive(&c, secrets, n, None, Some(duration)).await.0;
    (stats.cpu_bench, stats.cpu_moto) = (cpu_seconds("self") - bench0, moto_cpu() - moto0);
    stats
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores (nproc), {model}, load average {}", load.join(" "))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds: u64 = std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(10);
    let duration = Duration::from_secs(seconds.max(1));
    // Every sixth call is a PutSecretValue, and each leaves one more deprecated version on
    // its secret; the emulator refuses a new version once a secret holds 100 deprecated
    // versions younger than 24 h (the AWS quota). 50 secrets per second of run keep that out
    // of reach up to about 29,000 calls/s.
    let secrets = 400.max(50 * seconds);

    println!("emulator throughput: the rotation call mix, rotcheck's emulator against moto server");
    println!("machine: {}", machine());
    println!(
        "load client: aws-sdk-secretsmanager, SigV4 (test/test), retries off, {IN_FLIGHT} requests in flight; \
         {secrets} secrets; warm-up {WARM_UP} calls; {seconds} s per server"
    );
    println!("mix, round-robin by request number: {}", OPS.join(", "));
    println!();

    let moto = start_moto().await;

    let model = Model::new(ModelConfig::default(), Arc::new(SystemClock), Box::new(StdRng::seed_from_u64(1)));
    let emulator = Emulator::new(model, Redactor::new());
    // As `rotcheck serve` runs it.
    emulator.verify_signatures(true);
    emulator.add_credentials("test", "test");
    emulator.set_recording(false);
    let server = emulator.serve("127.0.0.1:0".parse().unwrap()).await.expect("the emulator binds");

    let ours = run("rotcheck", &server.endpoint(), secrets, duration, None).await;
    server.stop().await;
    let theirs = run("moto", &format!("http://{}", moto.addr), secrets, duration, Some(moto.child.id())).await;
    drop(moto);

    println!();
    println!("{:<10} {:>9} {:>10} {:>9} {:>9} {:>8}", "server", "calls", "calls/s", "p50 ms", "p99 ms", "errors");
    for (name, s) in [("rotcheck", &ours), ("moto", &theirs)] {
        let all = s.all_latencies();
        println!(
            "{name:<10} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>8}",
            s.calls,
            s.rate(),
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            s.error_count()
        );
    }
    println!();
    println!("{:<26} {:>15} {:>15} {:>15} {:>15}", "p50 / p99 ms per call", "rotcheck p50", "rotcheck p99", "moto p50", "moto p99");
    for (op, name) in OPS.iter().enumerate() {
        let mut a = ours.latencies[op].clone();
        let mut b = theirs.latencies[op].clone();
        a.sort_unstable();
        b.sort_unstable();
        println!(
            "{name:<26} {:>15.2} {:>15.2} {:>15.2} {:>15.2}",
            percentile(&a, 0.5),
            percentile(&a, 0.99),
            percentile(&b, 0.5),
            percentile(&b, 0.99)
        );
    }
    for (name, s) in [("rotcheck", &ours), ("moto", &theirs)] {
        for ((op, e), count) in &s.errors {
            println!("error on {name}: {} x {count}: {e}", OPS[*op]);
        }
    }
    println!();
    println!("CPU during the measured phase (cores busy on average; CPU time per call):");
    let per = |cpu: f64, s: &Stats| format!("{:.2} cores, {:.0} us/call", cpu / s.elapsed.as_secs_f64(), cpu / s.calls as f64 * 1e6);
    println!("  rotcheck: bench process (load client + emulator) {}", per(ours.cpu_bench, &ours));
    println!("  moto:     moto server {}; bench process (load client) {}", per(theirs.cpu_moto, &theirs), per(theirs.cpu_bench, &theirs));
    let puts_per_secret = ours.calls.div_ceil(6).div_ceil(secrets);
    println!();
    println!("PutSecretValue per secret on rotcheck (after warm-up): about {puts_per_secret} (the version quota is 100)");
    let ratio = ours.rate() / theirs.rate();
    println!(
        "ratio rotcheck / moto: {ratio:.1}x calls/s (target at least {TARGET_RATIO:.0}x: {})",
        if ratio >= TARGET_RATIO { "met" } else { "NOT met" }
    );
}
