//! Generated schedules: proptest strategies whose value trees shrink commands, faults and
//! generated inputs (a username, a password recipe down to the one character).
//!
//! Every case is drawn from its own seed, derived from the run's seed and the case's index
//! ([`case_seed`]), so a shard or a worker count never changes what a case is.

use super::{Command, Delivery, FaultSpec, Rotation, Schedule, SecretShape, Setup, StepFault, Strategy as Users, Which};
use crate::function::Step;
use crate::function::crash::CrashPoint;
use crate::model::PasswordRecipe;
use proptest::prelude::*;
use std::collections::BTreeMap;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Characters that break naive quoting, URLs and connection strings (F08, F09).
pub const AWKWARD: [char; 16] = [':', '\'', '"', '\\', '@', '/', '%', ' ', '$', '`', ';', '#', '?', '&', '=', '+'];

/// What a generated case may contain.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The function's user strategy (alternating users get names with room for `_clone`).
    pub strategy: Users,
    /// The most commands after the first rotation.
    pub max_commands: usize,
    /// Whether operator commands (which may make the state unsafe on purpose) are generated.
    pub operator_commands: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { strategy: Users::SingleUser, max_commands: 5, operator_commands: true }
    }
}

/// The seed of case `index` of a run with `run_seed` (splitmix64 of both).
pub fn case_seed(run_seed: u64, index: u64) -> u64 {
    let mut z = run_seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value tree of the case with `seed`: `current()` is the schedule; `simplify()` and
/// `complicate()` walk towards a smaller one.
pub fn case_tree(seed: u64, limits: &Limits) -> Box<dyn ValueTree<Value = Schedule>> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.rotate_left(17).to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    Box::new(schedule(limits).new_tree(&mut runner).expect("schedule strategies do not reject"))
}

/// A whole schedule: a first rotation, then up to `max_commands` more commands.
pub fn schedule(limits: &Limits) -> BoxedStrategy<Schedule> {
    (setup(limits.strategy), rotation(), proptest::collection::vec(command(limits.operator_commands), 0..=limits.max_commands))
        .prop_map(|(setup, first, rest)| {
            let mut commands = vec![Command::Rotate(first)];
            commands.extend(rest);
            Schedule { setup, commands }
        })
        .boxed()
}

/// Usernames: plain, mixed case, with quotes, spaces and semicolons, multibyte, long.
pub fn username(strategy: Users) -> BoxedStrategy<String> {
    let long = match strategy {
        // Alternating users need room for `_clone` (and the case tag).
        Users::AlternatingUsers => "[a-z]{30,40}",
        Users::SingleUser => "[a-z]{40,62}",
    };
    // PostgreSQL reserves role names that start with `pg_`: no real user has one.
    let plain = "[a-z][a-z0-9_]{2,12}".prop_map(|u: String| if u.starts_with("pg_") { format!("u{u}") } else { u });
    prop_oneof![
        4 => plain,
        2 => "[A-Z][a-zA-Z]{2,10}",
        2 => "[a-z]{2,6}[\"' ;-][a-zA-Z]{1,6}",
        1 => "[a-z]{2,5}[äüéΩ][a-z]{1,5}",
        1 => long,
    ]
    .boxed()
}

/// A password recipe: up to three awkward characters at positions.
pub fn password_recipe() -> BoxedStrategy<PasswordRecipe> {
    proptest::collection::vec((0usize..32, proptest::sample::select(AWKWARD.to_vec())), 0..=3)
        .prop_map(|forced| PasswordRecipe { forced })
        .boxed()
}

/// The setup: username, initial password, the function's password settings, the secret shape.
pub fn setup(strategy: Users) -> BoxedStrategy<Setup> {
    let exclude = prop_oneof![
        3 => Just(None),
        2 => Just(Some(String::new())),
        1 => Just(Some("/@\"".to_string())),
    ];
    // Boundary lengths, as F08 and F10 ask: where length bugs live. Each distinct environment
    // is a configuration change, and so a cold start of the function: a few values that recur
    // keep the warm processes warm (see runtime_api::PARKED_PER_SLOT).
    let length = prop_oneof![3 => Just(None), 1 => proptest::sample::select(vec![8u32, 64]).prop_map(Some)];
    let shape = (any::<bool>(), any::<bool>(), proptest::option::of(Just(("application".to_string(), "billing".to_string()))))
        .prop_map(|(port_as_string, omit_dbname, extra)| SecretShape { port_as_string, omit_dbname, extra: extra.into_iter().collect() });
    (username(strategy), password_recipe(), exclude, length, shape)
        .prop_map(|(username, password, exclude, length, secret)| {
            let mut env = BTreeMap::new();
            if let Some(e) = exclude {
                env.insert("EXCLUDE_CHARACTERS".to_string(), e);
            }
            if let Some(l) = length {
                env.insert("PASSWORD_LENGTH".to_string(), l.to_string());
            }
            Setup { username, password, env, secret }
        })
        .boxed()
}

