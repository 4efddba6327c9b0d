//! `cordon kube render|claim|check`: the wiring. Policy comes from the same tiers as `cordon
//! run` (cordon-policy exports it); cordon-kube renders and checks.

use crate::cli::PolicyLayers;
use crate::{plan, EXIT_CORDON};
use clap::{Args, Subcommand};
use cordon_kube::check::{check, Schemas};
use cordon_kube::render::{POD_SECRETS_DIR, POD_WORKSPACE, SECRET_KEY};
use cordon_kube::{Mode, Options, Policy, Seccomp};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum KubeCommand {
    /// Print agent-sandbox objects that run CMD under `cordon run` in a pod, with this
    /// machine's effective policy as the pod's managed tier
    #[command(
        after_help = "Writes a ConfigMap (the policy), a NetworkPolicy and a Sandbox, or with --template a \
                      SandboxTemplate and a SandboxWarmPool, as YAML on stdout; notes (secrets to create, \
                      weaker modes) on stderr. Same inputs, same bytes: the clock is --now (default: \
                      SOURCE_DATE_EPOCH, else now)."
    )]
    Render(RenderArgs),
    /// Print a SandboxClaim for one warm sandbox of a template's pool
    Claim(ClaimArgs),
    /// Validate a manifest offline: core objects against the Kubernetes schemas, agent-sandbox
    /// objects against their CRDs (schema and CEL rules); errors as FILE:LINE
    Check(CheckArgs),
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct RenderArgs {
    #[command(flatten)]
    pub layers: PolicyLayers,
    /// The container image (with cordon and the agent installed)
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// A kept sandbox: shutdownPolicy Retain and volume claims for the workspace and cordon's
    /// state (else Delete, and emptyDirs)
    #[arg(long, value_name = "NAME", conflicts_with = "template")]
    pub name: Option<String>,
    /// Render a SandboxTemplate and a SandboxWarmPool named NAME instead of a Sandbox
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// With --template: warm pods in the pool
    #[arg(long, value_name = "N", requires = "template", default_value_t = 1)]
    pub warm: u32,
    /// runtimeClassName: runc (default), kata-* (a VM per pod); gvisor is refused
    #[arg(long, value_name = "CLASS")]
    pub runtime_class: Option<String>,
    /// Accept a runtime class where cordon cannot run inside (gvisor); the gaps are printed
    #[arg(long)]
    pub weaker: bool,
    /// metadata.namespace of every object
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The container's seccomp profile: runtime-default, unconfined or localhost:PROFILE
    #[arg(long, value_name = "PROFILE", default_value = "runtime-default")]
    pub seccomp: String,
    /// Size of a named sandbox's workspace volume
    #[arg(long, value_name = "SIZE", default_value = "10Gi")]
    pub workspace_size: String,
    /// Seconds since the epoch that shutdownTime counts from
    #[arg(long, value_name = "SECS")]
    pub now: Option<u64>,
    /// Do not pick a profile from the command's name
    #[arg(long)]
    pub no_auto_profile: bool,
    /// The command run inside cordon in the pod
    #[arg(required = true, value_name = "CMD", allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ClaimArgs {
    #[command(flatten)]
    pub layers: PolicyLayers,
    /// The template (and warm pool) name
    pub template: String,
    /// The claim's name (default: TEMPLATE-NOW)
    #[arg(long = "claim-name", value_name = "NAME")]
    pub claim_name: Option<String>,
    /// metadata.namespace
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Seconds since the epoch that shutdownTime counts from
    #[arg(long, value_name = "SECS")]
    pub now: Option<u64>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The manifest (YAML, one or more documents)
    pub file: PathBuf,
    /// Directory with the agent-sandbox CRD files (default: $CORDON_KUBE_CRDS)
    #[arg(long, value_name = "DIR")]
    pub crds: Option<PathBuf>,
    /// The previous version of the manifest, for transition rules (immutable fields)
    #[arg(long, value_name = "FILE")]
    pub old: Option<PathBuf>,
}

pub fn kube(cmd: KubeCommand) -> i32 {
    match cmd {
        KubeCommand::Render(a) => done(render(a)),
        KubeCommand::Claim(a) => done(claim(a)),
        KubeCommand::Check(a) => check_cmd(&a),
    }
}

fn done(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cordon: {e}");
            EXIT_CORDON
        }
    }
}

