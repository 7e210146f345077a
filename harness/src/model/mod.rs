//! The reference model: a pure, synchronous state machine of Secrets Manager secrets.
//!
//! It is the one place in rotcheck that knows what the API does with versions and staging
//! labels (`spec/rotation-contract.md`, sections 1, 3 and 5). The emulator serves it over HTTP,
//! the runner uses it to play the service's part in a rotation, and the checker reads it.
//! It does no I/O: time comes from an injected [`Clock`], randomness (passwords, ARN suffixes,
//! generated tokens) from an injected [`Entropy`], so a run is a function of its inputs.
//!
//! ```
//! use rotcheck_harness::model::{Model, Operation};
//! let mut m = Model::seeded(7);
//! m.call(Operation::CreateSecret, br#"{"Name":"db","SecretString":"v1"}"#).unwrap();
//! let token = "a".repeat(32);
//! let rotate = format!(r#"{{"SecretId":"db","ClientRequestToken":"{token}","RotationLambdaARN":"arn:aws:lambda:us-east-1:123456789012:function:f"}}"#);
//! let answer = m.call(Operation::RotateSecret, rotate.as_bytes()).unwrap();
//! assert!(answer.rotation.is_some()); // the service now invokes the function
//! let secret = m.secret("db").unwrap();
//! assert_eq!(secret.holder_id("AWSPENDING"), Some(token.as_str()));
//! assert!(secret.version(&token).unwrap().value.is_none()); // the placeholder has no value
//! ```

pub mod clock;
pub mod error;
pub mod password;
pub mod secret;
pub mod shapes;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock, Timestamp};
pub use error::{ApiError, ErrorKind};
pub use password::{Entropy, PasswordPolicy, PasswordRecipe};
pub use secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, Rotation, Secret, SecretValue, Version};

use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shapes::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The operations the model implements, by their API names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[allow(missing_docs)]
pub enum Operation {
    CreateSecret,
    DescribeSecret,
    GetSecretValue,
    PutSecretValue,
    UpdateSecretVersionStage,
    ListSecretVersionIds,
    GetRandomPassword,
    RotateSecret,
    CancelRotateSecret,
    DeleteSecret,
    RestoreSecret,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 11] = [
        Operation::CreateSecret,
        Operation::DescribeSecret,
        Operation::GetSecretValue,
        Operation::PutSecretValue,
        Operation::UpdateSecretVersionStage,
        Operation::ListSecretVersionIds,
        Operation::GetRandomPassword,
        Operation::RotateSecret,
        Operation::CancelRotateSecret,
        Operation::DeleteSecret,
        Operation::RestoreSecret,
    ];

    /// The API name, as in `X-Amz-Target: secretsmanager.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateSecret => "CreateSecret",
            Operation::DescribeSecret => "DescribeSecret",
            Operation::GetSecretValue => "GetSecretValue",
            Operation::PutSecretValue => "PutSecretValue",
            Operation::UpdateSecretVersionStage => "UpdateSecretVersionStage",
            Operation::ListSecretVersionIds => "ListSecretVersionIds",
            Operation::GetRandomPassword => "GetRandomPassword",
            Operation::RotateSecret => "RotateSecret",
            Operation::CancelRotateSecret => "CancelRotateSecret",
            Operation::DeleteSecret => "DeleteSecret",
            Operation::RestoreSecret => "RestoreSecret",
        }
    }

    /// The operation with this API name.
    pub fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Whether the operation can change state (the emulator's "applied, then response lost"
    /// fault only makes sense for these).
    pub fn mutates(self) -> bool {
        !matches!(
            self,
            Operation::DescribeSecret | Operation::ListSecretVersionIds | Operation::GetRandomPassword
        )
    }
}

/// What the service does where the spec leaves its behaviour UNCONFIRMED, and the quotas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// Region in ARNs.
    pub region: String,
    /// Account id in ARNs.
    pub account: String,
    /// Versions kept no matter their age: the most recent N (spec 3.1: 100).
    pub keep_recent_versions: usize,
    /// Versions younger than this are kept too (spec 3.1: 24 h).
    pub keep_versions_younger_than: Duration,
    /// How many deprecated versions that cannot yet be pruned a secret may hold before a new
    /// version is refused with LimitExceededException. Spec 3.1 gives "~100 versions"; with
    /// 24 h retention this reproduces "more than one put every 10 minutes, sustained,
    /// eventually hits the quota" (144 a day exceed it, 96 do not).
    pub deprecated_version_quota: usize,
    /// Distinct staging labels per secret (spec 3.1: 20).
    pub max_labels: usize,
    /// After a successful rotation, the service removes `AWSPENDING` from the new current
    /// version. When exactly is UNCONFIRMED (spec 1.2); the default does it at once.
    pub strip_pending_after_rotation: bool,
    /// What the temporary version of a test-only rotation (`RotateImmediately=false`) holds.
    /// UNCONFIRMED (spec 5 step 6); the default is a copy of `AWSCURRENT`, as moto's real-AWS
    /// test observed.
    pub test_rotation_copies_current: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            keep_recent_versions: 100,
            keep_versions_younger_than: Duration::from_secs(24 * 3600),
            deprecated_version_quota: 100,
            max_labels: 20,
            strip_pending_after_rotation: true,
            test_rotation_copies_current: true,
        }
    }
}

