//! Property tests of the reference model: random sequences of API calls keep the invariants of
//! spec 5.1, and the number of label states reachable in k steps is pinned, so that a change in
//! label semantics shows up in review as a changed number.

use proptest::prelude::*;
use rotcheck_harness::model::shapes::*;
use rotcheck_harness::model::{
    AWSCURRENT, AWSPENDING, AWSPREVIOUS, ApiError, ErrorKind, Model, Secret,
};
use std::collections::{BTreeMap, BTreeSet};

const TOKENS: [&str; 4] = [
    "00000000-0000-0000-0000-000000000000",
    "11111111-1111-1111-1111-111111111111",
    "22222222-2222-2222-2222-222222222222",
    "33333333-3333-3333-3333-333333333333",
];
const LABELS: [&str; 4] = [AWSCURRENT, AWSPENDING, AWSPREVIOUS, "MINE"];
const VALUES: [&str; 2] = ["value-a", "value-b"];
const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

#[derive(Clone, Debug)]
enum Op {
    Put { token: usize, value: usize, stages: Option<Vec<usize>> },
    Move { label: usize, from: Option<usize>, to: Option<usize> },
    Rotate { token: usize, immediately: bool },
    Complete { token: usize },
    EndTest { token: usize },
    Cancel,
    Get { token: Option<usize>, label: Option<usize> },
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TOKENS.len();
    let l = 0..LABELS.len();
    prop_oneof![
        4 => (t.clone(), 0..VALUES.len(), proptest::option::of(proptest::collection::vec(l.clone(), 1..3)))
            .prop_map(|(token, value, stages)| Op::Put { token, value, stages }),
        4 => (l.clone(), proptest::option::of(t.clone()), proptest::option::of(t.clone()))
            .prop_map(|(label, from, to)| Op::Move { label, from, to }),
        2 => (t.clone(), any::<bool>()).prop_map(|(token, immediately)| Op::Rotate { token, immediately }),
        1 => t.clone().prop_map(|token| Op::Complete { token }),
        1 => t.clone().prop_map(|token| Op::EndTest { token }),
        1 => Just(Op::Cancel),
        2 => (proptest::option::of(t), proptest::option::of(l)).prop_map(|(token, label)| Op::Get { token, label }),
    ]
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

fn apply(m: &mut Model, op: &Op) -> Result<(), ApiError> {
    match op {
        Op::Put { token, value, stages } => m
            .put_secret_value(PutSecretValueInput {
                secret_id: s("s"),
                client_request_token: s(TOKENS[*token]),
                secret_string: s(VALUES[*value]),
                version_stages: stages.as_ref().map(|v| v.iter().map(|&i| LABELS[i].to_string()).collect()),
                ..Default::default()
            })
            .map(|_| ()),
        Op::Move { label, from, to } => m
            .update_secret_version_stage(UpdateSecretVersionStageInput {
                secret_id: s("s"),
                version_stage: s(LABELS[*label]),
                remove_from_version_id: from.map(|i| TOKENS[i].to_string()),
                move_to_version_id: to.map(|i| TOKENS[i].to_string()),
            })
            .map(|_| ()),
        Op::Rotate { token, immediately } => m
            .rotate_secret(RotateSecretInput {
                secret_id: s("s"),
                client_request_token: s(TOKENS[*token]),
                rotation_lambda_arn: s(LAMBDA),
                rotate_immediately: Some(*immediately),
                ..Default::default()
            })
            .map(|_| ()),
        Op::Complete { token } => m.complete_rotation("s", TOKENS[*token]).map(|_| ()),
        Op::EndTest { token } => m.end_test_rotation("s", TOKENS[*token]),
        Op::Cancel => m.cancel_rotate_secret(CancelRotateSecretInput { secret_id: s("s") }).map(|_| ()),
        Op::Get { token, label } => m
            .get_secret_value(GetSecretValueInput {
                secret_id: s("s"),
                version_id: token.map(|i| TOKENS[i].to_string()),
                version_stage: label.map(|i| LABELS[i].to_string()),
            })
            .map(|_| ()),
    }
}

fn new_model(with_value: bool) -> Model {
    let mut m = Model::seeded(3);
    m.create_secret(CreateSecretInput {
        name: s("s"),
        client_request_token: s(TOKENS[0]),
        secret_string: with_value.then(|| VALUES[0].to_string()),
        ..Default::default()
    })
    .unwrap();
    m
}

/// The invariants that must hold in every state (spec 5.1 items 6 and 7, and the placeholder).
fn check_state(m: &mut Model) -> Result<(), TestCaseError> {
    let secret = m.secret("s").unwrap().clone();
    for label in secret.labels() {
        let holders = secret.versions.iter().filter(|v| v.has(label)).count();
        prop_assert_eq!(holders, 1, "label {} on {} versions", label, holders);
    }
    for v in &secret.versions {
        let distinct: BTreeSet<&String> = v.stages.iter().collect();
        prop_assert_eq!(distinct.len(), v.stages.len(), "duplicate label on {}", v.id);
    }
    if secret.versions.iter().any(|v| v.value.is_some()) {
        // Exactly one AWSCURRENT once a value exists (its value may be missing only if a
        // caller moved AWSCURRENT onto the placeholder: the model keeps that state
        // representable so that the checker can report it, see UpdateSecretVersionStage).
        prop_assert!(secret.holder(AWSCURRENT).is_some(), "a secret with a value has no AWSCURRENT");
    }
    for v in secret.versions.iter().filter(|v| v.value.is_none()) {
        let by_id = m.get_secret_value(GetSecretValueInput {
            secret_id: s("s"),
            version_id: Some(v.id.clone()),
            version_stage: None,
        });
        prop_assert_eq!(by_id.unwrap_err().kind, ErrorKind::ResourceNotFoundException);
        for label in &v.stages {
            let by_label = m.get_secret_value(GetSecretValueInput {
                secret_id: s("s"),
                version_id: None,
                version_stage: Some(label.clone()),
            });
            prop_assert_eq!(by_label.unwrap_err().kind, ErrorKind::ResourceNotFoundException);
        }
    }
    Ok(())
}

fn mentions_previous(op: &Op) -> bool {
    match op {
        Op::Put { stages: Some(st), .. } => st.iter().any(|&i| LABELS[i] == AWSPREVIOUS),
        Op::Move { label, .. } => LABELS[*label] == AWSPREVIOUS,
        _ => false,
    }
}

/// Labels only, for comparing states (reads change access dates, not labels or values).
fn shape(s: &Secret) -> Vec<(String, Option<String>, Vec<String>)> {
    s.versions
        .iter()
        .map(|v| {
            let mut st = v.stages.clone();
            st.sort();
            (v.id.clone(), v.value.as_ref().and_then(|x| x.as_str().map(str::to_string)), st)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn api_sequences_keep_the_label_invariants(with_value in any::<bool>(), ops in proptest::collection::vec(op(), 1..40)) {
        let mut m = new_model(with_value);
        check_state(&mut m)?;
        for op in &ops {
            let before = m.secret("s").unwrap().clone();
            let result = apply(&mut m, op);
            let after = m.secret("s").unwrap().clone();
            // A failed call changes nothing.
            if result.is_err() {
                prop_assert_eq!(shape(&before), shape(&after), "{:?} failed with {:?} but changed state", op, result);
            }
            // AWSPREVIOUS is the version AWSCURRENT left (spec 5.1 item 1).
            let (cur_before, cur_after) = (before.holder_id(AWSCURRENT), after.holder_id(AWSCURRENT));
            if let (Some(b), Some(a)) = (cur_before, cur_after) && a != b {
                prop_assert_eq!(after.holder_id(AWSPREVIOUS), Some(b), "after {:?}", op);
            } else if cur_before == cur_after && !mentions_previous(op) {
                prop_assert_eq!(before.holder_id(AWSPREVIOUS), after.holder_id(AWSPREVIOUS), "after {:?}", op);
            }
            // PutSecretValue with a used token: idempotent, or ResourceExistsException (item 3).
            if let Op::Put { token, value, .. } = op
                && let Some(v) = before.version(TOKENS[*token])
                && let Some(existing) = &v.value
            {
                if existing.as_str() == Some(VALUES[*value]) {
                    prop_assert!(result.is_ok(), "same token and value must succeed: {:?}", result);
                } else {
                    prop_assert_eq!(result.clone().unwrap_err().kind, ErrorKind::ResourceExistsException);
                }
                prop_assert_eq!(shape(&before), shape(&after));
            }
            // A value, once written, never changes (versions are immutable).
            for v in &before.versions {
                if let (Some(old), Some(new)) = (&v.value, after.version(&v.id).and_then(|n| n.value.as_ref())) {
                    prop_assert_eq!(old, new);
                }
            }
            check_state(&mut m)?;
        }
    }
}

/// The finite action alphabet of the pinned count: what a rotation function and the service
/// do, over three tokens.
fn alphabet() -> Vec<Op> {
    let mut ops = Vec::new();
    for token in 1..3 {
        ops.push(Op::Put { token, value: token % 2, stages: None });
        ops.push(Op::Put { token, value: token % 2, stages: Some(vec![1]) });
        ops.push(Op::Rotate { token, immediately: true });
        ops.push(Op::Complete { token });
    }
    for label in [0, 1] {
        for from in [None, Some(0), Some(1), Some(2)] {
            for to in [None, Some(0), Some(1), Some(2)] {
                ops.push(Op::Move { label, from, to });
            }
        }
    }
    ops
}

type State = BTreeMap<String, (bool, Vec<String>)>;

fn abstract_state(m: &Model) -> State {
    m.secret("s")
        .unwrap()
        .versions
        .iter()
        .map(|v| {
            let mut st = v.stages.clone();
            st.sort();
            (v.id.clone(), (v.value.is_some(), st))
        })
        .collect()
}

/// Distinct label states reachable from a fresh secret (one version, AWSCURRENT) in at most k
/// steps of the alphabet, found by breadth-first search, replaying each path from scratch (the
/// model is deterministic for these calls).
fn reachable(k: usize) -> usize {
    let ops = alphabet();
    let mut seen: BTreeSet<State> = BTreeSet::new();
    let mut frontier: Vec<Vec<usize>> = vec![vec![]];
    seen.insert(abstract_state(&new_model(true)));
    for _ in 0..k {
        let mut next = Vec::new();
        for path in &frontier {
            for (i, op) in ops.iter().enumerate() {
                let mut m = new_model(true);
                for &p in path {
                    let _ = apply(&mut m, &ops[p]);
                }
                if apply(&mut m, op).is_err() {
                    continue;
                }
                if seen.insert(abstract_state(&m)) {
                    let mut p = path.clone();
                    p.push(i);
                    next.push(p);
                }
            }
        }
        frontier = next;
    }
    seen.len()
}

#[test]
fn reachable_label_states_are_pinned() {
    // If one of these numbers changes, the label semantics changed: check the diff against
    // spec sections 3.3, 3.4 and 5 before updating it.
    // k = 1 by hand: the fresh secret, plus for each of two tokens a put (AWSCURRENT moves), a
    // put with [AWSPENDING], and a RotateSecret placeholder, plus AWSPENDING attached to the
    // current version: 1 + 3 + 3 + 1 = 8.
    let counts: Vec<usize> = (1..=4).map(reachable).collect();
    assert_eq!(counts, vec![8, 34, 86, 134], "reachable label states in 1..=4 steps");
}
