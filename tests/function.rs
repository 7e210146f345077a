//! The function piece with misbehaving functions, through the real runtime clients: the
//! Python `awslambdaric` against rotcheck's hosted Runtime API, a hand-written Runtime API
//! client that answers non-JSON, and the `command` invoker. Every outcome is the right one,
//! rotcheck neither hangs nor grows, and no child process survives a kill.

use rotcheck_harness::function::command::CommandFunction;
use rotcheck_harness::function::process::{LaunchSpec, ProcessGroup};
use rotcheck_harness::function::python;
use rotcheck_harness::function::runtime_api::{FunctionConfig, RuntimeApiFunction};
use rotcheck_harness::function::{AwsEnvironment, Event, InvokeOptions, Invoker, KillSwitch, Outcome, Step};
use rotcheck_harness::model::SecretValue;
use rotcheck_harness::redact::Redactor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A handler module under a fresh directory.
fn function_dir(name: &str, code: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rotcheck-fn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lambda_function.py"), code).unwrap();
    std::fs::write(dir.join("requirements.txt"), "").unwrap();
    dir
}

fn aws(key: &str) -> AwsEnvironment {
    AwsEnvironment {
        endpoint: "http://127.0.0.1:9".into(),
        region: "us-east-1".into(),
        access_key_id: key.into(),
        secret_access_key: "test-secret".into(),
    }
}

fn config(name: &str, keys: &[&str], timeout: Duration) -> FunctionConfig {
    FunctionConfig {
        name: name.into(),
        handler: "lambda_function.lambda_handler".into(),
        memory_mb: 128,
        timeout,
        env: vec![("EXCLUDE_CHARACTERS".into(), ":/@".into())],
        aws: aws(keys[0]),
        slot_keys: keys.iter().map(|k| k.to_string()).collect(),
    }
}

async fn python_function(name: &str, code: &str, keys: &[&str], timeout: Duration, redactor: Arc<Redactor>) -> RuntimeApiFunction {
    let dir = function_dir(name, code);
    let launch = python::prepare(&dir, "lambda_function.lambda_handler").expect("the venv is prepared");
    RuntimeApiFunction::new(launch, config(name, keys, timeout), redactor).await.unwrap()
}

fn event(step: Step) -> Event {
    Event {
        step,
        secret_id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf".into(),
        token: "11111111-1111-1111-1111-111111111111".into(),
        rotation_token: Some("22222222-2222-2222-2222-222222222222".into()),
    }
}

fn no_survivors(group: ProcessGroup) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group.members().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(group.members().is_empty(), "processes of group {} survived: {:?}", group.0, group.members());
}

