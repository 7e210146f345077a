//! The conformance engine on real functions: the same seed gives the same cases, outcomes and
//! verdict with one worker or two, each case's roles made ahead or not; a correct function
//! passes the crash sweep and generated cases; the CLI's exit codes.

mod common;

use common::world::fixture;
use rotcheck_harness::database::Engine;
use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::runner::{CaseResult, FunctionSource, RunConfig, Runner};
use rotcheck_harness::schedule::Strategy;
use rotcheck_harness::schedule::generate::{Limits, case_seed, case_tree};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn config(dir: &str, strategy: Strategy, engine: Engine, workers: usize) -> RunConfig {
    RunConfig {
        engine,
        strategy,
        function: FunctionSource::Python { dir: fixture(dir), handler: "lambda_function.lambda_handler".into() },
        workers,
        retries: 3,
        step_timeout: Duration::from_secs(30),
        env: vec![],
        limits: Limits { strategy, ..Limits::default() },
    }
}

/// Runs cases 0..n of `seed`, spread over the runner's workers. `ahead`: each worker is told
/// the case it runs next (as `rotcheck check` does), so it makes that case's roles while the
/// current one runs; the last one told never runs.
async fn run(runner: &Runner, seed: u64, n: u64, ahead: bool) -> Vec<CaseResult> {
    let limits = runner.config().limits.clone();
    let mut results = Vec::new();
    let workers = runner.workers();
    for chunk in (0..n).collect::<Vec<_>>().chunks(workers) {
        let futures = chunk.iter().enumerate().map(|(w, &i)| {
            let case = |i: u64| {
                let s = case_seed(seed, i);
                (i, s, case_tree(s, &limits).current())
            };
            let (i, s, schedule) = case(i);
            let next = ahead.then(|| case(i + workers as u64));
            async move { runner.run_case_before(w, i, s, &schedule, next.as_ref().map(|(i, s, c)| (*i, *s, c))).await }
        });
        results.extend(futures::future::join_all(futures).await);
    }
    results
}

fn story_without_timing(r: &CaseResult) -> String {
    r.story()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_gives_the_same_cases_with_one_or_two_workers() {
    // One worker makes each next case's roles ahead; two make each case's roles in it.
    let one = Runner::start(config("python/postgres-single-user", Strategy::SingleUser, Engine::Postgres, 1), &LocalProvider::default(), 11).await.unwrap();
    let a = run(&one, 11, 6, true).await;
    // A shrink replays one index again and again: each replay finds its roles' names free
    // (the last run's are dropped in the background) and tells the same story.
    for _ in 0..4 {
        let r = one.run_case(0, a[0].index, a[0].seed, &a[0].schedule).await;
        assert_eq!(r.setup_error, None);
        assert_eq!(r.story(), a[0].story());
    }
    one.shutdown().await;
    let roles_left = "SELECT count(*)::text FROM pg_roles WHERE rolname ~ '_c[0-9]+$'";
    assert_eq!(one.infra().db.admin_scalar(roles_left).await.unwrap(), "0", "every case's roles are dropped, and those made for the case that never ran");
    let two = Runner::start(config("python/postgres-single-user", Strategy::SingleUser, Engine::Postgres, 2), &LocalProvider::default(), 11).await.unwrap();
    let b = run(&two, 11, 6, false).await;
    two.shutdown().await;
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.schedule, y.schedule, "case {}", x.index);
        assert_eq!(x.violations, y.violations, "case {}", x.index);
        assert_eq!(story_without_timing(x), story_without_timing(y), "case {} differs between 1 and 2 workers", x.index);
    }
    assert!(a.iter().all(|r| r.violations.is_empty()), "{}", a.iter().map(|r| r.story()).collect::<String>());
    assert!(a.iter().map(|r| r.stats.completed).sum::<u32>() >= 6, "rotations completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correct_function_passes_the_crash_sweep() {
    let runner = Runner::start(config("python/postgres-single-user", Strategy::SingleUser, Engine::Postgres, 2), &LocalProvider::default(), 3).await.unwrap();
    let sweep = runner.sweep_schedules().await;
    assert!(sweep.len() >= 20, "crash points found: {}", sweep.len());
    let mut kills = 0;
    for (i, (name, schedule)) in sweep.iter().enumerate() {
        let r = runner.run_case(i % 2, i as u64, case_seed(3, i as u64), schedule).await;
        assert!(r.violations.is_empty(), "{name}:\n{}", r.story());
        assert!(r.setup_error.is_none(), "{name}: {:?}", r.setup_error);
        kills += r.stats.kills.values().sum::<u32>();
        assert!(r.stats.completed >= 1, "{name}: the retries complete the rotation\n{}", r.story());
    }
    assert_eq!(kills as usize, sweep.len(), "every crash point fired exactly once");
    runner.shutdown().await;
}

