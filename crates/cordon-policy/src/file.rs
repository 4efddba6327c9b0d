//! One policy file: strict TOML schema, value validation with file:line:col, and conversion
//! into a [`Layer`] of rules that each remember their origin.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::PolicyError;
use crate::layer::{Layer, UnknownAction};
use crate::location::line_col;
use crate::paths::{expand_path, writable_root_problem};
use crate::protect::ProtectRule;
use crate::tier::{Origin, Rule, Tier};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    filesystem: Option<RawFilesystem>,
    env: Option<RawEnv>,
    limits: Option<RawLimits>,
    network: Option<RawNetwork>,
    approval: Option<RawApproval>,
    lifecycle: Option<RawLifecycle>,
    secrets: Option<BTreeMap<Spanned<String>, Spanned<RawSecret>>>,
    requests: Option<BTreeMap<Spanned<String>, Spanned<RawRequests>>>,
    vm: Option<RawVm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    from_env: Option<Spanned<String>>,
    from_file: Option<Spanned<String>>,
    from_command: Option<Spanned<Vec<String>>>,
    ttl: Option<Spanned<u64>>,
    hosts: Option<Spanned<Vec<Spanned<String>>>>,
    allow_plaintext: Option<bool>,
    in_query: Option<bool>,
    in_body: Option<bool>,
    inject: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequests {
    allow: Vec<Spanned<String>>,
}

