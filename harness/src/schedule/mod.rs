//! What a test case does, as data: the setup (username, initial password, the function's
//! environment, the secret's shape) and a list of commands: rotations as Secrets Manager runs
//! them (with faults attached to their steps), duplicate and late deliveries, test-only
//! rotations, application clients, and operator actions.
//!
//! A schedule holds only what Secrets Manager and the world around it can do, never values:
//! passwords are [recipes](PasswordRecipe) that the case's seeded source turns into values. Its
//! YAML form, inside a [`Scenario`], is the scenario file format; generated schedules come
//! from [`generate`].
//!
//! ```
//! use rotcheck_harness::schedule::Scenario;
//! let yaml = r#"
//! version: 1
//! name: retry after a crash in setSecret
//! seed: 7
//! setup:
//!   username: app_user
//! commands:
//!   - do: rotate
//!     faults:
//!       - step: setSecret
//!         fault: { kind: crash, point: { at: db_connection_closed, nth: 2 } }
//! expect: pass
//! "#;
//! let s = Scenario::from_yaml(yaml).unwrap();
//! assert_eq!(s.schedule.commands.len(), 1);
//! assert_eq!(Scenario::from_yaml(&s.to_yaml()).unwrap(), s);
//! ```

pub mod generate;

use crate::database::Engine;
use crate::function::Step;
use crate::function::crash::CrashPoint;
use crate::model::PasswordRecipe;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the scenario format this rotcheck writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// How the function manages database users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One user whose password changes (spec 2.1, 2.3).
    #[default]
    SingleUser,
    /// Two users, `u` and `u_clone`, taking turns (spec 2.2).
    AlternatingUsers,
}

impl Strategy {
    /// Parses `single-user` / `alternating-users`.
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "single-user" | "single" => Some(Strategy::SingleUser),
            "alternating-users" | "alternating" | "multi-user" => Some(Strategy::AlternatingUsers),
            _ => None,
        }
    }

    /// The name used in files and flags.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SingleUser => "single-user",
            Strategy::AlternatingUsers => "alternating-users",
        }
    }
}

/// A test case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The world before the first command.
    pub setup: Setup,
    /// What happens, in order.
    #[serde(default)]
    pub commands: Vec<Command>,
}

/// The world before the first command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// The database user (the runner appends a case tag, within the engine's name limit).
    pub username: String,
    /// The initial password, drawn from the case's seed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub password: PasswordRecipe,
    /// The function's environment (EXCLUDE_CHARACTERS, PASSWORD_LENGTH, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How the secret's JSON looks.
    #[serde(default, skip_serializing_if = "is_default")]
    pub secret: SecretShape,
}

/// Variations of the secret JSON that functions must accept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretShape {
    /// `"port": "5432"` instead of `5432`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub port_as_string: bool,
    /// No `dbname` (the function must default it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub omit_dbname: bool,
    /// Extra fields the function must carry over untouched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// One command of a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Command {
    /// A rotation as Secrets Manager runs it: RotateSecret (placeholder), the four steps, and
    /// on a failed step the whole rotation again with the same token.
    Rotate(Rotation),
    /// A step delivered again: a duplicate or late delivery.
    Deliver(Delivery),
    /// A test-only rotation (RotateImmediately=false): testSecret alone, on a temporary
    /// version that the service removes.
    TestRotation,
    /// An application client reads AWSCURRENT and logs in with it.
    ClientLogin,
    /// The operator removes AWSPENDING from the version that carries it (F07).
    RemovePending,
    /// The operator calls CancelRotateSecret.
    CancelRotation,
    /// The operator puts a new value by hand (AWSCURRENT moves; the database is not told).
    ManualPut,
}

/// A service-driven rotation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    /// Faults attached to its steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<StepFault>,
    /// The recipe of the password the function will be given by GetRandomPassword.
    #[serde(default, skip_serializing_if = "is_default")]
    pub password: PasswordRecipe,
    /// Whole-rotation retries after a failed step (default: the run's, 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// A step delivered again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The step.
    pub step: Step,
    /// Of which rotation.
    #[serde(default, skip_serializing_if = "is_default")]
    pub of: Which,
    /// How many copies at once (2: two concurrent deliveries in two warm processes).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub copies: u32,
}

