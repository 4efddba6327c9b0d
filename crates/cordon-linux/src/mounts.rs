//! Builds the sandbox's file-system view inside its new mount namespace.
//!
//! The view: a recursive read-only, nosuid, nodev clone of the host's mount tree as `/`; a
//! private tmpfs "layer" (one size limit for all of it) providing `/tmp`, `/var/tmp`,
//! `/dev/shm`, `/run` and the upper layer of an overlay on `$HOME`; a minimal `/dev`; a fresh
//! `/proc` for the sandbox's pid namespace; the workspace and `allow_write` paths bound
//! read-write; secret paths covered by empty read-only stand-ins; existing protected paths
//! bound read-only over themselves.
//!
//! Everything here happens in the sandbox's own mount namespace, so nothing it creates can
//! outlive the sandbox or be seen by the host.

use crate::error::{Context, SetupError};
use crate::spec::Spec;
use crate::sys;
use rustix::fs::{AtFlags, Mode, CWD};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where cordon's own executable is visible inside the sandbox.
pub const SELF_EXE: &str = "/run/cordon/cordon";

/// Device nodes the sandbox gets (bound from the host's /dev).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// procfs entries made read-only (as bubblewrap does): writes there reach the kernel.
const PROC_READONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs"];
/// procfs entries hidden behind an empty file.
const PROC_MASKED: &[&str] = &["keys", "timer_list", "kcore", "sched_debug", "kallsyms"];

/// Names inside the private layer.
const L_TMP: &str = "tmp";
const L_VARTMP: &str = "vartmp";
const L_SHM: &str = "shm";
const L_RUN: &str = "run";
const L_HOME_UP: &str = "home-up";
const L_HOME_WORK: &str = "home-work";
const L_HOME_SKEL: &str = "home-skel";
const L_EMPTY_DIR: &str = "empty-dir";
const L_EMPTY_FILE: &str = "empty-file";

fn clone_flags() -> OpenTreeFlags {
    OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_SYMLINK_NOFOLLOW
}

/// A detached copy of the mount (tree) at `path`.
fn clone_tree(path: &Path, recursive: bool) -> Result<OwnedFd, SetupError> {
    let mut flags = clone_flags();
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    open_tree(CWD, path, flags).ctx(|| format!("clone the mount at {}", path.display()))
}

/// A detached copy of `name` inside the directory/mount `dir`.
fn clone_at(dir: &OwnedFd, name: &str) -> Result<OwnedFd, SetupError> {
    open_tree(dir, name, clone_flags()).ctx(|| format!("clone private-layer entry {name}"))
}

fn attach(mnt: &OwnedFd, target: &Path) -> Result<(), SetupError> {
    move_mount(
        mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .ctx(|| format!("mount on {}", target.display()))
}

fn set_attrs(mnt: &OwnedFd, recursive: bool, set: u64, clear: u64) -> Result<(), SetupError> {
    sys::mount_setattr(mnt.as_fd(), recursive, set, clear, true)
        .ctx(|| "set mount attributes".into())
}

const RO: u64 = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;

/// A new, detached filesystem instance (`fsopen` + `fsconfig` + `fsmount`).
fn new_fs(
    fstype: &str,
    options: &[(&str, Option<&str>)],
    attrs: MountAttrFlags,
) -> Result<OwnedFd, SetupError> {
    let what = || format!("create a {fstype} filesystem");
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).ctx(what)?;
    for (key, value) in options {
        match value {
            Some(v) => fsconfig_set_string(&fs, *key, *v),
            None => fsconfig_set_flag(&fs, *key),
        }
        .ctx(|| format!("set {fstype} option {key}"))?;
    }
    fsconfig_create(&fs).ctx(what)?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).ctx(what)
}

fn mkdir_in(dir: &OwnedFd, name: &str, mode: u32) -> Result<(), SetupError> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)).ctx(|| format!("create {name}"))?;
    // The creating umask may have removed bits (sticky /tmp needs exactly 1777).
    rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())
        .ctx(|| format!("chmod {name}"))
}

