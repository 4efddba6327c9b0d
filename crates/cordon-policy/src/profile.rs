//! Agent and tool profiles: `profiles/<name>.toml`, compiled in, overridable by the person.
//!
//! A profile is data saying what one agent (or tool bundle) needs: the hosts it must reach,
//! the state it keeps between runs (made writable) and its configuration files (protected).
//! [`parse_profile`] turns one file into a [`Profile`] whose [`Layer`] sits at the
//! [`Tier::Builtin`] tier, so every user, project or managed rule beats it;
//! [`Inputs::profiles`](crate::Inputs::profiles) hands it to [`resolve`](crate::resolve).
//!
//! Every rule's origin reads `builtin profile NAME:LINE` (or `builtin profile NAME FILE:LINE`
//! for a person's override), so `cordon policy show` says which profile added it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::PolicyError;
use crate::layer::Layer;
use crate::location::line_col;
use crate::paths::{expand_path, writable_root_problem};
use crate::protect::ProtectRule;
use crate::tier::{Origin, Rule, Tier};

/// The profiles shipped inside cordon: name and TOML text.
pub const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("aider", include_str!("../../../profiles/aider.toml")),
    ("apt", include_str!("../../../profiles/apt.toml")),
    ("claude", include_str!("../../../profiles/claude.toml")),
    ("codex", include_str!("../../../profiles/codex.toml")),
    ("copilot", include_str!("../../../profiles/copilot.toml")),
    ("crates", include_str!("../../../profiles/crates.toml")),
    ("gemini", include_str!("../../../profiles/gemini.toml")),
    ("github", include_str!("../../../profiles/github.toml")),
    ("gitlab", include_str!("../../../profiles/gitlab.toml")),
    ("go", include_str!("../../../profiles/go.toml")),
    ("goose", include_str!("../../../profiles/goose.toml")),
    (
        "huggingface",
        include_str!("../../../profiles/huggingface.toml"),
    ),
    ("npm", include_str!("../../../profiles/npm.toml")),
    ("opencode", include_str!("../../../profiles/opencode.toml")),
    ("pypi", include_str!("../../../profiles/pypi.toml")),
];

/// The compiled-in text of profile `name`, if cordon ships one.
pub fn builtin_profile(name: &str) -> Option<&'static str> {
    BUILTIN_PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// Profile names are file names: lower-case ASCII letters, digits, `-` and `_`.
pub fn check_profile_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a profile name (lower-case letters, digits, `-`, `_`)"
        ))
    }
}

/// One parsed profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The name (`claude`, `npm`, ...).
    pub name: String,
    /// One line for listings.
    pub description: String,
    /// Command basenames (or npm package names) that select this profile automatically.
    pub commands: Vec<String>,
    /// The person's override file, when the profile was read from one.
    pub file: Option<PathBuf>,
    /// The rules, at the built-in tier: `allow_write` (state), `protect` (config),
    /// `net_allow` (hosts).
    pub layer: Layer,
    /// `[state] dirs`: the agent's own directories under `$HOME`, created on the host (empty,
    /// 0700) before a run when missing, so its state persists and its settings can be saved
    /// from the very first run. Each with its origin.
    pub dirs: Vec<Rule<PathBuf>>,
    /// `[config] regenerated`: own configuration the agent itself rewrites from its shipped
    /// copy at every start (codex's bundled skills): written in the private layer like the
    /// rest, never saved for `cordon config apply` (there is nothing of the person's to review).
    pub regenerated: Vec<ProtectRule>,
    /// `[config.volatile]`: per own-configuration file (absolute), the keys (dotted paths into
    /// its JSON or TOML) the agent updates by itself, counters and timestamps: a file that
    /// differs from the host's only there is not saved.
    pub volatile: Vec<(PathBuf, Vec<String>)>,
}