pub(crate) type List = Option<Vec<Spanned<String>>>;
type Map = Option<BTreeMap<Spanned<String>, Spanned<String>>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilesystem {
    pub(crate) allow_write: List,
    pub(crate) allow_read: List,
    pub(crate) deny_read: List,
    pub(crate) protect: List,
    pub(crate) ask_read: List,
    pub(crate) ask_write: List,
    pub(crate) mode: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    pass: List,
    set: Map,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_tasks: Option<Spanned<u32>>,
    memory_mb: Option<Spanned<u64>>,
    layer_mb: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    allow: List,
    deny: List,
    allow_cidrs: List,
    unknown: Option<Spanned<String>>,
    hosts: Map,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    max_age: Option<Spanned<crate::duration::RawDuration>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    timeout: Option<Spanned<u64>>,
    session_scope: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVm {
    kernel: Option<Spanned<String>>,
}

/// Parses and validates one policy file of the given tier. `home` expands `~`.
///
/// Every error, syntax or value, is reported as `FILE:LINE:COL: message`. Checks that need
/// only the file and `$HOME` happen here (so `cordon policy check` finds them): path spelling,
/// `allow_write` at or above `$HOME`, env names, limits, network spellings.
pub fn parse_policy(
    file: &Path,
    text: &str,
    tier: Tier,
    home: &Path,
) -> Result<Layer, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        PolicyError::at(file, line, col, e.message())
    })?;
    let cx = Cx {
        file,
        text,
        tier,
        lines: crate::location::LineIndex::new(text),
    };
    let mut layer = Layer::default();

    let fs = raw.filesystem.unwrap_or_default();
    for entry in fs.allow_write.iter().flatten() {
        let path = cx.path(entry, home)?;
        if let Some(problem) = writable_root_problem(&path, home) {
            return Err(cx.err(
                entry.span().start,
                format!(
                    "allow_write `{}` {problem}; only directories below $HOME (or outside it) can be writable",
                    path.display()
                ),
            ));
        }
        layer
            .allow_write
            .push(Rule::new(path, cx.origin(entry.span().start)));
    }
    for entry in fs.allow_read.iter().flatten() {
        let path = cx.path(entry, home)?;
        layer
            .allow_read
            .push(Rule::new(path, cx.origin(entry.span().start)));
    }
    for entry in fs.deny_read.iter().flatten() {
        let path = cx.path(entry, home)?;
        layer
            .deny_read
            .push(Rule::new(path, cx.origin(entry.span().start)));
    }
    crate::ask::parse_asks(&cx, &fs, home, &mut layer)?;
    for entry in fs.protect.iter().flatten() {
        let at = entry.span().start;
        let rule = ProtectRule::from_policy(entry.get_ref(), cx.origin(at))
            .map_err(|e| cx.err(at, format!("protect `{}`: {e}", entry.get_ref())))?;
        layer.protect.push(rule);
    }

    let env = raw.env.unwrap_or_default();
    for entry in env.pass.iter().flatten() {
        let at = entry.span().start;
        check_env_name(entry.get_ref(), true).map_err(|e| cx.err(at, format!("env.pass: {e}")))?;
        layer
            .env_pass
            .push(Rule::new(entry.get_ref().clone(), cx.origin(at)));
    }
    for (name, value) in env.set.iter().flatten() {
        let at = name.span().start;
        check_env_name(name.get_ref(), false).map_err(|e| cx.err(at, format!("env.set: {e}")))?;
        if value.get_ref().contains('\0') {
            return Err(cx.err(value.span().start, "env.set: value contains a NUL byte"));
        }
        layer.env_set.push(Rule::new(
            (name.get_ref().clone(), OsString::from(value.get_ref())),
            cx.origin(at),
        ));
    }

    let limits = raw.limits.unwrap_or_default();
    if let Some(v) = limits.max_tasks {
        layer.max_tasks = Some(cx.positive(v, "limits.max_tasks")?);
    }
    if let Some(v) = limits.memory_mb {
        layer.memory_mb = Some(cx.positive(v, "limits.memory_mb")?);
    }
    if let Some(v) = limits.layer_mb {
        layer.layer_mb = Some(cx.positive(v, "limits.layer_mb")?);
    }

    if let Some(v) = raw.lifecycle.and_then(|l| l.max_age) {
        let at = v.span().start;
        let secs = v
            .get_ref()
            .seconds()
            .map_err(|e| cx.err(at, format!("lifecycle.max_age: {e}")))?;
        layer.max_age = Some(Rule::new(secs, cx.origin(at)));
    }

    let net = raw.network.unwrap_or_default();
    for entry in net.allow.iter().flatten() {
        layer
            .net_allow
            .push(cx.host_pattern(entry, "network.allow")?);
    }
    for entry in net.deny.iter().flatten() {
        layer.net_deny.push(cx.host_pattern(entry, "network.deny")?);
    }
    for entry in net.allow_cidrs.iter().flatten() {
        let at = entry.span().start;
        let cidr = crate::CidrPattern::parse(entry.get_ref())
            .map_err(|e| cx.err(at, format!("network.allow_cidrs: {e}")))?;
        layer.net_allow_cidrs.push(Rule::new(cidr, cx.origin(at)));
    }
    if let Some(unknown) = net.unknown {
        let at = unknown.span().start;
        let action = match unknown.get_ref().as_str() {
            "ask" => UnknownAction::Ask,
            "deny" => UnknownAction::Deny,
            other => {
                return Err(cx.err(
                    at,
                    format!("network.unknown: expected \"ask\" or \"deny\", found {other:?}"),
                ))
            }
        };
        layer.net_unknown = Some(Rule::new(action, cx.origin(at)));
    }
    for (name, addr) in net.hosts.iter().flatten() {
        let at = name.span().start;
        // The door's own parser: a name it would refuse must fail here, not at `cordon run`.
        let canonical = match crate::host::parse_host(name.get_ref()) {
            Ok(crate::host::Host::Name(n)) => n,
            _ => {
                return Err(cx.err(
                    at,
                    format!("network.hosts: {:?} is not a host name", name.get_ref()),
                ))
            }
        };
        let Ok(ip) = addr.get_ref().parse::<IpAddr>() else {
            return Err(cx.err(
                addr.span().start,
                format!("network.hosts: {:?} is not an IP address", addr.get_ref()),
            ));
        };
        layer
            .net_hosts
            .push(Rule::new((canonical, ip), cx.origin(at)));
    }

    let approval = raw.approval.unwrap_or_default();
    if let Some(v) = approval.timeout {
        layer.approval_timeout = Some(cx.positive(v, "approval.timeout")?);
    }
    if let Some(v) = approval.session_scope {
        let at = v.span().start;
        layer.approval_session_scope = Some(Rule::new(*v.get_ref(), cx.origin(at)));
    }
    for (name, table) in raw.secrets.into_iter().flatten() {
        let def = cx.secret(&name, table, home)?;
        layer
            .secrets
            .push(Rule::new(def, cx.origin(name.span().start)));
    }
    for (host, table) in raw.requests.into_iter().flatten() {
        let at = host.span().start;
        crate::secrets::check_secret_host(host.get_ref())
            .map_err(|e| cx.err(at, format!("requests: {e}")))?;
        let table = table.into_inner();
        let mut allow = Vec::new();
        for entry in &table.allow {
            allow.push(
                crate::secrets::RequestRule::parse(entry.get_ref()).map_err(|e| {
                    cx.err(
                        entry.span().start,
                        format!("requests.\"{}\".allow: {e}", host.get_ref()),
                    )
                })?,
            );
        }
        layer.requests.push(Rule::new(
            crate::secrets::RequestTable {
                host: host.get_ref().to_ascii_lowercase(),
                allow,
            },
            cx.origin(at),
        ));
    }
    if let Some(k) = raw.vm.and_then(|v| v.kernel) {
        let path = cx.path(&k, home)?;
        layer.vm_kernel = Some(Rule::new(path, cx.origin(k.span().start)));
    }
    Ok(layer)
}

