//! The redaction audit: no secret value reaches anything rotcheck writes.
//!
//! The function under test is a real fixture wrapped by a few lines of Python that record, in
//! a side file rotcheck never reads, every password the function saw or made (the
//! SecretString of every GetSecretValue answer and PutSecretValue request, every
//! RandomPassword). rotcheck then runs it the ways a user does: `check` with every report and
//! debug logging, a broken fixture that prints the password to its logs (so that a failure is
//! found, shrunk and written as a counterexample), `replay` of that counterexample, and
//! `scenario run --update` writing snapshots. Every artifact (stdout, stderr, reports,
//! counterexamples, snapshots) is scanned for each password and each 8-character substring of
//! it, in plain, JSON-escaped, SQL-quoted and URL-encoded forms: there must be no hit.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

/// Records what the function sees: patched onto boto3 before the fixture is imported, so the
/// function's own code is unchanged.
const WRAPPER: &str = r#"
import json, os
import boto3.session

_AUDIT = os.environ["ROTCHECK_AUDIT_FILE"]
_client = boto3.session.Session.client


def _record(value):
    if not value:
        return
    values = [value]
    try:
        doc = json.loads(value)
        if isinstance(doc, dict) and doc.get("password"):
            values.append(str(doc["password"]))
    except ValueError:
        pass
    with open(_AUDIT, "a") as f:
        for v in values:
            f.write(json.dumps(v) + "\n")


def _audited_client(self, *args, **kwargs):
    client = _client(self, *args, **kwargs)
    get, put, rnd = client.get_secret_value, client.put_secret_value, client.get_random_password

    def get_secret_value(**kw):
        out = get(**kw)
        _record(out.get("SecretString"))
        return out

    def put_secret_value(**kw):
        _record(kw.get("SecretString"))
        return put(**kw)

    def get_random_password(**kw):
        out = rnd(**kw)
        _record(out.get("RandomPassword"))
        return out

    client.get_secret_value = get_secret_value
    client.put_secret_value = put_secret_value
    client.get_random_password = get_random_password
    return client


boto3.session.Session.client = _audited_client

from lambda_function import lambda_handler  # noqa: E402
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A fixture with the recording wrapper beside it.
fn audited(fixture: &str, into: &Path) -> PathBuf {
    let dir = into.join(Path::new(fixture).file_name().unwrap());
    copy_dir(&common::root().join(fixture), &dir);
    let _ = std::fs::remove_file(dir.join("counterexample.yaml"));
    std::fs::write(dir.join("audit_wrapper.py"), WRAPPER).unwrap();
    dir
}

/// Runs rotcheck; returns (exit code, stdout + stderr).
fn rotcheck(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("ROTCHECK_LOG", "debug")
        .current_dir(common::root())
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Every file under `dir`, recursively, except the function directories.
fn files(dir: &Path, skip: &[&Path], out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if skip.iter().any(|s| p == *s) {
            continue;
        }
        if p.is_dir() {
            files(&p, skip, out);
        } else {
            out.push(p);
        }
    }
}

fn json_escaped(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap();
    q[1..q.len() - 1].to_string()
}

