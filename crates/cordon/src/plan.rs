//! Turns the person's request and the policy tiers into the effective policy and an
//! enforcement [`Spec`].

use crate::cli::PolicyLayers;
use crate::{dirs, gitprotect};
use cordon_linux::{Spec, Stdio};
use cordon_policy::{
    load_inputs, resolve, CliLayer, Effective, Locations, ProtectKind, ProtectRule, ProtectSet,
};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The per-sandbox private layer when policy sets none (one limit for all of it).
const MIB: u64 = 1 << 20;

pub struct Plan {
    pub spec: Spec,
    pub effective: Effective,
    pub protect: ProtectSet,
    /// Canonical workspace.
    pub workspace: PathBuf,
    /// Paths asked about (`ask_read`, `ask_write`).
    pub asks: crate::fileask::AskPaths,
    /// The active profiles' own `$HOME` configuration (written to the private layer).
    pub own: std::sync::Arc<cordon_policy::OwnConfig>,
    /// `[state] persist` files that did not exist yet: kept at exit if the command made them.
    pub new_state: Vec<PathBuf>,
}

fn canonical(p: &Path, what: &str) -> Result<PathBuf, String> {
    p.canonicalize()
        .map_err(|e| format!("cannot use {what} {}: {e}", p.display()))
}

/// Where `p` leads on the host now, or `None` when it does not exist. Most of the ~200 secret
/// paths are missing on a given machine: one lstat says so, where canonicalize costs a
/// readlink per component (and start-up time counts).
pub fn leads_to(p: &Path) -> Option<PathBuf> {
    std::fs::symlink_metadata(p).ok()?;
    p.canonicalize().ok()
}

/// The canonical home directory.
pub fn home() -> Result<PathBuf, String> {
    let home = dirs::home()?;
    canonical(&home, "HOME")
}

pub fn workspace(layers: &PolicyLayers) -> Result<PathBuf, String> {
    let raw = match &layers.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?,
    };
    let ws = canonical(&raw, "workspace")?;
    if !ws.is_dir() {
        return Err(format!("the workspace {} is not a directory", ws.display()));
    }
    Ok(ws)
}

/// Reads every tier and merges them.
pub fn effective(
    layers: &PolicyLayers,
    home: &Path,
    workspace: &Path,
) -> Result<Effective, String> {
    let cli = CliLayer {
        allow_write: layers.allow_write.iter().map(PathBuf::from).collect(),
        allow_read: layers.allow_read.iter().map(PathBuf::from).collect(),
        deny_read: layers.deny_read.iter().map(PathBuf::from).collect(),
        env: layers.env.iter().map(OsString::from).collect(),
        cwd: std::env::current_dir().ok(),
        fs_mode: layers.fs.as_deref().and_then(cordon_policy::FsMode::parse),
        allow_domain: layers.allow_domain.clone(),
        deny_domain: layers.deny_domain.clone(),
    };
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let locations = Locations::standard(home, xdg.as_deref(), workspace);
    let trust = dirs::load_trust(home)?;
    let inputs = load_inputs(
        home,
        workspace,
        &locations,
        &layers.policy,
        cli,
        Some(&trust),
    )
    .map_err(|e| e.to_string())?;
    let mut inputs = inputs;
    inputs.profiles = crate::profiles::load(home, &layers.profile)?;
    let eff = resolve(&inputs).map_err(|e| e.to_string())?;
    eff.check_workspace(workspace).map_err(|e| e.to_string())?;
    Ok(eff)
}

/// Protected paths: the policy's rules plus what git configuration points at.
pub fn protect_set(eff: &Effective, home: &Path, workspace: &Path) -> Result<ProtectSet, String> {
    // `eff.protect` holds what policy added; `ProtectSet::new` adds the built-in list.
    let mut extra: Vec<ProtectRule> = eff.protect.clone();
    extra.extend(gitprotect::rules(home, workspace));
    // cordon's own sockets (approvals, exec) live there; when a shared /tmp or workspace puts
    // it in reach, the sandbox must not replace or remove them (connecting is refused anyway:
    // the sandbox did not bind them).
    extra.extend(
        ProtectRule::exact(
            &crate::dirs::runtime_dir_path(),
            true,
            Some("cordon's runtime directory".into()),
            cordon_policy::Origin::bare(cordon_policy::Tier::Builtin),
        )
        .ok(),
    );
    ProtectSet::new(home, &extra).map_err(|e| e.to_string())
}

/// How a command's sandbox differs from `cordon run`'s (`cordon mcp` uses this).
#[derive(Debug, Clone, Copy)]
pub struct BuildOpts {
    /// Force this stdio wiring instead of a pty when a terminal is attached.
    pub stdio: Option<Stdio>,
    /// Whether the workspace is writable (else it is bound read-only over itself, so writes
    /// fail with EROFS instead of landing in the private layer; cwd stays there).
    pub workspace_writable: bool,
    /// Extra device nodes under /dev (only `kvm`, for the VM tier's QEMU).
    pub devices: &'static [&'static str],
    /// The command is the VM tier's `cordon vm-host`: a named sandbox records the tier `vm`
    /// and offers no `cordon exec` (that would run outside the guest).
    pub vm: bool,
}

impl Default for BuildOpts {
    fn default() -> Self {
        BuildOpts {
            stdio: None,
            workspace_writable: true,
            devices: &[],
            vm: false,
        }
    }
}

