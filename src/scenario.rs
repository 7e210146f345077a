//! `rotcheck scenario run` and `rotcheck replay`: scenario files played once each, judged
//! against what they expect, and (with `--snapshots`) their normalised traces compared with
//! the ones accepted before.

use crate::UsageError;
use crate::check::{run_config, start};
use rotcheck_harness::database::Engine;
use rotcheck_harness::runner::{CaseResult, Runner};
use rotcheck_harness::scenario::{self, Scenario};
use rotcheck_harness::schedule::Strategy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `rotcheck scenario ...`
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    pub command: ScenarioCommand,
}

/// The scenario subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ScenarioCommand {
    /// Run scenario files (a file, or every *.yaml of a directory) and judge each against its
    /// `expect`; with --snapshots, also compare each normalised trace with the accepted one.
    Run(RunArgs),
}

/// Which function the scenarios run against, and where the database comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The function (default: the one each scenario names).
    #[arg(long)]
    pub function: Option<PathBuf>,
    /// The handler, as module.function.
    #[arg(long, default_value = "lambda_function.lambda_handler")]
    pub handler: String,
    /// The database engine of the function: postgres or mysql (default: the scenario's, else
    /// postgres).
    #[arg(long)]
    pub engine: Option<String>,
    /// How the function manages users: single-user or alternating-users (default: the
    /// scenario's, else single-user).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Where the database comes from: auto, docker, local, or an admin URL.
    #[arg(long, default_value = "auto")]
    pub db: String,
    /// The function's environment, KEY=VALUE (repeatable; a scenario's own setup.env wins).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Whole-rotation retries after a failed step (a scenario's own `retries:` wins).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// The function's timeout per step, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Options of `rotcheck scenario run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A scenario file or a directory of them.
    pub path: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// A directory of snapshots: each scenario's normalised trace is compared with
    /// <DIR>/<scenario>.snap, and a difference fails the run with a diff.
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
    /// With --snapshots: write the traces as the accepted snapshots instead of comparing.
    #[arg(long, requires = "snapshots")]
    pub update: bool,
    /// Print the story of every scenario, not only of a failure.
    #[arg(long)]
    pub verbose: bool,
}

/// Options of `rotcheck replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: Target,
}

/// The function, engine and strategy one scenario runs with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Subject {
    function: PathBuf,
    engine: Engine,
    strategy: Strategy,
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Postgres => "postgres",
        Engine::Mysql => "mysql",
    }
}

/// Who a scenario runs against: the flags first, then the scenario's own `function` and
/// `applies_to`, then the defaults. Under `scenario run`, a function given by flag is described
/// by the flags alone (`applies_to` then filters the scenarios); `replay` of one file takes the
/// file's engine and strategy unless told otherwise.
fn subject(t: &Target, s: &Scenario, path: &Path, filtering: bool) -> Result<Subject, UsageError> {
    let function = t.function.clone().or_else(|| s.function.as_ref().map(PathBuf::from)).ok_or_else(|| {
        UsageError(format!("{} names no function; pass --function <DIR>", path.display()))
    })?;
    let own = t.function.is_none() || !filtering;
    let engine = match &t.engine {
        Some(e) => Engine::parse(e).map_err(|e| UsageError(e.to_string()))?,
        None if own => s.applies_to.engine.unwrap_or(Engine::Postgres),
        None => Engine::Postgres,
    };
    let strategy = match &t.strategy {
        Some(x) => Strategy::parse(x).ok_or_else(|| UsageError(format!("unknown strategy {x:?}; use single-user or alternating-users")))?,
        None if own => s.applies_to.strategy.unwrap_or_default(),
        None => Strategy::default(),
    };
    Ok(Subject { function, engine, strategy })
}

async fn runner_for(t: &Target, who: &Subject, seed: u64) -> Result<Runner, UsageError> {
    let config = run_config(who.function.clone(), &t.handler, engine_name(who.engine), who.strategy.name(), Some(1), t.retries, t.timeout, &t.env)?;
    start(config, &t.db, seed).await
}

/// Plays one scenario on worker 0.
async fn play(runner: &Runner, index: u64, s: &Scenario) -> Result<CaseResult, UsageError> {
    let r = runner.run_case(0, index, s.seed, &s.schedule).await;
    if let Some(e) = &r.setup_error {
        return Err(UsageError(format!("scenario {:?}: the case could not be set up: {e}", s.name)));
    }
    Ok(r)
}

