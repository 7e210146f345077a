//! The verdict: the properties of `failure-modes.md` section 4 and the contract checks of
//! spec 5.1, judged on observed states. The checker knows nothing of how a schedule was made
//! or run; it gets what was observed before and after, and the function's calls.
//!
//! An unknown outcome (a timeout, a kill, a lost result) is never assumed applied or not:
//! properties are judged on the states that follow.

use crate::emulator::{CallOutcome, CallRecord};
use crate::model::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, Operation};
use serde::{Deserialize, Serialize};

/// A property, with the ids of `failure-modes.md` section 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Property {
    /// Label safety.
    P1,
    /// Idempotence per token.
    P2,
    /// No lockout.
    P3,
    /// Credential validity.
    P4,
    /// Privilege equivalence (alternating users).
    P5,
    /// Availability.
    P6,
    /// Fail-fast and diagnosable.
    P7,
    /// Hygiene: no secret material in logs.
    P8,
    /// The API contract of spec 5.1 (calls about the token use it; no label move before the
    /// test; only its own secrets).
    Contract,
}

impl Property {
    /// Every property.
    pub const ALL: [Property; 9] =
        [Property::P1, Property::P2, Property::P3, Property::P4, Property::P5, Property::P6, Property::P7, Property::P8, Property::Contract];

    /// `P1` ... `P8`, `contract`.
    pub fn id(self) -> &'static str {
        match self {
            Property::P1 => "P1",
            Property::P2 => "P2",
            Property::P3 => "P3",
            Property::P4 => "P4",
            Property::P5 => "P5",
            Property::P6 => "P6",
            Property::P7 => "P7",
            Property::P8 => "P8",
            Property::Contract => "contract",
        }
    }

    /// What it means, in a few words.
    pub fn title(self) -> &'static str {
        match self {
            Property::P1 => "label safety",
            Property::P2 => "idempotence per token",
            Property::P3 => "no lockout",
            Property::P4 => "credential validity",
            Property::P5 => "privilege equivalence",
            Property::P6 => "availability",
            Property::P7 => "fail-fast and diagnosable",
            Property::P8 => "no secrets in logs",
            Property::Contract => "API contract",
        }
    }

    /// Parses an id (`P3`, `p3`, `contract`).
    pub fn parse(s: &str) -> Option<Property> {
        Property::ALL.into_iter().find(|p| p.id().eq_ignore_ascii_case(s))
    }
}

/// A property that does not hold, with what shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which property.
    pub property: Property,
    /// What was observed (redacted).
    pub message: String,
    /// The command (0-based) during which it was observed.
    pub command: usize,
}

/// One version as observed from outside: its labels, whether it holds a value, and whether
/// its credentials log in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenVersion {
    /// `v1`, `v2`, ... by creation order.
    pub alias: String,
    /// The version id.
    pub id: String,
    /// Its labels, sorted.
    pub labels: Vec<String>,
    /// Whether it holds a value.
    pub has_value: bool,
    /// The user its credentials name.
    pub user: Option<String>,
    /// Whether they log in (`None`: not probed, no value, or not parsable).
    pub logs_in: Option<bool>,
}

/// The secret and the database, as observed after a command or a step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Every version, by creation order (deprecated ones too).
    pub versions: Vec<SeenVersion>,
}

impl Observed {
    /// The version carrying `label`.
    pub fn holder(&self, label: &str) -> Option<&SeenVersion> {
        self.versions.iter().find(|v| v.labels.iter().any(|l| l == label))
    }

    /// Labels by version, as a person reads them: `v1 [AWSPREVIOUS] v2 [AWSCURRENT]`.
    pub fn labels_text(&self) -> String {
        let parts: Vec<String> = self
            .versions
            .iter()
            .filter(|v| !v.labels.is_empty())
            .map(|v| {
                let login = match v.logs_in {
                    Some(true) => " logs in",
                    Some(false) => " rejected",
                    None => "",
                };
                let empty = if v.has_value { "" } else { " (no value)" };
                format!("{} [{}]{empty}{login}", v.alias, v.labels.join(", "))
            })
            .collect();
        if parts.is_empty() { "no labelled version".into() } else { parts.join("; ") }
    }