#[test]
fn the_cli_exit_codes() {
    // Bad input: one line, exit 2.
    for args in [
        vec!["check", "/does/not/exist"],
        vec!["check", "fixtures/python/postgres-single-user", "--engine", "oracle"],
        vec!["check", "fixtures/python/postgres-single-user", "--strategy", "triple"],
        vec!["check", "fixtures/python/postgres-single-user", "--handler", "nodot", "--db", "local"],
        vec!["check", "fixtures/python/postgres-single-user", "--db", "ftp://x"],
        vec!["replay", "/does/not/exist.yaml"],
    ] {
        let out = Command::new(BIN).args(&args).current_dir(common::root()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A correct function: exit 0.
    let out = Command::new(BIN)
        .args(["check", "fixtures/python/postgres-single-user", "--db", "local", "--cases", "3", "--seed", "5", "--no-sweep"])
        .current_dir(common::root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Seed: 5"), "{text}");
    // A broken one: exit 1, a counterexample that replays to the same violation.
    let dir = std::env::temp_dir().join(format!("rotcheck-cx-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["check", "fixtures/python/broken/password-not-changed", "--db", "local", "--cases", "4", "--seed", "5", "--no-sweep", "--max-shrink", "5"])
        .arg("--out")
        .arg(&dir)
        .current_dir(common::root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("VIOLATION P4"), "{text}");
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let out = Command::new(BIN).args(["replay"]).arg(&file).args(["--db", "local"]).current_dir(common::root()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("as expected: violation P4"), "{text}");
    // The same counterexample against the correct function does not hold up.
    let out = Command::new(BIN)
        .args(["replay"])
        .arg(&file)
        .args(["--db", "local", "--function", "fixtures/python/postgres-single-user"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The crash sweep and pinned-seed generated cases on the other correct fixtures: no false
/// alarms (the PostgreSQL single-user fixture's sweep is above).
async fn sweep_and_cases(dir: &str, strategy: Strategy, engine: Engine, seed: u64, cases: u64) {
    let runner = Runner::start(config(dir, strategy, engine, 2), &LocalProvider::default(), seed).await.unwrap();
    let sweep = runner.sweep_schedules().await;
    assert!(sweep.len() >= 10, "{dir}: crash points found: {}", sweep.len());
    for (i, (name, schedule)) in sweep.iter().enumerate() {
        let r = runner.run_case(i % 2, 1_000_000 + i as u64, case_seed(seed, 1_000_000 + i as u64), schedule).await;
        assert!(r.violations.is_empty() && r.setup_error.is_none(), "{dir}, {name}:\n{}{:?}", r.story(), r.setup_error);
        assert!(r.stats.completed >= 1, "{dir}, {name}: the retries complete the rotation\n{}", r.story());
    }
    for r in run(&runner, seed, cases, true).await {
        assert!(r.violations.is_empty() && r.setup_error.is_none(), "{dir}, case {} (seed {}):\n{}{:?}", r.index, r.seed, r.story(), r.setup_error);
    }
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alternating_users_fixture_passes_the_sweep_and_pinned_cases() {
    sweep_and_cases("python/postgres-alternating-users", Strategy::AlternatingUsers, Engine::Postgres, 21, 6).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mysql_fixture_passes_the_sweep_and_pinned_cases() {
    sweep_and_cases("python/mysql-single-user", Strategy::SingleUser, Engine::Mysql, 31, 6).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_fixture_passes_pinned_cases() {
    let runner = Runner::start(config("python/postgres-single-user", Strategy::SingleUser, Engine::Postgres, 2), &LocalProvider::default(), 41).await.unwrap();
    for r in run(&runner, 41, 10, true).await {
        assert!(r.violations.is_empty() && r.setup_error.is_none(), "case {} (seed {}):\n{}{:?}", r.index, r.seed, r.story(), r.setup_error);
    }
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_check_the_emulator_accepts_only_the_credentials_each_process_was_given() {
    // The function's own environment comes after the credentials rotcheck gives it, so this is
    // a function that signs with a secret key of its own choosing.
    let mut c = config("python/postgres-single-user", Strategy::SingleUser, Engine::Postgres, 1);
    c.env = vec![("AWS_SECRET_ACCESS_KEY".into(), "rotcheck".into())];
    let runner = Runner::start(c, &LocalProvider::default(), 5).await.unwrap();
    let r = run(&runner, 5, 1, false).await.remove(0);
    assert_eq!(r.stats.completed, 0, "{}", r.story());
    assert!(r.story().contains("InvalidSignatureException"), "{}", r.story());

    // An unsigned request gets IncompleteSignature, with what the function should have done.
    let addr = runner.infra().endpoint.addr();
    let raw = common::raw_post(addr, Some("secretsmanager.ListSecrets"), b"{}").await;
    assert_eq!(raw.json()["__type"], "IncompleteSignature", "{}", raw.body);
    assert!(raw.body.contains("AWS_SECRET_ACCESS_KEY"), "{}", raw.body);
    runner.shutdown().await;
}
