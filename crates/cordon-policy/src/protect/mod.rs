//! Protected paths (M3): the data, the rules and a fast matcher.
//!
//! Enforcement (seccomp user notification, read-only binds) lives elsewhere and calls
//! [`ProtectSet::matches`] on every path-creating or path-changing call, and
//! [`ProtectSet::is_ancestor`] for both ends of a rename and for directory removal.

mod data;
mod gitconfig;
mod gitpaths;
pub(crate) mod pattern;

use std::collections::HashMap;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::tier::Origin;
pub use data::builtin_protect_rules;
pub use gitconfig::{git_extra_protect, parse_gitdir_file, GitPathKind, GitPathRef};
pub use gitpaths::git_pointed_rules;
use pattern::{components, Pattern};

/// How a protect rule is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtectKind {
    /// Matched against the trailing components of any path, at any depth.
    Anywhere,
    /// Anchored at `$HOME`.
    Home,
    /// Anchored at `/`.
    Absolute,
}

/// One protected path or pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectRule {
    /// How the pattern is anchored.
    pub kind: ProtectKind,
    /// The pattern: relative to the anchor for `Anywhere` and `Home`, starting with `/` for
    /// `Absolute`; components normalised, case as written.
    pub pattern: String,
    /// Why it is protected (the group name in the data file), if known.
    pub why: Option<String>,
    /// Where the rule came from.
    pub origin: Origin,
    /// `pattern` is an exact path (built by [`ProtectRule::exact`]): `*`, `?`, `[` are plain
    /// characters; a trailing `/**` still means "and everything below".
    pub literal: bool,
    /// Whether an `Anywhere` rule still applies inside dependency trees and package caches
    /// (`node_modules`, `site-packages`, ...), whose names the sandbox can choose. Anchored
    /// rules always apply. Built-in rules say so in `data/protected.toml`; every other rule
    /// applies there (a person who adds a rule wants it everywhere).
    pub in_dependency_trees: bool,
}

impl ProtectRule {
    /// A rule of a given kind; validates the pattern.
    pub fn new(
        kind: ProtectKind,
        pattern: &str,
        why: Option<String>,
        origin: Origin,
    ) -> Result<Self, String> {
        Self::build(kind, pattern, why, origin, true)
    }

    /// [`ProtectRule::new`] for the built-in table, whose patterns a unit test validates: the
    /// set compiles each pattern anyway, so parsing it twice at every start is waste.
    pub(crate) fn new_builtin(
        kind: ProtectKind,
        pattern: &str,
        why: Option<String>,
        origin: Origin,
    ) -> Result<Self, String> {
        Self::build(kind, pattern, why, origin, false)
    }

    fn build(
        kind: ProtectKind,
        pattern: &str,
        why: Option<String>,
        origin: Origin,
        validate: bool,
    ) -> Result<Self, String> {
        let body = match kind {
            ProtectKind::Absolute => pattern
                .strip_prefix('/')
                .ok_or_else(|| "absolute pattern must start with `/`".to_string())?,
            ProtectKind::Anywhere | ProtectKind::Home => pattern,
        };
        if validate {
            Pattern::parse(body)?;
        }
        let normal = body
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect::<Vec<_>>()
            .join("/");
        let pattern = match kind {
            ProtectKind::Absolute => format!("/{normal}"),
            _ => normal,
        };
        Ok(ProtectRule {
            kind,
            pattern,
            why,
            origin,
            literal: false,
            in_dependency_trees: true,
        })
    }

    /// An exact absolute path (e.g. a `core.hooksPath` or `include.path` target the binary
    /// resolved), with `subtree` = everything below it too. Glob characters in the path are
    /// taken literally. The path must be absolute, UTF-8, without `..`.
    pub fn exact(
        path: &Path,
        subtree: bool,
        why: Option<String>,
        origin: Origin,
    ) -> Result<Self, String> {
        let norm = crate::paths::normalize(path)?;
        let text = norm
            .to_str()
            .ok_or_else(|| format!("{}: path is not valid UTF-8", norm.display()))?;
        if text == "/" {
            return Err("refusing to protect `/` itself".into());
        }
        if text.split('/').any(|c| c == "**") {
            return Err("a path component is literally `**`".into());
        }
        let pattern = if subtree {
            format!("{text}/**")
        } else {
            text.to_string()
        };
        Ok(ProtectRule {
            kind: ProtectKind::Absolute,
            pattern,
            why,
            origin,
            literal: true,
            in_dependency_trees: true,
        })
    }

