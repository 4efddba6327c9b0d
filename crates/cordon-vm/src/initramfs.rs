//! The guest's initramfs: cordon itself as /init, the shared libraries it runs with, and the
//! kernel modules the guest needs. Written as a newc cpio by hand (the format is a fixed
//! header per file) and cached per kernel version and cordon build under
//! ~/.cache/cordon/vm/.

use super::kernel::{self, Kernel};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the module load order is written inside the initramfs.
pub const MODULE_LIST: &str = "modules.load";

/// A newc cpio archive being written.
pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
    dirs: Vec<String>,
}

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio {
            out,
            ino: 1,
            dirs: Vec::new(),
        }
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> std::io::Result<()> {
        self.ino += 1;
        let namez = name.len() + 1;
        let head =
            format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino, mode, 0, 0, 1, 0, data.len(), 0, 0, rdev.0, rdev.1, namez, 0
        );
        self.out.write_all(head.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + namez)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> std::io::Result<()> {
        let n = (4 - len % 4) % 4;
        self.out.write_all(&[0u8; 3][..n])
    }

    /// A directory and its parents (each once).
    pub fn dir(&mut self, path: &str) -> std::io::Result<()> {
        let path = path.trim_matches('/');
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(part);
            if !self.dirs.contains(&cur) {
                self.dirs.push(cur.clone());
                let name = cur.clone();
                self.entry(&name, 0o040755, (0, 0), &[])?;
            }
        }
        Ok(())
    }

    /// A regular file (its parent directories are added first).
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.entry(path, 0o100000 | (mode & 0o7777), (0, 0), data)
    }

    /// A character device node.
    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) -> std::io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.entry(path, 0o020600, (major, minor), &[])
    }

    /// Writes the trailer and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A key for this cordon build: its executable's identity (size, mtime, inode).
fn build_id() -> Result<String, String> {
    let m = std::fs::metadata("/proc/self/exe")
        .map_err(|e| format!("cannot inspect cordon's own executable: {e}"))?;
    let mut h = Sha256::new();
    h.update(format!(
        "{}:{}:{}:{}:{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ));
    h.update(env!("CARGO_PKG_VERSION"));
    Ok(h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The cached initramfs for `kernel`, built now if missing (or if cordon or the kernel changed).
pub fn ensure(kernel: &Kernel, places: &crate::Places) -> Result<PathBuf, String> {
    let dir = &places.cache;
    let path = dir.join(format!("initramfs-{}-{}.cpio", kernel.version, build_id()?));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Older images of other builds are of no more use.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            // Never our own name: a concurrent run may be booting from it right now.
            if name.to_string_lossy().starts_with("initramfs-")
                && Some(name.as_os_str()) != path.file_name()
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let tmp = dir.join(format!(".initramfs-{}.tmp", std::process::id()));
    let built = std::fs::File::create(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))
        .and_then(|f| build(std::io::BufWriter::new(f), &kernel.version, dir));
    if let Err(e) = built.and_then(|_| {
        std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// cordon without its debug information, when binutils' `strip` is there: a debug build is
/// mostly DWARF, and every byte of the initramfs is copied and unpacked at each boot.
fn stripped(dir: &Path) -> Option<Vec<u8>> {
    // Not /proc/self/exe: in strip's process that names strip.
    let me = std::fs::read_link("/proc/self/exe").ok()?;
    let tmp = dir.join(format!(".init-{}.tmp", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&tmp)
        .arg(&me)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let data = if ok { std::fs::read(&tmp).ok() } else { None };
    let _ = std::fs::remove_file(&tmp);
    data
}

fn build(out: impl Write, version: &str, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot write the initramfs: {e}");
    let mut c = Cpio::new(out);
    for d in ["dev", "proc", "sys", "mnt", "tmp"] {
        c.dir(d).map_err(io)?;
    }
    // The kernel opens /dev/console for init's stdio before anything is mounted.
    c.chardev("dev/console", 5, 1).map_err(io)?;
    let exe = read(Path::new("/proc/self/exe"))?;
    let init = stripped(dir).unwrap_or_else(|| exe.clone());
    c.file("init", 0o755, &init).map_err(io)?;
    for lib in shared_libraries(&exe)? {
        let data = read(&lib.source)?;
        c.file(&lib.dest, 0o755, &data).map_err(io)?;
    }
    let mods = kernel::modules_in_order(version)?;
    let base = Path::new("/lib/modules").join(version);
    let mut list = String::new();
    for m in &mods {
        let rel = m.to_string_lossy();
        let data = read(&base.join(m))?;
        let dest = format!("modules/{rel}");
        c.file(&dest, 0o644, &data).map_err(io)?;
        list.push('/');
        list.push_str(&dest);
        list.push('\n');
    }
    c.file(MODULE_LIST, 0o644, list.as_bytes()).map_err(io)?;
    c.finish().map_err(io)?;
    Ok(())
}

struct Lib {
    source: PathBuf,
    dest: String,
}

/// The libraries cordon runs with right now (from /proc/self/maps), plus its ELF interpreter at
/// the path the executable names, so the copy in the initramfs starts the same way.
fn shared_libraries(exe: &[u8]) -> Result<Vec<Lib>, String> {
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    let me = std::fs::read_link("/proc/self/exe").ok();
    let mut out: Vec<Lib> = Vec::new();
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        if !path.starts_with('/') || !path.contains(".so") || Some(Path::new(path)) == me.as_deref()
        {
            continue;
        }
        if out.iter().all(|l| l.dest != path) {
            out.push(Lib {
                source: path.into(),
                dest: path.to_string(),
            });
        }
    }
    if let Some(interp) = elf_interp(exe) {
        if out.iter().all(|l| l.dest != interp) {
            out.push(Lib {
                source: interp.clone().into(),
                dest: interp,
            });
        }
    }
    Ok(out)
}

/// PT_INTERP of a 64-bit little-endian ELF image.
fn elf_interp(elf: &[u8]) -> Option<String> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32::from_le_bytes(elf.get(ph..ph + 4)?.try_into().ok()?) == 3 {
            let off = u64_at(ph + 0x08)? as usize;
            let len = u64_at(ph + 0x20)? as usize;
            let raw = elf.get(off..off.checked_add(len)?)?;
            let s = raw.split(|b| *b == 0).next()?;
            return String::from_utf8(s.to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout_is_aligned_and_terminated() {
        let mut c = Cpio::new(Vec::new());
        c.file("a/b", 0o644, b"xyz").unwrap();
        let out = c.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("a/b\0"));
        assert!(s.contains("xyz"));
        assert!(s.contains("TRAILER!!!"));
        // The directory comes before the file in it.
        assert!(s.find("a\0").unwrap() < s.find("a/b\0").unwrap());
    }

    #[test]
    fn own_interpreter_is_found_and_garbage_is_not_a_panic() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let interp = elf_interp(&exe).expect("a dynamically linked test binary");
        assert!(interp.starts_with('/'), "{interp}");
        assert_eq!(elf_interp(b"\x7fELF\x02\x01\x01"), None);
        assert_eq!(elf_interp(&[0xff; 100]), None);
    }
}
