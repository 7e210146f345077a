//! `rotcheck doctor`: checks what `rotcheck check` needs on this machine (Python with venv,
//! a database server from Docker or from the machine's own binaries, loopback ports) and says
//! how to fix each missing piece. `--clean` also sweeps what a killed run left behind.

use crate::UsageError;
use rotcheck_harness::database::{self, Engine};
use std::process::ExitCode;

/// Options of `rotcheck doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Also remove containers and temp directories that killed rotcheck runs left behind.
    #[arg(long)]
    pub clean: bool,
}

/// One line of the diagnosis.
struct Finding {
    what: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
}

fn python() -> Finding {
    let py = std::env::var("ROTCHECK_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&py).args(["-c", "import sys, venv, ensurepip; print(sys.version.split()[0])"]).output();
    match out {
        Ok(o) if o.status.success() => Finding {
            what: "Python",
            ok: true,
            detail: format!("{py} {}", String::from_utf8_lossy(&o.stdout).trim()),
            fix: "",
        },
        Ok(o) => Finding {
            what: "Python",
            ok: false,
            detail: format!("{py} has no venv/ensurepip module: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default()),
            fix: "apt-get install python3-venv (or set ROTCHECK_PYTHON to a Python 3 with venv)",
        },
        Err(e) => Finding {
            what: "Python",
            ok: false,
            detail: format!("{py} not found ({e})"),
            fix: "apt-get install python3 python3-venv (or set ROTCHECK_PYTHON)",
        },
    }
}

fn binaries(engine: Engine) -> Finding {
    let (what, fix) = match engine {
        Engine::Postgres => ("PostgreSQL server (local)", "apt-get install postgresql (or set ROTCHECK_PG_BIN), or use --db docker"),
        Engine::Mysql => ("MariaDB server (local)", "apt-get install mariadb-server, or use --db docker"),
    };
    match database::local::server_binaries(engine) {
        Ok(p) => Finding { what, ok: true, detail: p.display().to_string(), fix: "" },
        Err(e) => Finding { what, ok: false, detail: e.to_string(), fix },
    }
}

fn loopback() -> Finding {
    match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => Finding { what: "loopback ports", ok: true, detail: format!("can listen (e.g. {})", l.local_addr().map(|a| a.to_string()).unwrap_or_default()), fix: "" },
        Err(e) => Finding { what: "loopback ports", ok: false, detail: format!("cannot listen on 127.0.0.1: {e}"), fix: "free some ports, or allow this user to listen on loopback" },
    }
}

fn postgres_user() -> Option<Finding> {
    // As root, local servers run as the postgres and mysql users (PostgreSQL refuses root).
    // SAFETY: getuid has no preconditions and cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let has = |u: &str| passwd.lines().any(|l| l.split(':').next() == Some(u));
    let missing: Vec<&str> = ["postgres", "mysql"].into_iter().filter(|u| !has(u)).collect();
    Some(if missing.is_empty() {
        Finding { what: "server users (root)", ok: true, detail: "postgres and mysql exist".into(), fix: "" }
    } else {
        Finding {
            what: "server users (root)",
            ok: false,
            detail: format!("running as root, and no {} user to run the local servers as", missing.join(", ")),
            fix: "install the server packages (they create the users), or run rotcheck as another user",
        }
    })
}

pub async fn run(args: DoctorArgs) -> Result<ExitCode, UsageError> {
    let mut findings = vec![python()];
    let docker = database::docker::engine_status().await;
    match &docker {
        Ok(images) => {
            findings.push(Finding { what: "Docker", ok: true, detail: "the engine answers".into(), fix: "" });
            for (engine, name) in [(Engine::Postgres, "PostgreSQL image"), (Engine::Mysql, "MariaDB/MySQL image")] {
                let want = database::docker::default_images(engine);
                let have: Vec<&String> = images.iter().filter(|i| want.contains(&i.as_str())).collect();
                findings.push(match have.first() {
                    Some(i) => Finding { what: name, ok: true, detail: (*i).clone(), fix: "" },
                    None => Finding {
                        what: name,
                        ok: false,
                        detail: format!("none of {} is present", want.join(", ")),
                        fix: "scripts/images/build.sh builds them offline (or docker pull postgres:15 / mariadb:10.11 where a registry is reachable)",
                    },
                });
            }
        }
        Err(e) => findings.push(Finding {
            what: "Docker",
            ok: false,
            detail: e.clone(),
            fix: "start Docker (or fix DOCKER_HOST) for --db docker; --db local works without it",
        }),
    }
    findings.push(binaries(Engine::Postgres));
    findings.push(binaries(Engine::Mysql));
    findings.extend(postgres_user());
    findings.push(loopback());

    println!("rotcheck doctor");
    for f in &findings {
        println!("  {:5} {:28} {}", if f.ok { "ok" } else { "MISS" }, f.what, f.detail);
        if !f.ok {
            println!("        fix: {}", f.fix);
        }
    }
    if args.clean {
        let dirs = database::local::sweep_stale_dirs();
        let containers = database::docker::sweep_stale_containers().await;
        println!("  cleaned: {containers} container(s) and {dirs} temp director(ies) left by killed runs");
    }
    let ok = |what: &str| findings.iter().any(|f| f.what == what && f.ok);
    let can_run_pg = ok("Python") && ok("loopback ports") && (ok("PostgreSQL server (local)") || (ok("Docker") && ok("PostgreSQL image")));
    let can_run_my = ok("Python") && ok("loopback ports") && (ok("MariaDB server (local)") || (ok("Docker") && ok("MariaDB/MySQL image")));
    println!(
        "\nrotcheck check can run here: PostgreSQL functions {}, MySQL/MariaDB functions {}",
        if can_run_pg { "yes" } else { "NO" },
        if can_run_my { "yes" } else { "NO" }
    );
    Ok(if can_run_pg || can_run_my { ExitCode::SUCCESS } else { ExitCode::from(2) })
}
