//! Every broken fixture's committed counterexample replays to the violation it records, and
//! the same schedule against the correct fixture the broken one was made from does not: the
//! counterexample is about the bug, not about rotcheck.

mod common;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn replay(scenario: &std::path::Path, function: Option<&str>) -> (Option<i32>, String) {
    let mut c = Command::new(BIN);
    c.arg("replay").arg(scenario).args(["--db", "local"]).current_dir(common::root());
    if let Some(f) = function {
        c.args(["--function", f]);
    }
    let out = c.output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn broken_fixtures_counterexamples_replay() {
    let broken = common::root().join("fixtures/python/broken");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&broken).unwrap().flatten() {
        let file = entry.path().join("counterexample.yaml");
        if !file.exists() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let (code, text) = replay(&file, None);
        assert_eq!(code, Some(0), "{name}: the counterexample no longer reproduces:\n{text}");
        assert!(text.contains("as expected: violation"), "{name}:\n{text}");
        let base = if name.starts_with("alternating") {
            "fixtures/python/postgres-alternating-users"
        } else if name.starts_with("mysql") {
            "fixtures/python/mysql-single-user"
        } else {
            "fixtures/python/postgres-single-user"
        };
        let (code, text) = replay(&file, Some(base));
        assert_eq!(code, Some(1), "{name}: the correct fixture {base} shows the same violation:\n{text}");
        assert!(text.contains("got pass"), "{name} against {base}:\n{text}");
        replayed += 1;
    }
    assert!(replayed >= 12, "only {replayed} counterexamples found");
}
