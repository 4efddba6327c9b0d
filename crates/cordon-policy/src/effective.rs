//! The merged policy and the questions enforcement asks of it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::layer::UnknownAction;
use crate::paths::{normalize, writable_root_problem};
use crate::protect::{ProtectRule, ProtectSet};
use crate::tier::Rule;

/// Effective resource limits; each is the value in force and the rule that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of tasks (processes and threads).
    pub max_tasks: Rule<u32>,
    /// Memory cap for the whole sandbox, MiB.
    pub memory_mb: Rule<u64>,
    /// Size of the private writable layer, MiB.
    pub layer_mb: Rule<u64>,
    /// `[lifecycle] max_age`: seconds a named sandbox's state lives (the lowest tier wins).
    pub max_age: Rule<u64>,
}

/// Effective network rules: what the door enforces, each rule with its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Destinations allowed.
    pub allow: Vec<Rule<crate::DomainPattern>>,
    /// Destinations denied (beat `allow`).
    pub deny: Vec<Rule<crate::DomainPattern>>,
    /// Hosts the active profiles list as optional: refused unasked unless a rule allows them.
    pub optional: Vec<Rule<crate::OptionalDomain>>,
    /// Address blocks allowed.
    pub allow_cidrs: Vec<Rule<crate::CidrPattern>>,
    /// What happens to anything else.
    pub unknown: Rule<UnknownAction>,
    /// Pinned name -> address entries, sorted by name.
    pub hosts: Vec<Rule<(String, std::net::IpAddr)>>,
}

/// Effective approval settings: how long a person has to answer, and whether an answer may
/// cover the rest of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Seconds to wait for an answer before denying.
    pub timeout: Rule<u64>,
    /// Whether an approval may cover the rest of the session.
    pub session_scope: Rule<bool>,
}

/// The merged, effective policy: every rule in force with its origin, plus warnings about
/// rules that were ignored. Built by [`resolve`](crate::resolve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// `$HOME`, normalised.
    pub home: PathBuf,
    /// The workspace, normalised (already checked by [`check_workspace`]).
    pub workspace: PathBuf,
    /// Writable paths in force (refused and read-denied ones are not here).
    pub allow_write: Vec<Rule<PathBuf>>,
    /// `allow_read` rules in force (ones that tried to lift a stronger tier's deny are not).
    pub allow_read: Vec<Rule<PathBuf>>,
    /// Every `deny_read` rule of every tier, strongest tier first, built-in last.
    pub deny_read: Vec<Rule<PathBuf>>,
    /// Policy `protect` rules (the built-in data is added by [`Effective::protect_set`]).
    pub protect: Vec<ProtectRule>,
    /// Host variables to pass: exact names or globs (see [`scrub_env`](crate::scrub_env)).
    pub env_pass: Vec<Rule<String>>,
    /// Variables to set, one per name, sorted by name. Values may be secrets: never print them.
    pub env_set: Vec<Rule<(String, OsString)>>,
    /// Resource limits.
    pub limits: Limits,
    /// Network rules (not enforced yet).
    pub network: Network,
    /// Approval settings (not enforced yet).
    pub approval: Approval,
    /// `ask_read` paths of every tier: hidden, and their opens asked about.
    pub ask_read: Vec<Rule<PathBuf>>,
    /// `ask_write` paths of every tier: changes to them are asked about.
    pub ask_write: Vec<Rule<PathBuf>>,
    /// The file-system mode: `strict` if any tier asks for it.
    pub fs_mode: Rule<crate::ask::FsMode>,
    /// Secrets, one per name (user, command-line and managed tiers only).
    pub secrets: Vec<Rule<crate::secrets::SecretDef>>,
    /// Request rules: every table of every tier; a request must pass each table of its host.
    pub requests: Vec<Rule<crate::secrets::RequestTable>>,
    /// `[vm] kernel` of the strongest tier that sets it (never the project's).
    pub vm_kernel: Option<Rule<PathBuf>>,
    /// Human-readable notes about ignored rules, one line each.
    pub warnings: Vec<String>,
}