/// A rotation that RotateSecret started: the service now invokes the function (the steps, or
/// testSecret alone), which is the rotation driver's job, not the model's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationTicket {
    /// The secret's ARN (what the service sends as `SecretId`).
    pub arn: String,
    /// The new version's id (`ClientRequestToken`).
    pub token: String,
    /// The function to invoke.
    pub lambda_arn: String,
    /// false: only testSecret runs, against a temporary version (spec 5 step 6).
    pub rotate_immediately: bool,
}

/// A successful answer: the response body, and the rotation it started, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The JSON response body.
    pub body: serde_json::Value,
    /// Set when the call was a RotateSecret that started a rotation.
    pub rotation: Option<RotationTicket>,
}

/// The reference model of a Secrets Manager account in one region.
pub struct Model {
    secrets: BTreeMap<String, Secret>,
    config: ModelConfig,
    clock: SharedClock,
    entropy: Entropy,
    /// Randomness per caller (access key): parallel test cases each draw from their own
    /// seeded source, so a case is the same whatever runs beside it.
    caller_entropy: std::collections::HashMap<String, Entropy>,
    /// Password recipes per caller, applied to its next GetRandomPassword calls in order.
    recipes: std::collections::HashMap<String, std::collections::VecDeque<PasswordRecipe>>,
    /// The caller of the call being applied.
    caller: Option<String>,
    /// No secret is scheduled for deletion before this (a lower bound: a restore leaves it
    /// early), so that most calls skip scanning every secret for expired ones.
    earliest_deletion: Option<Timestamp>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("secrets", &self.secrets.len()).finish_non_exhaustive()
    }
}

const TEMPLATE_LAMBDA_MISSING: &str = "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.";
const ROTATION_IN_PROGRESS: &str =
    "A previous rotation isn't complete. That rotation will be reattempted.";
const BOTH_VALUES: &str =
    "You can't specify both a binary secret value and a string secret value in the same secret.";

impl Model {
    /// A model with the given configuration, clock and entropy.
    pub fn new(config: ModelConfig, clock: SharedClock, entropy: Entropy) -> Model {
        Model {
            secrets: BTreeMap::new(),
            config,
            clock,
            entropy,
            caller_entropy: Default::default(),
            recipes: Default::default(),
            caller: None,
            earliest_deletion: None,
        }
    }

    /// A deterministic model: default configuration, a manual clock at 2026-01-01, and a seeded
    /// generator. For tests and examples.
    pub fn seeded(seed: u64) -> Model {
        Model::new(
            ModelConfig::default(),
            ManualClock::new(Timestamp(1_767_225_600_000)),
            Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
        )
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The secret a `SecretId` (name, full ARN or partial ARN) refers to, deleted or not.
    pub fn secret(&self, id: &str) -> Option<&Secret> {
        self.key_of(id).and_then(|k| self.secrets.get(&k))
    }

    /// All secrets, by name.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.secrets.values()
    }

    /// Gives `caller` its own source of randomness (passwords, generated tokens and ARN
    /// suffixes of its calls).
    pub fn set_caller_entropy(&mut self, caller: &str, entropy: Entropy) {
        self.caller_entropy.insert(caller.to_string(), entropy);
    }

    /// Queues a recipe for `caller`'s next GetRandomPassword.
    pub fn queue_password_recipe(&mut self, caller: &str, recipe: PasswordRecipe) {
        self.recipes.entry(caller.to_string()).or_default().push_back(recipe);
    }

    /// Forgets what was set up for `caller` (its entropy and unused recipes).
    pub fn forget_caller(&mut self, caller: &str) {
        self.caller_entropy.remove(caller);
        self.recipes.remove(caller);
    }

    /// [`Model::call`] on behalf of `caller` (an access key id): its own entropy and recipes
    /// apply.
    pub fn call_as(&mut self, caller: &str, op: Operation, body: &[u8]) -> Result<Answer, ApiError> {
        self.caller = Some(caller.to_string());
        let r = self.call(op, body);
        self.caller = None;
        r
    }

    /// The entropy of the current caller, or the model's own.
    fn rng(&mut self) -> &mut (dyn rand::RngCore + Send) {
        match self.caller.as_ref().and_then(|c| self.caller_entropy.get_mut(c)) {
            Some(e) => &mut **e,
            None => &mut *self.entropy,
        }
    }

    /// Runs one API call from its JSON body.
    pub fn call(&mut self, op: Operation, body: &[u8]) -> Result<Answer, ApiError> {
        fn out<T: Serialize>(v: T) -> Answer {
            Answer { body: serde_json::to_value(v).expect("outputs serialize"), rotation: None }
        }
        match op {
            Operation::CreateSecret => self.create_secret(parse(op, body)?).map(out),
            Operation::DescribeSecret => self.describe_secret(parse(op, body)?).map(out),
            Operation::GetSecretValue => self.get_secret_value(parse(op, body)?).map(out),
            Operation::PutSecretValue => self.put_secret_value(parse(op, body)?).map(out),
            Operation::UpdateSecretVersionStage => {
                self.update_secret_version_stage(parse(op, body)?).map(out)
            }
            Operation::ListSecretVersionIds => self.list_secret_version_ids(parse(op, body)?).map(out),
            Operation::GetRandomPassword => self.get_random_password(parse(op, body)?).map(out),
            Operation::RotateSecret => {
                let (o, ticket) = self.rotate_secret(parse(op, body)?)?;
                let mut a = out(o);
                a.rotation = ticket;
                Ok(a)
            }
            Operation::CancelRotateSecret => self.cancel_rotate_secret(parse(op, body)?).map(out),
            Operation::DeleteSecret => self.delete_secret(parse(op, body)?).map(out),
            Operation::RestoreSecret => self.restore_secret(parse(op, body)?).map(out),
        }
    }

