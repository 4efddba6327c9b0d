//! A layer: the rules one source (a file, or the command line) contributes, before merging.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::file::check_env_name;
use crate::paths::{expand_path, normalize, writable_root_problem};
use crate::protect::ProtectRule;
use crate::tier::{Origin, Rule, Tier};

/// What to do with a network destination no rule mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnknownAction {
    /// Ask the person.
    Ask,
    /// Refuse.
    Deny,
}

impl UnknownAction {
    /// The spelling used in policy files.
    pub fn name(self) -> &'static str {
        match self {
            UnknownAction::Ask => "ask",
            UnknownAction::Deny => "deny",
        }
    }
}

/// The validated rules of one source, each with its origin. Produced by
/// [`parse_policy`](crate::parse_policy) or [`CliLayer::to_layer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// `filesystem.allow_write` (already checked: not `/`, `$HOME` or above).
    pub allow_write: Vec<Rule<PathBuf>>,
    /// `filesystem.allow_read`.
    pub allow_read: Vec<Rule<PathBuf>>,
    /// `filesystem.deny_read`.
    pub deny_read: Vec<Rule<PathBuf>>,
    /// `filesystem.protect`.
    pub protect: Vec<ProtectRule>,
    /// `filesystem.ask_read`: paths hidden like `deny_read`, whose opens are asked about.
    pub ask_read: Vec<Rule<PathBuf>>,
    /// `filesystem.ask_write`: writable paths whose changes are asked about.
    pub ask_write: Vec<Rule<PathBuf>>,
    /// `filesystem.mode`.
    pub fs_mode: Option<Rule<crate::ask::FsMode>>,
    /// `env.pass`: names or globs.
    pub env_pass: Vec<Rule<String>>,
    /// `env.set`: name and value.
    pub env_set: Vec<Rule<(String, OsString)>>,
    /// `limits.max_tasks`.
    pub max_tasks: Option<Rule<u32>>,
    /// `limits.memory_mb`.
    pub memory_mb: Option<Rule<u64>>,
    /// `limits.layer_mb`.
    pub layer_mb: Option<Rule<u64>>,
    /// `lifecycle.max_age` in seconds.
    pub max_age: Option<Rule<u64>>,
    /// `network.allow`.
    pub net_allow: Vec<Rule<crate::DomainPattern>>,
    /// `network.optional` (profiles only): hosts refused unasked and reported apart.
    pub net_optional: Vec<Rule<crate::OptionalDomain>>,
    /// `network.deny`.
    pub net_deny: Vec<Rule<crate::DomainPattern>>,
    /// `network.allow_cidrs`.
    pub net_allow_cidrs: Vec<Rule<crate::CidrPattern>>,
    /// `network.unknown`.
    pub net_unknown: Option<Rule<UnknownAction>>,
    /// `network.hosts`: name and address.
    pub net_hosts: Vec<Rule<(String, std::net::IpAddr)>>,
    /// `approval.timeout` in seconds.
    pub approval_timeout: Option<Rule<u64>>,
    /// `approval.session_scope`.
    pub approval_session_scope: Option<Rule<bool>>,
    /// `[secrets.NAME]` tables (never from a project file: that is an error).
    pub secrets: Vec<Rule<crate::secrets::SecretDef>>,
    /// `[requests."HOST"]` tables.
    pub requests: Vec<Rule<crate::secrets::RequestTable>>,
    /// `vm.kernel`: the guest kernel for `--isolation vm`.
    pub vm_kernel: Option<Rule<PathBuf>>,
}

/// The policy-relevant command-line flags, as given (`~` not yet expanded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliLayer {
    /// `--allow-write PATH`.
    pub allow_write: Vec<PathBuf>,
    /// `--allow-read PATH`.
    pub allow_read: Vec<PathBuf>,
    /// `--deny-read PATH`.
    pub deny_read: Vec<PathBuf>,
    /// `--env NAME` (pass) or `--env NAME=VALUE` (set).
    pub env: Vec<OsString>,
    /// `--fs MODE`.
    pub fs_mode: Option<crate::ask::FsMode>,
    /// `--allow-domain PATTERN`.
    pub allow_domain: Vec<String>,
    /// `--deny-domain PATTERN`.
    pub deny_domain: Vec<String>,
    /// Directory against which relative flag paths are resolved (the binary passes the
    /// current directory). `None`: relative flag paths are errors, as in files.
    pub cwd: Option<PathBuf>,
}

