//! What differs between engines: connecting, quoting, creating and dropping roles and probe
//! tables, name limits, and what a role can effectively do.
//!
//! Every statement that carries a name or a password is built by the server itself
//! (`format('%I %L')` on PostgreSQL, `QUOTE()` on MySQL), never by string pasting here, so the
//! harness has none of the quoting bugs it looks for in functions (F09). Statement logging is
//! off on every connection, so passwords never reach a log.

use super::{Credentials, DbError, Endpoint, Server};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// A database engine family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL (and Aurora PostgreSQL).
    Postgres,
    /// MySQL-compatible: MariaDB, MySQL, Aurora MySQL.
    Mysql,
}

/// Which server answered: the engines' dialects differ in user-name limits and roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    #[allow(missing_docs)]
    Postgres,
    #[allow(missing_docs)]
    Mariadb,
    /// MySQL 8 or later: the code path exists and is untested on this project's machines.
    Mysql,
}

impl Engine {
    /// The engine of a secret's `engine` field (spec 2.1-2.3): `postgres`,
    /// `aurora-postgresql`, `mysql`, `aurora-mysql`, `mariadb`.
    pub fn from_secret_engine(s: &str) -> Option<Engine> {
        match s {
            "postgres" | "aurora-postgresql" => Some(Engine::Postgres),
            "mysql" | "aurora-mysql" | "mariadb" => Some(Engine::Mysql),
            _ => None,
        }
    }

    /// Parses `--engine` (`postgres` or `mysql`, plus the secret spellings).
    pub fn parse(s: &str) -> Result<Engine, DbError> {
        match s {
            "postgresql" | "pg" => Ok(Engine::Postgres),
            other => Engine::from_secret_engine(other).ok_or_else(|| {
                DbError::Config(format!("unknown engine {other:?}; use postgres or mysql (MariaDB and MySQL)"))
            }),
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }

    /// The port servers of this engine listen on by default.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }
    }
}

impl Flavor {
    /// Whether `name` fits the engine's limit on role/user names: 63 bytes on PostgreSQL
    /// (NAMEDATALEN - 1; longer names are silently truncated, which is how F10 bites), 80
    /// characters on MariaDB, 32 on MySQL 8.
    pub fn name_fits(self, name: &str) -> bool {
        match self {
            Flavor::Postgres => name.len() <= 63,
            Flavor::Mariadb => name.chars().count() <= 80,
            Flavor::Mysql => name.chars().count() <= 32,
        }
    }

    /// `base` cut to fit the name limit together with `tag` (appended), on a character
    /// boundary: parallel cases use distinct tags, so their names never collide.
    pub fn tagged_name(self, base: &str, tag: &str) -> String {
        let mut cut = base.to_string();
        while !self.name_fits(&format!("{cut}{tag}")) {
            cut.pop();
        }
        format!("{cut}{tag}")
    }
}

/// A connection of either engine.
pub(crate) enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

