//! `rotcheck init <DIR>`: looks at a function's directory (runtime, handler, database driver,
//! whether it rotates alternating users) and writes a commented rotcheck.toml next to it.

use crate::UsageError;
use crate::config::{FILE_NAME, TEMPLATE};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `rotcheck init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The function's directory.
    pub dir: PathBuf,
    /// Overwrite an existing rotcheck.toml.
    #[arg(long)]
    pub force: bool,
}

/// What `init` found out about a function.
#[derive(Debug, PartialEq, Eq)]
pub struct Detected {
    pub runtime: String,
    pub handler: String,
    pub engine: String,
    pub strategy: String,
}

/// Detects the runtime (a Python handler file), the handler (`def lambda_handler` in
/// lambda_function.py, else in the one .py file that has it), the engine (the driver in
/// requirements.txt or the imports) and the strategy (`masterarn` in the code).
pub fn detect(dir: &Path) -> Result<Detected, UsageError> {
    if !dir.is_dir() {
        return Err(UsageError(format!("{} is not a directory; pass the directory that holds the function's code", dir.display())));
    }
    let mut py: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    py.sort();
    if py.is_empty() {
        let other = ["package.json", "go.mod", "pom.xml", "Cargo.toml"].into_iter().find(|f| dir.join(f).exists());
        return Err(UsageError(match other {
            Some(f) => format!("{} holds {f}, not a Python function: `rotcheck check` runs Python functions; see README (other runtimes)", dir.display()),
            None => format!("no Python file in {}; point init at the directory of lambda_function.py", dir.display()),
        }));
    }
    let text = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let with_handler: Vec<&PathBuf> = py.iter().filter(|p| text(p).contains("def lambda_handler(")).collect();
    let file = with_handler
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "lambda_function.py"))
        .or(with_handler.first())
        .ok_or_else(|| UsageError(format!("no `def lambda_handler(` in the Python files of {}; write the handler into rotcheck.toml by hand", dir.display())))?;
    let module = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let code: String = py.iter().map(|p| text(p)).collect::<Vec<_>>().join("\n") + &text(&dir.join("requirements.txt")).to_lowercase();
    let engine = if ["pymysql", "mysql-connector", "mysqlclient", "import mysql"].iter().any(|d| code.contains(d)) {
        "mysql"
    } else {
        "postgres"
    };
    let strategy = if code.contains("masterarn") { "alternating-users" } else { "single-user" };
    Ok(Detected { runtime: "python3.11".into(), handler: format!("{module}.lambda_handler"), engine: engine.into(), strategy: strategy.into() })
}

pub fn run(args: InitArgs) -> Result<ExitCode, UsageError> {
    let d = detect(&args.dir)?;
    let path = args.dir.join(FILE_NAME);
    if path.exists() && !args.force {
        return Err(UsageError(format!("{} exists; pass --force to overwrite it", path.display())));
    }
    let text = TEMPLATE.replace("{runtime}", &d.runtime).replace("{handler}", &d.handler).replace("{engine}", &d.engine).replace("{strategy}", &d.strategy);
    std::fs::write(&path, text).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {} ({}, handler {}, {} {})", path.display(), d.runtime, d.handler, d.engine, d.strategy);
    println!("next: rotcheck check {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(p: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/python").join(p)
    }

    #[test]
    fn the_fixtures_are_detected() {
        let d = detect(&fixture("postgres-single-user")).unwrap();
        assert_eq!((d.handler.as_str(), d.engine.as_str(), d.strategy.as_str()), ("lambda_function.lambda_handler", "postgres", "single-user"));
        let d = detect(&fixture("postgres-alternating-users")).unwrap();
        assert_eq!((d.engine.as_str(), d.strategy.as_str()), ("postgres", "alternating-users"));
        let d = detect(&fixture("mysql-single-user")).unwrap();
        assert_eq!((d.engine.as_str(), d.strategy.as_str()), ("mysql", "single-user"));
        assert!(detect(&fixture("nope")).is_err());
        assert!(detect(&fixture("broken")).unwrap_err().0.contains("no Python file"));
        assert!(detect(&fixture("")).unwrap_err().0.contains("lambda_handler"));
    }
}
