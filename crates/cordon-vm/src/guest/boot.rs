//! Early guest set-up: capabilities init gives up, the kernel modules it loads, and the
//! control port it finds.

use super::sys;
use crate::config::PORT_NAME;
use crate::initramfs::MODULE_LIST;
use std::path::{Path, PathBuf};

pub fn drop_bounding_set() {
    for cap in 0..64 {
        // SAFETY: integer-only prctl; EINVAL past the last capability ends the loop.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            break;
        }
    }
}

pub fn load_modules(cmdline: &str) -> Result<(), String> {
    let list = std::fs::read_to_string(Path::new("/").join(MODULE_LIST)).unwrap_or_default();
    for m in list.lines().filter(|l| !l.is_empty()) {
        let params = module_params(cmdline, &crate::kernel::mod_name(m));
        sys::load_module(Path::new(m), &params).map_err(|e| format!("load module {m}: {e}"))?;
    }
    Ok(())
}

/// `NAME.param=value` words of the kernel command line for module NAME (what modprobe would
/// pass: the kernel applies them only to built-in code). QEMU's microvm puts its virtio-mmio
/// devices there.
pub fn module_params(cmdline: &str, name: &str) -> String {
    let prefix = format!("{name}.");
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&prefix))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The control port's device node (devtmpfs names it vportNpM; sysfs has its name).
pub fn find_port() -> Result<PathBuf, String> {
    for _ in 0..1000 {
        if let Ok(rd) = std::fs::read_dir("/sys/class/virtio-ports") {
            for e in rd.flatten() {
                let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
                if name.trim() == PORT_NAME {
                    let dev = Path::new("/dev").join(e.file_name());
                    if dev.exists() {
                        return Ok(dev);
                    }
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(format!("no virtio-serial port named {PORT_NAME}"))
}
