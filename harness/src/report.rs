//! Reports of a run, for the people and pipelines that read them: JSON (its schema is
//! `docs/report.schema.json`), JUnit XML (one test case per property, for CI test tabs) and
//! Markdown (for a CI job summary). Every text in a report comes from traces, which hold
//! aliases, never secret values.

use crate::checker::Property;
use crate::runner::CaseStats;
use serde::Serialize;

/// The version of the JSON report format.
pub const REPORT_VERSION: u32 = 1;

/// What a run found.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The rotcheck version that wrote it.
    pub rotcheck_version: String,
    /// The function checked (its directory, as given).
    pub function: String,
    /// `postgres` or `mysql`.
    pub engine: String,
    /// `single-user` or `alternating-users`.
    pub strategy: String,
    /// The run's seed: the same seed gives the same cases.
    pub seed: u64,
    /// `i/n` when the run was one shard of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Cases run (crash sweep and generated cases).
    pub cases: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// `pass` (every checked property held) or `fail`.
    pub verdict: String,
    /// Every property, checked or skipped.
    pub properties: Vec<PropertyResult>,
    /// Cases in which an operator command made the state unsafe (not the function's fault).
    pub operator_unsafe_cases: u64,
    /// What the cases exercised.
    pub coverage: CaseStats,
    /// The least-privilege IAM policy the function needed ([`least_privilege_policy`]).
    pub least_privilege_policy: serde_json::Value,
    /// The first failure, shrunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// One property's result.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyResult {
    /// `P1` ... `P8`, `contract`.
    pub id: String,
    /// What it means.
    pub title: String,
    /// `pass`, `fail`, or `skipped` (turned off with --only / --skip).
    pub status: String,
    /// Cases in which it held.
    pub passed_cases: u64,
    /// Cases in which it was violated.
    pub failed_cases: u64,
}

/// The first failure of a run, after shrinking.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The property violated first.
    pub property: String,
    /// Every property violated in the shrunk case.
    pub violated: Vec<String>,
    /// The case's index in the run and its seed.
    pub case: u64,
    #[allow(missing_docs)]
    pub case_seed: u64,
    /// Commands before and after shrinking.
    pub commands_before_shrinking: usize,
    #[allow(missing_docs)]
    pub commands: usize,
    /// What the violation says.
    pub message: String,
    /// The numbered story of the shrunk case.
    pub story: String,
    /// The scenario file written for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<String>,
}

