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