/// Shared context for turning spans into origins and errors.
pub(crate) struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
    pub(crate) tier: Tier,
    lines: crate::location::LineIndex,
}

impl Cx<'_> {
    pub(crate) fn origin(&self, offset: usize) -> Origin {
        let (line, col) = self.lines.line_col(self.text, offset);
        Origin {
            tier: self.tier,
            file: Some(self.file.to_path_buf()),
            line: Some(line),
            col: Some(col),
            flag: None,
        }
    }

    /// The directory of the file being parsed (a project file's project).
    pub(crate) fn file_dir(&self) -> Option<&Path> {
        self.file.parent()
    }

    pub(crate) fn err(&self, offset: usize, msg: impl Into<String>) -> PolicyError {
        let (line, col) = line_col(self.text, offset);
        PolicyError::at(self.file, line, col, msg)
    }

    pub(crate) fn path(
        &self,
        entry: &Spanned<String>,
        home: &Path,
    ) -> Result<PathBuf, PolicyError> {
        let raw = entry.get_ref();
        // In a project file a relative path means one inside the project (the file's directory);
        // anywhere else it would depend on the current directory, so it is refused.
        let relative = !raw.is_empty() && !raw.starts_with('/') && !raw.starts_with('~');
        let result = match (self.tier, self.file.parent()) {
            (Tier::Project, Some(dir)) if relative => crate::paths::normalize(&dir.join(raw))
                .and_then(|p| expand_path(p.as_os_str(), home)),
            _ => expand_path(OsStr::new(raw), home),
        };
        result.map_err(|e| self.err(entry.span().start, format!("{raw:?}: {e}")))
    }

    /// Validates one `[secrets.NAME]` table. Only the user, command-line and managed tiers may
    /// define secrets: a project file lives in the repository, so an attacker could name a real
    /// token and their own host, or run a command on the host through `from_command`.
    fn secret(
        &self,
        name: &Spanned<String>,
        table: Spanned<RawSecret>,
        home: &Path,
    ) -> Result<crate::secrets::SecretDef, PolicyError> {
        use crate::secrets::{check_secret_host, Inject, SecretDef, SecretSource};
        let at = name.span().start;
        let n = name.get_ref();
        if matches!(self.tier, Tier::Project | Tier::Builtin) {
            return Err(self.err(
                at,
                format!("secrets.{n}: a project policy may not define secrets (it lives in the repository); define it in your user policy (~/.config/cordon/policy.toml)"),
            ));
        }
        check_env_name(n, false).map_err(|e| self.err(at, format!("secrets: {e}")))?;
        let table_at = table.span().start;
        let t = table.into_inner();
        let mut sources = Vec::new();
        if let Some(v) = &t.from_env {
            check_env_name(v.get_ref(), false)
                .map_err(|e| self.err(v.span().start, format!("secrets.{n}.from_env: {e}")))?;
            sources.push(SecretSource::Env(v.get_ref().clone()));
        }
        if let Some(v) = &t.from_file {
            sources.push(SecretSource::File(self.path(v, home)?));
        }
        if let Some(v) = &t.from_command {
            if v.get_ref().is_empty() || v.get_ref()[0].is_empty() {
                return Err(self.err(
                    v.span().start,
                    format!("secrets.{n}.from_command: needs a program (an argv array)"),
                ));
            }
            if v.get_ref().iter().any(|a| a.contains('\0')) {
                return Err(self.err(
                    v.span().start,
                    format!("secrets.{n}.from_command: an argument contains a NUL byte"),
                ));
            }
            sources.push(SecretSource::Command(v.get_ref().clone()));
        }
        if sources.len() != 1 {
            return Err(self.err(
                table_at,
                format!(
                    "secrets.{n}: exactly one of from_env, from_file or from_command is needed"
                ),
            ));
        }
        let source = sources.remove(0);
        let ttl = match t.ttl {
            Some(v) if *v.get_ref() == 0 => {
                return Err(self.err(
                    v.span().start,
                    format!("secrets.{n}.ttl must be at least 1"),
                ))
            }
            Some(v) if !matches!(source, SecretSource::Command(_)) => {
                return Err(self.err(
                    v.span().start,
                    format!("secrets.{n}.ttl: only a from_command secret can be fetched again"),
                ))
            }
            Some(v) => Some(*v.get_ref()),
            None => None,
        };
        let Some(hosts) = t.hosts else {
            return Err(self.err(
                table_at,
                format!("secrets.{n}: `hosts` (the hosts that may receive it) is required"),
            ));
        };
        if hosts.get_ref().is_empty() {
            return Err(self.err(
                hosts.span().start,
                format!("secrets.{n}.hosts: name at least one host"),
            ));
        }
        let mut hs = Vec::new();
        for h in hosts.get_ref() {
            check_secret_host(h.get_ref())
                .map_err(|e| self.err(h.span().start, format!("secrets.{n}.hosts: {e}")))?;
            hs.push(h.get_ref().to_ascii_lowercase());
        }
        let inject = match &t.inject {
            None => Inject::Door,
            Some(v) => match v.get_ref().as_str() {
                "door" => Inject::Door,
                "env" => Inject::Env,
                "file" => Inject::File,
                other => {
                    return Err(self.err(
                        v.span().start,
                        format!("secrets.{n}.inject: expected \"door\", \"env\" or \"file\", found {other:?}"),
                    ))
                }
            },
        };
        Ok(SecretDef {
            name: n.clone(),
            source,
            ttl,
            hosts: hs,
            allow_plaintext: t.allow_plaintext.unwrap_or(false),
            in_query: t.in_query.unwrap_or(false),
            in_body: t.in_body.unwrap_or(false),
            inject,
        })
    }

    fn positive<T>(&self, v: Spanned<T>, key: &str) -> Result<Rule<T>, PolicyError>
    where
        T: Copy + PartialEq + From<u8>,
    {
        let at = v.span().start;
        if *v.get_ref() == T::from(0) {
            return Err(self.err(at, format!("{key} must be at least 1")));
        }
        Ok(Rule::new(*v.get_ref(), self.origin(at)))
    }

    fn host_pattern(
        &self,
        entry: &Spanned<String>,
        key: &str,
    ) -> Result<Rule<crate::DomainPattern>, PolicyError> {
        let at = entry.span().start;
        let pattern = crate::DomainPattern::parse(entry.get_ref())
            .map_err(|e| self.err(at, format!("{key}: {e}")))?;
        Ok(Rule::new(pattern, self.origin(at)))
    }
}

/// Environment names: printable ASCII without `=` or blanks; globs (`*`, `?`) only in `pass`.
pub(crate) fn check_env_name(name: &str, glob_ok: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty variable name".into());
    }
    for c in name.chars() {
        let ok = c.is_ascii_graphic() && c != '=' && (glob_ok || !matches!(c, '*' | '?'));
        if !ok {
            return Err(format!("invalid character {c:?} in variable name {name:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
