//! Probes: what a client with given credentials experiences. They tell "authenticated" from
//! "authentication failed" (a verdict about the credentials) from "unreachable" (a verdict
//! about the network, e.g. a fault of the proxy), so that a checker never mistakes one for
//! the other.

use super::engine::{Conn, connect};
use super::{Credentials, Endpoint, Engine, Server};
use serde::Serialize;
use std::time::Duration;

/// How long a probe waits for a connection. Short: a blackholed connection must not stall a
/// test case for long.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of a login attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "login", rename_all = "snake_case")]
pub enum LoginOutcome {
    /// The server accepted the credentials.
    Authenticated,
    /// The server rejected them (PostgreSQL 28P01/28000, MySQL error 1045).
    AuthenticationFailed,
    /// No answer: connection refused, reset or timed out.
    Unreachable {
        /// What the client saw.
        reason: String,
    },
    /// Anything else the server answered (e.g. a missing database).
    Failed {
        /// What the client saw.
        reason: String,
    },
}

impl LoginOutcome {
    /// Whether the login succeeded.
    pub fn ok(&self) -> bool {
        matches!(self, LoginOutcome::Authenticated)
    }
}

/// Classifies a connection error.
pub(crate) fn classify(e: &sqlx::Error) -> LoginOutcome {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            let mysql_denied = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|m| m.number() == 1045);
            if code == "28P01" || code == "28000" || mysql_denied {
                LoginOutcome::AuthenticationFailed
            } else {
                LoginOutcome::Failed { reason: d.message().to_string() }
            }
        }
        sqlx::Error::Io(io) => LoginOutcome::Unreachable { reason: io.to_string() },
        sqlx::Error::PoolTimedOut => LoginOutcome::Unreachable { reason: "timed out".into() },
        sqlx::Error::Tls(t) => LoginOutcome::Unreachable { reason: format!("TLS: {t}") },
        // The server closed or garbled the connection in the middle of the handshake: for a
        // client that is the network failing, not a verdict on the credentials.
        sqlx::Error::Protocol(p) => LoginOutcome::Unreachable { reason: p.to_string() },
        other => LoginOutcome::Failed { reason: other.to_string() },
    }
}

impl Server {
    /// Tries to log in at `at` (the server itself, or a proxy in front of it).
    pub async fn login(&self, at: &Endpoint, creds: &Credentials) -> LoginOutcome {
        self.login_within(at, creds, PROBE_TIMEOUT).await
    }

    /// [`Server::login`] with its own time limit (a blackholed connection takes all of it).
    pub async fn login_within(&self, at: &Endpoint, creds: &Credentials, timeout: Duration) -> LoginOutcome {
        match connect(self.engine, at, creds, None, timeout).await {
            Ok(c) => {
                c.close().await;
                LoginOutcome::Authenticated
            }
            Err(e) => classify(&e),
        }
    }

    /// Whether `creds` can read `table` (at the server itself).
    pub async fn can_read(&self, creds: &Credentials, table: &str) -> Result<bool, LoginOutcome> {
        Ok(self.try_statements(creds, &[read_sql(table)]).await?[0])
    }

    /// Whether `creds` can write `table`: an insert of a probe row.
    pub async fn can_write(&self, creds: &Credentials, table: &str) -> Result<bool, LoginOutcome> {
        Ok(self.try_statements(creds, &[write_sql(table)]).await?[0])
    }

    /// [`Server::can_read`] and [`Server::can_write`] in one session: one login instead of
    /// two (a login is the expensive part; the runner asks both after every rotation).
    pub async fn can_read_and_write(&self, creds: &Credentials, table: &str) -> Result<(bool, bool), LoginOutcome> {
        let ok = self.try_statements(creds, &[read_sql(table), write_sql(table)]).await?;
        Ok((ok[0], ok[1]))
    }

    /// Whether the role `user` can read and write `table`, asked on a pooled admin connection
    /// as that role (`SET LOCAL ROLE` in a transaction per statement) instead of in a session
    /// of its own: the server checks the role's privileges as it does after a login, without
    /// the login's cost (a backend and a SCRAM exchange). For a caller that already knows the
    /// role's password logs in (a login probe said so). PostgreSQL, with an admin that may
    /// become the role; `None` otherwise, and then the caller logs in. Settings attached to
    /// the role (`ALTER ROLE ... SET`) apply at a login, not here.
    pub async fn role_can_read_and_write(&self, user: &str, table: &str) -> Option<(bool, bool)> {
        if self.engine != Engine::Postgres {
            return None;
        }
        let mut c = self.admin_conn().await.ok()?;
        let who = c.ident(user).await.ok()?;
        let mut ok = Vec::with_capacity(2);
        for sql in [read_sql(table), write_sql(table)] {
            c.execute("BEGIN").await.ok()?;
            if c.execute(&format!("SET LOCAL ROLE {who}")).await.is_err() {
                c.execute("ROLLBACK").await.ok()?;
                self.release(c).await;
                return None;
            }
            let done = c.execute(&sql).await.is_ok();
            c.execute(if done { "COMMIT" } else { "ROLLBACK" }).await.ok()?;
            ok.push(done);
        }
        self.release(c).await;
        Some((ok[0], ok[1]))
    }

    /// Runs each statement as `creds` in one session (autocommit: a refused one does not
    /// affect the next); for each, `false` when the server refused it. `Err` when the login
    /// itself did not succeed.
    async fn try_statements(&self, creds: &Credentials, sql: &[String]) -> Result<Vec<bool>, LoginOutcome> {
        let db = Some(self.database.as_str());
        let mut c: Conn = connect(self.engine, &self.endpoint, creds, db, PROBE_TIMEOUT).await.map_err(|e| classify(&e))?;
        let mut ok = Vec::with_capacity(sql.len());
        for s in sql {
            ok.push(c.execute(s).await.is_ok());
        }
        c.close().await;
        Ok(ok)
    }
}

fn read_sql(table: &str) -> String {
    format!("SELECT count(*) FROM {table}")
}

fn write_sql(table: &str) -> String {
    format!("INSERT INTO {table} (note) VALUES ('rotcheck probe')")
}

/// The engine's name in a login-failure message a person reads.
pub fn describe(engine: Engine, outcome: &LoginOutcome) -> String {
    match outcome {
        LoginOutcome::Authenticated => format!("{} accepted the credentials", engine.name()),
        LoginOutcome::AuthenticationFailed => format!("{} rejected the credentials", engine.name()),
        LoginOutcome::Unreachable { reason } => format!("{} was unreachable: {reason}", engine.name()),
        LoginOutcome::Failed { reason } => format!("{} refused the login: {reason}", engine.name()),
    }
}
