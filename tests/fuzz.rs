//! Fuzzing rotcheck's two parsers of untrusted input with proptest over raw input:
//!
//! - the emulator's request handling: random targets, headers and bodies (random bytes,
//!   random JSON, and valid requests whose fields get values of the wrong type, size or
//!   shape), sent over real HTTP. Every input gets an answer (no panic, no hang), and every
//!   answer that is not a 200 has the AWS error shape `{"__type", "Message"}`.
//! - the scenario parser: random text and mutations of the curated scenario files. It never
//!   panics; what it accepts it writes back in a form it parses again to the same scenario.
//!
//! The test command runs a few thousand inputs of each. A long run is
//! `ROTCHECK_FUZZ_CASES=100000 cargo test --release --test fuzz -- --nocapture`, which prints
//! how many inputs ran.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rotcheck_harness::model::Operation;
use rotcheck_harness::scenario::Scenario;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn cases(default: u32) -> u32 {
    std::env::var("ROTCHECK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, max_shrink_iters: 2000, ..Config::default() }
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        // Long strings: values near and over the API's limits.
        (0usize..70_000).prop_map(|n| Value::String("x".repeat(n))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The fields of the rotation API, each with a value that may be right, wrong or absurd.
fn request_body() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("SecretId"),
        Just("Name"),
        Just("ClientRequestToken"),
        Just("VersionId"),
        Just("VersionStage"),
        Just("VersionStages"),
        Just("SecretString"),
        Just("SecretBinary"),
        Just("MoveToVersionId"),
        Just("RemoveFromVersionId"),
        Just("PasswordLength"),
        Just("ExcludeCharacters"),
        Just("ExcludePunctuation"),
        Just("RequireEachIncludedType"),
        Just("RotateImmediately"),
        Just("RotationRules"),
        Just("RecoveryWindowInDays"),
        Just("ForceDeleteWithoutRecovery"),
        Just("IncludeDeprecated"),
        Just("MaxResults"),
        Just("NextToken"),
    ];
    let value = prop_oneof![
        3 => any_json(),
        2 => prop_oneof![Just(json!("AWSCURRENT")), Just(json!("AWSPENDING")), Just(json!("AWSPREVIOUS")), Just(json!("fuzz/secret"))],
        1 => "[a-f0-9-]{32,64}".prop_map(Value::String),
        1 => (-5i64..5000).prop_map(|n| json!(n)),
    ];
    prop::collection::btree_map(field, value, 0..7).prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// A target header: an operation of the API, or anything an HTTP header may hold.
fn target() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => prop::sample::select(Operation::ALL.to_vec()).prop_map(|op| Some(format!("secretsmanager.{}", op.name()))),
        1 => "[ -~]{0,60}".prop_map(Some),
        1 => Just(None),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => request_body().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        // Valid JSON cut short.
        1 => request_body().prop_flat_map(|v| {
            let b = serde_json::to_vec(&v).unwrap();
            let n = b.len();
            (Just(b), 0..=n)
        })
        .prop_map(|(b, n)| b[..n].to_vec()),
    ]
}

