//! The database piece against real servers: every provider x engine (docker and local for
//! PostgreSQL and MariaDB, and url), with awkward role names and passwords, the three login
//! verdicts, read and write probes, effective privileges, the fault proxy's faults as a client
//! sees them, and cleanup.
//!
//! Docker tests need the images `scripts/images/build.sh` builds (the test command does) and
//! a Docker daemon; without them they fail, they do not skip.

use rotcheck_harness::database::docker::DockerProvider;
use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::database::url::UrlProvider;
use rotcheck_harness::database::proxy::{FaultProxy, ProxyMode};
use rotcheck_harness::database::{Credentials, Endpoint, Engine, Flavor, LoginOutcome, Provider, Server};
use std::time::{Duration, Instant};

/// A role name with mixed case, quotes, a space, a semicolon and multibyte characters, cut to
/// the engine's limit with a tag that keeps parallel tests apart.
fn awkward_name(flavor: Flavor, tag: &str) -> String {
    flavor.tagged_name("Mixed\"Case' ü-ser; Ω", tag)
}

/// A password with every character that breaks naive quoting or URLs (F08).
const AWKWARD_PASSWORD: &str = "p@ss:w'rd \"q\" \\back%20 é;--";

fn creds(user: &str, password: &str) -> Credentials {
    Credentials { user: user.into(), password: password.into() }
}

