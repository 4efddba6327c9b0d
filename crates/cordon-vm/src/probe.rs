//! Whether KVM really works: a /dev/kvm that opens is not proof (this kind of host may offer a
//! hypervisor that boots no stock kernel), so the probe boots the guest kernel with cordon's
//! initramfs and the probe word, and waits a bounded time for init to report on the console.
//! The result is cached for the host's boot, per guest kernel.

use super::guest::{PROBE_OK, PROBE_WORD};
use super::kernel::Kernel;
use super::qemu::{Accel, Machine, QEMU};
use crate::Places;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a KVM boot to userspace may take before KVM counts as unusable.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A guest that reached userspace.
#[derive(Debug, Clone, Copy)]
pub struct Booted {
    /// From QEMU's start to init's report.
    pub took: Duration,
    /// The guest kernel's Landlock ABI (the inner wall's), if init reported it.
    pub landlock: Option<i64>,
}

/// A KVM guest that reached userspace, or why KVM is unusable.
pub fn kvm(kernel: &Kernel, initrd: &Path, places: &Places) -> Result<Booted, String> {
    if let Some(known) = kvm_known(kernel, places) {
        return known;
    }
    let result = boot(kernel, initrd, Accel::Kvm, KVM_PROBE_TIMEOUT, places);
    if let Some(p) = cache_file(kernel, places) {
        let line = match &result {
            Ok(b) => format!("ok {} {}", b.took.as_millis(), b.landlock.unwrap_or(-1)),
            Err(e) => e.clone(),
        };
        let _ = std::fs::write(p, line);
    }
    result
}

/// What is known about KVM without booting: `/dev/kvm` cannot be opened (with how to fix
/// it), or the result of an earlier probe since this boot; `None` when only a boot can say.
pub fn kvm_known(kernel: &Kernel, places: &Places) -> Option<Result<Booted, String>> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Some(Err(kvm_open_error(&e)));
    }
    let c = cache_file(kernel, places).and_then(|p| std::fs::read_to_string(p).ok())?;
    Some(match c.strip_prefix("ok ") {
        Some(rest) => {
            let mut w = rest.split_whitespace().map(|x| x.parse::<i64>().ok());
            Ok(Booted {
                took: Duration::from_millis(w.next().flatten().unwrap_or(0).max(0) as u64),
                landlock: w.next().flatten(),
            })
        }
        None => Err(c.trim().to_string()),
    })
}

/// `/dev/kvm: Permission denied` and what to do about it: the device's group (`kvm` on
/// Debian and Ubuntu) must be one of the person's.
fn kvm_open_error(e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return format!("/dev/kvm: {e}");
    }
    let gid = std::fs::metadata("/dev/kvm").map(|m| m.gid()).ok();
    let group = gid
        .and_then(|g| {
            std::fs::read_to_string("/etc/group").ok().and_then(|t| {
                t.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[2].parse() == Ok(g)).then(|| f[0].to_string())
                })
            })
        })
        .unwrap_or_else(|| "kvm".into());
    format!(
        "/dev/kvm: {e}: you are not in its group; run `sudo usermod -aG {group} $USER`, then log out and in again (or `newgrp {group}`)"
    )
}

fn cache_file(kernel: &Kernel, places: &Places) -> Option<std::path::PathBuf> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(
        places
            .runtime
            .join(format!("kvm-probe-{}-{}", boot.trim(), kernel.version)),
    )
}

/// Boots to userspace and back under `accel`; the time it took, or why it did not.
pub fn boot(
    kernel: &Kernel,
    initrd: &Path,
    accel: Accel,
    timeout: Duration,
    places: &Places,
) -> Result<Booted, String> {
    let dir = places.runtime.join(format!("probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let r = boot_in(&dir, kernel, initrd, accel, timeout);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn boot_in(
    dir: &Path,
    kernel: &Kernel,
    initrd: &Path,
    accel: Accel,
    timeout: Duration,
) -> Result<Booted, String> {
    let console = dir.join("console");
    let m = Machine {
        kernel: kernel.image.clone(),
        initrd: initrd.to_path_buf(),
        accel,
        memory_mb: super::GUEST_MEMORY_MB,
        control: None,
        shares: Vec::new(),
        kept_home: None,
        root_share: false,
        append: vec![PROBE_WORD.to_string()],
        serial: Some(console.clone()),
    };
    let log = dir.join("qemu.log");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let start = Instant::now();
    let mut child = std::process::Command::new(QEMU)
        .args(m.args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| {
            format!("cannot start {QEMU}: {e} (fix: `apt-get install qemu-system-x86`)")
        })?;
    let ok = |p: &Path| {
        let text = std::fs::read_to_string(p).ok()?;
        // Only a whole line: the console file is read while the guest is still writing it,
        // and a line cut after the marker would lose the Landlock ABI.
        let line = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .find(|l| l.contains(PROBE_OK))?;
        let landlock = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("landlock=")?.parse().ok());
        Some(Booted {
            took: start.elapsed(),
            landlock,
        })
    };
    loop {
        if let Some(b) = ok(&console) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(b);
        }
        if let Ok(Some(st)) = child.try_wait() {
            if let Some(b) = ok(&console) {
                return Ok(b);
            }
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            let first = err
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            return Err(format!("a {} boot failed ({st}): {first}", accel.name()));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "a {} boot did not reach userspace within {} s",
                accel.name(),
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
