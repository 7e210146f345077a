//! `rotcheck serve`: the emulator as a standalone local Secrets Manager.
//!
//! It verifies SigV4 signatures against one credential pair, `test`/`test` unless told
//! otherwise (the pair moto and LocalStack users already export), so that code signing with
//! credentials it did not mean to use fails here as it would on AWS; `--no-verify-signatures`
//! accepts anything. Options come from the flags, then from the `[serve]` section of
//! `--config FILE` or `./rotcheck.toml`, then from the defaults.

use crate::{UsageError, config};
use clap::parser::ValueSource;
use rand::SeedableRng;
use rotcheck_harness::emulator::Emulator;
use rotcheck_harness::model::{Model, ModelConfig, SystemClock};
use rotcheck_harness::redact::Redactor;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The credentials `serve` accepts unless told otherwise.
const DEFAULT_KEY: &str = "test";

/// Options of `rotcheck serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 4566)]
    port: u16,
    /// Address to listen on. Anything but loopback lets other machines reach the emulator (a
    /// warning says so).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Region in the ARNs the emulator hands out.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id in the ARNs the emulator hands out.
    #[arg(long, default_value = "123456789012")]
    account: String,
    /// The access key id clients must sign with.
    #[arg(long, value_name = "ID", default_value = DEFAULT_KEY)]
    access_key_id: String,
    /// The secret access key clients must sign with (it is never printed unless it is `test`).
    #[arg(long, value_name = "KEY", default_value = DEFAULT_KEY)]
    secret_access_key: String,
    /// Accept every request, signed or not, with any credentials (as moto and LocalStack do).
    #[arg(long)]
    no_verify_signatures: bool,
    /// A rotcheck.toml whose [serve] section sets these options (default: ./rotcheck.toml, if
    /// there is one). Flags win over the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Where the secret access key came from, to name it in the banner without printing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretFrom {
    Default,
    Flag,
    File,
}

/// Serves until SIGINT (Ctrl-C) or SIGTERM.
pub async fn run(mut args: ServeArgs, matches: &clap::ArgMatches) -> Result<ExitCode, UsageError> {
    let (file, secret_from) = resolve(&mut args, matches)?;
    if args.account.len() != 12 || !args.account.chars().all(|c| c.is_ascii_digit()) {
        return Err(UsageError(format!("--account must be 12 digits, got {:?}", args.account)));
    }
    let id = &args.access_key_id;
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | ',' | '=')) {
        return Err(UsageError(format!(
            "--access-key-id {id:?} cannot be signed with: use letters and digits (AWS key ids look like AKIAIOSFODNN7EXAMPLE)"
        )));
    }
    if args.secret_access_key.is_empty() {
        return Err(UsageError("--secret-access-key is empty; give the secret key your clients sign with".into()));
    }
    let verify = !args.no_verify_signatures;
    let config = ModelConfig { region: args.region.clone(), account: args.account.clone(), ..ModelConfig::default() };
    // Under serve, passwords come from a CSPRNG seeded by the OS.
    let model = Model::new(config, Arc::new(SystemClock), Box::new(rand::rngs::StdRng::from_os_rng()));
    let emulator = Emulator::new(model, Redactor::new());
    emulator.verify_signatures(verify);
    // Nobody reads a call log under serve, and it would grow for as long as serve runs (see
    // benches/soak.rs): keep none.
    emulator.set_recording(false);
    emulator.add_credentials(id, &args.secret_access_key);
    emulator.set_signature_advice(format!(
        "rotcheck serve accepts access key id {id:?} signed with the secret access key it was started with (--access-key-id and --secret-access-key, or [serve] in rotcheck.toml; both are test by default); start rotcheck serve with --no-verify-signatures to accept any."
    ));
    let addr = SocketAddr::new(args.bind, args.port);
    let server = emulator.serve(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => UsageError(format!(
            "port {} is in use; pick another with --port N, or --port 0 for any free port",
            args.port
        )),
        _ => UsageError(format!("cannot listen on {addr}: {e}")),
    })?;
    if !args.bind.is_loopback() {
        eprintln!(
            "rotcheck serve: warning: listening on {}, not loopback: other machines can reach this emulator{}",
            args.bind,
            if verify { "" } else { ", and it accepts any credentials" }
        );
    }
    // A client cannot connect to 0.0.0.0 or [::]: point it at loopback instead.
    let mut reachable = server.addr();
    if reachable.ip().is_unspecified() {
        reachable.set_ip(if reachable.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) });
    }
    let endpoint = format!("http://{reachable}");
    let secret = match secret_from {
        _ if args.secret_access_key == DEFAULT_KEY => DEFAULT_KEY,
        SecretFrom::File => "<your serve.secret_access_key>",
        SecretFrom::Flag | SecretFrom::Default => "<your --secret-access-key>",
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rotcheck serve: Secrets Manager emulator listening at http://{}", server.addr());
    let _ = writeln!(out, "  export AWS_ENDPOINT_URL_SECRETS_MANAGER={endpoint}");
    let _ = writeln!(out, "  export AWS_REGION={} AWS_ACCESS_KEY_ID={id} AWS_SECRET_ACCESS_KEY={secret}", args.region);
    if verify {
        let _ = writeln!(
            out,
            "  credentials: signatures are verified; access key id {id} with its secret access key only (--no-verify-signatures accepts any)"
        );
    } else {
        let _ = writeln!(out, "  credentials: any access key id and secret key are accepted (signatures are not verified)");
    }
    if let Some(f) = &file {
        let _ = writeln!(out, "  configuration: {}", f.display());
    }
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    let _ = out.flush();
    drop(out);
    wait_for_signal().await;
    server.stop().await;
    // Not println!: a closed stdout (the reader went away) must not turn a clean stop into a panic.
    let _ = writeln!(std::io::stdout(), "rotcheck serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Fills what the command line left at its default from the `[serve]` section of the file, if
/// there is one; returns the file and where the secret key came from.
fn resolve(args: &mut ServeArgs, m: &clap::ArgMatches) -> Result<(Option<PathBuf>, SecretFrom), UsageError> {
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let mut secret_from = if given("secret_access_key") { SecretFrom::Flag } else { SecretFrom::Default };
    let Some(file) = config::find(args.config.as_deref(), None) else {
        return Ok((None, secret_from));
    };
    let c = config::Config::load(&file)?.serve;
    if !given("port")
        && let Some(p) = c.port
    {
        args.port = p;
    }
    if !given("bind")
        && let Some(b) = &c.bind
    {
        args.bind = b
            .parse()
            .map_err(|_| UsageError(format!("{}: serve.bind = {b:?} is not an IP address (e.g. \"127.0.0.1\")", file.display())))?;
    }
    if !given("access_key_id")
        && let Some(k) = c.access_key_id
    {
        args.access_key_id = k;
    }
    if !given("secret_access_key")
        && let Some(k) = c.secret_access_key
    {
        args.secret_access_key = k;
        secret_from = SecretFrom::File;
    }
    if !given("no_verify_signatures") && c.verify_signatures == Some(false) {
        args.no_verify_signatures = true;
    }
    Ok((Some(file), secret_from))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
