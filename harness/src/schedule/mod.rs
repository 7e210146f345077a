//! What a test case does, as data: the setup (username, initial password, the function's
//! environment, the secret's shape) and a list of commands: rotations as Secrets Manager runs
//! them (with faults attached to their steps), duplicate and late deliveries, test-only
//! rotations, application clients, and operator actions.
//!
//! A schedule holds only what Secrets Manager and the world around it can do, never values:
//! passwords are [recipes](PasswordRecipe) that the case's seeded source turns into values. Its
//! YAML form, inside a [`Scenario`](crate::scenario::Scenario), is the scenario file format; generated schedules come
//! from [`generate`].
//!
//! ```
//! use rotcheck_harness::scenario::Scenario;
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

use crate::function::Step;
use crate::function::crash::CrashPoint;
use crate::model::PasswordRecipe;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
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

