//! `local`: a throwaway server from the machine's own binaries, in a temp dir, on a free port,
//! with password authentication on TCP. The embedded default: no Docker needed.
//!
//! When rotcheck runs as root (as CI does), the server runs as the `postgres` / `mysql` user,
//! since PostgreSQL refuses to run as root. The server process gets a parent-death signal, so
//! it stops when rotcheck dies, even by SIGKILL; its temp dir carries a marker with rotcheck's
//! pid, and every start sweeps the dirs of runs that are gone.

use super::engine::{Engine, Flavor};
use super::{BoxFuture, Credentials, DbError, Endpoint, Provider, Server, admin_password};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

const MARKER: &str = ".rotcheck-run";
const ADMIN_USER: &str = "rotcheck_admin";
const DATABASE: &str = "rotcheck";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts servers from local binaries.
#[derive(Debug, Default, Clone)]
pub struct LocalProvider {
    /// Directory with PostgreSQL's `initdb` and `postgres` (default: the newest
    /// `/usr/lib/postgresql/*/bin`, or the directory of `initdb` on PATH; env ROTCHECK_PG_BIN).
    pub pg_bin: Option<PathBuf>,
}

impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn start(&self, engine: Engine) -> BoxFuture<'_, Result<Server, DbError>> {
        Box::pin(async move {
            sweep_stale_dirs();
            let started = Instant::now();
            let this = self.clone();
            // The server is spawned from this (long-lived runtime) thread: the parent-death
            // signal fires when the spawning *thread* exits, so never spawn from a blocking
            // pool thread that may retire.
            let mut running = match engine {
                Engine::Postgres => this.spawn_postgres()?,
                Engine::Mysql => spawn_mariadb()?,
            };
            let admin = Credentials { user: ADMIN_USER.into(), password: running.password.clone() };
            let endpoint = Endpoint { host: "127.0.0.1".into(), port: running.port };
            let name = match engine {
                Engine::Postgres => "PostgreSQL",
                Engine::Mysql => "MariaDB",
            };
            wait_ready(engine, &endpoint, &admin, &mut running, name).await?;
            let flavor = match engine {
                Engine::Postgres => {
                    // The probe database.
                    let bootstrap = Server {
                        engine,
                        flavor: Flavor::Postgres,
                        endpoint: endpoint.clone(),
                        admin: admin.clone(),
                        database: "postgres".into(),
                        provider: "local",
                        startup: Duration::ZERO,
                        next_object: AtomicU64::new(0),
                        admin_idle: Default::default(),
                        _guard: Box::new(()),
                    };
                    bootstrap.admin_execute(&format!("CREATE DATABASE {DATABASE}")).await?;
                    Flavor::Postgres
                }
                Engine::Mysql => Flavor::Mariadb,
            };
            Ok(Server {
                engine,
                flavor,
                endpoint,
                admin,
                database: DATABASE.into(),
                provider: "local",
                startup: started.elapsed(),
                next_object: AtomicU64::new(1),
                admin_idle: Default::default(),
                _guard: Box::new(running),
            })
        })
    }
}

