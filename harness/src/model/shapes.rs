//! Inputs and outputs of the operations, named and shaped as in the Secrets Manager API model.
//!
//! Inputs deserialize from the awsJson1.1 request body (unknown members are ignored, as a
//! lenient service would; a member of the wrong JSON type is a SerializationException).
//! Outputs serialize with every absent field left out, as AWS does.

use super::clock::Timestamp;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A `SecretBinary` value: raw bytes, base64 on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Blob)
            .map_err(|e| serde::de::Error::custom(format!("SecretBinary is not base64: {e}")))
    }
}

/// A resource tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// How often a secret rotates. Stored as given and echoed back by DescribeSecret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct RotationRules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

macro_rules! input {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
        #[serde(rename_all = "PascalCase", default)]
        #[allow(missing_docs)]
        pub struct $name {
            $($(#[$fm])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: $ty,)*
        }
    };
}

macro_rules! output {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize)]
        #[serde(rename_all = "PascalCase")]
        #[allow(missing_docs)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}

input!(
    /// CreateSecret.
    CreateSecretInput {
        name: Option<String>,
        client_request_token: Option<String>,
        description: Option<String>,
        kms_key_id: Option<String>,
        secret_string: Option<String>,
        secret_binary: Option<Blob>,
        tags: Option<Vec<Tag>>,
        force_overwrite_replica_secret: Option<bool>,
    }
);

output!(
    /// CreateSecret.
    CreateSecretOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
    }
);

input!(
    /// DescribeSecret.
    DescribeSecretInput { secret_id: Option<String> }
);

output!(
    /// DescribeSecret: every field present only when it has a value (spec 3.5).
    DescribeSecretOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kms_key_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rotation_enabled: Option<bool>,
        #[serde(rename = "RotationLambdaARN", skip_serializing_if = "Option::is_none")]
        rotation_lambda_arn: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rotation_rules: Option<RotationRules>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_rotated_date: Option<Timestamp>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_changed_date: Option<Timestamp>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_accessed_date: Option<Timestamp>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted_date: Option<Timestamp>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_rotation_date: Option<Timestamp>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tags: Vec<Tag>,
        /// Only versions that carry at least one label; left out when there are none.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        version_ids_to_stages: BTreeMap<String, Vec<String>>,
        created_date: Timestamp,
    }
);

input!(
    /// GetSecretValue.
    GetSecretValueInput {
        secret_id: Option<String>,
        version_id: Option<String>,
        version_stage: Option<String>,
    }
);

output!(
    /// GetSecretValue.
    GetSecretValueOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        version_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        secret_string: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        secret_binary: Option<Blob>,
        version_stages: Vec<String>,
        created_date: Timestamp,
    }
);

input!(
    /// PutSecretValue.
    PutSecretValueInput {
        secret_id: Option<String>,
        client_request_token: Option<String>,
        secret_string: Option<String>,
        secret_binary: Option<Blob>,
        version_stages: Option<Vec<String>>,
        rotation_token: Option<String>,
    }
);

output!(
    /// PutSecretValue.
    PutSecretValueOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        version_id: String,
        version_stages: Vec<String>,
    }
);

input!(
    /// UpdateSecretVersionStage.
    UpdateSecretVersionStageInput {
        secret_id: Option<String>,
        version_stage: Option<String>,
        remove_from_version_id: Option<String>,
        move_to_version_id: Option<String>,
    }
);

output!(
    /// UpdateSecretVersionStage.
    UpdateSecretVersionStageOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
    }
);

input!(
    /// ListSecretVersionIds.
    ListSecretVersionIdsInput {
        secret_id: Option<String>,
        max_results: Option<i64>,
        next_token: Option<String>,
        include_deprecated: Option<bool>,
    }
);

output!(
    /// One entry of ListSecretVersionIds.
    SecretVersionsListEntry {
        version_id: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        version_stages: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_accessed_date: Option<Timestamp>,
        created_date: Timestamp,
    }
);

output!(
    /// ListSecretVersionIds.
    ListSecretVersionIdsOutput {
        versions: Vec<SecretVersionsListEntry>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
    }
);

input!(
    /// GetRandomPassword.
    GetRandomPasswordInput {
        password_length: Option<i64>,
        exclude_characters: Option<String>,
        exclude_numbers: Option<bool>,
        exclude_punctuation: Option<bool>,
        exclude_uppercase: Option<bool>,
        exclude_lowercase: Option<bool>,
        include_space: Option<bool>,
        require_each_included_type: Option<bool>,
    }
);

output!(
    /// GetRandomPassword.
    GetRandomPasswordOutput { random_password: String }
);

input!(
    /// RotateSecret.
    RotateSecretInput {
        secret_id: Option<String>,
        client_request_token: Option<String>,
        #[serde(rename = "RotationLambdaARN")]
        rotation_lambda_arn: Option<String>,
        rotation_rules: Option<RotationRules>,
        rotate_immediately: Option<bool>,
    }
);

output!(
    /// RotateSecret.
    RotateSecretOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        version_id: String,
    }
);

input!(
    /// CancelRotateSecret.
    CancelRotateSecretInput { secret_id: Option<String> }
);

output!(
    /// CancelRotateSecret.
    CancelRotateSecretOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        /// The version the cancelled rotation created, when one is still pending.
        #[serde(skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
    }
);

input!(
    /// DeleteSecret.
    DeleteSecretInput {
        secret_id: Option<String>,
        recovery_window_in_days: Option<i64>,
        force_delete_without_recovery: Option<bool>,
    }
);

output!(
    /// DeleteSecret.
    DeleteSecretOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
        deletion_date: Timestamp,
    }
);

input!(
    /// RestoreSecret.
    RestoreSecretInput { secret_id: Option<String> }
);

output!(
    /// RestoreSecret.
    RestoreSecretOutput {
        #[serde(rename = "ARN")]
        arn: String,
        name: String,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_left_out() {
        let out = CreateSecretOutput { arn: "a".into(), name: "n".into(), version_id: None };
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"ARN":"a","Name":"n"}"#);
    }

    #[test]
    fn inputs_ignore_unknown_members_and_reject_wrong_types() {
        let ok: GetSecretValueInput =
            serde_json::from_str(r#"{"SecretId":"s","Whatever":1}"#).unwrap();
        assert_eq!(ok.secret_id.as_deref(), Some("s"));
        assert!(serde_json::from_str::<GetSecretValueInput>(r#"{"SecretId":5}"#).is_err());
    }

    #[test]
    fn blobs_are_base64() {
        let b: PutSecretValueInput = serde_json::from_str(r#"{"SecretBinary":"AAEC"}"#).unwrap();
        assert_eq!(b.secret_binary, Some(Blob(vec![0, 1, 2])));
        assert!(serde_json::from_str::<PutSecretValueInput>(r#"{"SecretBinary":"*"}"#).is_err());
    }
}