    // ----- operations -------------------------------------------------------------------

    /// CreateSecret.
    pub fn create_secret(&mut self, input: CreateSecretInput) -> Result<CreateSecretOutput, ApiError> {
        self.purge_expired();
        let name = required(&input.name, "Name")?;
        validate_name(name)?;
        if let Some(t) = &input.client_request_token {
            validate_token(t, "ClientRequestToken")?;
        }
        if input.secret_string.is_some() && input.secret_binary.is_some() {
            return Err(ApiError::invalid_parameter(BOTH_VALUES));
        }
        let value = SecretValue::from_parts(input.secret_string.clone(), input.secret_binary.clone());
        if let Some(v) = &value {
            validate_value(v)?;
        }
        if let Some(existing) = self.secrets.get(name) {
            if existing.is_deleted() {
                return Err(ApiError::invalid_request(
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ));
            }
            // A retried CreateSecret with the same token and value is idempotent.
            if let Some(t) = &input.client_request_token
                && let Some(v) = existing.version(t)
            {
                if v.value == value {
                    return Ok(CreateSecretOutput {
                        arn: existing.arn.clone(),
                        name: existing.name.clone(),
                        version_id: Some(t.clone()),
                    });
                }
                return Err(token_in_use(t, &existing.arn));
            }
            return Err(ApiError::new(
                ErrorKind::ResourceExistsException,
                format!("The operation failed because the secret {name} already exists."),
            ));
        }
        let now = self.clock.now();
        let arn = self.new_arn(name);
        let mut secret = Secret {
            arn,
            name: name.to_string(),
            description: input.description.clone(),
            kms_key_id: input.kms_key_id.clone(),
            tags: input.tags.clone().unwrap_or_default(),
            versions: Vec::new(),
            rotation: Rotation::default(),
            created: now,
            last_changed: now,
            last_accessed: None,
            deleted: None,
            deletion_date: None,
            next_ordinal: 1,
        };
        let mut version_id = None;
        if let Some(v) = value {
            let id = match input.client_request_token {
                Some(t) => t,
                None => self.new_token(),
            };
            let idx = push_version(&mut secret, id.clone(), Some(v), now);
            secret.attach(AWSCURRENT, idx);
            version_id = Some(id);
        }
        let output =
            CreateSecretOutput { arn: secret.arn.clone(), name: secret.name.clone(), version_id };
        self.secrets.insert(name.to_string(), secret);
        Ok(output)
    }

    /// DescribeSecret. Works on a secret scheduled for deletion (it shows `DeletedDate`).
    pub fn describe_secret(&mut self, input: DescribeSecretInput) -> Result<DescribeSecretOutput, ApiError> {
        self.purge_expired();
        let s = self.lookup(&input.secret_id)?;
        let enabled = s.rotation.enabled == Some(true);
        Ok(DescribeSecretOutput {
            arn: s.arn.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            kms_key_id: s.kms_key_id.clone(),
            rotation_enabled: s.rotation.enabled,
            rotation_lambda_arn: s.rotation.lambda_arn.clone(),
            rotation_rules: s.rotation.rules.clone(),
            // Spec 3.5: null when rotation is not set up or is disabled.
            last_rotated_date: s.rotation.last_rotated.filter(|_| enabled),
            last_changed_date: Some(s.last_changed),
            last_accessed_date: s.last_accessed,
            deleted_date: s.deleted,
            next_rotation_date: s.rotation.next_rotation.filter(|_| enabled),
            tags: s.tags.clone(),
            version_ids_to_stages: s.version_ids_to_stages(),
            created_date: s.created,
        })
    }

    /// GetSecretValue (spec 3.2).
    pub fn get_secret_value(&mut self, input: GetSecretValueInput) -> Result<GetSecretValueOutput, ApiError> {
        self.purge_expired();
        if let Some(id) = &input.version_id {
            validate_token(id, "VersionId")?;
        }
        if let Some(stage) = &input.version_stage {
            validate_stage(stage)?;
        }
        let today = self.clock.now().start_of_day();
        let s = self.lookup_mut(&input.secret_id)?;
        if s.is_deleted() {
            return Err(ApiError::marked_for_deletion());
        }
        let idx = match (&input.version_id, &input.version_stage) {
            (Some(id), stage) => {
                let idx = s.version_index(id).ok_or_else(|| ApiError::no_value_for_version(id))?;
                if let Some(stage) = stage {
                    if !s.versions[idx].has(stage) {
                        return Err(ApiError::invalid_request(
                            "You provided a VersionStage that is not associated to the provided VersionId.",
                        ));
                    }
                    if s.versions[idx].value.is_none() {
                        return Err(ApiError::no_value_for_stage(stage));
                    }
                } else if s.versions[idx].value.is_none() {
                    return Err(ApiError::no_value_for_version(id));
                }
                idx
            }
            (None, stage) => {
                let stage = stage.as_deref().unwrap_or(AWSCURRENT);
                let idx = s.holder_index(stage).ok_or_else(|| ApiError::no_value_for_stage(stage))?;
                if s.versions[idx].value.is_none() {
                    return Err(ApiError::no_value_for_stage(stage));
                }
                idx
            }
        };
        s.last_accessed = Some(today);
        let v = &mut s.versions[idx];
        v.last_accessed = Some(today);
        let (secret_string, secret_binary) = match v.value.clone().expect("checked above") {
            SecretValue::String(st) => (Some(st), None),
            SecretValue::Binary(b) => (None, Some(Blob(b))),
        };
        Ok(GetSecretValueOutput {
            arn: s.arn.clone(),
            name: s.name.clone(),
            version_id: v.id.clone(),
            secret_string,
            secret_binary,
            version_stages: v.stages.clone(),
            created_date: v.created,
        })
    }

