//! `docker`: a server in a container, through testcontainers.
//!
//! Users with a registry get the public images (`postgres:15`, `mariadb:10.11`, or any image
//! they name). Without one, `scripts/images/build.sh` builds `rotcheck/postgres:15` and
//! `rotcheck/mariadb:10.11` offline from Debian packages; they honour the public images'
//! environment, so the testcontainers modules drive both the same way, and a local tag is
//! used without contacting any registry. Containers carry labels with the owning process, so
//! a later run removes what a killed run left behind.

use super::engine::{Engine, Flavor};
use super::{BoxFuture, Credentials, DbError, Endpoint, Provider, Server, admin_password};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use testcontainers::core::IntoContainerPort;
use testcontainers::{ContainerAsync, ImageExt, TestcontainersError, runners::AsyncRunner};
use testcontainers_modules::{mariadb::Mariadb, mysql::Mysql, postgres::Postgres};

/// The label that marks rotcheck's containers, with the owning pid as its value.
pub const OWNER_LABEL: &str = "org.rotcheck.owner";
/// The label with the owning machine's hostname (pids mean nothing on another host).
pub const HOST_LABEL: &str = "org.rotcheck.host";
const DATABASE: &str = "rotcheck";

/// Starts servers in containers.
#[derive(Debug, Default, Clone)]
pub struct DockerProvider {
    /// `name:tag` to use instead of the defaults (the local `rotcheck/...` image when present,
    /// else the public one).
    pub image: Option<String>,
}

/// The images tried for an engine, in order.
pub fn default_images(engine: Engine) -> Vec<&'static str> {
    match engine {
        Engine::Postgres => vec!["rotcheck/postgres:15", "postgres:15"],
        Engine::Mysql => vec!["rotcheck/mariadb:10.11", "mariadb:10.11"],
    }
}

impl Provider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn start(&self, engine: Engine) -> BoxFuture<'_, Result<Server, DbError>> {
        Box::pin(async move {
            let started = Instant::now();
            sweep_stale_containers().await;
            let images: Vec<String> = match &self.image {
                Some(i) => vec![i.clone()],
                None => default_images(engine).into_iter().map(String::from).collect(),
            };
            let mut pull_errors = Vec::new();
            for image in &images {
                match start_image(engine, image).await {
                    Ok(mut s) => {
                        s.startup = started.elapsed();
                        return Ok(s);
                    }
                    Err(Attempt::Pull(reason)) => pull_errors.push(format!("{image}: {reason}")),
                    Err(Attempt::Fatal(e)) => return Err(e),
                }
            }
            Err(DbError::ImageUnavailable { image: images.join(" or "), reason: pull_errors.join("; ") })
        })
    }
}

enum Attempt {
    /// The image could not be pulled: try the next one.
    Pull(String),
    Fatal(DbError),
}

fn split_image(image: &str) -> (String, String) {
    // A registry port (host:5000/name) is not a tag: split at the last ':' after the last '/'.
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (image[..slash + i].to_string(), image[slash + i + 1..].to_string()),
        None => (image.to_string(), "latest".to_string()),
    }
}

fn classify(e: TestcontainersError, engine: Engine) -> Attempt {
    use testcontainers::core::error::ClientError;
    let text = e.to_string();
    match e {
        TestcontainersError::Client(ClientError::PullImage { err, .. }) => Attempt::Pull(err.to_string()),
        TestcontainersError::Client(ClientError::Init(err)) => Attempt::Fatal(DbError::DockerUnavailable(err.to_string())),
        TestcontainersError::Client(ClientError::CreateContainer(err)) if is_connection_error(&err.to_string()) => {
            Attempt::Fatal(DbError::DockerUnavailable(err.to_string()))
        }
        _ if is_connection_error(&text) => Attempt::Fatal(DbError::DockerUnavailable(text)),
        _ => Attempt::Fatal(DbError::StartFailed { engine: engine_name(engine), reason: text }),
    }
}

fn is_connection_error(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    ["connection refused", "socket not found", "no such file", "error trying to connect", "connect error", "client error (connect)", "timed out", "dns error", "failed to lookup"]
        .iter()
        .any(|p| s.contains(p))
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "PostgreSQL",
        Engine::Mysql => "MySQL/MariaDB",
    }
}

fn labels() -> HashMap<String, String> {
    HashMap::from([
        (OWNER_LABEL.to_string(), std::process::id().to_string()),
        (HOST_LABEL.to_string(), hostname()),
    ])
}

