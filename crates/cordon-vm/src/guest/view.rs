//! The guest's file-system view, built under /mnt and then made the root: the host's root (the
//! outer sandbox's view, with secrets already replaced) read-only over 9p; /tmp, /run and
//! /dev/shm in guest RAM; $HOME and /var/tmp are the outer sandbox's (its private layer, or a
//! named sandbox's kept layer) over 9p, so the outer path guard protects configuration there;
//! a minimal /dev; the read-write shares (workspace first) over 9p on top.

use super::sys::{chardev, mount, switch_root};
use crate::config::{share_tag, GuestConfig, HOME_TAG, ROOT_TAG, VARTMP_TAG};
use std::path::{Path, PathBuf};

const NEW: &str = "/mnt";

fn under(root: &str, p: &str) -> PathBuf {
    Path::new(root).join(p.trim_start_matches('/'))
}

fn p9(tag: &str, target: &Path, ro: bool) -> Result<(), String> {
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    if ro {
        flags |= libc::MS_RDONLY;
    }
    // The root is read-only, so caching it is safe; shares must see host changes at once.
    let cache = if ro { "loose" } else { "mmap" };
    mount(
        tag,
        target,
        "9p",
        flags,
        &format!("trans=virtio,version=9p2000.L,msize=262144,cache={cache},access=client"),
    )
    .map_err(|e| e.to_string())
}

fn tmpfs(target: &Path, mode: &str) -> Result<(), String> {
    tmpfs_flags(target, mode, libc::MS_NOSUID | libc::MS_NODEV)
}

fn tmpfs_flags(target: &Path, mode: &str, flags: libc::c_ulong) -> Result<(), String> {
    mount("tmpfs", target, "tmpfs", flags, &format!("mode={mode}")).map_err(|e| e.to_string())
}

/// Builds the view and switches into it.
pub fn build(cfg: &GuestConfig) -> Result<(), String> {
    let root = Path::new(NEW);
    p9(ROOT_TAG, root, true)?;
    for (p, mode) in [("tmp", "1777"), ("var/tmp", "1777"), ("run", "755")] {
        let t = under(NEW, p);
        if !t.is_dir() {
            continue;
        }
        if cfg.kept && p == "var/tmp" {
            // The outer /var/tmp (kept for a named sandbox).
            p9(VARTMP_TAG, &t, false)?;
        } else {
            tmpfs(&t, mode)?;
        }
    }
    dev(&under(NEW, "dev"))?;
    mount(
        "proc",
        &under(NEW, "proc"),
        "proc",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )
    .map_err(|e| e.to_string())?;
    mount(
        "sysfs",
        &under(NEW, "sys"),
        "sysfs",
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )
    .map_err(|e| e.to_string())?;
    home(cfg)?;
    for (i, s) in cfg.shares.iter().enumerate() {
        let t = under(NEW, s);
        if !t.is_dir() {
            // Only possible inside the private layer (/tmp, $HOME's overlay).
            std::fs::create_dir_all(&t).map_err(|e| format!("create {}: {e}", t.display()))?;
        }
        p9(&share_tag(i), &t, false)?;
    }
    switch_root(root).map_err(|e| format!("switch to the shared root: {e}"))
}

fn home(cfg: &GuestConfig) -> Result<(), String> {
    let target = under(NEW, &cfg.home);
    if cfg.home == "/" || !cfg.kept {
        // No outer $HOME share (the KVM probe's boot): $HOME stays read-only.
        return Ok(());
    }
    if !target.is_dir() {
        // Only possible for a $HOME below the guest's private /tmp (a home under /tmp).
        std::fs::create_dir_all(&target)
            .map_err(|e| format!("create {}: {e}", target.display()))?;
    }
    // The outer $HOME: the outer sandbox's private layer (or a named sandbox's kept layer).
    // Writes go through QEMU's 9p server, so the outer path guard judges them.
    p9(HOME_TAG, &target, false)
}

/// A minimal /dev: the usual character devices, a pty multiplexer and shared memory. Never the
/// control port: the command cannot speak to the host helper in init's place.
fn dev(target: &Path) -> Result<(), String> {
    // Device nodes must open (no nodev), nothing runs from here (noexec), and the command
    // cannot add nodes (no CAP_MKNOD).
    tmpfs_flags(target, "755", libc::MS_NOSUID | libc::MS_NOEXEC)?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        chardev(&target.join(name), 0o666, major, minor)
            .map_err(|e| format!("mknod /dev/{name}: {e}"))?;
    }
    for d in ["pts", "shm"] {
        std::fs::create_dir(target.join(d)).map_err(|e| format!("create /dev/{d}: {e}"))?;
    }
    mount(
        "devpts",
        &target.join("pts"),
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=620",
    )
    .map_err(|e| e.to_string())?;
    tmpfs(&target.join("shm"), "1777")?;
    for (name, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, target.join(name))
            .map_err(|e| format!("link /dev/{name}: {e}"))?;
    }
    Ok(())
}
