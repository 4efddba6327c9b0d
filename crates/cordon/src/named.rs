//! Named sandboxes: `cordon run --name NAME` keeps the `$HOME` layer and `/var/tmp` on disk
//! between runs, under `~/.local/state/cordon/sandboxes/NAME/`, until the sandbox is older
//! than its maximum age. `cordon ls`, `cordon rm` and `cordon gc` manage them.
//!
//! Layout of `sandboxes/NAME/` (0700, invisible from inside every sandbox):
//! - `meta.json`: workspace, created, last_used, max_age, cordon version;
//! - `lock`: held (flock) by the running supervisor, which writes its pid there;
//! - `layer/`: what the sandbox wrote (see `cordon_linux::persist`). Hostile content.

use crate::dirs;
use crate::fail;
use cordon_linux::persist;
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `meta.json` holds.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Meta {
    /// The canonical workspace the sandbox is bound to.
    pub workspace: PathBuf,
    /// Unix seconds when the state was (re)created; the age counts from here.
    pub created: u64,
    /// Unix seconds of the last run's start.
    pub last_used: u64,
    /// Seconds the state may live (the policy's `lifecycle.max_age` at the last run).
    pub max_age: u64,
    /// The cordon version that last used it.
    pub version: String,
    /// The isolation tier it runs in (`namespaces` or `vm`); a sandbox keeps the tier it was
    /// created with. Absent in metadata written before the VM tier had named sandboxes.
    #[serde(default = "default_tier")]
    pub isolation: String,
}

/// The tier of a named sandbox whose metadata does not say.
pub const TIER_NAMESPACES: &str = "namespaces";
/// The VM tier (`--isolation vm`).
pub const TIER_VM: &str = "vm";

fn default_tier() -> String {
    TIER_NAMESPACES.to_string()
}

/// Checks a sandbox name: `[A-Za-z0-9._-]{1,64}`, not starting with a dot.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid sandbox name {name:?}: use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot"
        ))
    }
}

/// `~/.local/state/cordon/sandboxes`.
pub fn root(home: &Path) -> PathBuf {
    dirs::state_dir(home).join("sandboxes")
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates `dir` (and missing parents) 0700 and refuses anything but a directory we own.
fn private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| format!("cannot use {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != cordon_linux::sys::getuid() {
        return Err(format!(
            "refusing to use {}: it must be a directory owned by you",
            dir.display()
        ));
    }
    Ok(())
}

/// One named sandbox's directory.
pub struct Entry {
    pub name: String,
    pub dir: PathBuf,
}

impl Entry {
    pub fn new(home: &Path, name: &str) -> Result<Entry, String> {
        validate_name(name)?;
        Ok(Entry {
            name: name.to_string(),
            dir: root(home).join(name),
        })
    }

    pub fn layer(&self) -> PathBuf {
        self.dir.join("layer")
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join("meta.json")
    }

    /// The recorded metadata; `Ok(None)` when there is none yet.
    pub fn meta(&self) -> Result<Option<Meta>, String> {
        let p = self.meta_path();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                format!(
                    "{} is damaged ({e}); remove the sandbox with `cordon rm {}`",
                    p.display(),
                    self.name
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", p.display())),
        }
    }

    fn write_meta(&self, meta: &Meta) -> Result<(), String> {
        let p = self.meta_path();
        let tmp = self.dir.join("meta.json.tmp");
        let text = serde_json::to_vec_pretty(meta).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        f.write_all(&text)
            .and_then(|_| f.write_all(b"\n"))
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &p).map_err(|e| format!("cannot write {}: {e}", p.display()))
    }

    fn open_lock(&self) -> Result<File, String> {
        let p = self.dir.join("lock");
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| format!("cannot open {}: {e}", p.display()))
    }

    /// Takes the sandbox's lock without waiting; `Ok(None)` when a run holds it.
    pub fn try_lock(&self) -> Result<Option<File>, String> {
        let f = self.open_lock()?;
        match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(f)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(format!("cannot lock sandbox {}: {e}", self.name)),
        }
    }

    /// Whether a run holds the lock now. Read from /proc/locks, so that looking never takes
    /// the lock itself (which would make a run starting at that moment fail as "running").
    pub fn running(&self) -> bool {
        let Ok(meta) = std::fs::symlink_metadata(self.dir.join("lock")) else {
            return false;
        };
        match std::fs::read_to_string("/proc/locks") {
            Ok(text) => flock_held(&text, meta.dev(), meta.ino()),
            Err(_) => {
                let Ok(f) = self.open_lock() else {
                    return false;
                };
                rustix::fs::flock(&f, FlockOperation::NonBlockingLockShared)
                    == Err(rustix::io::Errno::WOULDBLOCK)
            }
        }
    }

    /// The pid of the supervisor holding the lock (as it wrote it).
    fn holder(&self) -> Option<libc::pid_t> {
        let text = std::fs::read_to_string(self.dir.join("lock")).ok()?;
        text.trim().parse().ok().filter(|p| *p > 1)
    }

    /// Removes the whole directory (the caller holds the lock or the sandbox never ran).
    pub fn remove(&self) -> Result<(), String> {
        persist::remove_tree(&self.dir)
            .map_err(|e| format!("cannot remove {}: {e}", self.dir.display()))?;
        if let Ok(rt) = dirs::runtime_dir() {
            let _ = std::fs::remove_file(crate::exec::socket_path(&rt, &self.name));
        }
        Ok(())
    }
}