    /// PutSecretValue (spec 3.3): token idempotency, filling the placeholder, label moves.
    pub fn put_secret_value(&mut self, input: PutSecretValueInput) -> Result<PutSecretValueOutput, ApiError> {
        self.purge_expired();
        if let Some(t) = &input.client_request_token {
            validate_token(t, "ClientRequestToken")?;
        }
        if input.secret_string.is_some() && input.secret_binary.is_some() {
            return Err(ApiError::invalid_parameter(BOTH_VALUES));
        }
        let stages = input.version_stages.clone().unwrap_or_else(|| vec![AWSCURRENT.to_string()]);
        validate_stages(&stages)?;
        {
            let s = self.lookup(&input.secret_id)?;
            if s.is_deleted() {
                return Err(ApiError::marked_for_deletion());
            }
        }
        // Neither value: the type AWS returns is UNCONFIRMED (spec 3.3); this is moto's answer.
        let value = SecretValue::from_parts(input.secret_string.clone(), input.secret_binary.clone())
            .filter(|v| !matches!(v, SecretValue::String(s) if s.is_empty()))
            .ok_or_else(|| ApiError::invalid_request("You must provide either SecretString or SecretBinary."))?;
        validate_value(&value)?;
        let token = match &input.client_request_token {
            Some(t) => t.clone(),
            None => self.new_token(),
        };
        let now = self.clock.now();
        let config = self.config.clone();
        let s = self.lookup_mut(&input.secret_id)?;
        let idx = match s.version_index(&token) {
            Some(idx) => match &s.versions[idx].value {
                Some(existing) if *existing == value => {
                    // Same token, same data: success, no change.
                    let v = &s.versions[idx];
                    return Ok(PutSecretValueOutput {
                        arn: s.arn.clone(),
                        name: s.name.clone(),
                        version_id: v.id.clone(),
                        version_stages: v.stages.clone(),
                    });
                }
                Some(_) => return Err(token_in_use(&token, &s.arn)),
                None => {
                    // The placeholder RotateSecret made: the put fills it.
                    check_label_quota(s, &stages, &config)?;
                    s.versions[idx].value = Some(value);
                    idx
                }
            },
            None => {
                check_label_quota(s, &stages, &config)?;
                make_room_for_version(s, now, &config)?;
                push_version(s, token, Some(value), now)
            }
        };
        let first_value = s.versions.iter().enumerate().all(|(i, v)| i == idx || v.value.is_none());
        // AWSCURRENT last, so that its automatic AWSPREVIOUS move wins over an explicit
        // AWSPREVIOUS in the same request: AWSPREVIOUS is always the version AWSCURRENT left.
        for stage in stages.iter().filter(|l| *l != AWSCURRENT) {
            s.attach(stage, idx);
        }
        if stages.iter().any(|l| l == AWSCURRENT) {
            s.attach(AWSCURRENT, idx);
        }
        // The first version of a secret always gets AWSCURRENT (spec 3.3).
        if first_value && s.holder_index(AWSCURRENT).is_none() {
            s.attach(AWSCURRENT, idx);
        }
        s.last_changed = now;
        let v = &s.versions[idx];
        Ok(PutSecretValueOutput {
            arn: s.arn.clone(),
            name: s.name.clone(),
            version_id: v.id.clone(),
            version_stages: v.stages.clone(),
        })
    }

