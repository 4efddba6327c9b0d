//! The agent's own configuration, saved inside a sandbox: collected at exit, kept host-side,
//! shown (`cordon config diff`) and copied out by the person (`cordon config apply NAME`).
//!
//! Inside, writes to an active profile's own `$HOME` configuration land in the private layer
//! (the decision is [`cordon_policy::OwnConfig::writable_in_layer`]). The supervisor holds a
//! descriptor of the sandbox's `$HOME` overlay, taken before the command runs; the overlay
//! outlives the sandbox as long as that descriptor is open, so after the command ends the files
//! the agent changed are read from it and stored under `~/.local/state/cordon/config/NAME/`,
//! which every sandbox has hidden. Nothing read from the sandbox is trusted: no symlink is
//! followed (in the sandbox, in the store, or on the host), only regular files of bounded size
//! are taken, host files are replaced atomically, and only paths the profile names are applied.
//!
//! `[state] persist` files that did not exist when the run started (a first login's
//! `auth.json`) are kept the same way, straight to the host, when the host still has none.

use cordon_policy::{OwnConfig, Profile};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A file larger than this is not an agent's settings file: not taken.
const MAX_FILE: u64 = 4 << 20;
/// At most this many files are taken from one sandbox (a hostile tree may be huge).
const MAX_FILES: usize = 512;
/// At most this deep below a configuration directory.
const MAX_DEPTH: usize = 8;

/// The host-side store of configuration saved inside sandboxes.
pub fn store(home: &Path) -> PathBuf {
    crate::dirs::state_dir(home).join("config")
}

/// `~/rest` for messages.
/// How a saved file is named to the person: `~/...`, with anything in the name that could act
/// on the terminal shown as an escape (the sandbox chose the name).
pub fn tilde(home: &Path, p: &Path) -> String {
    let shown = match p.strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => p.display().to_string(),
    };
    crate::approval::sanitize::visible(&shown)
}

/// The profiles' `[state] persist` paths that do not exist now.
pub fn missing_state_files(profiles: &[Profile]) -> Vec<PathBuf> {
    profiles
        .iter()
        .flat_map(|p| p.persist_paths())
        .filter(|p| matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == io::ErrorKind::NotFound))
        .collect()
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The normal components of `rel` (a relative path without `..`).
fn parts(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::other(format!(
                "{} is not a plain relative path",
                rel.display()
            ))),
        })
        .collect()
}

/// Opens (creating missing ones, mode 0700) the directories of `rel` below `root`, never
/// following a symlink. Returns the innermost.
fn mkdirs_at(root: OwnedFd, rel: &Path) -> io::Result<OwnedFd> {
    let mut dir = root;
    for name in parts(rel)? {
        let next = match open_dir_at(dir.as_fd(), Path::new(name)) {
            Ok(d) => d,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(dir.as_fd(), name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_dir_at(dir.as_fd(), Path::new(name))?
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory (a symlink is never followed)",
                    Path::new(name).display()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        dir = next;
    }
    Ok(dir)
}

/// Creates directory `path` (under `home`) and its missing parents, each 0700.
pub fn mkdirs_under(home: &Path, path: &Path) -> io::Result<()> {
    let rel = path
        .strip_prefix(home)
        .map_err(|_| io::Error::other("not under $HOME"))?;
    let root = rustix::fs::open(
        home,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    mkdirs_at(root, rel).map(drop)
}

/// How [`write_beneath`] treats an existing file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    Replace,
    Keep,
}

/// Writes `bytes` to `root/rel` atomically (a new file renamed over the old one), creating
/// missing parent directories (0700) and following no symlink. An existing target that is not
/// a regular file is refused; its mode is kept, a new file gets `mode`. With
/// [`Existing::Keep`] an existing target is left alone (`Ok(false)`).
fn write_beneath(
    root: &Path,
    rel: &Path,
    bytes: &[u8],
    mode: u32,
    existing: Existing,
) -> io::Result<bool> {
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let rootfd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir = mkdirs_at(rootfd, parent)?;
    let mode = match rustix::fs::statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => {
            return Err(io::Error::other(format!(
                "{} is not a regular file; not replaced",
                rel.display()
            )))
        }
        Ok(_) if existing == Existing::Keep => return Ok(false),
        Ok(st) => st.st_mode & 0o7777,
        Err(Errno::NOENT) => mode,
        Err(e) => return Err(e.into()),
    };
    let mut tmp = b".".to_vec();
    tmp.extend_from_slice(name.as_bytes());
    tmp.extend_from_slice(format!(".cordon-{}", std::process::id()).as_bytes());
    let tmp = std::ffi::OsStr::from_bytes(&tmp);
    let _ = rustix::fs::unlinkat(dir.as_fd(), tmp, AtFlags::empty());
    let fd = rustix::fs::openat(
        dir.as_fd(),
        tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    let mut f = std::fs::File::from(fd);
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| {
            let flags = match existing {
                Existing::Replace => rustix::fs::RenameFlags::empty(),
                Existing::Keep => rustix::fs::RenameFlags::NOREPLACE,
            };
            rustix::fs::renameat_with(dir.as_fd(), tmp, dir.as_fd(), name, flags)
                .map_err(io::Error::from)
        });
    match written {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = rustix::fs::unlinkat(dir.as_fd(), tmp, AtFlags::empty());
            if e.raw_os_error() == Some(libc::EEXIST) {
                return Ok(false);
            }
            Err(e)
        }
    }
}

