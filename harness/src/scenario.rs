//! Scenario files: a [schedule](crate::schedule) plus what a person expects of it, in YAML.
//!
//! Hand-written regression cases live in `scenarios/`; `rotcheck check` writes every shrunk
//! counterexample in the same format, so a failure becomes a fixed case by copying one file.
//! The format is documented with an example per command in `scenarios/README.md`.
//!
//! ```
//! use rotcheck_harness::scenario::{Expected, Scenario};
//! let s = Scenario::from_yaml(r#"
//! version: 1
//! name: a second rotation after the first one
//! failure_modes: [F03]
//! setup: { username: app_user }
//! commands:
//!   - do: rotate
//!   - do: rotate
//! expect:
//!   verdict: pass
//!   labels: { AWSCURRENT: v3, AWSPREVIOUS: v2, AWSPENDING: none }
//!   logs_in: { AWSCURRENT: true }
//! "#).unwrap();
//! assert_eq!(s.expect.outcome, Expected::Pass);
//! assert_eq!(s.expect.labels["AWSCURRENT"], "v3");
//! ```
//!
//! Versions: a file says which format it is written in (`version: 1`). A file without one, or
//! of a newer format than this rotcheck reads, is refused with a message saying what to do; when
//! the format changes, older versions keep loading (or the message says how to migrate).

use crate::checker::{Observed, Property};
use crate::database::Engine;
use crate::runner::CaseResult;
use crate::schedule::{Schedule, Strategy, is_default};
use serde::{Deserialize, Serialize};
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The version of the scenario format this rotcheck writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The top-level keys of a scenario file: anything else is refused by name.
const KEYS: [&str; 11] = ["version", "name", "description", "failure_modes", "applies_to", "function", "seed", "setup", "commands", "expect", "catches"];

/// A schedule with what a person expects of it: the scenario file format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// A short name.
    pub name: String,
    /// What the scenario shows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The failure modes of `failure-modes.md` it covers (F-ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_modes: Vec<String>,
    /// Which functions it applies to.
    #[serde(default, skip_serializing_if = "is_default")]
    pub applies_to: AppliesTo,
    /// The function it was found with or written for (a directory), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The case seed: initial password and tokens come from it.
    #[serde(default)]
    pub seed: u64,
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// What should happen to a correct function (read and written by hand: see [`Expectation`]).
    #[serde(skip)]
    pub expect: Expectation,
    /// Broken functions this scenario is known to catch, and the property that catches each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catches: Vec<Catch>,
}

/// A broken function a scenario catches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catch {
    /// The function's directory, relative to the repository root.
    pub function: String,
    /// The property it violates here (`P2`, ...).
    pub violation: String,
}

/// Which functions a scenario applies to (absent: all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    /// Only functions of this user strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Only this database engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
}

impl AppliesTo {
    /// Whether a function of this strategy and engine is concerned.
    pub fn admits(&self, strategy: Strategy, engine: Engine) -> bool {
        self.strategy.is_none_or(|s| s == strategy) && self.engine.is_none_or(|e| e == engine)
    }
}

/// What a scenario expects.
///
/// In YAML either one word (`pass`, `operator-unsafe`), `{violation: P3}`, or a map with a
/// `verdict` (or `violation`) and optionally the final `labels` (label to version alias, or
/// `none`) and which labelled credentials log in at the end (`logs_in`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectation {
    /// The verdict.
    pub outcome: Expected,
    /// Final labels: `AWSCURRENT: v3`, `AWSPENDING: none`.
    pub labels: BTreeMap<String, String>,
    /// Whether the credentials under a label log in at the end: `AWSPREVIOUS: false`.
    pub logs_in: BTreeMap<String, bool>,
}

/// The verdict a scenario expects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Expected {
    /// No property is violated (also what a file without `expect` means).
    #[default]
    Pass,
    /// An operator command made the state unsafe: not the function's fault.
    OperatorUnsafe,
    /// This property is violated.
    Violation(Property),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Pass => f.write_str("pass"),
            Expected::OperatorUnsafe => f.write_str("operator-unsafe"),
            Expected::Violation(p) => write!(f, "violation {}", p.id()),
        }
    }
}

impl Expectation {
    /// No violation expected.
    pub fn pass() -> Expectation {
        Expectation::default()
    }

    /// A violation of `property` expected.
    pub fn violation(property: Property) -> Expectation {
        Expectation { outcome: Expected::Violation(property), ..Expectation::default() }
    }

