//! `cordon kube render`: a cordon policy as agent-sandbox objects. The pod runs `cordon run`
//! with the policy as its managed tier (the inner walls); the objects add the outer ones.
//!
//! Deterministic: the output depends only on the inputs (the clock is one: [`Options::now`]).

use std::collections::BTreeMap;

use cordon_policy::Egress;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar,
    KeyToPath, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, SeccompProfile,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::crd::{
    ClaimLifecycle, LocalRef, PodTemplate, PodTemplateMeta, Sandbox, SandboxClaim,
    SandboxClaimSpec, SandboxSpec, SandboxTemplate, SandboxTemplateSpec, SandboxWarmPool,
    SandboxWarmPoolSpec, TemplateNetworkPolicy, VolumeClaimTemplate, VolumeClaimTemplateMeta,
};

/// Where things live inside the pod's container.
pub const POD_HOME: &str = "/home/agent";
/// The workspace inside the pod.
pub const POD_WORKSPACE: &str = "/workspace";
/// The managed tier's directory (the ConfigMap volume).
pub const POD_POLICY_DIR: &str = "/etc/cordon";
/// One directory per secret below this; hidden from the sandbox by the managed policy.
pub const POD_SECRETS_DIR: &str = "/etc/cordon-secrets";
/// The key inside each Kubernetes Secret that holds the value.
pub const SECRET_KEY: &str = "value";
/// The container's user: cordon needs no root, only user namespaces.
pub const POD_UID: i64 = 1000;

/// The policy side of a rendering, computed by cordon-policy from the effective policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The managed-tier file for the pod (from `Effective::export_managed`).
    pub toml: String,
    /// `[secrets.NAME]` names, in policy order.
    pub secrets: Vec<String>,
    /// What the door needs to reach (from `Network::egress`).
    pub egress: Egress,
    /// `[lifecycle] max_age`, seconds.
    pub max_age: u64,
}

/// The container's seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    /// The runtime's default (measured enough with CRI-O's and podman's profile).
    RuntimeDefault,
    /// A profile on the node (containerd's default refuses unshare and mount without
    /// CAP_SYS_ADMIN: `cordon kube render --seccomp localhost:PROFILE`).
    Localhost(String),
    /// No profile: cordon's own filter is then the only one, on the sandboxed command.
    Unconfined,
}

impl Seccomp {
    /// `runtime-default`, `unconfined` or `localhost:PATH`.
    pub fn parse(s: &str) -> Result<Seccomp, String> {
        match s {
            "runtime-default" => Ok(Seccomp::RuntimeDefault),
            "unconfined" => Ok(Seccomp::Unconfined),
            _ => match s.strip_prefix("localhost:") {
                Some(p) if !p.is_empty() => Ok(Seccomp::Localhost(p.to_string())),
                _ => Err(format!(
                    "--seccomp {s:?}: expected runtime-default, unconfined or localhost:PROFILE"
                )),
            },
        }
    }
}

/// What the person asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--name`: a kept sandbox (Retain, volume claims for the workspace and cordon's state).
    pub name: Option<String>,
    /// The container image (must contain cordon at `/usr/local/bin/cordon` or on PATH).
    pub image: String,
    /// `--runtime-class`.
    pub runtime_class: Option<String>,
    /// `--weaker`: accept a runtime class where cordon's inner walls cannot run.
    pub weaker: bool,
    /// `--namespace`.
    pub namespace: Option<String>,
    /// The command run inside cordon.
    pub command: Vec<String>,
    /// Seconds since the epoch the shutdown time counts from.
    pub now: u64,
    /// Size requested for a named sandbox's workspace volume.
    pub workspace_size: String,
    /// The container's seccomp profile.
    pub seccomp: Seccomp,
}

/// Sandbox, or template + warm pool.
#[derive(Debug, Clone)]
pub enum Mode {
    /// One `Sandbox` (with its NetworkPolicy and ConfigMap).
    Sandbox,
    /// `SandboxTemplate` (its own `networkPolicy`) + `SandboxWarmPool` of `warm` pods.
    Template {
        /// Template (and warm pool) name.
        name: String,
        /// Warm pods.
        warm: u32,
    },
}