/// Directories of the sandbox's `$HOME`, opened through init's root before the command runs
/// and kept open: the mounts they are on outlive the sandbox while they are, so what the
/// agent saved can still be read after it ends.
pub struct SandboxView {
    /// (path inside, descriptor): `$HOME` and the directories holding the agent's own files
    /// (on a `$HOME` built around mounts below it, each may be a mount of its own).
    dirs: Vec<(PathBuf, OwnedFd)>,
}

impl SandboxView {
    /// Opens `$HOME` and the parent directory of each of `paths` that exists inside.
    pub fn open(init_pid: libc::pid_t, home: &Path, paths: &[PathBuf]) -> io::Result<Self> {
        let at = |p: &Path| -> io::Result<OwnedFd> {
            let mut full = format!("/proc/{init_pid}/root").into_bytes();
            full.extend_from_slice(p.as_os_str().as_bytes());
            Ok(rustix::fs::open(
                std::ffi::OsStr::from_bytes(&full),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?)
        };
        let mut dirs = vec![(home.to_path_buf(), at(home)?)];
        for p in paths {
            let Some(parent) = p.parent().filter(|d| d.starts_with(home)) else {
                continue;
            };
            if dirs.iter().any(|(d, _)| d == parent) {
                continue;
            }
            if let Ok(fd) = at(parent) {
                dirs.push((parent.to_path_buf(), fd));
            }
        }
        Ok(SandboxView { dirs })
    }

    /// Opens `path` (absolute, under `$HOME`) inside, below the nearest opened directory and
    /// on its mount (a path bound from the host is the host's file, not the layer's).
    fn open_path(&self, path: &Path) -> Option<OwnedFd> {
        let (dir, fd) = self
            .dirs
            .iter()
            .filter(|(d, _)| path.starts_with(d))
            .max_by_key(|(d, _)| d.components().count())?;
        open_beneath(fd.as_fd(), path.strip_prefix(dir).ok()?).ok()
    }
}

/// Opens `rel` (empty: `dir` itself) below `dir`, never following a symlink nor crossing a
/// mount.
fn open_beneath(dir: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
}

/// The content of regular file `fd`, if it is one and not too large.
fn read_regular(fd: OwnedFd) -> Option<Vec<u8>> {
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size as u64 > MAX_FILE
    {
        return None;
    }
    let mut out = Vec::new();
    use std::io::Read;
    std::fs::File::from(fd)
        .take(MAX_FILE + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_FILE).then_some(out)
}

/// Regular files at or below `top` (opened by `open`), bounded in count and depth.
fn files_below(
    top: &Path,
    open: &dyn Fn(&Path) -> Option<OwnedFd>,
    out: &mut Vec<(PathBuf, Vec<u8>)>,
) {
    let mut stack = vec![(top.to_path_buf(), 0usize)];
    while let Some((path, depth)) = stack.pop() {
        if out.len() >= MAX_FILES {
            return;
        }
        let Some(fd) = open(&path) else {
            continue;
        };
        let Ok(st) = rustix::fs::fstat(&fd) else {
            continue;
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                if let Some(bytes) = read_regular(fd) {
                    out.push((path, bytes));
                }
            }
            FileType::Directory if depth < MAX_DEPTH => {
                let Ok(mut d) = rustix::fs::Dir::read_from(&fd) else {
                    continue;
                };
                while let Some(Ok(e)) = d.read() {
                    let n = e.file_name().to_bytes();
                    if n == b"." || n == b".." || is_half_written(n) {
                        continue;
                    }
                    stack.push((path.join(std::ffi::OsStr::from_bytes(n)), depth + 1));
                }
            }
            _ => {}
        }
    }
}