    fn from_value(v: &Value) -> Result<Expectation, String> {
        let word = |w: &str| match w {
            "pass" => Ok(Expected::Pass),
            "operator-unsafe" => Ok(Expected::OperatorUnsafe),
            other => Err(format!("`expect: {other}` is not a verdict; write pass, operator-unsafe, or {{violation: P3}}")),
        };
        let property = |p: &str| Property::parse(p).map(Expected::Violation).ok_or_else(|| format!("`violation: {p}` names no property; use P1..P8 or contract"));
        match v {
            Value::String(w) => Ok(Expectation { outcome: word(w)?, ..Expectation::default() }),
            Value::Mapping(m) => {
                let mut e = Expectation::default();
                let mut outcome = None;
                for (k, v) in m {
                    let key = k.as_str().unwrap_or_default();
                    let text = || v.as_str().map(str::to_string).ok_or_else(|| format!("`expect.{key}` must be a word"));
                    match key {
                        "verdict" => outcome = Some(word(&text()?)?),
                        "violation" => outcome = Some(property(&text()?)?),
                        "labels" => {
                            e.labels = serde_norway::from_value(v.clone()).map_err(|err| format!("`expect.labels` maps a label to a version alias (AWSCURRENT: v2) or none: {err}"))?
                        }
                        "logs_in" => {
                            e.logs_in = serde_norway::from_value(v.clone()).map_err(|err| format!("`expect.logs_in` maps a label to true or false: {err}"))?
                        }
                        other => return Err(format!("unknown field `expect.{other}`; expected verdict, violation, labels or logs_in")),
                    }
                }
                e.outcome = outcome.unwrap_or_default();
                Ok(e)
            }
            _ => Err("`expect` must be pass, operator-unsafe, or a map".into()),
        }
    }

    fn to_value(&self) -> Value {
        let word = |o: &Expected| match o {
            Expected::Pass => ("verdict", "pass".to_string()),
            Expected::OperatorUnsafe => ("verdict", "operator-unsafe".to_string()),
            Expected::Violation(p) => ("violation", p.id().to_string()),
        };
        if self.labels.is_empty() && self.logs_in.is_empty() && !matches!(self.outcome, Expected::Violation(_)) {
            return Value::String(word(&self.outcome).1);
        }
        let mut m = serde_norway::Mapping::new();
        let (k, v) = word(&self.outcome);
        m.insert(k.into(), v.into());
        if !self.labels.is_empty() {
            m.insert("labels".into(), serde_norway::to_value(&self.labels).expect("labels serialize"));
        }
        if !self.logs_in.is_empty() {
            m.insert("logs_in".into(), serde_norway::to_value(&self.logs_in).expect("logins serialize"));
        }
        Value::Mapping(m)
    }
}

/// Errors reading a scenario: one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("not a rotcheck scenario: {0}")]
    #[allow(missing_docs)]
    Syntax(String),
    #[error("the scenario has no `version:`; add `version: {FORMAT_VERSION}` at the top")]
    #[allow(missing_docs)]
    NoVersion,
    #[error("the scenario is format version {0}, newer than this rotcheck reads ({FORMAT_VERSION}); upgrade rotcheck")]
    #[allow(missing_docs)]
    TooNew(u32),
    #[error("format version 0 does not exist; scenario files start at `version: 1`")]
    #[allow(missing_docs)]
    Zero,
}

impl Scenario {
    /// Reads a scenario from YAML, checking its format version and refusing unknown fields.
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let raw: Value = serde_norway::from_str(text).map_err(|e| ScenarioError::Syntax(e.to_string()))?;
        let Value::Mapping(mut map) = raw else {
            return Err(ScenarioError::Syntax("the file is not a YAML map of fields".into()));
        };
        match map.get("version").and_then(|v| v.as_u64()) {
            None => return Err(ScenarioError::NoVersion),
            Some(0) => return Err(ScenarioError::Zero),
            Some(v) if v > FORMAT_VERSION as u64 => return Err(ScenarioError::TooNew(v as u32)),
            Some(_) => {}
        }
        for k in map.keys() {
            let key = k.as_str().unwrap_or("?");
            if !KEYS.contains(&key) {
                return Err(ScenarioError::Syntax(format!("unknown field `{key}`; a scenario has {}", KEYS.join(", "))));
            }
        }
        let expect = match map.remove("expect") {
            Some(v) => Expectation::from_value(&v).map_err(ScenarioError::Syntax)?,
            None => Expectation::default(),
        };
        let mut s: Scenario = serde_norway::from_value(Value::Mapping(map)).map_err(|e| ScenarioError::Syntax(e.to_string()))?;
        s.expect = expect;
        for c in &s.catches {
            if Property::parse(&c.violation).is_none() {
                return Err(ScenarioError::Syntax(format!("`catches: violation: {}` names no property; use P1..P8 or contract", c.violation)));
            }
        }
        Ok(s)
    }

    /// The YAML form.
    pub fn to_yaml(&self) -> String {
        let mut v = serde_norway::to_value(self).expect("scenarios serialize");
        if let Value::Mapping(m) = &mut v {
            let catches = m.remove("catches");
            m.insert("expect".into(), self.expect.to_value());
            if let Some(c) = catches {
                m.insert("catches".into(), c);
            }
        }
        serde_norway::to_string(&v).expect("scenarios serialize")
    }

    /// Reads one file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Scenario::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a file, or every `*.yaml` / `*.yml` file of a directory (sorted by name).
    pub fn load_all(path: &Path) -> Result<Vec<(PathBuf, Scenario)>, String> {
        if !path.is_dir() {
            return Ok(vec![(path.to_path_buf(), Scenario::load(path)?)]);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("{} holds no scenario files (*.yaml)", path.display()));
        }
        files.into_iter().map(|p| Scenario::load(&p).map(|s| (p, s))).collect()
    }

    /// Judges a case played from this scenario against what the scenario expects.
    pub fn judge(&self, r: &CaseResult) -> Judgement {
        judge(&self.expect, r)
    }
}