/// The isolation tier recorded for `name` (`None`: no such sandbox, or unreadable metadata).
pub fn tier(name: &str) -> Option<String> {
    let home = dirs::home().ok()?;
    let entry = Entry::new(&home, name).ok()?;
    entry.meta().ok().flatten().map(|m| m.isolation)
}

/// Whether /proc/locks lists an flock on the file (dev, ino): lines such as
/// `1: FLOCK  ADVISORY  WRITE 4242 fe:00:778241 0 EOF` (device as hex major:minor).
fn flock_held(locks: &str, dev: u64, ino: u64) -> bool {
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // A blocked waiter's line starts with "->"; only held locks count.
        f.first().is_some_and(|n| n.ends_with(':'))
            && f.get(1) == Some(&"FLOCK")
            && f.get(5) == Some(&want.as_str())
    })
}

/// A named sandbox held by a running `cordon run --name`: the lock stays taken while this
/// lives.
pub struct Session {
    pub entry: Entry,
    _lock: File,
}

/// Prepares the state of `name` for a run in `workspace` with the isolation tier `tier`:
/// takes the lock, checks the workspace and the tier, wipes state older than `max_age`,
/// creates the layer, records the use.
pub fn begin(
    home: &Path,
    name: &str,
    workspace: &Path,
    tier: &str,
    max_age: u64,
) -> Result<Session, String> {
    let entry = Entry::new(home, name)?;
    private_dir(&root(home))?;
    private_dir(&entry.dir)?;
    // A lock still held for a moment by a run that just ended (or by a child forked while
    // its descriptor was open, before exec closed it) is not a running sandbox: retry briefly.
    let mut lock = None;
    for _ in 0..10 {
        lock = entry.try_lock()?;
        if lock.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let Some(mut lock) = lock else {
        return Err(format!(
            "sandbox {name} is running; use `cordon exec {name} -- CMD` to run a command in it"
        ));
    };
    let now = now();
    let mut meta = match entry.meta()? {
        Some(m) if m.workspace != workspace => {
            return Err(format!(
                "sandbox {name} belongs to the workspace {} (this is {}); use another name, or `cordon rm {name}` first",
                m.workspace.display(),
                workspace.display()
            ))
        }
        // A VM-tier sandbox's layer was written by a guest; the two tiers also differ in what
        // `cordon exec` may do. A name stays with one tier.
        Some(m) if m.isolation != tier => {
            return Err(format!(
                "sandbox {name} was created with --isolation {}; it cannot run with --isolation {tier} (use another name, or `cordon rm {name}` first)",
                m.isolation
            ))
        }
        Some(m) if now.saturating_sub(m.created) > max_age => {
            persist::remove_tree(&entry.layer())
                .map_err(|e| format!("cannot wipe {}: {e}", entry.layer().display()))?;
            eprintln!(
                "cordon: sandbox {name} was older than its maximum age ({}); starting from clean state",
                human_age(max_age)
            );
            fresh_meta(workspace, tier, now)
        }
        Some(m) => m,
        None => {
            // A directory without metadata holds nothing trustworthy: start clean.
            persist::remove_tree(&entry.layer())
                .map_err(|e| format!("cannot wipe {}: {e}", entry.layer().display()))?;
            fresh_meta(workspace, tier, now)
        }
    };
    meta.last_used = now;
    meta.max_age = max_age;
    meta.version = env!("CARGO_PKG_VERSION").to_string();
    persist::prepare(&entry.layer())
        .map_err(|e| format!("cannot create {}: {e}", entry.layer().display()))?;
    entry.write_meta(&meta)?;
    let _ = lock.set_len(0);
    let _ = writeln!(lock, "{}", std::process::id());
    Ok(Session { entry, _lock: lock })
}

fn fresh_meta(workspace: &Path, tier: &str, now: u64) -> Meta {
    Meta {
        workspace: workspace.to_path_buf(),
        created: now,
        last_used: now,
        max_age: 0,
        version: String::new(),
        isolation: tier.to_string(),
    }
}

/// `cordon run --name`: takes the named sandbox for this run and points the plan's private
/// layer at its state. `tier` is the isolation the person asked for ([`TIER_VM`] when this
/// run is the VM tier's outer sandbox). `Ok(None)` for an ordinary run.
pub fn start(
    opts: &crate::cli::NamedOpts,
    lite: bool,
    tier: &str,
    plan: &mut crate::plan::Plan,
) -> Result<Option<Session>, String> {
    let Some(name) = &opts.name else {
        return Ok(None);
    };
    if lite {
        return Err("--name needs the default isolation (a named sandbox keeps a private layer, which --isolation landlock does not have)".into());
    }
    let max_age = plan.effective.limits.max_age.value;
    let session = begin(&plan.spec.home, name, &plan.workspace, tier, max_age)?;
    scrub_protected(&session.entry.layer(), &plan.spec.home, &plan.protect)?;
    plan.spec.persist = Some(session.entry.layer());
    Ok(Some(session))
}

/// Protected configuration always comes from the host: whatever a named sandbox's kept
/// `$HOME` layer holds at a protected path (a file, a directory, a symlink, a whiteout hiding
/// the host's file) is removed before the run. The path guard stops a run from writing
/// there, but the rules can change between runs (another profile, a removed `allow`), and
/// what an earlier, differently-configured run left must not become this run's configuration.
pub fn scrub_protected(
    layer: &Path,
    home: &Path,
    set: &cordon_policy::ProtectSet,
) -> Result<(), String> {
    // Only real directories are descended (never a symlink), so every path handed to
    // `remove_tree` has real directories as its parents; the sandbox is not running (we hold
    // its lock), so nothing changes underneath.
    let mut stack = vec![(layer.join(persist::HOME_UP), home.to_path_buf())];
    while let Some((upper, inside)) = stack.pop() {
        let rd = match std::fs::read_dir(&upper) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // A run may leave its own directories unreadable (mode 000) so that protected
            // paths below survive; their owner can open them again, and must. Anything still
            // unreadable (a tree deeper than PATH_MAX) fails the run rather than go unchecked.
            Err(_) => {
                let unreadable = |e: std::io::Error| {
                    format!(
                        "cannot check {} for protected paths ({e}); remove the sandbox with `cordon rm`",
                        upper.display()
                    )
                };
                let mode = std::fs::symlink_metadata(&upper)
                    .map_err(unreadable)?
                    .permissions()
                    .mode();
                std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(mode | 0o700))
                    .map_err(unreadable)?;
                std::fs::read_dir(&upper).map_err(unreadable)?
            }
        };
        for e in rd.flatten() {
            let up = e.path();
            let at = inside.join(e.file_name());
            let Ok(meta) = std::fs::symlink_metadata(&up) else {
                continue;
            };
            // The guard's own answer (dependency trees lift what they lift there too).
            let hit = set.protecting(&at).is_some();
            // Anything but a real directory where a protected path could lie below (a
            // symlink or whiteout at `~/.config`) would make the next run find that
            // configuration elsewhere (through the link) or hide the host's: remove it too.
            let above = !meta.is_dir() && set.is_ancestor(&at);
            if hit || above {
                persist::remove_tree(&up)
                    .map_err(|err| format!("cannot clean {}: {err}", up.display()))?;
            } else if meta.is_dir() {
                if set.is_ancestor(&at) {
                    reveal_host_below(&up)?;
                }
                stack.push((up, at));
            }
        }
    }
    Ok(())
}

