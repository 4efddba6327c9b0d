//! `cordon policy show` text and the policy digest.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use sha2::{Digest, Sha256};

use crate::effective::Effective;
use crate::trust::hex;

impl Effective {
    /// A listing for people: every rule on its own line followed by `# tier file:line`, then
    /// the warnings. Values of `[env] set` are never printed, only their names.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let deny_eff = self.deny_read_effective();
        let reopen = self.allow_read_reopen();
        let _ = writeln!(s, "workspace {}", quoted(&self.workspace.to_string_lossy()));
        for r in &self.allow_write {
            line(
                &mut s,
                &format!(
                    "filesystem.allow_write {}",
                    quoted(&r.value.to_string_lossy())
                ),
                &r.origin,
            );
        }
        for r in &self.deny_read {
            let note = if deny_eff.contains(&r.value) {
                ""
            } else {
                "  (re-opened by allow_read)"
            };
            line(
                &mut s,
                &format!(
                    "filesystem.deny_read {}{note}",
                    quoted(&r.value.to_string_lossy())
                ),
                &r.origin,
            );
        }
        for r in &self.allow_read {
            let note = if reopen.contains(&r.value) {
                "  (re-opens inside a hidden path)"
            } else {
                ""
            };
            line(
                &mut s,
                &format!(
                    "filesystem.allow_read {}{note}",
                    quoted(&r.value.to_string_lossy())
                ),
                &r.origin,
            );
        }
        for r in &self.ask_read {
            line(
                &mut s,
                &format!("filesystem.ask_read {}", quoted(&r.value.to_string_lossy())),
                &r.origin,
            );
        }
        for r in &self.ask_write {
            line(
                &mut s,
                &format!(
                    "filesystem.ask_write {}",
                    quoted(&r.value.to_string_lossy())
                ),
                &r.origin,
            );
        }
        if self.fs_mode.value == crate::ask::FsMode::Strict {
            line(&mut s, "filesystem.mode strict", &self.fs_mode.origin);
        }
        for r in &self.protect {
            line(
                &mut s,
                &format!("filesystem.protect {}", quoted(&r.to_string())),
                &r.origin,
            );
        }
        match crate::protect::builtin_protect_rules() {
            Ok(rules) => {
                for r in &rules {
                    line(
                        &mut s,
                        &format!("filesystem.protect {}", quoted(&r.to_string())),
                        &r.origin,
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "warning: built-in protected list unreadable: {e}");
            }
        }
        render_file_rules(&mut s);
        for r in &self.env_pass {
            line(&mut s, &format!("env.pass {}", r.value), &r.origin);
        }
        for r in &self.env_set {
            line(
                &mut s,
                &format!("env.set {} = <hidden>", r.value.0),
                &r.origin,
            );
        }
        let l = &self.limits;
        line(
            &mut s,
            &format!("limits.max_tasks {}", l.max_tasks.value),
            &l.max_tasks.origin,
        );
        line(
            &mut s,
            &format!("limits.memory_mb {}", l.memory_mb.value),
            &l.memory_mb.origin,
        );
        line(
            &mut s,
            &format!("limits.layer_mb {}", l.layer_mb.value),
            &l.layer_mb.origin,
        );
        line(
            &mut s,
            &format!("lifecycle.max_age {}s", l.max_age.value),
            &l.max_age.origin,
        );
        let n = &self.network;
        for r in &n.allow {
            line(&mut s, &format!("network.allow {}", r.value), &r.origin);
        }
        for r in &n.deny {
            line(&mut s, &format!("network.deny {}", r.value), &r.origin);
        }
        for r in &n.optional {
            let o = &r.value;
            let what = format!(
                "network.optional {} (refused unasked unless allowed: {}; {})",
                o.pattern, o.host.why, o.source
            );
            line(&mut s, &what, &r.origin);
        }
        for r in &n.allow_cidrs {
            line(
                &mut s,
                &format!("network.allow_cidrs {}", r.value),
                &r.origin,
            );
        }
        line(
            &mut s,
            &format!("network.unknown {}", n.unknown.value.name()),
            &n.unknown.origin,
        );
        for r in &n.hosts {
            line(
                &mut s,
                &format!("network.hosts {} = {}", r.value.0, r.value.1),
                &r.origin,
            );
        }
        let a = &self.approval;
        line(
            &mut s,
            &format!("approval.timeout {}", a.timeout.value),
            &a.timeout.origin,
        );
        line(
            &mut s,
            &format!("approval.session_scope {}", a.session_scope.value),
            &a.session_scope.origin,
        );
        for r in &self.secrets {
            line(&mut s, &secret_line(&r.value), &r.origin);
        }
        for r in &self.requests {
            line(
                &mut s,
                &format!(
                    "requests.\"{}\" allow [{}]",
                    r.value.host,
                    r.value
                        .allow
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &r.origin,
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        for w in self.secret_warnings() {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }

    /// Warnings about secrets: hosts without request rules (a confused deputy: whatever the
    /// sandbox sends there goes with the person's credentials) and the weaker modes.
    pub fn secret_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.secrets {
            let d = &r.value;
            for h in &d.hosts {
                if !self.requests.iter().any(|t| &t.value.host == h) {
                    out.push(format!(
                        "secret {} is sent to {h}, which has no request rules: anything the sandbox sends there (a push, a gist, an issue) goes with your credentials; consider [requests.\"{h}\"] allow = [...]",
                        d.name
                    ));
                }
            }
            if d.inject != crate::secrets::Inject::Door {
                out.push(format!(
                    "secret {} has inject = \"{}\": the real value is inside the sandbox, where the command can read and send it anywhere it may connect",
                    d.name,
                    d.inject.name()
                ));
            }
        }
        out
    }

    /// SHA-256 (hex) of a canonical serialisation of what is in force: the effective lists
    /// (sorted), protect rules, env names and values, limits, network and approval settings.
    /// Origins and warnings are left out, so moving a rule between files keeps the digest.
    /// Same inputs, same digest, on any run.
    pub fn digest(&self) -> String {
        let mut c = Canon::default();
        c.field("home", self.home.as_os_str().as_bytes());
        c.field("workspace", self.workspace.as_os_str().as_bytes());
        for p in self.allow_write_paths() {
            c.field("allow_write", p.as_os_str().as_bytes());
        }
        for p in self.deny_read_effective() {
            c.field("deny_read", p.as_os_str().as_bytes());
        }
        for p in self.allow_read_reopen() {
            c.field("reopen", p.as_os_str().as_bytes());
        }
        for r in &self.ask_read {
            c.field("ask_read", r.value.as_os_str().as_bytes());
        }
        for r in &self.ask_write {
            c.field("ask_write", r.value.as_os_str().as_bytes());
        }
        c.field("fs_mode", self.fs_mode.value.name().as_bytes());
        let mut protect: Vec<String> = self
            .protect
            .iter()
            .map(|r| format!("{:?} {} {}", r.kind, r.literal, r.pattern))
            .collect();
        protect.sort();
        protect.dedup();
        for p in &protect {
            c.field("protect", p.as_bytes());
        }
        let mut pass: Vec<&str> = self.env_pass.iter().map(|r| r.value.as_str()).collect();
        pass.sort_unstable();
        pass.dedup();
        for p in pass {
            c.field("env_pass", p.as_bytes());
        }
        for r in &self.env_set {
            c.field("env_set_name", r.value.0.as_bytes());
            c.field("env_set_value", r.value.1.as_bytes());
        }
        c.field(
            "max_tasks",
            self.limits.max_tasks.value.to_string().as_bytes(),
        );
        c.field(
            "memory_mb",
            self.limits.memory_mb.value.to_string().as_bytes(),
        );
        c.field(
            "layer_mb",
            self.limits.layer_mb.value.to_string().as_bytes(),
        );
        let n = &self.network;
        for (key, v) in [
            (
                "net_allow",
                n.allow.iter().map(|r| r.value.as_str()).collect(),
            ),
            (
                "net_deny",
                n.deny.iter().map(|r| r.value.as_str()).collect(),
            ),
            (
                "net_allow_cidrs",
                n.allow_cidrs
                    .iter()
                    .map(|r| r.value.as_str())
                    .collect::<Vec<_>>(),
            ),
        ] {
            let mut v = v;
            v.sort_unstable();
            v.dedup();
            for x in v {
                c.field(key, x.as_bytes());
            }
        }
        for r in &n.optional {
            c.field("net_optional", r.value.pattern.as_str().as_bytes());
        }
        c.field("net_unknown", self.network.unknown.value.name().as_bytes());
        for r in &self.network.hosts {
            c.field(
                "net_host",
                format!("{}={}", r.value.0, r.value.1).as_bytes(),
            );
        }
        c.field(
            "approval_timeout",
            self.approval.timeout.value.to_string().as_bytes(),
        );
        c.field(
            "approval_session_scope",
            if self.approval.session_scope.value {
                b"1"
            } else {
                b"0"
            },
        );
        for r in &self.secrets {
            c.field("secret", secret_line(&r.value).as_bytes());
        }
        for r in &self.requests {
            c.field("requests_host", r.value.host.as_bytes());
            for a in &r.value.allow {
                c.field("requests_allow", a.text.as_bytes());
            }
        }
        hex(&c.hasher.finalize())
    }
}

/// One secret for listings: name, source kind, hosts and mode; never a value.
fn secret_line(d: &crate::secrets::SecretDef) -> String {
    let mut s = format!(
        "secrets.{} {} hosts [{}] inject {}",
        d.name,
        d.source.kind(),
        d.hosts.join(", "),
        d.inject.name()
    );
    if let Some(t) = d.ttl {
        let _ = write!(s, " ttl {t}");
    }
    for (on, what) in [
        (d.allow_plaintext, " allow_plaintext"),
        (d.in_query, " in_query"),
        (d.in_body, " in_body"),
    ] {
        if on {
            s.push_str(what);
        }
    }
    s
}

/// One rule per line, whatever bytes a path holds: control characters become `?`.
/// The exemptions and the refusals of code, each group with why.
fn render_file_rules(s: &mut String) {
    use crate::fsrules::{ExemptKind, BUILTIN_REFUSALS, EXEMPTIONS};
    let builtin = crate::tier::Origin::bare(crate::tier::Tier::Builtin);
    let mut last: Option<ExemptKind> = None;
    for e in EXEMPTIONS {
        if last != Some(e.kind) {
            let _ = writeln!(s, "# {}: {}", e.kind.name(), e.why);
            last = Some(e.kind);
        }
        let at = match e.kind {
            ExemptKind::PackageCache => format!("~/{}", e.path),
            _ => e.path.to_string(),
        };
        line(
            s,
            &format!("filesystem.exempt {} {at}", e.kind.name()),
            &builtin,
        );
    }
    for (what, why) in BUILTIN_REFUSALS {
        let _ = writeln!(s, "# {why}");
        line(s, &format!("filesystem.refuse {what}"), &builtin);
    }
}

fn line(s: &mut String, rule: &str, origin: &crate::tier::Origin) {
    let text = format!("{rule}  # {origin}");
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let _ = writeln!(s, "{clean}");
}

/// Length-prefixed fields: unambiguous for any bytes, including newlines in paths.
#[derive(Default)]
struct Canon {
    hasher: Sha256,
}

impl Canon {
    fn field(&mut self, key: &str, value: &[u8]) {
        for part in [key.as_bytes(), value] {
            self.hasher.update((part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
    }
}

/// A path or pattern as it can be pasted: bare when it holds only characters that need no
/// quoting, else a TOML basic string (what a policy file takes; in a shell, too, for names
/// without `$`, backquote or `\\`).
pub fn quoted(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-~+@:,=%*?[]".contains(c));
    if plain {
        value.to_string()
    } else {
        toml::Value::String(value.to_string()).to_string()
    }
}
