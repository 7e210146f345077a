//! `rotcheck.toml`: what `rotcheck check` checks and how, so that a CI job is one command.
//! Every field is optional; flags given on the command line win over the file, the file wins
//! over the defaults. Unknown fields are an error that names them. `rotcheck init <DIR>` writes
//! a commented file (see [`TEMPLATE`]).

use crate::UsageError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file `check` looks for in the function's directory (or the current one).
pub const FILE_NAME: &str = "rotcheck.toml";

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub function: FunctionConfig,
    #[serde(default)]
    pub secret: SecretConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub check: CheckConfig,
    #[serde(default)]
    pub budget: BudgetConfig,
    #[serde(default)]
    pub serve: ServeConfig,
}

/// `[function]`: the function under test.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// Its directory, relative to the file (default: the file's directory).
    pub dir: Option<PathBuf>,
    /// `python` (python3.x): the runtime `check` runs with its own runtime client.
    pub runtime: Option<String>,
    /// `module.function`.
    pub handler: Option<String>,
    /// `runtime-api` (the only invoker `check` drives today).
    pub invoker: Option<String>,
    /// Seconds per step before the invocation is killed.
    pub timeout: Option<u64>,
    /// The function's environment (EXCLUDE_CHARACTERS, PASSWORD_LENGTH, ...).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[secret]`: what the secret looks like.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// `postgres`, `aurora-postgresql`, `mysql`, `aurora-mysql`, `mariadb`.
    pub engine: Option<String>,
    /// `single-user` or `alternating-users`.
    pub strategy: Option<String>,
}

/// `[database]`: where the database server comes from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `auto`, `local`, `docker`, or `url`.
    pub provider: Option<String>,
    /// The admin URL, with `provider = "url"`.
    pub url: Option<String>,
}

/// `[check]`: what is checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Only these properties (P1..P8, contract).
    pub only: Option<Vec<String>>,
    /// Not these.
    pub skip: Option<Vec<String>>,
    /// Whole-rotation retries after a failed step (the service default is UNCONFIRMED; 3).
    pub retries: Option<u32>,
    /// The systematic crash sweep before the generated cases.
    pub sweep: Option<bool>,
}

/// `[budget]`: how much is run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Generated cases.
    pub cases: Option<u64>,
    /// The most commands after a case's first rotation.
    pub max_commands: Option<usize>,
    /// Parallel workers (default: the number of cores).
    pub workers: Option<usize>,
    /// The most replays spent shrinking a failure.
    pub max_shrink: Option<usize>,
    /// The most seconds spent shrinking a failure.
    pub shrink_time: Option<u64>,
    /// The most seconds a whole run may take (`--time-limit`).
    pub time_limit: Option<u64>,
}

/// `[serve]`: how `rotcheck serve` listens and whose signatures it accepts (read from
/// `--config FILE` or `./rotcheck.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The port (0 picks a free one; default 4566).
    pub port: Option<u16>,
    /// The IP address to listen on (default 127.0.0.1).
    pub bind: Option<String>,
    /// The access key id clients sign with (default `test`).
    pub access_key_id: Option<String>,
    /// Its secret access key (default `test`).
    pub secret_access_key: Option<String>,
    /// Whether signatures are verified (default true).
    pub verify_signatures: Option<bool>,
}

impl Config {
    /// Reads and checks a file: one line naming the problem on any error.
    pub fn load(path: &Path) -> Result<Config, UsageError> {
        let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))
    }

    /// Parses the text of a file.
    pub fn parse(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }
        })?;
        if let Some(r) = &c.function.runtime
            && !r.starts_with("python")
        {
            return Err(format!(
                "function.runtime = {r:?}: `rotcheck check` runs Python functions (python3.x) itself; run other runtimes with `rotcheck serve` and your own harness, or as a Lambda image"
            ));
        }
        if let Some(i) = &c.function.invoker
            && i != "runtime-api"
        {
            return Err(format!("function.invoker = {i:?}: `rotcheck check` drives the runtime-api invoker only"));
        }
        match c.database.provider.as_deref() {
            None | Some("auto" | "local" | "docker") => {}
            Some("url") if c.database.url.is_some() => {}
            Some("url") => return Err("database.provider = \"url\" needs database.url (an admin URL such as postgres://user:password@host:5432/db)".into()),
            Some(other) => return Err(format!("database.provider = {other:?}: use auto, local, docker or url")),
        }
        Ok(c)
    }

    /// The `--db` value this file means.
    pub fn db(&self) -> Option<String> {
        match self.database.provider.as_deref() {
            Some("url") => self.database.url.clone(),
            Some(p) => Some(p.to_string()),
            None => self.database.url.clone(),
        }
    }
}

