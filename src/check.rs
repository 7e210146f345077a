//! `rotcheck check`: generated schedules against a rotation function, the properties after
//! every step, the first failure shrunk to the shortest story and written as a scenario.

use crate::UsageError;
use crate::config;
use crate::interrupt::Interrupt;
use indicatif::{ProgressBar, ProgressStyle};
use rotcheck_harness::checker::Property;
use rotcheck_harness::database::{self, Engine};
use rotcheck_harness::report;
use rotcheck_harness::runner::{CaseResult, CaseStats, FunctionSource, RunConfig, Runner};
use rotcheck_harness::schedule::generate::{Limits, case_seed, case_tree};
use rotcheck_harness::scenario::{AppliesTo, Expectation, FORMAT_VERSION, Scenario};
use rotcheck_harness::schedule::Strategy;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Options of `rotcheck check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The rotation function: a directory with lambda_function.py and requirements.txt
    /// (default: `function.dir` of rotcheck.toml).
    pub function: Option<PathBuf>,
    /// The configuration file (default: rotcheck.toml in the function's directory, or in the
    /// current one when no function is named). Flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The most commands after a case's first rotation.
    #[arg(long, default_value_t = 5)]
    pub max_commands: usize,
    /// The handler, as module.function.
    #[arg(long, default_value = "lambda_function.lambda_handler")]
    pub handler: String,
    /// The database engine: postgres or mysql (MariaDB, MySQL).
    #[arg(long, default_value = "postgres")]
    pub engine: String,
    /// How the function manages users: single-user or alternating-users.
    #[arg(long, default_value = "single-user")]
    pub strategy: String,
    /// Where the database comes from: auto, docker, local, or an admin URL.
    #[arg(long, default_value = "auto")]
    pub db: String,
    /// How many generated cases to run.
    #[arg(long, default_value_t = 64)]
    pub cases: u64,
    /// The run's seed (printed when not given); the same seed gives the same cases.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Parallel workers (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Skip the systematic crash sweep.
    #[arg(long)]
    pub no_sweep: bool,
    /// Whole-rotation retries after a failed step.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// The function's timeout per step, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// The function's environment, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Where counterexamples are written.
    #[arg(long, default_value = "rotcheck-counterexamples")]
    pub out: PathBuf,
    /// The most replays spent shrinking a failure.
    #[arg(long, default_value_t = 100)]
    pub max_shrink: usize,
    /// The most seconds spent shrinking a failure.
    #[arg(long, default_value_t = 90)]
    pub shrink_time: u64,
    /// Print the story of every case, not only of a failure.
    #[arg(long)]
    pub verbose: bool,
    /// Check only these properties (comma-separated: P1,P3,contract).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub only: Vec<String>,
    /// Do not check these properties (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub skip: Vec<String>,
    /// Run shard i of n (1-based, e.g. 2/4): cases and crash points whose index is i-1 mod n,
    /// so that n CI jobs with the same seed split one run between them.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// A short smoke run: 8 generated cases, no crash sweep, at most 20 shrinking replays.
    #[arg(long)]
    pub quick: bool,
    /// Write the report as JSON (schema: docs/report.schema.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as JUnit XML (one test case per property).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the report as Markdown (for a CI job summary such as $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the least-privilege IAM policy the function needed (from its calls in the run)
    /// as JSON; it is also in the --json and --markdown reports.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// End the whole run after this many seconds, whatever it is doing: what was checked so
    /// far is printed, everything started is stopped, and the exit code is 2.
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<u64>,
}

/// Which properties a run checks, from --only and --skip.
fn enabled_properties(only: &[String], skip: &[String]) -> Result<Vec<Property>, UsageError> {
    let parse = |ids: &[String]| -> Result<Vec<Property>, UsageError> {
        ids.iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Property::parse(s.trim()).ok_or_else(|| UsageError(format!("unknown property {s:?}; use P1..P8 or contract"))))
            .collect()
    };
    let only = parse(only)?;
    let skip = parse(skip)?;
    let on: Vec<Property> = Property::ALL.into_iter().filter(|p| (only.is_empty() || only.contains(p)) && !skip.contains(p)).collect();
    if on.is_empty() {
        return Err(UsageError("--only and --skip leave no property to check".into()));
    }
    Ok(on)
}

/// Parses `i/n` (1 <= i <= n).
fn parse_shard(s: &str) -> Result<(u64, u64), UsageError> {
    let bad = || UsageError(format!("--shard {s:?} is not i/n with 1 <= i <= n (e.g. 1/4)"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Parses the shared options into a run configuration.
pub fn run_config(function: PathBuf, handler: &str, engine: &str, strategy: &str, workers: Option<usize>, retries: u32, timeout: u64, env: &[String]) -> Result<RunConfig, UsageError> {
    let engine = Engine::parse(engine).map_err(|e| UsageError(e.to_string()))?;
    let strategy = Strategy::parse(strategy)
        .ok_or_else(|| UsageError(format!("unknown strategy {strategy:?}; use single-user or alternating-users")))?;
    if !function.is_dir() {
        return Err(UsageError(format!("{} is not a directory; pass the directory that holds the function's code", function.display())));
    }
    let env = env
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| UsageError(format!("--env {kv:?} is not KEY=VALUE"))))
        .collect::<Result<Vec<_>, _>>()?;
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)).max(1);
    Ok(RunConfig {
        engine,
        strategy,
        function: FunctionSource::Python { dir: function, handler: handler.to_string() },
        workers,
        retries,
        step_timeout: Duration::from_secs(timeout),
        env,
        limits: Limits { strategy, ..Limits::default() },
    })
}

/// Starts the runner, turning setup errors into one line.
pub async fn start(config: RunConfig, db: &str, seed: u64) -> Result<Runner, UsageError> {
    let provider = database::provider_from_arg(db).map_err(|e| UsageError(e.to_string()))?;
    Runner::start(config, provider.as_ref(), seed).await.map_err(|e| UsageError(e.to_string()))
}

/// Fills what the command line left at its default from rotcheck.toml, if there is one;
/// returns the function's directory.
fn resolve(args: &mut CheckArgs, m: &clap::ArgMatches) -> Result<PathBuf, UsageError> {
    let given = |id: &str| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let Some(file) = config::find(args.config.as_deref(), args.function.as_deref()) else {
        return args.function.clone().ok_or_else(|| {
            UsageError("name the function's directory (rotcheck check <DIR>), or write a rotcheck.toml for it (rotcheck init <DIR>)".into())
        });
    };
    let c = config::Config::load(&file)?;
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf();
    let function = match &args.function {
        Some(f) => f.clone(),
        None => base.join(c.function.dir.clone().unwrap_or_else(|| PathBuf::from("."))),
    };
    macro_rules! take {
        ($id:literal, $field:expr, $value:expr) => {
            if !given($id)
                && let Some(v) = $value
            {
                $field = v;
            }
        };
    }
    take!("handler", args.handler, c.function.handler.clone());
    take!("timeout", args.timeout, c.function.timeout);
    take!("engine", args.engine, c.secret.engine.clone());
    take!("strategy", args.strategy, c.secret.strategy.clone());
    take!("db", args.db, c.db());
    take!("retries", args.retries, c.check.retries);
    take!("only", args.only, c.check.only.clone());
    take!("skip", args.skip, c.check.skip.clone());
    take!("cases", args.cases, c.budget.cases);
    take!("max_commands", args.max_commands, c.budget.max_commands);
    take!("max_shrink", args.max_shrink, c.budget.max_shrink);
    take!("shrink_time", args.shrink_time, c.budget.shrink_time);
    if args.workers.is_none() {
        args.workers = c.budget.workers;
    }
    if args.time_limit.is_none() {
        args.time_limit = c.budget.time_limit;
    }
    if !given("no_sweep") && c.check.sweep == Some(false) {
        args.no_sweep = true;
    }
    // The file's environment first: a --env flag for the same key comes later and wins.
    let mut env: Vec<String> = c.function.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.append(&mut args.env);
    args.env = env;
    println!("  configuration: {}", file.display());
    Ok(function)
}

pub async fn run(mut args: CheckArgs, matches: &clap::ArgMatches) -> Result<ExitCode, UsageError> {
    let function = resolve(&mut args, matches)?;
    args.function = Some(function.clone());
    let mut config = run_config(function.clone(), &args.handler, &args.engine, &args.strategy, args.workers, args.retries, args.timeout, &args.env)?;
    config.limits.max_commands = args.max_commands;
    let enabled = enabled_properties(&args.only, &args.skip)?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.quick {
        args.cases = args.cases.min(8);
        args.no_sweep = true;
        args.max_shrink = args.max_shrink.min(20);
    }
    for f in [&args.json, &args.junit, &args.markdown, &args.policy].into_iter().flatten() {
        check_writable(f)?;
    }
    if args.time_limit == Some(0) {
        return Err(UsageError("--time-limit must be at least 1 second".into()));
    }
    let interrupt = Interrupt::install(args.time_limit.map(Duration::from_secs));
    let seed = args.seed.unwrap_or_else(rand::random);
    let in_shard = |i: u64| shard.is_none_or(|(k, n)| i % n == k - 1);
    let term = std::io::stderr().is_terminal();
    println!(
        "rotcheck check {} ({}, {}, seed {seed})",
        function.display(),
        config.engine.name(),
        config.strategy.name()
    );
    let started = Instant::now();
    let runner = match interrupt.guard(start(config, &args.db, seed)).await {
        Some(r) => Arc::new(r?),
        None => return Err(stopped(&interrupt, 0)),
    };
    let infra = runner.infra();
    println!(
        "  database: {} {:?} server ({}) ready in {:.1} s; {} workers",
        infra.db.provider,
        infra.db.flavor,
        infra.db.endpoint,
        infra.db.startup.as_secs_f64(),
        runner.workers()
    );
    let mut stats = CaseStats::default();
    let mut passed: BTreeMap<Property, u64> = BTreeMap::new();
    let mut cases_run = 0u64;
    let mut operator_unsafe = 0u64;

    // 1. The systematic crash sweep.
    let mut failure: Option<CaseResult> = None;
    let mut setup_failure: Option<UsageError> = None;
    if !args.no_sweep {
        let sweep = runner.sweep_schedules().await;
        let bar = progress(term, sweep.len() as u64, "crash sweep");
        let todo: Vec<_> = sweep.iter().enumerate().filter(|(i, _)| in_shard(*i as u64)).map(|(i, (_, s))| (1_000_000 + i as u64, case_seed(seed, 1_000_000 + i as u64), s.clone())).collect();
        bar.set_length(todo.len() as u64);
        let results = run_many(&runner, todo, &bar, &enabled, &interrupt).await;
        bar.finish_and_clear();
        for r in &results {
            tally(r, &mut stats, &mut passed, &mut operator_unsafe);
        }
        cases_run += results.len() as u64;
        setup_failure = setup_failure.or(setup_error(&results));
        failure = results.into_iter().find(|r| !r.violations.is_empty());
        println!("  crash sweep: {} crash points in one and in two rotations", sweep.len());
    }

    // 2. Generated cases.
    if failure.is_none() {
        let limits = runner.config().limits.clone();
        let cases: Vec<(u64, u64, _)> = (0..args.cases)
            .filter(|&i| in_shard(i))
            .map(|i| {
                let s = case_seed(seed, i);
                (i, s, case_tree(s, &limits).current())
            })
            .collect();
        let bar = progress(term, cases.len() as u64, "cases");
        let results = run_many(&runner, cases, &bar, &enabled, &interrupt).await;
        bar.finish_and_clear();
        for r in &results {
            tally(r, &mut stats, &mut passed, &mut operator_unsafe);
            if args.verbose {
                println!("--- case {} (seed {})\n{}", r.index, r.seed, r.story());
            }
        }
        cases_run += results.len() as u64;
        setup_failure = setup_failure.or(setup_error(&results));
        failure = results.into_iter().find(|r| !r.violations.is_empty());
    }
    if let Some(err) = setup_failure {
        runner.shutdown().await;
        return Err(err);
    }
    if interrupt.reason().is_some() {
        // What was checked so far; a failure found before the stop is still reported.
        summary(&passed, cases_run, &stats, operator_unsafe, &enabled);
        if let Some(f) = &failure
            && let Some(p) = f.first_violation()
        {
            println!("\nVIOLATION {} ({}) in case {} (seed {}), not shrunk:\n\n{}", p.id(), p.title(), f.index, f.seed, f.story());
        }
        runner.shutdown().await;
        drop(runner);
        return Err(stopped(&interrupt, cases_run));
    }

    // 3. A failure: shrink it, write it down, tell the story.
    let mut report_failure = None;
    let code = if let Some(fail) = failure {
        let property = fail.first_violation().expect("a failure has a violation");
        println!("\nVIOLATION {} ({}) in case {} (seed {}); shrinking...", property.id(), property.title(), fail.index, fail.seed);
        let original_len = fail.schedule.commands.len();
        let bar = progress(term, args.max_shrink as u64, "shrinking");
        let b = bar.clone();
        let (shrunk, iterations) = if fail.index >= 1_000_000 {
            (fail, 0)
        } else {
            // A stop while shrinking keeps the unshrunk failure: it is still a counterexample.
            let keep = fail.clone();
            interrupt
                .guard(runner.shrink(0, fail, args.max_shrink, Duration::from_secs(args.shrink_time), &move |i, _| b.set_position(i as u64)))
                .await
                .unwrap_or((keep, 0))
        };
        bar.finish_and_clear();
        println!(
            "shrunk from {original_len} to {} commands in {iterations} replays:\n\n{}",
            shrunk.schedule.commands.len(),
            shrunk.story()
        );
        let path = write_counterexample(&args, &shrunk, property, seed)?;
        println!("Counterexample: {}\n  replay it: rotcheck replay {}", path.display(), path.display());
        let mut violated: Vec<String> = shrunk.violations.iter().map(|v| v.property.id().to_string()).collect();
        violated.dedup();
        report_failure = Some(report::Failure {
            property: property.id().into(),
            violated,
            case: shrunk.index,
            case_seed: shrunk.seed,
            commands_before_shrinking: original_len,
            commands: shrunk.schedule.commands.len(),
            message: shrunk.violations.first().map(|v| v.message.clone()).unwrap_or_default(),
            story: shrunk.story(),
            counterexample: Some(path.display().to_string()),
        });
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };

    // 4. The summary and the reports.
    summary(&passed, cases_run, &stats, operator_unsafe, &enabled);
    println!("Seed: {seed} (rerun with --seed {seed}); {} cases in {:.1} s", cases_run, started.elapsed().as_secs_f64());
    runner.shutdown().await;
    let r = report::RunReport {
        report_version: report::REPORT_VERSION,
        rotcheck_version: env!("CARGO_PKG_VERSION").into(),
        function: function.display().to_string(),
        engine: args.engine.clone(),
        strategy: args.strategy.clone(),
        seed,
        shard: args.shard.clone(),
        cases: cases_run,
        seconds: started.elapsed().as_secs_f64(),
        verdict: if code == ExitCode::SUCCESS { "pass" } else { "fail" }.into(),
        properties: report::property_results(&passed, cases_run, &|p| enabled.contains(&p)),
        operator_unsafe_cases: operator_unsafe,
        least_privilege_policy: report::least_privilege_policy(&stats.permissions),
        coverage: stats.clone(),
        failure: report_failure,
    };
    let policy = serde_json::to_string_pretty(&r.least_privilege_policy).unwrap_or_default() + "\n";
    for (file, text) in [(&args.json, r.to_json()), (&args.junit, r.to_junit()), (&args.markdown, r.to_markdown()), (&args.policy, policy)] {
        if let Some(f) = file {
            std::fs::write(f, text).map_err(|e| UsageError(format!("cannot write {}: {e}", f.display())))?;
        }
    }
    if code == ExitCode::SUCCESS && stats.completed == 0 {
        return Err(UsageError("no rotation completed in the whole run, so nothing was checked".into()));
    }
    Ok(code)
}

/// The high-water mark of rotcheck's resident memory (VmHWM), where /proc has it.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The one line of a run stopped early by a signal or the time limit.
fn stopped(interrupt: &Interrupt, cases: u64) -> UsageError {
    let why = interrupt.reason().unwrap_or_else(|| "stopped".into());
    UsageError(format!("{why}: stopped after {cases} complete case(s); every process, server and temp dir it started is gone"))
}

/// A case that could not even be set up (a role the server refused, a secret the emulator
/// refused) is an error of rotcheck or of the machine, not a verdict: it ends the run with
/// exit 2 rather than leaving the cases after it unrun.
fn setup_error(results: &[CaseResult]) -> Option<UsageError> {
    results.iter().find_map(|r| {
        r.setup_error.as_ref().map(|e| UsageError(format!("case {} (seed {}) could not be set up: {e}", r.index, r.seed)))
    })
}

fn progress(term: bool, len: u64, what: &str) -> ProgressBar {
    if !term {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template("  {prefix:12} [{bar:30}] {pos}/{len} {msg}").expect("a valid template").progress_chars("=> "));
    bar.set_prefix(what.to_string());
    bar
}

/// Runs cases over the workers, each taking the next case in order when it is free (case
/// times vary from milliseconds to a function's own timeouts, so a fixed share would leave one
/// worker idle while the other works through its slow cases); a case's result depends on its
/// seed, not on the worker. Stops early after the first failure; returns the results of every
/// case that ran, by index.
async fn run_many(
    runner: &Arc<Runner>,
    cases: Vec<(u64, u64, rotcheck_harness::schedule::Schedule)>,
    bar: &ProgressBar,
    enabled: &[Property],
    interrupt: &Interrupt,
) -> Vec<CaseResult> {
    let n = runner.workers();
    let stop = Arc::new(AtomicBool::new(false));
    let first_failure = Arc::new(AtomicU64::new(u64::MAX));
    let cases = Arc::new(cases);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..n {
        let (runner, cases, stop, first_failure, bar) = (runner.clone(), cases.clone(), stop.clone(), first_failure.clone(), bar.clone());
        let next = next.clone();
        let enabled = enabled.to_vec();
        let interrupt = interrupt.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut mine = next.fetch_add(1, Ordering::SeqCst);
            while let Some((index, seed, schedule)) = cases.get(mine) {
                // The case after this one is claimed now, so that a function process for its
                // environment can start while this one runs.
                mine = next.fetch_add(1, Ordering::SeqCst);
                let coming = cases.get(mine).map(|(i, seed, s)| (*i, *seed, s));
                // Cases after a known failure need not run: the earliest failure is reported.
                if stop.load(Ordering::SeqCst) && *index > first_failure.load(Ordering::SeqCst) {
                    break;
                }
                // A stop cuts the case in flight short; it does not count.
                let Some(mut r) = interrupt.guard(runner.run_case_before(w, *index, *seed, schedule, coming)).await else { break };
                // Properties turned off are not judged (their violations are dropped here).
                r.violations.retain(|v| enabled.contains(&v.property));
                if !r.violations.is_empty() || r.setup_error.is_some() {
                    first_failure.fetch_min(*index, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                }
                bar.inc(1);
                if let Some(v) = r.violations.first() {
                    bar.set_message(format!("{} found", v.property.id()));
                }
                out.push(r);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all.sort_by_key(|r| r.index);
    // Only cases up to the first failure count, whatever the number of workers.
    if let Some(pos) = all.iter().position(|r| !r.violations.is_empty()) {
        all.truncate(pos + 1);
    }
    all
}

fn tally(r: &CaseResult, stats: &mut CaseStats, passed: &mut BTreeMap<Property, u64>, operator_unsafe: &mut u64) {
    stats.add(&r.stats);
    if r.operator_unsafe.is_some() {
        *operator_unsafe += 1;
    }
    for p in Property::ALL {
        if !r.violations.iter().any(|v| v.property == p) {
            *passed.entry(p).or_default() += 1;
        }
    }
}

fn summary(passed: &BTreeMap<Property, u64>, cases: u64, s: &CaseStats, operator_unsafe: u64, enabled: &[Property]) {
    println!("\nProperties ({cases} cases)");
    for p in Property::ALL {
        let ok = passed.get(&p).copied().unwrap_or(0);
        let verdict = if !enabled.contains(&p) {
            "skipped".to_string()
        } else if ok == cases {
            "ok".to_string()
        } else {
            format!("VIOLATED in {} case(s)", cases - ok)
        };
        println!("  {:9} {:28} {verdict}", p.id(), p.title());
    }
    println!("Coverage");
    println!(
        "  commands {} ({:.1} per case), rotations {} (completed {}, failed safely {}, refused {}), step invocations {}",
        s.commands,
        s.commands as f64 / cases.max(1) as f64,
        s.rotations,
        s.completed,
        s.failed,
        s.refused,
        s.steps
    );
    println!(
        "  deliveries again {} ({} concurrent), test-only rotations {}, client logins {}, operator commands {} ({} made the state unsafe)",
        s.deliveries, s.concurrent_deliveries, s.test_rotations, s.client_logins, s.operator, operator_unsafe
    );
    let kills: u32 = s.kills.values().sum();
    println!("  kills {kills} at {} distinct crash points; faults {:?}", s.kills.len(), s.faults);
    println!("  usernames {:?}; characters forced into passwords {:?}", s.usernames, s.forced_chars);
    println!("  observations where AWSCURRENT did not log in (single-user window): {}", s.unavailable_windows);
    let mut needed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (action, resources) in &s.permissions {
        for r in resources {
            needed.entry(r.as_str()).or_default().push(action.trim_start_matches("secretsmanager:"));
        }
    }
    let needed: Vec<String> = needed.iter().map(|(r, a)| format!("{} on {r}", a.join(", "))).collect();
    let t = |k: &str| s.timing_us.get(k).copied().unwrap_or(0) as f64;
    let total = t("total").max(1.0);
    let pct = |v: f64| v / total * 100.0;
    let rest = (t("total") - t("function") - t("setup") - t("teardown") - t("observe")).max(0.0);
    println!(
        "  time per case {:.0} ms: in the function {:.0}% (its database work included), in the emulator {:.1}%, in rotcheck {:.0}% (setup {:.0}%, state reads and {} login probes {:.0}%, teardown {:.0}%, the rest {:.0}%)",
        total / 1000.0 / cases.max(1) as f64,
        pct(t("function") - t("emulator")),
        pct(t("emulator")),
        pct(t("setup") + t("observe") + t("teardown") + rest),
        pct(t("setup")),
        s.probes,
        pct(t("observe")),
        pct(t("teardown")),
        pct(rest)
    );
    if let Some(peak) = peak_memory_mib() {
        println!("  peak memory of rotcheck: {peak:.0} MiB");
    }
    println!("  least privilege used: {}", if needed.is_empty() { "no call".to_string() } else { needed.join("; ") });
}

fn write_counterexample(args: &CheckArgs, r: &CaseResult, property: Property, run_seed: u64) -> Result<PathBuf, UsageError> {
    std::fs::create_dir_all(&args.out).map_err(|e| UsageError(format!("cannot create {}: {e}", args.out.display())))?;
    let function = args.function.clone().unwrap_or_default();
    let fname = function.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "function".into());
    let path = args.out.join(format!("{fname}-{}-seed{run_seed}-case{}.yaml", property.id(), r.index));
    let scenario = Scenario {
        version: FORMAT_VERSION,
        name: format!("{fname}: {} ({})", property.id(), property.title()),
        description: r.violations.first().map(|v| v.message.clone()).unwrap_or_default(),
        failure_modes: Vec::new(),
        applies_to: AppliesTo { strategy: Strategy::parse(&args.strategy), engine: Engine::parse(&args.engine).ok() },
        function: Some(function.display().to_string()),
        seed: r.seed,
        schedule: r.schedule.clone(),
        expect: Expectation::violation(property),
        catches: Vec::new(),
    };
    let text = format!("# Found by rotcheck check (run seed {run_seed}, case {}).\n# The story:\n{}{}", r.index, comment(&r.story()), scenario.to_yaml());
    std::fs::write(&path, text).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

fn comment(s: &str) -> String {
    s.lines().map(|l| format!("#   {l}\n")).collect()
}

/// Fails early (before any case runs) when a report file cannot be written.
fn check_writable(f: &std::path::Path) -> Result<(), UsageError> {
    let dir = f.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(UsageError(format!("cannot write {}: the directory {} does not exist", f.display(), dir.display())));
    }
    Ok(())
}
