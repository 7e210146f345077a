//! `rotcheck check --json / --junit / --markdown` and the options that shape a run (--only,
//! --skip, --shard, --quick): the JSON report validates against `docs/report.schema.json`, and
//! `junitparser` (PyPI) reads the JUnit XML with the test, failure and skip counts of the run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rotcheck-reports-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `rotcheck check` with every report; returns (exit code, stdout, JSON report, what
/// junitparser counted).
fn check(function: &str, extra: &[&str], out: &Path) -> (Option<i32>, String, serde_json::Value, serde_json::Value) {
    let (json, junit, md) = (out.join("report.json"), out.join("report.xml"), out.join("report.md"));
    let o = Command::new(BIN)
        .args(["check", function, "--db", "local", "--seed", "5"])
        .args(extra)
        .arg("--out")
        .arg(out.join("cx"))
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--markdown")
        .arg(&md)
        .current_dir(common::root())
        .output()
        .unwrap();
    let stdout = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}: {stdout}"))).unwrap();
    let py = common::python();
    let r = Command::new(py).arg(common::root().join("tests/python/check_reports.py")).arg(&json).arg(common::root().join("docs/report.schema.json")).arg(&junit).output().unwrap();
    let parsed = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(r.status.success(), "{parsed}{}", String::from_utf8_lossy(&r.stderr));
    let counted: serde_json::Value = serde_json::from_str(parsed.trim()).unwrap();
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.starts_with("## rotcheck: ") && markdown.contains("| P1 | label safety |"), "{markdown}");
    (o.status.code(), stdout, report, counted)
}

fn count(report: &serde_json::Value, status: &str) -> usize {
    report["properties"].as_array().unwrap().iter().filter(|p| p["status"] == status).count()
}

#[test]
fn a_broken_function_fails_in_every_report() {
    let out = dir("broken");
    let (code, stdout, report, counted) = check("fixtures/python/broken/password-not-changed", &["--cases", "3", "--no-sweep", "--max-shrink", "5"], &out);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(report["verdict"], "fail");
    let failed = count(&report, "fail");
    assert!(failed >= 1, "{report}");
    assert_eq!(counted["tests"], 9, "{counted}");
    assert_eq!(counted["failures"], failed, "{counted} vs {report}");
    assert_eq!(counted["skipped"], 0);
    let f = &report["failure"];
    assert_eq!(f["property"], "P4", "{report}");
    assert!(f["story"].as_str().unwrap().contains("1. rotate"), "{report}");
    assert!(Path::new(f["counterexample"].as_str().unwrap()).exists());
    assert!(counted["failed"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().starts_with("P4 ")), "{counted}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn only_skip_quick_and_shard_shape_a_clean_run() {
    let out = dir("clean");
    let (code, stdout, report, counted) = check("fixtures/python/postgres-single-user", &["--quick", "--only", "P1,P2,P3,P4", "--skip", "P2", "--shard", "2/2"], &out);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["shard"], "2/2");
    // --quick: 8 generated cases and no sweep; shard 2 of 2 runs the odd ones.
    assert_eq!(report["cases"], 4, "{report}");
    assert_eq!(count(&report, "skipped"), 6, "{report}");
    assert_eq!(count(&report, "pass"), 3, "{report}");
    assert_eq!((counted["tests"].as_u64(), counted["failures"].as_u64(), counted["skipped"].as_u64()), (Some(9), Some(0), Some(6)), "{counted}");
    assert!(stdout.contains("skipped") && stdout.contains("Seed: 5"), "{stdout}");
    // The least privilege the fixture needed: exactly what its code calls (rotation.py).
    assert_eq!(
        report["least_privilege_policy"],
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Resource": "${RotatedSecretArn}", "Action": [
                "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]},
            {"Effect": "Allow", "Resource": "*", "Action": ["secretsmanager:GetRandomPassword"]},
        ]}),
        "{report}"
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("\"Resource\": \"${RotatedSecretArn}\""), "{markdown}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_run_options_are_one_line_and_exit_2() {
    for (args, says) in [
        (vec!["--shard", "3/2"], "--shard"),
        (vec!["--shard", "x"], "--shard"),
        (vec!["--only", "P9"], "P9"),
        (vec!["--only", "P1", "--skip", "P1"], "no property"),
        (vec!["--json", "/does/not/exist/r.json"], "/does/not/exist"),
    ] {
        let o = Command::new(BIN).args(["check", "fixtures/python/postgres-single-user", "--db", "local"]).args(&args).current_dir(common::root()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