/// Where `check` finds its file: `--config`, else `<function dir>/rotcheck.toml`, else
/// `./rotcheck.toml` when no function was named.
pub fn find(explicit: Option<&Path>, function: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    match function {
        Some(f) => Some(f.join(FILE_NAME)).filter(|p| p.is_file()),
        None => Some(PathBuf::from(FILE_NAME)).filter(|p| p.is_file()),
    }
}

/// What `rotcheck init` writes, with the detected values filled in.
pub const TEMPLATE: &str = r#"# rotcheck.toml: how `rotcheck check` checks this rotation function.
# Every field is optional; flags on the command line win over this file. Unknown fields are
# an error. Reference: rotcheck's README ("Configuration").

[function]
# The function's directory, relative to this file.
dir = "."
# The runtime rotcheck starts the function with (its own runtime client, awslambdaric, against
# a Lambda Runtime API that rotcheck hosts). `rotcheck check` runs Python functions.
runtime = "{runtime}"
# module.function, as in the Lambda console.
handler = "{handler}"
# Seconds per step before the invocation is killed (Lambda's timeout).
timeout = 30

# The function's environment, as in Lambda.
[function.env]
# EXCLUDE_CHARACTERS = "/@\"'\\"

[secret]
# The secret JSON's `engine`: postgres, aurora-postgresql, mysql, aurora-mysql or mariadb.
engine = "{engine}"
# single-user (one user whose password changes) or alternating-users (user and user_clone
# take turns; the secret carries `masterarn`).
strategy = "{strategy}"

[database]
# auto (docker if it answers and has the image, else a throwaway local server), local,
# docker, or url (then set url = "postgres://admin:password@host:5432/postgres").
provider = "auto"

[check]
# Properties to check (P1..P8, contract); all by default.
# only = ["P1", "P2", "P3", "P4"]
# skip = ["P6"]
# Whole-rotation retries Secrets Manager makes after a failed step.
retries = 3
# The systematic crash sweep (a kill at every call and DB connection) before the cases.
sweep = true

[budget]
# Generated cases per run, and the most commands after a case's first rotation.
cases = 64
max_commands = 5
# Parallel workers (default: the number of cores).
# workers = 2
# Shrinking a failure: at most this many replays, and this many seconds.
max_shrink = 100
shrink_time = 90
# End the whole run after this many seconds (exit 2, with what was checked so far).
# time_limit = 1800
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_every_field_is_read() {
        let t = TEMPLATE.replace("{runtime}", "python3.11").replace("{handler}", "lambda_function.lambda_handler").replace("{engine}", "postgres").replace("{strategy}", "single-user");
        let c = Config::parse(&t).unwrap();
        assert_eq!(c.function.handler.as_deref(), Some("lambda_function.lambda_handler"));
        assert_eq!(c.budget.cases, Some(64));
        assert_eq!(c.check.sweep, Some(true));
        assert_eq!(c.db().as_deref(), Some("auto"));
    }

    #[test]
    fn the_serve_section() {
        let c = Config::parse("[serve]\nport = 0\nbind = \"0.0.0.0\"\naccess_key_id = \"AKIDLOCAL\"\nsecret_access_key = \"s\"\nverify_signatures = false\n").unwrap();
        assert_eq!(c.serve.port, Some(0));
        assert_eq!(c.serve.bind.as_deref(), Some("0.0.0.0"));
        assert_eq!(c.serve.access_key_id.as_deref(), Some("AKIDLOCAL"));
        assert_eq!(c.serve.secret_access_key.as_deref(), Some("s"));
        assert_eq!(c.serve.verify_signatures, Some(false));
        assert!(Config::parse("").unwrap().serve.access_key_id.is_none());
    }

    #[test]
    fn mistakes_are_one_line_naming_the_field() {
        for (text, says) in [
            ("[function]\nhandlr = \"x\"\n", "handlr"),
            ("[budget]\ncases = \"many\"\n", "line 2"),
            ("[secret\n", "line 1"),
            ("[function]\nruntime = \"nodejs20.x\"\n", "Python"),
            ("[database]\nprovider = \"url\"\n", "database.url"),
            ("[database]\nprovider = \"cloud\"\n", "cloud"),
            ("[checks]\n", "checks"),
            ("[serve]\nsecret_key = \"x\"\n", "secret_key"),
            ("[serve]\nport = 70000\n", "line 2"),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