impl RunReport {
    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }

    /// JUnit XML: a suite `rotcheck` with one test case per property; a violated property is a
    /// failure carrying the shrunk story, a skipped one is skipped.
    pub fn to_junit(&self) -> String {
        let failures = self.properties.iter().filter(|p| p.status == "fail").count();
        let skipped = self.properties.iter().filter(|p| p.status == "skipped").count();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(&format!(
            "<testsuites name=\"rotcheck\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">\n",
            self.properties.len(),
            self.seconds
        ));
        x.push_str(&format!(
            "  <testsuite name=\"rotcheck {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">\n",
            xml(&self.function),
            self.properties.len(),
            self.seconds
        ));
        x.push_str("    <properties>\n");
        for (k, v) in [("seed", self.seed.to_string()), ("engine", self.engine.clone()), ("strategy", self.strategy.clone()), ("cases", self.cases.to_string())] {
            x.push_str(&format!("      <property name=\"{k}\" value=\"{}\"/>\n", xml(&v)));
        }
        x.push_str("    </properties>\n");
        for p in &self.properties {
            x.push_str(&format!("    <testcase classname=\"rotcheck.properties\" name=\"{} {}\">\n", xml(&p.id), xml(&p.title)));
            match p.status.as_str() {
                "fail" => {
                    let (message, body) = match &self.failure {
                        Some(f) if f.violated.contains(&p.id) => (f.message.clone(), f.story.clone()),
                        _ => (format!("violated in {} case(s)", p.failed_cases), String::new()),
                    };
                    x.push_str(&format!("      <failure message=\"{}\" type=\"{}\">{}</failure>\n", xml(&message), xml(&p.id), xml(&body)));
                }
                "skipped" => x.push_str("      <skipped message=\"turned off for this run\"/>\n"),
                _ => {}
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }

    /// Markdown for a CI job summary: the verdict, a table of properties, the seed, and the
    /// shrunk story of a failure.
    pub fn to_markdown(&self) -> String {
        let icon = if self.verdict == "pass" { "passed" } else { "FAILED" };
        let mut m = format!("## rotcheck: {} {icon}\n\n", self.function);
        m.push_str(&format!(
            "{} cases, {} / {}, seed `{}`{}, {:.1} s\n\n",
            self.cases,
            self.engine,
            self.strategy,
            self.seed,
            self.shard.as_ref().map(|s| format!(", shard {s}")).unwrap_or_default(),
            self.seconds
        ));
        m.push_str("| property | | result | cases |\n|---|---|---|---|\n");
        for p in &self.properties {
            let cases = if p.status == "skipped" { "-".to_string() } else { format!("{} passed, {} failed", p.passed_cases, p.failed_cases) };
            m.push_str(&format!("| {} | {} | {} | {cases} |\n", p.id, p.title, p.status));
        }
        let c = &self.coverage;
        m.push_str(&format!(
            "\nRotations {} (completed {}, failed safely {}), kills {}, deliveries again {}, test-only rotations {}, client logins {}, operator commands {}.\n",
            c.rotations,
            c.completed,
            c.failed,
            c.kills.values().sum::<u32>(),
            c.deliveries,
            c.test_rotations,
            c.client_logins,
            c.operator
        ));
        m.push_str(&format!(
            "\nThe least privilege it needed (IAM policy; replace the placeholders with your secrets' ARNs):\n\n```json\n{}\n```\n",
            serde_json::to_string_pretty(&self.least_privilege_policy).unwrap_or_default()
        ));
        if let Some(f) = &self.failure {
            m.push_str(&format!(
                "\n### {} violated (case {}, shrunk from {} to {} commands)\n\n{}\n\n```text\n{}```\n",
                f.property,
                f.case,
                f.commands_before_shrinking,
                f.commands,
                f.message.replace('\n', " "),
                f.story
            ));
            if let Some(cx) = &f.counterexample {
                m.push_str(&format!("\nReplay it: `rotcheck replay {cx}`\n"));
            }
        }
        m
    }
}

/// The IAM policy a function needed, from what it called in a run: one statement per
/// resource, with the actions called on it. The resources are placeholders in CloudFormation
/// `!Sub` syntax (`${RotatedSecretArn}`, `${MasterSecretArn}`): a run's secrets are its own,
/// the deployed function's are not. Calls without a resource (GetRandomPassword) get `"*"`,
/// as IAM requires. A call on any other secret is listed under its id: the contract check has
/// already reported it, and the policy should not hide it.
pub fn least_privilege_policy(permissions: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) -> serde_json::Value {
    let mut by_resource: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (action, resources) in permissions {
        for r in resources {
            let arn = match r.as_str() {
                "rotated secret" => "${RotatedSecretArn}".to_string(),
                "master secret" => "${MasterSecretArn}".to_string(),
                other => other.to_string(),
            };
            by_resource.entry(arn).or_default().push(action.clone());
        }
    }
    // The rotated secret first, then the master secret, then the rest.
    let rank = |r: &str| match r {
        "${RotatedSecretArn}" => 0,
        "${MasterSecretArn}" => 1,
        "*" => 2,
        _ => 3,
    };
    let mut resources: Vec<_> = by_resource.into_iter().collect();
    resources.sort_by_key(|(r, _)| (rank(r), r.clone()));
    let statements: Vec<serde_json::Value> = resources
        .into_iter()
        .map(|(resource, mut actions)| {
            actions.sort();
            serde_json::json!({"Effect": "Allow", "Action": actions, "Resource": resource})
        })
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements})
}

