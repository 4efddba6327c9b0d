//! The active profiles' own configuration in `$HOME`.
//!
//! An agent saves its trust decisions, login choice and settings in files its profile protects
//! (`~/.gemini/settings.json`, `~/.codex/config.toml`, ...). Refusing those writes breaks the
//! agent's first run; letting them reach the host would let injected code rewrite the agent's
//! configuration for every later session (M3). The middle: such a write lands in the sandbox's
//! private `$HOME` layer, so the agent sees it for the rest of the session, and the person
//! copies it out after reading it (`cordon config diff`, `cordon config apply`).
//!
//! [`OwnConfig::writable_in_layer`] is that decision. Only the `~/...` entries of an active
//! profile's `[config] protect` qualify, only outside every host-shared root (workspace,
//! `allow_write`, `[state] persist`), and only where nothing but built-in rules protect the path:
//! a protect rule of the person, a project or the managed tier is never lifted, and neither is
//! anything no active profile names (shell start-up files, git configuration, workspace
//! configuration such as `CLAUDE.md` or `.gemini/settings.json` in a project).

use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::protect::{ProtectKind, ProtectRule, ProtectSet};
use crate::tier::Tier;

use super::Profile;

/// The `~/...` configuration rules of the active profiles, one matcher per profile.
#[derive(Debug)]
pub struct OwnConfig {
    home: PathBuf,
    profiles: Vec<(String, ProtectSet)>,
    /// Per profile, what the agent rewrites itself (`[config] regenerated`).
    regenerated: Vec<ProtectSet>,
    /// (file, keys) the agents update by themselves (`[config.volatile]`).
    volatile: Vec<(PathBuf, Vec<String>)>,
}

/// A path one profile names as its own configuration, and the rule that names it.
#[derive(Debug, Clone, Copy)]
pub struct OwnMatch<'a> {
    /// The profile's name.
    pub profile: &'a str,
    /// Its `[config] protect` rule (origin `builtin profile NAME:LINE`).
    pub rule: &'a ProtectRule,
}

impl OwnConfig {
    /// The own configuration of `profiles` (their `Home` protect rules).
    pub fn new(home: &Path, profiles: &[Profile]) -> Result<Self, PolicyError> {
        let mut out = OwnConfig {
            home: home.to_path_buf(),
            profiles: Vec::new(),
            regenerated: Vec::new(),
            volatile: Vec::new(),
        };
        for p in profiles {
            let rules: Vec<ProtectRule> = p
                .layer
                .protect
                .iter()
                .filter(|r| r.kind == ProtectKind::Home)
                .cloned()
                .collect();
            if !rules.is_empty() && !out.profiles.iter().any(|(n, _)| n == &p.name) {
                out.profiles
                    .push((p.name.clone(), ProtectSet::from_rules(home, rules)?));
                out.regenerated
                    .push(ProtectSet::from_rules(home, p.regenerated.clone())?);
                out.volatile.extend(p.volatile.iter().cloned());
            }
        }
        Ok(out)
    }

    /// No active profile names configuration in `$HOME`.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The home directory the rules are anchored at.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The names of the profiles with own configuration, in order.
    pub fn profiles(&self) -> impl Iterator<Item = &str> {
        self.profiles.iter().map(|(n, _)| n.as_str())
    }

