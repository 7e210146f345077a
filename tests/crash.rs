//! Crash points are events: the real Python fixture is killed as its n-th Secrets Manager
//! call arrives (the call is not applied), after its n-th call was applied (it never reads
//! the answer), or when its n-th database connection closes; each is an unknown outcome, the
//! state left behind is the one the event implies, and it is the same on every run.

mod common;

use common::world::{LAMBDA_ARN, SERVICE, World, fixture};
use rotcheck_harness::database::proxy::FaultProxy;
use rotcheck_harness::database::{Credentials, Endpoint, LoginOutcome};
use rotcheck_harness::function::crash::{CrashPoint, arm};
use rotcheck_harness::function::python;
use rotcheck_harness::function::runtime_api::{FunctionConfig, RuntimeApiFunction};
use rotcheck_harness::function::{Event, InvokeOptions, Invoker, KillSwitch, Outcome, Step};
use rotcheck_harness::model::Operation;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "AKIDFNCRASH";

struct Case {
    world: World,
    f: RuntimeApiFunction,
    proxy: Arc<FaultProxy>,
    arn: String,
    token: String,
}

/// A secret whose database traffic goes through a fault proxy, and a rotation started.
async fn case(seed: u64, user: &str) -> Case {
    let world = World::new(seed).await;
    let upstream = format!("{}:{}", world.db.endpoint.host, world.db.endpoint.port).parse().unwrap();
    let proxy = Arc::new(FaultProxy::start(upstream).await.unwrap());
    let at = Endpoint { host: "127.0.0.1".into(), port: proxy.addr().port() };
    let (arn, _) = world.secret_at("app/crash", user, "initial-password-1", &at).await;
    let launch = python::prepare(&fixture("python/postgres-single-user"), "lambda_function.lambda_handler").unwrap();
    let config = FunctionConfig {
        name: "crash".into(),
        handler: "lambda_function.lambda_handler".into(),
        memory_mb: 128,
        timeout: Duration::from_secs(30),
        env: vec![],
        aws: world.aws(KEY),
        slot_keys: vec![KEY.into()],
    };
    let f = RuntimeApiFunction::new(launch, config, world.redactor.clone()).await.unwrap();
    let token = uuid::Uuid::new_v4().to_string();
    world
        .emulator
        .call(SERVICE, Operation::RotateSecret, &json!({"SecretId": arn, "ClientRequestToken": token, "RotationLambdaARN": LAMBDA_ARN}))
        .unwrap();
    Case { world, f, proxy, arn, token }
}

impl Case {
    fn event(&self, step: Step) -> Event {
        Event { step, secret_id: self.arn.clone(), token: self.token.clone(), rotation_token: None }
    }

    /// Runs a step with a crash point armed for it.
    async fn step_with(&self, step: Step, point: CrashPoint) -> Outcome {
        let kill = KillSwitch::new();
        let armed = arm(point, kill.clone(), &self.world.emulator, KEY, Some(self.proxy.clone()));
        let options = InvokeOptions { kill: Some(kill), gate: Some(armed.gate.clone()), ..Default::default() };
        let inv = self.f.invoke(&self.event(step), options).await;
        armed.disarm();
        inv.outcome
    }

    async fn step(&self, step: Step) -> Outcome {
        self.f.invoke(&self.event(step), InvokeOptions::default()).await.outcome
    }

    fn pending_value(&self) -> Option<String> {
        let m = self.world.emulator.model().lock().unwrap();
        let v = m.secret(&self.arn).unwrap().version(&self.token).unwrap().value.clone();
        v.and_then(|v| v.as_str().map(str::to_string))
    }

    fn pending_password(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.pending_value().unwrap()).unwrap();
        v["password"].as_str().unwrap().to_string()
    }
}