/// A server process and its temp dir. Dropping it stops the server and removes the dir.
struct Running {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    password: String,
    /// The signal that shuts the server down quickly (SIGINT for PostgreSQL: fast shutdown).
    stop_signal: i32,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, self.stop_signal);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stop_child(child: &mut Child, signal: i32) {
    // SAFETY: sending a signal to a pid we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl LocalProvider {
    fn pg_bin_dir(&self) -> Result<PathBuf, DbError> {
        if let Some(d) = self.pg_bin.clone().or_else(|| std::env::var_os("ROTCHECK_PG_BIN").map(PathBuf::from)) {
            return Ok(d);
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Ok(bin);
        }
        if let Some(initdb) = which("initdb") {
            let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
            if let Some(dir) = real.parent() {
                return Ok(dir.to_path_buf());
            }
        }
        Err(DbError::BinariesMissing(
            "PostgreSQL server binaries (initdb, postgres) were not found; install them (apt-get install postgresql) or set ROTCHECK_PG_BIN".into(),
        ))
    }

    fn spawn_postgres(&self) -> Result<Running, DbError> {
        let bin = self.pg_bin_dir()?;
        for b in ["initdb", "postgres"] {
            if !bin.join(b).exists() {
                return Err(DbError::BinariesMissing(format!("{} is missing; install the PostgreSQL server", bin.join(b).display())));
            }
        }
        let runas = run_as("postgres")?;
        let dir = make_dir("pg", runas)?;
        let password = admin_password();
        let pwfile = dir.join("pwfile");
        write_owned(&pwfile, &password, runas)?;
        let data = dir.join("data");
        let fail = |reason: String| DbError::StartFailed { engine: "PostgreSQL", reason };
        let out = command(&bin.join("initdb"), runas)
            .args(["-D", path(&data), "-U", ADMIN_USER, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--pwfile", path(&pwfile)])
            .output()
            .map_err(|e| fail(format!("cannot run initdb: {e}")))?;
        let _ = std::fs::remove_file(&pwfile);
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(fail(format!("initdb failed: {}", last_line(&String::from_utf8_lossy(&out.stderr)))));
        }
        let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
        let log = dir.join("server.log");
        let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string()))?;
        let child = command(&bin.join("postgres"), runas)
            .args(["-D", path(&data), "-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("unix_socket_directories={}", dir.display())])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=400", "-c", "shared_buffers=32MB", "-c", "password_encryption=scram-sha-256"])
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .map_err(|e| fail(format!("cannot start postgres: {e}")))?;
        Ok(Running { child: Some(child), dir, port, password, stop_signal: libc::SIGINT, log })
    }
}

/// Where the server binaries of `engine` are, or what to install: for `rotcheck doctor`.
pub fn server_binaries(engine: Engine) -> Result<PathBuf, DbError> {
    match engine {
        Engine::Postgres => LocalProvider::default().pg_bin_dir(),
        Engine::Mysql => which("mariadbd").or_else(|| which("mysqld")).filter(|_| which("mariadb-install-db").or_else(|| which("mysql_install_db")).is_some()).ok_or_else(|| {
            DbError::BinariesMissing("MariaDB server binaries (mariadb-install-db, mariadbd) were not found; install them (apt-get install mariadb-server)".into())
        }),
    }
}

