//! Which paths are asked about (`[filesystem] ask_read`, `ask_write`), as the path guard
//! decides them, and what the mount view hides for them.
//!
//! Reads: an `ask_read` path is hidden exactly like a `deny_read` one (a stand-in), which is
//! the boundary; the guard asks when something opens it and, if allowed, hands in the real
//! file. A `deny_read` covering the path wins (it is never asked about), and an `allow_read`
//! at or beneath an `ask_read` path re-opens it. Writes: a change to an `ask_write` path is
//! asked about after every protection and writable-root check (those are final).

use cordon_linux::pathguard::{Op, Verdict};
use cordon_policy::{Effective, FsMode, ProtectKind, Rule, StrictData};
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
    if let Some(c) = crate::plan::leads_to(p) {
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
        let mut read = roots(&eff.ask_read, "ask_read");
        if eff.fs_mode.value == FsMode::Strict {
            let rule = format!("fs strict ({})", eff.fs_mode.origin);
            let data = cordon_policy::strict_data().map_err(|e| e.to_string())?;
            for path in strict_hidden(eff, workspace, &data)? {
                read.push(AskRoot {
                    path,
                    rule: rule.clone(),
                });
            }
        }
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
            // A symlink is hidden where it leads (its canonical spelling is listed too):
            // a stand-in mounted "on" it would land on its target.
            .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_symlink()))
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

/// Most entries looked at for strict mode; beyond it the run is refused (it could not hide
/// everything it should).
const STRICT_BUDGET: usize = 20_000;

/// Strict mode: the entries of the hidden directories that lead to nothing visible.
fn strict_hidden(
    eff: &Effective,
    workspace: &Path,
    data: &StrictData,
) -> Result<Vec<PathBuf>, String> {
    let home = &eff.home;
    let mut visible: Vec<PathBuf> = vec![workspace.to_path_buf()];
    visible.extend(eff.allow_write.iter().map(|r| r.value.clone()));
    visible.extend(eff.allow_read.iter().map(|r| r.value.clone()));
    visible.extend(data.keep.iter().cloned());
    visible.extend(data.home_keep.iter().map(|p| home.join(p)));
    // Agents' and tools' configuration files named by the active profiles and policy.
    for r in &eff.protect {
        let body = r.pattern.strip_suffix("/**").unwrap_or(&r.pattern);
        let plain = r.literal || !body.contains(['*', '?', '[']);
        if r.kind == ProtectKind::Home && plain {
            visible.push(home.join(body));
        }
    }
    let visible: Vec<PathBuf> = visible.iter().flat_map(|p| spellings(p)).collect();
    let mut out = Vec::new();
    let mut budget = STRICT_BUDGET;
    // `$HOME` is hidden wherever it lives (below /tmp, say, which the list leaves alone
    // because the sandbox's /tmp is its own).
    let mut hide = data.hide.clone();
    if !hide.iter().any(|h| home.starts_with(h)) {
        hide.push(home.clone());
    }
    for dir in &hide {
        if visible.iter().any(|v| dir.starts_with(v)) {
            continue;
        }
        hide_beneath(dir, &visible, &mut out, &mut budget)?;
    }
    Ok(out)
}

fn hide_beneath(
    dir: &Path,
    visible: &[PathBuf],
    out: &mut Vec<PathBuf>,
    budget: &mut usize,
) -> Result<(), String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        *budget = budget.checked_sub(1).ok_or_else(|| {
            format!(
                "--fs strict: more than {STRICT_BUDGET} entries to hide under {}",
                dir.display()
            )
        })?;
        let p = e.path();
        if visible.iter().any(|v| p.starts_with(v)) {
            continue;
        }
        let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
        if visible.iter().any(|v| v.starts_with(&p)) {
            if !is_link && e.file_type().is_ok_and(|t| t.is_dir()) {
                hide_beneath(&p, visible, out, budget)?;
            }
            continue;
        }
        if !is_link {
            out.push(p);
        }
    }
    Ok(())
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
    fn strict_hides_everything_but_the_way_to_visible_paths() {
        let d = tempfile::tempdir().expect("tempdir");
        let h = d.path().join("home");
        for p in [
            "u/ws/src",
            "u/.ssh",
            "u/other",
            "u/.cargo/bin",
            "u/.cargo/registry",
            "v",
        ] {
            std::fs::create_dir_all(h.join(p)).expect("mkdir");
        }
        std::fs::write(h.join("u/.bashrc"), "x").expect("write");
        std::os::unix::fs::symlink("/usr", h.join("u/link")).expect("symlink");
        let visible = vec![h.join("u/ws"), h.join("u/.cargo/bin")];
        let mut out = Vec::new();
        let mut budget = 100;
        hide_beneath(&h, &visible, &mut out, &mut budget).expect("walks");
        out.sort();
        let want: Vec<PathBuf> = ["u/.bashrc", "u/.cargo/registry", "u/.ssh", "u/other", "v"]
            .iter()
            .map(|p| h.join(p))
            .collect();
        assert_eq!(out, want);
        let mut tiny = 2;
        assert!(hide_beneath(&h, &visible, &mut Vec::new(), &mut tiny).is_err());
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
