//! A secret as the model holds it: its versions, their values and staging labels, and the
//! rotation and deletion state. The label primitives here are the only code in rotcheck that
//! moves `AWSCURRENT`; everything else calls them.

use super::clock::Timestamp;
use super::shapes::{Blob, RotationRules, Tag};

/// The label of the version a plain read returns.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The label of the version being built by a rotation.
pub const AWSPENDING: &str = "AWSPENDING";
/// The label of the version `AWSCURRENT` left most recently.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// The value stored in a version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretValue {
    /// `SecretString`.
    String(String),
    /// `SecretBinary`.
    Binary(Vec<u8>),
}

impl SecretValue {
    /// Builds a value from the two optional request members; `None` when both are absent.
    pub fn from_parts(string: Option<String>, binary: Option<Blob>) -> Option<SecretValue> {
        match (string, binary) {
            (Some(s), _) => Some(SecretValue::String(s)),
            (None, Some(b)) => Some(SecretValue::Binary(b.0)),
            (None, None) => None,
        }
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SecretValue::String(s) => Some(s),
            SecretValue::Binary(_) => None,
        }
    }
}

/// One version of a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The VersionId (the ClientRequestToken that created it).
    pub id: String,
    /// The value; `None` for the placeholder RotateSecret creates before the function runs.
    pub value: Option<SecretValue>,
    /// Staging labels, in the order they were attached. Empty means deprecated.
    pub stages: Vec<String>,
    /// When the version was created.
    pub created: Timestamp,
    /// The day the value was last read.
    pub last_accessed: Option<Timestamp>,
    /// 1 for the first version of the secret, 2 for the next, ...: the `v2` in value aliases.
    pub ordinal: u32,
}

impl Version {
    /// Whether the version carries `label`.
    pub fn has(&self, label: &str) -> bool {
        self.stages.iter().any(|s| s == label)
    }

    /// A version without labels is deprecated: hidden from DescribeSecret and from a default
    /// ListSecretVersionIds, and eligible for deletion.
    pub fn is_deprecated(&self) -> bool {
        self.stages.is_empty()
    }
}

/// Rotation configuration and history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// `None` until rotation was first configured; then on/off.
    pub enabled: Option<bool>,
    /// The function that rotates the secret.
    pub lambda_arn: Option<String>,
    /// The schedule.
    pub rules: Option<RotationRules>,
    /// When the last rotation completed.
    pub last_rotated: Option<Timestamp>,
    /// When the next scheduled rotation is due.
    pub next_rotation: Option<Timestamp>,
}

/// A secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The full ARN, with the 6-character suffix.
    pub arn: String,
    /// The friendly name.
    pub name: String,
    #[allow(missing_docs)]
    pub description: Option<String>,
    #[allow(missing_docs)]
    pub kms_key_id: Option<String>,
    #[allow(missing_docs)]
    pub tags: Vec<Tag>,
    /// Versions in creation order (pruned versions are gone).
    pub versions: Vec<Version>,
    #[allow(missing_docs)]
    pub rotation: Rotation,
    #[allow(missing_docs)]
    pub created: Timestamp,
    #[allow(missing_docs)]
    pub last_changed: Timestamp,
    #[allow(missing_docs)]
    pub last_accessed: Option<Timestamp>,
    /// When DeleteSecret was called, if the secret is scheduled for deletion.
    pub deleted: Option<Timestamp>,
    /// When a scheduled deletion takes effect.
    pub deletion_date: Option<Timestamp>,
    /// The ordinal the next version gets.
    pub next_ordinal: u32,
}

impl Secret {
    /// The version with this id.
    pub fn version(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub(crate) fn version_index(&self, id: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.id == id)
    }

