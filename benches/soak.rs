//! The soak: many rotations against the emulator the way `rotcheck serve` runs it (signatures
//! verified, no call log kept), with resident memory sampled every thousand rotations. A
//! long-lived emulator must not grow: the model prunes old versions once the injected clock
//! has moved past the retention window, and nothing else may accumulate per call.
//!
//!     cargo bench --bench soak                  # 10,000 rotations over 10 secrets
//!     cargo bench --bench soak -- 50000         # another count
//!     cargo bench --bench soak -- 10000 --record   # with the call log kept, as under `check`
//!
//! Each rotation is played over HTTP by aws-sdk-secretsmanager as Secrets Manager and a
//! rotation function would: RotateSecret, then createSecret (GetSecretValue AWSCURRENT,
//! GetRandomPassword, PutSecretValue AWSPENDING), setSecret and testSecret (GetSecretValue
//! AWSPENDING), finishSecret (DescribeSecret, UpdateSecretVersionStage AWSCURRENT), and the
//! service's removal of AWSPENDING; the clock moves on one hour. Exits 1 when resident memory
//! grew by 10% or more between the end of the first thousand rotations and the end of the run.

// The allocator `rotcheck serve` runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use rotcheck_harness::emulator::Emulator;
use rotcheck_harness::model::{ManualClock, Model, ModelConfig, Timestamp};
use rotcheck_harness::redact::Redactor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SECRETS: u64 = 10;
const ACCESS_KEY: &str = "AKIDSOAK";
const SECRET_KEY: &str = "soak-secret-key";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::v2026_01_12())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "soak"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One rotation of `id`, as the service and a correct single-user function play it.
async fn rotate(c: &aws_sdk_secretsmanager::Client, id: &str, token: &str) -> Result<()> {
    c.rotate_secret()
        .secret_id(id)
        .client_request_token(token)
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:soak")
        .send()
        .await?;
    // createSecret
    let current = c.get_secret_value().secret_id(id).version_stage("AWSCURRENT").send().await?;
    let password = c.get_random_password().password_length(32).exclude_characters("/@\"'\\").send().await?;
    let mut value: serde_json::Value = serde_json::from_str(current.secret_string().unwrap_or("{}"))?;
    value["password"] = serde_json::json!(password.random_password().unwrap_or_default());
    c.put_secret_value()
        .secret_id(id)
        .client_request_token(token)
        .secret_string(value.to_string())
        .version_stages("AWSPENDING")
        .send()
        .await?;
    // setSecret, testSecret
    for _ in 0..2 {
        c.get_secret_value().secret_id(id).version_id(token).version_stage("AWSPENDING").send().await?;
    }
    // finishSecret
    let described = c.describe_secret().secret_id(id).send().await?;
    let old = described
        .version_ids_to_stages()
        .and_then(|m| m.iter().find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT")).map(|(v, _)| v.clone()))
        .ok_or("no AWSCURRENT version")?;
    c.update_secret_version_stage()
        .secret_id(id)
        .version_stage("AWSCURRENT")
        .move_to_version_id(token)
        .remove_from_version_id(old)
        .send()
        .await?;
    // The service, after a successful rotation.
    c.update_secret_version_stage().secret_id(id).version_stage("AWSPENDING").remove_from_version_id(token).send().await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let total: u64 = std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let model = Model::new(ModelConfig::default(), clock.clone(), Box::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1)));
    let emulator = Emulator::new(model, Redactor::new());
    // As `rotcheck serve` runs it.
    emulator.verify_signatures(true);
    emulator.add_credentials(ACCESS_KEY, SECRET_KEY);
    // `-- --record` keeps the call log and the redactor's registrations, as `check` does per
    // case, to show what recording costs a process that never lets go of them.
    let record = std::env::args().any(|a| a == "--record");
    emulator.set_recording(record);
    let server = emulator.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = client(&server.endpoint());
    for s in 0..SECRETS {
        let value = serde_json::json!({"engine": "postgres", "host": "db", "port": 5432, "username": format!("app{s}"), "password": "initial-password-0123456789"});
        c.create_secret().name(format!("soak/{s}")).secret_string(value.to_string()).send().await.expect("CreateSecret");
    }
    println!("soak: {total} rotations over {SECRETS} secrets, clock +1 h per rotation round, call log {}", if record { "kept" } else { "off (as serve)" });
    println!("{:>10} {:>10} {:>12} {:>10}", "rotations", "RSS MiB", "rotations/s", "versions");
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut last = (Instant::now(), 0u64);
    let per_round = SECRETS;
    let mut n = 0u64;
    while n < total {
        // A round: every secret rotates once, concurrently.
        let mut tasks = Vec::new();
        for s in 0..SECRETS.min(total - n) {
            let (c, done) = (c.clone(), done.clone());
            let token = format!("{:08}-0000-4000-8000-{:012}", s, n + s);
            tasks.push(tokio::spawn(async move {
                rotate(&c, &format!("soak/{s}"), &token).await.map(|_| done.fetch_add(1, Ordering::Relaxed))
            }));
        }
        for t in tasks {
            if let Err(e) = t.await.expect("task") {
                eprintln!("soak: a rotation failed after {} rotations: {e:?}", done.load(Ordering::Relaxed));
                std::process::exit(2);
            }
        }
        n += per_round;
        clock.advance(Duration::from_secs(3600));
        if n.is_multiple_of(1000) || n >= total {
            let rss = rss_kib();
            let versions: usize = {
                let m = emulator.model().lock().unwrap();
                (0..SECRETS).filter_map(|s| m.secret(&format!("soak/{s}")).map(|x| x.versions.len())).sum()
            };
            let rate = (n - last.1) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), n);
            println!("{n:>10} {:>10.1} {rate:>12.0} {versions:>10}", rss as f64 / 1024.0);
            samples.push((n, rss));
        }
    }
    let elapsed = started.elapsed();
    server.stop().await;
    let first = samples.iter().find(|(n, _)| *n >= 1000).map(|s| s.1).unwrap_or(samples[0].1);
    let end = samples.last().unwrap().1;
    let growth = (end as f64 - first as f64) / first as f64 * 100.0;
    println!(
        "soak: {total} rotations ({} API calls) in {:.1} s; RSS {:.1} MiB after the first thousand, {:.1} MiB at the end: {growth:+.1}%",
        total * 9 + SECRETS,
        elapsed.as_secs_f64(),
        first as f64 / 1024.0,
        end as f64 / 1024.0
    );
    if growth >= 10.0 {
        println!("soak: FAILED: resident memory grew by 10% or more");
        std::process::exit(1);
    }
}
