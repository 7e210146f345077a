//! The curated scenario library against the correct fixtures: every scenario that applies to a
//! fixture does what it expects, and its normalised trace matches the accepted insta snapshot
//! (`tests/snapshots/scenarios__<fixture>@<scenario>.yaml.snap`, one per scenario and fixture).
//! Then every snapshot and scenario file is scanned for the passwords the runs used.
//!
//! This binary holds one test on purpose: insta's `glob!` collects failures process-wide, so a
//! second test running beside it could have its failures attributed to the glob.
//!
//! A behaviour change shows as a snapshot diff: review it with `cargo insta review` (or rerun
//! with `INSTA_UPDATE=always` and read `git diff`). The test command runs with
//! `INSTA_UPDATE=no`, so nothing is ever accepted silently.

mod common;

use common::world::fixture;
use rotcheck_harness::database::Engine;
use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::runner::{CaseResult, FunctionSource, RunConfig, Runner};
use rotcheck_harness::scenario::{self, Scenario};
use rotcheck_harness::schedule::Strategy;
use rotcheck_harness::schedule::generate::Limits;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The correct fixtures, with how they manage users and which engine they speak.
const FIXTURES: [(&str, Strategy, Engine); 3] = [
    ("postgres-single-user", Strategy::SingleUser, Engine::Postgres),
    ("postgres-alternating-users", Strategy::AlternatingUsers, Engine::Postgres),
    ("mysql-single-user", Strategy::SingleUser, Engine::Mysql),
];

fn config(dir: &str, strategy: Strategy, engine: Engine, workers: usize) -> RunConfig {
    RunConfig {
        engine,
        strategy,
        function: FunctionSource::Python { dir: fixture(&format!("python/{dir}")), handler: "lambda_function.lambda_handler".into() },
        workers,
        retries: 3,
        step_timeout: Duration::from_secs(30),
        env: vec![],
        limits: Limits { strategy, ..Limits::default() },
    }
}

#[test]
fn curated_scenarios_pass_against_the_correct_fixtures_and_match_their_snapshots() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = Scenario::load_all(&common::root().join("scenarios")).unwrap();
    let mut wrong = Vec::new();
    let mut passwords = Vec::new();
    let mut ran = 0;
    for (dir, strategy, engine) in FIXTURES {
        let runner = rt.block_on(Runner::start(config(dir, strategy, engine, 2), &LocalProvider::default(), 0)).unwrap();
        // Play every scenario that applies, two at a time (one per worker); each case is a
        // function of its scenario alone, so the order does not matter.
        let todo: Vec<(u64, &PathBuf, &Scenario)> =
            all.iter().filter(|(_, s)| s.applies_to.admits(strategy, engine)).enumerate().map(|(i, (p, s))| (i as u64, p, s)).collect();
        let mut results: HashMap<PathBuf, CaseResult> = HashMap::new();
        for pair in todo.chunks(2) {
            let plays = pair.iter().enumerate().map(|(w, (i, _, s))| runner.run_case(w, *i, s.seed, &s.schedule));
            let done = rt.block_on(futures::future::join_all(plays));
            for ((_, p, _), r) in pair.iter().zip(done) {
                results.insert(p.canonicalize().unwrap(), r);
            }
        }
        ran += results.len();
        let mut settings = insta::Settings::clone_current();
        settings.set_omit_expression(true);
        let _scope = settings.bind_to_scope();
        insta::glob!("../scenarios", "*.yaml", |path| {
            let s = Scenario::load(path).unwrap();
            let Some(r) = results.get(&path.canonicalize().unwrap()) else {
                assert!(!s.applies_to.admits(strategy, engine));
                return;
            };
            assert!(r.setup_error.is_none(), "{dir}, {}: {:?}", path.display(), r.setup_error);
            let j = s.judge(r);
            if !j.as_expected() {
                wrong.push(format!("{dir}, {}: {}\n{}", path.display(), j.mismatches.join("; "), r.story()));
            }
            insta::assert_snapshot!(dir, scenario::snapshot_text(&s, r));
        });
        passwords.extend(runner.infra().redactor.audit_passwords());
        rt.block_on(runner.shutdown());
    }
    assert!(wrong.is_empty(), "{} scenario(s) did not do what they expect:\n{}", wrong.len(), wrong.join("\n"));
    assert!(ran >= 60, "only {ran} scenario runs");

    // No password any run used appears in a snapshot or a scenario file, whole or as any
    // 8-character piece, in any of the forms the redactor knows (plain, JSON, SQL, URL).
    let root = common::root();
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("scenarios__")))
        .collect();
    files.extend(std::fs::read_dir(root.join("scenarios")).unwrap().flatten().map(|e| e.path()));
    assert!(files.len() >= 60, "{} files to scan", files.len());
    assert!(passwords.len() >= 60, "{} passwords registered", passwords.len());
    let pieces: std::collections::BTreeSet<String> = passwords
        .iter()
        .flat_map(|p| {
            let chars: Vec<char> = p.chars().collect();
            (0..chars.len().saturating_sub(7)).map(move |i| chars[i..i + 8].iter().collect::<String>())
        })
        .collect();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let hits = pieces.iter().filter(|p| text.contains(p.as_str())).count();
        assert_eq!(hits, 0, "{}: holds {hits} piece(s) of a password the runs used", short(f));
    }
}

fn short(p: &Path) -> String {
    p.strip_prefix(common::root()).unwrap_or(p).display().to_string()
}