/// The host's bytes of `path`, if it is a regular file.
/// Bytes shown as text only when they are UTF-8 without NULs.
fn as_text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().filter(|t| !t.contains('\0'))
}

fn host_bytes(path: &Path) -> Option<Vec<u8>> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    read_regular(fd)
}

/// What [`collect`] found.
#[derive(Default)]
pub struct Collected {
    /// (profile, path under `$HOME`) of configuration saved inside and stored host-side.
    pub saved: Vec<(String, PathBuf)>,
    /// New state files copied to the host.
    pub kept: Vec<PathBuf>,
    /// What could not be stored or kept.
    pub errors: Vec<String>,
}

/// Where the view must reach: every own-configuration root and every new state file.
pub fn watched(own: &OwnConfig, new_state: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = own.roots().into_iter().map(|(_, p)| p).collect();
    out.extend(new_state.iter().cloned());
    out
}

/// After the run: stores the agent's changed own configuration and keeps new state files.
pub fn collect(
    view: &SandboxView,
    own: &OwnConfig,
    new_state: &[PathBuf],
    shared: &[PathBuf],
) -> Collected {
    let home = own.home();
    let mut done = Collected::default();
    let mut found = Vec::new();
    let open = |p: &Path| view.open_path(p);
    for (_, root) in own.roots() {
        files_below(&root, &open, &mut found);
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    for (path, bytes) in found {
        // Exactly what the guard let the sandbox write to its layer, nothing else.
        let Some(m) = own.owner(&path) else { continue };
        let Ok(rel) = path.strip_prefix(home) else {
            continue;
        };
        if shared.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        // What the agent rewrites itself, and changes only to its own counters, are nothing
        // for the person to review.
        if own.regenerated(&path) || unchanged_for_review(own, &path, &bytes) {
            continue;
        }
        let dir = store(home).join(m.profile);
        let stored = std::fs::create_dir_all(&dir)
            .and_then(|()| write_beneath(&dir, rel, &bytes, 0o600, Existing::Replace));
        match stored {
            Ok(_) => done.saved.push((m.profile.to_string(), path)),
            Err(e) => done
                .errors
                .push(format!("cannot store {}: {e}", tilde(home, &path))),
        }
    }
    for path in new_state {
        let Ok(rel) = path.strip_prefix(home) else {
            continue;
        };
        let Some(bytes) = view.open_path(path).and_then(read_regular) else {
            continue;
        };
        match write_beneath(home, rel, &bytes, 0o600, Existing::Keep) {
            Ok(true) => done.kept.push(path.clone()),
            Ok(false) => {}
            Err(e) => done
                .errors
                .push(format!("cannot keep {}: {e}", tilde(home, path))),
        }
    }
    done
}

/// Whether `new` (saved inside for `path`) equals the host's file, or differs from it only in
/// keys the profile names as updated by the agent itself (`[config.volatile]`). A file the
/// host does not have is always something to review.
fn unchanged_for_review(own: &OwnConfig, path: &Path, new: &[u8]) -> bool {
    let Some(old) = host_bytes(path) else {
        return false;
    };
    if old == new {
        return true;
    }
    let keys = own.volatile_keys(path);
    !keys.is_empty() && same_but(&keys, &old, new)
}

/// `old` and `new` parsed alike (JSON, else TOML) and equal once `keys` are removed from both.
fn same_but(keys: &[&str], old: &[u8], new: &[u8]) -> bool {
    fn json(b: &[u8]) -> Option<serde_json::Value> {
        serde_json::from_slice(b).ok()
    }
    fn toml_value(b: &[u8]) -> Option<serde_json::Value> {
        let t: toml::Table = std::str::from_utf8(b).ok()?.parse().ok()?;
        serde_json::to_value(t).ok()
    }
    fn strip(v: &mut serde_json::Value, key: &str) {
        let mut parts: Vec<&str> = key.split('.').collect();
        let Some(last) = parts.pop() else { return };
        let mut at = v;
        for p in parts {
            match at.get_mut(p) {
                Some(next) => at = next,
                None => return,
            }
        }
        if let Some(map) = at.as_object_mut() {
            map.remove(last);
        }
    }
    let (Some(mut a), Some(mut b)) = (
        json(old).or_else(|| toml_value(old)),
        json(new).or_else(|| toml_value(new)),
    ) else {
        return false;
    };
    for k in keys {
        strip(&mut a, k);
        strip(&mut b, k);
    }
    a == b
}

/// The one line printed at exit when the agent saved configuration inside.
pub fn exit_line(home: &Path, c: &Collected) -> Option<String> {
    if c.saved.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = c.saved.iter().map(|(p, _)| p.as_str()).collect();
    names.dedup();
    // Agents install whole skill trees at start: the line names a few and counts the rest.
    const SHOWN: usize = 3;
    let mut files: Vec<String> = c
        .saved
        .iter()
        .take(SHOWN)
        .map(|(_, p)| tilde(home, p))
        .collect();
    if c.saved.len() > SHOWN {
        files.push(format!("and {} more", c.saved.len() - SHOWN));
    }
    let name = names.first().copied().unwrap_or_default();
    Some(format!(
        "cordon: {} saved its settings inside the sandbox only ({}); review with `cordon config diff`, keep with `cordon config apply {name}`",
        names.join(", "),
        files.join(", ")
    ))
}

/// Regular files stored for profile `name`: (path relative to `$HOME`, bytes). No symlink in
/// the store is followed: what is in it came from a sandbox.
fn stored(home: &Path, name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = store(home).join(name);
    let Ok(fd) = rustix::fs::open(
        &dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Vec::new();
    };
    let open = |p: &Path| open_beneath(fd.as_fd(), p.strip_prefix(&dir).ok()?).ok();
    let mut out = Vec::new();
    files_below(&dir, &open, &mut out);
    let mut out: Vec<(PathBuf, Vec<u8>)> = out
        .into_iter()
        .filter_map(|(p, b)| Some((p.strip_prefix(&dir).ok()?.to_path_buf(), b)))
        .collect();
    out.sort();
    out
}

/// A file [`write_beneath`] had not finished (`.NAME.cordon-PID`).
fn is_half_written(name: &[u8]) -> bool {
    let s = String::from_utf8_lossy(name);
    s.starts_with('.')
        && s.rsplit_once(".cordon-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Profile names with stored configuration.
fn stored_profiles(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store(home))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| cordon_policy::check_profile_name(n).is_ok())
        .collect();
    names.sort();
    names
}

/// `cordon config diff [NAME]`: each stored file against the host's.
pub fn diff(name: Option<&str>) -> Result<i32, String> {
    let home = crate::plan::home()?;
    let names = match name {
        Some(n) => {
            cordon_policy::check_profile_name(n)?;
            vec![n.to_string()]
        }
        None => stored_profiles(&home),
    };
    let mut any = false;
    let mut out = io::stdout().lock();
    for n in &names {
        let own = crate::profiles::load_one(&home, n)
            .ok()
            .and_then(|p| OwnConfig::new(&home, std::slice::from_ref(&p)).ok());
        for (rel, new) in stored(&home, n) {
            let path = home.join(&rel);
            // Stored by an older cordon, or the host caught up since: nothing to review.
            if own
                .as_ref()
                .is_some_and(|o| o.regenerated(&path) || unchanged_for_review(o, &path, &new))
            {
                continue;
            }
            any = true;
            let old = host_bytes(&path);
            let shown = tilde(&home, &path);
            let _ = writeln!(out, "# {n}: {shown}");
            let host_label = match &old {
                Some(_) => format!("{shown} (host)"),
                None => format!("{shown} (not on the host)"),
            };
            let old = old.unwrap_or_default();
            // The bytes came from inside the sandbox: text is shown with every control
            // character escaped, anything else only by its size.
            match (as_text(&old), as_text(&new)) {
                (Some(old_text), Some(new_text)) => {
                    let d = similar::TextDiff::from_lines(old_text, new_text);
                    let diff = d
                        .unified_diff()
                        .header(&host_label, &format!("{shown} (saved inside the sandbox)"))
                        .to_string();
                    let _ = write!(out, "{}", crate::approval::sanitize::visible(&diff));
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "binary file: {host_label} {} bytes, saved inside the sandbox {} bytes (not shown)",
                        old.len(),
                        new.len()
                    );
                }
            }
        }
    }
    if !any {
        println!(
            "nothing saved{} (agents' settings changed inside a sandbox appear here after it ends)",
            name.map(|n| format!(" by {n}")).unwrap_or_default()
        );
    }
    Ok(0)
}