/// Clears the overlay's opaque mark on a kept directory (left when a run removed and
/// recreated it), which would hide the host's files below it, protected ones included. What
/// the sandbox keeps in the directory still shows over the host's.
fn reveal_host_below(dir: &Path) -> Result<(), String> {
    const OPAQUE: &str = "user.overlay.opaque";
    let mut value = [0u8; 8];
    let opaque = match rustix::fs::lgetxattr(dir, OPAQUE, &mut value) {
        // "y" marks an opaque directory; "x" only says it holds xattr whiteouts.
        Ok(n) => value.get(..n) != Some(b"x".as_slice()),
        // Longer than any value overlayfs writes: not "x", so clear it.
        Err(rustix::io::Errno::RANGE) => true,
        Err(_) => false,
    };
    if opaque {
        rustix::fs::lremovexattr(dir, OPAQUE)
            .map_err(|e| format!("cannot clean {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Hides the named sandboxes' state from a sandbox (the built-in policy hides
/// `~/.local/state/cordon`; `$XDG_STATE_HOME` may put it elsewhere).
pub fn hide_state(spec: &mut cordon_linux::Spec) {
    // The agents' configuration saved by earlier sandboxes is the person's to review, too.
    for dir in [root(&spec.home), crate::agentconfig::store(&spec.home)] {
        let Ok(r) = dir.canonicalize() else {
            continue;
        };
        if !spec.deny_read.iter().any(|d| r.starts_with(d)) {
            spec.deny_read.push(r);
        }
    }
}

/// `1d 2h`, `35m`, `12s`.
pub fn human_age(secs: u64) -> String {
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    if d > 0 {
        if h > 0 {
            format!("{d}d {h}h")
        } else {
            format!("{d}d")
        }
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// Every named sandbox, by name.
fn all(home: &Path) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(root(home)) else {
        return Vec::new();
    };
    let mut out: Vec<Entry> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            validate_name(&name).ok()?;
            e.file_type().ok()?.is_dir().then(|| Entry {
                name,
                dir: e.path(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One named sandbox as `cordon ls --json` prints it (`null` where its metadata is unreadable).
#[derive(serde::Serialize)]
struct Row {
    name: String,
    workspace: Option<PathBuf>,
    age_secs: Option<u64>,
    created: Option<u64>,
    last_used: Option<u64>,
    max_age_secs: Option<u64>,
    isolation: Option<String>,
    size_bytes: u64,
    running: bool,
}

/// `cordon ls [--json]`.
pub fn ls(json: bool) -> i32 {
    let home = match dirs::home() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let now = now();
    let mut rows = Vec::new();
    for e in all(&home) {
        let meta = e.meta().ok().flatten();
        let running = e.running();
        let size = persist::disk_usage(&e.dir);
        rows.push(Row {
            name: e.name.clone(),
            workspace: meta.as_ref().map(|m| m.workspace.clone()),
            age_secs: meta.as_ref().map(|m| now.saturating_sub(m.created)),
            created: meta.as_ref().map(|m| m.created),
            last_used: meta.as_ref().map(|m| m.last_used),
            max_age_secs: meta.as_ref().map(|m| m.max_age),
            isolation: meta.as_ref().map(|m| m.isolation.clone()),
            size_bytes: size,
            running,
        });
    }
    if json {
        match serde_json::to_string(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(e),
        }
        return 0;
    }
    println!(
        "{:<24} {:<40} {:<10} {:>8} {:>8} {:>10} STATE",
        "NAME", "WORKSPACE", "ISOLATION", "AGE", "SIZE", "LAST USED"
    );
    let unknown = || "?".to_string();
    for r in rows {
        let last = r
            .last_used
            .map(|t| format!("{} ago", human_age(now.saturating_sub(t))))
            .unwrap_or_else(unknown);
        println!(
            "{:<24} {:<40} {:<10} {:>8} {:>8} {:>10} {}",
            r.name,
            r.workspace
                .map(|w| w.display().to_string())
                .unwrap_or_else(unknown),
            r.isolation.unwrap_or_else(unknown),
            r.age_secs.map(human_age).unwrap_or_else(unknown),
            human_size(r.size_bytes),
            last,
            if r.running { "running" } else { "stopped" }
        );
    }
    0
}

/// Stops the run holding `e`'s lock: SIGTERM, then SIGKILL; returns the lock once free.
fn stop(e: &Entry) -> Result<File, String> {
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        if let Some(pid) = e.holder() {
            // Only a process that is a cordon run of this very sandbox (the pid file could be
            // stale and the pid reused).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.iter().any(|a| *a == b"run")
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--name" && w[1] == e.name.as_bytes())
                || args
                    .iter()
                    .any(|a| *a == format!("--name={}", e.name).as_bytes());
            if ours {
                let _ = cordon_linux::sys::kill(pid, sig);
            }
        }
        for _ in 0..100 {
            if let Some(f) = e.try_lock()? {
                return Ok(f);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(format!("cannot stop sandbox {}", e.name))
}

/// `cordon rm [--force] NAME...`.
pub fn rm(names: &[String], force: bool) -> i32 {
    let home = match dirs::home() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let mut code = 0;
    for name in names {
        let e = match Entry::new(&home, name) {
            Ok(e) => e,
            Err(msg) => {
                code = fail(msg);
                continue;
            }
        };
        if std::fs::symlink_metadata(&e.dir).is_err() {
            code = fail(format!("no sandbox named {name} (see `cordon ls`)"));
            continue;
        }
        let lock = match e.try_lock() {
            Ok(Some(l)) => l,
            Ok(None) if force => match stop(&e) {
                Ok(l) => l,
                Err(msg) => {
                    code = fail(msg);
                    continue;
                }
            },
            Ok(None) => {
                code = fail(format!(
                    "sandbox {name} is running; stop it first or use `cordon rm --force {name}`"
                ));
                continue;
            }
            Err(msg) => {
                code = fail(msg);
                continue;
            }
        };
        if let Err(msg) = e.remove() {
            code = fail(msg);
        }
        drop(lock);
    }
    code
}

/// `cordon gc [--all]`: removes expired sandboxes (with `--all`, every stopped one).
pub fn gc(every: bool) -> i32 {
    let home = match dirs::home() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let now = now();
    let mut code = 0;
    for e in all(&home) {
        let Ok(Some(lock)) = e.try_lock() else {
            continue;
        };
        let expired = match e.meta() {
            Ok(Some(m)) => now.saturating_sub(m.created) > m.max_age,
            // Damaged or missing metadata: nothing can run from it as is.
            _ => true,
        };
        if !(expired || every) {
            continue;
        }
        match e.remove() {
            Ok(()) => eprintln!(
                "cordon: removed sandbox {}{}",
                e.name,
                if expired { " (expired)" } else { "" }
            ),
            Err(msg) => code = fail(msg),
        }
        drop(lock);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "ws-1f2e", "A.b_c-9", &"x".repeat(64)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "..",
            "a b",
            &"x".repeat(65),
            "é",
            "a\0",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn proc_locks() {
        let text = "1: FLOCK  ADVISORY  WRITE 4242 fe:00:778241 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 4243 fe:00:5 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 17 fe:00:9 0 EOF\n";
        let dev = libc::makedev(0xfe, 0);
        assert!(flock_held(text, dev, 778241));
        assert!(!flock_held(text, dev, 5));
        assert!(!flock_held(text, dev, 9));
        assert!(!flock_held(text, dev, 77824));
        assert!(!flock_held("", dev, 778241));
    }

    #[test]
    fn a_name_keeps_its_tier() {
        let home = tempfile::tempdir().expect("tempdir");
        let ws = home.path().join("ws");
        let s = begin(home.path(), "n", &ws, TIER_VM, 3600).expect("first run");
        let meta = s.entry.meta().expect("meta").expect("written");
        assert_eq!(meta.isolation, TIER_VM);
        drop(s);
        let err = begin(home.path(), "n", &ws, TIER_NAMESPACES, 3600)
            .err()
            .expect("the other tier is refused");
        assert!(err.contains("created with --isolation vm"), "{err}");
        assert!(begin(home.path(), "n", &ws, TIER_VM, 3600).is_ok());
    }

    #[test]
    fn metadata_without_a_tier_is_the_namespace_tier() {
        let m: Meta = serde_json::from_str(
            r#"{"workspace":"/w","created":1,"last_used":1,"max_age":60,"version":"0.1.0"}"#,
        )
        .expect("old meta.json");
        assert_eq!(m.isolation, TIER_NAMESPACES);
    }

    #[test]
    fn ages() {
        assert_eq!(human_age(7 * 86400), "7d");
        assert_eq!(human_age(36 * 3600), "1d 12h");
        assert_eq!(human_age(90 * 60), "1h 30m");
        assert_eq!(human_age(42), "42s");
    }
}