    /// The version carrying `label`, if any. A label is on at most one version.
    pub fn holder(&self, label: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.has(label))
    }

    pub(crate) fn holder_index(&self, label: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.has(label))
    }

    /// The id of the version carrying `label`.
    pub fn holder_id(&self, label: &str) -> Option<&str> {
        self.holder(label).map(|v| v.id.as_str())
    }

    /// Whether a rotation is in progress in the service's sense: `AWSPENDING` sits on a version
    /// other than the `AWSCURRENT` one (spec 5, step 3).
    pub fn rotation_in_progress(&self) -> bool {
        match self.holder_index(AWSPENDING) {
            None => false,
            Some(p) => !self.versions[p].has(AWSCURRENT),
        }
    }

    /// Whether the secret is scheduled for deletion.
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// Every distinct label currently attached.
    pub fn labels(&self) -> Vec<&str> {
        let mut all: Vec<&str> =
            self.versions.iter().flat_map(|v| v.stages.iter().map(String::as_str)).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Removes `label` from whichever version has it.
    pub(crate) fn detach(&mut self, label: &str) {
        for v in &mut self.versions {
            v.stages.retain(|s| s != label);
        }
    }

    /// Puts `label` on version `idx`, taking it off any other version.
    /// `AWSCURRENT` goes through [`Secret::move_current`] so that `AWSPREVIOUS` follows it.
    pub(crate) fn attach(&mut self, label: &str, idx: usize) {
        if label == AWSCURRENT {
            self.move_current(idx);
            return;
        }
        if self.versions[idx].has(label) {
            return;
        }
        self.detach(label);
        self.versions[idx].stages.push(label.to_string());
    }

    /// Moves `AWSCURRENT` to version `to`. The version it leaves gets `AWSPREVIOUS` (and the
    /// old `AWSPREVIOUS` version loses it). Nothing else changes: `AWSPENDING` stays where it
    /// is, also on `to` (spec 1.2, 3.4).
    pub(crate) fn move_current(&mut self, to: usize) {
        let from = self.holder_index(AWSCURRENT);
        if from == Some(to) {
            return;
        }
        self.detach(AWSCURRENT);
        self.versions[to].stages.push(AWSCURRENT.to_string());
        if let Some(from) = from {
            self.detach(AWSPREVIOUS);
            self.versions[from].stages.push(AWSPREVIOUS.to_string());
        }
    }

    /// `VersionIdsToStages`: labelled versions only.
    pub fn version_ids_to_stages(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.versions
            .iter()
            .filter(|v| !v.is_deprecated())
            .map(|v| (v.id.clone(), v.stages.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(n: usize) -> Secret {
        Secret {
            arn: "arn".into(),
            name: "s".into(),
            description: None,
            kms_key_id: None,
            tags: vec![],
            versions: (0..n)
                .map(|i| Version {
                    id: format!("v{i}"),
                    value: Some(SecretValue::String(format!("{i}"))),
                    stages: vec![],
                    created: Timestamp(0),
                    last_accessed: None,
                    ordinal: i as u32 + 1,
                })
                .collect(),
            rotation: Rotation::default(),
            created: Timestamp(0),
            last_changed: Timestamp(0),
            last_accessed: None,
            deleted: None,
            deletion_date: None,
            next_ordinal: n as u32 + 1,
        }
    }

    #[test]
    fn previous_follows_current() {
        let mut s = secret(3);
        s.attach(AWSCURRENT, 0);
        s.attach(AWSCURRENT, 1);
        assert_eq!(s.holder_id(AWSPREVIOUS), Some("v0"));
        s.attach(AWSCURRENT, 2);
        assert_eq!(s.holder_id(AWSPREVIOUS), Some("v1"));
        assert!(s.versions[0].is_deprecated());
        // Back to the previous version: the label pair swaps.
        s.attach(AWSCURRENT, 1);
        assert_eq!(s.holder_id(AWSCURRENT), Some("v1"));
        assert_eq!(s.holder_id(AWSPREVIOUS), Some("v2"));
        assert_eq!(s.versions[1].stages, vec![AWSCURRENT]);
    }

    #[test]
    fn pending_stays_on_the_target_of_a_current_move() {
        let mut s = secret(2);
        s.attach(AWSCURRENT, 0);
        s.attach(AWSPENDING, 1);
        assert!(s.rotation_in_progress());
        s.move_current(1);
        assert_eq!(s.versions[1].stages, vec![AWSPENDING, AWSCURRENT]);
        assert!(!s.rotation_in_progress());
    }

    #[test]
    fn a_label_lives_on_one_version() {
        let mut s = secret(2);
        s.attach("MINE", 0);
        s.attach("MINE", 1);
        assert_eq!(s.labels(), vec!["MINE"]);
        assert_eq!(s.holder_id("MINE"), Some("v1"));
    }
}
