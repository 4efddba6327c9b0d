//! Sandbox-wide limits with cgroup v2, where the person's cgroup subtree is delegated to them
//! (systemd's `user@UID.service` does this). cordon creates a sibling cgroup next to its own,
//! sets `pids.max` and `memory.max` (swap off), and moves the sandbox's init into it, so the
//! whole process tree is capped together. Where cgroup v2 is not delegated (or this is a
//! cgroup v1 machine), the limits come from rlimits and tmpfs sizes instead (see `sandbox.rs`),
//! and `cordon doctor` says so.
//!
//! Leftovers: the directory is removed when the sandbox ends; one left by a killed cordon is
//! removed by the next run (`sweep`), once no process is in it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
const PREFIX: &str = "cordon-sandbox-";

/// A cgroup created for one sandbox; removed on drop.
#[derive(Debug)]
pub struct SandboxCgroup {
    dir: PathBuf,
    /// Where cordon itself came from (it moves back before removing `dir`).
    origin: PathBuf,
}

/// The unified-hierarchy path of this process's cgroup, from `/proc/self/cgroup` text.
pub fn own_cgroup_path(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Whether `controllers` (the text of `cgroup.controllers`) lists every one of `need`.
pub fn has_controllers(controllers: &str, need: &[&str]) -> bool {
    let have: Vec<&str> = controllers.split_whitespace().collect();
    need.iter().all(|n| have.contains(n))
}

fn writable(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access() reads a valid C string.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

impl SandboxCgroup {
    /// Creates the cgroup and moves the calling process into it, before the sandbox is cloned,
    /// so everything the sandbox starts inherits it. `Ok(None)`: cgroup v2 is not delegated.
    pub fn enter(max_tasks: u64, memory_bytes: u64) -> io::Result<Option<Self>> {
        let pid = std::process::id();
        if !Path::new(ROOT).join("cgroup.controllers").exists() {
            return Ok(None);
        }
        let text = fs::read_to_string("/proc/self/cgroup")?;
        let Some(own) = own_cgroup_path(&text) else {
            return Ok(None);
        };
        let own_dir = Path::new(ROOT).join(own.trim_start_matches('/'));
        let Some(parent) = own_dir.parent().map(Path::to_path_buf) else {
            return Ok(None);
        };
        let controllers =
            fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let delegated = writable(&parent)
            && writable(&parent.join("cgroup.procs"))
            && writable(&own_dir.join("cgroup.procs"));
        if !delegated || !has_controllers(&controllers, &["memory", "pids"]) {
            return Ok(None);
        }
        sweep(&parent);
        let dir = parent.join(format!("{PREFIX}{}", std::process::id()));
        fs::create_dir(&dir)?;
        let cg = Self {
            dir,
            origin: own_dir.clone(),
        };
        fs::write(cg.dir.join("pids.max"), max_tasks.to_string())?;
        if memory_bytes > 0 {
            fs::write(cg.dir.join("memory.max"), memory_bytes.to_string())?;
            // Swap would let a hog push the host into swap instead of being stopped.
            let _ = fs::write(cg.dir.join("memory.swap.max"), "0");
        }
        fs::write(cg.dir.join("cgroup.procs"), pid.to_string())?;
        Ok(Some(cg))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        let _ = fs::write(
            self.origin.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Removes empty sandbox cgroups left by cordon processes that no longer exist.
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_unified_entry() {
        let text = "12:pids:/user.slice\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n";
        assert_eq!(
            own_cgroup_path(text),
            Some("/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope")
        );
        assert_eq!(own_cgroup_path("3:memory:/\n"), None);
    }

    #[test]
    fn controllers_must_all_be_there() {
        assert!(has_controllers("cpu memory pids io", &["memory", "pids"]));
        assert!(!has_controllers("cpu memory", &["memory", "pids"]));
        assert!(!has_controllers("", &["pids"]));
    }
}
