//! Merging tiers into the effective policy.
//!
//! Tiers, strongest first: Managed, User (+ `-p` files) and Cli (same strength), Project,
//! Builtin. Lists are unioned; deny beats allow; a weaker tier only tightens what a stronger
//! one set. See the crate docs for the full rules.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::effective::{check_workspace, Approval, Effective, Limits, Network};
use crate::error::PolicyError;
use crate::file::parse_policy;
use crate::layer::{CliLayer, Layer, UnknownAction};
use crate::paths::normalize;
use crate::tier::{Origin, Rule, Tier};

const BUILTIN_TOML: &str = include_str!("../data/builtin.toml");
pub(crate) const BUILTIN_NAME: &str = "data/builtin.toml";

// Fallbacks should `data/builtin.toml` ever lack a default; the data file is the source.
const DEFAULT_MAX_TASKS: u32 = 4096;
const DEFAULT_MEMORY_MB: u64 = 8192;
const DEFAULT_LAYER_MB: u64 = 2048;
/// A named sandbox's state lives a week unless policy says less (or, below managed, more).
const DEFAULT_MAX_AGE: u64 = 7 * 24 * 3600;
const DEFAULT_APPROVAL_TIMEOUT: u64 = 60;

/// Everything [`resolve`] needs. File contents are passed in so this crate stays pure;
/// [`load_inputs`](crate::load_inputs) fills this from the standard locations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// `$HOME` (absolute).
    pub home: PathBuf,
    /// The workspace (absolute, ideally canonical).
    pub workspace: PathBuf,
    /// `/etc/cordon/policy.toml`: path and content, if present.
    pub managed: Option<(PathBuf, String)>,
    /// The user policy file, then each `-p FILE`, in order.
    pub user: Vec<(PathBuf, String)>,
    /// `<workspace>/.cordon.toml`: path and content, if present.
    pub project: Option<(PathBuf, String)>,
    /// Whether the person trusted this exact project file content (see [`TrustStore`](crate::TrustStore)).
    pub project_trusted: bool,
    /// Command-line flags.
    pub cli: CliLayer,
    /// Profiles in force (see [`parse_profile`](crate::parse_profile)); merged at the
    /// built-in tier, so every other tier beats them.
    pub profiles: Vec<crate::profile::Profile>,
}

impl Inputs {
    /// Inputs with no policy files and no flags.
    pub fn new(home: impl Into<PathBuf>, workspace: impl Into<PathBuf>) -> Self {
        Inputs {
            home: home.into(),
            workspace: workspace.into(),
            ..Default::default()
        }
    }
}

/// The built-in layer (`data/builtin.toml`), parsed with the same parser as every policy file.
pub fn builtin_layer(home: &Path) -> Result<Layer, PolicyError> {
    parse_policy(Path::new(BUILTIN_NAME), BUILTIN_TOML, Tier::Builtin, home)
}