/// Connects with `creds`. No TLS (loopback and containers); `url` servers choose their own.
pub(crate) async fn connect(
    engine: Engine,
    at: &Endpoint,
    creds: &Credentials,
    database: Option<&str>,
    timeout: Duration,
) -> Result<Conn, sqlx::Error> {
    let fut = async {
        match engine {
            Engine::Postgres => {
                // new_without_pgpass + every field set: PG* variables and .pgpass never change
                // which credentials are tried.
                let mut o = PgConnectOptions::new_without_pgpass()
                    .host(&at.host)
                    .port(at.port)
                    .username(&creds.user)
                    .password(&creds.password)
                    .ssl_mode(PgSslMode::Disable)
                    .application_name("rotcheck")
                    .database(database.unwrap_or("postgres"));
                o = o.disable_statement_logging();
                Ok(Conn::Pg(PgConnection::connect_with(&o).await?))
            }
            Engine::Mysql => {
                let mut o = MySqlConnectOptions::new()
                    .host(&at.host)
                    .port(at.port)
                    .username(&creds.user)
                    .password(&creds.password)
                    .ssl_mode(MySqlSslMode::Disabled);
                if let Some(db) = database {
                    o = o.database(db);
                }
                o = o.disable_statement_logging();
                Ok(Conn::My(MySqlConnection::connect_with(&o).await?))
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

impl Conn {
    pub(crate) async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            // Audited: every name and password in `sql` was quoted by the server (see above).
            Conn::Pg(c) => sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(c).await.map(|_| ()),
            Conn::My(c) => sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(c).await.map(|_| ()),
        }
    }

    /// Whether the connection still answers.
    pub(crate) async fn ping(&mut self) -> bool {
        match self {
            Conn::Pg(c) => c.ping().await.is_ok(),
            Conn::My(c) => c.ping().await.is_ok(),
        }
    }

    pub(crate) async fn close(self) {
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
        };
    }

    /// One text value from a query with text parameters.
    async fn scalar(&mut self, sql: &'static str, args: &[&str]) -> Result<String, sqlx::Error> {
        match self {
            Conn::Pg(c) => {
                let mut q = sqlx::query_scalar::<_, String>(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(c).await
            }
            Conn::My(c) => {
                let mut q = sqlx::query_scalar::<_, String>(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(c).await
            }
        }
    }

    /// A string literal for `s`, made by the server.
    pub(crate) async fn literal(&mut self, s: &str) -> Result<String, sqlx::Error> {
        match self {
            Conn::Pg(_) => self.scalar("SELECT quote_literal($1::text)", &[s]).await,
            Conn::My(_) => self.scalar("SELECT CAST(QUOTE(?) AS CHAR)", &[s]).await,
        }
    }

    /// An identifier for `s`, made by the server (PostgreSQL) or by the MySQL backtick rule.
    pub(crate) async fn ident(&mut self, s: &str) -> Result<String, sqlx::Error> {
        match self {
            Conn::Pg(_) => self.scalar("SELECT quote_ident($1::text)", &[s]).await,
            // MySQL has no QUOTE_IDENT; doubling backticks is its whole rule.
            Conn::My(_) => Ok(format!("`{}`", s.replace('`', "``"))),
        }
    }
}

/// A role a test case created: its name and probe table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The role (PostgreSQL) or user (MySQL; host `%`) name.
    pub name: String,
    /// The probe table it can read and write, qualified and quoted.
    pub table: String,
}

/// What a role can effectively do: `(object, privilege)` pairs, through role memberships too.
/// Two roles with equal sets are interchangeable for an application (P5).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrivilegeSet(pub BTreeSet<(String, String)>);

impl PrivilegeSet {
    /// What `self` has and `other` lacks, and the reverse.
    pub fn diff(&self, other: &PrivilegeSet) -> (Vec<(String, String)>, Vec<(String, String)>) {
        (
            self.0.difference(&other.0).cloned().collect(),
            other.0.difference(&self.0).cloned().collect(),
        )
    }
}

/// What decides whether a user's passwords log in, as the server holds it: on PostgreSQL the
/// role's password verifier, LOGIN, VALID UNTIL (and whether it has passed), connection limit
/// and memberships, and every database's access list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFingerprint {
    /// An opaque digest of all that: equal digests mean a password that logged in (or was
    /// refused) still does.
    pub digest: String,
    /// VALID UNTIL is a finite time, so the verdicts change when it passes, with no statement
    /// run: the digest holds only at the instant it was read.
    pub expires: bool,
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Idle admin connections kept per server.
const ADMIN_IDLE_MAX: usize = 8;
/// An idle admin connection younger than this is used without a ping first.
const ADMIN_FRESH: Duration = Duration::from_secs(2);

impl Server {
    /// An admin connection to the probe database: an idle one that still answers, else a new
    /// one. Give it back with [`Server::release`] when done; a connection that hit an error is
    /// simply dropped. Every case creates and drops roles, and a login costs the server more
    /// than the statements.
    pub(crate) async fn admin_conn(&self) -> Result<Conn, DbError> {
        loop {
            let idle = self.admin_idle.lock().expect("admin pool lock").pop();
            let Some((mut c, since)) = idle else { break };
            // One given back moments ago to a server rotcheck started still answers (nothing
            // there drops it); an older one, or one to a server of the user's (behind a
            // pooler, say), is asked first, which costs a round trip.
            if (self.provider != "url" && since.elapsed() < ADMIN_FRESH) || c.ping().await {
                return Ok(c);
            }
        }
        connect(self.engine, &self.endpoint, &self.admin, Some(&self.database), ADMIN_TIMEOUT)
            .await
            .map_err(|e| DbError::sql(format!("admin login to {} at {}", self.engine.name(), self.endpoint), e))
    }

    /// Returns an admin connection for reuse (a few are kept; the rest close).
    pub(crate) async fn release(&self, c: Conn) {
        let extra = {
            let mut idle = self.admin_idle.lock().expect("admin pool lock");
            if idle.len() < ADMIN_IDLE_MAX {
                idle.push((c, std::time::Instant::now()));
                None
            } else {
                Some(c)
            }
        };
        if let Some(c) = extra {
            c.close().await;
        }
    }

    /// What decides, per user, whether a password logs in (see [`LoginFingerprint`]). A user
    /// that does not exist gets none. `None` when it cannot be read (MySQL and MariaDB, an
    /// admin account that is not a superuser): then the caller must not assume anything.
    pub async fn login_fingerprints(&self, users: &[String]) -> Option<HashMap<String, LoginFingerprint>> {
        if self.engine != Engine::Postgres {
            return None;
        }
        let mut c = self.admin_conn().await.ok()?;
        let Conn::Pg(pg) = &mut c else { return None };
        let rows: Result<Vec<(String, String, bool)>, _> = sqlx::query_as(
            "SELECT a.rolname, encode(sha256(convert_to(concat_ws('|', \
                coalesce(a.rolpassword, '<none>'), a.rolcanlogin, coalesce(a.rolvaliduntil::text, '<none>'), \
                a.rolvaliduntil IS NULL OR a.rolvaliduntil > now(), a.rolconnlimit, \
                (SELECT coalesce(string_agg(m.roleid::text, ',' ORDER BY m.roleid), '') FROM pg_auth_members m WHERE m.member = a.oid), \
                (SELECT string_agg(d.datname || '=' || coalesce(d.datacl::text, '<default>'), ',' ORDER BY d.datname) FROM pg_database d)), \
                'UTF8')), 'hex'), \
                coalesce(a.rolvaliduntil < 'infinity', false) \
             FROM pg_authid a WHERE a.rolname = ANY($1)",
        )
        .bind(users)
        .fetch_all(&mut *pg)
        .await;
        match rows {
            Ok(rows) => {
                self.release(c).await;
                Some(rows.into_iter().map(|(user, digest, expires)| (user, LoginFingerprint { digest, expires })).collect())
            }
            Err(_) => None,
        }
    }

    /// Whether every TCP login to this server is checked against the role's own password
    /// verifier: each host rule of pg_hba.conf uses `scram-sha-256`,
    /// `md5`, `password` or `reject`, and none has an error. Then a role's one verifier decides
    /// all its passwords at once, and a password that differs from one that logs in is refused
    /// (see the runner's probe memo). `false` when it cannot be read (MySQL and MariaDB, an
    /// admin that is not a superuser) or any rule does something else (`trust`, `ldap`, ...).
    /// The rules are the file's (`pg_hba_file_rules`), which are the loaded ones unless the
    /// file was edited and not yet reloaded: never on the servers rotcheck starts.
    pub async fn logins_check_passwords(&self) -> bool {
        if self.engine != Engine::Postgres {
            return false;
        }
        let Ok(mut c) = self.admin_conn().await else { return false };
        let Conn::Pg(pg) = &mut c else { return false };
        // (type, auth_method, error) of each rule.
        type Rule = (Option<String>, Option<String>, Option<String>);
        let rows: Result<Vec<Rule>, _> = sqlx::query_as("SELECT type, auth_method, error FROM pg_hba_file_rules").fetch_all(&mut *pg).await;
        let Ok(rows) = rows else { return false };
        self.release(c).await;
        let host_rules: Vec<_> = rows.iter().filter(|(kind, _, _)| kind.as_deref() != Some("local")).collect();
        !host_rules.is_empty()
            && host_rules.iter().all(|(_, method, error)| {
                error.is_none() && matches!(method.as_deref(), Some("scram-sha-256" | "md5" | "password" | "reject"))
            })
    }

    /// Creates a login role `name` with `password` and a probe table it can read and write.
    pub async fn create_role(&self, name: &str, password: &str) -> Result<Role, DbError> {
        if !self.flavor.name_fits(name) {
            return Err(DbError::Config(format!("the role name {name:?} is longer than {:?} allows", self.flavor)));
        }
        let mut c = self.admin_conn().await?;
        let table_name = format!("rotcheck_probe_{}_{}", std::process::id(), self.next_id());
        let ctx = |what: &str| format!("create role {name:?}: {what}");
        let who = self.grantee(&mut c, name).await.map_err(|e| DbError::sql(ctx("quote"), e))?;
        let pw = c.literal(password).await.map_err(|e| DbError::sql(ctx("quote"), e))?;
        let table = match self.engine {
            Engine::Postgres => format!("public.{}", c.ident(&table_name).await.map_err(|e| DbError::sql(ctx("quote"), e))?),
            Engine::Mysql => format!("`{}`.`{}`", self.database, table_name),
        };
        let statements = match self.engine {
            Engine::Postgres => vec![
                format!("CREATE ROLE {who} WITH LOGIN PASSWORD {pw}"),
                format!("CREATE TABLE {table} (id serial PRIMARY KEY, note text)"),
                format!("ALTER TABLE {table} OWNER TO {who}"),
            ],
            Engine::Mysql => vec![
                format!("CREATE USER {who} IDENTIFIED BY {pw}"),
                format!("CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)"),
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {who}"),
            ],
        };
        for s in statements {
            // The error text of CREATE ROLE could echo the statement; report the step only.
            c.execute(&s).await.map_err(|e| DbError::sql(ctx(first_words(&s)), sanitize(&e, password)))?;
        }
        self.release(c).await;
        Ok(Role { name: name.to_string(), table })
    }

    /// Creates login user `clone` with the privileges of `of`, the way alternating-users
    /// rotation functions make their second user: on PostgreSQL a role membership
    /// (`GRANT of TO clone`), on MySQL/MariaDB the grants of `of` replayed for `clone`.
    pub async fn create_member(&self, of: &str, clone: &str, password: &str) -> Result<(), DbError> {
        let mut c = self.admin_conn().await?;
        let ctx = format!("create {clone:?} as a member of {of:?}");
        let who = self.grantee(&mut c, clone).await.map_err(|e| DbError::sql(&ctx, e))?;
        let pw = c.literal(password).await.map_err(|e| DbError::sql(&ctx, e))?;
        match self.engine {
            Engine::Postgres => {
                let role = c.ident(of).await.map_err(|e| DbError::sql(&ctx, e))?;
                c.execute(&format!("CREATE ROLE {who} WITH LOGIN PASSWORD {pw}")).await.map_err(|e| DbError::sql(&ctx, sanitize(&e, password)))?;
                c.execute(&format!("GRANT {role} TO {who}")).await.map_err(|e| DbError::sql(&ctx, e))?;
            }
            Engine::Mysql => {
                // MySQL users cannot be members of users: the clone gets the user's grants
                // replayed (as MySQL alternating-users functions do, from SHOW GRANTS).
                c.execute(&format!("CREATE USER {who} IDENTIFIED BY {pw}")).await.map_err(|e| DbError::sql(&ctx, sanitize(&e, password)))?;
                let Conn::My(my) = &mut c else { unreachable!("engine is mysql") };
                let of_lit = mysql_quote(&mut *my, of).await.map_err(|e| DbError::sql(&ctx, e))?;
                let grants: Vec<String> = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("SHOW GRANTS FOR {of_lit}@'%'")))
                    .fetch_all(&mut *my)
                    .await
                    .map_err(|e| DbError::sql(&ctx, e))?;
                let of_grantee = format!("`{}`@`%`", of.replace('`', "``"));
                for g in grants {
                    if g.starts_with("GRANT USAGE ON *.*") {
                        continue;
                    }
                    let Some(i) = g.find(&format!(" TO {of_grantee}")) else { continue };
                    let tail = &g[i + 4 + of_grantee.len()..];
                    let stmt = format!("{} TO {who}{tail}", &g[..i]);
                    c.execute(&stmt).await.map_err(|e| DbError::sql(&ctx, e))?;
                }
            }
        }
        self.release(c).await;
        Ok(())
    }

    /// Creates the master account an alternating-users function logs in with to create and
    /// re-password the clone (the `masterarn` secret of spec 2.2): on PostgreSQL a login role
    /// with CREATEROLE that holds `user` WITH ADMIN OPTION (so it may grant it, also on 16+);
    /// on MySQL a user that may create users and pass on its grants in the probe database.
    /// Never the server's own admin account, so the function's reach stays bounded.
    pub async fn create_master(&self, name: &str, password: &str, user: &str) -> Result<(), DbError> {
        let mut c = self.admin_conn().await?;
        let ctx = format!("create master {name:?}");
        let who = self.grantee(&mut c, name).await.map_err(|e| DbError::sql(&ctx, e))?;
        let pw = c.literal(password).await.map_err(|e| DbError::sql(&ctx, e))?;
        let stmts = match self.engine {
            Engine::Postgres => {
                let u = c.ident(user).await.map_err(|e| DbError::sql(&ctx, e))?;
                vec![
                    format!("CREATE ROLE {who} WITH LOGIN CREATEROLE PASSWORD {pw}"),
                    format!("GRANT {u} TO {who} WITH ADMIN OPTION"),
                ]
            }
            Engine::Mysql => vec![
                format!("CREATE USER {who} IDENTIFIED BY {pw}"),
                format!("GRANT CREATE USER ON *.* TO {who}"),
                // SHOW GRANTS FOR another user reads the mysql schema.
                format!("GRANT SELECT ON `mysql`.* TO {who}"),
                format!("GRANT ALL PRIVILEGES ON `{}`.* TO {who} WITH GRANT OPTION", self.database.replace('`', "``")),
            ],
        };
        for s in stmts {
            c.execute(&s).await.map_err(|e| DbError::sql(&ctx, sanitize(&e, password)))?;
        }
        self.release(c).await;
        Ok(())
    }

    /// Runs one admin statement (for tests and for setting up grants a scenario needs).
    pub async fn admin_execute(&self, sql: &str) -> Result<(), DbError> {
        let mut c = self.admin_conn().await?;
        c.execute(sql).await.map_err(|e| DbError::sql("admin statement", e))?;
        self.release(c).await;
        Ok(())
    }

    /// One text value from an admin query (for tests: where the server keeps a file, say).
    pub async fn admin_scalar(&self, sql: &'static str) -> Result<String, DbError> {
        let mut c = self.admin_conn().await?;
        let v = c.scalar(sql, &[]).await.map_err(|e| DbError::sql("admin query", e))?;
        self.release(c).await;
        Ok(v)
    }

    /// Sets a role's password as an admin (to put the database in a state a scenario needs).
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), DbError> {
        let mut c = self.admin_conn().await?;
        let ctx = format!("set the password of {name:?}");
        let who = self.grantee(&mut c, name).await.map_err(|e| DbError::sql(&ctx, e))?;
        let pw = c.literal(password).await.map_err(|e| DbError::sql(&ctx, e))?;
        let sql = match self.engine {
            Engine::Postgres => format!("ALTER ROLE {who} WITH PASSWORD {pw}"),
            Engine::Mysql => format!("ALTER USER {who} IDENTIFIED BY {pw}"),
        };
        c.execute(&sql).await.map_err(|e| DbError::sql(&ctx, sanitize(&e, password)))?;
        self.release(c).await;
        Ok(())
    }

    /// Drops a role (or user) if it exists, with everything it owns and its sessions.
    pub async fn drop_role(&self, name: &str) -> Result<(), DbError> {
        let mut c = self.admin_conn().await?;
        let ctx = format!("drop role {name:?}");
        let who = self.grantee(&mut c, name).await.map_err(|e| DbError::sql(&ctx, e))?;
        match self.engine {
            Engine::Postgres => {
                let exists = match &mut c {
                    Conn::Pg(pg) => sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
                        .bind(name)
                        .fetch_optional(&mut *pg)
                        .await
                        .map_err(|e| DbError::sql(&ctx, e))?
                        .is_some(),
                    Conn::My(_) => unreachable!("engine is postgres"),
                };
                if exists {
                    if let Conn::Pg(pg) = &mut c {
                        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
                            .bind(name)
                            .execute(&mut *pg)
                            .await
                            .map_err(|e| DbError::sql(&ctx, e))?;
                    }
                    c.execute(&format!("DROP OWNED BY {who} CASCADE")).await.map_err(|e| DbError::sql(&ctx, e))?;
                    c.execute(&format!("DROP ROLE {who}")).await.map_err(|e| DbError::sql(&ctx, e))?;
                }
            }
            Engine::Mysql => {
                c.execute(&format!("DROP USER IF EXISTS {who}")).await.map_err(|e| DbError::sql(&ctx, e))?;
            }
        }
        self.release(c).await;
        Ok(())
    }

    /// Drops a probe table.
    pub async fn drop_table(&self, table: &str) -> Result<(), DbError> {
        self.admin_execute(&format!("DROP TABLE IF EXISTS {table}")).await
    }

    /// What a role can effectively do (see [`PrivilegeSet`]).
    pub async fn privileges(&self, name: &str) -> Result<PrivilegeSet, DbError> {
        let mut c = self.admin_conn().await?;
        let ctx = format!("privileges of {name:?}");
        let set = match &mut c {
            Conn::Pg(pg) => pg_privileges(pg, name).await.map_err(|e| DbError::sql(&ctx, e))?,
            Conn::My(my) => mysql_privileges(my, self.flavor, name).await.map_err(|e| DbError::sql(&ctx, e))?,
        };
        self.release(c).await;
        Ok(set)
    }

    /// The grantee form of a name: a quoted role (PostgreSQL) or `'user'@'%'` (MySQL).
    async fn grantee(&self, c: &mut Conn, name: &str) -> Result<String, sqlx::Error> {
        match self.engine {
            Engine::Postgres => c.ident(name).await,
            Engine::Mysql => Ok(format!("{}@'%'", c.literal(name).await?)),
        }
    }
}