/// What a case did against what its scenario expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// What was expected, as a person reads it.
    pub expected: String,
    /// What happened.
    pub got: String,
    /// Each way the case differs from the expectation (empty: as expected).
    pub mismatches: Vec<String>,
}

impl Judgement {
    /// The case did what the scenario expects.
    pub fn as_expected(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// The verdict of a case, as a person reads it: `pass`, `operator-unsafe`, `violation P3`.
pub fn verdict(r: &CaseResult) -> String {
    if let Some(e) = &r.setup_error {
        return format!("setup failed ({e})");
    }
    match (r.violations.first(), &r.operator_unsafe) {
        (Some(_), _) => {
            let mut ids: Vec<&str> = r.violations.iter().map(|v| v.property.id()).collect();
            ids.dedup();
            format!("violation {}", ids.join(", "))
        }
        (None, Some(_)) => "operator-unsafe".into(),
        (None, None) => "pass".into(),
    }
}

/// Judges `r` against `expect`: a violation expectation holds when that property is among the
/// violations found (a broken function often breaks two at once); final labels and logins are
/// compared with the last observed state.
pub fn judge(expect: &Expectation, r: &CaseResult) -> Judgement {
    let got = verdict(r);
    let mut mismatches = Vec::new();
    let verdict_ok = r.setup_error.is_none()
        && match &expect.outcome {
            Expected::Pass => r.violations.is_empty() && r.operator_unsafe.is_none(),
            Expected::OperatorUnsafe => r.violations.is_empty() && r.operator_unsafe.is_some(),
            Expected::Violation(p) => r.violations.iter().any(|v| v.property == *p),
        };
    if !verdict_ok {
        mismatches.push(format!("expected {}, got {got}", expect.outcome));
    }
    let empty = Observed::default();
    let last = r.final_state.as_ref().unwrap_or(&empty);
    for (label, alias) in &expect.labels {
        let holder = last.holder(label).map(|v| v.alias.as_str()).unwrap_or("none");
        if holder != alias {
            mismatches.push(format!("expected {label} on {alias}, found it on {holder}"));
        }
    }
    for (label, want) in &expect.logs_in {
        let seen = last.holder(label).and_then(|v| v.logs_in);
        if seen != Some(*want) {
            let said = match seen {
                Some(true) => "they log in",
                Some(false) => "they are rejected",
                None => "no such credentials",
            };
            mismatches.push(format!("expected the {label} credentials to {}, {said}", if *want { "log in" } else { "be rejected" }));
        }
    }
    Judgement { expected: expect.outcome.to_string(), got, mismatches }
}

/// The normalised trace of a case, as snapshots hold it: the verdict, the numbered story and
/// the final state. It carries aliases (`t1`, `v2`, `<secret arn>`) in place of values, ids,
/// names and times, so the same behaviour gives the same text on every run.
pub fn snapshot_text(scenario: &Scenario, r: &CaseResult) -> String {
    let mut out = format!("scenario: {}\nverdict: {}\n", scenario.name, verdict(r));
    out.push_str("story:\n");
    for line in r.story().lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    let last = r.final_state.as_ref().map(|o| o.labels_text()).unwrap_or_else(|| "not observed".into());
    out.push_str(&format!("final: {last}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::Step;
    use crate::function::crash::CrashPoint;
    use crate::model::PasswordRecipe;
    use crate::schedule::{Command, Delivery, FaultSpec, Rotation, SecretShape, Setup, StepFault, Which};

    #[test]
    fn versions_and_unknown_fields_are_refused_with_a_way_out() {
        assert!(matches!(Scenario::from_yaml("name: x\nseed: 1\nsetup: {username: u}\n"), Err(ScenarioError::NoVersion)));
        assert!(matches!(Scenario::from_yaml("version: 9\nname: x\n"), Err(ScenarioError::TooNew(9))));
        assert!(matches!(Scenario::from_yaml("version: 0\nname: x\n"), Err(ScenarioError::Zero)));
        assert!(matches!(Scenario::from_yaml("version: 1\n: :\n"), Err(ScenarioError::Syntax(_))));
        for (yaml, named) in [
            ("version: 1\nname: x\nsetup: {username: u}\ncommands: [{do: dance}]\n", "dance"),
            ("version: 1\nname: x\nsetup: {username: u}\nexpected: pass\n", "expected"),
            ("version: 1\nname: x\nsetup: {username: u, pasword: {}}\n", "pasword"),
            ("version: 1\nname: x\nsetup: {username: u}\ncommands: [{do: rotate, retry: 2}]\n", "retry"),
            ("version: 1\nname: x\nsetup: {username: u}\nexpect: {violation: P9}\n", "P9"),
            ("version: 1\nname: x\nsetup: {username: u}\nexpect: {verdict: pass, label: {}}\n", "label"),
            ("version: 1\nname: x\nsetup: {username: u}\nexpect: passes\n", "passes"),
        ] {
            let e = Scenario::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.contains(named), "{yaml}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn every_command_and_expectation_round_trips() {
        let s = Scenario {
            version: FORMAT_VERSION,
            name: "all".into(),
            description: String::new(),
            failure_modes: vec!["F02".into()],
            applies_to: AppliesTo { strategy: Some(Strategy::SingleUser), engine: Some(Engine::Postgres) },
            function: Some("fixtures/python/postgres-single-user".into()),
            seed: 3,
            schedule: Schedule {
                setup: Setup {
                    username: "App\"User".into(),
                    password: PasswordRecipe { forced: vec![(2, '\'')] },
                    env: BTreeMap::from([("EXCLUDE_CHARACTERS".into(), String::new())]),
                    secret: SecretShape { port_as_string: true, omit_dbname: false, extra: BTreeMap::new() },
                },
                commands: vec![
                    Command::Rotate(Rotation {
                        faults: vec![
                            StepFault { attempt: 1, step: Step::SetSecret, fault: FaultSpec::Crash { point: CrashPoint::ApiCallAnswered { nth: 2 } } },
                            StepFault { attempt: 2, step: Step::CreateSecret, fault: FaultSpec::ApiLost { nth: 5 } },
                            StepFault { attempt: 1, step: Step::TestSecret, fault: FaultSpec::DbCut { bytes: 30 } },
                            StepFault { attempt: 1, step: Step::FinishSecret, fault: FaultSpec::ApiError { nth: 1, error: "ThrottlingException".into() } },
                            StepFault { attempt: 1, step: Step::FinishSecret, fault: FaultSpec::DropResult },
                        ],
                        password: PasswordRecipe { forced: vec![(0, ':')] },
                        retries: Some(1),
                    }),
                    Command::Deliver(Delivery { step: Step::FinishSecret, of: Which::Earlier, copies: 2 }),
                    Command::TestRotation,
                    Command::ClientLogin,
                    Command::RemovePending,
                    Command::CancelRotation,
                    Command::ManualPut,
                ],
            },
            expect: Expectation::violation(Property::P3),
            catches: vec![Catch { function: "fixtures/python/broken/quoting-bug".into(), violation: "P4".into() }],
        };
        let yaml = s.to_yaml();
        assert_eq!(Scenario::from_yaml(&yaml).unwrap(), s, "{yaml}");
        assert!(yaml.contains("do: rotate") && yaml.contains("violation: P3"), "{yaml}");
        let mut full = s.clone();
        full.expect = Expectation {
            outcome: Expected::OperatorUnsafe,
            labels: BTreeMap::from([("AWSCURRENT".into(), "v2".into()), ("AWSPENDING".into(), "none".into())]),
            logs_in: BTreeMap::from([("AWSPREVIOUS".into(), false)]),
        };
        assert_eq!(Scenario::from_yaml(&full.to_yaml()).unwrap(), full, "{}", full.to_yaml());
        let mut short = s;
        short.expect = Expectation::pass();
        assert!(short.to_yaml().contains("expect: pass"), "{}", short.to_yaml());
    }

    #[test]
    fn applies_to_filters_by_strategy_and_engine() {
        let any = AppliesTo::default();
        let alt = AppliesTo { strategy: Some(Strategy::AlternatingUsers), engine: None };
        let my = AppliesTo { strategy: None, engine: Some(Engine::Mysql) };
        assert!(any.admits(Strategy::SingleUser, Engine::Postgres));
        assert!(!alt.admits(Strategy::SingleUser, Engine::Postgres));
        assert!(alt.admits(Strategy::AlternatingUsers, Engine::Mysql));
        assert!(!my.admits(Strategy::SingleUser, Engine::Postgres));
    }
}