/// Merges all tiers into the effective policy.
///
/// Errors (one line each, with file:line:col where there is a file): invalid files, a
/// workspace or `allow_write` at or above `$HOME`, a workspace hidden by `deny_read`.
/// Ignored rules are not errors: they are listed in [`Effective::warnings`].
pub fn resolve(inputs: &Inputs) -> Result<Effective, PolicyError> {
    let home = normalize(&inputs.home).map_err(|e| {
        PolicyError::plain(format!("home directory {}: {e}", inputs.home.display()))
    })?;
    let workspace = normalize(&inputs.workspace).map_err(|e| {
        PolicyError::plain(format!("workspace {}: {e}", inputs.workspace.display()))
    })?;
    check_workspace(&home, &workspace)?;

    let mut builtin = builtin_layer(&home)?;
    crate::profile::merge_into(&mut builtin, &inputs.profiles);
    let managed = match &inputs.managed {
        Some((path, text)) => Some(parse_policy(path, text, Tier::Managed, &home)?),
        None => None,
    };
    let mut strong: Vec<Layer> = managed.into_iter().collect();
    for (path, text) in &inputs.user {
        strong.push(parse_policy(path, text, Tier::User, &home)?);
    }
    strong.push(inputs.cli.to_layer(&home)?);

    let mut warnings = Vec::new();
    let project = match &inputs.project {
        Some((path, text)) => {
            let layer = parse_policy(path, text, Tier::Project, &home)?;
            restrict_project(layer, inputs.project_trusted, &mut warnings)
        }
        None => Layer::default(),
    };

    // Strongest first; the project and built-in layers come last.
    let all: Vec<&Layer> = strong.iter().chain([&project, &builtin]).collect();

    let deny_read: Vec<Rule<PathBuf>> = all
        .iter()
        .flat_map(|l| l.deny_read.iter().cloned())
        .collect();
    let allow_read = accepted_allow_read(&all, &deny_read, &mut warnings);

    let mut eff = Effective {
        home,
        workspace,
        allow_write: Vec::new(),
        allow_read,
        deny_read,
        protect: all.iter().flat_map(|l| l.protect.iter().cloned()).collect(),
        env_pass: strong
            .iter()
            .flat_map(|l| l.env_pass.iter().cloned())
            .collect(),
        env_set: merge_env_set(&builtin, &strong),
        limits: merge_limits(&strong, &project, &builtin, &mut warnings),
        network: merge_network(&strong, &project, &builtin),
        approval: merge_approval(&strong, &builtin),
        ask_read: all
            .iter()
            .flat_map(|l| l.ask_read.iter().cloned())
            .collect(),
        ask_write: all
            .iter()
            .flat_map(|l| l.ask_write.iter().cloned())
            .collect(),
        // Strict is narrowing: any tier (the project too) may ask for it, none can undo it.
        fs_mode: all
            .iter()
            .filter_map(|l| l.fs_mode.clone())
            .find(|r| r.value == crate::ask::FsMode::Strict)
            .unwrap_or_else(|| {
                crate::tier::Rule::new(
                    crate::ask::FsMode::Normal,
                    crate::tier::Origin::bare(crate::tier::Tier::Builtin),
                )
            }),
        secrets: last_wins_managed_final(
            strong.iter().flat_map(|l| l.secrets.iter()).collect(),
            |r| r.value.name.clone(),
        ),
        requests: all
            .iter()
            .flat_map(|l| l.requests.iter().cloned())
            .collect(),
        vm_kernel: strong.iter().find_map(|l| l.vm_kernel.clone()),
        warnings: Vec::new(),
    };

    // Deny beats allow: a writable path that is also hidden stays hidden and read-only.
    for rule in all.iter().flat_map(|l| l.allow_write.iter()) {
        if eff.is_read_denied(&rule.value) {
            warnings.push(format!(
                "{}: allow_write `{}` ignored: the path is hidden by deny_read (add an allow_read for it at the same or a stronger tier)",
                rule.origin,
                rule.value.display()
            ));
        } else {
            eff.allow_write.push(rule.clone());
        }
    }
    let ws = eff.workspace.clone();
    eff.check_workspace(&ws)?;
    eff.warnings = warnings;
    Ok(eff)
}