    /// UpdateSecretVersionStage (spec 3.4).
    pub fn update_secret_version_stage(
        &mut self,
        input: UpdateSecretVersionStageInput,
    ) -> Result<UpdateSecretVersionStageOutput, ApiError> {
        self.purge_expired();
        let stage = required(&input.version_stage, "VersionStage")?.to_string();
        validate_stage(&stage)?;
        for id in [&input.remove_from_version_id, &input.move_to_version_id].into_iter().flatten() {
            validate_token(id, "VersionId")?;
        }
        let now = self.clock.now();
        let config = self.config.clone();
        let s = self.lookup_mut(&input.secret_id)?;
        if s.is_deleted() {
            return Err(ApiError::marked_for_deletion());
        }
        // Unknown ids and a RemoveFromVersionId that lacks the label: the types and texts are
        // UNCONFIRMED (spec 3.4); these are moto's.
        // The checks run in this order: RemoveFromVersionId (exists, carries the label), the
        // missing-RemoveFromVersionId rule, MoveToVersionId (exists). moto checks in the same
        // order; AWS's order is UNCONFIRMED.
        let index = |s: &Secret, id: &String| {
            s.version_index(id).ok_or_else(|| ApiError::invalid_parameter(format!("Not a valid version: {id}")))
        };
        let from = input.remove_from_version_id.as_ref().map(|id| index(s, id)).transpose()?;
        if let Some(f) = from
            && !s.versions[f].has(&stage)
        {
            return Err(ApiError::invalid_parameter(format!(
                "Version stage {stage} not found in version {}",
                s.versions[f].id
            )));
        }
        let holder = s.holder_index(&stage);
        let must_name_holder = |s: &Secret, h: usize| {
            ApiError::invalid_parameter(format!(
                "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {}, so you must explicitly reference that version in RemoveFromVersionId.",
                s.versions[h].id
            ))
        };
        // AWSCURRENT always needs RemoveFromVersionId once a version holds it (verified on AWS
        // for a move to another version; moto also refuses a move onto the holder itself, and
        // a call with neither id, which is the conservative reading).
        if stage == AWSCURRENT
            && from.is_none()
            && let Some(h) = holder
        {
            return Err(must_name_holder(s, h));
        }
        let to = input.move_to_version_id.as_ref().map(|id| index(s, id)).transpose()?;
        match (to, from) {
            (Some(t), _) => {
                if let Some(h) = holder
                    && h != t
                    && from != Some(h)
                {
                    // For labels other than AWSCURRENT the answer is UNCONFIRMED; we refuse the
                    // same way (conservative; moto moves without a check, spec 6 item 16).
                    return Err(must_name_holder(s, h));
                }
                check_label_quota(s, std::slice::from_ref(&stage), &config)?;
                // The target may be the valueless placeholder. Whether AWS refuses to move
                // AWSCURRENT there is not documented; the model allows it so that a function
                // doing so leaves a state the checker reports (a plain read then fails),
                // instead of the model hiding the bug.
                s.attach(&stage, t);
            }
            (None, Some(f)) => {
                if stage == AWSCURRENT {
                    // Removing AWSCURRENT without moving it would leave the secret without a
                    // current version, which the docs say never happens. AWS's answer is
                    // UNCONFIRMED (spec 3.4); moto allows it (spec 6 item 17). Conservative:
                    // refuse, so a function relying on it fails here rather than in production.
                    return Err(ApiError::invalid_parameter(
                        "You can't remove the staging label AWSCURRENT from a version without moving it to another version.",
                    ));
                }
                s.versions[f].stages.retain(|l| *l != stage);
            }
            // Neither id: nothing to do (moto's answer; AWS's is UNCONFIRMED).
            (None, None) => {}
        }
        s.last_changed = now;
        Ok(UpdateSecretVersionStageOutput { arn: s.arn.clone(), name: s.name.clone() })
    }