/// The whole exercise on one server.
async fn exercise(server: &Server, tag: &str) {
    eprintln!("{} {:?} started in {:?}", server.provider, server.flavor, server.startup);
    let name = awkward_name(server.flavor, tag);
    let t = Instant::now();
    let role = server.create_role(&name, AWKWARD_PASSWORD).await.expect("create role");
    eprintln!("  fresh role in {:?}", t.elapsed());

    // Login verdicts.
    let t = Instant::now();
    assert_eq!(server.login(&server.endpoint, &creds(&name, AWKWARD_PASSWORD)).await, LoginOutcome::Authenticated);
    eprintln!("  login probe in {:?}", t.elapsed());
    assert_eq!(server.login(&server.endpoint, &creds(&name, "wrong-password")).await, LoginOutcome::AuthenticationFailed);
    assert_eq!(
        server.login(&server.endpoint, &creds("no_such_user_here", AWKWARD_PASSWORD)).await,
        LoginOutcome::AuthenticationFailed
    );
    let nowhere = Endpoint { host: "127.0.0.1".into(), port: closed_port() };
    assert!(matches!(server.login(&nowhere, &creds(&name, AWKWARD_PASSWORD)).await, LoginOutcome::Unreachable { .. }));

    // Read and write.
    let me = creds(&name, AWKWARD_PASSWORD);
    assert_eq!(server.can_read(&me, &role.table).await, Ok(true));
    assert_eq!(server.can_write(&me, &role.table).await, Ok(true));
    assert_eq!(server.can_read(&creds(&name, "wrong"), &role.table).await, Err(LoginOutcome::AuthenticationFailed));

    // Another role cannot touch this one's table.
    let other_name = server.flavor.tagged_name("other", &format!("{tag}o"));
    let other = server.create_role(&other_name, "other-password-1").await.unwrap();
    assert_eq!(server.can_read(&creds(&other_name, "other-password-1"), &role.table).await, Ok(false));
    assert_eq!(server.can_write(&creds(&other_name, "other-password-1"), &role.table).await, Ok(false));

    proxy_faults_as_a_client_sees_them(server, &me).await;

    // Effective privileges: a clone made the strategy's way equals the user; a role missing a
    // grant differs, and the difference names it.
    let clone_name = server.flavor.tagged_name("clone ü", &format!("{tag}c"));
    server.create_member(&name, &clone_name, "clone-password-1").await.unwrap();
    let user_privs = server.privileges(&name).await.unwrap();
    let clone_privs = server.privileges(&clone_name).await.unwrap();
    assert!(!user_privs.0.is_empty());
    assert_eq!(user_privs, clone_privs, "user and clone differ: {:?}", user_privs.diff(&clone_privs));
    assert_eq!(server.can_write(&creds(&clone_name, "clone-password-1"), &role.table).await, Ok(true));
    let partial_name = server.flavor.tagged_name("partial", &format!("{tag}p"));
    server.create_role(&partial_name, "partial-password-1").await.unwrap();
    let grantee = match server.engine {
        Engine::Postgres => format!("\"{}\"", partial_name.replace('"', "\"\"")),
        Engine::Mysql => format!("'{}'@'%'", partial_name.replace('\'', "''")),
    };
    server.admin_execute(&format!("GRANT SELECT ON {} TO {grantee}", role.table)).await.unwrap();
    // Read and write asked as the role on an admin connection (PostgreSQL) agree with a
    // login's, through membership and partial grants too.
    let (one_session, as_role) = (server.can_read_and_write(&creds(&partial_name, "partial-password-1"), &role.table).await, server.role_can_read_and_write(&partial_name, &role.table).await);
    assert_eq!(one_session, Ok((true, false)));
    match server.engine {
        Engine::Postgres => {
            assert_eq!(as_role, Some((true, false)));
            for (user, expected) in [(&name, (true, true)), (&clone_name, (true, true)), (&other_name, (false, false))] {
                assert_eq!(server.role_can_read_and_write(user, &role.table).await, Some(expected), "{user}");
            }
        }
        Engine::Mysql => assert_eq!(as_role, None, "MySQL has no SET ROLE to a user: the caller logs in"),
    }
    let partial_privs = server.privileges(&partial_name).await.unwrap();
    let (missing, _extra) = user_privs.diff(&partial_privs);
    assert!(missing.iter().any(|(_, p)| p == "INSERT"), "missing grants not reported: {missing:?}");
    // It holds SELECT on the table itself (not on its sequence, which it lacks too).
    assert!(!missing.iter().any(|(o, p)| p == "SELECT" && o.starts_with("table ") && !o.ends_with("_seq")), "{missing:?}");

    // The master account of alternating users can make the clone itself, and nothing more.
    let master_name = server.flavor.tagged_name("master", &format!("{tag}m"));
    server.create_master(&master_name, "master-password-1", &name).await.unwrap();
    let master = creds(&master_name, "master-password-1");
    assert!(server.login(&server.endpoint, &master).await.ok());
    let made_by_master = server.flavor.tagged_name("bymaster", &format!("{tag}b"));
    let as_master = server.acting_as(master.clone());
    as_master.create_member(&name, &made_by_master, "by-master-pw-1").await.expect("the master creates the clone");
    assert_eq!(server.privileges(&made_by_master).await.unwrap(), user_privs);
    assert!(!server.privileges(&master_name).await.unwrap().0.contains(&("role attributes".to_string(), "SUPERUSER".to_string())));

    // Setting a password as admin, then dropping everything.
    server.set_password(&name, "rotated:password'2").await.unwrap();
    assert_eq!(server.login(&server.endpoint, &me).await, LoginOutcome::AuthenticationFailed);
    assert!(server.login(&server.endpoint, &creds(&name, "rotated:password'2")).await.ok());
    for n in [&name, &other_name, &clone_name, &partial_name, &master_name, &made_by_master] {
        server.drop_role(n).await.unwrap();
    }
    server.drop_table(&role.table).await.unwrap();
    server.drop_table(&other.table).await.unwrap();
    assert_eq!(server.login(&server.endpoint, &creds(&name, "rotated:password'2")).await, LoginOutcome::AuthenticationFailed);
    // Dropping twice is fine.
    server.drop_role(&name).await.unwrap();
}