/// Drops what a project file may not do, with a warning for each dropped rule.
/// Untrusted: only tightening survives (deny_read, protect, lower limits, network.deny,
/// `network.unknown = "deny"`). Trusted: also allow_write, allow_read, network.allow; never
/// env, approval, secrets, allow_cidrs or hosts.
fn restrict_project(mut layer: Layer, trusted: bool, warnings: &mut Vec<String>) -> Layer {
    let untrusted = "the project policy is not trusted (`cordon trust` trusts its exact content)";
    let never = "a project policy may never do this, trusted or not";
    let mut drop_paths = |rules: &mut Vec<Rule<PathBuf>>, key: &str, why: &str| {
        for r in rules.drain(..) {
            warnings.push(format!(
                "{}: {key} `{}` ignored: {why}",
                r.origin,
                r.value.display()
            ));
        }
    };
    if !trusted {
        drop_paths(&mut layer.allow_write, "allow_write", untrusted);
        drop_paths(&mut layer.allow_read, "allow_read", untrusted);
    }
    fn drop_shown<T: std::fmt::Display>(
        warnings: &mut Vec<String>,
        rules: &mut Vec<Rule<T>>,
        key: &str,
        why: &str,
    ) {
        for r in rules.drain(..) {
            warnings.push(format!("{}: {key} `{}` ignored: {why}", r.origin, r.value));
        }
    }
    if !trusted {
        drop_shown(warnings, &mut layer.net_allow, "network.allow", untrusted);
    }
    drop_shown(warnings, &mut layer.env_pass, "env.pass", never);
    drop_shown(
        warnings,
        &mut layer.net_allow_cidrs,
        "network.allow_cidrs",
        never,
    );
    for r in layer.env_set.drain(..) {
        // Name only: the value may be a secret.
        warnings.push(format!(
            "{}: env.set `{}` ignored: {never}",
            r.origin, r.value.0
        ));
    }
    if let Some(r) = layer.vm_kernel.take() {
        warnings.push(format!(
            "{}: vm.kernel `{}` ignored: {never}",
            r.origin,
            r.value.display()
        ));
    }
    for r in layer.net_hosts.drain(..) {
        warnings.push(format!(
            "{}: network.hosts `{}` ignored: {never}",
            r.origin, r.value.0
        ));
    }
    if let Some(r) = layer.net_unknown.take() {
        if r.value == UnknownAction::Deny {
            layer.net_unknown = Some(r);
        } else {
            warnings.push(format!(
                "{}: network.unknown = \"ask\" ignored: a project policy can only tighten",
                r.origin
            ));
        }
    }
    if let Some(r) = layer.approval_timeout.take() {
        warnings.push(format!("{}: approval.timeout ignored: {never}", r.origin));
    }
    if let Some(r) = layer.approval_session_scope.take() {
        warnings.push(format!(
            "{}: approval.session_scope ignored: {never}",
            r.origin
        ));
    }
    // The parser refuses secrets in a project file; this only keeps a future change honest.
    for r in layer.secrets.drain(..) {
        warnings.push(format!(
            "{}: secrets.{} ignored: {never}",
            r.origin, r.value.name
        ));
    }
    layer
}

/// An `allow_read` is in force only if no deny covering it (at or above the path) comes from
/// a stronger tier: a Managed deny is final; a Builtin deny yields to User and Cli.
fn accepted_allow_read(
    all: &[&Layer],
    denies: &[Rule<PathBuf>],
    warnings: &mut Vec<String>,
) -> Vec<Rule<PathBuf>> {
    let mut out = Vec::new();
    for rule in all.iter().flat_map(|l| l.allow_read.iter()) {
        let blocker = denies.iter().find(|d| {
            rule.value.starts_with(&d.value)
                && d.origin.tier.strength() > rule.origin.tier.strength()
        });
        match blocker {
            Some(d) => warnings.push(format!(
                "{}: allow_read `{}` ignored: it cannot re-open deny_read `{}` set by the stronger {} tier ({})",
                rule.origin,
                rule.value.display(),
                d.value.display(),
                d.origin.tier,
                d.origin
            )),
            None => out.push(rule.clone()),
        }
    }
    out
}

/// One value per name. A profile's constants (the built-in tier) come first, so every other
/// source overrides them; later user sources override earlier ones (the user file, then each
/// `-p` file, then flags); managed values override everything.
fn merge_env_set(builtin: &Layer, strong: &[Layer]) -> Vec<Rule<(String, OsString)>> {
    let rules: Vec<&Rule<(String, OsString)>> = builtin
        .env_set
        .iter()
        .chain(strong.iter().flat_map(|l| l.env_set.iter()))
        .collect();
    last_wins_managed_final(rules, |r| r.value.0.clone())
}

/// Keyed merge where later rules override earlier ones, except that Managed rules override
/// everything (stable sort keeps the source order inside each group).
fn last_wins_managed_final<T: Clone>(
    mut rules: Vec<&Rule<T>>,
    key: impl Fn(&Rule<T>) -> String,
) -> Vec<Rule<T>> {
    rules.sort_by_key(|r| r.origin.tier == Tier::Managed);
    let mut by_key: BTreeMap<String, Rule<T>> = BTreeMap::new();
    for r in rules {
        by_key.insert(key(r), r.clone());
    }
    by_key.into_values().collect()
}