    /// ListSecretVersionIds (spec 3.6), oldest version first.
    pub fn list_secret_version_ids(
        &mut self,
        input: ListSecretVersionIdsInput,
    ) -> Result<ListSecretVersionIdsOutput, ApiError> {
        self.purge_expired();
        let max = input.max_results.unwrap_or(100);
        if !(1..=100).contains(&max) {
            return Err(ApiError::invalid_parameter("MaxResults must be between 1 and 100."));
        }
        let start = match &input.next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("page-")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| ApiError::new(ErrorKind::InvalidNextTokenException, "The NextToken value is invalid."))?,
        };
        let include_deprecated = input.include_deprecated.unwrap_or(false);
        let s = self.lookup(&input.secret_id)?;
        let all: Vec<&Version> =
            s.versions.iter().filter(|v| include_deprecated || !v.is_deprecated()).collect();
        let end = (start + max as usize).min(all.len());
        let page = all.get(start.min(all.len())..end).unwrap_or_default();
        Ok(ListSecretVersionIdsOutput {
            versions: page
                .iter()
                .map(|v| SecretVersionsListEntry {
                    version_id: v.id.clone(),
                    version_stages: v.stages.clone(),
                    last_accessed_date: v.last_accessed,
                    created_date: v.created,
                })
                .collect(),
            next_token: (end < all.len()).then(|| format!("page-{end}")),
            arn: s.arn.clone(),
            name: s.name.clone(),
        })
    }

    /// GetRandomPassword (spec 3.7).
    pub fn get_random_password(
        &mut self,
        input: GetRandomPasswordInput,
    ) -> Result<GetRandomPasswordOutput, ApiError> {
        let policy = PasswordPolicy::from_input(&input)?;
        let password = policy.generate(self.rng());
        let recipe = self.caller.as_ref().and_then(|c| self.recipes.get_mut(c)).and_then(|q| q.pop_front());
        let random_password = match recipe {
            Some(r) => r.apply(&policy, password),
            None => password,
        };
        Ok(GetRandomPasswordOutput { random_password })
    }

    /// RotateSecret at the API level (spec 3.8, 5 steps 1-4): stores the configuration, refuses
    /// while a previous rotation is incomplete, creates the placeholder version and returns the
    /// ticket for the driver that invokes the function.
    pub fn rotate_secret(
        &mut self,
        input: RotateSecretInput,
    ) -> Result<(RotateSecretOutput, Option<RotationTicket>), ApiError> {
        self.purge_expired();
        if let Some(t) = &input.client_request_token {
            validate_token(t, "ClientRequestToken")?;
        }
        if let Some(a) = &input.rotation_lambda_arn
            && a.len() > 2048
        {
            return Err(ApiError::invalid_parameter("RotationLambdaARN must be at most 2048 characters long."));
        }
        if let Some(r) = &input.rotation_rules {
            validate_rules(r)?;
        }
        let token = match &input.client_request_token {
            Some(t) => t.clone(),
            None => self.new_token(),
        };
        let now = self.clock.now();
        let config = self.config.clone();
        let s = self.lookup_mut(&input.secret_id)?;
        if s.is_deleted() {
            return Err(ApiError::marked_for_deletion());
        }
        let lambda = input
            .rotation_lambda_arn
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| s.rotation.lambda_arn.clone())
            .ok_or_else(|| ApiError::invalid_request(TEMPLATE_LAMBDA_MISSING))?;
        if s.rotation_in_progress() {
            return Err(ApiError::invalid_request(ROTATION_IN_PROGRESS));
        }
        let output = RotateSecretOutput { arn: s.arn.clone(), name: s.name.clone(), version_id: token.clone() };
        if s.version_index(&token).is_some() {
            // The token already names a version: treat the call as a retry of the request that
            // created it and start nothing (idempotency token semantics; AWS's exact answer is
            // UNCONFIRMED).
            return Ok((output, None));
        }
        make_room_for_version(s, now, &config)?;
        s.rotation.lambda_arn = Some(lambda.clone());
        if let Some(rules) = &input.rotation_rules {
            s.rotation.rules = Some(rules.clone());
        }
        s.rotation.enabled = Some(true);
        if let Some(days) = s.rotation.rules.as_ref().and_then(|r| r.automatically_after_days) {
            s.rotation.next_rotation = Some(now.plus(Timestamp::DAY * days as u32));
        }
        let immediately = input.rotate_immediately.unwrap_or(true);
        let value = if immediately || !config.test_rotation_copies_current {
            None
        } else {
            s.holder(AWSCURRENT).and_then(|v| v.value.clone())
        };
        let idx = push_version(s, token.clone(), value, now);
        s.attach(AWSPENDING, idx);
        s.last_changed = now;
        let ticket = RotationTicket {
            arn: s.arn.clone(),
            token,
            lambda_arn: lambda,
            rotate_immediately: immediately,
        };
        Ok((output, Some(ticket)))
    }

    /// CancelRotateSecret (spec 3.8): turns rotation off and names the pending version, which
    /// keeps its `AWSPENDING` label: cleaning up is the caller's job.
    pub fn cancel_rotate_secret(
        &mut self,
        input: CancelRotateSecretInput,
    ) -> Result<CancelRotateSecretOutput, ApiError> {
        self.purge_expired();
        let s = self.lookup_mut(&input.secret_id)?;
        if s.is_deleted() {
            return Err(ApiError::marked_for_deletion());
        }
        if s.rotation.lambda_arn.is_none() {
            return Err(ApiError::invalid_request(TEMPLATE_LAMBDA_MISSING));
        }
        s.rotation.enabled = Some(false);
        let pending = if s.rotation_in_progress() { s.holder_id(AWSPENDING).map(str::to_string) } else { None };
        Ok(CancelRotateSecretOutput { arn: s.arn.clone(), name: s.name.clone(), version_id: pending })
    }

    /// DeleteSecret: schedules deletion after a recovery window (7-30 days, default 30), or
    /// deletes at once with ForceDeleteWithoutRecovery.
    pub fn delete_secret(&mut self, input: DeleteSecretInput) -> Result<DeleteSecretOutput, ApiError> {
        self.purge_expired();
        let force = input.force_delete_without_recovery.unwrap_or(false);
        if let Some(days) = input.recovery_window_in_days {
            if !(7..=30).contains(&days) {
                return Err(ApiError::invalid_parameter(
                    "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
                ));
            }
            if force {
                return Err(ApiError::invalid_parameter(
                    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
                ));
            }
        }
        let now = self.clock.now();
        let key = self.key_of(required(&input.secret_id, "SecretId")?);
        let Some(key) = key else {
            if force {
                // A forced delete of an unknown secret succeeds, as in moto, which special-cases
                // it (AWS's answer is UNCONFIRMED): deleting is idempotent.
                let name = required(&input.secret_id, "SecretId")?.to_string();
                let arn = if name.starts_with("arn:") { name.clone() } else { self.new_arn(&name) };
                return Ok(DeleteSecretOutput { arn, name, deletion_date: now });
            }
            return Err(ApiError::secret_not_found());
        };
        let s = self.secrets.get_mut(&key).expect("key_of found it");
        if force {
            let s = self.secrets.remove(&key).expect("present");
            return Ok(DeleteSecretOutput { arn: s.arn, name: s.name, deletion_date: now });
        }
        if s.is_deleted() {
            return Err(ApiError::marked_for_deletion());
        }
        let days = input.recovery_window_in_days.unwrap_or(30) as u32;
        let when = now.plus(Timestamp::DAY * days);
        s.deleted = Some(now);
        s.deletion_date = Some(when);
        let out = DeleteSecretOutput { arn: s.arn.clone(), name: s.name.clone(), deletion_date: when };
        self.earliest_deletion = Some(self.earliest_deletion.map_or(when, |d| d.min(when)));
        Ok(out)
    }

    /// RestoreSecret: cancels a scheduled deletion.
    pub fn restore_secret(&mut self, input: RestoreSecretInput) -> Result<RestoreSecretOutput, ApiError> {
        self.purge_expired();
        let now = self.clock.now();
        let s = self.lookup_mut(&input.secret_id)?;
        if s.deleted.take().is_some() {
            s.deletion_date = None;
            s.last_changed = now;
        }
        Ok(RestoreSecretOutput { arn: s.arn.clone(), name: s.name.clone() })
    }

    // ----- what the service does around a rotation (spec 5) ------------------------------

    /// The service's bookkeeping after the function's finishSecret returned success (spec 5
    /// step 7). Returns `true` when the rotation completed: `token` holds `AWSCURRENT`. Then
    /// `LastRotatedDate` is set, the next rotation scheduled, and, per configuration,
    /// `AWSPENDING` removed from the new current version. Returns `false` (and changes
    /// nothing) when finishSecret "succeeded" without moving `AWSCURRENT`.
    pub fn complete_rotation(&mut self, secret_id: &str, token: &str) -> Result<bool, ApiError> {
        let now = self.clock.now();
        let strip = self.config.strip_pending_after_rotation;
        let s = self.lookup_mut(&Some(secret_id.to_string()))?;
        let Some(idx) = s.version_index(token) else { return Ok(false) };
        if !s.versions[idx].has(AWSCURRENT) {
            return Ok(false);
        }
        if strip {
            s.versions[idx].stages.retain(|l| l != AWSPENDING);
        }
        s.rotation.last_rotated = Some(now);
        if let Some(days) = s.rotation.rules.as_ref().and_then(|r| r.automatically_after_days) {
            s.rotation.next_rotation = Some(now.plus(Timestamp::DAY * days as u32));
        }
        s.last_changed = now;
        Ok(true)
    }

    /// The end of a test-only rotation (spec 5 step 6): the service removes the temporary
    /// version's `AWSPENDING` label, whatever testSecret answered.
    pub fn end_test_rotation(&mut self, secret_id: &str, token: &str) -> Result<(), ApiError> {
        let s = self.lookup_mut(&Some(secret_id.to_string()))?;
        if let Some(idx) = s.version_index(token) {
            s.versions[idx].stages.retain(|l| l != AWSPENDING);
        }
        Ok(())
    }

    // ----- helpers ----------------------------------------------------------------------

    /// The key (name) of the secret a SecretId refers to: a name, a full ARN, or a partial ARN
    /// (an ARN without the 6-character suffix).
    fn key_of(&self, id: &str) -> Option<String> {
        let prefix = format!("arn:aws:secretsmanager:{}:{}:secret:", self.config.region, self.config.account);
        if let Some(resource) = id.strip_prefix(&prefix) {
            if let Some(s) = self.secrets.get(resource) {
                return Some(s.name.clone()); // partial ARN
            }
            // Full ARN: name-XXXXXX.
            if resource.len() > 7 && resource.is_char_boundary(resource.len() - 7) {
                let name = &resource[..resource.len() - 7];
                if let Some(s) = self.secrets.get(name)
                    && s.arn == id
                {
                    return Some(s.name.clone());
                }
            }
            return None;
        }
        self.secrets.contains_key(id).then(|| id.to_string())
    }

    fn lookup(&self, id: &Option<String>) -> Result<&Secret, ApiError> {
        let id = required(id, "SecretId")?;
        validate_secret_id(id)?;
        self.key_of(id).and_then(|k| self.secrets.get(&k)).ok_or_else(ApiError::secret_not_found)
    }

    fn lookup_mut(&mut self, id: &Option<String>) -> Result<&mut Secret, ApiError> {
        let id = required(id, "SecretId")?;
        validate_secret_id(id)?;
        let key = self.key_of(id).ok_or_else(ApiError::secret_not_found)?;
        Ok(self.secrets.get_mut(&key).expect("key_of found it"))
    }

    /// Secrets whose recovery window has passed are gone.
    fn purge_expired(&mut self) {
        let now = self.clock.now();
        if self.earliest_deletion.is_none_or(|d| d > now) {
            return;
        }
        self.secrets.retain(|_, s| s.deletion_date.is_none_or(|d| d > now));
        self.earliest_deletion = self.secrets.values().filter_map(|s| s.deletion_date).min();
    }

    fn new_arn(&mut self, name: &str) -> String {
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let suffix: String = (0..6).map(|_| ALNUM[self.rng().random_range(0..ALNUM.len())] as char).collect();
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
            self.config.region, self.config.account
        )
    }

    /// A fresh UUID for a request that carried no ClientRequestToken (SDKs always send one;
    /// raw callers may not).
    fn new_token(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng().fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    }
}

