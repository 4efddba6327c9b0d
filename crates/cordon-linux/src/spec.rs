//! What enforcement is told to build. The binary derives this from the effective policy;
//! nothing in cordon-linux re-derives policy. All paths are absolute, canonical host paths,
//! which are also the paths inside the sandbox (the sandbox sees the host's layout).

use std::ffi::CString;
use std::path::PathBuf;

/// How the sandbox's stdio is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The command gets a fresh pty inside the sandbox; the supervisor relays it.
    Pty,
    /// The command inherits cordon's stdin, stdout and stderr as they are (pipes, files).
    Inherit,
}

#[derive(Debug, Clone)]
pub struct Spec {
    /// Host uid/gid of the person; mapped to the same ids inside.
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Read-write, persisted. The first entry is the workspace.
    pub writable: Vec<PathBuf>,
    /// Directory the command starts in.
    pub cwd: PathBuf,
    /// Existing paths hidden from the sandbox (empty directory or empty file in their place).
    pub deny_read: Vec<PathBuf>,
    /// Existing paths under a `deny_read` entry that are visible again (read-only).
    pub reopen_read: Vec<PathBuf>,
    /// Existing protected paths inside writable areas: bound read-only over themselves.
    pub protect_existing: Vec<PathBuf>,
    /// Size of the private writable layer ($HOME upper, /tmp, /var/tmp, /dev/shm, /run).
    pub layer_bytes: u64,
    pub max_tasks: u64,
    /// Per-process data-segment cap (RLIMIT_DATA); 0 = none.
    pub memory_bytes: u64,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// The sandbox's PATH, used to find `argv[0]`.
    pub path_var: String,
    pub stdio: Stdio,
    pub hostname: String,
}