impl Profile {
    /// The `[state] persist` paths (absolute), in file order.
    pub fn persist_paths(&self) -> Vec<PathBuf> {
        self.layer
            .allow_write
            .iter()
            .map(|r| r.value.clone())
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    description: Spanned<String>,
    commands: Option<Vec<Spanned<String>>>,
    network: Option<RawNetwork>,
    state: Option<RawState>,
    config: Option<RawConfig>,
    env: Option<RawProfileEnv>,
}

/// `[env] set`: constants written in the profile (never values passed from the host), for
/// the settings an agent reads only from its environment, such as the switch that turns
/// its optional traffic off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfileEnv {
    set: std::collections::BTreeMap<Spanned<String>, Spanned<String>>,
}

type List = Option<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    allow: List,
    optional: Option<Vec<Spanned<RawOptional>>>,
}

/// One `[network] optional` entry: `{ host = "...", why = "...", source = "..." }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptional {
    host: Spanned<String>,
    why: Spanned<String>,
    source: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    persist: List,
    dirs: List,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    protect: List,
    regenerated: List,
    volatile: Option<std::collections::BTreeMap<String, Vec<Spanned<String>>>>,
}

/// Parses profile `name` from `text`. `file` is where errors point (the compiled-in ones are
/// named `profiles/NAME.toml`); `override_file` is the person's file when it came from one
/// (it then appears in every origin). Errors are `FILE:LINE:COL: message`.
///
/// `[env]` has only `set`, constants written in the profile: a profile never passes a host
/// variable (so never a secret), and a name that looks secret is refused.
pub fn parse_profile(
    name: &str,
    file: &Path,
    text: &str,
    override_file: Option<&Path>,
    home: &Path,
) -> Result<Profile, PolicyError> {
    check_profile_name(name).map_err(|e| PolicyError::in_file(file, e))?;
    let raw: RawProfile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        PolicyError::at(file, line, col, e.message())
    })?;
    let label = match override_file {
        Some(p) => PathBuf::from(format!("profile {name} {}", p.display())),
        None => PathBuf::from(format!("profile {name}")),
    };
    let cx = Cx {
        file,
        text,
        label,
        lines: crate::location::LineIndex::new(text),
    };

    let description = raw.description.get_ref().trim().to_string();
    if description.is_empty() || description.chars().any(char::is_control) {
        return Err(cx.err(
            raw.description.span().start,
            "description must be one non-empty line",
        ));
    }
    let mut commands = Vec::new();
    for c in raw.commands.iter().flatten() {
        let v = c.get_ref();
        let ok = !v.is_empty()
            && !v.starts_with('-')
            && v.chars().all(|ch| ch.is_ascii_graphic() && ch != '\\');
        if !ok {
            return Err(cx.err(
                c.span().start,
                format!("commands: {v:?} is not a command name"),
            ));
        }
        commands.push(v.clone());
    }

    let mut layer = Layer::default();
    let (allow, optional) = match raw.network {
        Some(n) => (n.allow, n.optional),
        None => (None, None),
    };
    for entry in allow.iter().flatten() {
        let at = entry.span().start;
        let pattern = crate::DomainPattern::parse(entry.get_ref())
            .map_err(|e| cx.err(at, format!("network.allow: {e}")))?;
        layer.net_allow.push(Rule::new(pattern, cx.origin(at)));
    }
    for entry in optional.iter().flatten() {
        let e = entry.get_ref();
        let at = e.host.span().start;
        let pattern = crate::DomainPattern::parse(e.host.get_ref())
            .map_err(|m| cx.err(at, format!("network.optional: {m}")))?;
        let same = |p: &crate::DomainPattern| p.as_str().eq_ignore_ascii_case(pattern.as_str());
        if layer.net_allow.iter().any(|r| same(&r.value)) {
            return Err(cx.err(
                at,
                format!("network.optional: {pattern} is also in network.allow (one or the other)"),
            ));
        }
        if layer.net_optional.iter().any(|r| same(&r.value.pattern)) {
            return Err(cx.err(at, format!("network.optional: {pattern} is listed twice")));
        }
        for (key, field, max) in [("why", &e.why, 120), ("source", &e.source, 300)] {
            let v = field.get_ref().trim();
            if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
                return Err(cx.err(
                    field.span().start,
                    format!("network.optional: `{key}` must be one non-empty line of at most {max} bytes"),
                ));
            }
        }
        layer.net_optional.push(Rule::new(
            crate::OptionalDomain {
                pattern,
                host: crate::OptionalHost {
                    profile: name.to_string(),
                    why: e.why.get_ref().trim().to_string(),
                },
                source: e.source.get_ref().trim().to_string(),
            },
            cx.origin(at),
        ));
    }
    let (persist, dirs) = match raw.state {
        Some(s) => (s.persist, s.dirs),
        None => (None, None),
    };
    let mut state_dirs = Vec::new();
    for entry in dirs.iter().flatten() {
        let at = entry.span().start;
        let raw_path = entry.get_ref();
        // Only the agent's own corner of $HOME: made by cordon on the host, so never a
        // directory a person keeps other things in.
        let Some(rest) = raw_path.strip_prefix("~/") else {
            return Err(cx.err(at, format!("state.dirs: {raw_path:?} must start with `~/`")));
        };
        let path = expand_path(std::ffi::OsStr::new(raw_path), home)
            .map_err(|e| cx.err(at, format!("state.dirs: {raw_path:?}: {e}")))?;
        if rest.is_empty() || rest.contains(['*', '?', '[']) {
            return Err(cx.err(
                at,
                format!("state.dirs: {raw_path:?} must name one directory below `~`"),
            ));
        }
        if let Some(problem) = writable_root_problem(&path, home) {
            return Err(cx.err(at, format!("state.dirs `{}` {problem}", path.display())));
        }
        state_dirs.push(Rule::new(path, cx.origin(at)));
    }
    for entry in persist.iter().flatten() {
        let at = entry.span().start;
        let raw_path = entry.get_ref();
        // Relative paths would depend on the current directory; agent state lives at home.
        if !(raw_path.starts_with("~/") || raw_path.starts_with('/')) {
            return Err(cx.err(
                at,
                format!("state.persist: {raw_path:?} must start with `~/` or `/`"),
            ));
        }
        let path = expand_path(std::ffi::OsStr::new(raw_path), home)
            .map_err(|e| cx.err(at, format!("state.persist: {raw_path:?}: {e}")))?;
        if let Some(problem) = writable_root_problem(&path, home) {
            return Err(cx.err(at, format!("state.persist `{}` {problem}", path.display())));
        }
        layer.allow_write.push(Rule::new(path, cx.origin(at)));
    }
    for (name, value) in raw.env.iter().flat_map(|e| e.set.iter()) {
        let at = name.span().start;
        let n = name.get_ref();
        let plain = !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !plain || crate::env::looks_secret(n) {
            return Err(cx.err(
                at,
                format!("env.set: {n:?} is not a plain variable name that looks like no secret"),
            ));
        }
        if value.get_ref().chars().any(char::is_control) {
            return Err(cx.err(
                value.span().start,
                "env.set: a control character in the value",
            ));
        }
        layer.env_set.push(Rule::new(
            (n.clone(), std::ffi::OsString::from(value.get_ref())),
            cx.origin(at),
        ));
    }
    let (protect, regen, volatile_raw) = match raw.config {
        Some(c) => (c.protect, c.regenerated, c.volatile),
        None => (None, None, None),
    };
    for entry in protect.iter().flatten() {
        let at = entry.span().start;
        let rule = ProtectRule::from_policy(entry.get_ref(), cx.origin(at))
            .map_err(|e| cx.err(at, format!("config.protect `{}`: {e}", entry.get_ref())))?;
        layer.protect.push(rule);
    }
    let own_home = |pattern: &str| {
        layer
            .protect
            .iter()
            .any(|r| r.kind == crate::protect::ProtectKind::Home && r.pattern == pattern)
    };
    let mut regenerated = Vec::new();
    for entry in regen.iter().flatten() {
        let at = entry.span().start;
        let rule = ProtectRule::from_policy(entry.get_ref(), cx.origin(at))
            .map_err(|e| cx.err(at, format!("config.regenerated `{}`: {e}", entry.get_ref())))?;
        // Only below the agent's own configuration: what is not saved must be its own.
        let below_own = rule.kind == crate::protect::ProtectKind::Home
            && layer.protect.iter().any(|r| {
                r.kind == crate::protect::ProtectKind::Home
                    && r.pattern.strip_suffix("/**").is_some_and(|dir| {
                        rule.pattern.starts_with(dir) && rule.pattern[dir.len()..].starts_with('/')
                    })
            });
        if !below_own {
            return Err(cx.err(
                at,
                format!(
                    "config.regenerated `{}` must lie below a `~/DIR/**` entry of config.protect",
                    entry.get_ref()
                ),
            ));
        }
        regenerated.push(rule);
    }
    let mut volatile = Vec::new();
    for (file, keys) in volatile_raw.iter().flatten() {
        let at = keys.first().map_or(0, |k| k.span().start);
        let Some(rest) = file.strip_prefix("~/") else {
            return Err(cx.err(
                at,
                format!("config.volatile: {file:?} must start with `~/`"),
            ));
        };
        if !own_home(rest) {
            return Err(cx.err(
                at,
                format!("config.volatile: {file:?} is not a file of config.protect"),
            ));
        }
        let mut list = Vec::new();
        for k in keys {
            let key = k.get_ref();
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(cx.err(
                    k.span().start,
                    format!("config.volatile: {key:?} is not a dotted key path"),
                ));
            }
            list.push(key.clone());
        }
        volatile.push((home.join(rest), list));
    }
    Ok(Profile {
        name: name.to_string(),
        description,
        commands,
        file: override_file.map(Path::to_path_buf),
        layer,
        dirs: state_dirs,
        regenerated,
        volatile,
    })
}

struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
    label: PathBuf,
    lines: crate::location::LineIndex,
}

impl Cx<'_> {
    fn origin(&self, offset: usize) -> Origin {
        Origin {
            tier: Tier::Builtin,
            file: Some(self.label.clone()),
            line: Some(self.lines.line(offset)),
            col: None,
            flag: None,
        }
    }

    fn err(&self, offset: usize, msg: impl Into<String>) -> PolicyError {
        let (line, col) = line_col(self.text, offset);
        PolicyError::at(self.file, line, col, msg)
    }
}

/// Adds the profiles' rules to the built-in layer (what [`resolve`](crate::resolve) does with
/// [`Inputs::profiles`](crate::Inputs::profiles)): they then merge exactly as built-in rules.
pub(crate) fn merge_into(builtin: &mut Layer, profiles: &[Profile]) {
    for p in profiles {
        builtin
            .allow_write
            .extend(p.layer.allow_write.iter().cloned());
        builtin.protect.extend(p.layer.protect.iter().cloned());
        builtin.net_allow.extend(p.layer.net_allow.iter().cloned());
        builtin
            .net_optional
            .extend(p.layer.net_optional.iter().cloned());
        builtin.env_set.extend(p.layer.env_set.iter().cloned());
    }
}

/// The built-in profiles that allow `host` (exact name or a `*.` wildcard), for a denial's
/// fix: `--profile npm` says more than `--allow-domain registry.npmjs.org`. Returns the
/// option text (`--profile NAME`, naming the others when several cover it), or `None`.
pub fn profile_suggestion(host: &str) -> Option<String> {
    match profiles_allowing(host).as_slice() {
        [] => None,
        [one] => Some(format!("--profile {one}")),
        [first, rest @ ..] => Some(format!("--profile {first} (or {})", rest.join(", "))),
    }
}