fn step() -> impl Strategy<Value = Step> {
    proptest::sample::select(Step::ALL.to_vec())
}

/// A fault for a step.
pub fn fault() -> BoxedStrategy<FaultSpec> {
    let crash = prop_oneof![
        (1usize..=6).prop_map(|nth| CrashPoint::ApiCallArrives { nth }),
        (1usize..=6).prop_map(|nth| CrashPoint::ApiCallAnswered { nth }),
        (1u64..=3).prop_map(|nth| CrashPoint::DbConnectionClosed { nth }),
    ];
    let errors = proptest::sample::select(vec!["InternalServiceError", "ThrottlingException", "ResourceNotFoundException", "DecryptionFailure"]);
    let db = prop_oneof![Just(FaultSpec::DbRefuse), (20u64..400).prop_map(|bytes| FaultSpec::DbCut { bytes }), Just(FaultSpec::DbBlackhole)];
    prop_oneof![
        4 => crash.prop_map(|point| FaultSpec::Crash { point }),
        2 => Just(FaultSpec::DropResult),
        2 => ((1usize..=6), errors).prop_map(|(nth, e)| FaultSpec::ApiError { nth, error: e.to_string() }),
        2 => (1usize..=6).prop_map(|nth| FaultSpec::ApiLost { nth }),
        1 => db,
    ]
    .boxed()
}

/// A rotation with up to two faults and a password recipe.
pub fn rotation() -> BoxedStrategy<Rotation> {
    let faults = proptest::collection::vec(
        ((1u32..=2), step(), fault()).prop_map(|(attempt, step, fault)| StepFault { attempt, step, fault }),
        0..=2,
    );
    (faults, password_recipe()).prop_map(|(faults, password)| Rotation { faults, password, retries: None }).boxed()
}

/// One command after the first rotation.
pub fn command(operator: bool) -> BoxedStrategy<Command> {
    let delivery = (step(), prop_oneof![3 => Just(Which::Latest), 1 => Just(Which::Earlier)], prop_oneof![3 => Just(1u32), 1 => Just(2u32)])
        .prop_map(|(step, of, copies)| Command::Deliver(Delivery { step, of, copies }));
    let core = prop_oneof![
        6 => rotation().prop_map(Command::Rotate),
        3 => delivery,
        1 => Just(Command::TestRotation),
        1 => Just(Command::ClientLogin),
    ];
    if !operator {
        return core.boxed();
    }
    prop_oneof![
        20 => core,
        1 => Just(Command::RemovePending),
        1 => Just(Command::CancelRotation),
        1 => Just(Command::ManualPut),
    ]
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{AppliesTo, Expectation, FORMAT_VERSION, Scenario};

    #[test]
    fn a_case_is_a_function_of_its_seed() {
        let l = Limits::default();
        let a = case_tree(case_seed(42, 7), &l).current();
        let b = case_tree(case_seed(42, 7), &l).current();
        assert_eq!(a, b);
        let c = case_tree(case_seed(42, 8), &l).current();
        assert_ne!(a, c);
        assert!(matches!(a.commands[0], Command::Rotate(_)));
    }

    #[test]
    fn no_generated_username_is_reserved_by_postgres() {
        let l = Limits::default();
        for i in 0..3000 {
            let s = case_tree(case_seed(1, i), &l).current();
            assert!(!s.setup.username.starts_with("pg_"), "case {i}: {}", s.setup.username);
        }
    }

    #[test]
    fn shrinking_reaches_a_small_schedule() {
        let l = Limits { max_commands: 5, ..Default::default() };
        // Find a big case, then shrink it as if every simpler case still failed.
        let mut tree = (0..100).map(|i| case_tree(case_seed(1, i), &l)).find(|t| t.current().commands.len() >= 5).unwrap();
        let mut steps = 0;
        while tree.simplify() && steps < 10_000 {
            steps += 1;
        }
        let s = tree.current();
        assert_eq!(s.commands.len(), 1, "{s:?}");
        assert!(s.setup.password.forced.is_empty());
    }

    #[test]
    fn generated_schedules_round_trip_through_yaml() {
        let l = Limits::default();
        for i in 0..50 {
            let schedule = case_tree(case_seed(9, i), &l).current();
            let s = Scenario {
                version: FORMAT_VERSION,
                name: format!("case {i}"),
                description: String::new(),
                failure_modes: vec![],
                applies_to: AppliesTo::default(),
                function: None,
                seed: i,
                schedule,
                expect: Expectation::pass(),
                catches: vec![],
            };
            assert_eq!(Scenario::from_yaml(&s.to_yaml()).unwrap(), s);
        }
    }
}