/// The rendered manifest and what the person should know about it (printed on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Multi-document YAML.
    pub yaml: String,
    /// One line each.
    pub notes: Vec<String>,
}

/// How strong the runtime class is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuntimeTier {
    /// runc and friends: the node's kernel, cordon's walls inside.
    Container,
    /// kata-*: a VM per pod, cordon's walls inside the guest (R2).
    Vm,
    /// gVisor: no Landlock, no seccomp user notification: cordon cannot run inside.
    Gvisor,
}

fn runtime_tier(rc: Option<&str>) -> RuntimeTier {
    match rc {
        Some(r) if r.starts_with("kata") => RuntimeTier::Vm,
        Some(r) if r.starts_with("gvisor") || r.starts_with("runsc") => RuntimeTier::Gvisor,
        _ => RuntimeTier::Container,
    }
}

/// What is lost when the command runs under gVisor without cordon (printed with `--weaker`).
pub const GVISOR_GAPS: &[&str] = &[
    "M1: only the NetworkPolicy (ports and address ranges) limits egress; no per-name rules, no DNS filtering, no approvals",
    "M2: writes are limited only by the container (read-only root, the workspace and emptyDirs writable)",
    "M3: agent, git and shell configuration in the workspace and $HOME is not protected",
    "R3: nothing is hidden inside the container (no secrets are mounted: a [secrets] entry is refused)",
    "R4: no approvals",
    "R5: no placeholders ([secrets] refused)",
];

/// Checks a Kubernetes object name (RFC 1123 label: what a Service and a pod name need).
pub fn check_name(what: &str, n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 53
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {n:?}: a Kubernetes name needs lower-case letters, digits and `-` (at most 53, no `-` at either end)"
        ))
    }
}

/// The Kubernetes Secret a cordon secret is read from (`GITHUB_TOKEN` -> `cordon-github-token`).
pub fn secret_object_name(secret: &str) -> String {
    let body: String = secret
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect();
    format!("cordon-{}", body.trim_matches('-'))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cordon");
const SANDBOX_LABEL: &str = "cordon.dev/sandbox";
const TEMPLATE_LABEL: &str = "cordon.dev/template";

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        ..Default::default()
    }
}