    /// The labelled state without login results (what idempotence compares).
    fn shape(&self) -> Vec<(String, Vec<String>, bool)> {
        self.versions.iter().map(|v| (v.alias.clone(), v.labels.clone(), v.has_value)).collect()
    }

    /// Which labelled versions log in.
    fn logins(&self) -> Vec<(String, Option<bool>)> {
        self.versions.iter().filter(|v| !v.labels.is_empty()).map(|v| (v.alias.clone(), v.logs_in)).collect()
    }
}

/// P3 at any instant: once a value exists, some labelled version's credentials log in (the
/// live password is recoverable from a label).
pub fn lockout(o: &Observed) -> Option<String> {
    let labelled: Vec<&SeenVersion> = o.versions.iter().filter(|v| !v.labels.is_empty() && v.has_value).collect();
    if labelled.is_empty() || labelled.iter().any(|v| v.logs_in == Some(true)) {
        return None;
    }
    if labelled.iter().all(|v| v.logs_in.is_none()) {
        return None;
    }
    Some(format!("no labelled version's credentials log in: {}", o.labels_text()))
}

/// P6 for alternating users at any instant: a client following AWSCURRENT logs in.
pub fn current_unavailable(o: &Observed) -> Option<String> {
    match o.holder(AWSCURRENT) {
        Some(v) if v.logs_in == Some(false) => Some(format!("a client using AWSCURRENT ({}) cannot log in: {}", v.alias, o.labels_text())),
        _ => None,
    }
}

/// P1 after a completed rotation with token `token` that started from current version
/// `old_current`: AWSCURRENT on the token, AWSPENDING absent or with it, AWSPREVIOUS on the old
/// current version.
pub fn labels_after_rotation(after: &Observed, token: &str, old_current: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let alias = |id: &str| after.versions.iter().find(|v| v.id == id).map(|v| v.alias.clone()).unwrap_or_else(|| id.to_string());
    match after.holder(AWSCURRENT) {
        Some(v) if v.id == token => {}
        Some(v) => problems.push(format!("AWSCURRENT is on {}, not on the rotation's version {}", v.alias, alias(token))),
        None => problems.push("no version carries AWSCURRENT".into()),
    }
    if let Some(p) = after.holder(AWSPENDING)
        && !p.labels.iter().any(|l| l == AWSCURRENT)
    {
        problems.push(format!("AWSPENDING is left on {}, apart from AWSCURRENT: the next rotation is blocked", p.alias));
    }
    if let Some(old) = old_current
        && old != token
    {
        match after.holder(AWSPREVIOUS) {
            Some(v) if v.id == old => {}
            Some(v) => problems.push(format!("AWSPREVIOUS is on {}, not on the version AWSCURRENT left ({})", v.alias, alias(old))),
            None => problems.push(format!("no AWSPREVIOUS; it should be on {}", alias(old))),
        }
    }
    if let Some(v) = after.holder(AWSCURRENT)
        && !v.has_value
    {
        problems.push(format!("AWSCURRENT ({}) has no value", v.alias));
    }
    problems
}

/// P2: a step delivered again after it succeeded must leave the state as it was.
pub fn changed_by_repeat(before: &Observed, after: &Observed) -> Option<String> {
    if before.shape() != after.shape() {
        return Some(format!("labels changed from {} to {}", before.labels_text(), after.labels_text()));
    }
    if before.logins() != after.logins() {
        return Some(format!("which credentials log in changed from {} to {}", before.labels_text(), after.labels_text()));
    }
    None
}

