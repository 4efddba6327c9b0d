//! Where cordon keeps its own files (and nowhere else): state, cache, config, runtime.

use std::path::{Path, PathBuf};

/// The person's home directory: `$HOME`, which must be absolute.
pub fn home() -> Result<PathBuf, String> {
    match std::env::var_os("HOME") {
        Some(h) if Path::new(&h).is_absolute() => Ok(PathBuf::from(h)),
        _ => Err("HOME is not set to an absolute path (set HOME and try again)".into()),
    }
}

fn xdg(var: &str, home: &Path, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => home.join(default),
    }
}

#[allow(dead_code)]
pub fn config_dir(home: &Path) -> PathBuf {
    xdg("XDG_CONFIG_HOME", home, ".config").join("cordon")
}

pub fn state_dir(home: &Path) -> PathBuf {
    xdg("XDG_STATE_HOME", home, ".local/state").join("cordon")
}

/// Where `cordon trust` records trusted project files: outside every workspace, and under
/// `$HOME`, which the sandbox only ever sees through its private layer.
pub fn trust_file(home: &Path) -> PathBuf {
    state_dir(home).join("trusted-projects")
}

pub fn load_trust(home: &Path) -> Result<cordon_policy::TrustStore, String> {
    let file = trust_file(home);
    match std::fs::read_to_string(&file) {
        Ok(text) => cordon_policy::TrustStore::parse(&file, &text).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cordon_policy::TrustStore::parse(&file, "").map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// Where [`runtime_dir`] is, without creating it.
pub fn runtime_dir_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d).join("cordon"),
        _ => PathBuf::from(format!("/tmp/cordon-{}", cordon_linux::sys::getuid())),
    }
}

/// The most bytes of a unix socket path (`sun_path` without its terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// A name for the socket at `path` that fits `sockaddr_un`: the path itself when it fits,
/// else `/proc/self/fd/N/NAME` through a descriptor of its directory (kept open in the
/// returned value for as long as the name is used). A workspace or runtime directory under
/// a long path then works instead of failing with "path must be shorter than SUN_LEN".
pub struct SocketName {
    _dir: Option<std::os::fd::OwnedFd>,
    pub path: PathBuf,
}

pub fn socket_name(path: &Path) -> Result<SocketName, String> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() <= SUN_PATH_MAX {
        return Ok(SocketName {
            _dir: None,
            path: path.to_path_buf(),
        });
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("{}: not a socket path", path.display()));
    };
    let dir = rustix::fs::open(
        parent,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", parent.display()))?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    if short.as_os_str().as_bytes().len() > SUN_PATH_MAX {
        return Err(format!(
            "{}: the socket's name is too long (at most {SUN_PATH_MAX} bytes)",
            path.display()
        ));
    }
    Ok(SocketName {
        _dir: Some(dir),
        path: short,
    })
}

/// How to name cordon in a hint the person will type: `cordon` when that is what `PATH`
/// finds, else the path of the running binary (a build in `target/`, a copy elsewhere).
pub fn self_command() -> String {
    let Ok(me) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "cordon".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .filter(|d| d.is_absolute())
            .filter_map(|d| std::fs::canonicalize(d.join("cordon")).ok())
            .next()
            .is_some_and(|found| found == me)
    });
    if on_path {
        return "cordon".into();
    }
    let shown = me.display().to_string();
    if shown
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        shown
    } else {
        format!("'{}'", shown.replace('\'', "'\\''"))
    }
}

/// cordon's runtime directory: `$XDG_RUNTIME_DIR/cordon`, else `/tmp/cordon-$UID`; created
/// 0700 and refused unless it is a real directory owned by the person (a planted symlink or
/// someone else's directory in /tmp must not be used).
pub fn runtime_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = cordon_linux::sys::getuid();
    let dir = runtime_dir_path();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| format!("cannot use {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "refusing to use {}: it must be a directory owned by you with mode 0700 (remove it and try again)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Where the VM tier keeps built initramfs images (`$XDG_CACHE_HOME/cordon/vm`, else
/// `~/.cache/cordon/vm`) and its probe results (the runtime directory).
pub fn vm_places() -> Result<cordon_vm::Places, String> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => home()?.join(".cache"),
    };
    Ok(cordon_vm::Places {
        cache: base.join("cordon").join("vm"),
        runtime: runtime_dir()?,
    })
}

/// Removes per-run directories (`run-<pid>`) left by cordon processes that no longer exist.
pub fn sweep_runs(runtime: &Path) {
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