fn now(arg: Option<u64>) -> Result<u64, String> {
    if let Some(n) = arg {
        return Ok(n);
    }
    if let Some(v) = std::env::var_os("SOURCE_DATE_EPOCH") {
        return v
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "SOURCE_DATE_EPOCH is not a number of seconds".to_string());
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|e| format!("the clock is before 1970: {e}"))
}

/// The effective policy of this machine, exported for the pod.
fn pod_policy(layers: &PolicyLayers) -> Result<Policy, String> {
    let home = plan::home()?;
    let ws = plan::workspace(layers)?;
    let eff = plan::effective(layers, &home, &ws)?;
    let out = eff.export_managed(&cordon_policy::Relocate {
        workspace: POD_WORKSPACE.into(),
        secrets_dir: POD_SECRETS_DIR.into(),
        secret_file: SECRET_KEY.into(),
    })?;
    Ok(Policy {
        toml: out.toml,
        secrets: out.secrets,
        egress: eff.network.egress(),
        max_age: eff.limits.max_age.value,
    })
}

fn render(mut a: RenderArgs) -> Result<(), String> {
    if !a.no_auto_profile {
        let home = plan::home()?;
        let argv: Vec<std::ffi::OsString> = a.command.iter().map(Into::into).collect();
        if let Some(p) = crate::profiles::auto_select(&home, &argv)? {
            if !a.layers.profile.contains(&p) {
                a.layers.profile.push(p);
            }
        }
    }
    let policy = pod_policy(&a.layers)?;
    let opts = Options {
        name: a.name,
        image: a.image,
        runtime_class: a.runtime_class,
        weaker: a.weaker,
        namespace: a.namespace,
        command: a.command,
        now: now(a.now)?,
        workspace_size: a.workspace_size,
        seccomp: Seccomp::parse(&a.seccomp)?,
    };
    let mode = match a.template {
        Some(name) => Mode::Template { name, warm: a.warm },
        None => Mode::Sandbox,
    };
    let r = cordon_kube::render(&policy, &opts, &mode)?;
    for n in &r.notes {
        eprintln!("cordon: {n}");
    }
    print!("{}", r.yaml);
    Ok(())
}

fn claim(a: ClaimArgs) -> Result<(), String> {
    let policy = pod_policy(&a.layers)?;
    let now = now(a.now)?;
    let name = a
        .claim_name
        .unwrap_or_else(|| format!("{}-{now}", a.template));
    let y = cordon_kube::render_claim(
        &a.template,
        &name,
        a.namespace.as_deref(),
        now,
        policy.max_age,
    )?;
    print!("{y}");
    Ok(())
}

fn check_cmd(a: &CheckArgs) -> i32 {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let result = (|| -> Result<i32, String> {
        let crds = a
            .crds
            .clone()
            .or_else(|| std::env::var_os("CORDON_KUBE_CRDS").map(PathBuf::from));
        let schemas = Schemas::load(crds.as_deref())?;
        let text = read(&a.file)?;
        let old = a.old.as_ref().map(read).transpose()?;
        let findings = check(&schemas, &text, old.as_deref());
        let file = a.file.display();
        let mut errors = 0;
        for f in &findings {
            if f.error {
                errors += 1;
                eprintln!("{file}:{}: {}", f.line, f.message);
            } else {
                eprintln!("{file}:{}: note: {}", f.line, f.message);
            }
        }
        if errors == 0 {
            println!("{file}: ok");
            Ok(0)
        } else {
            Ok(1)
        }
    })();
    match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cordon: {e}");
            EXIT_CORDON
        }
    }
}