/// The built-in profiles that allow `host`, the best suggestion first: a tool bundle (`npm`,
/// `github`) before an agent's profile that happens to allow the same host (`--profile
/// copilot` for api.github.com in a codex session misleads).
pub fn profiles_allowing(host: &str) -> Vec<&'static str> {
    use std::sync::OnceLock;
    // (profile, whether it is an agent's, host pattern), from the compiled-in profiles, parsed
    // once.
    static HOSTS: OnceLock<Vec<(&'static str, bool, crate::DomainPattern)>> = OnceLock::new();
    let hosts = HOSTS.get_or_init(|| {
        let mut v = Vec::new();
        for (name, text) in BUILTIN_PROFILES {
            let file = PathBuf::from(format!("profiles/{name}.toml"));
            let Ok(p) = parse_profile(name, &file, text, None, Path::new("/")) else {
                continue;
            };
            let agent = !p.commands.is_empty();
            for r in &p.layer.net_allow {
                v.push((*name, agent, r.value.clone()));
            }
        }
        v.sort_by_key(|(name, agent, _)| (*agent, *name));
        v
    });
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let mut names: Vec<&str> = hosts
        .iter()
        .filter(|(_, _, pat)| pat.matches_name(&host))
        .map(|(n, _, _)| *n)
        .collect();
    names.dedup();
    names
}