/// PostgreSQL: privileges on tables, schemas and the database through inheritance
/// (`has_*_privilege`), the rights of owning an object (held by members of the owner), and the
/// role attributes (which are not inherited).
async fn pg_privileges(c: &mut PgConnection, role: &str) -> Result<PrivilegeSet, sqlx::Error> {
    let rows = sqlx::query(
        r#"
        SELECT format('table %I.%I', n.nspname, c.relname), p.priv
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) AS p(priv)
         WHERE c.relkind IN ('r','p','v','m','f')
           AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_%'
           AND has_table_privilege($1, c.oid, p.priv)
        UNION ALL
        SELECT format('table %I.%I', n.nspname, c.relname), 'OWNER RIGHTS'
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r','p','v','m','f','S')
           AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_%'
           AND pg_has_role($1, c.relowner, 'USAGE')
        UNION ALL
        SELECT format('sequence %I.%I', n.nspname, c.relname), p.priv
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN unnest(ARRAY['USAGE','SELECT','UPDATE']) AS p(priv)
         WHERE c.relkind = 'S'
           AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_%'
           AND has_sequence_privilege($1, c.oid, p.priv)
        UNION ALL
        SELECT format('schema %I', n.nspname), p.priv
          FROM pg_namespace n CROSS JOIN unnest(ARRAY['USAGE','CREATE']) AS p(priv)
         WHERE n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_%'
           AND has_schema_privilege($1, n.oid, p.priv)
        UNION ALL
        SELECT format('database %I', current_database()), p.priv
          FROM unnest(ARRAY['CONNECT','CREATE','TEMPORARY']) AS p(priv)
         WHERE has_database_privilege($1, current_database(), p.priv)
        UNION ALL
        SELECT 'role attributes', a.attr
          FROM pg_roles r CROSS JOIN LATERAL (VALUES
                 ('SUPERUSER', r.rolsuper), ('CREATEDB', r.rolcreatedb), ('CREATEROLE', r.rolcreaterole),
                 ('REPLICATION', r.rolreplication), ('BYPASSRLS', r.rolbypassrls)) AS a(attr, has)
         WHERE r.rolname = $1 AND a.has
        "#,
    )
    .bind(role)
    .fetch_all(c)
    .await?;
    Ok(PrivilegeSet(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect()))
}