/// The per-property results of a run from how many cases each property held in.
pub fn property_results(passed: &std::collections::BTreeMap<Property, u64>, cases: u64, enabled: &dyn Fn(Property) -> bool) -> Vec<PropertyResult> {
    Property::ALL
        .iter()
        .map(|&p| {
            let ok = passed.get(&p).copied().unwrap_or(0);
            let status = if !enabled(p) {
                "skipped"
            } else if ok == cases {
                "pass"
            } else {
                "fail"
            };
            PropertyResult { id: p.id().into(), title: p.title().into(), status: status.into(), passed_cases: ok, failed_cases: cases - ok }
        })
        .collect()
}

/// Text escaped for XML attributes and content; characters XML 1.0 cannot hold are dropped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(fail: bool) -> RunReport {
        let mut passed = std::collections::BTreeMap::new();
        for p in Property::ALL {
            passed.insert(p, if fail && p == Property::P2 { 9 } else { 10 });
        }
        RunReport {
            report_version: REPORT_VERSION,
            rotcheck_version: "0.1.0".into(),
            function: "fixtures/<x>".into(),
            engine: "postgres".into(),
            strategy: "single-user".into(),
            seed: 7,
            shard: None,
            cases: 10,
            seconds: 1.5,
            verdict: if fail { "fail" } else { "pass" }.into(),
            properties: property_results(&passed, 10, &|p| p != Property::P8),
            operator_unsafe_cases: 0,
            coverage: CaseStats::default(),
            least_privilege_policy: least_privilege_policy(&Default::default()),
            failure: fail.then(|| Failure {
                property: "P2".into(),
                violated: vec!["P2".into()],
                case: 3,
                case_seed: 99,
                commands_before_shrinking: 5,
                commands: 2,
                message: "createSecret of t1 \"failed\" & <left> it".into(),
                story: "1. rotate\n".into(),
                counterexample: Some("cx.yaml".into()),
            }),
        }
    }

    #[test]
    fn least_privilege_policy_groups_actions_by_resource() {
        let mut perms: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        for (a, r) in [
            ("secretsmanager:PutSecretValue", "rotated secret"),
            ("secretsmanager:GetSecretValue", "rotated secret"),
            ("secretsmanager:GetSecretValue", "master secret"),
            ("secretsmanager:GetRandomPassword", "*"),
        ] {
            perms.entry(a.into()).or_default().insert(r.into());
        }
        let p = least_privilege_policy(&perms);
        assert_eq!(
            p,
            serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], "Resource": "${RotatedSecretArn}"},
                {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "${MasterSecretArn}"},
                {"Effect": "Allow", "Action": ["secretsmanager:GetRandomPassword"], "Resource": "*"},
            ]})
        );
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = sample(true).to_junit();
        assert!(x.contains("tests=\"9\" failures=\"1\" skipped=\"1\""), "{x}");
        assert!(x.contains("&quot;failed&quot; &amp; &lt;left&gt;"), "{x}");
        assert!(x.contains("name=\"rotcheck fixtures/&lt;x&gt;\""), "{x}");
        assert!(sample(false).to_junit().contains("failures=\"0\""));
        assert_eq!(xml("a\u{1}b"), "ab");
    }

    #[test]
    fn markdown_has_the_table_and_the_story() {
        let m = sample(true).to_markdown();
        assert!(m.contains("| P2 | idempotence per token | fail | 9 passed, 1 failed |"), "{m}");
        assert!(m.contains("| P8 | ") && m.contains("| skipped | - |"), "{m}");
        assert!(m.contains("```text\n1. rotate\n```") && m.contains("rotcheck replay cx.yaml"), "{m}");
    }
}