/// createSecret's calls: DescribeSecret, GetSecretValue (current), GetSecretValue (pending),
/// GetRandomPassword, PutSecretValue: the fifth is the put.
#[tokio::test(flavor = "multi_thread")]
async fn killed_as_the_put_arrives_leaves_the_placeholder_empty() {
    let c = case(21, "crash_user_a").await;
    let out = c.step_with(Step::CreateSecret, CrashPoint::ApiCallArrives { nth: 5 }).await;
    assert!(matches!(&out, Outcome::Killed { reason } if reason.contains("#5 arrived")), "{out:?}");
    assert!(c.pending_value().is_none(), "the swallowed put was not applied");
    let calls = c.world.emulator.log().calls(KEY);
    assert_eq!(calls.last().unwrap().op, Some(Operation::PutSecretValue));
    // The service's retry finds no value and creates one.
    assert!(c.step(Step::CreateSecret).await.is_success());
    assert!(c.pending_value().is_some());
    c.f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_put_was_applied_keeps_the_value_on_retry() {
    let c = case(22, "crash_user_b").await;
    let out = c.step_with(Step::CreateSecret, CrashPoint::ApiCallAnswered { nth: 5 }).await;
    assert!(matches!(&out, Outcome::Killed { reason } if reason.contains("#5 was applied")), "{out:?}");
    let stored = c.pending_value().expect("the put was applied before the kill");
    // A retry must find the stored value and keep it (idempotence per token).
    assert!(c.step(Step::CreateSecret).await.is_success());
    assert_eq!(c.pending_value().unwrap(), stored);
    c.f.shutdown().await;
}

/// setSecret's connections: the pending login (refused), then the current login that
/// changes the password; crash when that second connection closes, after the change.
#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_password_change_is_the_same_every_time() {
    for round in 0..3 {
        let c = case(30 + round, &format!("crash_user_c{round}")).await;
        assert!(c.step(Step::CreateSecret).await.is_success());
        let pending = c.pending_password();
        let out = c.step_with(Step::SetSecret, CrashPoint::DbConnectionClosed { nth: 2 }).await;
        assert!(matches!(&out, Outcome::Killed { reason } if reason.contains("connection #2 closed")), "round {round}: {out:?}");
        let user = format!("crash_user_c{round}");
        let db = &c.world.db;
        let with_pending = Credentials { user: user.clone(), password: pending.clone() };
        let with_initial = Credentials { user: user.clone(), password: "initial-password-1".into() };
        assert_eq!(db.login(&db.endpoint, &with_pending).await, LoginOutcome::Authenticated, "the change happened before the crash");
        assert_eq!(db.login(&db.endpoint, &with_initial).await, LoginOutcome::AuthenticationFailed);
        // The retried setSecret sees the pending password already works (F02 handled).
        assert!(c.step(Step::SetSecret).await.is_success());
        c.f.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_result_ran_the_step() {
    let c = case(23, "crash_user_d").await;
    let inv = c.f.invoke(&c.event(Step::CreateSecret), InvokeOptions { drop_result: true, ..Default::default() }).await;
    assert!(matches!(inv.outcome, Outcome::ResultDropped { .. }), "{:?}", inv.outcome);
    assert!(c.pending_value().is_some(), "the step ran");
    c.f.shutdown().await;
}

/// The race behind a connection crash point: the function closes its n-th connection and at
/// once calls Secrets Manager. Whichever the harness notices first, the call is held until
/// the proxy has seen the close, and then vanishes: the trace never depends on scheduling.
/// Here the "function" is this test itself (nothing to kill), so the call always arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_racing_a_connection_crash_point_never_reaches_the_trace() {
    let world = World::new(24).await;
    let upstream = format!("{}:{}", world.db.endpoint.host, world.db.endpoint.port).parse().unwrap();
    let proxy = Arc::new(FaultProxy::start(upstream).await.unwrap());
    let (arn, _) = world.secret_for("app/race", "crash_user_race", "initial-password-1").await;
    let sdk = common::client(&world.endpoint.endpoint(), KEY);
    for round in 0..20 {
        let kill = KillSwitch::new();
        let armed = arm(CrashPoint::DbConnectionClosed { nth: 1 }, kill.clone(), &world.emulator, KEY, Some(proxy.clone()));
        let _ = world.emulator.log().take(KEY);
        let conn = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
        drop(conn);
        let answer = sdk.describe_secret().secret_id(&arn).send().await;
        assert!(answer.is_err(), "round {round}: the caller was dead at its crash point, yet was answered");
        assert!(kill.fired().is_some(), "round {round}");
        assert!(world.emulator.log().take(KEY).is_empty(), "round {round}: a call after the crash point was recorded");
        armed.disarm();
        proxy.wait_until_idle(Duration::from_secs(5)).await;
    }
    // Disarmed, the same call is answered and recorded.
    assert!(sdk.describe_secret().secret_id(&arn).send().await.is_ok());
    assert_eq!(world.emulator.log().take(KEY).len(), 1);
}