/// Which rotation a delivery belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// The most recent one.
    #[default]
    Latest,
    /// The one before it (a late delivery of a finished rotation).
    Earlier,
}

/// A fault attached to one step of one attempt of a rotation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepFault {
    /// Which attempt (1 = the first try, 2 = the first retry, ...).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempt: u32,
    /// Which step.
    pub step: Step,
    /// What happens.
    pub fault: FaultSpec,
}

/// What can happen to a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultSpec {
    /// The function is killed at an event.
    Crash {
        #[allow(missing_docs)]
        point: CrashPoint,
    },
    /// The step runs; its result never reaches the service.
    DropResult,
    /// The n-th Secrets Manager call of the step gets an error (not applied).
    ApiError {
        #[allow(missing_docs)]
        nth: usize,
        /// An error type of spec 3.9 (`InternalServiceError`, `ThrottlingException`, ...).
        error: String,
    },
    /// The n-th call is applied and its answer lost (the connection drops).
    ApiLost {
        #[allow(missing_docs)]
        nth: usize,
    },
    /// The step's new database connections are reset.
    DbRefuse,
    /// The step's database connections are cut after this many bytes (mid-statement).
    DbCut {
        #[allow(missing_docs)]
        bytes: u64,
    },
    /// The step's database connections are accepted and never answered.
    DbBlackhole,
}

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
    /// What should happen.
    #[serde(default, skip_serializing_if = "is_unstated")]
    pub expect: Expectation,
}

/// Which functions a scenario applies to (absent: all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliesTo {
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    #[allow(missing_docs)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
}

/// What a scenario expects: `pass`, `operator-unsafe`, or `{violation: P3}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expectation {
    /// `pass` or `operator-unsafe`.
    Outcome(Verdict),
    /// This property (e.g. `P3`) is violated.
    Violation {
        #[allow(missing_docs)]
        violation: String,
    },
    /// No expectation written: the same as `pass`.
    #[default]
    #[serde(skip)]
    Unstated,
}

/// A verdict without a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No property is violated.
    Pass,
    /// An operator command made the state unsafe.
    OperatorUnsafe,
}

impl Expectation {
    /// No violation expected.
    pub fn pass() -> Expectation {
        Expectation::Outcome(Verdict::Pass)
    }

    /// A violation of `property` expected.
    pub fn violation(property: &str) -> Expectation {
        Expectation::Violation { violation: property.into() }
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
}

impl Scenario {
    /// Reads a scenario from YAML, checking its format version.
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let raw: serde_norway::Value = serde_norway::from_str(text).map_err(|e| ScenarioError::Syntax(e.to_string()))?;
        match raw.get("version").and_then(|v| v.as_u64()) {
            None => return Err(ScenarioError::NoVersion),
            Some(v) if v > FORMAT_VERSION as u64 => return Err(ScenarioError::TooNew(v as u32)),
            Some(_) => {}
        }
        serde_norway::from_value(raw).map_err(|e| ScenarioError::Syntax(e.to_string()))
    }

    /// The YAML form.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("scenarios serialize")
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_unstated(e: &Expectation) -> bool {
    *e == Expectation::Unstated
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        assert!(matches!(Scenario::from_yaml("name: x\nseed: 1\nsetup: {username: u}\n"), Err(ScenarioError::NoVersion)));
        assert!(matches!(Scenario::from_yaml("version: 9\nname: x\n"), Err(ScenarioError::TooNew(9))));
        assert!(matches!(Scenario::from_yaml("version: 1\n: :\n"), Err(ScenarioError::Syntax(_))));
        let e = Scenario::from_yaml("version: 1\nname: x\nsetup: {username: u}\ncommands: [{do: dance}]\n").unwrap_err();
        assert!(e.to_string().contains("dance"), "{e}");
    }

    #[test]
    fn every_command_round_trips() {
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
            expect: Expectation::violation("P3"),
        };
        let yaml = s.to_yaml();
        assert_eq!(Scenario::from_yaml(&yaml).unwrap(), s, "{yaml}");
        assert!(yaml.contains("do: rotate") && yaml.contains("violation: P3"), "{yaml}");
    }
}
