//! The rotcheck command line.
//!
//! Exit codes: 0 when everything held, 1 when a violation was found in the function under
//! test, 2 when rotcheck itself could not run (bad input, missing tools); the last is always
//! one line on stderr that says what to do.

/// mimalloc rather than glibc's malloc: tokio moves tasks between threads, so memory is often
/// freed on another thread than the one that allocated it, and glibc's arena locks then made
/// malloc a fifth of the emulator's time under load (benches/emulator.rs, perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

mod check;
mod config;
mod doctor;
mod init;
mod interrupt;
mod scenario;
mod serve;

/// Property-based conformance tests for AWS Secrets Manager rotation functions.
#[derive(Debug, Parser)]
#[command(name = "rotcheck", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a rotation function against generated schedules: retries, duplicates, crashes,
    /// faults, awkward usernames and passwords, rotation after rotation.
    Check(check::CheckArgs),
    /// Replay a scenario file (a counterexample or a regression) once, with its story.
    Replay(scenario::ReplayArgs),
    /// Run scenario files and compare their traces with snapshots.
    Scenario(scenario::ScenarioArgs),
    /// Run rotcheck's Secrets Manager emulator on its own, as a local Secrets Manager.
    Serve(serve::ServeArgs),
    /// Write a commented rotcheck.toml for a function (detects runtime, handler, engine).
    Init(init::InitArgs),
    /// Check what rotcheck needs on this machine and say how to fix what is missing.
    Doctor(doctor::DoctorArgs),
}

/// An error of rotcheck itself (not of the function under test): printed as one line, exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let sub = matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            // The server's notices (a backend that ended before rotcheck terminated it) are
            // not the user's concern.
            tracing_subscriber::EnvFilter::try_from_env("ROTCHECK_LOG").unwrap_or_else(|_| "warn,sqlx::postgres::notice=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(UsageError(format!("cannot start the async runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => check::run(args, &sub).await,
            // Dropping a replay stops its function processes and database server.
            Command::Replay(args) => stoppable(scenario::replay(args)).await,
            Command::Scenario(args) => stoppable(scenario::run(args)).await,
            Command::Serve(args) => serve::run(args, &sub).await,
            Command::Init(args) => init::run(args),
            Command::Doctor(args) => doctor::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// Runs a command that starts servers and processes until it ends or a signal arrives; on a
/// signal the command is dropped (which stops what it started) and the exit code is 2.
async fn stoppable(command: impl std::future::Future<Output = Result<ExitCode, UsageError>>) -> Result<ExitCode, UsageError> {
    let interrupt = interrupt::Interrupt::install(None);
    match interrupt.guard(command).await {
        Some(result) => result,
        None => Err(UsageError(format!(
            "{}: stopped; every process, server and temp dir it started is gone",
            interrupt.reason().unwrap_or_default()
        ))),
    }
}

fn fail(e: UsageError) -> ExitCode {
    eprintln!("rotcheck: error: {e}");
    ExitCode::from(2)
}