    /// The profile naming `path` (absolute, normalised) as its own configuration, if any.
    pub fn owner(&self, path: &Path) -> Option<OwnMatch<'_>> {
        self.profiles.iter().find_map(|(name, set)| {
            set.matches(path).map(|rule| OwnMatch {
                profile: name,
                rule,
            })
        })
    }

    /// Whether `path` is own configuration its agent rewrites by itself at every start: it is
    /// never saved for `cordon config apply` (the agent on the host writes its own copy).
    pub fn regenerated(&self, path: &Path) -> bool {
        self.profiles
            .iter()
            .zip(&self.regenerated)
            .any(|((_, own), regen)| own.matches(path).is_some() && regen.matches(path).is_some())
    }

    /// The keys of own-configuration file `path` that its agent updates by itself (counters,
    /// timestamps), as dotted paths into the file's JSON or TOML.
    pub fn volatile_keys(&self, path: &Path) -> Vec<&str> {
        self.volatile
            .iter()
            .filter(|(f, _)| f == path)
            .flat_map(|(_, keys)| keys.iter().map(String::as_str))
            .collect()
    }

    /// Whether a write to `path` may land in the private `$HOME` layer: `path` is an active
    /// profile's own configuration, lies in no host-shared root of `shared`, and every rule of
    /// `protect` (the run's whole protected set) matching it is built-in data or a profile rule.
    pub fn writable_in_layer<'a>(
        &'a self,
        path: &Path,
        protect: &ProtectSet,
        shared: &[PathBuf],
    ) -> Option<OwnMatch<'a>> {
        if !path.starts_with(&self.home) || path == self.home {
            return None;
        }
        if shared.iter().any(|s| path.starts_with(s)) {
            return None;
        }
        let own = self.owner(path)?;
        let lifted = protect
            .matches_all(path)
            .iter()
            .all(|r| r.origin.tier == Tier::Builtin && !r.literal);
        lifted.then_some(own)
    }

    /// Where each profile's own configuration can be: the literal part of every rule (the
    /// file, or the directory a `/**` or a glob starts below), as (profile, path).
    pub fn roots(&self) -> Vec<(&str, PathBuf)> {
        let mut out: Vec<(&str, PathBuf)> = Vec::new();
        for (name, set) in &self.profiles {
            for rule in set.rules() {
                let literal: Vec<&str> = rule
                    .pattern
                    .split('/')
                    .take_while(|c| !c.contains(['*', '?', '[']))
                    .collect();
                if literal.is_empty() {
                    continue;
                }
                let p = self.home.join(literal.join("/"));
                if !out.iter().any(|(n, q)| *n == name.as_str() && *q == p) {
                    out.push((name, p));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::parse_profile;

    fn profile(name: &str, text: &str) -> Profile {
        parse_profile(
            name,
            Path::new("profiles/x.toml"),
            text,
            None,
            Path::new("/home/u"),
        )
        .unwrap()
    }

    const GEM: &str = r#"
description = "g"
[config]
protect = ["~/.gemini/settings.json", "~/.gemini/commands/**", ".gemini/settings.json", "GEMINI.md"]
"#;

    fn set(extra: &[ProtectRule]) -> ProtectSet {
        let mut rules = crate::protect::builtin_protect_rules().unwrap();
        rules.extend(profile("gemini", GEM).layer.protect);
        rules.extend(extra.iter().cloned());
        ProtectSet::from_rules(Path::new("/home/u"), rules).unwrap()
    }

    #[test]
    fn the_profiles_own_home_files_go_to_the_layer() {
        let own = OwnConfig::new(Path::new("/home/u"), &[profile("gemini", GEM)]).unwrap();
        let s = set(&[]);
        let shared = [PathBuf::from("/home/u/ws")];
        for p in [
            "/home/u/.gemini/settings.json",
            "/home/u/.gemini/commands",
            "/home/u/.gemini/commands/x.toml",
        ] {
            let m = own.writable_in_layer(Path::new(p), &s, &shared);
            let m = m.unwrap_or_else(|| panic!("{p} refused"));
            assert_eq!(m.profile, "gemini");
            assert!(m.rule.origin.to_string().contains("profile gemini"));
        }
    }

    #[test]
    fn everything_else_stays_refused() {
        let own = OwnConfig::new(Path::new("/home/u"), &[profile("gemini", GEM)]).unwrap();
        let s = set(&[]);
        let shared = [
            PathBuf::from("/home/u/ws"),
            PathBuf::from("/home/u/.gemini/tmp"),
        ];
        for p in [
            "/home/u/.bashrc",
            "/home/u/.gitconfig",
            "/home/u/.config/git/config",
            "/home/u/.claude/settings.json",
            "/home/u/.gemini",
            "/home/u/ws/.gemini/settings.json",
            "/home/u/ws/GEMINI.md",
            "/home/u/GEMINI.md",
            "/home/u/.gemini/GEMINI.md",
            "/tmp/.gemini/settings.json",
            "/home/u",
        ] {
            assert!(
                own.writable_in_layer(Path::new(p), &s, &shared).is_none(),
                "{p} allowed"
            );
        }
        // A host-shared root is the host: never the layer.
        let shared = [PathBuf::from("/home/u/.gemini")];
        assert!(own
            .writable_in_layer(Path::new("/home/u/.gemini/settings.json"), &s, &shared)
            .is_none());
    }

    #[test]
    fn a_persons_protect_rule_is_never_lifted() {
        let own = OwnConfig::new(Path::new("/home/u"), &[profile("gemini", GEM)]).unwrap();
        let origin = crate::tier::Origin {
            tier: Tier::User,
            file: Some(PathBuf::from("policy.toml")),
            line: Some(3),
            col: None,
            flag: None,
        };
        let mine = ProtectRule::from_policy("~/.gemini/settings.json", origin).unwrap();
        let s = set(&[mine]);
        assert!(own
            .writable_in_layer(Path::new("/home/u/.gemini/settings.json"), &s, &[])
            .is_none());
    }

    #[test]
    fn roots_are_the_literal_parts() {
        let own = OwnConfig::new(Path::new("/home/u"), &[profile("gemini", GEM)]).unwrap();
        let roots: Vec<PathBuf> = own.roots().into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            roots,
            [
                PathBuf::from("/home/u/.gemini/settings.json"),
                PathBuf::from("/home/u/.gemini/commands")
            ]
        );
    }

    #[test]
    fn state_dirs_are_checked() {
        let p = profile(
            "x",
            "description = \"x\"\n[state]\ndirs = [\"~/.x\", \"~/.x/s\"]\n",
        );
        assert_eq!(p.dirs.len(), 2);
        assert_eq!(p.dirs[1].value, PathBuf::from("/home/u/.x/s"));
        for bad in ["/etc/x", "~", "~/", "~/a/*", "rel"] {
            let text = format!("description = \"x\"\n[state]\ndirs = [\"{bad}\"]\n");
            assert!(
                parse_profile("x", Path::new("x.toml"), &text, None, Path::new("/home/u")).is_err(),
                "{bad} accepted"
            );
        }
    }
}