/// A shared handle on a model, for the emulator and the runner.
pub type SharedModel = Arc<std::sync::Mutex<Model>>;

fn parse<T: DeserializeOwned>(op: Operation, body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    // The awsJson protocol sends an object; serde would also read a struct from an array.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::new(
            ErrorKind::SerializationException,
            format!("The request body of {} must be a JSON object.", op.name()),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde's messages can quote input text; keep them only when they quote nothing, so a
        // secret value never ends up in an error message.
        let detail = e.to_string();
        let detail = if detail.contains('"') || detail.contains('`') {
            format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
        } else {
            detail
        };
        ApiError::new(
            ErrorKind::SerializationException,
            format!("The request body is not a valid {} input: {detail}", op.name()),
        )
    })
}

fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    match v.as_deref() {
        Some(s) => Ok(s),
        // Missing required members: AWS answers with a validation error; its exact shape for
        // this service is UNCONFIRMED, so we use the service's own InvalidParameterException.
        None => Err(ApiError::invalid_parameter(format!("You must provide a value for the {name} parameter."))),
    }
}

fn validate_secret_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 2048 {
        return Err(ApiError::invalid_parameter("SecretId must be 1-2048 characters long."));
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    if name.is_empty() || name.len() > 512 || !name.chars().all(ok_char) {
        return Err(ApiError::invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ));
    }
    Ok(())
}

