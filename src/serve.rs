//! `rotcheck serve`: the emulator as a standalone local Secrets Manager.

use crate::UsageError;
use rand::SeedableRng;
use rotcheck_harness::emulator::Emulator;
use rotcheck_harness::model::{Model, ModelConfig, SystemClock};
use rotcheck_harness::redact::Redactor;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

/// Options of `rotcheck serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4566)]
    port: u16,
    /// Region in the ARNs the emulator hands out.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id in the ARNs the emulator hands out.
    #[arg(long, default_value = "123456789012")]
    account: String,
}

/// Serves until SIGINT (Ctrl-C) or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<ExitCode, UsageError> {
    if args.account.len() != 12 || !args.account.chars().all(|c| c.is_ascii_digit()) {
        return Err(UsageError(format!("--account must be 12 digits, got {:?}", args.account)));
    }
    let config = ModelConfig { region: args.region.clone(), account: args.account.clone(), ..ModelConfig::default() };
    // Under serve, passwords come from a CSPRNG seeded by the OS.
    let model = Model::new(config, Arc::new(SystemClock), Box::new(rand::rngs::StdRng::from_os_rng()));
    let emulator = Emulator::new(model, Redactor::new());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let server = emulator.serve(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => UsageError(format!(
            "port {} is in use; pick another with --port N, or --port 0 for any free port",
            args.port
        )),
        _ => UsageError(format!("cannot listen on {addr}: {e}")),
    })?;
    let endpoint = server.endpoint();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rotcheck serve: Secrets Manager emulator listening at {endpoint}");
    let _ = writeln!(out, "  export AWS_ENDPOINT_URL_SECRETS_MANAGER={endpoint}");
    let _ = writeln!(out, "  export AWS_REGION={} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test", args.region);
    let _ = writeln!(out, "  credentials: any access key id and secret key are accepted (signatures are not verified)");
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    let _ = out.flush();
    drop(out);
    wait_for_signal().await;
    server.stop().await;
    println!("rotcheck serve: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