/// Managed, User and Cli may set any value, and the lowest of them wins (so Managed values
/// are ceilings); with none set, the built-in default applies. The project may only lower it.
fn merge_one<T: Copy + Ord + std::fmt::Display>(
    strong: impl Iterator<Item = Option<Rule<T>>>,
    project: Option<&Rule<T>>,
    builtin: Option<&Rule<T>>,
    fallback: T,
    key: &str,
    warnings: &mut Vec<String>,
) -> Rule<T> {
    let mut best: Option<Rule<T>> = None;
    for r in strong.flatten() {
        if best.as_ref().is_none_or(|b| r.value < b.value) {
            best = Some(r);
        }
    }
    let mut value = best
        .or_else(|| builtin.cloned())
        .unwrap_or_else(|| Rule::new(fallback, Origin::bare(Tier::Builtin)));
    if let Some(p) = project {
        if p.value < value.value {
            value = p.clone();
        } else if p.value > value.value {
            warnings.push(format!(
                "{}: {key} = {} ignored: a project policy can only lower it (in force: {})",
                p.origin, p.value, value.value
            ));
        }
    }
    value
}

fn merge_limits(
    strong: &[Layer],
    project: &Layer,
    builtin: &Layer,
    warnings: &mut Vec<String>,
) -> Limits {
    Limits {
        max_tasks: merge_one(
            strong.iter().map(|l| l.max_tasks.clone()),
            project.max_tasks.as_ref(),
            builtin.max_tasks.as_ref(),
            DEFAULT_MAX_TASKS,
            "limits.max_tasks",
            warnings,
        ),
        memory_mb: merge_one(
            strong.iter().map(|l| l.memory_mb.clone()),
            project.memory_mb.as_ref(),
            builtin.memory_mb.as_ref(),
            DEFAULT_MEMORY_MB,
            "limits.memory_mb",
            warnings,
        ),
        layer_mb: merge_one(
            strong.iter().map(|l| l.layer_mb.clone()),
            project.layer_mb.as_ref(),
            builtin.layer_mb.as_ref(),
            DEFAULT_LAYER_MB,
            "limits.layer_mb",
            warnings,
        ),
        max_age: merge_one(
            strong.iter().map(|l| l.max_age.clone()),
            project.max_age.as_ref(),
            builtin.max_age.as_ref(),
            DEFAULT_MAX_AGE,
            "lifecycle.max_age",
            warnings,
        ),
    }
}

fn merge_network(strong: &[Layer], project: &Layer, builtin: &Layer) -> Network {
    let all = || strong.iter().chain([project, builtin]);
    // Any "deny" wins (the strongest one is shown); else the strongest "ask".
    let unknown = all()
        .filter_map(|l| l.net_unknown.clone())
        .find(|r| r.value == UnknownAction::Deny)
        .or_else(|| all().find_map(|l| l.net_unknown.clone()))
        .unwrap_or_else(|| Rule::new(UnknownAction::Ask, Origin::bare(Tier::Builtin)));
    let hosts = last_wins_managed_final(
        strong.iter().flat_map(|l| l.net_hosts.iter()).collect(),
        |r| r.value.0.clone(),
    );
    Network {
        allow: all().flat_map(|l| l.net_allow.iter().cloned()).collect(),
        deny: all().flat_map(|l| l.net_deny.iter().cloned()).collect(),
        allow_cidrs: all()
            .flat_map(|l| l.net_allow_cidrs.iter().cloned())
            .collect(),
        unknown,
        hosts,
    }
}

fn merge_approval(strong: &[Layer], builtin: &Layer) -> Approval {
    // Managed is final; otherwise the last user source (flags after files) wins.
    let managed_timeout = strong
        .iter()
        .filter_map(|l| l.approval_timeout.clone())
        .find(|r| r.origin.tier == Tier::Managed);
    let timeout = managed_timeout
        .or_else(|| strong.iter().rev().find_map(|l| l.approval_timeout.clone()))
        .or_else(|| builtin.approval_timeout.clone())
        .unwrap_or_else(|| Rule::new(DEFAULT_APPROVAL_TIMEOUT, Origin::bare(Tier::Builtin)));
    // Session-wide approvals are a loosening: any tier saying `false` wins.
    let session_scope = strong
        .iter()
        .filter_map(|l| l.approval_session_scope.clone())
        .find(|r| !r.value)
        .or_else(|| strong.iter().find_map(|l| l.approval_session_scope.clone()))
        .or_else(|| builtin.approval_session_scope.clone())
        .unwrap_or_else(|| Rule::new(false, Origin::bare(Tier::Builtin)));
    Approval {
        timeout,
        session_scope,
    }
}

#[cfg(test)]
mod tests;