/// Renders the objects. Errors are one line for the person.
pub fn render(policy: &Policy, opts: &Options, mode: &Mode) -> Result<Rendered, String> {
    let mut notes = Vec::new();
    let tier = runtime_tier(opts.runtime_class.as_deref());
    match tier {
        RuntimeTier::Gvisor if !opts.weaker => {
            return Err(format!(
                "runtime class {}: gVisor implements neither Landlock nor seccomp user notification, so cordon's inner walls (the path guard for M2/M3, hidden secrets, approvals, the door) cannot run there; use runc or a kata-* class (a VM per pod), or pass --weaker to run the command under gVisor without cordon (its gaps are printed)",
                opts.runtime_class.as_deref().unwrap_or_default()
            ))
        }
        RuntimeTier::Gvisor => {
            if !policy.secrets.is_empty() {
                return Err("--weaker under gVisor: [secrets] need cordon's door (the real value would be inside the container); remove them or use another runtime class".into());
            }
            notes.push("WEAKER: under gVisor the command runs without cordon; what is lost:".into());
            notes.extend(GVISOR_GAPS.iter().map(|g| format!("  {g}")));
        }
        RuntimeTier::Vm => notes.push(format!(
            "runtime class {}: a VM per pod (R2), cordon's walls inside the guest",
            opts.runtime_class.as_deref().unwrap_or_default()
        )),
        RuntimeTier::Container => {}
    }
    if opts.command.is_empty() {
        return Err("a command to run is needed (after --)".into());
    }
    if let Some(ns) = &opts.namespace {
        check_name("--namespace", ns)?;
    }
    let ns = opts.namespace.as_deref();
    let (base, named) = match (mode, &opts.name) {
        (Mode::Template { name, .. }, _) => {
            check_name("--template", name)?;
            (name.clone(), false)
        }
        (Mode::Sandbox, Some(n)) => {
            check_name("--name", n)?;
            (n.clone(), true)
        }
        (Mode::Sandbox, None) => (default_name(policy, opts), false),
    };
    for s in &policy.secrets {
        notes.push(format!(
            "secret {s}: create it in the namespace before applying: kubectl create secret generic {} --from-file={SECRET_KEY}=FILE",
            secret_object_name(s)
        ));
    }
    let selector_label = match mode {
        Mode::Sandbox => (SANDBOX_LABEL, base.as_str()),
        Mode::Template { .. } => (TEMPLATE_LABEL, base.as_str()),
    };
    let pod_labels = labels(&[MANAGED_BY, selector_label]);
    let config = format!("{base}-policy");
    let pod = pod_spec(policy, opts, tier, &config, named.then_some(base.as_str()));
    let pod_template = PodTemplate {
        metadata: PodTemplateMeta {
            labels: Some(pod_labels.clone()),
        },
        spec: pod,
    };
    let mut docs = Vec::new();
    if tier != RuntimeTier::Gvisor {
        docs.push(yaml(&ConfigMap {
            metadata: meta(&config, ns, pod_labels.clone()),
            data: Some(BTreeMap::from([(
                "policy.toml".to_string(),
                policy.toml.clone(),
            )])),
            ..Default::default()
        })?);
    }
    let (ingress, egress) = network_rules(&policy.egress);
    match mode {
        Mode::Sandbox => {
            docs.push(yaml(&NetworkPolicy {
                metadata: meta(&base, ns, labels(&[MANAGED_BY, selector_label])),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(labels(&[selector_label])),
                        ..Default::default()
                    }),
                    policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                    ingress: Some(ingress),
                    egress: Some(egress),
                }),
            })?);
            let vcts = if named {
                volume_claims(&opts.workspace_size)
            } else {
                None
            };
            docs.push(yaml(&Sandbox {
                api_version: crate::crd::SANDBOX_API,
                kind: "Sandbox",
                metadata: meta(&base, ns, labels(&[MANAGED_BY, selector_label])),
                spec: SandboxSpec {
                    pod_template,
                    volume_claim_templates: vcts,
                    shutdown_time: Some(rfc3339(opts.now.saturating_add(policy.max_age))),
                    shutdown_policy: Some(if named { "Retain" } else { "Delete" }),
                },
            })?);
        }
        Mode::Template { name, warm } => {
            docs.push(yaml(&SandboxTemplate {
                api_version: crate::crd::EXTENSIONS_API,
                kind: "SandboxTemplate",
                metadata: meta(name, ns, labels(&[MANAGED_BY, selector_label])),
                spec: SandboxTemplateSpec {
                    pod_template,
                    network_policy: TemplateNetworkPolicy { ingress, egress },
                },
            })?);
            docs.push(yaml(&SandboxWarmPool {
                api_version: crate::crd::EXTENSIONS_API,
                kind: "SandboxWarmPool",
                metadata: meta(name, ns, labels(&[MANAGED_BY, selector_label])),
                spec: SandboxWarmPoolSpec {
                    replicas: *warm,
                    sandbox_template_ref: LocalRef { name: name.clone() },
                },
            })?);
            notes.push(format!(
                "claim a warm sandbox per agent: cordon kube claim {name} | kubectl apply -f -"
            ));
        }
    }
    let mut out = String::from(
        "# Rendered by `cordon kube render`: the pod runs `cordon run` with the policy below as its\n\
         # managed tier (inner walls); these objects are the outer ones. Check: cordon kube check FILE\n",
    );
    for d in docs {
        out.push_str("---\n");
        out.push_str(&annotate(&d));
    }
    Ok(Rendered { yaml: out, notes })
}

/// `cordon kube claim`: one `SandboxClaim` of a warm pool.
pub fn render_claim(
    pool: &str,
    claim: &str,
    namespace: Option<&str>,
    now: u64,
    max_age: u64,
) -> Result<String, String> {
    check_name("template", pool)?;
    check_name("--claim-name", claim)?;
    if let Some(ns) = namespace {
        check_name("--namespace", ns)?;
    }
    let doc = yaml(&SandboxClaim {
        api_version: crate::crd::EXTENSIONS_API,
        kind: "SandboxClaim",
        metadata: meta(
            claim,
            namespace,
            labels(&[MANAGED_BY, (TEMPLATE_LABEL, pool)]),
        ),
        spec: SandboxClaimSpec {
            warm_pool_ref: LocalRef {
                name: pool.to_string(),
            },
            lifecycle: ClaimLifecycle {
                shutdown_time: rfc3339(now.saturating_add(max_age)),
                shutdown_policy: "Delete",
            },
        },
    })?;
    Ok(format!("---\n{doc}"))
}