    /// A rule as spelled in a policy file's `protect` list: `~/...` is anchored at home,
    /// `/...` at the root, anything else matches anywhere.
    pub fn from_policy(text: &str, origin: Origin) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty pattern".into());
        }
        if text == "~" {
            return Err("`~` alone would protect nothing below it; name a path under it".into());
        }
        if let Some(rest) = text.strip_prefix("~/") {
            ProtectRule::new(ProtectKind::Home, rest, None, origin)
        } else if text.starts_with('~') {
            Err("`~user` paths are not supported; write the path in full".into())
        } else if text.starts_with('/') {
            ProtectRule::new(ProtectKind::Absolute, text, None, origin)
        } else {
            ProtectRule::new(ProtectKind::Anywhere, text, None, origin)
        }
    }

    /// The rule with [`ProtectRule::in_dependency_trees`] set to `applies`.
    pub fn with_dependency_trees(mut self, applies: bool) -> Self {
        self.in_dependency_trees = applies;
        self
    }

    /// Whether the rule applies at a path inside a dependency tree or package cache.
    pub fn applies_in_dependency_trees(&self) -> bool {
        self.kind != ProtectKind::Anywhere || self.in_dependency_trees
    }

    fn compile(&self) -> Result<Pattern, String> {
        if self.literal {
            let (body, subtree) = match self.pattern.strip_suffix("/**") {
                Some(b) => (b, true),
                None => (self.pattern.as_str(), false),
            };
            return Pattern::literal(&components(body.as_bytes()), subtree);
        }
        Pattern::parse(self.pattern.trim_start_matches('/'))
    }
}

impl fmt::Display for ProtectRule {
    /// The pattern as a person would write it in a policy file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ProtectKind::Anywhere => write!(f, "{}", self.pattern),
            ProtectKind::Home => write!(f, "~/{}", self.pattern),
            ProtectKind::Absolute => write!(f, "{}", self.pattern),
        }
    }
}

/// Rules of one anchoring, indexed by their first component so a lookup only tries the few
/// rules that can start at a given component.
#[derive(Debug, Default)]
struct Index {
    by_first: HashMap<Box<[u8]>, Vec<usize>>,
    wild: Vec<usize>,
}

impl Index {
    fn add(&mut self, pat: &Pattern, idx: usize) {
        match pat.first_literal() {
            Some(lit) => self.by_first.entry(lit.into()).or_default().push(idx),
            None => self.wild.push(idx),
        }
    }

    fn candidates<'a>(&'a self, first: &[u8]) -> impl Iterator<Item = usize> + 'a {
        self.by_first
            .get(first)
            .into_iter()
            .flatten()
            .chain(self.wild.iter())
            .copied()
    }

    fn is_empty(&self) -> bool {
        self.by_first.is_empty() && self.wild.is_empty()
    }
}

/// The compiled set of protected paths: built-in data plus policy `protect` rules.
#[derive(Debug)]
pub struct ProtectSet {
    rules: Vec<ProtectRule>,
    compiled: Vec<Pattern>,
    /// `$HOME`'s components, lower-cased.
    home: Vec<Box<[u8]>>,
    anywhere: Index,
    home_rules: Index,
    absolute: Vec<usize>,
    /// The package caches below `$HOME` (see [`crate::fsrules::EXEMPTIONS`]).
    caches: Vec<PathBuf>,
}

impl ProtectSet {
    /// Built-in rules (`data/protected.toml`) plus `extra` (the policy's `protect` rules).
    pub fn new(home: &Path, extra: &[ProtectRule]) -> Result<Self, PolicyError> {
        let mut rules = builtin_protect_rules()?;
        rules.extend(extra.iter().cloned());
        Self::from_rules(home, rules)
    }

