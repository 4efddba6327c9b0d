//! Landlock: the second, independent wall under the mount layout. The command may read and
//! execute anywhere it can see, and write only beneath the writable roots (as they are in the
//! sandbox: the workspace's host inodes, the private layer's tmpfs and overlay inodes, and a
//! few device nodes). If a mount were ever wrong, a write to the host would still need one of
//! these inodes. Signals and abstract unix sockets are scoped to the sandbox.

use crate::error::SetupError;
use landlock::{
    Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::path::{Path, PathBuf};

/// The newest ABI whose rights we ask for; features the kernel lacks are dropped (and
/// reported by `cordon doctor`), but Landlock itself is required.
const TARGET_ABI: ABI = ABI::V6;

/// Device nodes the command may write to and issue ioctls on.
const DEVICE_FILES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// What Landlock ended up enforcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Full,
    Partial,
}

fn err(what: &str, e: impl std::fmt::Display) -> SetupError {
    SetupError::msg(format!("{what}: {e}"))
        .fix("cordon needs Landlock (Linux 5.13+, enabled in the `lsm=` boot parameter); run `cordon doctor`")
}

/// Restricts the calling thread (and everything it execs) to reading anywhere and writing
/// beneath `writable`. `deny_all` restricts it from all file-system access instead (for
/// cordon's own init after setup).
pub fn restrict(writable: &[PathBuf], deny_all: bool) -> Result<Enforcement, SetupError> {
    if deny_all {
        // init must keep signalling the command (a sibling Landlock domain), so only the
        // command's ruleset is scoped.
        return enforce(Vec::new(), false);
    }
    let mut grants = vec![(PathBuf::from("/"), AccessFs::from_read(TARGET_ABI))];
    grants.extend(
        writable
            .iter()
            .map(|p| (p.clone(), AccessFs::from_all(TARGET_ABI))),
    );
    grants.extend(device_grants());
    enforce(grants, true)
}

/// For a sandbox without a mount namespace (`--isolation landlock`): read and execute only
/// what `read_grants` allows (everything but the hidden paths) and write beneath `writable`.
/// Without mounts to hide secrets, this allowlist is what hides them.
pub fn restrict_lite(reads: &[PathBuf], writable: &[PathBuf]) -> Result<Enforcement, SetupError> {
    let mut grants: Vec<_> = reads
        .iter()
        .map(|p| (p.clone(), AccessFs::from_read(TARGET_ABI)))
        .collect();
    grants.extend(
        writable
            .iter()
            .map(|p| (p.clone(), AccessFs::from_all(TARGET_ABI))),
    );
    grants.extend(device_grants());
    enforce(grants, true)
}

/// The device nodes a command uses (and /dev/pts for its terminal).
fn device_grants() -> Vec<(PathBuf, BitFlags<AccessFs>)> {
    let file = AccessFs::from_file(TARGET_ABI);
    DEVICE_FILES
        .iter()
        .map(|d| (PathBuf::from(d), file))
        .chain(
            ["/dev/pts", "/dev/ptmx"]
                .iter()
                .map(|d| (PathBuf::from(d), file | AccessFs::ReadDir)),
        )
        .collect()
}

/// Builds and enforces a ruleset handling every file-system right, granting `grants` (paths
/// that do not exist are skipped), optionally scoping signals and abstract unix sockets.
fn enforce(
    grants: Vec<(PathBuf, BitFlags<AccessFs>)>,
    scoped: bool,
) -> Result<Enforcement, SetupError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .map_err(|e| err("set up Landlock", e))?;
    if scoped {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(|e| err("set up Landlock scopes", e))?;
    }
    let mut created = ruleset
        .create()
        .map_err(|e| err("create the Landlock ruleset", e))?;
    for (p, access) in grants {
        if let Ok(fd) = open(&p) {
            created = created
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| err(&format!("add a Landlock rule for {}", p.display()), e))?;
        }
    }
    let status = created
        .restrict_self()
        .map_err(|e| err("enforce Landlock", e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(Enforcement::Full),
        RulesetStatus::PartiallyEnforced => Ok(Enforcement::Partial),
        RulesetStatus::NotEnforced => {
            Err(err("enforce Landlock", "the kernel does not support it"))
        }
    }
}

/// The smallest set of paths whose subtrees cover everything readable except `deny` (and
/// with `reopen` added back): directories on the way to a hidden path are split into their
/// entries. A symlink is granted only if it does not lead into a hidden path (Landlock grants
/// where a path leads).
pub fn read_grants(deny: &[PathBuf], reopen: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, deny: &[PathBuf], out: &mut Vec<PathBuf>, depth: usize) {
        if deny.iter().any(|d| d == dir) {
            return;
        }
        if !deny.iter().any(|d| d.starts_with(dir)) || depth > 16 {
            if let Ok(real) = dir.canonicalize() {
                if deny.iter().any(|d| real.starts_with(d)) {
                    return;
                }
            }
            out.push(dir.to_path_buf());
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            walk(&e.path(), deny, out, depth + 1);
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/"), deny, &mut out, 0);
    out.extend(reopen.iter().cloned());
    out
}

fn open(p: impl AsRef<Path>) -> Result<PathFd, SetupError> {
    let p = p.as_ref();
    PathFd::new(p).map_err(|e| err(&format!("open {}", p.display()), e))
}

/// The Landlock ABI this kernel offers (0 when Landlock is unavailable).
pub fn kernel_abi() -> i64 {
    // SAFETY: landlock_create_ruleset with NULL attr, size 0 and the VERSION flag only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, /* LANDLOCK_CREATE_RULESET_VERSION */
        )
    };
    v.max(0)
}
