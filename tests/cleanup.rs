//! A run stopped in the middle leaves nothing behind: SIGINT (Ctrl-C), SIGTERM (a cancelled
//! CI job) and the time limit end `rotcheck check` with exit code 2 and a summary of what was
//! checked, after stopping every function process, the database server (a local process and
//! its temp dir, or a container) and the emulator. After SIGKILL nothing can run in the dying
//! process; `rotcheck doctor --clean` (or the next run) sweeps what it left.
//!
//! Each test starts a real run of the Python PostgreSQL fixture and interrupts it mid-case.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

/// One run at a time: a run's start sweeps a dead run's leftovers, which would race the
/// SIGKILL test's own check, and two runs on 2 cores would only slow each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every process whose parent chain leads to `root`.
fn descendants(root: i32) -> BTreeSet<i32> {
    let mut parent: BTreeMap<i32, i32> = BTreeMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parent.insert(pid, ppid);
        }
    }
    let mut out = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &parent {
            if pp == p && out.insert(c) {
                frontier.push(c);
            }
        }
    }
    out
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()), Some("Z") | Some("X")),
        Err(_) => false,
    }
}

fn temp_dirs_of(pid: u32) -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&format!("rotcheck-{pid}-")))
        .collect()
}

fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={}={pid}", rotcheck_harness::database::docker::OWNER_LABEL)])
        .output()
        .expect("the docker CLI runs (the test command makes sure Docker is there)");
    assert!(out.status.success(), "docker ps failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect()
}

/// A run of many cases that cannot end by itself within the test.
fn start_run(db: &str, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["check", "fixtures/python/postgres-single-user", "--db", db, "--cases", "5000", "--seed", "7", "--workers", "2"])
        .args(extra)
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the run's stdout until the database is up and the function processes answer, and
/// returns what it printed so far plus the pids it started.
fn wait_until_busy(child: &mut Child) -> (BufReader<std::process::ChildStdout>, BTreeSet<i32>) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the run ended before its database was ready");
        if line.contains("database:") {
            break;
        }
    }
    // Cases are under way once the function processes (python) are up; then let a case get
    // into its middle.
    // Every process seen under the run counts: the crash sweep kills function processes and
    // the run starts new ones, so one snapshot may miss some.
    let pid = child.id() as i32;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = descendants(pid);
        let pythons = now
            .iter()
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("python")))
            .count();
        seen.extend(now);
        if pythons >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no function process started within 120 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let busy = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < busy {
        seen.extend(descendants(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    seen.extend(descendants(pid));
    (out, seen)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not end within {within:?} of being stopped");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a busy run with `signal` and checks the exit, the output and what is left.
fn stop_and_check(db: &str, signal: i32, reason: &str) {
    let _one = serial();
    let mut child = start_run(db, &[]);
    let pid = child.id();
    let (mut out, started) = wait_until_busy(&mut child);
    // Function processes, and for a local database its server process and workers.
    let least = if db == "docker" { 2 } else { 3 };
    assert!(started.len() >= least, "expected function processes (and a local server), found {started:?}");
    if db == "docker" {
        assert_eq!(containers_of(pid).len(), 1, "the run's container");
    } else {
        assert_eq!(temp_dirs_of(pid).len(), 1, "the local server's temp dir");
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let code = wait_exit(&mut child, Duration::from_secs(60));
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(code, Some(2), "{reason}: exit code\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("rotcheck: error: ") && last.contains(reason), "{reason}: the last line says why: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("Properties (") && stdout.contains("Coverage"), "what was checked so far is printed:\n{stdout}");
    // Everything it started ended before it exited: nothing to wait for.
    let survivors: Vec<i32> = started.iter().copied().filter(|&p| alive(p)).collect();
    assert!(survivors.is_empty(), "{reason}: processes outlived the run: {survivors:?}");
    assert!(temp_dirs_of(pid).is_empty(), "{reason}: temp dirs left: {:?}", temp_dirs_of(pid));
    if db == "docker" {
        assert!(containers_of(pid).is_empty(), "{reason}: the container was left");
    }
}

#[test]
fn sigint_mid_run_stops_everything_local() {
    stop_and_check("local", libc::SIGINT, "interrupted (SIGINT)");
}

#[test]
fn sigterm_mid_run_stops_everything_docker() {
    stop_and_check("docker", libc::SIGTERM, "terminated (SIGTERM)");
}

#[test]
fn sigint_mid_run_stops_everything_docker() {
    stop_and_check("docker", libc::SIGINT, "interrupted (SIGINT)");
}

#[test]
fn the_time_limit_ends_a_run_with_what_it_checked() {
    let _one = serial();
    // The limit covers the whole run, and a first run on a fresh machine spends it building
    // the fixture's venv (pip install): build it beforehand so the limit ends cases.
    let warm = Command::new(BIN)
        .args(["check", "fixtures/python/postgres-single-user", "--db", "local", "--cases", "1", "--no-sweep", "--seed", "7"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(warm.status.success(), "{}{}", String::from_utf8_lossy(&warm.stdout), String::from_utf8_lossy(&warm.stderr));
    let mut child = start_run("local", &["--time-limit", "12"]);
    let pid = child.id();
    let started = Instant::now();
    let code = wait_exit(&mut child, Duration::from_secs(90));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("the time limit of 12 s was reached: stopped after"), "{stderr}");
    assert!(stdout.contains("Properties ("), "{stdout}");
    assert!(started.elapsed() >= Duration::from_secs(12), "it ran until its limit");
    assert!(temp_dirs_of(pid).is_empty(), "temp dirs left: {:?}", temp_dirs_of(pid));
}

/// SIGKILL: the dying process cannot clean up. Its function processes and local server die
/// with it (parent-death signal); its container and temp dir stay until a sweep.
#[test]
fn after_sigkill_doctor_clean_sweeps_what_the_run_left() {
    let _one = serial();
    let mut child = start_run("docker", &[]);
    let pid = child.id();
    let (_out, started) = wait_until_busy(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while started.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let survivors: Vec<i32> = started.iter().copied().filter(|&p| alive(p)).collect();
    assert!(survivors.is_empty(), "processes outlived a SIGKILLed run: {survivors:?}");
    assert_eq!(containers_of(pid).len(), 1, "a SIGKILLed run cannot remove its container");
    let out = Command::new(BIN).args(["doctor", "--clean"]).current_dir(common::root()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cleaned:"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(containers_of(pid).is_empty(), "the dead run's container survived doctor --clean");
    assert!(temp_dirs_of(pid).is_empty());
}