/// The profile a command selects by itself, if any: its basename (`/usr/bin/claude` →
/// `claude`), looking through `node SCRIPT` (`.../codex.js` → `codex`) and
/// `npx [-y] PACKAGE[@VERSION]` (`@openai/codex@latest` → `@openai/codex`, then `codex`).
/// Names are matched against each profile's `commands`.
pub fn profile_for_command<'a>(profiles: &'a [Profile], argv: &[String]) -> Option<&'a Profile> {
    let candidates = command_names(argv);
    candidates
        .iter()
        .find_map(|c| profiles.iter().find(|p| p.commands.iter().any(|n| n == c)))
}

/// The names a command line may be known by, most specific first.
fn command_names(argv: &[String]) -> Vec<String> {
    let Some(first) = argv.first() else {
        return Vec::new();
    };
    let base = basename(first);
    let mut out = vec![base.to_string()];
    let rest = &argv[1..];
    match base {
        "node" | "nodejs" | "bun" | "deno" => {
            // The first non-option argument is the script.
            if let Some(script) = rest.iter().find(|a| !a.starts_with('-')) {
                let b = basename(script);
                let stem = [".js", ".mjs", ".cjs", ".ts"]
                    .iter()
                    .find_map(|ext| b.strip_suffix(ext))
                    .unwrap_or(b);
                out.push(stem.to_string());
            }
        }
        "npx" | "pnpx" | "bunx" => {
            if let Some(pkg) = npx_package(rest) {
                out.push(pkg.to_string());
                if let Some((_, short)) = pkg.rsplit_once('/') {
                    out.push(short.to_string());
                }
            }
        }
        _ => {}
    }
    out
}

/// The package `npx` runs: the first non-option argument (or `--package`'s value), without
/// a version suffix.
fn npx_package(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    let mut pkg = None;
    while let Some(a) = it.next() {
        if a == "-p" || a == "--package" {
            pkg = it.next().map(String::as_str);
            break;
        }
        if let Some(v) = a.strip_prefix("--package=") {
            pkg = Some(v);
            break;
        }
        if a == "--" {
            pkg = it.next().map(String::as_str);
            break;
        }
        if !a.starts_with('-') {
            pkg = Some(a.as_str());
            break;
        }
    }
    let pkg = pkg?;
    // `@scope/name@1.2` and `name@1.2`: the version follows the last `@` not at the start.
    Some(match pkg.rfind('@').filter(|&i| i > 0) {
        Some(i) => &pkg[..i],
        None => pkg,
    })
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

mod own;
pub use own::{OwnConfig, OwnMatch};

#[cfg(test)]
mod tests;
