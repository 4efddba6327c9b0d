//! The guest kernel: the newest /boot/vmlinuz-* (or the one policy names) and the modules the
//! guest needs from its /lib/modules tree, in load order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Modules the guest loads (with their dependencies): the virtio-mmio transport, the serial
/// port to the host, the 9p shares and overlayfs for `$HOME`.
pub const WANTED: &[&str] = &[
    "virtio_mmio",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "overlay",
];

/// A guest kernel and its version (the name of its /lib/modules directory).
#[derive(Debug, Clone)]
pub struct Kernel {
    pub image: PathBuf,
    pub version: String,
}

/// The kernel to boot: `named` if given, else the newest /boot/vmlinuz-*.
pub fn find(named: Option<&Path>) -> Result<Kernel, String> {
    let image = match named {
        Some(p) => p.to_path_buf(),
        None => newest_in(Path::new("/boot"))?,
    };
    let version = image
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "cannot tell the version of kernel {} (expected a name vmlinuz-VERSION)",
                image.display()
            )
        })?;
    if let Err(e) = std::fs::File::open(&image) {
        return Err(if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!(
                "the VM kernel {} is readable only by root; fix: `sudo chmod 0644 {}` or name another with `[vm] kernel = \"...\"`",
                image.display(),
                image.display()
            )
        } else {
            format!("cannot read the VM kernel {}: {e}", image.display())
        });
    }
    Ok(Kernel { image, version })
}

fn newest_in(boot: &Path) -> Result<PathBuf, String> {
    let mut found: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(boot)
        .map_err(|e| format!("cannot list {}: {e}", boot.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let ver = name.strip_prefix("vmlinuz-")?;
            Some((version_key(ver), e.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).ok_or_else(|| {
        format!(
            "no kernel for the VM in {} (fix: `apt-get install linux-image-amd64`)",
            boot.display()
        )
    })
}

/// Numeric parts of a version string, for ordering `6.1.0-9` before `6.1.0-10`.
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

/// The module files (paths relative to /lib/modules/VERSION) to load, dependencies first.
/// Modules built into the kernel are simply absent from modules.dep and skipped.
pub fn modules_in_order(version: &str) -> Result<Vec<PathBuf>, String> {
    let dir = Path::new("/lib/modules").join(version);
    let dep = std::fs::read_to_string(dir.join("modules.dep"))
        .map_err(|e| format!("cannot read {}/modules.dep: {e}", dir.display()))?;
    order(&dep, WANTED)
}

pub fn mod_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

fn order(dep: &str, wanted: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in dep.lines() {
        let Some((m, rest)) = line.split_once(':') else {
            continue;
        };
        let ds = rest.split_whitespace().map(str::to_string).collect();
        deps.insert(mod_name(m), (m.to_string(), ds));
    }
    let builtin = |name: &str| !deps.contains_key(name);
    let mut out: Vec<PathBuf> = Vec::new();
    fn visit(
        name: &str,
        deps: &HashMap<String, (String, Vec<String>)>,
        out: &mut Vec<PathBuf>,
        depth: usize,
    ) {
        let Some((path, ds)) = deps.get(name) else {
            return;
        };
        if depth > 64 || out.iter().any(|p| p.as_os_str() == path.as_str()) {
            return;
        }
        // modules.dep lists dependencies so that the last must be loaded first.
        for d in ds.iter().rev() {
            visit(&mod_name(d), deps, out, depth + 1);
        }
        if !out.iter().any(|p| p.as_os_str() == path.as_str()) {
            out.push(PathBuf::from(path));
        }
    }
    for w in wanted {
        if builtin(w) {
            continue;
        }
        visit(w, &deps, &mut out, 0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_builtins_are_skipped() {
        let dep = "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
                   kernel/net/9p/9pnet.ko:\n\
                   kernel/fs/netfs/netfs.ko:\n\
                   kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko\n\
                   kernel/drivers/virtio/virtio_ring.ko:\n";
        let got = order(dep, &["9pnet_virtio", "9p", "overlay"]).unwrap();
        let names: Vec<_> = got.iter().map(|p| mod_name(&p.to_string_lossy())).collect();
        assert_eq!(
            names,
            ["virtio_ring", "9pnet", "9pnet_virtio", "netfs", "9p"]
        );
    }

    #[test]
    fn newest_version_wins() {
        assert!(version_key("6.1.0-10-amd64") > version_key("6.1.0-9-amd64"));
        assert!(version_key("6.12.1") > version_key("6.2.30"));
    }
}