/// In a container: which of the pod settings `cordon kube render` writes are missing, from
/// what the process can see and from the probe sandbox's error (`None`: it started).
/// Lines are (ok, setting, detail); empty outside a container.
pub fn doctor_lines(probe_error: Option<&str>) -> Vec<(bool, &'static str, String)> {
    let in_container = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::env::var_os("container").is_some()
        || std::path::Path::new("/run/.containerenv").exists()
        || std::path::Path::new("/.dockerenv").exists();
    if !in_container {
        return Vec::new();
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let apparmor = std::fs::read_to_string("/proc/self/attr/apparmor/current")
        .or_else(|_| std::fs::read_to_string("/proc/self/attr/current"))
        .unwrap_or_default();
    container_report(&mountinfo, &uid_map, &status, apparmor.trim(), probe_error)
}

/// The syscalls measured as needed beyond a containerd/moby-style default seccomp profile.
pub const SECCOMP_NEEDS: &str = "unshare, clone (namespace flags), mount, umount2, pivot_root, open_tree, move_mount, mount_setattr, fsopen, fsconfig, fsmount";

fn container_report(
    mountinfo: &str,
    uid_map: &str,
    status: &str,
    apparmor: &str,
    probe_error: Option<&str>,
) -> Vec<(bool, &'static str, String)> {
    let mut out = Vec::new();
    // Mounts over parts of /proc: the engine's masked and read-only paths.
    let masked: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with("/proc/"))
        .collect();
    out.push(if masked.is_empty() {
        (true, "procMount: Unmasked", "/proc has no masked paths".to_string())
    } else {
        (
            false,
            "procMount: Unmasked",
            format!(
                "/proc has masked paths ({}): cordon cannot mount its own /proc; set securityContext.procMount: Unmasked (with hostUsers: false)",
                masked.iter().take(4).copied().collect::<Vec<_>>().join(", ")
            ),
        )
    });
    let identity = uid_map
        .split_whitespace()
        .collect::<Vec<_>>()
        .starts_with(&["0", "0", "4294967295"]);
    // cordon itself runs either way (measured); Kubernetes accepts Unmasked only with it.
    out.push((
        !identity || masked.is_empty(),
        "hostUsers: false",
        if identity {
            "this container shares the host's user namespace: cordon runs either way; in a Kubernetes pod, procMount: Unmasked also needs hostUsers: false".into()
        } else {
            "the pod has its own user namespace".into()
        },
    ));
    let seccomp_on = status
        .lines()
        .any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2'));
    let refused = probe_error.is_some_and(|e| {
        e.contains("Function not implemented")
            || (e.contains("Operation not permitted") && !e.contains("proc filesystem"))
    });
    out.push(match (seccomp_on, refused) {
        (true, true) => (
            false,
            "seccompProfile",
            format!(
                "the container's seccomp profile refused a call cordon needs (see sandbox start); use a Localhost profile that also allows {SECCOMP_NEEDS} (or Unconfined)"
            ),
        ),
        (true, false) => (true, "seccompProfile", "a profile is active and lets cordon start".into()),
        (false, _) => (true, "seccompProfile", "no profile on the container (cordon's own filter confines the command)".into()),
    });
    if !apparmor.is_empty() && apparmor != "unconfined" {
        let denied = probe_error.is_some_and(|e| e.contains("Permission denied"));
        out.push((
            !denied,
            "appArmorProfile",
            if denied {
                format!("AppArmor profile {apparmor} refused a mount cordon needs; set appArmorProfile: type: Unconfined (not measured here: this machine has no AppArmor)")
            } else {
                format!("AppArmor profile {apparmor} lets cordon start")
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASKED: &str = "123 185 0:83 /bus /proc/bus ro,nosuid - proc proc rw\n128 185 0:84 /null /proc/keys rw - tmpfs tmpfs rw\n";

    #[test]
    fn doctor_names_each_missing_pod_setting() {
        let r = container_report(
            MASKED,
            "0 0 4294967295\n",
            "Seccomp:\t2\n",
            "",
            Some("cannot create a proc filesystem: Operation not permitted"),
        );
        let missing: Vec<_> = r.iter().filter(|l| !l.0).map(|l| l.1).collect();
        assert_eq!(missing, ["procMount: Unmasked", "hostUsers: false"]);
        assert!(r[0].2.contains("/proc/bus"));
        let r = container_report(
            "",
            "0 400000 65536\n",
            "Seccomp:\t2\n",
            "",
            Some("cannot make mounts private: Function not implemented (os error 38)"),
        );
        let missing: Vec<_> = r.iter().filter(|l| !l.0).map(|l| l.1).collect();
        assert_eq!(missing, ["seccompProfile"]);
        assert!(r[2].2.contains("open_tree"));
        let r = container_report(
            "",
            "0 400000 65536\n",
            "Seccomp:\t2\n",
            "cri-containerd.apparmor.d (enforce)",
            None,
        );
        assert!(r.iter().all(|l| l.0), "{r:?}");
    }
}