const WELL_BEHAVED: &str = r#"
import os
count = 0
def lambda_handler(event, context):
    global count
    count += 1
    print("step", event["Step"], "invocation", count)
    return {"count": count, "key": os.environ["AWS_ACCESS_KEY_ID"], "step": event["Step"],
            "exclude": os.environ.get("EXCLUDE_CHARACTERS"), "endpoint": os.environ.get("SECRETS_MANAGER_ENDPOINT"),
            "remaining_ms": context.get_remaining_time_in_millis()}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn warm_processes_keep_state_and_slots_have_their_own_keys() {
    let f = python_function("warm", WELL_BEHAVED, &["AKIDSLOTA", "AKIDSLOTB"], Duration::from_secs(30), Redactor::new()).await;
    let first = f.invoke_in(0, &event(Step::CreateSecret), InvokeOptions::default()).await;
    assert!(first.cold);
    let Outcome::Success { payload } = &first.outcome else { panic!("{first:?}") };
    assert_eq!(payload["count"], 1);
    assert_eq!(payload["key"], "AKIDSLOTA");
    assert_eq!(payload["step"], "createSecret");
    assert_eq!(payload["exclude"], ":/@");
    assert_eq!(payload["endpoint"], "http://127.0.0.1:9");
    let remaining = payload["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 25_000 && remaining <= 30_000, "deadline header: {remaining}");
    assert!(first.logs.contains("step createSecret invocation 1"), "{}", first.logs);
    let second = f.invoke_in(0, &event(Step::SetSecret), InvokeOptions::default()).await;
    assert!(!second.cold, "the process stays warm");
    let Outcome::Success { payload } = &second.outcome else { panic!("{second:?}") };
    assert_eq!(payload["count"], 2, "module state persists between warm invocations");
    assert!(second.logs.contains("invocation 2") && !second.logs.contains("invocation 1"), "{}", second.logs);
    // Two slots at once: concurrent deliveries of the same step run in two processes.
    let test = event(Step::TestSecret);
    let (a, b) = tokio::join!(
        f.invoke_in(0, &test, InvokeOptions::default()),
        f.invoke_in(1, &test, InvokeOptions::default())
    );
    let key = |i: &rotcheck_harness::function::Invocation| match &i.outcome {
        Outcome::Success { payload } => payload["key"].as_str().unwrap().to_string(),
        o => panic!("{o:?}"),
    };
    assert_eq!((key(&a), key(&b)), ("AKIDSLOTA".to_string(), "AKIDSLOTB".to_string()));
    assert!(b.cold && !a.cold);
    // Warm invocations are much cheaper than cold ones.
    assert!(second.duration < first.duration, "warm {:?} vs cold {:?}", second.duration, first.duration);
    f.shutdown().await;
}

/// A process keeps the environment it started with: a new one gets a process of its own, and
/// a return to an earlier one finds that environment's process still warm (parked); beyond
/// the parking limit the least used environments' processes stop.
#[tokio::test(flavor = "multi_thread")]
async fn another_environment_gets_its_own_process_and_earlier_ones_stay_parked() {
    use rotcheck_harness::function::runtime_api::PARKED_FIRST_SLOT;
    let f = python_function("parked", WELL_BEHAVED, &["AKIDPARK"], Duration::from_secs(30), Redactor::new()).await;
    let exclude = |v: &str| vec![("EXCLUDE_CHARACTERS".to_string(), v.to_string())];
    let run = |inv: rotcheck_harness::function::Invocation| match inv.outcome {
        Outcome::Success { payload } => (inv.cold, payload["exclude"].as_str().unwrap().to_string(), payload["count"].as_i64().unwrap()),
        o => panic!("{o:?}"),
    };
    f.set_env(exclude("a"));
    assert_eq!(run(f.invoke_in(0, &event(Step::CreateSecret), InvokeOptions::default()).await), (true, "a".into(), 1));
    assert_eq!(run(f.invoke_in(0, &event(Step::SetSecret), InvokeOptions::default()).await), (false, "a".into(), 2));
    let group_a = f.process_group(0).await.expect("warm");
    f.set_env(exclude("b"));
    assert_eq!(run(f.invoke_in(0, &event(Step::CreateSecret), InvokeOptions::default()).await), (true, "b".into(), 1));
    let group_b = f.process_group(0).await.expect("warm");
    f.set_env(exclude("a"));
    assert_eq!(run(f.invoke_in(0, &event(Step::TestSecret), InvokeOptions::default()).await), (false, "a".into(), 3), "a's process was parked");
    assert_eq!(f.process_group(0).await, Some(group_a));
    // More environments than can be parked: the least used process stops (of equals, the one
    // parked longest), and the busy one stays.
    for i in 0..=PARKED_FIRST_SLOT {
        f.set_env(exclude(&format!("other{i}")));
        assert!(run(f.invoke_in(0, &event(Step::CreateSecret), InvokeOptions::default()).await).0);
    }
    no_survivors(group_b);
    assert!(!group_a.members().is_empty(), "the most used environment stays parked");
    let parked = f.process_group(0).await.expect("warm");
    f.set_env(exclude("a"));
    assert_eq!(run(f.invoke_in(0, &event(Step::CreateSecret), InvokeOptions::default()).await), (false, "a".into(), 4));
    // Shutdown stops the parked processes too.
    let group = f.process_group(0).await.expect("warm");
    assert!(!parked.members().is_empty(), "the last environment's process is parked, not stopped");
    f.shutdown().await;
    no_survivors(group);
    no_survivors(parked);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exception_is_a_function_error() {
    let code = "def lambda_handler(event, context):\n    raise ValueError('Secret version x not set as AWSPENDING')\n";
    let f = python_function("raise", code, &["AKIDRAISE"], Duration::from_secs(30), Redactor::new()).await;
    let inv = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    assert_eq!(
        inv.outcome,
        Outcome::FunctionError { error_type: "ValueError".into(), message: "Secret version x not set as AWSPENDING".into() }
    );
    // The process survives an exception and stays warm.
    let again = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    assert!(!again.cold);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hang_times_out_and_no_child_survives() {
    let code = r#"
import subprocess, os, time
def lambda_handler(event, context):
    if event["Step"] == "createSecret":
        return "warm"
    subprocess.Popen(["sleep", "300"])
    if os.fork() == 0:
        time.sleep(300)
    time.sleep(300)
"#;
    let f = python_function("hang", code, &["AKIDHANG"], Duration::from_secs(2), Redactor::new()).await;
    assert!(f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await.outcome.is_success());
    let group = f.process_group(0).await.expect("warm");
    let t = Instant::now();
    let inv = f.invoke(&event(Step::SetSecret), InvokeOptions::default()).await;
    assert_eq!(inv.outcome, Outcome::TimedOut);
    assert!(inv.outcome.is_unknown());
    assert!(t.elapsed() < Duration::from_secs(10), "rotcheck does not hang: {:?}", t.elapsed());
    no_survivors(group);
    let replacement = f.process_group(0).await.expect("a replacement was started ahead");
    assert_ne!(replacement, group, "the killed process is gone");
    let next = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    assert!(next.cold, "the next invocation is the replacement's first");
    assert_eq!(f.process_group(0).await, Some(replacement), "it ran in the process started ahead");
    assert!(next.outcome.is_success());
    f.shutdown().await;
}

/// A kill switch that fires after `after`.
fn kill_after(after: Duration) -> KillSwitch {
    let kill = KillSwitch::new();
    let k = kill.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        k.fire("killed by the test");
    });
    kill
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_kill_the_next_invocation_finds_a_process_initialized_ahead() {
    let code = r#"
import os, time
INITIALIZED = time.time()
def lambda_handler(event, context):
    if event["Step"] == "setSecret":
        time.sleep(60)
    return {"pid": os.getpid(), "initialized": INITIALIZED}
"#;
    let f = python_function("spare", code, &["AKIDSPARE"], Duration::from_secs(30), Redactor::new()).await;
    let answer = |inv: &rotcheck_harness::function::Invocation| match &inv.outcome {
        Outcome::Success { payload } => (payload["pid"].as_i64().expect("a pid"), payload["initialized"].as_f64().expect("a time")),
        o => panic!("{o:?}"),
    };
    let killed = |o: &Outcome| matches!(o, Outcome::Killed { .. });
    let first = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    let (pid1, _) = answer(&first);
    // The first kill of an environment: its replacement starts at once, and a spare with it.
    let inv = f.invoke(&event(Step::SetSecret), InvokeOptions { kill: Some(kill_after(Duration::from_millis(300))), ..Default::default() }).await;
    assert!(killed(&inv.outcome), "{inv:?}");
    let second = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    assert!(second.cold, "a new process's first invocation is cold");
    let (pid2, _) = answer(&second);
    assert_ne!(pid1, pid2);
    // Give the spare time to initialize, then kill again: the retry runs in the spare, which
    // initialized before the kill.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inv = f.invoke(&event(Step::SetSecret), InvokeOptions { kill: Some(kill_after(Duration::from_millis(300))), ..Default::default() }).await;
    assert!(killed(&inv.outcome), "{inv:?}");
    let killed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let third = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    assert!(third.cold, "the spare's first invocation is cold too");
    let (pid3, initialized) = answer(&third);
    assert!(pid3 != pid1 && pid3 != pid2, "a process of its own");
    assert!(initialized < killed_at, "it initialized {:.2} s before the kill", killed_at - initialized);
    let group = f.process_group(0).await.expect("running");
    f.shutdown().await;
    no_survivors(group);
    for pid in [pid1, pid2, pid3] {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "process {pid} is gone after shutdown");
    }
    // The spare started after the second kill, too: nothing runs in the function's directory.
    let dir = std::fs::canonicalize(std::env::temp_dir().join(format!("rotcheck-fn-test-{}-spare", std::process::id()))).unwrap();
    let running_there: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(running_there.is_empty(), "processes left in {}: {running_there:?}", dir.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn forked_children_die_with_the_function() {
    let code = r#"
import subprocess, os, time
def lambda_handler(event, context):
    subprocess.Popen(["sleep", "300"])
    if os.fork() == 0:
        time.sleep(300)
        os._exit(0)
    return {"parent": os.getpid()}
"#;
    let f = python_function("fork", code, &["AKIDFORK"], Duration::from_secs(30), Redactor::new()).await;
    let inv = f.invoke(&event(Step::SetSecret), InvokeOptions::default()).await;
    assert!(inv.outcome.is_success(), "{inv:?}");
    let group = f.process_group(0).await.expect("warm");
    assert!(group.members().len() >= 3, "function, sleep and the fork: {:?}", group.members());
    f.shutdown().await;
    no_survivors(group);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_point_kills_the_running_step() {
    let code = "import time\ndef lambda_handler(event, context):\n    print('before', flush=True)\n    time.sleep(60)\n";
    let f = python_function("killed", code, &["AKIDKILL"], Duration::from_secs(30), Redactor::new()).await;
    let kill = KillSwitch::new();
    let k = kill.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        k.fire("the 2nd Secrets Manager call arrived");
    });
    let t = Instant::now();
    let inv = f.invoke(&event(Step::SetSecret), InvokeOptions { kill: Some(kill), ..Default::default() }).await;
    assert_eq!(inv.outcome, Outcome::Killed { reason: "the 2nd Secrets Manager call arrived".into() });
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(inv.logs.contains("before"), "{}", inv.logs);
    let replacement = f.process_group(0).await.expect("a replacement was started ahead");
    f.shutdown().await;
    no_survivors(replacement);
}

#[tokio::test(flavor = "multi_thread")]
async fn exiting_during_init_is_a_crash_with_the_reason() {
    let code = "import sys\nraise ImportError('no module named pg')\n";
    let f = python_function("init", code, &["AKIDINIT"], Duration::from_secs(30), Redactor::new()).await;
    let inv = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    // awslambdaric reports an import failure as the invocation's error or as an init error.
    match &inv.outcome {
        Outcome::Crashed { detail } => assert!(detail.contains("no module named pg"), "{detail}"),
        Outcome::FunctionError { error_type, message } => {
            assert!(error_type.contains("Runtime.ImportModuleError") || message.contains("no module named pg"), "{inv:?}")
        }
        o => panic!("{o:?}"),
    }
    let code = "import os\nos._exit(3)\n";
    let f = python_function("exit", code, &["AKIDEXIT"], Duration::from_secs(30), Redactor::new()).await;
    let inv = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    let Outcome::Crashed { detail } = &inv.outcome else { panic!("{inv:?}") };
    assert!(detail.contains("exit status: 3"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn megabytes_of_output_are_bounded_and_secrets_redacted() {
    let redactor = Redactor::new();
    redactor.register_value("app", 2, &SecretValue::String(r#"{"password":"Pr1nted:Secret'9"}"#.into()));
    let code = r#"
import sys
def lambda_handler(event, context):
    for i in range(60000):
        sys.stdout.write("x" * 99 + "\n")
    print("the new password is Pr1nted:Secret'9")
    for i in range(20000):
        sys.stdout.write("y" * 99 + "\n")
    return "done"
"#;
    let f = python_function("big", code, &["AKIDBIG"], Duration::from_secs(60), redactor).await;
    let inv = f.invoke(&event(Step::CreateSecret), InvokeOptions::default()).await;
    assert_eq!(inv.outcome, Outcome::Success { payload: serde_json::json!("done") });
    assert!(inv.logs.len() < 70 * 1024, "{} bytes kept", inv.logs.len());
    assert!(inv.logs.contains("bytes of output left out"));
    assert_eq!(inv.leaked, vec!["<password of app:v2>".to_string()], "the leak in the dropped middle is reported");
    assert!(!inv.logs.contains("Pr1nted"));
    f.shutdown().await;
}

/// A Runtime API client written by hand (stdlib only) that answers non-JSON, as a runtime of
/// another language might.
const RAW_CLIENT: &str = r#"
import os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        r.read()
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=b"OK, not JSON <html>", method="POST")).read()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_non_json_answer_is_a_success_with_the_text() {
    let dir = function_dir("raw", RAW_CLIENT);
    let launch = LaunchSpec {
        program: PathBuf::from(python::interpreter()),
        args: vec!["lambda_function.py".into()],
        cwd: dir,
        env: vec![],
    };
    let f = RuntimeApiFunction::new(launch, config("raw", &["AKIDRAW"], Duration::from_secs(10)), Redactor::new()).await.unwrap();
    let inv = f.invoke(&event(Step::FinishSecret), InvokeOptions::default()).await;
    assert_eq!(inv.outcome, Outcome::Success { payload: serde_json::json!("OK, not JSON <html>") });
    let dropped = f.invoke(&event(Step::FinishSecret), InvokeOptions { drop_result: true, ..Default::default() }).await;
    assert!(matches!(dropped.outcome, Outcome::ResultDropped { .. }), "{dropped:?}");
    assert!(dropped.outcome.is_unknown());
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_invoker() {
    let sh = |script: &str| LaunchSpec { program: "/bin/sh".into(), args: vec!["-c".into(), script.into()], cwd: std::env::temp_dir(), env: vec![] };
    let run = |script: &str, timeout: u64| {
        let f = CommandFunction::new(sh(script), &aws("AKIDCMD"), Duration::from_secs(timeout), Redactor::new());
        async move { f.invoke(&event(Step::SetSecret), InvokeOptions::default()).await }
    };
    let ok = run("read line; case \"$line\" in *setSecret*) echo got $AWS_ACCESS_KEY_ID;; *) exit 9;; esac", 10).await;
    assert!(ok.outcome.is_success(), "{ok:?}");
    assert!(ok.logs.contains("got AKIDCMD"));
    let failed = run("cat >/dev/null; echo 'bad credentials' >&2; exit 3", 10).await;
    assert_eq!(failed.outcome, Outcome::FunctionError { error_type: "exit status 3".into(), message: "bad credentials".into() });
    let t = Instant::now();
    let hung = run("cat >/dev/null; sleep 300 & sleep 300", 1).await;
    assert_eq!(hung.outcome, Outcome::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(5));
    let killed = run("kill -9 $$", 10).await;
    assert!(matches!(killed.outcome, Outcome::Crashed { .. }), "{killed:?}");
}