/// `cordon config apply NAME`: copies the stored files of profile NAME to the host, each only
/// if that profile names it as its own configuration.
pub fn apply(name: &str) -> Result<i32, String> {
    let home = crate::plan::home()?;
    let profile = crate::profiles::load_one(&home, name)?;
    let own = OwnConfig::new(&home, std::slice::from_ref(&profile)).map_err(|e| e.to_string())?;
    let files = stored(&home, name);
    if files.is_empty() {
        println!("nothing saved by {name}");
        return Ok(0);
    }
    let mut failed = 0;
    let mut applied = 0;
    for (rel, bytes) in files {
        let path = home.join(&rel);
        let shown = tilde(&home, &path);
        if own.owner(&path).is_none() {
            eprintln!("cordon: {shown} is not {name}'s own configuration; not applied");
            failed += 1;
            continue;
        }
        if own.regenerated(&path) || unchanged_for_review(&own, &path, &bytes) {
            // Nothing of the person's: the agent on the host writes its own copy.
            let _ = remove_stored(&home, name, &rel);
            continue;
        }
        match write_beneath(&home, &rel, &bytes, 0o600, Existing::Replace) {
            Ok(_) => {
                println!("applied {shown}");
                applied += 1;
                let _ = remove_stored(&home, name, &rel);
            }
            Err(e) => {
                eprintln!("cordon: cannot apply {shown}: {e}");
                failed += 1;
            }
        }
    }
    if applied == 0 && failed == 0 {
        println!(
            "nothing to apply for {name}: what it saved is what it rewrites or counts by itself"
        );
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn remove_stored(home: &Path, name: &str, rel: &Path) -> io::Result<()> {
    let dir = store(home).join(name);
    let parent = rel.parent().unwrap_or(Path::new(""));
    let root = rustix::fs::open(
        &dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = root;
    for n in parts(parent)? {
        d = open_dir_at(d.as_fd(), Path::new(n))?;
    }
    let file = rel.file_name().ok_or_else(|| io::Error::other("no name"))?;
    Ok(rustix::fs::unlinkat(d.as_fd(), file, AtFlags::empty())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_beneath_replaces_files_atomically_and_never_through_a_link() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        // New file, parents created 0700, file `mode`.
        assert!(
            write_beneath(root, Path::new("a/b/f"), b"one", 0o600, Existing::Replace)
                .expect("write")
        );
        assert_eq!(
            std::fs::read(root.join("a/b/f")).ok(),
            Some(b"one".to_vec())
        );
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .ok()
        };
        assert_eq!(mode(&root.join("a")), Some(0o700));
        assert_eq!(mode(&root.join("a/b/f")), Some(0o600));
        // Replacing keeps the old mode; Keep leaves an existing file alone.
        std::fs::set_permissions(root.join("a/b/f"), std::fs::Permissions::from_mode(0o640))
            .expect("chmod");
        assert!(
            write_beneath(root, Path::new("a/b/f"), b"two", 0o600, Existing::Replace)
                .expect("write")
        );
        assert_eq!(mode(&root.join("a/b/f")), Some(0o640));
        assert!(
            !write_beneath(root, Path::new("a/b/f"), b"three", 0o600, Existing::Keep)
                .expect("write")
        );
        assert_eq!(
            std::fs::read(root.join("a/b/f")).ok(),
            Some(b"two".to_vec())
        );
        // A symlinked parent or target is refused, and what it points at is untouched.
        let outside = root.join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
        assert!(write_beneath(root, Path::new("link/f"), b"x", 0o600, Existing::Replace).is_err());
        std::os::unix::fs::symlink(outside.join("t"), root.join("a/b/l")).expect("symlink");
        assert!(write_beneath(root, Path::new("a/b/l"), b"x", 0o600, Existing::Replace).is_err());
        assert!(std::fs::read_dir(&outside).expect("read").next().is_none());
        // `..` never leaves the root.
        assert!(
            write_beneath(root, Path::new("../escape"), b"x", 0o600, Existing::Replace).is_err()
        );
        // No half-written file is left behind.
        let names: Vec<_> = std::fs::read_dir(root.join("a/b"))
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            names.iter().all(|n| !is_half_written(n.as_bytes())),
            "{names:?}"
        );
    }

    #[test]
    fn the_exit_line_names_a_few_files_and_counts_the_rest() {
        let home = Path::new("/home/u");
        let mut c = Collected::default();
        assert!(exit_line(home, &c).is_none());
        for i in 0..5 {
            c.saved
                .push(("codex".into(), home.join(format!(".codex/skills/s{i}"))));
        }
        let line = exit_line(home, &c).expect("a line");
        assert!(line.contains("~/.codex/skills/s0"), "{line}");
        assert!(line.contains("and 2 more"), "{line}");
        assert!(line.contains("cordon config apply codex"), "{line}");
        assert_eq!(line.lines().count(), 1);
    }
}
