//! Turns the person's request and the effective policy into an enforcement [`Spec`].

use crate::cli::PolicyLayers;
use cordon_linux::{Spec, Stdio};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Variables that pass into the sandbox unless policy says otherwise.
const ENV_ALLOW: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "COLORTERM", "LANG", "TZ", "EDITOR", "VISUAL"];

pub struct Plan {
    pub spec: Spec,
    pub workspace: PathBuf,
}

fn expand(raw: &str, home: &Path) -> PathBuf {
    if raw == "~" {
        home.to_path_buf()
    } else if let Some(rest) = raw.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(raw)
    }
}

/// Refuses a writable root at or above $HOME or at /.
fn check_writable(p: &Path, home: &Path, what: &str) -> Result<(), String> {
    if p == Path::new("/") || home.starts_with(p) {
        return Err(format!(
            "refusing to make {} writable ({what}): it is $HOME, an ancestor of $HOME, or /; \
             name a project directory instead",
            p.display()
        ));
    }
    Ok(())
}

pub fn build(layers: &PolicyLayers, command: &[OsString]) -> Result<Plan, String> {
    let home = crate::dirs::home()?;
    let home = home.canonicalize().unwrap_or(home);
    let ws_raw = match &layers.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?,
    };
    let workspace = ws_raw
        .canonicalize()
        .map_err(|e| format!("cannot use workspace {}: {e}", ws_raw.display()))?;
    if !workspace.is_dir() {
        return Err(format!("the workspace {} is not a directory", workspace.display()));
    }
    check_writable(&workspace, &home, "workspace")?;

    let mut writable = vec![workspace.clone()];
    for raw in &layers.allow_write {
        let p = expand(raw, &home);
        let p = p.canonicalize().map_err(|e| format!("cannot use --allow-write {raw}: {e}"))?;
        check_writable(&p, &home, "--allow-write")?;
        writable.push(p);
    }

    let mut deny_read: Vec<PathBuf> = Vec::new();
    for raw in &layers.deny_read {
        deny_read.push(expand(raw, &home));
    }
    let deny_read = deny_read.into_iter().filter_map(|p| p.canonicalize().ok()).collect();
    let reopen_read = layers.allow_read.iter().filter_map(|r| expand(r, &home).canonicalize().ok()).collect();

    let mut env = Vec::new();
    let mut path_var = String::from("/usr/local/bin:/usr/bin:/bin");
    for (k, v) in std::env::vars_os() {
        let Some(name) = k.to_str() else { continue };
        if ENV_ALLOW.contains(&name) || name.starts_with("LC_") {
            if name == "PATH" {
                path_var = v.to_string_lossy().into_owned();
            }
            push_env(&mut env, k.clone(), v);
        }
    }
    for e in &layers.env {
        match e.split_once('=') {
            Some((k, v)) => push_env(&mut env, k.into(), v.into()),
            None => {
                if let Some(v) = std::env::var_os(e) {
                    push_env(&mut env, e.into(), v);
                }
            }
        }
    }

    let argv = command
        .iter()
        .map(|a| CString::new(a.clone().into_vec()).map_err(|_| "an argument contains a NUL byte".to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let stdio = if cordon_linux::sandbox::any_stdio_is_tty() { Stdio::Pty } else { Stdio::Inherit };
    let spec = Spec {
        uid: cordon_linux::sys::getuid(),
        gid: cordon_linux::sys::getgid(),
        home,
        writable,
        cwd: workspace.clone(),
        deny_read,
        reopen_read,
        protect_existing: Vec::new(),
        layer_bytes: 2 << 30,
        max_tasks: 4096,
        memory_bytes: 8 << 30,
        argv,
        env,
        path_var,
        stdio,
        hostname: "cordon".into(),
    };
    Ok(Plan { spec, workspace })
}

fn push_env(env: &mut Vec<CString>, k: OsString, v: OsString) {
    let mut kv = k.into_vec();
    kv.push(b'=');
    kv.extend(v.into_vec());
    if let Ok(c) = CString::new(kv) {
        env.push(c);
    }
}