/// MySQL/MariaDB: the grants of the user and, recursively, of the roles that are active at
/// login (the default role), parsed from SHOW GRANTS.
async fn mysql_privileges(c: &mut MySqlConnection, flavor: Flavor, user: &str) -> Result<PrivilegeSet, sqlx::Error> {
    let mut set = BTreeSet::new();
    let user_lit = mysql_quote(&mut *c, user).await?;
    // (grantee, whether it is the user itself): the user follows only its default roles;
    // a role follows every role granted to it.
    let mut todo = vec![(format!("{user_lit}@'%'"), true)];
    // Roles that are active at login.
    let default_roles: Vec<String> = match flavor {
        Flavor::Mariadb => sqlx::query_scalar::<_, String>(
            "SELECT CAST(default_role AS CHAR) FROM mysql.user WHERE User = ? AND Host = '%' AND default_role <> ''",
        )
        .bind(user)
        .fetch_all(&mut *c)
        .await?,
        _ => sqlx::query_scalar::<_, String>(
            "SELECT CAST(DEFAULT_ROLE_USER AS CHAR) FROM mysql.default_roles WHERE USER = ? AND HOST = '%'",
        )
        .bind(user)
        .fetch_all(&mut *c)
        .await?,
    };
    let mut seen = BTreeSet::new();
    while let Some((grantee, is_user)) = todo.pop() {
        if !seen.insert(grantee.clone()) {
            continue;
        }
        let rows: Vec<String> = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("SHOW GRANTS FOR {grantee}")))
            .fetch_all(&mut *c)
            .await
            .or_else(|e| match &e {
                // A role that does not exist (anymore) grants nothing.
                sqlx::Error::Database(d) if d.message().contains("no such grant") || d.message().contains("There is no such grant") => Ok(vec![]),
                _ => Err(e),
            })?;
        for line in rows {
            let Some(rest) = line.strip_prefix("GRANT ") else { continue };
            match rest.split_once(" ON ") {
                Some((privs, tail)) => {
                    let object = tail.split(" TO ").next().unwrap_or("").trim().to_string();
                    for p in split_privileges(privs) {
                        if p != "USAGE" {
                            set.insert((object.clone(), p));
                        }
                    }
                    if tail.contains("WITH GRANT OPTION") {
                        set.insert((object, "GRANT OPTION".into()));
                    }
                }
                None => {
                    // GRANT `role` TO `user`@`%`: follow it if the role is active at login.
                    let role = rest.split(" TO ").next().unwrap_or("").trim().trim_matches('`').to_string();
                    if !is_user || default_roles.contains(&role) {
                        let lit = mysql_quote(&mut *c, &role).await?;
                        todo.push((lit, false));
                    }
                }
            }
        }
    }
    Ok(PrivilegeSet(set))
}