pub async fn replay(args: ReplayArgs) -> Result<ExitCode, UsageError> {
    let scenario = Scenario::load(&args.scenario).map_err(UsageError)?;
    let who = subject(&args.target, &scenario, &args.scenario, false)?;
    let runner = runner_for(&args.target, &who, scenario.seed).await?;
    println!("rotcheck replay {} against {}", args.scenario.display(), who.function.display());
    let r = play(&runner, 0, &scenario).await;
    runner.shutdown().await;
    let r = r?;
    println!("{}", r.story());
    let j = scenario.judge(&r);
    if j.as_expected() {
        println!("as expected: {}", j.got);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("NOT as expected: {}", j.mismatches.join("; "));
        Ok(ExitCode::from(1))
    }
}

pub async fn run(args: ScenarioArgs) -> Result<ExitCode, UsageError> {
    match args.command {
        ScenarioCommand::Run(a) => run_scenarios(a).await,
    }
}

async fn run_scenarios(args: RunArgs) -> Result<ExitCode, UsageError> {
    let scenarios = Scenario::load_all(&args.path).map_err(UsageError)?;
    if let Some(dir) = &args.snapshots {
        std::fs::create_dir_all(dir).map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Group by subject, so that each function gets one runner; keep the files' order inside.
    let mut groups: BTreeMap<Subject, Vec<(usize, &PathBuf, &Scenario)>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, (path, s)) in scenarios.iter().enumerate() {
        let who = subject(&args.target, s, path, true)?;
        if !s.applies_to.admits(who.strategy, who.engine) {
            skipped.push(format!("{} (applies to {})", file_stem(path), applies_text(s)));
            continue;
        }
        groups.entry(who).or_default().push((i, path, s));
    }
    let (mut passed, mut failed, mut snapshot_changes) = (0, 0, 0);
    for (who, list) in &groups {
        println!(
            "rotcheck scenario run: {} scenario(s) against {} ({}, {})",
            list.len(),
            who.function.display(),
            who.engine.name(),
            who.strategy.name()
        );
        let runner = runner_for(&args.target, who, 0).await?;
        for (i, path, s) in list {
            let r = match play(&runner, *i as u64, s).await {
                Ok(r) => r,
                Err(e) => {
                    runner.shutdown().await;
                    return Err(e);
                }
            };
            let j = s.judge(&r);
            let mut problems = j.mismatches.clone();
            if let Some(dir) = &args.snapshots {
                match compare_snapshot(dir, path, &scenario::snapshot_text(s, &r), args.update) {
                    Ok(None) => {}
                    Ok(Some(diff)) => {
                        snapshot_changes += 1;
                        problems.push(diff);
                    }
                    Err(e) => {
                        runner.shutdown().await;
                        return Err(e);
                    }
                }
            }
            if problems.is_empty() {
                passed += 1;
                println!("  ok    {} ({})", file_stem(path), j.got);
                if args.verbose {
                    println!("{}", indent(&r.story()));
                }
            } else {
                failed += 1;
                println!("  FAIL  {}: {}", file_stem(path), problems[0].lines().next().unwrap_or_default());
                for p in &problems {
                    println!("{}", indent(p));
                }
                println!("{}", indent(&r.story()));
            }
        }
        runner.shutdown().await;
    }
    for s in &skipped {
        println!("  skip  {s}");
    }
    println!(
        "\n{passed} passed, {failed} failed, {} skipped{}",
        skipped.len(),
        if snapshot_changes > 0 { format!("; {snapshot_changes} snapshot(s) changed (accept them with --update)") } else { String::new() }
    );
    if args.update {
        println!("snapshots written to {}", args.snapshots.as_ref().expect("required by clap").display());
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn applies_text(s: &Scenario) -> String {
    let mut parts = Vec::new();
    if let Some(st) = s.applies_to.strategy {
        parts.push(st.name().to_string());
    }
    if let Some(e) = s.applies_to.engine {
        parts.push(engine_name(e).to_string());
    }
    parts.join(", ")
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("        {l}")).collect::<Vec<_>>().join("\n")
}

/// Compares a trace with `<dir>/<stem>.snap` (or writes it, with `update`); returns a readable
/// unified diff when they differ.
fn compare_snapshot(dir: &Path, scenario: &Path, text: &str, update: bool) -> Result<Option<String>, UsageError> {
    let file = dir.join(format!("{}.snap", file_stem(scenario)));
    if update {
        std::fs::write(&file, text).map_err(|e| UsageError(format!("cannot write {}: {e}", file.display())))?;
        return Ok(None);
    }
    let old = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some(format!("no snapshot yet at {} (write it with --update)", file.display())));
        }
        Err(e) => return Err(UsageError(format!("cannot read {}: {e}", file.display()))),
    };
    if old == text {
        return Ok(None);
    }
    let diff = similar::TextDiff::from_lines(old.as_str(), text);
    let body = diff.unified_diff().context_radius(3).header(&format!("{} (accepted)", file.display()), "this run").to_string();
    Ok(Some(format!("the behaviour changed from the snapshot {}:\n{body}", file.display())))
}
