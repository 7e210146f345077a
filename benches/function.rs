//! How long a rotation function's invocations take through rotcheck's hosted Runtime API:
//! cold (a process is started: Python, boto3 and the driver are imported) against warm (the
//! process is reused, as Lambda does), for the Python PostgreSQL fixture, and each step of a
//! warm rotation. Prints figures; asserts nothing.
//!
//!     cargo bench --bench function

use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::database::{Engine, Provider};
use rotcheck_harness::emulator::Emulator;
use rotcheck_harness::function::python;
use rotcheck_harness::function::runtime_api::{FunctionConfig, RuntimeApiFunction};
use rotcheck_harness::function::{AwsEnvironment, Event, InvokeOptions, Invoker, Step};
use rotcheck_harness::model::{Model, Operation};
use rotcheck_harness::redact::Redactor;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const ROUNDS: usize = 15;

fn median(mut v: Vec<Duration>) -> String {
    v.sort();
    format!("{:.1} ms", v[v.len() / 2].as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let redactor = Redactor::new();
    let emulator = Emulator::new(Model::seeded(1), redactor.clone());
    let endpoint = emulator.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let db = LocalProvider::default().start(Engine::Postgres).await.expect("local PostgreSQL");
    db.create_role("bench_user", "initial-password-1").await.unwrap();
    let secret = json!({"engine": "postgres", "host": db.endpoint.host, "port": db.endpoint.port,
        "username": "bench_user", "password": "initial-password-1", "dbname": db.database});
    let arn = emulator
        .call("service", Operation::CreateSecret, &json!({"Name": "bench", "SecretString": secret.to_string()}))
        .unwrap()
        .body["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/python/postgres-single-user");
    let launch = python::prepare(&dir, "lambda_function.lambda_handler").expect("venv");
    let config = FunctionConfig {
        name: "bench".into(),
        handler: "lambda_function.lambda_handler".into(),
        memory_mb: 128,
        timeout: Duration::from_secs(30),
        env: vec![],
        aws: AwsEnvironment { endpoint: endpoint.endpoint(), region: "us-east-1".into(), access_key_id: "AKIDBENCH".into(), secret_access_key: "x".into() },
        slot_keys: vec!["AKIDBENCH".into()],
    };
    let f = RuntimeApiFunction::new(launch, config, redactor).await.unwrap();
    let mut steps: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let token = uuid::Uuid::new_v4().to_string();
        emulator
            .call("service", Operation::RotateSecret, &json!({"SecretId": arn, "ClientRequestToken": token, "RotationLambdaARN": "arn:aws:lambda:us-east-1:123456789012:function:f"}))
            .unwrap();
        for step in Step::ALL {
            let e = Event { step, secret_id: arn.clone(), token: token.clone(), rotation_token: None };
            let inv = f.invoke(&e, InvokeOptions::default()).await;
            assert!(inv.outcome.is_success(), "{:?}\n{}", inv.outcome, inv.logs);
            if round > 0 {
                steps.entry(step.name()).or_default().push(inv.duration);
            }
        }
        emulator.model().lock().unwrap().complete_rotation(&arn, &token).unwrap();
        // The same no-op finishSecret (the token is current), cold and then warm.
        let again = Event { step: Step::FinishSecret, secret_id: arn.clone(), token: token.clone(), rotation_token: None };
        f.shutdown().await;
        let c = f.invoke(&again, InvokeOptions::default()).await;
        assert!(c.cold && c.outcome.is_success());
        cold.push(c.duration);
        let w = f.invoke(&again, InvokeOptions::default()).await;
        assert!(!w.cold && w.outcome.is_success());
        warm.push(w.duration);
    }
    println!("Python PostgreSQL fixture through the hosted Runtime API ({ROUNDS} rounds, medians):");
    println!("  finishSecret (no-op), cold: {}   warm: {}", median(cold), median(warm));
    for (step, d) in steps {
        println!("  {step:<13} warm: {}", median(d));
    }
    f.shutdown().await;
}
