//! The effective policy written back as one policy file, for another machine to load as its
//! managed tier (`cordon kube render` ships it in a ConfigMap), and the network egress that
//! an outer wall (a Kubernetes NetworkPolicy) must let through for the door to work.
//!
//! Pure: the caller says where the rendering machine's `$HOME` and workspace go.

use crate::Ports;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::effective::{Effective, Network};
use crate::layer::UnknownAction;
use crate::secrets::Inject;
use crate::tier::{Origin, Tier};

/// Where paths of the rendering machine land on the target.
#[derive(Debug, Clone)]
pub struct Relocate {
    /// The workspace on the target (a path under the source workspace moves below it).
    pub workspace: PathBuf,
    /// Directory on the target holding one directory per secret, named as the secret, with
    /// the value in [`Relocate::secret_file`]; the whole directory is hidden from the sandbox
    /// (a managed deny), and cordon reads the value as `from_file`.
    pub secrets_dir: PathBuf,
    /// The value's file name inside each secret's directory.
    pub secret_file: String,
}

/// The exported policy file and the secrets it reads from [`Relocate::secrets_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// TOML, every rule followed by `# origin` of the rule it came from.
    pub toml: String,
    /// Secret names, in policy order; each is read from `secrets_dir/NAME/secret_file`.
    pub secrets: Vec<String>,
}

/// The egress a policy needs from an outer wall: TCP ports to public addresses, and address
/// blocks `allow_cidrs` opens (special ranges stay closed otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Egress {
    /// TCP ports to public addresses; `None` = any port (a `:*` rule).
    pub public_ports: Option<BTreeSet<u16>>,
    /// `allow_cidrs` blocks (CIDR notation, `/32` or `/128` added to single addresses) and
    /// their ports (`None` = any).
    pub cidrs: Vec<(String, Option<BTreeSet<u16>>)>,
}

/// Ports a rule without `:PORT` means (as the door does).
const DEFAULT_PORTS: [u16; 2] = [80, 443];

impl Network {
    /// What leaves the machine when this policy is enforced: every `allow` rule's ports (80
    /// and 443 without one), plus 80 and 443 when unknown destinations are asked about (an
    /// approval can only open what the outer wall lets through), and each `allow_cidrs` block.
    pub fn egress(&self) -> Egress {
        let mut ports: Option<BTreeSet<u16>> = Some(BTreeSet::new());
        let mut add = |p: Option<u16>| match (&mut ports, p) {
            (Some(set), Some(p)) => {
                set.insert(p);
            }
            (_, None) => ports = None,
            (None, Some(_)) => {}
        };
        for r in &self.allow {
            match r.value.ports() {
                Ports::Default => DEFAULT_PORTS.iter().for_each(|p| add(Some(*p))),
                Ports::One(p) => add(Some(p)),
                Ports::Any => add(None),
            }
        }
        if self.unknown.value == UnknownAction::Ask {
            DEFAULT_PORTS.iter().for_each(|p| add(Some(*p)));
        }
        let public_ports = ports;
        let mut cidrs = Vec::new();
        for r in &self.allow_cidrs {
            let ports = match r.value.ports() {
                Ports::Any => None,
                Ports::One(p) => Some(BTreeSet::from([p])),
                // Without a port the block admits allowed names on their rules' ports, and IP
                // literals on 80 and 443 (as the door's `covering` does).
                Ports::Default => public_ports.as_ref().map(|set| {
                    let mut s = set.clone();
                    s.extend(DEFAULT_PORTS);
                    s
                }),
            };
            cidrs.push((r.value.net().to_string(), ports));
        }
        Egress {
            public_ports,
            cidrs,
        }
    }
}

/// The rules a target does not re-derive, as written.
fn listed<'a>(rules: impl Iterator<Item = (&'a str, &'a Origin)>) -> Vec<(String, &'a Origin)> {
    rules
        .filter(|(_, o)| !is_builtin_data(o))
        .map(|(v, o)| (v.to_string(), o))
        .collect()
}

/// Rules the target re-derives by itself (the built-in data file, defaults): not exported.
fn is_builtin_data(o: &Origin) -> bool {
    o.tier == Tier::Builtin
        && o.file
            .as_deref()
            .is_none_or(|f| f == Path::new(crate::resolve::BUILTIN_NAME))
}

