//! The model against the rows of spec sections 3 and 5, operation by operation.

use super::*;

const T1: &str = "11111111111111111111111111111111";
const T2: &str = "22222222222222222222222222222222";
const T3: &str = "33333333333333333333333333333333";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:rotate";

fn id(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn model_with(name: &str, value: &str) -> Model {
    let mut m = Model::seeded(1);
    m.create_secret(CreateSecretInput {
        name: id(name),
        secret_string: id(value),
        client_request_token: id(T1),
        ..Default::default()
    })
    .unwrap();
    m
}

fn put(m: &mut Model, token: &str, value: &str, stages: Option<&[&str]>) -> Result<PutSecretValueOutput, ApiError> {
    m.put_secret_value(PutSecretValueInput {
        secret_id: id("s"),
        client_request_token: id(token),
        secret_string: id(value),
        version_stages: stages.map(|s| s.iter().map(|x| x.to_string()).collect()),
        ..Default::default()
    })
}

fn get(m: &mut Model, version: Option<&str>, stage: Option<&str>) -> Result<GetSecretValueOutput, ApiError> {
    m.get_secret_value(GetSecretValueInput {
        secret_id: id("s"),
        version_id: version.map(str::to_string),
        version_stage: stage.map(str::to_string),
    })
}

fn rotate(m: &mut Model, token: &str) -> Result<(RotateSecretOutput, Option<RotationTicket>), ApiError> {
    m.rotate_secret(RotateSecretInput {
        secret_id: id("s"),
        client_request_token: id(token),
        rotation_lambda_arn: id(LAMBDA),
        ..Default::default()
    })
}

fn stage(m: &mut Model, label: &str, from: Option<&str>, to: Option<&str>) -> Result<(), ApiError> {
    m.update_secret_version_stage(UpdateSecretVersionStageInput {
        secret_id: id("s"),
        version_stage: id(label),
        remove_from_version_id: from.map(str::to_string),
        move_to_version_id: to.map(str::to_string),
    })
    .map(|_| ())
}

fn stages_of(m: &Model, version: &str) -> Vec<String> {
    let mut s = m.secret("s").unwrap().version(version).unwrap().stages.clone();
    s.sort();
    s
}

#[test]
fn create_then_read_current() {
    let mut m = model_with("s", "v1");
    let out = get(&mut m, None, None).unwrap();
    assert_eq!(out.secret_string.as_deref(), Some("v1"));
    assert_eq!(out.version_id, T1);
    assert_eq!(out.version_stages, vec![AWSCURRENT]);
    assert!(out.arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:s-"));
    assert_eq!(out.arn.len(), "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-".len() + 6);
}

#[test]
fn secret_ids_are_names_full_arns_or_partial_arns() {
    let mut m = model_with("app/db", "v1");
    let arn = m.secret("app/db").unwrap().arn.clone();
    assert!(m.secret(&arn).is_some());
    assert!(m.secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db").is_some());
    assert!(m.secret(&format!("{arn}x")).is_none());
    assert!(m.secret("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db").is_none());
    let err = m.describe_secret(DescribeSecretInput { secret_id: id("nope") }).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFoundException);
    assert_eq!(err.message, "Secrets Manager can't find the specified secret.");
}

#[test]
fn create_existing_name_is_resource_exists_unless_idempotent() {
    let mut m = model_with("s", "v1");
    let again = CreateSecretInput {
        name: id("s"),
        secret_string: id("v1"),
        client_request_token: id(T1),
        ..Default::default()
    };
    assert_eq!(m.create_secret(again.clone()).unwrap().version_id.as_deref(), Some(T1));
    let other = CreateSecretInput { client_request_token: id(T2), ..again };
    let err = m.create_secret(other).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceExistsException);
    assert_eq!(err.message, "The operation failed because the secret s already exists.");
}

#[test]
fn get_secret_value_error_rows() {
    let mut m = model_with("s", "v1");
    // no version carries the label
    let e = get(&mut m, None, Some("NOPE")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFoundException);
    assert_eq!(e.message, "Secrets Manager can't find the specified secret value for staging label: NOPE");
    // unknown version id
    let e = get(&mut m, Some(T3), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFoundException);
    assert!(e.message.ends_with(&format!("VersionId: {T3}")));
    // mismatch
    let e = get(&mut m, Some(T1), Some(AWSPENDING)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    assert_eq!(e.message, "You provided a VersionStage that is not associated to the provided VersionId.");
    // the placeholder has no value
    rotate(&mut m, T2).unwrap();
    let e = get(&mut m, Some(T2), Some(AWSPENDING)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFoundException);
    assert_eq!(e.message, "Secrets Manager can't find the specified secret value for staging label: AWSPENDING");
    let e = get(&mut m, None, Some(AWSPENDING)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFoundException);
    let e = get(&mut m, Some(T2), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFoundException);
    // a short version id is a parameter error
    let e = get(&mut m, Some("short"), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
}

#[test]
fn put_without_stages_moves_current_and_previous_follows() {
    let mut m = model_with("s", "v1");
    put(&mut m, T2, "v2", None).unwrap();
    assert_eq!(stages_of(&m, T1), vec![AWSPREVIOUS]);
    assert_eq!(stages_of(&m, T2), vec![AWSCURRENT]);
    put(&mut m, T3, "v3", None).unwrap();
    assert_eq!(stages_of(&m, T1), Vec::<String>::new()); // deprecated
    assert_eq!(stages_of(&m, T2), vec![AWSPREVIOUS]);
    let d = m.describe_secret(DescribeSecretInput { secret_id: id("s") }).unwrap();
    assert!(!d.version_ids_to_stages.contains_key(T1), "deprecated versions are hidden");
}

#[test]
fn put_pending_leaves_current_alone() {
    let mut m = model_with("s", "v1");
    let out = put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    assert_eq!(out.version_stages, vec![AWSPENDING]);
    assert_eq!(stages_of(&m, T1), vec![AWSCURRENT]);
}

#[test]
fn put_token_idempotency_rows() {
    let mut m = model_with("s", "v1");
    put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    // same data: success, no change
    let same = put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    assert_eq!(same.version_stages, vec![AWSPENDING]);
    // same data, other labels asked: still no change
    put(&mut m, T2, "v2", None).unwrap();
    assert_eq!(stages_of(&m, T1), vec![AWSCURRENT]);
    // different data
    let e = put(&mut m, T2, "other", Some(&[AWSPENDING])).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceExistsException);
    let arn = m.secret("s").unwrap().arn.clone();
    assert_eq!(
        e.message,
        format!("You can't use ClientRequestToken {T2} because that value is already in use for a version of secret {arn}.")
    );
}

#[test]
fn put_fills_the_placeholder() {
    let mut m = model_with("s", "v1");
    rotate(&mut m, T2).unwrap();
    let out = put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    assert_eq!(out.version_id, T2);
    assert_eq!(out.version_stages, vec![AWSPENDING]);
    assert_eq!(get(&mut m, Some(T2), Some(AWSPENDING)).unwrap().secret_string.as_deref(), Some("v2"));
    // and a concurrent duplicate createSecret with another password loses (spec 5.1 item 4)
    let e = put(&mut m, T2, "v2-other", Some(&[AWSPENDING])).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceExistsException);
}

#[test]
fn put_value_rules() {
    let mut m = model_with("s", "v1");
    let e = m
        .put_secret_value(PutSecretValueInput { secret_id: id("s"), ..Default::default() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    let e = m
        .put_secret_value(PutSecretValueInput {
            secret_id: id("s"),
            secret_string: id("a"),
            secret_binary: Some(Blob(vec![1])),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    let e = put(&mut m, "short-token", "v", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    assert_eq!(e.message, "ClientRequestToken must be 32-64 characters long.");
    // binary round trip
    m.put_secret_value(PutSecretValueInput {
        secret_id: id("s"),
        client_request_token: id(T2),
        secret_binary: Some(Blob(vec![0, 159, 146, 150])),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(get(&mut m, None, None).unwrap().secret_binary, Some(Blob(vec![0, 159, 146, 150])));
}

#[test]
fn first_value_of_an_empty_secret_becomes_current() {
    let mut m = Model::seeded(1);
    m.create_secret(CreateSecretInput { name: id("s"), ..Default::default() }).unwrap();
    let out = put(&mut m, T1, "v1", Some(&[AWSPENDING])).unwrap();
    let mut st = out.version_stages.clone();
    st.sort();
    assert_eq!(st, vec![AWSCURRENT, AWSPENDING]);
}

#[test]
fn update_stage_requires_remove_from_for_current() {
    let mut m = model_with("s", "v1");
    put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    let e = stage(&mut m, AWSCURRENT, None, Some(T2)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    assert_eq!(
        e.message,
        format!("The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version {T1}, so you must explicitly reference that version in RemoveFromVersionId.")
    );
    // wrong RemoveFromVersionId
    let e = stage(&mut m, AWSCURRENT, Some(T2), Some(T2)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    // unknown id
    let e = stage(&mut m, AWSCURRENT, Some(T1), Some(T3)).unwrap_err();
    assert_eq!(e.message, format!("Not a valid version: {T3}"));
    // nothing changed by the failures
    assert_eq!(stages_of(&m, T1), vec![AWSCURRENT]);
    // the finishSecret move: AWSPENDING stays on the target, AWSPREVIOUS follows
    stage(&mut m, AWSCURRENT, Some(T1), Some(T2)).unwrap();
    assert_eq!(stages_of(&m, T2), vec![AWSCURRENT, AWSPENDING]);
    assert_eq!(stages_of(&m, T1), vec![AWSPREVIOUS]);
    // moving onto the holder again is a no-op (moto strips AWSPREVIOUS here, spec 6 item 20)
    stage(&mut m, AWSCURRENT, Some(T2), Some(T2)).unwrap();
    assert_eq!(stages_of(&m, T1), vec![AWSPREVIOUS]);
    assert_eq!(stages_of(&m, T2), vec![AWSCURRENT, AWSPENDING]);
}

#[test]
fn update_stage_user_labels_and_removal() {
    let mut m = model_with("s", "v1");
    put(&mut m, T2, "v2", Some(&["MINE"])).unwrap();
    // moving a user label without RemoveFrom is refused as for AWSCURRENT (conservative)
    let e = stage(&mut m, "MINE", None, Some(T1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    stage(&mut m, "MINE", Some(T2), Some(T1)).unwrap();
    assert_eq!(stages_of(&m, T1), vec![AWSCURRENT.to_string(), "MINE".to_string()]);
    // removing it leaves it nowhere
    stage(&mut m, "MINE", Some(T1), None).unwrap();
    assert!(m.secret("s").unwrap().holder("MINE").is_none());
    // removing AWSCURRENT without a move is refused (conservative, spec 3.4 UNCONFIRMED)
    let e = stage(&mut m, AWSCURRENT, Some(T1), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    // attaching a label nobody holds needs no RemoveFrom
    stage(&mut m, "FRESH", None, Some(T2)).unwrap();
    assert_eq!(stages_of(&m, T2), vec!["FRESH".to_string()]);
}

#[test]
fn rotate_creates_an_empty_pending_placeholder() {
    let mut m = model_with("s", "v1");
    let (out, ticket) = rotate(&mut m, T2).unwrap();
    assert_eq!(out.version_id, T2);
    let t = ticket.unwrap();
    assert!(t.rotate_immediately);
    assert_eq!(t.lambda_arn, LAMBDA);
    let s = m.secret("s").unwrap();
    assert_eq!(s.holder_id(AWSPENDING), Some(T2));
    assert_eq!(s.holder_id(AWSCURRENT), Some(T1));
    assert!(s.version(T2).unwrap().value.is_none());
    let d = m.describe_secret(DescribeSecretInput { secret_id: id("s") }).unwrap();
    assert_eq!(d.rotation_enabled, Some(true));
    assert_eq!(d.rotation_lambda_arn.as_deref(), Some(LAMBDA));
    assert_eq!(d.version_ids_to_stages.get(T2), Some(&vec![AWSPENDING.to_string()]));
}

#[test]
fn rotate_refuses_while_pending_is_elsewhere_and_allows_colocated() {
    let mut m = model_with("s", "v1");
    rotate(&mut m, T2).unwrap();
    let e = rotate(&mut m, T3).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    assert_eq!(e.message, "A previous rotation isn't complete. That rotation will be reattempted.");
    // the function finishes the rotation; AWSPENDING co-located with AWSCURRENT is legal
    put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    stage(&mut m, AWSCURRENT, Some(T1), Some(T2)).unwrap();
    assert_eq!(stages_of(&m, T2), vec![AWSCURRENT, AWSPENDING]);
    let (_, ticket) = rotate(&mut m, T3).unwrap();
    assert!(ticket.is_some());
    assert_eq!(stages_of(&m, T2), vec![AWSCURRENT]);
    assert_eq!(stages_of(&m, T3), vec![AWSPENDING]);
}

#[test]
fn rotate_needs_a_lambda() {
    let mut m = model_with("s", "v1");
    let e = m
        .rotate_secret(RotateSecretInput { secret_id: id("s"), client_request_token: id(T2), ..Default::default() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    // stored ARN is reused (moto drops it, spec 6 item 5)
    rotate(&mut m, T2).unwrap();
    put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    stage(&mut m, AWSCURRENT, Some(T1), Some(T2)).unwrap();
    let (_, t) = m
        .rotate_secret(RotateSecretInput { secret_id: id("s"), client_request_token: id(T3), ..Default::default() })
        .unwrap();
    assert_eq!(t.unwrap().lambda_arn, LAMBDA);
}

#[test]
fn test_only_rotation_copies_current_and_is_cleaned_up() {
    let mut m = model_with("s", "v1");
    let (_, t) = m
        .rotate_secret(RotateSecretInput {
            secret_id: id("s"),
            client_request_token: id(T2),
            rotation_lambda_arn: id(LAMBDA),
            rotate_immediately: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert!(!t.unwrap().rotate_immediately);
    assert_eq!(get(&mut m, Some(T2), Some(AWSPENDING)).unwrap().secret_string.as_deref(), Some("v1"));
    m.end_test_rotation("s", T2).unwrap();
    let s = m.secret("s").unwrap();
    assert!(s.holder(AWSPENDING).is_none());
    assert_eq!(s.holder_id(AWSCURRENT), Some(T1));
}

#[test]
fn complete_rotation_strips_pending_and_records_the_date() {
    let mut m = model_with("s", "v1");
    rotate(&mut m, T2).unwrap();
    put(&mut m, T2, "v2", Some(&[AWSPENDING])).unwrap();
    assert!(!m.complete_rotation("s", T2).unwrap(), "not complete before the label moved");
    stage(&mut m, AWSCURRENT, Some(T1), Some(T2)).unwrap();
    assert!(m.complete_rotation("s", T2).unwrap());
    assert_eq!(stages_of(&m, T2), vec![AWSCURRENT]);
    let d = m.describe_secret(DescribeSecretInput { secret_id: id("s") }).unwrap();
    assert!(d.last_rotated_date.is_some());
}

#[test]
fn cancel_rotate_names_the_pending_version_and_keeps_its_label() {
    let mut m = model_with("s", "v1");
    let e = m.cancel_rotate_secret(CancelRotateSecretInput { secret_id: id("s") }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    rotate(&mut m, T2).unwrap();
    let out = m.cancel_rotate_secret(CancelRotateSecretInput { secret_id: id("s") }).unwrap();
    assert_eq!(out.version_id.as_deref(), Some(T2));
    assert_eq!(m.secret("s").unwrap().holder_id(AWSPENDING), Some(T2));
    let d = m.describe_secret(DescribeSecretInput { secret_id: id("s") }).unwrap();
    assert_eq!(d.rotation_enabled, Some(false));
    // still stuck until someone removes AWSPENDING
    assert_eq!(rotate(&mut m, T3).unwrap_err().kind, ErrorKind::InvalidRequestException);
    stage(&mut m, AWSPENDING, Some(T2), None).unwrap();
    assert!(rotate(&mut m, T3).is_ok());
}

#[test]
fn delete_restore_and_recovery_window() {
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let mut m = Model::new(ModelConfig::default(), clock.clone(), Box::new(rand::rngs::StdRng::seed_from_u64(0)));
    m.create_secret(CreateSecretInput { name: id("s"), secret_string: id("v"), ..Default::default() }).unwrap();
    let bad = m.delete_secret(DeleteSecretInput { secret_id: id("s"), recovery_window_in_days: Some(6), ..Default::default() });
    assert_eq!(bad.unwrap_err().kind, ErrorKind::InvalidParameterException);
    let out = m.delete_secret(DeleteSecretInput { secret_id: id("s"), recovery_window_in_days: Some(7), ..Default::default() }).unwrap();
    assert_eq!(out.deletion_date, Timestamp(1_767_225_600_000).plus(Timestamp::DAY * 7));
    let e = get(&mut m, None, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    assert!(m.describe_secret(DescribeSecretInput { secret_id: id("s") }).unwrap().deleted_date.is_some());
    let e = m.create_secret(CreateSecretInput { name: id("s"), ..Default::default() }).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequestException);
    m.restore_secret(RestoreSecretInput { secret_id: id("s") }).unwrap();
    assert!(get(&mut m, None, None).is_ok());
    // after the window the secret is gone
    m.delete_secret(DeleteSecretInput { secret_id: id("s"), ..Default::default() }).unwrap();
    clock.advance(Timestamp::DAY * 30);
    assert_eq!(get(&mut m, None, None).unwrap_err().kind, ErrorKind::ResourceNotFoundException);
    // forced deletion is immediate
    m.create_secret(CreateSecretInput { name: id("s"), secret_string: id("v"), ..Default::default() }).unwrap();
    m.delete_secret(DeleteSecretInput { secret_id: id("s"), force_delete_without_recovery: Some(true), ..Default::default() }).unwrap();
    assert!(m.secret("s").is_none());
}

#[test]
fn list_versions_paging_and_deprecated() {
    let mut m = model_with("s", "v1");
    put(&mut m, T2, "v2", None).unwrap();
    put(&mut m, T3, "v3", None).unwrap(); // T1 is now deprecated
    let list = |m: &mut Model, dep: bool, max: Option<i64>, tok: Option<String>| {
        m.list_secret_version_ids(ListSecretVersionIdsInput {
            secret_id: id("s"),
            include_deprecated: Some(dep),
            max_results: max,
            next_token: tok,
        })
    };
    let ids = |o: &ListSecretVersionIdsOutput| o.versions.iter().map(|v| v.version_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&list(&mut m, false, None, None).unwrap()), vec![T2, T3]);
    assert_eq!(ids(&list(&mut m, true, None, None).unwrap()), vec![T1, T2, T3]);
    let p1 = list(&mut m, true, Some(2), None).unwrap();
    assert_eq!(ids(&p1), vec![T1, T2]);
    let p2 = list(&mut m, true, Some(2), p1.next_token.clone()).unwrap();
    assert_eq!(ids(&p2), vec![T3]);
    assert!(p2.next_token.is_none());
    assert_eq!(list(&mut m, true, Some(0), None).unwrap_err().kind, ErrorKind::InvalidParameterException);
    assert_eq!(
        list(&mut m, true, None, Some("garbage".into())).unwrap_err().kind,
        ErrorKind::InvalidNextTokenException
    );
}

#[test]
fn version_retention_prunes_old_deprecated_versions_and_enforces_the_quota() {
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let mut m = Model::new(ModelConfig::default(), clock.clone(), Box::new(rand::rngs::StdRng::seed_from_u64(0)));
    m.create_secret(CreateSecretInput { name: id("s"), secret_string: id("v0"), ..Default::default() }).unwrap();
    // Every 10 minutes, 144 a day: exceeds the quota within a day.
    let mut refused_at = None;
    for i in 0..200 {
        clock.advance(Duration::from_secs(600));
        let r = m.put_secret_value(PutSecretValueInput {
            secret_id: id("s"),
            secret_string: id(&format!("v{}", i + 1)),
            ..Default::default()
        });
        if let Err(e) = r {
            assert_eq!(e.kind, ErrorKind::LimitExceededException);
            refused_at = Some(i);
            break;
        }
    }
    assert!(refused_at.is_some(), "sustained puts every 10 minutes must hit the quota");
    // Every 15 minutes, 96 a day: never exceeds it, and old versions are pruned.
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let mut m = Model::new(ModelConfig::default(), clock.clone(), Box::new(rand::rngs::StdRng::seed_from_u64(0)));
    m.create_secret(CreateSecretInput { name: id("s"), secret_string: id("v0"), ..Default::default() }).unwrap();
    for i in 0..1000 {
        clock.advance(Duration::from_secs(900));
        m.put_secret_value(PutSecretValueInput {
            secret_id: id("s"),
            secret_string: id(&format!("v{}", i + 1)),
            ..Default::default()
        })
        .unwrap();
    }
    assert!(m.secret("s").unwrap().versions.len() <= 102);
}

#[test]
fn label_quota() {
    let mut m = model_with("s", "v1");
    for i in 0..19 {
        stage(&mut m, &format!("L{i}"), None, Some(T1)).unwrap();
    }
    let e = stage(&mut m, "ONE-TOO-MANY", None, Some(T1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceededException);
}

#[test]
fn random_password_comes_from_the_seed() {
    let mut a = Model::seeded(5);
    let mut b = Model::seeded(5);
    let pa = a.get_random_password(GetRandomPasswordInput::default()).unwrap().random_password;
    let pb = b.get_random_password(GetRandomPasswordInput::default()).unwrap().random_password;
    assert_eq!(pa, pb);
    assert_eq!(pa.len(), 32);
}

#[test]
fn call_dispatch_and_serialization_errors() {
    let mut m = Model::seeded(1);
    let a = m.call(Operation::CreateSecret, br#"{"Name":"s","SecretString":"x"}"#).unwrap();
    assert_eq!(a.body["Name"], "s");
    assert!(a.body.get("VersionId").is_some());
    let e = m.call(Operation::GetSecretValue, b"{not json").unwrap_err();
    assert_eq!(e.kind, ErrorKind::SerializationException);
    let e = m.call(Operation::GetSecretValue, br#"{"SecretId":["s"]}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SerializationException);
    let e = m.call(Operation::GetSecretValue, br#"[]"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SerializationException);
    let e = m.call(Operation::PutSecretValue, br#"{"SecretId":"s","SecretString":"hunter2-secret","VersionStages":"x"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::SerializationException);
    assert!(!e.message.contains("hunter2"), "{}", e.message);
    // empty body is {}: a missing SecretId
    let e = m.call(Operation::GetSecretValue, b"").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    assert_eq!(Operation::parse("GetSecretValue"), Some(Operation::GetSecretValue));
    assert_eq!(Operation::parse("Nope"), None);
}
