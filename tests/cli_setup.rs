//! The CLI as a new user meets it: `init` writes a rotcheck.toml that `check` then runs with
//! no flags, flags win over the file, `doctor` names what is missing, and every configuration
//! or setup mistake is one line naming the problem and the fix, with exit code 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rotcheck");

fn rotcheck(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rotcheck-setup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of the PostgreSQL single-user fixture in a temp dir.
fn function_copy(name: &str) -> PathBuf {
    let d = temp(name);
    for e in std::fs::read_dir(common::root().join("fixtures/python/postgres-single-user")).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
    }
    d
}

#[test]
fn init_writes_a_config_that_check_runs_with_and_flags_win() {
    let f = function_copy("init");
    let root = common::root();
    let o = rotcheck(&["init", f.to_str().unwrap()], &[], &root);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let toml = std::fs::read_to_string(f.join("rotcheck.toml")).unwrap();
    assert!(toml.contains("handler = \"lambda_function.lambda_handler\"") && toml.contains("engine = \"postgres\""), "{toml}");
    // A second init does not overwrite the user's file.
    let o = rotcheck(&["init", f.to_str().unwrap()], &[], &root);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"));
    // The file drives the run: a small budget, no sweep, the local database.
    let small = toml.replace("cases = 64", "cases = 2").replace("sweep = true", "sweep = false").replace("provider = \"auto\"", "provider = \"local\"");
    std::fs::write(f.join("rotcheck.toml"), small).unwrap();
    let o = rotcheck(&["check", "--seed", "3"], &[], &f);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("configuration: rotcheck.toml") && t.contains("2 cases in"), "{t}");
    // A flag wins over the file.
    let o = rotcheck(&["check", f.to_str().unwrap(), "--seed", "3", "--cases", "1"], &[], &root);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("1 cases in"), "{t}");
    let _ = std::fs::remove_dir_all(&f);
}

#[test]
fn every_setup_mistake_is_one_line_with_the_fix_and_exit_2() {
    let root = common::root();
    let bad = temp("mistakes");
    let write = |name: &str, body: &str| {
        let p = bad.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let bad_toml = write("bad.toml", "[function\nhandler = 1\n");
    let unknown = write("unknown.toml", "[function]\nhandlr = \"lambda_function.lambda_handler\"\n");
    let engine = write("engine.toml", "[secret]\nengine = \"oracle\"\n");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let fixture = "fixtures/python/postgres-single-user";
    let cases: Vec<(&str, Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        ("missing handler", vec!["check", fixture, "--handler", "nomodule.handler", "--db", "local", "--no-sweep", "--cases", "1"], vec![], "nomodule.py"),
        ("bad TOML", vec!["check", fixture, "--config", &bad_toml], vec![], "line 1"),
        ("unknown field", vec!["check", fixture, "--config", &unknown], vec![], "handlr"),
        ("unknown engine (flag)", vec!["check", fixture, "--engine", "oracle"], vec![], "oracle"),
        ("unknown engine (file)", vec!["check", fixture, "--config", &engine], vec![], "oracle"),
        ("Docker unreachable", vec!["check", fixture, "--db", "docker", "--no-sweep", "--cases", "1"], vec![("DOCKER_HOST", "unix:///nonexistent/docker.sock")], "--db local"),
        ("port in use", vec!["serve", "--port", &port], vec![], "--port"),
        ("Python missing", vec!["check", fixture, "--db", "local", "--no-sweep", "--cases", "1"], vec![("ROTCHECK_PYTHON", "/nonexistent/python3"), ("ROTCHECK_CACHE_DIR", bad.to_str().unwrap())], "install python3"),
        ("no function named", vec!["check"], vec![], "rotcheck init"),
        ("init on a non-Python function", vec!["init", bad.to_str().unwrap()], vec![], "no Python file"),
    ];
    for (what, args, env, says) in cases {
        let o = rotcheck(&args, &env, &root);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert!(err.contains(says) && !err.contains("panicked"), "{what}: {err}");
    }
    drop(busy);
    let _ = std::fs::remove_dir_all(&bad);
}

#[test]
fn doctor_names_what_is_missing_and_how_to_fix_it() {
    let root = common::root();
    let o = rotcheck(&["doctor"], &[], &root);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ok    Python") && t.contains("PostgreSQL server (local)") && t.contains("can run here"), "{t}");
    let o = rotcheck(&["doctor"], &[("DOCKER_HOST", "unix:///nonexistent/docker.sock"), ("ROTCHECK_PYTHON", "/nonexistent/python3")], &root);
    let t = text(&o);
    assert!(t.contains("MISS  Docker") && t.contains("fix: start Docker"), "{t}");
    assert!(t.contains("MISS  Python") && t.contains("fix: apt-get install python3"), "{t}");
    // Without Python nothing can run: exit 2.
    assert_eq!(o.status.code(), Some(2), "{t}");
}