impl Effective {
    /// Writes the policy in force as one file to be loaded as the managed tier elsewhere.
    ///
    /// Paths under the workspace move below [`Relocate::workspace`], paths under `$HOME` are
    /// written `~/...` (the target's home), others stay. Built-in data and defaults are left
    /// out (the target's cordon has them). Secrets become `from_file` in
    /// [`Relocate::secrets_dir`], which is hidden. `[env] set` values are written in clear, so
    /// a name that looks like a secret is an error: such values belong in `[secrets]`.
    pub fn export_managed(&self, to: &Relocate) -> Result<Exported, String> {
        let mut w = Writer::new(self, to);
        w.s.push_str(
            "# cordon managed policy, rendered from the effective policy of the rendering machine.\n\
             # Each rule is followed by the tier and file:line it came from there.\n",
        );

        w.section("filesystem");
        let allow_write: Vec<_> = self
            .allow_write
            .iter()
            .map(|r| (&r.value, &r.origin))
            .collect();
        w.path_list("allow_write", &allow_write);
        let allow_read: Vec<_> = self
            .allow_read
            .iter()
            .map(|r| (&r.value, &r.origin))
            .collect();
        w.path_list("allow_read", &allow_read);
        let mut deny: Vec<(PathBuf, Origin)> = self
            .deny_read
            .iter()
            .map(|r| (r.value.clone(), r.origin.clone()))
            .collect();
        if !self.secrets.is_empty() {
            // Added here, not read from a file: the label says why (as profiles' labels do).
            let why = Origin {
                tier: Tier::Managed,
                file: Some("(export: the secret files, read by cordon only)".into()),
                line: None,
                col: None,
                flag: None,
            };
            deny.push((to.secrets_dir.clone(), why));
        }
        let deny: Vec<_> = deny.iter().map(|(p, o)| (p, o)).collect();
        w.path_list("deny_read", &deny);
        let ask_read: Vec<_> = self
            .ask_read
            .iter()
            .map(|r| (&r.value, &r.origin))
            .collect();
        w.path_list("ask_read", &ask_read);
        let ask_write: Vec<_> = self
            .ask_write
            .iter()
            .map(|r| (&r.value, &r.origin))
            .collect();
        w.path_list("ask_write", &ask_write);
        let protect: Vec<(String, &Origin)> = self
            .protect
            .iter()
            .filter(|r| !is_builtin_data(&r.origin))
            .map(|r| (w.protect_spelling(r), &r.origin))
            .collect();
        w.list("protect", &protect);
        if !is_builtin_data(&self.fs_mode.origin) {
            w.kv(
                "mode",
                &quote(self.fs_mode.value.name()),
                &self.fs_mode.origin,
            );
        }

        w.section("env");
        let pass: Vec<_> = self
            .env_pass
            .iter()
            .filter(|r| !is_builtin_data(&r.origin))
            .map(|r| (r.value.clone(), &r.origin))
            .collect();
        w.list("pass", &pass);
        let mut set = String::new();
        for r in &self.env_set {
            let (name, value) = &r.value;
            if crate::env::looks_secret(name) {
                return Err(format!(
                    "env.set {name} ({}) looks like a secret and would be written in clear into the rendered policy; define it as [secrets.{name}] instead",
                    r.origin
                ));
            }
            let value = value
                .to_str()
                .ok_or_else(|| format!("env.set {name} ({}): value is not UTF-8", r.origin))?;
            let _ = writeln!(
                set,
                "{} = {}  # {}",
                quote(name),
                quote(value),
                clean(&r.origin)
            );
        }
        if !set.is_empty() {
            w.s.push_str("\n[env.set]\n");
            w.s.push_str(&set);
        }

        w.section("limits");
        let l = &self.limits;
        for (key, value, origin) in [
            (
                "max_tasks",
                u64::from(l.max_tasks.value),
                &l.max_tasks.origin,
            ),
            ("memory_mb", l.memory_mb.value, &l.memory_mb.origin),
            ("layer_mb", l.layer_mb.value, &l.layer_mb.origin),
        ] {
            if !is_builtin_data(origin) {
                w.kv(key, &value.to_string(), origin);
            }
        }
        w.section("lifecycle");
        if !is_builtin_data(&l.max_age.origin) {
            w.kv("max_age", &l.max_age.value.to_string(), &l.max_age.origin);
        }

        w.section("network");
        let n = &self.network;
        for (key, items) in [
            (
                "allow",
                listed(n.allow.iter().map(|r| (r.value.as_str(), &r.origin))),
            ),
            (
                "deny",
                listed(n.deny.iter().map(|r| (r.value.as_str(), &r.origin))),
            ),
            (
                "allow_cidrs",
                listed(n.allow_cidrs.iter().map(|r| (r.value.as_str(), &r.origin))),
            ),
        ] {
            w.list(key, &items);
        }
        if !is_builtin_data(&n.unknown.origin) {
            w.kv("unknown", &quote(n.unknown.value.name()), &n.unknown.origin);
        }
        let mut hosts = String::new();
        for r in &n.hosts {
            let _ = writeln!(
                hosts,
                "{} = {}  # {}",
                quote(&r.value.0),
                quote(&r.value.1.to_string()),
                clean(&r.origin)
            );
        }
        if !hosts.is_empty() {
            w.s.push_str("\n[network.hosts]\n");
            w.s.push_str(&hosts);
        }

        w.section("approval");
        let a = &self.approval;
        if !is_builtin_data(&a.timeout.origin) {
            w.kv("timeout", &a.timeout.value.to_string(), &a.timeout.origin);
        }
        if !is_builtin_data(&a.session_scope.origin) {
            w.kv(
                "session_scope",
                &a.session_scope.value.to_string(),
                &a.session_scope.origin,
            );
        }

        let mut secrets = Vec::new();
        for r in &self.secrets {
            let d = &r.value;
            let file = to.secrets_dir.join(&d.name).join(&to.secret_file);
            let _ = write!(
                w.s,
                "\n[secrets.{}]  # {} (source there: {})\nfrom_file = {}\nhosts = [{}]\n",
                quote(&d.name),
                clean(&r.origin),
                d.source.kind(),
                quote(&file.to_string_lossy()),
                d.hosts
                    .iter()
                    .map(|h| quote(h))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (on, key) in [
                (d.allow_plaintext, "allow_plaintext"),
                (d.in_query, "in_query"),
                (d.in_body, "in_body"),
            ] {
                if on {
                    let _ = writeln!(w.s, "{key} = true");
                }
            }
            if d.inject != Inject::Door {
                let _ = writeln!(w.s, "inject = {}", quote(d.inject.name()));
            }
            secrets.push(d.name.clone());
        }
        for r in &self.requests {
            let _ = write!(
                w.s,
                "\n[requests.{}]  # {}\nallow = [{}]\n",
                quote(&r.value.host),
                clean(&r.origin),
                r.value
                    .allow
                    .iter()
                    .map(|a| quote(&a.text))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(Exported {
            toml: w.finish(),
            secrets,
        })
    }
}

/// Builds the file section by section; a section header is written only when something
/// follows it.
struct Writer<'a> {
    eff: &'a Effective,
    to: &'a Relocate,
    s: String,
    pending: Option<&'static str>,
}

impl<'a> Writer<'a> {
    fn new(eff: &'a Effective, to: &'a Relocate) -> Self {
        Writer {
            eff,
            to,
            s: String::new(),
            pending: None,
        }
    }

    fn section(&mut self, name: &'static str) {
        self.pending = Some(name);
    }

    fn header(&mut self) {
        if let Some(name) = self.pending.take() {
            let _ = writeln!(self.s, "\n[{name}]");
        }
    }

    fn kv(&mut self, key: &str, value: &str, origin: &Origin) {
        self.header();
        let _ = writeln!(self.s, "{key} = {value}  # {}", clean(origin));
    }

    fn list(&mut self, key: &str, items: &[(String, &Origin)]) {
        if items.is_empty() {
            return;
        }
        self.header();
        let _ = writeln!(self.s, "{key} = [");
        for (v, o) in items {
            let _ = writeln!(self.s, "  {},  # {}", quote(v), clean(o));
        }
        self.s.push_str("]\n");
    }

    fn path_list(&mut self, key: &str, items: &[(&PathBuf, &Origin)]) {
        let items: Vec<(String, &Origin)> = items
            .iter()
            .filter(|(_, o)| !is_builtin_data(o))
            .map(|(p, o)| (self.path(p), *o))
            .collect();
        self.list(key, &items);
    }

    fn path(&self, p: &Path) -> String {
        if let Ok(rest) = p.strip_prefix(&self.eff.workspace) {
            return self.to.workspace.join(rest).to_string_lossy().into_owned();
        }
        if let Ok(rest) = p.strip_prefix(&self.eff.home) {
            if rest.as_os_str().is_empty() {
                return "~".into();
            }
            return format!("~/{}", rest.to_string_lossy());
        }
        p.to_string_lossy().into_owned()
    }

    fn protect_spelling(&self, r: &crate::protect::ProtectRule) -> String {
        match r.kind {
            crate::protect::ProtectKind::Absolute => {
                let p = Path::new(&r.pattern);
                match p.strip_prefix(&self.eff.workspace) {
                    Ok(rest) => self.to.workspace.join(rest).to_string_lossy().into_owned(),
                    Err(_) => r.to_string(),
                }
            }
            _ => r.to_string(),
        }
    }

    fn finish(self) -> String {
        self.s
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// An origin as a one-line comment.
fn clean(o: &Origin) -> String {
    o.to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