/// Each fault of the proxy, as a client logging in through it experiences it.
async fn proxy_faults_as_a_client_sees_them(server: &Server, me: &Credentials) {
    let upstream = format!("{}:{}", server.endpoint.host, server.endpoint.port).parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let at = Endpoint { host: "127.0.0.1".into(), port: proxy.addr().port() };
    let short = Duration::from_secs(1);
    assert_eq!(server.login_within(&at, me, short).await, LoginOutcome::Authenticated, "pass");
    assert_eq!(server.login_within(&at, &creds(&me.user, "wrong"), short).await, LoginOutcome::AuthenticationFailed);
    proxy.set_mode(ProxyMode::Delay(Duration::from_millis(150)));
    let t = Instant::now();
    assert_eq!(server.login_within(&at, me, Duration::from_secs(10)).await, LoginOutcome::Authenticated, "delay");
    assert!(t.elapsed() >= Duration::from_millis(450), "a delayed login took {:?}", t.elapsed());
    for (mode, what) in [
        (ProxyMode::Refuse, "refuse"),
        (ProxyMode::CloseAfter { bytes: 40 }, "close mid-handshake"),
        (ProxyMode::Blackhole, "blackhole"),
    ] {
        proxy.set_mode(mode);
        let outcome = server.login_within(&at, me, short).await;
        assert!(matches!(outcome, LoginOutcome::Unreachable { .. }), "{what}: {outcome:?}");
    }
    // The blackholed client gave up: no connection stays open, and the proxy counted them all.
    assert!(proxy.wait_until_idle(Duration::from_secs(5)).await);
    assert_eq!(proxy.total_connections(), 6);
    proxy.set_mode(ProxyMode::Pass);
    assert!(server.login_within(&at, me, short).await.ok());
    proxy.stop().await;
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn port_is_closed(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// A login fingerprint changes with everything that decides whether a password logs in, and
/// only then: the engine reuses a probe's verdict while it is unchanged.
async fn login_fingerprints_follow_what_decides_a_login(server: &Server) {
    let user = "fp_user".to_string();
    let of = || async { server.login_fingerprints(std::slice::from_ref(&user)).await.expect("a superuser reads pg_authid").remove(&user) };
    assert_eq!(of().await, None, "no such role yet");
    server.create_role(&user, "first-password-1").await.unwrap();
    let first = of().await.expect("the role has one");
    assert!(!first.expires, "no VALID UNTIL: nothing changes with time");
    assert_eq!(server.login(&server.endpoint, &creds(&user, "first-password-1")).await, LoginOutcome::Authenticated);
    assert_eq!(server.login(&server.endpoint, &creds(&user, "wrong-password-1")).await, LoginOutcome::AuthenticationFailed);
    assert_eq!(of().await.as_ref(), Some(&first), "logins, right or wrong, change nothing");
    server.set_password(&user, "first-password-1").await.unwrap();
    let reset = of().await.unwrap();
    assert_ne!(reset, first, "the same password set again has a new salt");
    server.set_password(&user, "second-password-2").await.unwrap();
    let second = of().await.unwrap();
    assert_ne!(second, reset);
    // A role has one password verifier, the premise of the runner's deduced refusals: under
    // one fingerprint the one password logs in, and every other (ASCII) one is refused.
    assert_eq!(server.login(&server.endpoint, &creds(&user, "second-password-2")).await, LoginOutcome::Authenticated);
    for other in ["first-password-1", "second-password-2 ", "Second-password-2", "second-password-", ""] {
        assert_eq!(server.login(&server.endpoint, &creds(&user, other)).await, LoginOutcome::AuthenticationFailed, "{other:?}");
    }
    assert_eq!(of().await.as_ref(), Some(&second));
    server.admin_execute("ALTER ROLE \"fp_user\" VALID UNTIL '2999-01-01'").await.unwrap();
    assert!(of().await.unwrap().expires, "a finite VALID UNTIL: logins stop when it passes, with no statement run");
    server.admin_execute("ALTER ROLE \"fp_user\" VALID UNTIL 'infinity'").await.unwrap();
    assert!(!of().await.unwrap().expires);
    let quoted = "\"fp_user\"";
    for (change, undo) in [
        (format!("ALTER ROLE {quoted} NOLOGIN"), format!("ALTER ROLE {quoted} LOGIN")),
        (format!("ALTER ROLE {quoted} VALID UNTIL '2001-01-01'"), format!("ALTER ROLE {quoted} VALID UNTIL 'infinity'")),
        (format!("ALTER ROLE {quoted} CONNECTION LIMIT 0"), format!("ALTER ROLE {quoted} CONNECTION LIMIT -1")),
        ("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC".to_string(), "GRANT CONNECT ON DATABASE postgres TO PUBLIC".to_string()),
    ] {
        let before = of().await.unwrap();
        server.admin_execute(&change).await.unwrap();
        assert_ne!(of().await.unwrap(), before, "{change}");
        server.admin_execute(&undo).await.unwrap();
    }
    server.drop_role(&user).await.unwrap();
    assert_eq!(of().await, None);
}

/// The runner deduces refusals from a role's one verifier without first seeing one refused
/// when every host rule of pg_hba.conf checks passwords; a `trust` rule anywhere undoes that.
async fn pg_hba_rules_decide_whether_logins_check_passwords(server: &Server) {
    assert!(server.logins_check_passwords().await, "rotcheck's own server checks every TCP login");
    let hba = server.admin_scalar("SELECT setting FROM pg_settings WHERE name = 'hba_file'").await.unwrap();
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all trusted_user 127.0.0.1/32 trust\n{rules}")).unwrap();
    assert!(!server.logins_check_passwords().await, "a trust rule: some passwords are not checked");
    std::fs::write(&hba, &rules).unwrap();
    assert!(server.logins_check_passwords().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_postgres() {
    let server = LocalProvider::default().start(Engine::Postgres).await.expect("local PostgreSQL starts");
    assert_eq!(server.flavor, Flavor::Postgres);
    exercise(&server, "_lp").await;
    login_fingerprints_follow_what_decides_a_login(&server).await;
    pg_hba_rules_decide_whether_logins_check_passwords(&server).await;
    let port = server.endpoint.port;
    let dirs = rotcheck_dirs();
    assert!(!dirs.is_empty());
    drop(server);
    assert!(port_is_closed(port), "the server stopped with its handle");
    assert!(rotcheck_dirs().len() < dirs.len(), "its temp dir is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mariadb() {
    let server = LocalProvider::default().start(Engine::Mysql).await.expect("local MariaDB starts");
    assert_eq!(server.flavor, Flavor::Mariadb);
    exercise(&server, "_lm").await;
    mariadb_roles_are_followed(&server).await;
    assert_eq!(server.login_fingerprints(&["anyone".to_string()]).await, None, "MariaDB has no fingerprints: probes decide");
    assert!(!server.logins_check_passwords().await, "MariaDB's rules are not read");
    let port = server.endpoint.port;
    drop(server);
    assert!(port_is_closed(port));
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_postgres() {
    let server = DockerProvider::default().start(Engine::Postgres).await.expect("PostgreSQL container starts");
    exercise(&server, "_dp").await;
    assert!(server.logins_check_passwords().await, "the image's host rules are scram-sha-256");
    let port = server.endpoint.port;
    drop(server);
    assert!(port_is_closed(port), "the container is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_mariadb() {
    let server = DockerProvider::default().start(Engine::Mysql).await.expect("MariaDB container starts");
    assert_eq!(server.flavor, Flavor::Mariadb);
    exercise(&server, "_dm").await;
    mariadb_roles_are_followed(&server).await;
    assert_eq!(server.login_fingerprints(&["anyone".to_string()]).await, None, "MariaDB has no fingerprints: probes decide");
    let port = server.endpoint.port;
    drop(server);
    assert!(port_is_closed(port));
}

#[tokio::test(flavor = "multi_thread")]
async fn url_provider_on_an_existing_server() {
    // An existing server: a local PostgreSQL that the url provider only connects to.
    let existing = LocalProvider::default().start(Engine::Postgres).await.unwrap();
    let url = format!(
        "postgres://{}:{}@{}:{}/{}",
        existing.admin.user, existing.admin.password, existing.endpoint.host, existing.endpoint.port, existing.database
    );
    let server = UrlProvider::new(&url).unwrap().start(Engine::Postgres).await.expect("url provider connects");
    assert_eq!(server.provider, "url");
    exercise(&server, "_u").await;
    drop(server);
    // Dropping the url server leaves the existing one running.
    assert!(existing.login(&existing.endpoint, &existing.admin).await.ok());
    let wrong = UrlProvider::new(&url).unwrap().start(Engine::Mysql).await;
    assert!(wrong.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_with_a_missing_image_says_what_to_do() {
    let p = DockerProvider { image: Some("rotcheck/does-not-exist:0".into()) };
    let e = p.start(Engine::Postgres).await.unwrap_err().to_string();
    assert!(e.contains("rotcheck/does-not-exist:0") && e.contains("scripts/images/build.sh"), "{e}");
    assert_eq!(e.lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_unreachable_is_one_clear_error() {
    // SAFETY (test): no other test in this binary reads DOCKER_HOST concurrently... they do,
    // so this runs against a provider-local environment instead: a child process.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "docker_unreachable_child", "--nocapture", "--include-ignored"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("CHILD-OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by docker_unreachable_is_one_clear_error with DOCKER_HOST pointing nowhere"]
async fn docker_unreachable_child() {
    let e = DockerProvider::default().start(Engine::Postgres).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("Docker is not reachable"), "{text}");
    assert!(text.contains("--db local"), "{text}");
    println!("CHILD-OK {text}");
}

/// MariaDB roles: privileges held through a default role count; a role that is granted but
/// not active at login does not.
async fn mariadb_roles_are_followed(server: &Server) {
    let user = server.flavor.tagged_name("roleuser", "_r1");
    let role = server.create_role(&user, "role-user-pw-1").await.unwrap();
    let via_role = server.flavor.tagged_name("viarole", "_r2");
    server.create_role(&via_role, "via-role-pw-1").await.unwrap();
    let via_role_probe = server.privileges(&via_role).await.unwrap();
    for s in [
        "CREATE ROLE IF NOT EXISTS rotcheck_test_role".to_string(),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO rotcheck_test_role", role.table),
        format!("GRANT rotcheck_test_role TO '{via_role}'@'%'"),
    ] {
        server.admin_execute(&s).await.unwrap();
    }
    let not_active = server.privileges(&via_role).await.unwrap();
    assert_eq!(not_active, via_role_probe, "a role that is not the default role is not effective at login");
    server.admin_execute(&format!("SET DEFAULT ROLE rotcheck_test_role FOR '{via_role}'@'%'")).await.unwrap();
    let active = server.privileges(&via_role).await.unwrap();
    let user_privs = server.privileges(&user).await.unwrap();
    assert!(user_privs.0.is_subset(&active.0), "{:?}", user_privs.diff(&active));
    for n in [&user, &via_role] {
        server.drop_role(n).await.unwrap();
    }
    server.admin_execute("DROP ROLE rotcheck_test_role").await.unwrap();
}

fn rotcheck_dirs() -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("rotcheck-{}-", std::process::id())))
        .collect()
}

/// Starts a child run (a local server, a container, a proxy), kills it with `signal`, and
/// checks what is left: its local server stops by itself (parent-death signal), and after the
/// next run's sweep no temp dir and no container of it remain. Returns whether the container
/// was already gone before the sweep.
fn kill_a_run_and_sweep(signal: &str) -> bool {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "interrupted_run_child", "--nocapture", "--include-ignored"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = loop {
        let line = lines.next().expect("the child reports READY").unwrap();
        if let Some(rest) = line.strip_prefix("READY ") {
            break rest.to_string();
        }
    };
    let ports: Vec<u16> = ready.split_whitespace().map(|p| p.parse().unwrap()).collect();
    let (local_port, docker_port, proxy_port) = (ports[0], ports[1], ports[2]);
    assert!(!port_is_closed(local_port) && !port_is_closed(docker_port) && !port_is_closed(proxy_port));
    let pid = child.id();
    assert!(std::process::Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success());
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !port_is_closed(local_port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(port_is_closed(local_port), "{signal}: the local server outlived its rotcheck process");
    assert!(port_is_closed(proxy_port));
    let container_gone_before_sweep = port_is_closed(docker_port);
    let left = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().starts_with(&format!("rotcheck-{pid}-"));
    let dirs = || std::fs::read_dir(std::env::temp_dir()).unwrap().flatten().filter(|e| left(&e.path())).count();
    rotcheck_harness::database::local::sweep_stale_dirs();
    assert_eq!(dirs(), 0, "{signal}: a dead run's temp dirs are swept");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(rotcheck_harness::database::docker::sweep_stale_containers());
    assert!(port_is_closed(docker_port), "{signal}: the container is gone");
    container_gone_before_sweep
}

/// SIGKILL: nothing runs in the dying process; its servers die with it (parent-death signal)
/// and the next run's sweep removes what it left (another test's docker start may sweep it
/// first, which is the same mechanism). The library has no signal handler of its own: the
/// command line stops a run cleanly on SIGINT and SIGTERM (tests/cleanup.rs).
#[test]
fn killed_runs_leave_nothing_behind_after_a_sweep() {
    kill_a_run_and_sweep("-KILL");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by killed_runs_leave_nothing_behind_after_a_sweep, which kills it"]
async fn interrupted_run_child() {
    let local = LocalProvider::default().start(Engine::Postgres).await.unwrap();
    let docker = DockerProvider::default().start(Engine::Mysql).await.unwrap();
    let upstream = format!("127.0.0.1:{}", local.endpoint.port).parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    println!("READY {} {} {}", local.endpoint.port, docker.endpoint.port, proxy.addr().port());
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop((local, docker, proxy));
}