pub fn build(
    layers: &PolicyLayers,
    command: &[OsString],
    net: Option<&crate::net::NetFlags>,
    publish: &[u16],
    opts: BuildOpts,
) -> Result<Plan, String> {
    let home = home()?;
    let workspace = workspace(layers)?;
    let eff = effective(layers, &home, &workspace)?;
    for w in &eff.warnings {
        eprintln!("cordon: warning: {w}");
    }
    let protect = protect_set(&eff, &home, &workspace)?;
    let profiles = crate::profiles::load_all(&home, &layers.profile)?;
    let own = cordon_policy::OwnConfig::new(&home, &profiles).map_err(|e| e.to_string())?;
    let new_state = crate::agentconfig::missing_state_files(&profiles);

    // A read-only workspace is still mounted like a writable one (so it is there even under
    // /tmp, which the sandbox replaces), then bound read-only over itself below.
    let mut writable = vec![workspace.clone()];
    for p in eff.allow_write_paths() {
        let c = canonical(&p, "allow_write path")?;
        eff.check_workspace(&c).map_err(|e| e.to_string())?;
        if !writable.contains(&c) {
            writable.push(c);
        }
    }
    // Missing paths need no hiding; symlinked ones are hidden where they lead, too.
    let mut deny_read = Vec::new();
    for p in eff.deny_read_effective() {
        if let Some(c) = leads_to(&p) {
            if c != p {
                deny_read.push(p.clone());
            }
            deny_read.push(c);
        }
    }
    let mut reopen_read: Vec<PathBuf> = eff
        .allow_read_reopen()
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    // ask_read paths are hidden like deny_read ones: the stand-in is the boundary.
    let asks = crate::fileask::AskPaths::from_policy(&eff, &workspace)?;
    deny_read.extend(asks.hide());
    reopen_read.extend(asks.reopen());
    let mut protect_existing = existing_protected(&protect, &home, &writable);
    // The agent's own configuration is changed in the private layer: a read-only bind would
    // refuse that (and make its atomic replace fail with EBUSY).
    protect_existing.retain(|p| own.writable_in_layer(p, &protect, &writable).is_none());
    if !opts.workspace_writable {
        // Parents first: binds of protected files inside it still follow.
        protect_existing.insert(0, workspace.clone());
    }

    let mut env = cordon_policy::scrub_env(std::env::vars_os(), &eff);
    if net.is_some() {
        let proxy = crate::net::proxy_env();
        env.retain(|(k, _)| !proxy.iter().any(|(pk, _)| pk == k));
        env.extend(proxy);
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let env = env
        .into_iter()
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).ok()
        })
        .collect();
    let argv = command
        .iter()
        .map(|a| {
            CString::new(a.clone().into_vec())
                .map_err(|_| "an argument contains a NUL byte".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stdio = if let Some(forced) = opts.stdio {
        forced
    } else if cordon_linux::sandbox::any_stdio_is_tty() {
        Stdio::Pty
    } else {
        Stdio::Inherit
    };
    let limits = &eff.limits;
    let spec = Spec {
        uid: cordon_linux::sys::getuid(),
        gid: cordon_linux::sys::getgid(),
        home,
        writable,
        cwd: workspace.clone(),
        deny_read,
        reopen_read,
        protect_existing,
        layer_bytes: limits.layer_mb.value.saturating_mul(MIB),
        max_tasks: u64::from(limits.max_tasks.value),
        memory_bytes: limits.memory_mb.value.saturating_mul(MIB),
        argv,
        env,
        path_var,
        stdio,
        hostname: "cordon".into(),
        door: net.is_some(),
        host_ports: net.map(|n| n.host_ports.clone()).unwrap_or_default(),
        publish: publish.to_vec(),
        persist: None,
        files: Vec::new(),
        extra_devices: opts.devices.iter().map(|d| d.to_string()).collect(),
    };
    Ok(Plan {
        spec,
        effective: eff,
        protect,
        workspace,
        asks,
        own: std::sync::Arc::new(own),
        new_state,
    })
}

/// Protected paths that exist now in a writable place: they get read-only binds, a second wall
/// behind the path guard. Only literal patterns are looked up (at the workspace and
/// allow_write roots for `anywhere` rules); the guard covers every other match at run time.
fn existing_protected(set: &ProtectSet, home: &Path, writable: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for rule in set.rules() {
        // A rule without `/**` protects a name (e.g. `.git`), not what is inside it: only
        // files get a read-only bind for it; the guard keeps the name from being moved.
        let subtree = rule.pattern.ends_with("/**");
        let body = rule.pattern.strip_suffix("/**").unwrap_or(&rule.pattern);
        if !rule.literal && body.contains(['*', '?', '[']) {
            continue;
        }
        let candidates: Vec<PathBuf> = match rule.kind {
            ProtectKind::Home => vec![home.join(body)],
            ProtectKind::Absolute => vec![PathBuf::from(body)],
            ProtectKind::Anywhere => writable.iter().map(|w| w.join(body)).collect(),
        };
        for c in candidates {
            let Ok(meta) = std::fs::symlink_metadata(&c) else {
                continue;
            };
            let inside = c.starts_with(home) || writable.iter().any(|w| c.starts_with(w));
            if inside && (meta.is_file() || (subtree && meta.is_dir())) && !out.contains(&c) {
                out.push(c);
            }
        }
    }
    // Parents before children, so a bound directory does not hide a later bind inside it.
    out.sort_by_key(|p| p.components().count());
    out
}
