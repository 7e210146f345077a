//! A function's process: its own process group (so a kill takes its children too), a
//! parent-death signal (so it never outlives rotcheck), a hermetic environment, and its
//! output drained into a [`LogSink`] as it comes (a function that prints megabytes never
//! blocks on a full pipe and never costs memory).

use super::logs::LogSink;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use tokio::process::{Child, Command};

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory (the function's code, LAMBDA_TASK_ROOT).
    pub cwd: PathBuf,
    /// The environment: the only variables the process sees, besides PATH, HOME and LANG.
    pub env: Vec<(String, String)>,
}

/// A process group that can be stopped or killed from anywhere, synchronously (e.g. inside
/// an emulator hook, before a response is written, so a crash point is exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessGroup(pub i32);

impl ProcessGroup {
    /// SIGKILL to every process of the group.
    pub fn kill(self) {
        // SAFETY: killpg with a group id we created; a stale id at worst hits nothing (ESRCH).
        unsafe {
            libc::killpg(self.0, libc::SIGKILL);
        }
    }

    /// Pids of the group's live processes (from /proc), for tests and cleanup checks.
    pub fn members(self) -> Vec<i32> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces.
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
            let f: Vec<&str> = after.split_whitespace().collect();
            if f.len() > 2 && f[2].parse::<i32>().ok() == Some(self.0) && f[0] != "Z" {
                pids.push(pid);
            }
        }
        pids
    }
}

/// A running function process.
pub struct FunctionProcess {
    child: Child,
    group: ProcessGroup,
    exit: Option<ExitStatus>,
}

impl FunctionProcess {
    /// Starts `spec` in a new process group, its output going to `sink`.
    pub fn spawn(spec: &LaunchSpec, sink: Arc<LogSink>) -> std::io::Result<FunctionProcess> {
        FunctionProcess::spawn_with_input(spec, sink, None)
    }

    /// [`FunctionProcess::spawn`] with `input` written to the process's stdin, which is then
    /// closed.
    pub fn spawn_with_input(spec: &LaunchSpec, sink: Arc<LogSink>, input: Option<Vec<u8>>) -> std::io::Result<FunctionProcess> {
        let mut c = Command::new(&spec.program);
        c.args(&spec.args)
            .current_dir(&spec.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()))
            .env("HOME", std::env::temp_dir())
            .env("LANG", "C.UTF-8")
            .env("TZ", "UTC")
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and runs in the child between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = c.spawn()?;
        let pid = child.id().unwrap_or(0) as i32;
        if let (Some(mut stdin), Some(bytes)) = (child.stdin.take(), input) {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                // A function that never reads its stdin must not block us: errors are ignored.
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            });
        }
        if let Some(out) = child.stdout.take() {
            sink.read_from(out.into_owned_fd()?)?;
        }
        if let Some(err) = child.stderr.take() {
            sink.read_from(err.into_owned_fd()?)?;
        }
        Ok(FunctionProcess { child, group: ProcessGroup(pid), exit: None })
    }

    /// The process group.
    pub fn group(&self) -> ProcessGroup {
        self.group
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.exit = Some(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits for the process to exit (cancel-safe).
    pub async fn wait(&mut self) -> Option<ExitStatus> {
        if let Some(s) = self.exit {
            return Some(s);
        }
        let s = self.child.wait().await.ok();
        self.exit = s;
        s
    }

    /// Kills the whole group and reaps the process.
    pub async fn kill(&mut self) {
        self.group.kill();
        let _ = self.wait().await;
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.group.kill();
        }
    }
}