/// An unnamed sandbox's name: a digest of what it runs, so the same inputs give the same name.
fn default_name(policy: &Policy, opts: &Options) -> String {
    let mut h = Sha256::new();
    for part in [
        opts.image.as_str(),
        opts.runtime_class.as_deref().unwrap_or(""),
        policy.toml.as_str(),
    ]
    .into_iter()
    .chain(opts.command.iter().map(String::as_str))
    {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let d = h.finalize();
    let hex: String = d.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("cordon-{hex}")
}

fn pod_spec(
    policy: &Policy,
    opts: &Options,
    tier: RuntimeTier,
    config: &str,
    name: Option<&str>,
) -> PodSpec {
    let mut mounts = vec![
        mount("home", POD_HOME, false),
        mount("tmp", "/tmp", false),
        mount("workspace", POD_WORKSPACE, false),
    ];
    let mut volumes = vec![
        Volume {
            name: "home".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    if name.is_some() {
        mounts.push(mount(
            "state",
            &format!("{POD_HOME}/.local/state/cordon"),
            false,
        ));
    } else {
        volumes.push(Volume {
            name: "workspace".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
    }
    let command = if tier == RuntimeTier::Gvisor {
        opts.command.clone()
    } else {
        mounts.push(mount("policy", POD_POLICY_DIR, true));
        volumes.push(Volume {
            name: "policy".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config.to_string(),
                default_mode: Some(0o444),
                items: Some(vec![KeyToPath {
                    key: "policy.toml".into(),
                    path: "policy.toml".into(),
                    mode: None,
                }]),
                optional: Some(false),
            }),
            ..Default::default()
        });
        for s in &policy.secrets {
            let vol = format!("secret-{}", &secret_object_name(s)["cordon-".len()..]);
            mounts.push(mount(&vol, &format!("{POD_SECRETS_DIR}/{s}"), true));
            volumes.push(Volume {
                name: vol,
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret_object_name(s)),
                    // Group-readable through fsGroup: cordon (the pod's user) reads it, the
                    // sandbox inside never sees the directory (managed deny_read).
                    default_mode: Some(0o440),
                    items: Some(vec![KeyToPath {
                        key: SECRET_KEY.into(),
                        path: SECRET_KEY.into(),
                        mode: None,
                    }]),
                    optional: Some(false),
                }),
                ..Default::default()
            });
        }
        let mut c = vec![
            "cordon".to_string(),
            "run".into(),
            "--no-auto-profile".into(),
            "-w".into(),
            POD_WORKSPACE.into(),
            // Audit events as JSON lines on stdout: what `kubectl logs` shows.
            "--audit".into(),
            "-".into(),
        ];
        if let Some(n) = name {
            c.push("--name".into());
            c.push(n.to_string());
        }
        c.push("--".into());
        c.extend(opts.command.iter().cloned());
        c
    };
    let seccomp = match &opts.seccomp {
        Seccomp::RuntimeDefault => SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        },
        Seccomp::Localhost(p) => SeccompProfile {
            type_: "Localhost".into(),
            localhost_profile: Some(p.clone()),
        },
        Seccomp::Unconfined => SeccompProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        },
    };
    let container = Container {
        name: "agent".into(),
        image: Some(opts.image.clone()),
        command: Some(command),
        working_dir: Some(POD_WORKSPACE.into()),
        env: Some(vec![EnvVar {
            name: "HOME".into(),
            value: Some(POD_HOME.into()),
            value_from: None,
        }]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(POD_UID),
            run_as_group: Some(POD_UID),
            proc_mount: (tier != RuntimeTier::Gvisor).then(|| "Unmasked".into()),
            seccomp_profile: Some(seccomp),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        host_users: Some(false),
        runtime_class_name: opts.runtime_class.clone(),
        security_context: Some(PodSecurityContext {
            fs_group: Some(POD_UID),
            run_as_non_root: Some(true),
            ..Default::default()
        }),
        containers: vec![container],
        volumes: Some(volumes),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn volume_claims(size: &str) -> Option<Vec<VolumeClaimTemplate>> {
    let claim = |name: &str, size: &str| VolumeClaimTemplate {
        metadata: VolumeClaimTemplateMeta {
            name: name.to_string(),
        },
        spec: PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(size.to_string()),
                )])),
                limits: None,
            }),
            ..Default::default()
        },
    };
    Some(vec![claim("workspace", size), claim("state", "1Gi")])
}

