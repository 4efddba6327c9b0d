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

pub fn config_dir(home: &Path) -> PathBuf {
    xdg("XDG_CONFIG_HOME", home, ".config").join("cordon")
}

pub fn state_dir(home: &Path) -> PathBuf {
    xdg("XDG_STATE_HOME", home, ".local/state").join("cordon")
}

/// The managed (administrator) policy.
pub const MANAGED_POLICY: &str = "/etc/cordon/policy.toml";