async fn mysql_quote(c: &mut MySqlConnection, s: &str) -> Result<String, sqlx::Error> {
    sqlx::query_scalar::<_, String>("SELECT CAST(QUOTE(?) AS CHAR)").bind(s).fetch_one(c).await
}

/// `SELECT, INSERT (a, b), UPDATE` -> the privileges, keeping column lists with their privilege.
fn split_privileges(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn first_words(s: &str) -> &str {
    let end = s.char_indices().filter(|(_, c)| *c == ' ').nth(1).map(|(i, _)| i).unwrap_or(s.len());
    &s[..end]
}

/// An error message with the password cut out, should the server quote it back.
fn sanitize(e: &sqlx::Error, password: &str) -> String {
    let m = e.to_string();
    if password.len() >= 4 { m.replace(password, "<password>") } else { m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_from_secret_json() {
        for (s, e) in [("postgres", Engine::Postgres), ("aurora-postgresql", Engine::Postgres), ("mysql", Engine::Mysql), ("aurora-mysql", Engine::Mysql), ("mariadb", Engine::Mysql)] {
            assert_eq!(Engine::from_secret_engine(s), Some(e));
        }
        assert!(Engine::parse("oracle").is_err());
    }

    #[test]
    fn tagged_names_fit_in_bytes_on_a_char_boundary() {
        let base = "ünïcödé-User_with \"quotes\" and spaces éééééééééééééééééééééééééé";
        let n = Flavor::Postgres.tagged_name(base, "_c0042");
        assert!(n.len() <= 63, "{} bytes", n.len());
        assert!(n.ends_with("_c0042"));
        let m = Flavor::Mysql.tagged_name(base, "_c1");
        assert!(m.chars().count() <= 32);
        assert_eq!(Flavor::Postgres.tagged_name("short", "_t"), "short_t");
    }

    #[test]
    fn privileges_split_at_top_level_commas() {
        assert_eq!(split_privileges("SELECT, INSERT (`a`, `b`), UPDATE"), vec!["SELECT", "INSERT (`a`, `b`)", "UPDATE"]);
    }
}
