//! `url`: an existing server, given by an admin URL such as
//! `postgres://admin:secret@db.internal:5432/rotcheck` or `mysql://root:secret@127.0.0.1:3306/rotcheck`.
//! rotcheck creates and drops its per-case roles and probe tables there, and nothing else.

use super::engine::{Engine, Flavor, connect};
use super::{BoxFuture, Credentials, DbError, Endpoint, Provider, Server};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// Connects to an existing server.
#[derive(Clone)]
pub struct UrlProvider {
    engine: Engine,
    endpoint: Endpoint,
    admin: Credentials,
    database: String,
}

impl std::fmt::Debug for UrlProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlProvider").field("engine", &self.engine).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl UrlProvider {
    /// Parses an admin URL; the scheme names the engine.
    pub fn new(u: &str) -> Result<UrlProvider, DbError> {
        let bad = |why: &str| DbError::Config(format!("bad database URL ({why}); expected e.g. postgres://user:password@host:5432/db"));
        let parsed = url::Url::parse(u).map_err(|e| bad(&e.to_string()))?;
        let engine = match parsed.scheme() {
            "postgres" | "postgresql" => Engine::Postgres,
            "mysql" | "mariadb" => Engine::Mysql,
            other => return Err(bad(&format!("unknown scheme {other:?}"))),
        };
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?.trim_matches(['[', ']']).to_string();
        let port = parsed.port().unwrap_or(engine.default_port());
        let decode = |s: &str| -> Result<String, DbError> {
            percent_decode(s).ok_or_else(|| bad("invalid percent-encoding"))
        };
        let user = decode(parsed.username())?;
        if user.is_empty() {
            return Err(bad("no user name"));
        }
        let password = decode(parsed.password().unwrap_or(""))?;
        let database = match parsed.path().trim_start_matches('/') {
            "" => match engine {
                Engine::Postgres => "postgres".to_string(),
                Engine::Mysql => "rotcheck".to_string(),
            },
            db => decode(db)?,
        };
        Ok(UrlProvider { engine, endpoint: Endpoint { host, port }, admin: Credentials { user, password }, database })
    }

    /// The engine the URL names.
    pub fn engine(&self) -> Engine {
        self.engine
    }
}

impl Provider for UrlProvider {
    fn name(&self) -> &'static str {
        "url"
    }

    fn start(&self, engine: Engine) -> BoxFuture<'_, Result<Server, DbError>> {
        Box::pin(async move {
            if engine != self.engine {
                return Err(DbError::Config(format!(
                    "the database URL is a {} server but the function needs {}",
                    self.engine.name(),
                    engine.name()
                )));
            }
            let started = Instant::now();
            let db = match engine {
                Engine::Postgres => Some(self.database.as_str()),
                Engine::Mysql => None,
            };
            let mut c = connect(engine, &self.endpoint, &self.admin, db, Duration::from_secs(10))
                .await
                .map_err(|e| DbError::StartFailed { engine: "database", reason: format!("cannot log in at {}: {e}", self.endpoint) })?;
            let flavor = match engine {
                Engine::Postgres => Flavor::Postgres,
                Engine::Mysql => {
                    let v = match &mut c {
                        super::engine::Conn::My(my) => sqlx::query_scalar::<_, String>("SELECT CAST(VERSION() AS CHAR)")
                            .fetch_one(my)
                            .await
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    let _ = c.execute(&format!("CREATE DATABASE IF NOT EXISTS `{}`", self.database.replace('`', "``"))).await;
                    if v.contains("MariaDB") { Flavor::Mariadb } else { Flavor::Mysql }
                }
            };
            c.close().await;
            Ok(Server {
                engine,
                flavor,
                endpoint: self.endpoint.clone(),
                admin: self.admin.clone(),
                database: self.database.clone(),
                provider: "url",
                startup: started.elapsed(),
                next_object: AtomicU64::new(1),
                admin_idle: Default::default(),
                _guard: Box::new(()),
            })
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_admin_urls() {
        let p = UrlProvider::new("postgres://adm%40in:p%3Ass@db.local:6543/app").unwrap();
        assert_eq!(p.engine, Engine::Postgres);
        assert_eq!(p.endpoint, Endpoint { host: "db.local".into(), port: 6543 });
        assert_eq!(p.admin.user, "adm@in");
        assert_eq!(p.admin.password, "p:ss");
        assert_eq!(p.database, "app");
        let m = UrlProvider::new("mariadb://root@127.0.0.1").unwrap();
        assert_eq!((m.engine, m.endpoint.port, m.database.as_str()), (Engine::Mysql, 3306, "rotcheck"));
        for bad in ["oracle://x@h/db", "postgres://h/db", "not a url"] {
            assert!(UrlProvider::new(bad).is_err(), "{bad}");
        }
        assert!(!format!("{p:?}").contains("p:ss"));
    }
}
