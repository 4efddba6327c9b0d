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
    /// Whether cordon's network door is bound inside the sandbox (else: loopback only).
    pub door: bool,
    /// Host loopback ports reachable at the same port inside (`--host-port`).
    pub host_ports: Vec<u16>,
    /// Sandbox loopback ports the host may reach (`--publish`): init then makes sockets in
    /// the sandbox's network namespace on request.
    pub publish: Vec<u16>,
    /// A named sandbox's on-disk state directory (see [`crate::persist`]): the `$HOME`
    /// overlay's upper layer and `/var/tmp` live there and survive the run; `None`: everything
    /// private is in the size-limited tmpfs and gone at exit.
    pub persist: Option<PathBuf>,
    /// Files put in place inside: under `/run` they are written to the private layer, elsewhere
    /// bound read-only over an existing file (the CA bundle with cordon's CA appended).
    pub files: Vec<SpecFile>,
    /// Extra device nodes under /dev bound in (and writable) when present on the host: only
    /// `kvm`, for the VM tier's QEMU.
    pub extra_devices: Vec<String>,
}

/// A file the sandbox sees with cordon-made content (may be a secret: never printed).
#[derive(Clone)]
pub struct SpecFile {
    /// Absolute path inside.
    pub path: PathBuf,
    /// The content.
    pub content: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

impl std::fmt::Debug for SpecFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecFile")
            .field("path", &self.path)
            .field("len", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// The sockets init binds inside the sandbox's network namespace for the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DoorSocket {
    Http = 1,
    Socks = 2,
    Transparent = 3,
    DnsUdp = 4,
    DnsTcp = 5,
    /// A `--host-port` forwarder (the port is the socket's own).
    HostPort = 6,
    /// An unconnected TCP socket for a `--publish` connection.
    Published = 7,
}

impl DoorSocket {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Http,
            2 => Self::Socks,
            3 => Self::Transparent,
            4 => Self::DnsUdp,
            5 => Self::DnsTcp,
            6 => Self::HostPort,
            7 => Self::Published,
            _ => return None,
        })
    }
}

/// Fixed ports of the door inside the sandbox (its own network namespace, so they never clash).
pub const HTTP_PROXY_PORT: u16 = 3128;
pub const SOCKS_PORT: u16 = 1080;
pub const TRANSPARENT_PORT: u16 = 3129;
pub const DNS_PORT: u16 = 53;