impl CliLayer {
    /// Validates the flags into a [`Layer`] at the `Cli` tier. Errors name the flag.
    pub fn to_layer(&self, home: &Path) -> Result<Layer, PolicyError> {
        let origin = || Origin::bare(Tier::Cli);
        let path = |flag: &str, p: &Path| -> Result<PathBuf, PolicyError> {
            let expanded = match &self.cwd {
                Some(cwd) if p.is_relative() && p.as_os_str().as_bytes().first() != Some(&b'~') => {
                    normalize(&cwd.join(p))
                }
                _ => expand_path(p.as_os_str(), home),
            };
            expanded.map_err(|e| PolicyError::plain(format!("{flag} {}: {e}", p.display())))
        };
        let mut layer = Layer {
            fs_mode: self.fs_mode.map(|m| Rule::new(m, origin())),
            ..Layer::default()
        };
        for p in &self.allow_write {
            let abs = path("--allow-write", p)?;
            if let Some(problem) = writable_root_problem(&abs, home) {
                return Err(PolicyError::plain(format!(
                    "--allow-write {}: `{}` {problem}; only directories below $HOME (or outside it) can be writable",
                    p.display(),
                    abs.display()
                )));
            }
            layer.allow_write.push(Rule::new(abs, origin()));
        }
        for p in &self.allow_read {
            layer
                .allow_read
                .push(Rule::new(path("--allow-read", p)?, origin()));
        }
        for p in &self.deny_read {
            layer
                .deny_read
                .push(Rule::new(path("--deny-read", p)?, origin()));
        }
        for arg in &self.env {
            let bytes = arg.as_bytes();
            let (name, value) = match bytes.iter().position(|&b| b == b'=') {
                Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
                None => (bytes, None),
            };
            let name = std::str::from_utf8(name)
                .map_err(|_| PolicyError::plain("--env: variable name is not valid UTF-8"))?;
            // `--env` names one variable; a glob here would be a way around the secret-name
            // rule in `scrub_env`, which trusts exact names.
            check_env_name(name, false)
                .map_err(|e| PolicyError::plain(format!("--env {name}: {e}")))?;
            match value {
                Some(v) => {
                    if v.contains(&0) {
                        return Err(PolicyError::plain(format!(
                            "--env {name}=...: value contains a NUL byte"
                        )));
                    }
                    let v = OsString::from(std::ffi::OsStr::from_bytes(v));
                    layer
                        .env_set
                        .push(Rule::new((name.to_string(), v), origin()));
                }
                None => layer.env_pass.push(Rule::new(name.to_string(), origin())),
            }
        }
        for (flag, list, into) in [
            ("--allow-domain", &self.allow_domain, &mut layer.net_allow),
            ("--deny-domain", &self.deny_domain, &mut layer.net_deny),
        ] {
            for p in list {
                let pattern = crate::DomainPattern::parse(p)
                    .map_err(|e| PolicyError::plain(format!("{flag} {p}: {e}")))?;
                into.push(Rule::new(pattern, Origin::flag(flag)));
            }
        }
        Ok(layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_flags() {
        let cli = CliLayer {
            allow_write: vec!["~/src/x".into(), "rel".into()],
            deny_read: vec!["/a/./b".into()],
            env: vec!["FOO".into(), "BAR=1=2".into()],
            cwd: Some("/work".into()),
            ..Default::default()
        };
        let l = cli.to_layer(Path::new("/home/u")).unwrap();
        assert_eq!(l.allow_write[0].value, PathBuf::from("/home/u/src/x"));
        assert_eq!(l.allow_write[1].value, PathBuf::from("/work/rel"));
        assert_eq!(l.deny_read[0].value, PathBuf::from("/a/b"));
        assert_eq!(l.env_pass[0].value, "FOO");
        assert_eq!(
            l.env_set[0].value,
            ("BAR".to_string(), OsString::from("1=2"))
        );
        assert_eq!(l.allow_write[0].origin.tier, Tier::Cli);
    }

    #[test]
    fn domain_flags_are_typed_rules_of_the_cli_tier() {
        let cli = CliLayer {
            allow_domain: vec!["*.example.com:8443".into()],
            deny_domain: vec!["bad.example.com".into()],
            ..Default::default()
        };
        let l = cli.to_layer(Path::new("/home/u")).unwrap();
        assert!(l.net_allow[0].value.matches("a.example.com", 8443));
        assert_eq!(l.net_allow[0].origin.to_string(), "cli --allow-domain");
        assert_eq!(l.net_deny[0].origin.to_string(), "cli --deny-domain");
        let bad = CliLayer {
            allow_domain: vec!["foo*.com".into()],
            ..Default::default()
        };
        let e = bad.to_layer(Path::new("/home/u")).unwrap_err().to_string();
        assert!(
            e.contains("--allow-domain foo*.com: bad domain pattern"),
            "{e}"
        );
    }

    #[test]
    fn cli_refusals() {
        let home = Path::new("/home/u");
        let bad = [
            CliLayer {
                allow_write: vec!["~".into()],
                ..Default::default()
            },
            CliLayer {
                allow_write: vec!["/home".into()],
                ..Default::default()
            },
            CliLayer {
                allow_write: vec!["/".into()],
                ..Default::default()
            },
            CliLayer {
                allow_read: vec!["rel".into()],
                ..Default::default()
            },
            CliLayer {
                deny_read: vec!["/a/../b".into()],
                ..Default::default()
            },
            CliLayer {
                env: vec!["AWS_*".into()],
                ..Default::default()
            },
            CliLayer {
                env: vec!["=x".into()],
                ..Default::default()
            },
        ];
        for cli in bad {
            let e = cli.to_layer(home).unwrap_err();
            assert!(!e.to_string().contains('\n'));
            assert!(e.to_string().starts_with("--"), "{e}");
        }
        let e = CliLayer {
            allow_write: vec!["~".into()],
            ..Default::default()
        }
        .to_layer(home)
        .unwrap_err();
        assert!(e.to_string().contains("$HOME"), "{e}");
    }
}