fn url_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What must not appear: each form of each password, as 8-character windows (a password
/// shorter than 8 characters as a whole).
fn needles(passwords: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut out = BTreeSet::new();
    for (i, p) in passwords.iter().enumerate() {
        for form in [p.clone(), json_escaped(p), p.replace('\'', "''"), url_encoded(p), url_encoded(p).replace('+', "%20")] {
            let chars: Vec<char> = form.chars().collect();
            if chars.len() <= 8 {
                out.insert((i, form));
                continue;
            }
            for w in chars.windows(8) {
                out.insert((i, w.iter().collect()));
            }
        }
    }
    out.into_iter().collect()
}

#[test]
fn no_password_reaches_any_artifact() {
    let work = std::env::temp_dir().join(format!("rotcheck-redaction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let audit = work.join("audit.jsonl");
    let env = format!("ROTCHECK_AUDIT_FILE={}", audit.display());
    let clean = audited("fixtures/python/postgres-single-user", &work.join("fn"));
    let broken = audited("fixtures/python/broken/logs-password", &work.join("fn"));
    let s = |p: &Path| p.display().to_string();
    let arts = work.join("artifacts");
    std::fs::create_dir_all(&arts).unwrap();
    let mut transcripts = Vec::new();

    // 1. A clean run with every report, every story, debug logs.
    let (code, text) = rotcheck(
        &[
            "check", &s(&clean), "--db", "local", "--cases", "12", "--seed", "11", "--no-sweep", "--verbose",
            "--handler", "audit_wrapper.lambda_handler", "--env", &env,
            "--out", &s(&arts.join("cx-clean")),
            "--json", &s(&arts.join("clean.json")), "--junit", &s(&arts.join("clean.xml")),
            "--markdown", &s(&arts.join("clean.md")), "--policy", &s(&arts.join("clean-policy.json")),
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    transcripts.push(("check (clean)", text));

    // 2. A function that prints the password: found (P8), shrunk, written down.
    let (code, text) = rotcheck(
        &[
            "check", &s(&broken), "--db", "local", "--cases", "4", "--seed", "11", "--no-sweep", "--verbose", "--max-shrink", "10",
            "--handler", "audit_wrapper.lambda_handler", "--env", &env,
            "--out", &s(&arts.join("cx")),
            "--json", &s(&arts.join("broken.json")), "--markdown", &s(&arts.join("broken.md")),
        ],
    );
    assert_eq!(code, Some(1), "the broken fixture is caught:\n{text}");
    assert!(text.contains("VIOLATION P8"), "{text}");
    transcripts.push(("check (logs the password)", text));
    let cx: Vec<PathBuf> = std::fs::read_dir(arts.join("cx")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(cx.len(), 1, "one counterexample");

    // 3. Its replay, and the counterexample as a scenario with snapshots written.
    let (code, text) = rotcheck(
        &["replay", &s(&cx[0]), "--db", "local", "--function", &s(&broken), "--handler", "audit_wrapper.lambda_handler", "--env", &env],
    );
    // The counterexample expects its violation: replaying it reproduces P8.
    assert!(code.is_some() && text.contains("P8"), "{text}");
    transcripts.push(("replay", text));
    let (code, text) = rotcheck(
        &[
            "scenario", "run", &s(&arts.join("cx")), "--db", "local", "--function", &s(&broken),
            "--handler", "audit_wrapper.lambda_handler", "--env", &env,
            "--snapshots", &s(&arts.join("snapshots")), "--update", "--verbose",
        ],
    );
    assert!(code.is_some(), "{text}");
    transcripts.push(("scenario run --update", text));
    let mut snaps = Vec::new();
    files(&arts.join("snapshots"), &[], &mut snaps);
    assert!(!snaps.is_empty(), "snapshots were written");

    // What the function saw: enough passwords that the audit means something.
    let passwords: BTreeSet<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<String>(l).ok())
        .filter(|v| !v.starts_with('{'))
        .collect();
    assert!(passwords.len() >= 30, "only {} passwords recorded", passwords.len());
    let needles = needles(&passwords);

    let mut artifacts: Vec<(String, String)> = transcripts.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    let mut paths = Vec::new();
    files(&arts, &[], &mut paths);
    assert!(paths.len() >= 8, "{paths:?}");
    for p in paths {
        artifacts.push((p.display().to_string(), String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string()));
    }
    let scanned: usize = artifacts.iter().map(|(_, t)| t.len()).sum();
    assert!(scanned > 20_000, "only {scanned} bytes of artifacts");
    let ac = aho_corasick::AhoCorasick::new(needles.iter().map(|(_, n)| n)).unwrap();
    // The scanner itself finds a leak: any form of any recorded password, cut anywhere.
    for p in passwords.iter().filter(|p| p.chars().count() >= 12).take(5) {
        for leaked in [p.clone(), json_escaped(p), url_encoded(p), p.replace('\'', "''")] {
            let cut: String = leaked.chars().skip(1).take(9).collect();
            assert!(ac.is_match(&format!("log line: {cut} end")), "the scanner misses a leak of password #{}", passwords.iter().position(|x| x == p).unwrap());
        }
    }
    let mut hits = Vec::new();
    for (name, text) in &artifacts {
        for m in ac.find_iter(text) {
            // Name the password by its index only: the test's own output must not leak it.
            hits.push(format!("{name} at byte {}: a window of password #{}", m.start(), needles[m.pattern().as_usize()].0));
        }
    }
    assert!(hits.is_empty(), "{} hit(s) of {} passwords in {} artifacts:\n{}", hits.len(), passwords.len(), artifacts.len(), hits.join("\n"));
    eprintln!("redaction audit: {} passwords, {} needles, {} artifacts, {scanned} bytes: no hit", passwords.len(), needles.len(), artifacts.len());
    let _ = std::fs::remove_dir_all(&work);
}
