//! Python functions, the common case: a directory with `lambda_function.py` and
//! `requirements.txt`. rotcheck makes one venv per distinct set of requirements in a cache
//! directory (built aside and renamed into place, so parallel runs never see a half-built
//! one), adds the Lambda runtime interface client, and runs
//! `python -m awslambdaric <module>.<handler>` in the function's directory.

use super::process::LaunchSpec;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The runtime interface client rotcheck adds to every Python function's environment.
pub const AWSLAMBDARIC: &str = "awslambdaric==4.2.2";

/// Errors preparing a Python function: one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("{0} is not a directory")]
    #[allow(missing_docs)]
    NotADirectory(PathBuf),
    #[error("the handler {handler:?} needs {file} in {dir}")]
    #[allow(missing_docs)]
    MissingModule { handler: String, file: String, dir: PathBuf },
    #[error("the handler must look like module.function, got {0:?}")]
    #[allow(missing_docs)]
    BadHandler(String),
    #[error("Python 3 was not found ({0}); install python3 with the venv module, or set ROTCHECK_PYTHON")]
    #[allow(missing_docs)]
    NoPython(String),
    #[error("installing the function's requirements failed: {0}")]
    #[allow(missing_docs)]
    Install(String),
}

/// The cache directory: `$ROTCHECK_CACHE_DIR`, else `$XDG_CACHE_HOME/rotcheck`, else
/// `~/.cache/rotcheck`, else a directory under the system temp dir.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ROTCHECK_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("rotcheck");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".cache/rotcheck");
    }
    std::env::temp_dir().join("rotcheck-cache")
}

/// The Python interpreter used to make venvs: `$ROTCHECK_PYTHON`, else `python3`.
pub fn interpreter() -> String {
    std::env::var("ROTCHECK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Checks the function directory and handler, makes (or reuses) its venv, and returns how to
/// start it under a hosted Runtime API.
pub fn prepare(dir: &Path, handler: &str) -> Result<LaunchSpec, PythonError> {
    if !dir.is_dir() {
        return Err(PythonError::NotADirectory(dir.to_path_buf()));
    }
    let (module, _function) = handler.rsplit_once('.').ok_or_else(|| PythonError::BadHandler(handler.into()))?;
    if module.is_empty() || _function.is_empty() {
        return Err(PythonError::BadHandler(handler.into()));
    }
    let file = format!("{}.py", module.replace('.', "/"));
    let package = dir.join(module.replace('.', "/")).join("__init__.py");
    if !dir.join(&file).is_file() && !package.is_file() {
        return Err(PythonError::MissingModule { handler: handler.into(), file, dir: dir.to_path_buf() });
    }
    let requirements = std::fs::read_to_string(dir.join("requirements.txt")).unwrap_or_default();
    let venv = ensure_venv(&requirements)?;
    Ok(LaunchSpec {
        program: venv.join("bin/python"),
        args: vec!["-m".into(), "awslambdaric".into(), handler.into()],
        cwd: dir.to_path_buf(),
        env: vec![("PYTHONUNBUFFERED".into(), "1".into()), ("PYTHONDONTWRITEBYTECODE".into(), "1".into())],
    })
}

/// The venv for `requirements` (plus awslambdaric), made if missing.
pub fn ensure_venv(requirements: &str) -> Result<PathBuf, PythonError> {
    let python = interpreter();
    let version = Command::new(&python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .map_err(|e| PythonError::NoPython(format!("{python}: {e}")))?;
    if !version.status.success() {
        return Err(PythonError::NoPython(format!("{python} exited with {}", version.status)));
    }
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let mut h = Sha256::new();
    h.update(version.as_bytes());
    h.update(b"\0");
    h.update(AWSLAMBDARIC.as_bytes());
    h.update(b"\0");
    h.update(requirements.as_bytes());
    let key: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let root = cache_dir().join("venvs");
    let venv = root.join(format!("py{version}-{key}"));
    if venv.join(".complete").exists() {
        return Ok(venv);
    }
    // One build at a time in this process (parallel cases ask for the same venv at once);
    // other processes build aside under their own name and the first rename wins.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if venv.join(".complete").exists() {
        return Ok(venv);
    }
    std::fs::create_dir_all(&root).map_err(|e| PythonError::Install(format!("cannot create {}: {e}", root.display())))?;
    let building = root.join(format!(".build-{key}-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    let _ = std::fs::remove_dir_all(&building);
    let fail = |msg: String| {
        let _ = std::fs::remove_dir_all(&building);
        PythonError::Install(msg)
    };
    let out = Command::new(&python).args(["-m", "venv"]).arg(&building).output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!("python3 -m venv failed: {}", last_line(&out.stderr))));
    }
    let reqs = building.join("requirements.txt");
    std::fs::write(&reqs, format!("{requirements}\n{AWSLAMBDARIC}\n")).map_err(|e| fail(e.to_string()))?;
    let out = Command::new(building.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-input", "-r"])
        .arg(&reqs)
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(last_line(&out.stderr)));
    }
    std::fs::write(building.join(".complete"), "").map_err(|e| fail(e.to_string()))?;
    // venvs hard-code their path in scripts, but `bin/python -m ...` only needs the
    // interpreter symlink and pyvenv.cfg, which are path-independent: renaming is safe.
    match std::fs::rename(&building, &venv) {
        Ok(()) => Ok(venv),
        Err(_) if venv.join(".complete").exists() => {
            // Another process finished first.
            let _ = std::fs::remove_dir_all(&building);
            Ok(venv)
        }
        Err(e) => Err(fail(format!("cannot move the venv into place: {e}"))),
    }
}

fn last_line(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_and_directory_errors_say_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("rotcheck-pytest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(prepare(&dir.join("nope"), "a.b"), Err(PythonError::NotADirectory(_))));
        assert!(matches!(prepare(&dir, "nodot"), Err(PythonError::BadHandler(_))));
        let e = prepare(&dir, "lambda_function.lambda_handler").unwrap_err();
        assert_eq!(e.to_string(), format!("the handler \"lambda_function.lambda_handler\" needs lambda_function.py in {}", dir.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
