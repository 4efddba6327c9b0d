//! Which paths are asked about (`[filesystem] ask_read`, `ask_write`), as the path guard
//! decides them, and what the mount view hides for them.
//!
//! Reads: an `ask_read` path is hidden exactly like a `deny_read` one (a stand-in), which is
//! the boundary; the guard asks when something opens it and, if allowed, hands in the real
//! file. A `deny_read` covering the path wins (it is never asked about), and an `allow_read`
//! at or beneath an `ask_read` path re-opens it. Writes: a change to an `ask_write` path is
//! asked about after every protection and writable-root check (those are final).

use cordon_linux::pathguard::{Op, Verdict};
use cordon_policy::{Effective, Rule};
use std::path::{Path, PathBuf};

/// One asked-about path and the rule that names it.
#[derive(Clone, Debug)]
struct AskRoot {
    path: PathBuf,
    rule: String,
}

/// The asked-about paths of a run.
#[derive(Clone, Debug, Default)]
pub struct AskPaths {
    read: Vec<AskRoot>,
    write: Vec<AskRoot>,
    /// deny_read paths in force: never asked about.
    hidden: Vec<PathBuf>,
    /// Paths re-opened beneath a hidden or asked-about one.
    reopened: Vec<PathBuf>,
}

/// The path and, if it differs, where it leads on the host now.
fn spellings(p: &Path) -> Vec<PathBuf> {
    let mut v = vec![p.to_path_buf()];
    if let Ok(c) = p.canonicalize() {
        if c != p {
            v.push(c);
        }
    }
    v
}

fn roots(rules: &[Rule<PathBuf>], key: &str) -> Vec<AskRoot> {
    let mut out: Vec<AskRoot> = Vec::new();
    for r in rules {
        for path in spellings(&r.value) {
            if !out.iter().any(|o| o.path == path) {
                out.push(AskRoot {
                    path,
                    rule: format!("{key} {} ({})", r.value.display(), r.origin),
                });
            }
        }
    }
    out
}

/// Depth of the deepest of `paths` at or above `path`.
fn deepest<'a>(paths: impl Iterator<Item = &'a Path>, path: &Path) -> Option<usize> {
    paths
        .filter(|p| path.starts_with(p))
        .map(|p| p.components().count())
        .max()
}

impl AskPaths {
    /// From the effective policy; the workspace must not lie inside an `ask_read` path.
    pub fn from_policy(eff: &Effective, workspace: &Path) -> Result<AskPaths, String> {
        let read = roots(&eff.ask_read, "ask_read");
        let write = roots(&eff.ask_write, "ask_write");
        if let Some(r) = read.iter().find(|r| workspace.starts_with(&r.path)) {
            return Err(format!(
                "the workspace {} is inside {}; choose another directory",
                workspace.display(),
                r.rule
            ));
        }
        let hidden = eff
            .deny_read_effective()
            .iter()
            .flat_map(|p| spellings(p))
            .collect();
        let mut reopened: Vec<PathBuf> = eff
            .allow_read_reopen()
            .iter()
            .flat_map(|p| spellings(p))
            .collect();
        for a in &eff.allow_read {
            if read.iter().any(|r| a.value.starts_with(&r.path)) {
                reopened.extend(spellings(&a.value));
            }
        }
        Ok(AskPaths {
            read,
            write,
            hidden,
            reopened,
        })
    }

    /// Whether read-only opens must go to the guard.
    pub fn reads(&self) -> bool {
        !self.read.is_empty()
    }

    /// Whether anything is asked about (the run needs a broker).
    pub fn any(&self) -> bool {
        !self.read.is_empty() || !self.write.is_empty()
    }

    /// Existing `ask_read` paths, to be hidden by stand-ins (unless re-opened exactly).
    pub fn hide(&self) -> Vec<PathBuf> {
        self.read
            .iter()
            .map(|r| r.path.clone())
            .filter(|p| !self.reopened.contains(p))
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .collect()
    }

    /// `allow_read` paths beneath `ask_read` ones, to be bound back over the stand-ins.
    pub fn reopen(&self) -> Vec<PathBuf> {
        self.reopened
            .iter()
            .filter(|p| {
                self.read
                    .iter()
                    .any(|r| p.starts_with(&r.path) && **p != r.path)
            })
            .filter(|p| p.exists())
            .cloned()
            .collect()
    }

    /// The guard's verdict on a read-only open of `path`.
    pub fn read(&self, path: &Path) -> Verdict {
        let Some(ask) = self
            .read
            .iter()
            .filter(|r| path.starts_with(&r.path))
            .max_by_key(|r| r.path.components().count())
        else {
            return Verdict::Allow;
        };
        let denied = deepest(self.hidden.iter().map(PathBuf::as_path), path);
        let opened = deepest(self.reopened.iter().map(PathBuf::as_path), path);
        // A deny is final (the view shows its stand-in); a re-open beneath the ask wins.
        if denied.is_some() && denied > opened {
            return Verdict::Allow;
        }
        if opened.is_some_and(|o| o >= ask.path.components().count()) {
            return Verdict::Allow;
        }
        Verdict::Ask {
            rule: ask.rule.clone(),
            root: ask.path.clone(),
        }
    }

    /// The guard's verdict on a change to `path` that every other rule allowed.
    pub fn write(&self, op: Op, path: &Path) -> Verdict {
        let _ = op;
        match self.write.iter().find(|r| path.starts_with(&r.path)) {
            Some(r) => Verdict::Ask {
                rule: r.rule.clone(),
                root: r.path.clone(),
            },
            None => Verdict::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> AskPaths {
        let root = |p: &str, rule: &str| AskRoot {
            path: p.into(),
            rule: rule.into(),
        };
        AskPaths {
            read: vec![root("/h/other", "ask_read ~/other")],
            write: vec![root("/ws/.env", "ask_write .env")],
            hidden: vec!["/h/other/keys".into()],
            reopened: vec!["/h/other/pub".into()],
        }
    }

    #[test]
    fn reads_ask_beneath_the_root_unless_denied_or_reopened() {
        let a = paths();
        assert!(matches!(
            a.read(Path::new("/h/other/x")),
            Verdict::Ask { .. }
        ));
        assert!(matches!(a.read(Path::new("/h/other")), Verdict::Ask { .. }));
        assert_eq!(a.read(Path::new("/h/otherx")), Verdict::Allow);
        assert_eq!(a.read(Path::new("/h/other/keys/id")), Verdict::Allow);
        assert_eq!(a.read(Path::new("/h/other/pub/k")), Verdict::Allow);
        assert_eq!(a.read(Path::new("/usr/bin/ls")), Verdict::Allow);
        assert!(matches!(
            a.write(Op::Write, Path::new("/ws/.env")),
            Verdict::Ask { .. }
        ));
        assert_eq!(a.write(Op::Create, Path::new("/ws/x")), Verdict::Allow);
    }
}