async fn start_image(engine: Engine, image: &str) -> Result<Server, Attempt> {
    let (name, tag) = split_image(image);
    let password = admin_password();
    let timeout = Duration::from_secs(120);
    let host = "127.0.0.1".to_string();
    match engine {
        Engine::Postgres => {
            let c: ContainerAsync<Postgres> = Postgres::default()
                .with_user("rotcheck_admin")
                .with_password(&password)
                .with_db_name(DATABASE)
                .with_name(name)
                .with_tag(tag)
                .with_labels(labels())
                .with_startup_timeout(timeout)
                .start()
                .await
                .map_err(|e| classify(e, engine))?;
            let port = c.get_host_port_ipv4(5432.tcp()).await.map_err(|e| classify(e, engine))?;
            Ok(server(engine, Flavor::Postgres, host, port, Credentials { user: "rotcheck_admin".into(), password }, Box::new(c)))
        }
        Engine::Mysql => {
            let admin = Credentials { user: "root".into(), password: password.clone() };
            let (port, guard, flavor): (u16, Box<dyn Send + Sync>, Flavor) = if name.contains("mysql") {
                let c: ContainerAsync<Mysql> = Mysql::default()
                    .with_name(name)
                    .with_tag(tag)
                    .with_env_var("MYSQL_ROOT_PASSWORD", &password)
                    .with_env_var("MYSQL_ALLOW_EMPTY_PASSWORD", "")
                    .with_env_var("MYSQL_DATABASE", DATABASE)
                    .with_labels(labels())
                    .with_startup_timeout(timeout)
                    .start()
                    .await
                    .map_err(|e| classify(e, engine))?;
                let port = c.get_host_port_ipv4(3306.tcp()).await.map_err(|e| classify(e, engine))?;
                (port, Box::new(c), Flavor::Mysql)
            } else {
                let c: ContainerAsync<Mariadb> = Mariadb::default()
                    .with_name(name)
                    .with_tag(tag)
                    .with_env_var("MARIADB_ROOT_PASSWORD", &password)
                    .with_env_var("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "")
                    .with_env_var("MARIADB_DATABASE", DATABASE)
                    .with_labels(labels())
                    .with_startup_timeout(timeout)
                    .start()
                    .await
                    .map_err(|e| classify(e, engine))?;
                let port = c.get_host_port_ipv4(3306.tcp()).await.map_err(|e| classify(e, engine))?;
                (port, Box::new(c), Flavor::Mariadb)
            };
            let s = server(engine, flavor, host, port, admin, guard);
            // The module's readiness message can come before root accepts TCP logins.
            wait_for_login(&s).await.map_err(Attempt::Fatal)?;
            Ok(s)
        }
    }
}

fn server(engine: Engine, flavor: Flavor, host: String, port: u16, admin: Credentials, guard: Box<dyn Send + Sync>) -> Server {
    Server {
        engine,
        flavor,
        endpoint: Endpoint { host, port },
        admin,
        database: DATABASE.into(),
        provider: "docker",
        startup: Duration::ZERO,
        next_object: AtomicU64::new(1),
        admin_idle: Default::default(),
        _guard: guard,
    }
}

async fn wait_for_login(s: &Server) -> Result<(), DbError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match s.admin_conn().await {
            Ok(c) => {
                c.close().await;
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Whether a Docker engine answers (within 5 s), and which of the database images it has:
/// for `rotcheck doctor`. The error is one line saying what failed.
pub async fn engine_status() -> Result<Vec<String>, String> {
    use bollard::query_parameters::ListImagesOptionsBuilder;
    let docker = bollard::Docker::connect_with_defaults().map_err(|e| format!("no Docker client: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("the Docker engine does not answer: {e}")),
        Err(_) => return Err("the Docker engine did not answer within 5 s".into()),
    }
    let images = tokio::time::timeout(Duration::from_secs(5), docker.list_images(Some(ListImagesOptionsBuilder::default().build())))
        .await
        .map_err(|_| "listing images timed out".to_string())?
        .map_err(|e| format!("cannot list images: {e}"))?;
    let mut wanted = Vec::new();
    for engine in [Engine::Postgres, Engine::Mysql] {
        for name in default_images(engine) {
            if images.iter().any(|i| i.repo_tags.iter().any(|t| t == name)) {
                wanted.push(name.to_string());
            }
        }
    }
    Ok(wanted)
}

/// Removes containers that a rotcheck process on this machine started and that outlived it
/// (after a SIGKILL). Best effort: returns how many it removed.
pub async fn sweep_stale_containers() -> usize {
    use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
    let Ok(docker) = bollard::Docker::connect_with_defaults() else { return 0 };
    let filters = HashMap::from([("label".to_string(), vec![OWNER_LABEL.to_string()])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let Ok(Ok(list)) = tokio::time::timeout(Duration::from_secs(5), docker.list_containers(Some(options))).await else {
        return 0;
    };
    let me = hostname();
    let mut removed = 0;
    for c in list {
        let labels = c.labels.unwrap_or_default();
        if labels.get(HOST_LABEL) != Some(&me) {
            continue;
        }
        let Some(pid) = labels.get(OWNER_LABEL).and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if alive {
            continue;
        }
        if let Some(id) = c.id {
            let opts = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
            if docker.remove_container(&id, Some(opts)).await.is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag() {
        assert_eq!(split_image("rotcheck/postgres:15"), ("rotcheck/postgres".into(), "15".into()));
        assert_eq!(split_image("postgres"), ("postgres".into(), "latest".into()));
        assert_eq!(split_image("registry:5000/team/pg:16-alpine"), ("registry:5000/team/pg".into(), "16-alpine".into()));
        assert_eq!(split_image("registry:5000/team/pg"), ("registry:5000/team/pg".into(), "latest".into()));
    }
}
