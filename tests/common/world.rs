//! A small world for end-to-end tests: the emulator, a local PostgreSQL, and what Secrets
//! Manager does around a rotation.

use super::{client, root};
use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::database::{Credentials, Endpoint, Engine, LoginOutcome, Provider, Server};
use rotcheck_harness::emulator::{self, Emulator};
use rotcheck_harness::function::{AwsEnvironment, Event, InvokeOptions, Invoker, Step};
use rotcheck_harness::model::{Model, Operation};
use rotcheck_harness::redact::Redactor;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

pub const LAMBDA_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rotate";
pub const SERVICE: &str = "rotcheck-service";

/// The emulator, a PostgreSQL server, and one secret for one role.
pub struct World {
    pub emulator: Arc<Emulator>,
    pub endpoint: emulator::Server,
    pub db: Server,
    pub redactor: Arc<Redactor>,
}

impl World {
    pub async fn new(seed: u64) -> World {
        let redactor = Redactor::new();
        let emulator = Emulator::new(Model::seeded(seed), redactor.clone());
        let endpoint = emulator.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let db = LocalProvider::default().start(Engine::Postgres).await.expect("a local PostgreSQL");
        World { emulator, endpoint, db, redactor }
    }

    pub fn aws(&self, key: &str) -> AwsEnvironment {
        AwsEnvironment {
            endpoint: self.endpoint.endpoint(),
            region: "us-east-1".into(),
            access_key_id: key.into(),
            secret_access_key: "not-checked".into(),
        }
    }

    /// A role with an awkward name and password, and its secret; returns (ARN, first version).
    pub async fn secret_for(&self, secret_name: &str, user: &str, password: &str) -> (String, String) {
        let at = self.db.endpoint.clone();
        self.secret_at(secret_name, user, password, &at).await
    }

    /// As [`World::secret_for`], with the database at `at` as the function sees it.
    pub async fn secret_at(&self, secret_name: &str, user: &str, password: &str, at: &Endpoint) -> (String, String) {
        self.db.create_role(user, password).await.unwrap();
        let value = json!({
            "engine": "postgres", "host": at.host, "port": at.port,
            "username": user, "password": password, "dbname": self.db.database,
        });
        let out = self
            .emulator
            .call(SERVICE, Operation::CreateSecret, &json!({"Name": secret_name, "SecretString": value.to_string()}))
            .unwrap();
        (out.body["ARN"].as_str().unwrap().to_string(), out.body["VersionId"].as_str().unwrap().to_string())
    }

    /// What Secrets Manager does: RotateSecret (placeholder), the four steps, the bookkeeping.
    pub async fn rotate(&self, invoker: &dyn Invoker, arn: &str, token: &str) {
        self.emulator
            .call(SERVICE, Operation::RotateSecret, &json!({"SecretId": arn, "ClientRequestToken": token, "RotationLambdaARN": LAMBDA_ARN}))
            .unwrap();
        for step in Step::ALL {
            let event = Event { step, secret_id: arn.into(), token: token.into(), rotation_token: Some(uuid::Uuid::new_v4().to_string()) };
            let inv = invoker.invoke(&event, InvokeOptions::default()).await;
            assert!(inv.outcome.is_success(), "{} {}: {:?}\n{}", invoker.kind(), step.name(), inv.outcome, inv.logs);
            assert!(inv.leaked.is_empty(), "the function printed secret values: {:?}", inv.leaked);
        }
        assert!(self.emulator.model().lock().unwrap().complete_rotation(arn, token).unwrap(), "finishSecret moved AWSCURRENT");
    }

    /// The end state, through the SDK and login probes.
    pub async fn check(&self, arn: &str, token: &str, old_version: &str, user: &str, old_password: &str) {
        let sm = client(&self.endpoint.endpoint(), "AKIDCHECKER");
        let d = sm.describe_secret().secret_id(arn).send().await.unwrap();
        let stages = d.version_ids_to_stages().unwrap();
        assert_eq!(stages[token], vec!["AWSCURRENT"], "{stages:?}");
        assert_eq!(stages[old_version], vec!["AWSPREVIOUS"], "{stages:?}");
        let current = sm.get_secret_value().secret_id(arn).send().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
        assert_eq!(v["username"], user, "the username is kept");
        let new_password = v["password"].as_str().unwrap();
        assert_ne!(new_password, old_password);
        let at = &self.db.endpoint;
        assert_eq!(self.db.login(at, &Credentials { user: user.into(), password: new_password.into() }).await, LoginOutcome::Authenticated);
        assert_eq!(
            self.db.login(at, &Credentials { user: user.into(), password: old_password.into() }).await,
            LoginOutcome::AuthenticationFailed
        );
    }
}

/// A fixture's directory.
pub fn fixture(path: &str) -> PathBuf {
    root().join("fixtures").join(path)
}
