//! `[filesystem] ask_read`, `ask_write` and `mode`: paths whose opens are asked about, and
//! the strict file-system mode (only system directories and named paths visible).

use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::file::{Cx, RawFilesystem};
use crate::layer::Layer;
use crate::tier::{Rule, Tier};

/// How much of the host's file system the sandbox sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum FsMode {
    /// The whole host read-only, secrets hidden (the default).
    #[default]
    Normal,
    /// Only system directories, the workspace and named paths; opens elsewhere are asked.
    Strict,
}

impl FsMode {
    /// The spelling used in policy files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FsMode::Normal => "normal",
            FsMode::Strict => "strict",
        }
    }

    /// Parses `normal` or `strict`.
    pub fn parse(s: &str) -> Option<FsMode> {
        match s {
            "normal" => Some(FsMode::Normal),
            "strict" => Some(FsMode::Strict),
            _ => None,
        }
    }
}

/// Places the sandbox can write besides the workspace and `allow_write` paths: its private
/// layer. An `ask_write` elsewhere could only be a way to approve a host write.
const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run"];

/// Places whose contents inside the sandbox are not the host's.
const NOT_HOST: &[&str] = &["/tmp", "/var/tmp", "/dev", "/run", "/proc", "/sys"];

/// Whether `path` lies where the sandbox can write at all (as far as one file can tell).
fn writable_place(
    path: &Path,
    home: &Path,
    allow_write: &[PathBuf],
    project: Option<&Path>,
) -> bool {
    path.starts_with(home)
        || SCRATCH.iter().any(|s| path.starts_with(s))
        || allow_write.iter().any(|w| path.starts_with(w))
        || project.is_some_and(|p| path.starts_with(p))
}

/// Reads `ask_read`, `ask_write` and `mode` of one file into `layer` (after its
/// `allow_write`, which an `ask_write` outside `$HOME` must lie beneath).
pub(crate) fn parse_asks(
    cx: &Cx<'_>,
    fs: &RawFilesystem,
    home: &Path,
    layer: &mut Layer,
) -> Result<(), PolicyError> {
    for entry in fs.ask_read.iter().flatten() {
        let path = cx.path(entry, home)?;
        if path == Path::new("/") {
            return Err(cx.err(entry.span().start, "ask_read `/` would hide everything"));
        }
        // An approved read opens the host's file of that name; in these places the sandbox
        // has its own (private or kernel) files, so the name would mean two things. `$HOME`
        // shows the host's files even when it lies below one of them (a home under /tmp).
        let own = NOT_HOST.iter().find(|p| path.starts_with(p));
        if let Some(p) = own.filter(|_| !path.starts_with(home)) {
            return Err(cx.err(
                entry.span().start,
                format!(
                    "ask_read `{}`: {p} inside the sandbox is its own, not the host's",
                    path.display()
                ),
            ));
        }
        layer
            .ask_read
            .push(Rule::new(path, cx.origin(entry.span().start)));
    }
    let allow_write: Vec<PathBuf> = layer.allow_write.iter().map(|r| r.value.clone()).collect();
    let project = match cx.tier {
        Tier::Project => cx.file_dir(),
        _ => None,
    };
    for entry in fs.ask_write.iter().flatten() {
        let path = cx.path(entry, home)?;
        if !writable_place(&path, home, &allow_write, project) {
            return Err(cx.err(
                entry.span().start,
                format!(
                    "ask_write `{}` is outside every place the sandbox can write ($HOME, /tmp, the workspace, allow_write); approving a write there would be a host write",
                    path.display()
                ),
            ));
        }
        layer
            .ask_write
            .push(Rule::new(path, cx.origin(entry.span().start)));
    }
    if let Some(mode) = &fs.mode {
        let at = mode.span().start;
        let m = FsMode::parse(mode.get_ref()).ok_or_else(|| {
            cx.err(
                at,
                format!(
                    "filesystem.mode: expected \"normal\" or \"strict\", found {:?}",
                    mode.get_ref()
                ),
            )
        })?;
        layer.fs_mode = Some(Rule::new(m, cx.origin(at)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{parse_policy, Tier};
    use std::path::Path;

    fn parse(text: &str) -> Result<crate::Layer, String> {
        parse_policy(Path::new("/p.toml"), text, Tier::User, Path::new("/home/u"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn asks_parse_and_expand() {
        let l = parse("[filesystem]\nask_read = [\"~/other\"]\nask_write = [\"~/src/app/.env\", \"/tmp/x\"]\nmode = \"strict\"\n")
            .expect("parses");
        assert_eq!(l.ask_read[0].value, Path::new("/home/u/other"));
        assert_eq!(l.ask_write.len(), 2);
        assert_eq!(l.fs_mode.map(|m| m.value), Some(super::FsMode::Strict));
    }

    #[test]
    fn ask_write_outside_writable_places_is_an_error() {
        let e = parse("[filesystem]\nask_write = [\"/etc/passwd\"]\n").expect_err("refused");
        assert!(e.contains("/p.toml:2:"), "{e}");
        assert!(e.contains("outside every place"), "{e}");
        // Beneath an allow_write of the same file it is fine.
        parse("[filesystem]\nallow_write = [\"/srv/app\"]\nask_write = [\"/srv/app/.env\"]\n")
            .expect("under allow_write");
        let e = parse("[filesystem]\nmode = \"lax\"\n").expect_err("bad mode");
        assert!(e.contains("filesystem.mode"), "{e}");
        assert!(parse("[filesystem]\nask_read = [\"/\"]\n").is_err());
        let e = parse("[filesystem]\nask_read = [\"/tmp/x\"]\n").expect_err("private place");
        assert!(e.contains("its own"), "{e}");
    }
}

/// The strict mode's lists (`data/strict.toml`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrictData {
    /// Directories whose entries are hidden.
    pub hide: Vec<PathBuf>,
    /// Paths beneath them that stay visible.
    pub keep: Vec<PathBuf>,
    /// Paths relative to `$HOME` that stay visible.
    pub home_keep: Vec<PathBuf>,
}

/// The built-in strict-mode lists.
pub fn strict_data() -> Result<StrictData, PolicyError> {
    toml::from_str(include_str!("../data/strict.toml"))
        .map_err(|e| PolicyError::plain(format!("data/strict.toml: {e}")))
}

#[cfg(test)]
mod strict_tests {
    #[test]
    fn strict_data_parses() {
        let d = super::strict_data().expect("parses");
        assert!(d.hide.iter().any(|p| p == std::path::Path::new("/home")));
        assert!(d
            .keep
            .iter()
            .all(|k| d.hide.iter().any(|h| k.starts_with(h))));
        assert!(d.home_keep.iter().all(|p| p.is_relative()));
    }
}