impl Effective {
    /// Paths hidden from the sandbox, sorted, without duplicates: every `deny_read` path
    /// except those an accepted `allow_read` names exactly.
    ///
    /// Enforcement order: hide every path here, then re-expose each path of
    /// [`Effective::allow_read_reopen`], then hide again any path here that lies below a
    /// re-exposed one. [`Effective::is_read_denied`] answers the same question per path.
    pub fn deny_read_effective(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .deny_read
            .iter()
            .map(|d| d.value.clone())
            .filter(|d| !self.allow_read.iter().any(|a| a.value == *d))
            .collect();
        out.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        out.dedup();
        out
    }

    /// Paths re-opened inside a hidden directory (e.g. `~/.aws/config` inside `~/.aws`),
    /// sorted, without duplicates.
    pub fn allow_read_reopen(&self) -> Vec<PathBuf> {
        let denies = self.deny_read_effective();
        let mut out: Vec<PathBuf> = self
            .allow_read
            .iter()
            .map(|a| a.value.clone())
            .filter(|a| denies.iter().any(|d| a != d && a.starts_with(d)))
            .collect();
        out.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        out.dedup();
        out
    }

    /// Is `path` (absolute, normalised) unreadable under this policy? The deepest deny or
    /// re-open at or above `path` decides.
    pub fn is_read_denied(&self, path: &Path) -> bool {
        // Same answer as from `deny_read_effective`/`allow_read_reopen`, without building and
        // sorting those lists on every call (this runs once per rule while resolving).
        let exactly_allowed = |d: &Path| self.allow_read.iter().any(|a| a.value == d);
        let effective_denies = || {
            self.deny_read
                .iter()
                .map(|d| d.value.as_path())
                .filter(move |d| !exactly_allowed(d))
        };
        let deepest_deny = effective_denies()
            .filter(|d| path.starts_with(d))
            .map(|d| d.components().count())
            .max();
        let deepest_open = self
            .allow_read
            .iter()
            .map(|a| a.value.as_path())
            .filter(|a| path.starts_with(a))
            .filter(|a| effective_denies().any(|d| *a != d && a.starts_with(d)))
            .map(|a| a.components().count())
            .max();
        match (deepest_deny, deepest_open) {
            (Some(d), Some(o)) => d > o,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Writable paths besides the workspace, sorted, without duplicates.
    pub fn allow_write_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.allow_write.iter().map(|r| r.value.clone()).collect();
        out.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        out.dedup();
        out
    }

    /// The protected-path matcher: built-in data plus this policy's `protect` rules.
    pub fn protect_set(&self) -> Result<ProtectSet, PolicyError> {
        ProtectSet::new(&self.home, &self.protect)
    }

    /// [`check_workspace`] plus: the workspace must not be hidden by a `deny_read`.
    pub fn check_workspace(&self, workspace: &Path) -> Result<(), PolicyError> {
        check_workspace(&self.home, workspace)?;
        let ws = normalize(workspace)
            .map_err(|e| PolicyError::plain(format!("workspace {}: {e}", workspace.display())))?;
        if self.is_read_denied(&ws) {
            let msg = format!(
                "workspace {} is inside a deny_read path; choose another directory or allow_read it",
                ws.display()
            );
            // Named at the deepest deny that covers it, the one to change.
            let deny = self
                .deny_read
                .iter()
                .filter(|r| ws.starts_with(&r.value))
                .max_by_key(|r| r.value.components().count());
            return Err(match deny {
                Some(r) => r.origin.error(msg),
                None => PolicyError::plain(msg),
            });
        }
        Ok(())
    }
}

/// Refuses a workspace that is `/`, `$HOME` or an ancestor of `$HOME` (the same rule as for
/// `allow_write`), or that is not an absolute path without `..`.
pub fn check_workspace(home: &Path, workspace: &Path) -> Result<(), PolicyError> {
    let ws = normalize(workspace)
        .map_err(|e| PolicyError::plain(format!("workspace {}: {e}", workspace.display())))?;
    let home = normalize(home)
        .map_err(|e| PolicyError::plain(format!("home directory {}: {e}", home.display())))?;
    if let Some(problem) = writable_root_problem(&ws, &home) {
        return Err(PolicyError::plain(format!(
            "workspace {} {problem}; run cordon from a project directory (or pass -w DIR) below $HOME or elsewhere",
            ws.display()
        )));
    }
    Ok(())
}