    /// Only the given rules, no built-in data (tests, tools).
    pub fn from_rules(home: &Path, rules: Vec<ProtectRule>) -> Result<Self, PolicyError> {
        let mut set = ProtectSet {
            rules: Vec::new(),
            compiled: Vec::new(),
            home: components(&home.as_os_str().as_bytes().to_ascii_lowercase())
                .into_iter()
                .map(Box::from)
                .collect(),
            anywhere: Index::default(),
            home_rules: Index::default(),
            absolute: Vec::new(),
            caches: crate::fsrules::exempt::package_caches(home),
        };
        for rule in rules {
            let pat = rule.compile().map_err(|e| {
                let msg = format!("protect `{rule}`: {e}");
                match (&rule.origin.file, rule.origin.line) {
                    (Some(f), Some(l)) => PolicyError::at(f, l, 1, msg),
                    (Some(f), None) => PolicyError::in_file(f, msg),
                    _ => PolicyError::plain(msg),
                }
            })?;
            let idx = set.rules.len();
            match rule.kind {
                ProtectKind::Anywhere => set.anywhere.add(&pat, idx),
                ProtectKind::Home => set.home_rules.add(&pat, idx),
                ProtectKind::Absolute => set.absolute.push(idx),
            }
            set.compiled.push(pat);
            set.rules.push(rule);
        }
        Ok(set)
    }

    /// Protected paths that exist now in a writable place: they get read-only binds, a second wall
    /// behind the path guard. Only literal patterns are looked up (at the workspace and
    /// allow_write roots for `anywhere` rules); the guard covers every other match at run time.
    pub fn existing(&self, home: &Path, writable: &[PathBuf]) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        // Most candidates sit in directories that do not exist (`.vscode/`, `.claude/`, ...):
        // one look at each directory spares a failed look per name in it (hundreds at start).
        let mut dirs = Dirs::default();
        for rule in self.rules() {
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
                let inside = c.starts_with(home) || writable.iter().any(|w| c.starts_with(w));
                if !inside || !dirs.exists(c.parent()) {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&c) else {
                    continue;
                };
                if (meta.is_file() || (subtree && meta.is_dir())) && !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        // Parents before children, so a bound directory does not hide a later bind inside it.
        out.sort_by_key(|p| p.components().count());
        out
    }

    /// Every rule in the set, built-in first.
    pub fn rules(&self) -> &[ProtectRule] {
        &self.rules
    }

    /// Is `path` (absolute, normalised, symlinks resolved, no `..`) itself protected?
    /// Returns the first rule (in [`ProtectSet::rules`] order) that matches.
    pub fn matches(&self, path: &Path) -> Option<&ProtectRule> {
        self.first_match(path, |_| true)
    }

    /// The rule protecting `path` from the sandbox, as the path guard and the named-sandbox
    /// scrub decide it: [`ProtectSet::matches`], except that inside a dependency tree or
    /// package cache only the rules that [apply there](ProtectRule::applies_in_dependency_trees)
    /// count.
    pub fn protecting(&self, path: &Path) -> Option<&ProtectRule> {
        if self.in_dependency_tree(path) {
            self.first_match(path, |r| r.applies_in_dependency_trees())
        } else {
            self.matches(path)
        }
    }

    /// [`ProtectSet::is_ancestor`] with the rules [`ProtectSet::protecting`] counts at `path`:
    /// whether moving `path` would move protected content.
    pub fn leads_to_protected(&self, path: &Path) -> bool {
        if self.in_dependency_tree(path) {
            self.ancestor_of(path, |r| r.applies_in_dependency_trees())
        } else {
            self.is_ancestor(path)
        }
    }

    /// Whether only the rules that apply in dependency trees apply at `path`.
    pub fn in_dependency_tree(&self, path: &Path) -> bool {
        crate::fsrules::exempt::in_dependency_tree(&self.caches, path)
    }

    fn first_match(
        &self,
        path: &Path,
        counts: impl Fn(&ProtectRule) -> bool,
    ) -> Option<&ProtectRule> {
        let mut best: Option<usize> = None;
        self.each_match(path, |idx| {
            if best.is_none_or(|b| idx < b) && counts(&self.rules[idx]) {
                best = Some(idx);
            }
        });
        best.map(|i| &self.rules[i])
    }