fn touch_in(dir: &OwnedFd, name: &str, mode: u32) -> Result<(), SetupError> {
    rustix::fs::openat(
        dir,
        name,
        rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .map(drop)
    .ctx(|| format!("create {name}"))
}

fn symlink_in(dir: &OwnedFd, name: &str, target: &str) -> Result<(), SetupError> {
    rustix::fs::symlinkat(target, dir, name).ctx(|| format!("create /dev/{name}"))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn depth(p: &Path) -> usize {
    p.components().count()
}

/// Creates `path` (and its parents) if missing; only succeeds where the view is writable
/// (inside the private layer), which is exactly where a mount point may be missing.
fn ensure_dir(path: &Path) -> Result<(), SetupError> {
    if exists(path) {
        return Ok(());
    }
    std::fs::create_dir_all(path).ctx(|| format!("create mount point {}", path.display()))
}

/// Builds the whole view. Called by the sandbox's init, which holds every capability in its
/// user namespace; the host is never touched.
pub fn build(spec: &Spec) -> Result<(), SetupError> {
    sys::make_root_private().ctx(|| "make mounts private".into())?;

    // Clone everything that must come from the host as it is now, before anything covers it
    // (the workspace may live under $HOME or /tmp, which are about to be replaced).
    let mut writable = Vec::new();
    for p in &spec.writable {
        let m = clone_tree(p, true)?;
        set_attrs(&m, true, sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV, 0)?;
        writable.push((p.clone(), m));
    }
    let mut reopened = Vec::new();
    for p in &spec.reopen_read {
        let m = clone_tree(p, true)?;
        set_attrs(&m, true, RO, 0)?;
        reopened.push((p.clone(), m));
    }
    let mut devices = Vec::new();
    for name in DEVICES {
        let m = clone_tree(&Path::new("/dev").join(name), false)?;
        set_attrs(
            &m,
            false,
            sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
            sys::MOUNT_ATTR_RDONLY,
        )?;
        devices.push((*name, m));
    }
    for name in &spec.extra_devices {
        let host = Path::new("/dev").join(name);
        if host.exists() {
            let m = clone_tree(&host, false)?;
            set_attrs(
                &m,
                false,
                sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
                sys::MOUNT_ATTR_RDONLY,
            )?;
            devices.push((name.as_str(), m));
        }
    }

    // cordon itself, for in-sandbox helpers such as `cordon connect` (the ssh ProxyCommand),
    // wherever the binary lives on the host (its directory may be hidden or private inside).
    // (By path: /proc/self/exe points into the host's mount namespace, which open_tree refuses.
    // A binary replaced since it started is simply not offered.)
    let own_exe = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| open_tree(CWD, &p, clone_flags()).ok());
    if let Some(m) = &own_exe {
        set_attrs(
            m,
            false,
            sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
            0,
        )?;
    }

    // A named sandbox's state, opened before the host's tree is replaced (and before the
    // state directory is hidden below).
    let persisted = match &spec.persist {
        Some(dir) => Some(crate::persist::open(dir)?),
        None => None,
    };

    let root = clone_tree(Path::new("/"), true)?;
    set_attrs(&root, true, RO, 0)?;
    let scratch = ["/tmp", "/mnt", "/opt"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .ok_or_else(|| SetupError::msg("find a directory to assemble the sandbox root on"))?;
    attach(&root, scratch)?;
    std::env::set_current_dir(scratch).ctx(|| "enter the new root".into())?;
    sys::pivot_root_here().ctx(|| "pivot into the new root".into())?;
    std::env::set_current_dir("/").ctx(|| "enter the new root".into())?;

    let layer = private_layer(spec)?;
    mount_dev(&layer, devices)?;
    mount_proc(&layer)?;

    // The home overlay is made before /tmp and /run are replaced, so a $HOME beneath them
    // (a checkout under /tmp with its test homes, say) still has its host files as the lower
    // layer; it is attached after them, on top.
    let home = if spec.home.is_dir() {
        Some(match &persisted {
            Some(p) => prepare_home(
                spec,
                &p.dir,
                crate::persist::HOME_UP,
                crate::persist::HOME_WORK,
                true,
            )?,
            None => prepare_home(spec, &layer, L_HOME_UP, L_HOME_WORK, false)?,
        })
    } else {
        None
    };
    for (dir, name) in [("/tmp", L_TMP), ("/var/tmp", L_VARTMP), ("/run", L_RUN)] {
        if Path::new(dir).is_dir() {
            let m = match (&persisted, name) {
                (Some(p), L_VARTMP) => clone_at(&p.dir, crate::persist::VARTMP)?,
                _ => clone_at(&layer, name)?,
            };
            attach(&m, Path::new(dir))?;
        }
    }
    if let (true, Some(exe)) = (Path::new("/run").is_dir(), &own_exe) {
        mkdir_in(&layer, "run/cordon", 0o755)?;
        touch_in(&layer, "run/cordon/cordon", 0o755)?;
        attach(exe, Path::new(SELF_EXE))?;
    }
    if let Some(home) = &home {
        home.attach(&spec.home)?;
    }
    resolver_files(&layer)?;
    spec_files(&layer, spec)?;

    writable.sort_by_key(|(p, _)| depth(p));
    for (p, m) in &writable {
        ensure_dir(p)?;
        attach(m, p)?;
    }

    let mut deny = spec.deny_read.clone();
    deny.sort_by_key(|p| depth(p));
    for p in &deny {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let inside: Vec<&(PathBuf, OwnedFd)> = reopened
            .iter()
            .filter(|(r, _)| r.starts_with(p) && r != p)
            .collect();
        if meta.is_dir() && !inside.is_empty() {
            hide_dir_keeping(p, &inside)?;
            continue;
        }
        let stand_in = if meta.is_dir() {
            L_EMPTY_DIR
        } else {
            L_EMPTY_FILE
        };
        bind_from_layer(&layer, stand_in, p)?;
    }
    reopened.sort_by_key(|(p, _)| depth(p));
    for (p, m) in &reopened {
        if exists(p) {
            attach(m, p)?;
        }
    }

    for p in &spec.protect_existing {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            continue;
        };
        if !(meta.is_dir() || meta.is_file()) {
            continue;
        }
        let m = clone_tree(p, true)?;
        set_attrs(&m, true, RO, 0)?;
        attach(&m, p)?;
    }
    Ok(())
}

/// Hides directory `dir` behind an empty read-only tmpfs that holds only the mount points for
/// the re-opened paths inside it (which are attached afterwards).
fn hide_dir_keeping(dir: &Path, keep: &[&(PathBuf, OwnedFd)]) -> Result<(), SetupError> {
    let m = new_fs(
        "tmpfs",
        &[("size", Some("64k")), ("mode", Some("0700"))],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    attach(&m, dir)?;
    for (p, clone) in keep {
        // The path itself is hidden now; its detached clone says what it is.
        let Ok(st) = rustix::fs::fstat(clone) else {
            continue;
        };
        let is_dir =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
        let parent = p.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .ctx(|| format!("create mount point {}", parent.display()))?;
        if is_dir {
            std::fs::create_dir_all(p).ctx(|| format!("create mount point {}", p.display()))?;
        } else {
            std::fs::File::create(p)
                .map(drop)
                .ctx(|| format!("create mount point {}", p.display()))?;
        }
    }
    // Read-only from now on; the re-opened paths are bound on top.
    sys::mount_setattr_path(dir, RO).ctx(|| format!("make {} read-only", dir.display()))
}

/// Name resolution inside: the DNS stub on the sandbox's loopback, and `hosts: files dns` so
/// nothing consults nscd, systemd-resolved or mDNS on the host (their sockets are not
/// reachable anyway). Without the door the stub is absent and lookups fail at once.
fn resolver_files(layer: &OwnedFd) -> Result<(), SetupError> {
    let resolv = "# written by cordon: the sandbox's DNS stub\nnameserver 127.0.0.1\n";
    let host_nss = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut nss: String = host_nss
        .lines()
        .filter(|l| !l.trim_start().starts_with("hosts:"))
        .map(|l| format!("{l}\n"))
        .collect();
    nss.push_str("hosts: files dns\n");
    for (path, name, content) in [
        ("/etc/resolv.conf", "resolv.conf", resolv.to_string()),
        ("/etc/nsswitch.conf", "nsswitch.conf", nss),
    ] {
        std::fs::write(
            format!("/proc/self/fd/{}/{name}", layer.as_raw_fd()),
            &content,
        )
        .ctx(|| format!("prepare {path}"))?;
        install_file(layer, name, Path::new(path), &content)?;
    }
    Ok(())
}

/// Files cordon makes for the sandbox (see [`Spec::files`]): under `/run` (private here) they
/// are written in place; elsewhere a layer copy is bound read-only over the existing file.
fn spec_files(layer: &OwnedFd, spec: &Spec) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt;
    for (i, f) in spec.files.iter().enumerate() {
        if f.path.starts_with("/run") {
            if let Some(parent) = f.path.parent() {
                std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
                // A private file (a secret) gets a private directory.
                let dir_mode = if f.mode & 0o044 == 0 { 0o700 } else { 0o755 };
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(dir_mode))
                    .ctx(|| format!("set the mode of {}", parent.display()))?;
            }
            std::fs::write(&f.path, &f.content).ctx(|| format!("write {}", f.path.display()))?;
            std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(f.mode))
                .ctx(|| format!("set the mode of {}", f.path.display()))?;
            continue;
        }
        let Ok(real) = std::fs::canonicalize(&f.path) else {
            continue;
        };
        let name = format!("cordon-file-{i}");
        let at = format!("/proc/self/fd/{}/{name}", layer.as_raw_fd());
        std::fs::write(&at, &f.content).ctx(|| format!("prepare {}", f.path.display()))?;
        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(f.mode))
            .ctx(|| format!("prepare {}", f.path.display()))?;
        bind_from_layer(layer, &name, &real)?;
    }
    Ok(())
}

