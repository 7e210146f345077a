//! One complete rotation the way Secrets Manager does it (RotateSecret's placeholder, then the
//! four steps with the same token), for each invoker, with a real fixture function against the
//! emulator and a real PostgreSQL. The end state is checked through aws-sdk-secretsmanager
//! (AWSCURRENT on the new version, AWSPREVIOUS on the old one) and with login probes (the new
//! password logs in, the old one does not).

mod common;

use common::client;
use common::world::{World, fixture};
use rotcheck_harness::function::command::CommandFunction;
use rotcheck_harness::function::http::HttpFunction;
use rotcheck_harness::function::process::LaunchSpec;
use rotcheck_harness::function::python as pyenv;
use rotcheck_harness::function::runtime_api::{FunctionConfig, RuntimeApiFunction};
use rotcheck_harness::function::Invoker;
use std::time::Duration;

fn function_config(world: &World, name: &str, key: &str) -> FunctionConfig {
    FunctionConfig {
        name: name.into(),
        handler: "lambda_function.lambda_handler".into(),
        memory_mb: 128,
        timeout: Duration::from_secs(30),
        env: vec![],
        aws: world.aws(key),
        slot_keys: vec![key.into()],
    }
}

/// Runs the rotation twice (the second rotation is where many functions break) and checks.
async fn two_rotations(world: &World, invoker: &dyn Invoker, secret: &str, user: &str) {
    let first_password = "first:pass'word \\1";
    let (arn, v1) = world.secret_for(secret, user, first_password).await;
    let t1 = uuid::Uuid::new_v4().to_string();
    world.rotate(invoker, &arn, &t1).await;
    world.check(&arn, &t1, &v1, user, first_password).await;
    let second_password = {
        let sm = client(&world.endpoint.endpoint(), "AKIDCHECKER");
        let s = sm.get_secret_value().secret_id(&arn).send().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(s.secret_string().unwrap()).unwrap();
        v["password"].as_str().unwrap().to_string()
    };
    let t2 = uuid::Uuid::new_v4().to_string().to_uppercase();
    world.rotate(invoker, &arn, &t2).await;
    world.check(&arn, &t2, &t1, user, &second_password).await;
    // The function's calls are in its own log, never anyone else's.
    let callers = world.emulator.log().callers();
    assert!(callers.iter().any(|c| c.starts_with("AKIDFN")), "{callers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_api_with_the_python_fixture() {
    let world = World::new(1).await;
    let launch = pyenv::prepare(&fixture("python/postgres-single-user"), "lambda_function.lambda_handler").unwrap();
    let f = RuntimeApiFunction::new(launch, function_config(&world, "pg-single", "AKIDFNPY"), world.redactor.clone()).await.unwrap();
    two_rotations(&world, &f, "app/python", "App\"User one").await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_api_with_the_rust_fixture() {
    let world = World::new(2).await;
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("postgres-single-user");
    assert!(binary.exists(), "build it first: cargo build --workspace --bins ({} is missing)", binary.display());
    let launch = LaunchSpec { program: binary, args: vec![], cwd: fixture("rust/postgres-single-user"), env: vec![] };
    let f = RuntimeApiFunction::new(launch, function_config(&world, "pg-single-rust", "AKIDFNRUST"), world.redactor.clone()).await.unwrap();
    two_rotations(&world, &f, "app/rust", "Rust\"User two").await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_with_the_wrapped_python_fixture() {
    use std::io::BufRead;
    let world = World::new(3).await;
    let dir = fixture("python/postgres-single-user");
    let requirements = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
    let venv = pyenv::ensure_venv(&requirements).unwrap();
    let mut server = std::process::Command::new(venv.join("bin/python"))
        .arg(fixture("python/http_wrapper.py"))
        .arg(&dir)
        .args(["--port", "0"])
        .envs(world.aws("AKIDFNHTTP").vars())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the wrapper reports LISTENING").unwrap();
        if let Some(u) = line.strip_prefix("LISTENING ") {
            break u.trim().to_string();
        }
    };
    let f = HttpFunction::new(&url, Duration::from_secs(30), world.redactor.clone()).unwrap();
    two_rotations(&world, &f, "app/http", "Http\"User three").await;
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn command_with_the_python_fixture() {
    let world = World::new(4).await;
    let dir = fixture("python/postgres-single-user");
    let requirements = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
    let venv = pyenv::ensure_venv(&requirements).unwrap();
    let launch = LaunchSpec {
        program: venv.join("bin/python"),
        args: vec![
            "-c".into(),
            "import json, sys; sys.path.insert(0, '.'); from lambda_function import lambda_handler; lambda_handler(json.load(sys.stdin), None)".into(),
        ],
        cwd: dir,
        env: vec![],
    };
    let f = CommandFunction::new(launch, &world.aws("AKIDFNCMD"), Duration::from_secs(30), world.redactor.clone());
    two_rotations(&world, &f, "app/command", "Cmd\"User four").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn image_with_the_python_fixture_in_a_container() {
    use rotcheck_harness::database::Endpoint;
    use rotcheck_harness::database::proxy::FaultProxy;
    use rotcheck_harness::function::image::{ImageLauncher, bridge_gateway};
    let world = World::new(5).await;
    let bridge = bridge_gateway().await.expect("a Docker bridge (the image tests need Docker)");
    // The container reaches the emulator and the database through the bridge address.
    let emulator_on_bridge = world.emulator.serve((bridge, 0).into()).await.unwrap();
    let upstream = format!("{}:{}", world.db.endpoint.host, world.db.endpoint.port).parse().unwrap();
    let proxy = FaultProxy::start_on((bridge, 0).into(), upstream).await.unwrap();
    let db_from_container = Endpoint { host: bridge.to_string(), port: proxy.addr().port() };
    let image = std::env::var("ROTCHECK_TEST_FUNCTION_IMAGE").unwrap_or_else(|_| "rotcheck/fixture-python-postgres-single-user:test".into());
    let launcher = ImageLauncher::new(&image, "lambda_function.lambda_handler", bridge);
    let mut config = function_config(&world, "pg-single-image", "AKIDFNIMAGE");
    config.aws.endpoint = emulator_on_bridge.endpoint();
    let f = RuntimeApiFunction::with_launcher(Box::new(launcher), config, world.redactor.clone()).await.unwrap();
    let password = "image:pass'word \\5";
    let user = "Image\"User five";
    let (arn, v1) = world.secret_at("app/image", user, password, &db_from_container).await;
    let token = uuid::Uuid::new_v4().to_string();
    world.rotate(&f, &arn, &token).await;
    world.check(&arn, &token, &v1, user, password).await;
    assert!(proxy.total_connections() >= 3, "the function used the database through the bridge");
    f.shutdown().await;
}