fn port(protocol: &str, p: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(i32::from(p))),
        end_port: None,
    }
}

/// No ingress; egress to the cluster DNS, to public addresses on the policy's ports (every
/// special range refused, as the door does), and to each `allow_cidrs` block.
fn network_rules(e: &Egress) -> (Vec<NetworkPolicyIngressRule>, Vec<NetworkPolicyEgressRule>) {
    let mut egress = vec![NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("kubernetes.io/metadata.name", "kube-system")])),
                ..Default::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("k8s-app", "kube-dns")])),
                ..Default::default()
            }),
            ip_block: None,
        }]),
        ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
    }];
    let ports = |set: &Option<std::collections::BTreeSet<u16>>| {
        set.as_ref()
            .map(|s| s.iter().map(|p| port("TCP", *p)).collect::<Vec<_>>())
    };
    let public = match &e.public_ports {
        Some(s) if s.is_empty() => None,
        other => Some(ports(other)),
    };
    if let Some(ports) = public {
        let block = |cidr: &str, except: Vec<String>| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.into(),
                except: Some(except),
            }),
            ..Default::default()
        };
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![
                block("0.0.0.0/0", cordon_policy::special::v4_special_cidrs()),
                block("::/0", cordon_policy::special::v6_special_cidrs()),
            ]),
            ports,
        });
    }
    for (cidr, p) in &e.cidrs {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: cidr.clone(),
                    except: None,
                }),
                ..Default::default()
            }]),
            ports: ports(p),
        });
    }
    (Vec::new(), egress)
}

fn yaml<T: Serialize>(v: &T) -> Result<String, String> {
    serde_norway::to_string(v).map_err(|e| format!("cannot serialise: {e}"))
}

/// Why each security setting is there, as a comment on its line (YAML serialisers drop
/// comments, so they are added to the text; each key occurs once per pod).
const WHY: &[(&str, &str)] = &[
    ("hostUsers: false", "the pod's root is not the node's; the API requires it for procMount: Unmasked"),
    ("automountServiceAccountToken: false", "no API token inside the pod"),
    ("enableServiceLinks: false", "no service addresses in the environment"),
    ("procMount: Unmasked", "measured: cordon mounts a fresh /proc for its pid namespace; the kernel refuses while the container's /proc has masked paths (\"cannot create a proc filesystem\")"),
    ("allowPrivilegeEscalation: false", "cordon needs no setuid or file capabilities: its user namespace gives it what it needs"),
    ("readOnlyRootFilesystem: true", "measured: cordon writes only /tmp (its runtime dir, approval socket), $HOME (run logs) and the workspace, all volumes below"),
    ("type: RuntimeDefault", "measured enough with the CRI-O/podman profile; containerd's needs --seccomp localhost:PROFILE (docs/kubernetes.md)"),
    ("type: Unconfined", "asked for: cordon's own filter still confines the command inside"),
    ("- ALL", "cordon needs no capability in the container"),
];

fn annotate(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len() + 512);
    for line in doc.lines() {
        out.push_str(line);
        let t = line.trim_start();
        if let Some((_, why)) = WHY.iter().find(|(k, _)| t == *k) {
            out.push_str("  # ");
            out.push_str(why);
        } else if t.starts_with("runtimeClassName: kata") {
            out.push_str("  # a VM per pod: a second kernel (R2)");
        }
        out.push('\n');
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), for dates from 1970 on.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