/// Binds the layer's entry `name` (a stand-in or a made file), read-only, over `real`.
fn bind_from_layer(layer: &OwnedFd, name: &str, real: &Path) -> Result<(), SetupError> {
    let m = clone_at(layer, name)?;
    set_attrs(&m, false, RO, 0)?;
    attach(&m, real)
}

/// Puts the layer file `name` in place of `path` (following a symlink: /etc/resolv.conf often
/// points into /run, which is private and writable here, so the file is simply written there).
fn install_file(layer: &OwnedFd, name: &str, path: &Path, content: &str) -> Result<(), SetupError> {
    match std::fs::canonicalize(path) {
        Ok(real) => bind_from_layer(layer, name, &real),
        Err(_) => {
            let Ok(target) = std::fs::read_link(path) else {
                return Ok(());
            };
            let target = path.parent().unwrap_or(Path::new("/")).join(target);
            if let Some(parent) = target.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::write(&target, content).ctx(|| format!("write {}", target.display()))
        }
    }
}

/// The private, size-limited tmpfs behind every ephemeral writable place.
fn private_layer(spec: &Spec) -> Result<OwnedFd, SetupError> {
    let size = spec.layer_bytes.to_string();
    let layer = new_fs(
        "tmpfs",
        &[("size", Some(&size)), ("mode", Some("0755"))],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(|e| e.fix("the sandbox needs tmpfs in a user namespace; run `cordon doctor`"))?;
    for name in [L_TMP, L_VARTMP, L_SHM] {
        mkdir_in(&layer, name, 0o1777)?;
    }
    for name in [L_RUN, L_HOME_UP, L_HOME_WORK] {
        mkdir_in(&layer, name, 0o755)?;
    }
    mkdir_in(&layer, L_EMPTY_DIR, 0o555)?;
    touch_in(&layer, L_EMPTY_FILE, 0o444)?;
    // $XDG_RUNTIME_DIR inside: private and empty, so no host session socket is reachable.
    mkdir_in(&layer, "run/user", 0o755)?;
    mkdir_in(&layer, &format!("run/user/{}", spec.uid), 0o700)?;
    Ok(layer)
}

fn mount_dev(layer: &OwnedFd, devices: Vec<(&str, OwnedFd)>) -> Result<(), SetupError> {
    let dev = new_fs(
        "tmpfs",
        &[("size", Some("1m")), ("mode", Some("0755"))],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    for (name, _) in &devices {
        touch_in(&dev, name, 0o666)?;
    }
    mkdir_in(&dev, "pts", 0o755)?;
    mkdir_in(&dev, "shm", 0o1777)?;
    symlink_in(&dev, "ptmx", "pts/ptmx")?;
    symlink_in(&dev, "fd", "/proc/self/fd")?;
    symlink_in(&dev, "stdin", "/proc/self/fd/0")?;
    symlink_in(&dev, "stdout", "/proc/self/fd/1")?;
    symlink_in(&dev, "stderr", "/proc/self/fd/2")?;
    attach(&dev, Path::new("/dev"))?;
    for (name, m) in &devices {
        attach(m, &Path::new("/dev").join(name))?;
    }
    let pts = new_fs(
        "devpts",
        &[
            ("newinstance", None),
            ("ptmxmode", Some("0666")),
            ("mode", Some("0620")),
        ],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    attach(&pts, Path::new("/dev/pts"))?;
    attach(&clone_at(layer, L_SHM)?, Path::new("/dev/shm"))
}

fn mount_proc(layer: &OwnedFd) -> Result<(), SetupError> {
    let proc_ = new_fs(
        "proc",
        &[],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    attach(&proc_, Path::new("/proc"))?;
    for name in PROC_READONLY {
        let p = Path::new("/proc").join(name);
        if exists(&p) {
            let m = clone_tree(&p, true)?;
            set_attrs(&m, true, RO, 0)?;
            attach(&m, &p)?;
        }
    }
    for name in PROC_MASKED {
        let p = Path::new("/proc").join(name);
        if exists(&p) {
            bind_from_layer(layer, L_EMPTY_FILE, &p)?;
        }
    }
    Ok(())
}

/// `$HOME` becomes an overlay: the host's home read-only below, the private layer above, so
/// tools that write caches and dotfiles work and nothing reaches the host.
/// The overlay keeps its metadata (opaque directories, whiteouts of removed lower
/// directories) in `user.*` xattrs, the only ones an unprivileged mount may write, on disk (a
/// named sandbox) and on the tmpfs alike: without them removing or replacing a directory the
/// host's home already has fails with EIO (codex's start-up clean-up of `~/.codex/tmp`).
fn prepare_home(
    spec: &Spec,
    layer: &OwnedFd,
    up: &str,
    work: &str,
    kept: bool,
) -> Result<PreparedHome, SetupError> {
    let fd = layer.as_raw_fd();
    let upper = format!("/proc/self/fd/{fd}/{up}");
    let workdir = format!("/proc/self/fd/{fd}/{work}");
    let home = path_str(&spec.home)?;
    let options = vec![
        ("lowerdir+", Some(home)),
        ("upperdir", Some(upper.as_str())),
        ("workdir", Some(workdir.as_str())),
        ("userxattr", None),
    ];
    let ovl = new_fs(
        "overlay",
        &options,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    );
    match ovl {
        Ok(ovl) => Ok(PreparedHome {
            root: ovl,
            pieces: Vec::new(),
        }),
        Err(e) => {
            // A mount below $HOME (sshfs, an encrypted directory, a tmpfs ~/.cache) is locked
            // in the sandbox's user namespace, and overlayfs refuses a lower layer with locked
            // mounts inside it (EINVAL). Then $HOME is built piece by piece around them.
            let subs = submounts_below(&spec.home);
            if subs.is_empty() {
                return Err(e.fix(
                    "the sandbox needs overlayfs in a user namespace (Linux 5.11+); run `cordon doctor`",
                ));
            }
            if kept {
                return Err(SetupError::msg(format!(
                    "build the named sandbox's $HOME: {} is a separate mount below $HOME, which a kept layer cannot hold yet",
                    subs[0].display()
                ))
                .fix("use an unnamed `cordon run`, or unmount it"));
            }
            split_home(spec, layer, up, work, &subs)
        }
    }
}

/// `$HOME` as detached mounts: made before `/tmp` and `/run` are replaced (a `$HOME` beneath
/// them keeps its host files as the lower layer), attached after them, on top.
struct PreparedHome {
    root: OwnedFd,
    /// Mounts inside `root` (when it was built around mounts below `$HOME`), outermost first.
    pieces: Vec<(PathBuf, OwnedFd)>,
}

impl PreparedHome {
    fn attach(&self, home: &Path) -> Result<(), SetupError> {
        ensure_dir(home)?;
        attach(&self.root, home)?;
        for (p, m) in &self.pieces {
            attach(m, p)?;
        }
        Ok(())
    }
}

/// Mount points strictly below `dir` in this mount namespace.
fn submounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let oct = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |a, c| a.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Entries of $HOME at most (a bound on the work of [`split_home`]).
const MAX_HOME_PIECES: usize = 4096;
/// Files up to this size are copied into the layer (writable there); larger ones are bound
/// read-only.
const MAX_COPIED_FILE: u64 = 1 << 20;

/// `$HOME` without one overlay: a skeleton directory in the private layer holds copies of
/// small files and symlinks; each directory without mounts inside gets its own overlay (host
/// below, the layer above); each mount below `$HOME` is bound read-only; a directory holding
/// such a mount deeper down is rebuilt the same way. Every protection is applied by path
/// afterwards, exactly as over a single overlay.
fn split_home(
    spec: &Spec,
    layer: &OwnedFd,
    up: &str,
    work: &str,
    subs: &[PathBuf],
) -> Result<PreparedHome, SetupError> {
    mkdir_in(layer, L_HOME_SKEL, 0o755)?;
    let mut pieces: Vec<(PathBuf, OwnedFd)> = Vec::new();
    split_dir(
        &spec.home,
        Path::new(""),
        layer,
        (up, work),
        subs,
        &mut pieces,
    )?;
    pieces.sort_by_key(|(p, _)| depth(p));
    Ok(PreparedHome {
        root: clone_at(layer, L_HOME_SKEL)?,
        pieces,
    })
}

fn split_dir(
    host: &Path,
    rel: &Path,
    layer: &OwnedFd,
    (up, work): (&str, &str),
    subs: &[PathBuf],
    pieces: &mut Vec<(PathBuf, OwnedFd)>,
) -> Result<(), SetupError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let lfd = layer.as_raw_fd();
    let in_layer = |base: &str, rel: &Path| format!("/proc/self/fd/{lfd}/{base}/{}", rel.display());
    let entries =
        std::fs::read_dir(host).ctx(|| format!("read {} to build $HOME", host.display()))?;
    for entry in entries {
        let entry = entry.ctx(|| format!("read {}", host.display()))?;
        if pieces.len() >= MAX_HOME_PIECES {
            return Err(SetupError::msg(format!(
                "build $HOME around the mounts below it: more than {MAX_HOME_PIECES} entries"
            )));
        }
        let path = entry.path();
        let r = rel.join(entry.file_name());
        let skel = in_layer(L_HOME_SKEL, &r);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
        let mountpoint = subs.contains(&path);
        let holds_mount = subs.iter().any(|s| s.starts_with(&path) && *s != path);
        if mountpoint {
            // Another file system (sshfs, tmpfs, ...): visible as it is, read-only.
            if meta.is_dir() {
                std::fs::create_dir(&skel).ctx(|| format!("create {}", r.display()))?;
            } else {
                std::fs::File::create(&skel).ctx(|| format!("create {}", r.display()))?;
            }
            let m = clone_tree(&path, true)?;
            set_attrs(&m, true, RO, 0)?;
            pieces.push((path, m));
        } else if meta.is_dir() && holds_mount {
            std::fs::create_dir(&skel).ctx(|| format!("create {}", r.display()))?;
            std::fs::set_permissions(&skel, mode).ctx(|| format!("chmod {}", r.display()))?;
            split_dir(&path, &r, layer, (up, work), subs, pieces)?;
        } else if meta.is_dir() {
            std::fs::create_dir(&skel).ctx(|| format!("create {}", r.display()))?;
            std::fs::set_permissions(&skel, mode).ctx(|| format!("chmod {}", r.display()))?;
            for base in [up, work] {
                std::fs::create_dir_all(in_layer(base, &r))
                    .ctx(|| format!("create the layer of {}", r.display()))?;
            }
            let upper = in_layer(up, &r);
            let workdir = in_layer(work, &r);
            let ovl = new_fs(
                "overlay",
                &[
                    ("lowerdir+", Some(path_str(&path)?)),
                    ("upperdir", Some(upper.as_str())),
                    ("workdir", Some(workdir.as_str())),
                    ("userxattr", None),
                ],
                MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
            )
            .map_err(|e| {
                SetupError::msg(format!(
                    "layer {} of $HOME (built around the mounts below it: {}): {e}",
                    path.display(),
                    subs.iter()
                        .map(|s| s.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            pieces.push((path, ovl));
        } else if meta.file_type().is_symlink() {
            let target =
                std::fs::read_link(&path).ctx(|| format!("read the link {}", path.display()))?;
            std::os::unix::fs::symlink(&target, &skel).ctx(|| format!("create {}", r.display()))?;
        } else if meta.is_file() && meta.len() <= MAX_COPIED_FILE {
            std::fs::copy(&path, &skel).ctx(|| format!("copy {}", path.display()))?;
            std::fs::set_permissions(&skel, mode).ctx(|| format!("chmod {}", r.display()))?;
        } else if meta.is_file() {
            std::fs::File::create(&skel).ctx(|| format!("create {}", r.display()))?;
            let m = clone_tree(&path, false)?;
            set_attrs(&m, false, RO, 0)?;
            pieces.push((path, m));
        }
        // Sockets, fifos and devices in $HOME are left out.
    }
    Ok(())
}

fn path_str(p: &Path) -> Result<&str, SetupError> {
    p.to_str()
        .ok_or_else(|| SetupError::msg(format!("use the non-UTF-8 path {}", p.display())))
}

/// Sandbox-side paths that are writable (for Landlock and the path guard).
pub fn writable_roots(spec: &Spec) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = spec.writable.clone();
    roots.push(spec.home.clone());
    for p in ["/tmp", "/var/tmp", "/dev/shm", "/run"] {
        roots.push(PathBuf::from(p));
    }
    roots.extend(spec.extra_devices.iter().map(|d| Path::new("/dev").join(d)));
    roots
}
