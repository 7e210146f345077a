//! `rotcheck scenario run` as users drive it: the curated scenarios catch the broken fixtures
//! they name, a counterexample copied into a scenario directory runs as a regression, user
//! snapshots fail with a diff when the function's behaviour changes and `--update` accepts
//! the change, and bad input is one line with exit code 2.

mod common;

use rotcheck_harness::scenario::{Expected, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn rotcheck(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).current_dir(common::root()).output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rotcheck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn curated_scenarios_catch_the_broken_fixtures_they_name() {
    let dir = common::root().join("scenarios");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut checked = 0;
    for (path, scenario) in Scenario::load_all(&dir).unwrap() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(readme.contains(&format!("[`{file}`]")), "scenarios/README.md does not list {file}");
        assert!(!scenario.failure_modes.is_empty(), "{file} names no failure mode");
        // Curated scenarios describe what a correct function does; the bugs go under catches.
        assert!(!matches!(scenario.expect.outcome, Expected::Violation(_)), "{}", path.display());
        for c in &scenario.catches {
            let mut args = vec!["scenario", "run", s(&path), "--db", "local", "--function", c.function.as_str()];
            if let Some(e) = scenario.applies_to.engine {
                args.extend(["--engine", if e == rotcheck_harness::database::Engine::Mysql { "mysql" } else { "postgres" }]);
            }
            if let Some(st) = scenario.applies_to.strategy {
                args.extend(["--strategy", st.name()]);
            }
            let (code, text) = rotcheck(&args);
            assert_eq!(code, Some(1), "{} should catch {}:\n{text}", path.display(), c.function);
            let line = text.lines().find(|l| l.contains("FAIL")).unwrap_or_default();
            assert!(line.contains("got violation") && line.contains(&c.violation), "{} against {}: expected {}:\n{text}", path.display(), c.function, c.violation);
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} catches");
}

#[test]
fn a_counterexample_copied_into_a_scenario_directory_runs_as_a_regression() {
    let dir = temp_dir("regressions");
    let from = common::root().join("fixtures/python/broken/nonidempotent-finish/counterexample.yaml");
    std::fs::copy(&from, dir.join("nonidempotent-finish.yaml")).unwrap();
    let (code, text) = rotcheck(&["scenario", "run", s(&dir), "--db", "local"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    nonidempotent-finish (violation P2)"), "{text}");
    // Against the fixed function it is a failure: the scenario expects the bug.
    let (code, text) = rotcheck(&["scenario", "run", s(&dir), "--db", "local", "--function", "fixtures/python/postgres-single-user"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("expected violation P2, got pass"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies the PostgreSQL single-user fixture, so that a test can change it.
fn copy_fixture(to: &Path) {
    let from = common::root().join("fixtures/python/postgres-single-user");
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn user_snapshots_fail_with_a_diff_on_a_behaviour_change_and_update_accepts_it() {
    let work = temp_dir("snapshots");
    let function = work.join("function");
    copy_fixture(&function);
    let scenarios = work.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for f in ["f01-one-version-per-token.yaml", "f03-steps-delivered-after-finish.yaml"] {
        std::fs::copy(common::root().join("scenarios").join(f), scenarios.join(f)).unwrap();
    }
    let snaps = work.join("snaps");
    let run = |extra: &[&str]| {
        let mut args = vec!["scenario", "run", s(&scenarios), "--db", "local", "--function", s(&function), "--snapshots", s(&snaps)];
        args.extend(extra);
        rotcheck(&args)
    };

    // No snapshot yet: a failure that says how to write one.
    let (code, text) = run(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no snapshot yet") && text.contains("--update"), "{text}");
    // Accepted, then the same behaviour matches byte for byte.
    let (code, text) = run(&["--update"]);
    assert_eq!(code, Some(0), "{text}");
    let first = std::fs::read_to_string(snaps.join("f01-one-version-per-token.snap")).unwrap();
    assert!(first.contains("verdict: pass") && first.contains("createSecret t1"), "{first}");
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "the same function gave another trace:\n{text}");

    // The function changes: it now describes the secret twice per step. Still correct, but
    // the behaviour differs, and the run says how, as a diff.
    let rotation = function.join("rotation.py");
    let code_text = std::fs::read_to_string(&rotation).unwrap();
    let call = "    metadata = rotation.client.describe_secret(SecretId=arn)\n";
    assert!(code_text.contains(call));
    std::fs::write(&rotation, code_text.replace(call, &format!("    rotation.client.describe_secret(SecretId=arn)\n{call}"))).unwrap();
    let (code, text) = run(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the behaviour changed from the snapshot"), "{text}");
    let diff_line = |sign: char, calls: &str| text.lines().any(|l| l.trim_start().starts_with(sign) && l.contains(calls));
    assert!(diff_line('-', "calls: DescribeSecret, GetSecretValue(AWSCURRENT)"), "{text}");
    assert!(diff_line('+', "calls: DescribeSecret, DescribeSecret, GetSecretValue(AWSCURRENT)"), "{text}");
    assert!(text.contains("2 snapshot(s) changed"), "{text}");
    // --update accepts it; the next run passes.
    let (code, text) = run(&["--update"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert_ne!(std::fs::read_to_string(snaps.join("f01-one-version-per-token.snap")).unwrap(), first);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn bad_scenario_input_is_one_line_and_exit_2() {
    let dir = temp_dir("bad-scenarios");
    let unknown = dir.join("unknown-field.yaml");
    std::fs::write(&unknown, "version: 1\nname: x\nsetup: {username: u}\ncommands: [{do: rotate, retry: 2}]\n").unwrap();
    let old = dir.join("no-version.yaml");
    std::fs::write(&old, "name: x\nsetup: {username: u}\n").unwrap();
    let empty = temp_dir("empty-scenarios");
    for (args, says) in [
        (vec!["scenario", "run", "/does/not/exist.yaml", "--function", "fixtures/python/postgres-single-user"], "cannot read"),
        (vec!["scenario", "run", s(&unknown), "--function", "fixtures/python/postgres-single-user"], "retry"),
        (vec!["scenario", "run", s(&old), "--function", "fixtures/python/postgres-single-user"], "version: 1"),
        (vec!["scenario", "run", s(&empty), "--function", "fixtures/python/postgres-single-user"], "no scenario files"),
        (vec!["scenario", "run", "scenarios/f01-one-version-per-token.yaml"], "--function"),
        (vec!["replay", s(&unknown), "--function", "fixtures/python/postgres-single-user"], "retry"),
    ] {
        let (code, text) = rotcheck(&args);
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{args:?}: {text}");
        assert!(text.contains(says) && !text.contains("panicked"), "{args:?}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn the_library_covers_the_known_failure_modes() {
    let all = Scenario::load_all(&common::root().join("scenarios")).unwrap();
    assert!(all.len() >= 20, "{} scenarios", all.len());
    let covered: std::collections::BTreeSet<&str> = all.iter().flat_map(|(_, s)| s.failure_modes.iter().map(String::as_str)).collect();
    for f in ["F01", "F02", "F03", "F05", "F06", "F08", "F09", "F14", "F17", "F19", "F24", "F25", "F27"] {
        assert!(covered.contains(f), "no scenario covers {f}");
    }
    // Every name is unique, every seed too (two scenarios never share a password stream).
    let names: std::collections::BTreeSet<&str> = all.iter().map(|(_, s)| s.name.as_str()).collect();
    let seeds: std::collections::BTreeSet<u64> = all.iter().map(|(_, s)| s.seed).collect();
    assert_eq!(names.len(), all.len());
    assert_eq!(seeds.len(), all.len());
}

#[test]
fn every_scenario_snapshot_belongs_to_a_scenario_and_none_is_pending() {
    let root = common::root();
    let mut n = 0;
    for e in std::fs::read_dir(root.join("tests/snapshots")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(!name.ends_with(".snap.new") && !name.ends_with(".pending-snap"), "an unreviewed snapshot: tests/snapshots/{name}");
        let Some(rest) = name.strip_prefix("scenarios__") else { continue };
        let (fixture, file) = rest.trim_end_matches(".snap").split_once('@').unwrap();
        let path = root.join("scenarios").join(file);
        assert!(path.exists(), "tests/snapshots/{name}: no scenario {file} (delete the snapshot)");
        let s = Scenario::load(&path).unwrap();
        let (strategy, engine) = match fixture {
            "postgres-single-user" => (rotcheck_harness::schedule::Strategy::SingleUser, rotcheck_harness::database::Engine::Postgres),
            "postgres-alternating-users" => (rotcheck_harness::schedule::Strategy::AlternatingUsers, rotcheck_harness::database::Engine::Postgres),
            "mysql-single-user" => (rotcheck_harness::schedule::Strategy::SingleUser, rotcheck_harness::database::Engine::Mysql),
            other => panic!("tests/snapshots/{name}: unknown fixture {other}"),
        };
        assert!(s.applies_to.admits(strategy, engine), "tests/snapshots/{name}: {file} does not apply to {fixture} (delete the snapshot)");
        n += 1;
    }
    assert!(n >= 60, "{n} scenario snapshots");
}