fn spawn_mariadb() -> Result<Running, DbError> {
    let missing = || {
        DbError::BinariesMissing(
            "MariaDB server binaries (mariadb-install-db, mariadbd) were not found; install them (apt-get install mariadb-server)".into(),
        )
    };
    let install = which("mariadb-install-db").or_else(|| which("mysql_install_db")).ok_or_else(missing)?;
    let server = which("mariadbd").or_else(|| which("mysqld")).ok_or_else(missing)?;
    let runas = run_as("mysql")?;
    let dir = make_dir("mariadb", runas)?;
    let data = dir.join("data");
    let fail = |reason: String| DbError::StartFailed { engine: "MariaDB", reason };
    let mut install_cmd = command(&install, runas);
    install_cmd.args(["--no-defaults", &format!("--datadir={}", data.display()), "--auth-root-authentication-method=normal", "--skip-test-db"]);
    if let Some((uid, _)) = runas {
        install_cmd.arg(format!("--user={}", user_name(uid).unwrap_or_else(|| "mysql".into())));
    }
    let out = install_cmd.output().map_err(|e| fail(format!("cannot run {}: {e}", install.display())))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        return Err(fail(format!("mariadb-install-db failed: {}", last_line(&text))));
    }
    let password = admin_password();
    let init = dir.join("init.sql");
    write_owned(
        &init,
        &format!(
            "CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY '{password}';\n\
             GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION;\n\
             CREATE DATABASE IF NOT EXISTS {DATABASE};\n"
        ),
        runas,
    )?;
    let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
    let log = dir.join("server.log");
    let child = command(&server, runas)
        .args([
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", dir.join("mysqld.sock").display()),
            format!("--pid-file={}", dir.join("mysqld.pid").display()),
            format!("--init-file={}", init.display()),
            format!("--log-error={}", log.display()),
            "--skip-name-resolve".into(),
            "--skip-log-bin".into(),
            "--max-connections=400".into(),
            "--innodb-buffer-pool-size=32M".into(),
            "--innodb-flush-log-at-trx-commit=0".into(),
            "--performance-schema=OFF".into(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", server.display())))?;
    Ok(Running { child: Some(child), dir, port, password, stop_signal: libc::SIGTERM, log })
}

async fn wait_ready(engine: Engine, at: &Endpoint, admin: &Credentials, running: &mut Running, name: &'static str) -> Result<(), DbError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let db = match engine {
        Engine::Postgres => Some("postgres"),
        Engine::Mysql => None,
    };
    loop {
        if let Some(child) = running.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let mut log = String::new();
            let _ = std::fs::File::open(&running.log).and_then(|mut f| f.read_to_string(&mut log));
            return Err(DbError::StartFailed { engine: name, reason: format!("the server exited ({status}): {}", last_line(&log)) });
        }
        match super::engine::connect(engine, at, admin, db, Duration::from_secs(2)).await {
            Ok(c) => {
                c.close().await;
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => {
                return Err(DbError::StartFailed { engine: name, reason: format!("no admin login within {START_TIMEOUT:?}: {e}") });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The (uid, gid) to run a server as: the service user when rotcheck is root, else ourselves.
fn run_as(user: &str) -> Result<Option<(u32, u32)>, DbError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == user {
            if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                return Ok(Some((uid, gid)));
            }
        }
    }
    Err(DbError::BinariesMissing(format!(
        "rotcheck runs as root, and the server must run as the `{user}` user, which does not exist; install the server package (it creates the user) or run rotcheck as another user"
    )))
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

/// A command that runs as `runas` and receives SIGTERM when rotcheck's thread dies.
fn command(program: &Path, runas: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(program);
    c.env("LC_ALL", "C").env_remove("PGDATA").env_remove("PGPORT").env_remove("PGHOST");
    if let Some((uid, gid)) = runas {
        c.uid(uid).gid(gid);
    }
    // SAFETY: prctl is async-signal-safe; it runs in the child after fork, before exec, and
    // after the uid change (which would clear it).
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// A temp dir owned by `runas`, marked with our pid.
fn make_dir(kind: &str, runas: Option<(u32, u32)>) -> Result<PathBuf, DbError> {
    use rand::Rng;
    let n: u32 = rand::rng().random();
    let dir = std::env::temp_dir().join(format!("rotcheck-{}-{kind}-{n:08x}", std::process::id()));
    let err = |e: std::io::Error| DbError::StartFailed { engine: "database", reason: format!("cannot create {}: {e}", dir.display()) };
    std::fs::create_dir(&dir).map_err(err)?;
    std::fs::write(dir.join(MARKER), std::process::id().to_string()).map_err(err)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    if let Some((uid, gid)) = runas {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(err)?;
    }
    Ok(dir)
}

fn write_owned(p: &Path, text: &str, runas: Option<(u32, u32)>) -> Result<(), DbError> {
    let err = |e: std::io::Error| DbError::StartFailed { engine: "database", reason: format!("cannot write {}: {e}", p.display()) };
    std::fs::write(p, text).map_err(err)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    if let Some((uid, gid)) = runas {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(err)?;
    }
    Ok(())
}

/// Removes the temp dirs of rotcheck runs that no longer exist (after a SIGKILL), stopping any
/// server still running in them.
pub fn sweep_stale_dirs() -> usize {
    let mut swept = 0;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return 0 };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("rotcheck-") {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(path.join(MARKER)) else { continue };
        let Ok(pid) = owner.trim().parse::<i32>() else { continue };
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if alive {
            continue;
        }
        for pidfile in [path.join("data/postmaster.pid"), path.join("mysqld.pid")] {
            if let Some(server) = std::fs::read_to_string(&pidfile).ok().and_then(|t| t.lines().next()?.trim().parse::<i32>().ok()) {
                // SAFETY: a stale server of a dead run; SIGKILL is safe to send.
                unsafe {
                    libc::kill(server, libc::SIGKILL);
                }
            }
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            swept += 1;
        }
    }
    swept
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn last_line(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").trim().to_string()
}