    /// Every rule that matches `path` (as [`ProtectSet::matches`] takes it), in no set order.
    pub fn matches_all(&self, path: &Path) -> Vec<&ProtectRule> {
        let mut all = Vec::new();
        self.each_match(path, |idx| all.push(idx));
        all.sort_unstable();
        all.dedup();
        all.into_iter().map(|i| &self.rules[i]).collect()
    }

    fn each_match(&self, path: &Path, mut take: impl FnMut(usize)) {
        let lower = path.as_os_str().as_bytes().to_ascii_lowercase();
        let comps = components(&lower);
        for i in 0..comps.len() {
            for idx in self.anywhere.candidates(comps[i]) {
                if self.compiled[idx].matches(&comps[i..]) {
                    take(idx);
                }
            }
        }
        if comps.len() > self.home.len() && self.under_home(&comps) {
            let rest = &comps[self.home.len()..];
            for idx in self.home_rules.candidates(rest[0]) {
                if self.compiled[idx].matches(rest) {
                    take(idx);
                }
            }
        }
        for &idx in &self.absolute {
            if self.compiled[idx].matches(&comps) {
                take(idx);
            }
        }
    }

    /// `comps` starts with `$HOME`'s components (and is longer).
    fn under_home(&self, comps: &[&[u8]]) -> bool {
        comps.len() > self.home.len() && comps.iter().zip(&self.home).all(|(c, h)| *c == &**h)
    }

    /// Is `path` a strict ancestor of something a rule could match *through* it, so that
    /// renaming, replacing or removing `path` would move or swap protected content?
    ///
    /// For `Home` and `Absolute` rules that is every ancestor of a possible match (`$HOME`,
    /// `$HOME/.config` for `.config/git/**`, `/`). For `Anywhere` rules it is every ancestor
    /// that lies *inside* the matched components (`x/.git` for `.git/hooks/**`,
    /// `x/.git/modules/a` for `.git/modules/**/config`) but not `x` itself: any directory could
    /// hold a `.git`, so "could contain a match below" would forbid every rename; moving `x`
    /// moves its `.git` along to a name where the same anywhere rule still protects it.
    pub fn is_ancestor(&self, path: &Path) -> bool {
        self.ancestor_of(path, |_| true)
    }

    /// [`ProtectSet::is_ancestor`] counting only the `anywhere` rules `counts` accepts (home
    /// and absolute rules apply everywhere).
    fn ancestor_of(&self, path: &Path, counts: impl Fn(&ProtectRule) -> bool) -> bool {
        let lower = path.as_os_str().as_bytes().to_ascii_lowercase();
        let comps = components(&lower);
        if !self.home_rules.is_empty() {
            // `/`, `/home`, `$HOME`: every home rule matches something below them.
            let above_home = comps.len() <= self.home.len()
                && comps.iter().zip(&self.home).all(|(c, h)| *c == &**h);
            if above_home {
                return true;
            }
            if self.under_home(&comps) {
                let rest = &comps[self.home.len()..];
                if self
                    .home_rules
                    .candidates(rest[0])
                    .any(|idx| self.compiled[idx].could_extend(rest))
                {
                    return true;
                }
            }
        }
        if self
            .absolute
            .iter()
            .any(|&idx| self.compiled[idx].could_extend(&comps))
        {
            return true;
        }
        (0..comps.len()).any(|i| {
            self.anywhere
                .candidates(comps[i])
                .any(|idx| counts(&self.rules[idx]) && self.compiled[idx].could_extend(&comps[i..]))
        })
    }
}

/// Whether directories exist (symlinks followed, as a lookup of a name inside them follows
/// them), each looked at once.
#[derive(Default)]
struct Dirs {
    known: HashMap<PathBuf, bool>,
}

impl Dirs {
    fn exists(&mut self, dir: Option<&Path>) -> bool {
        let Some(dir) = dir else {
            return true;
        };
        if let Some(known) = self.known.get(dir) {
            return *known;
        }
        let is = self.exists(dir.parent()) && std::fs::metadata(dir).is_ok_and(|m| m.is_dir());
        self.known.insert(dir.to_path_buf(), is);
        is
    }
}

#[cfg(test)]
mod tests;
