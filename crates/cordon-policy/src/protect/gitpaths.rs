//! Protected paths that git configuration points at: `core.hooksPath`, `include.path` targets,
//! and the real git directory behind a `gitdir:` redirect (worktrees, submodules).

use std::path::{Path, PathBuf};

use super::gitconfig::{git_extra_protect, parse_gitdir_file, GitPathKind};
use super::ProtectRule;
use crate::tier::{Origin, Tier};

/// Files in a git directory that make git run code or change where it looks.
const GITDIR_FILES: &[(&str, bool)] = &[
    ("config", false),
    ("config.worktree", false),
    ("commondir", false),
    ("hooks", true),
    ("info", true),
];

fn expand(value: &str, home: &Path, base: &Path) -> PathBuf {
    if let Some(rest) = value.strip_prefix("~/") {
        home.join(rest)
    } else {
        base.join(value)
    }
}

fn exact(path: &Path, subtree: bool, why: &str) -> Option<ProtectRule> {
    ProtectRule::exact(
        path,
        subtree,
        Some(why.to_string()),
        Origin::bare(Tier::Builtin),
    )
    .ok()
}

/// The git directory of `workspace` (following a `gitdir:` file), if any.
fn git_dir(workspace: &Path) -> Option<PathBuf> {
    let dot = workspace.join(".git");
    let meta = std::fs::symlink_metadata(&dot).ok()?;
    if meta.is_dir() {
        return Some(dot);
    }
    let text = std::fs::read_to_string(&dot).ok()?;
    let target = parse_gitdir_file(&text)?;
    Some(workspace.join(target))
}

/// The exact paths the host's git configuration (`~/.gitconfig`, `~/.config/git/config`,
/// `/etc/gitconfig`, the workspace's git directory) makes git run or read: protected like the
/// built-in list, each rule saying why.
pub fn git_pointed_rules(home: &Path, workspace: &Path) -> Vec<ProtectRule> {
    let mut out = Vec::new();
    let mut configs: Vec<(PathBuf, PathBuf)> = vec![
        (home.join(".gitconfig"), home.to_path_buf()),
        (home.join(".config/git/config"), home.join(".config/git")),
        (PathBuf::from("/etc/gitconfig"), PathBuf::from("/etc")),
    ];
    if let Some(gd) = git_dir(workspace) {
        // A redirected git directory (a worktree's or submodule's) is protected where it is.
        let mut dirs = vec![gd.clone()];
        if let Ok(common) = std::fs::read_to_string(gd.join("commondir")) {
            dirs.push(gd.join(common.trim()));
        }
        for d in &dirs {
            for (name, subtree) in GITDIR_FILES {
                out.extend(exact(
                    &d.join(name),
                    *subtree,
                    "git directory (via gitdir:)",
                ));
            }
            configs.push((d.join("config"), workspace.to_path_buf()));
        }
    }
    for (file, base) in configs {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for r in git_extra_protect(&text) {
            let (subtree, why) = match r.kind {
                GitPathKind::HooksPath => (true, "git core.hooksPath"),
                GitPathKind::Include => (false, "git include.path"),
            };
            let base = match r.kind {
                GitPathKind::HooksPath => base.clone(),
                GitPathKind::Include => file
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| base.clone()),
            };
            out.extend(exact(&expand(&r.value, home, &base), subtree, why));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_path_includes_and_a_redirected_git_dir_are_protected() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        let home = root.join("home");
        let ws = home.join("ws");
        let real = root.join("real.git");
        std::fs::create_dir_all(&ws).expect("mkdir");
        std::fs::create_dir_all(&real).expect("mkdir");
        std::fs::write(
            home.join(".gitconfig"),
            "[core]\n\thooksPath = ~/hooks\n[include]\n\tpath = extra.inc\n",
        )
        .expect("write");
        std::fs::write(ws.join(".git"), format!("gitdir: {}\n", real.display())).expect("write");
        let rules = git_pointed_rules(&home, &ws);
        let has = |p: &Path, why: &str| {
            rules.iter().any(|r| {
                r.pattern.starts_with(&p.display().to_string()) && r.why.as_deref() == Some(why)
            })
        };
        assert!(has(&home.join("hooks"), "git core.hooksPath"), "{rules:?}");
        assert!(
            has(&home.join("extra.inc"), "git include.path"),
            "{rules:?}"
        );
        assert!(
            has(&real.join("config"), "git directory (via gitdir:)"),
            "{rules:?}"
        );
        assert!(
            has(&real.join("hooks"), "git directory (via gitdir:)"),
            "{rules:?}"
        );
    }
}