#[test]
fn the_emulator_answers_every_input_with_the_aws_error_shape() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Each input goes to two emulators: one answering any caller, one verifying signatures
    // (as `check` and `serve` run it), so the SigV4 parser is fuzzed too.
    let (_open, server) = rt.block_on(common::emulator(9));
    let (signed, signed_server) = rt.block_on(common::emulator(9));
    signed.verify_signatures(true);
    signed.add_credentials("AKIDFUZZ", "fuzz-secret");
    let addrs = [server.addr(), signed_server.addr()];
    let n = cases(2000);
    let ran = AtomicU64::new(0);
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    let mut runner = TestRunner::new(config(n));
    let auth = prop_oneof![
        Just(None),
        Just(Some("AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00".to_string())),
        "[ -~]{0,80}".prop_map(Some),
    ];
    let result = runner.run(&(target(), body(), auth, 0usize..2), |(target, body, auth, which)| {
        ran.fetch_add(1, Ordering::Relaxed);
        let addr = addrs[which];
        let started = Instant::now();
        let mut head = format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        if let Some(t) = &target {
            head.push_str(&format!("X-Amz-Target: {t}\r\n"));
        }
        if let Some(a) = &auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let mut req = head.into_bytes();
        req.extend_from_slice(&body);
        let answer = rt.block_on(common::raw_request(addr, &req));
        let took = started.elapsed();
        {
            let mut s = slowest.lock().unwrap();
            *s = (*s).max(took);
        }
        let Some(answer) = answer else {
            return Err(TestCaseError::fail("no answer: the connection closed or the emulator hung"));
        };
        prop_assert!(took < Duration::from_secs(5), "answered after {took:?}");
        let parsed: Result<Value, _> = serde_json::from_str(&answer.body);
        let Ok(parsed) = parsed else {
            return Err(TestCaseError::fail(format!("status {} with a body that is not JSON: {:?}", answer.status, answer.body)));
        };
        if answer.status == 200 {
            prop_assert!(parsed.is_object(), "{parsed}");
        } else {
            prop_assert!((400..600).contains(&answer.status), "status {}", answer.status);
            prop_assert!(parsed["__type"].is_string() && parsed["Message"].is_string(), "not the AWS error shape: {parsed}");
            prop_assert_eq!(answer.header("x-amzn-errortype"), parsed["__type"].as_str());
        }
        Ok(())
    });
    // The emulator still serves after all of it.
    let still = rt.block_on(common::raw_post(addrs[0], Some("secretsmanager.GetRandomPassword"), b"{}"));
    assert_eq!(still.status, 200, "{still:?}");
    let refused = rt.block_on(common::raw_post(addrs[1], Some("secretsmanager.GetRandomPassword"), b"{}"));
    assert_eq!(refused.json()["__type"], "IncompleteSignature", "{refused:?}");
    eprintln!("fuzz: {} emulator inputs, slowest answer {:?}", ran.load(Ordering::Relaxed), slowest.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Edits that keep a scenario file almost right, which is where parsers break.
#[derive(Clone, Debug)]
enum Edit {
    DeleteRange(usize, usize),
    Insert(usize, String),
    ReplaceLine(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Indent(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let snippet = prop_oneof![
        ".{0,12}",
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("\n  ".to_string()),
        Just("version: 99".to_string()),
        Just("!!binary aGk=".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("{".to_string()),
        Just("'".to_string()),
        Just("nth: 18446744073709551616".to_string()),
        Just("attempt: -1".to_string()),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::DeleteRange(a, n)),
        (any::<usize>(), snippet.clone()).prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), snippet).prop_map(|(a, s)| Edit::ReplaceLine(a, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), 0usize..6).prop_map(|(a, n)| Edit::Indent(a, n)),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let chars: Vec<char> = text.chars().collect();
    let n = lines.len().max(1);
    match edit {
        Edit::DeleteRange(a, len) => {
            let a = a % chars.len().max(1);
            let b = (a + len).min(chars.len());
            return chars[..a].iter().chain(&chars[b..]).collect();
        }
        Edit::Insert(a, s) => {
            let a = a % (chars.len() + 1);
            return chars[..a].iter().collect::<String>() + s + &chars[a..].iter().collect::<String>();
        }
        Edit::ReplaceLine(a, s) => {
            if !lines.is_empty() {
                lines[a % n] = s.clone();
            }
        }
        Edit::DuplicateLine(a) => {
            if !lines.is_empty() {
                let l = lines[a % n].clone();
                lines.insert(a % n, l);
            }
        }
        Edit::SwapLines(a, b) => {
            if !lines.is_empty() {
                lines.swap(a % n, b % n);
            }
        }
        Edit::Indent(a, k) => {
            if !lines.is_empty() {
                lines[a % n] = format!("{}{}", " ".repeat(*k), lines[a % n].trim_start());
            }
        }
    }
    lines.join("\n")
}

#[test]
fn the_scenario_parser_never_panics_and_round_trips_what_it_accepts() {
    let files: Vec<String> = std::fs::read_dir(common::root().join("scenarios"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(files.len() >= 20, "the curated scenarios are the seeds");
    let n = cases(4000);
    let (ran, accepted) = (AtomicU64::new(0), AtomicU64::new(0));
    let input = prop_oneof![
        1 => ".{0,400}",
        6 => (prop::sample::select(files), prop::collection::vec(edit(), 1..5)).prop_map(|(f, edits)| edits.iter().fold(f, |t, e| apply(&t, e))),
    ];
    let mut runner = TestRunner::new(config(n));
    let result = runner.run(&input, |text| {
        ran.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let parsed = std::panic::catch_unwind(|| Scenario::from_yaml(&text));
        prop_assert!(started.elapsed() < Duration::from_secs(2), "parsing took {:?}", started.elapsed());
        let Ok(parsed) = parsed else {
            return Err(TestCaseError::fail("the parser panicked"));
        };
        match parsed {
            Ok(s) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let again = Scenario::from_yaml(&s.to_yaml());
                prop_assert!(again.is_ok(), "what it accepted does not parse back: {:?}", again.err().map(|e| e.to_string()));
                prop_assert_eq!(again.unwrap(), s);
            }
            Err(e) => prop_assert!(!e.to_string().trim().is_empty(), "an error without a message"),
        }
        Ok(())
    });
    eprintln!("fuzz: {} scenario inputs, {} accepted", ran.load(Ordering::Relaxed), accepted.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("{e}");
    }
}