fn validate_token(t: &str, what: &str) -> Result<(), ApiError> {
    if !(32..=64).contains(&t.chars().count()) {
        return Err(ApiError::invalid_parameter(format!("{what} must be 32-64 characters long.")));
    }
    Ok(())
}

fn validate_stage(stage: &str) -> Result<(), ApiError> {
    if !(1..=256).contains(&stage.chars().count()) {
        return Err(ApiError::invalid_parameter("VersionStage must be 1-256 characters long."));
    }
    Ok(())
}

fn validate_stages(stages: &[String]) -> Result<(), ApiError> {
    if !(1..=20).contains(&stages.len()) {
        return Err(ApiError::invalid_parameter("VersionStages must hold 1-20 staging labels."));
    }
    stages.iter().try_for_each(|s| validate_stage(s))
}

fn validate_value(v: &SecretValue) -> Result<(), ApiError> {
    let ok = match v {
        SecretValue::String(s) => (1..=65536).contains(&s.chars().count()),
        SecretValue::Binary(b) => (1..=65536).contains(&b.len()),
    };
    if !ok {
        return Err(ApiError::invalid_parameter("The secret value must be 1-65536 characters or bytes long."));
    }
    Ok(())
}

fn validate_rules(r: &RotationRules) -> Result<(), ApiError> {
    if let Some(d) = r.automatically_after_days
        && !(1..=1000).contains(&d)
    {
        return Err(ApiError::invalid_parameter("AutomaticallyAfterDays must be between 1 and 1000."));
    }
    if let Some(d) = &r.duration {
        let ok = (2..=3).contains(&d.len())
            && d.ends_with('h')
            && d[..d.len() - 1].chars().all(|c| c.is_ascii_digit());
        if !ok {
            return Err(ApiError::invalid_parameter("Duration must match the pattern [0-9]+h."));
        }
    }
    if let Some(e) = &r.schedule_expression {
        let ok = (1..=256).contains(&e.len()) && (e.starts_with("rate(") || e.starts_with("cron("));
        if !ok {
            return Err(ApiError::invalid_parameter("ScheduleExpression must be a rate() or cron() expression."));
        }
    }
    Ok(())
}

fn token_in_use(token: &str, arn: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceExistsException,
        format!("You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."),
    )
}

fn push_version(s: &mut Secret, id: String, value: Option<SecretValue>, now: Timestamp) -> usize {
    let ordinal = s.next_ordinal;
    s.next_ordinal += 1;
    s.versions.push(Version { id, value, stages: Vec::new(), created: now, last_accessed: None, ordinal });
    s.versions.len() - 1
}

/// Too many distinct labels would result (spec 3.1: 20 per secret). The exact message is
/// UNCONFIRMED.
fn check_label_quota(s: &Secret, adding: &[String], config: &ModelConfig) -> Result<(), ApiError> {
    let mut labels: Vec<&str> = s.labels();
    for a in adding {
        if !labels.contains(&a.as_str()) {
            labels.push(a);
        }
    }
    if labels.len() > config.max_labels {
        return Err(ApiError::new(
            ErrorKind::LimitExceededException,
            format!("A secret can have at most {} staging labels.", config.max_labels),
        ));
    }
    Ok(())
}

/// Version retention (spec 3.1): deprecated versions that are neither among the most recent
/// ones nor young are deleted; if too many deprecated versions remain, a new version is
/// refused with LimitExceededException (message UNCONFIRMED).
fn make_room_for_version(s: &mut Secret, now: Timestamp, config: &ModelConfig) -> Result<(), ApiError> {
    let n = s.versions.len();
    let recent_from = n.saturating_sub(config.keep_recent_versions);
    let young = |v: &Version| now.0.saturating_sub(v.created.0) < config.keep_versions_younger_than.as_millis() as u64;
    let mut i = 0;
    s.versions.retain(|v| {
        let keep = !v.is_deprecated() || i >= recent_from || young(v);
        i += 1;
        keep
    });
    let deprecated = s.versions.iter().filter(|v| v.is_deprecated()).count();
    if deprecated >= config.deprecated_version_quota {
        return Err(ApiError::new(
            ErrorKind::LimitExceededException,
            "You have exceeded the maximum number of versions for this secret. Deprecated versions are removed after 24 hours.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
