//! The real target: database servers, the roles a test case rotates, and the probes that judge
//! them.
//!
//! A rotation function's job is to change a password in a real database, so rotcheck judges
//! it against a real one. An [`Engine`] is PostgreSQL or MySQL-compatible (MariaDB; the MySQL
//! 8 path exists and is untested here). A [`Provider`] brings up a [`Server`]:
//!
//! * [`docker`]: a container through testcontainers (the public images, or the ones
//!   `scripts/images/build.sh` builds offline);
//! * [`local`]: a throwaway server from the machine's own binaries in a temp dir;
//! * [`url`]: an existing server given by an admin URL;
//! * [`Auto`]: url if given, else docker, else local.
//!
//! The server is shared across test cases; each case gets a fresh role and probe table
//! ([`Server::create_role`]), dropped at teardown. The probes ([`Server::login`],
//! [`Server::can_read`], [`Server::can_write`], [`Server::privileges`]) tell authenticated from
//! authentication failed from unreachable, and compare what two roles can effectively do.
//! Between a function and the server sits a per-case [`proxy::FaultProxy`].

pub mod docker;
pub mod engine;
pub mod local;
pub mod probe;
pub mod proxy;
pub mod url;

pub use engine::{Engine, Flavor, LoginFingerprint, PrivilegeSet};
pub use probe::LoginOutcome;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A host and port, as seen from the rotcheck process.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    #[allow(missing_docs)]
    pub host: String,
    #[allow(missing_docs)]
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A user name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    #[allow(missing_docs)]
    pub user: String,
    #[allow(missing_docs)]
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// Errors of the database piece. Each message is one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No Docker daemon answered.
    #[error("Docker is not reachable ({0}); start the Docker daemon, or use --db local")]
    DockerUnavailable(String),
    /// The image is not present and could not be pulled.
    #[error("the image {image} is not available and could not be pulled ({reason}); build it with scripts/images/build.sh or pass another image")]
    ImageUnavailable {
        #[allow(missing_docs)]
        image: String,
        #[allow(missing_docs)]
        reason: String,
    },
    /// The server binaries for the local provider are missing.
    #[error("{0}")]
    BinariesMissing(String),
    /// A server did not come up.
    #[error("the {engine} server did not start: {reason}")]
    StartFailed {
        #[allow(missing_docs)]
        engine: &'static str,
        #[allow(missing_docs)]
        reason: String,
    },
    /// A bad admin URL or engine name.
    #[error("{0}")]
    Config(String),
    /// A statement of the harness failed (never one of the function under test).
    #[error("{context}: {message}")]
    Sql {
        #[allow(missing_docs)]
        context: String,
        #[allow(missing_docs)]
        message: String,
    },
}

impl DbError {
    pub(crate) fn sql(context: impl Into<String>, e: impl std::fmt::Display) -> DbError {
        DbError::Sql { context: context.into(), message: e.to_string() }
    }
}

/// A running database server and how to administer it.
pub struct Server {
    /// The engine.
    pub engine: Engine,
    /// MariaDB, MySQL or PostgreSQL, as the server reports itself.
    pub flavor: Flavor,
    /// Where rotcheck reaches the server.
    pub endpoint: Endpoint,
    /// The admin account.
    pub admin: Credentials,
    /// The database the probe tables live in.
    pub database: String,
    /// Which provider started it.
    pub provider: &'static str,
    /// How long the server took to start.
    pub startup: Duration,
    pub(crate) next_object: AtomicU64,
    /// Idle admin connections for reuse, with when each was given back (see
    /// `Server::admin_conn`); closed before the server stops.
    pub(crate) admin_idle: std::sync::Mutex<Vec<(engine::Conn, std::time::Instant)>>,
    /// Keeps the container or process alive; dropping it stops and removes the server.
    pub(crate) _guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("engine", &self.engine)
            .field("flavor", &self.flavor)
            .field("endpoint", &self.endpoint)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A handle on the same server that administers with `creds` instead of the admin account
    /// (e.g. to act as a function's master user). It does not own the server: dropping it
    /// stops nothing.
    pub fn acting_as(&self, creds: Credentials) -> Server {
        Server {
            engine: self.engine,
            flavor: self.flavor,
            endpoint: self.endpoint.clone(),
            admin: creds,
            database: self.database.clone(),
            provider: self.provider,
            startup: Duration::ZERO,
            next_object: AtomicU64::new(self.next_object.load(Ordering::Relaxed) + 1_000_000),
            admin_idle: Default::default(),
            _guard: Box::new(()),
        }
    }

    /// A process-unique number for naming probe tables.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_object.fetch_add(1, Ordering::Relaxed)
    }
}

/// A boxed future, so that [`Provider`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Brings up a database server of an engine.
pub trait Provider: Send + Sync {
    /// `docker`, `local`, `url` or `auto`.
    fn name(&self) -> &'static str;
    /// Starts (or connects to) a server.
    fn start(&self, engine: Engine) -> BoxFuture<'_, Result<Server, DbError>>;
}

/// `--db auto|docker|local|<URL>`, parsed.
pub fn provider_from_arg(arg: &str) -> Result<Box<dyn Provider>, DbError> {
    match arg {
        "auto" => Ok(Box::new(Auto::default())),
        "docker" => Ok(Box::new(docker::DockerProvider::default())),
        "local" => Ok(Box::new(local::LocalProvider::default())),
        u if u.contains("://") => Ok(Box::new(url::UrlProvider::new(u)?)),
        other => Err(DbError::Config(format!(
            "unknown database provider {other:?}; use auto, docker, local, or an admin URL such as postgres://user:password@host:5432/db"
        ))),
    }
}

/// url if given; else docker if a daemon answers and the image is present or can be pulled;
/// else local if the binaries are found (after a failed pull, with a one-line notice); else
/// one error that says what to install.
#[derive(Default)]
pub struct Auto {
    /// An admin URL, if the user gave one.
    pub url: Option<String>,
    /// Where the one-line notices go (stderr when `None`).
    pub notices: Option<std::sync::Arc<dyn Fn(&str) + Send + Sync>>,
}

impl Provider for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn start(&self, engine: Engine) -> BoxFuture<'_, Result<Server, DbError>> {
        Box::pin(async move {
            if let Some(u) = &self.url {
                return url::UrlProvider::new(u)?.start(engine).await;
            }
            let notice = |m: &str| match &self.notices {
                Some(f) => f(m),
                None => eprintln!("rotcheck: {m}"),
            };
            let docker_error = match docker::DockerProvider::default().start(engine).await {
                Ok(s) => return Ok(s),
                Err(e) => e,
            };
            match local::LocalProvider::default().start(engine).await {
                Ok(s) => {
                    if let DbError::ImageUnavailable { .. } = docker_error {
                        notice(&format!("{docker_error}; using a local {} server instead", engine.name()));
                    }
                    Ok(s)
                }
                Err(DbError::BinariesMissing(m)) => Err(DbError::BinariesMissing(format!(
                    "no {} server available: {docker_error}; and {m}",
                    engine.name()
                ))),
                Err(e) => Err(e),
            }
        })
    }
}

/// A random password for admin accounts rotcheck creates (alphanumeric, so it needs no
/// quoting anywhere).
pub(crate) fn admin_password() -> String {
    use rand::Rng;
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..24).map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char).collect()
}