/// What a step's calls must respect (spec 5.1 items 1 and 8, the call-out checks of
/// `failure-modes.md` 3.1): puts and label moves about the token use it, AWSCURRENT moves only
/// after testSecret succeeded, pending values are read by VersionId, and only the function's
/// own secrets are touched.
pub fn contract(calls: &[CallRecord], token: &str, own_ids: &[String], tested: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for c in calls {
        let Some(op) = c.op else { continue };
        let arg = |k: &str| c.args.get(k).and_then(|v| v.as_str()).map(str::to_string);
        if let Some(id) = arg("SecretId")
            && !own_ids.contains(&id)
        {
            problems.push(format!("{} on a secret that is not the function's own ({id})", op.name()));
        }
        let applied = matches!(c.outcome, CallOutcome::Ok { .. } | CallOutcome::Lost { applied: true, .. });
        match op {
            Operation::PutSecretValue => {
                if arg("ClientRequestToken").as_deref() != Some(token) {
                    problems.push(format!(
                        "PutSecretValue with ClientRequestToken {}, not the event's token",
                        arg("ClientRequestToken").unwrap_or_else(|| "(none)".into())
                    ));
                }
            }
            Operation::UpdateSecretVersionStage if arg("VersionStage").as_deref() == Some(AWSCURRENT) => {
                if let Some(to) = arg("MoveToVersionId")
                    && to != token
                    && applied
                {
                    problems.push(format!("AWSCURRENT moved to {to}, not to the event's token"));
                }
                if !tested && applied {
                    problems.push("AWSCURRENT moved before testSecret succeeded for the token".into());
                }
            }
            Operation::GetSecretValue if arg("VersionStage").as_deref() == Some(AWSPENDING) && arg("VersionId").is_none() => {
                problems.push("AWSPENDING read without VersionId=token: a stale pending value of another rotation would be used".into());
            }
            _ => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::CallOutcome;

    fn v(alias: &str, labels: &[&str], logs_in: Option<bool>) -> SeenVersion {
        SeenVersion {
            alias: alias.into(),
            id: format!("id-{alias}"),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            has_value: true,
            user: Some("u".into()),
            logs_in,
        }
    }

    #[test]
    fn lockout_needs_some_labelled_login() {
        let ok = Observed { versions: vec![v("v1", &["AWSPREVIOUS"], Some(true)), v("v2", &["AWSCURRENT"], Some(false))] };
        assert_eq!(lockout(&ok), None);
        let locked = Observed { versions: vec![v("v1", &[], Some(true)), v("v2", &["AWSCURRENT"], Some(false))] };
        assert!(lockout(&locked).unwrap().contains("v2 [AWSCURRENT] rejected"));
        assert!(current_unavailable(&ok).is_some());
    }

    #[test]
    fn labels_after_a_rotation() {
        let good = Observed { versions: vec![v("v1", &["AWSPREVIOUS"], None), v("v2", &["AWSCURRENT", "AWSPENDING"], None)] };
        assert!(labels_after_rotation(&good, "id-v2", Some("id-v1")).is_empty());
        let stuck = Observed { versions: vec![v("v1", &["AWSCURRENT"], None), v("v2", &["AWSPENDING"], None)] };
        let p = labels_after_rotation(&stuck, "id-v2", Some("id-v1"));
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn repeats_must_not_change_anything() {
        let a = Observed { versions: vec![v("v1", &["AWSCURRENT"], Some(true))] };
        assert_eq!(changed_by_repeat(&a, &a), None);
        let b = Observed { versions: vec![v("v1", &["AWSCURRENT"], Some(false))] };
        assert!(changed_by_repeat(&a, &b).is_some());
    }

    #[test]
    fn contract_checks_read_the_call_log() {
        let call = |op, args: serde_json::Value| CallRecord {
            seq: 1,
            caller: "k".into(),
            index: 1,
            op: Some(op),
            args,
            outcome: CallOutcome::Ok { response: serde_json::json!({}) },
            micros: 0,
        };
        let own = vec!["arn:s".to_string()];
        let calls = vec![
            call(Operation::PutSecretValue, serde_json::json!({"SecretId": "arn:s", "ClientRequestToken": "other"})),
            call(Operation::UpdateSecretVersionStage, serde_json::json!({"SecretId": "arn:s", "VersionStage": "AWSCURRENT", "MoveToVersionId": "t"})),
            call(Operation::GetSecretValue, serde_json::json!({"SecretId": "arn:x", "VersionStage": "AWSPENDING"})),
        ];
        let p = contract(&calls, "t", &own, false);
        assert_eq!(p.len(), 4, "{p:?}");
        let fine = vec![call(Operation::PutSecretValue, serde_json::json!({"SecretId": "arn:s", "ClientRequestToken": "t"}))];
        assert!(contract(&fine, "t", &own, true).is_empty());
        assert_eq!(Property::parse("p3"), Some(Property::P3));
    }
}
