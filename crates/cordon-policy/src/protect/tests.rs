use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::tier::Tier;

const HOME: &str = "/home/u";
const WS: &str = "/home/u/src/app";

fn set() -> &'static ProtectSet {
    static SET: OnceLock<ProtectSet> = OnceLock::new();
    SET.get_or_init(|| ProtectSet::new(Path::new(HOME), &[]).unwrap())
}

fn matched(s: &ProtectSet, p: &str) -> bool {
    s.matches(Path::new(p)).is_some()
}

#[test]
fn builtin_data_loads_with_origins() {
    let rules = builtin_protect_rules().unwrap();
    assert!(rules.len() > 150, "{}", rules.len());
    for r in &rules {
        assert_eq!(r.origin.tier, Tier::Builtin);
        assert!(r.origin.line.is_some());
        assert!(r.why.is_some());
    }
}

#[test]
fn protected_in_the_workspace() {
    let s = set();
    for p in [
        ".git",
        ".git/config",
        ".git/hooks",
        ".git/hooks/pre-commit",
        ".git/info/attributes",
        ".git/config.worktree",
        ".git/modules/sub/config",
        ".git/modules/a/b/hooks/post-checkout",
        ".git/worktrees/w1/commondir",
        ".git/worktrees/w1/gitdir",
        ".gitmodules",
        "vendor/lib/.git/config",
        ".envrc",
        ".npmrc",
        ".yarnrc.yml",
        ".pre-commit-config.yaml",
        "lefthook.yml",
        ".husky",
        ".husky/pre-commit",
        ".devcontainer/devcontainer.json",
        "x.code-workspace",
        ".vscode",
        ".vscode/tasks.json",
        ".idea/workspace.xml",
        ".cursor/rules/a.mdc",
        ".cursorrules",
        ".windsurf/rules/x.md",
        "CLAUDE.md",
        "CLAUDE.local.md",
        ".claude",
        ".claude/settings.json",
        ".claude/settings.local.json",
        ".claude/hooks/h.sh",
        ".claude/skills/s/SKILL.md",
        ".claude/agents/a.md",
        ".claude/commands/c.md",
        ".mcp.json",
        "AGENTS.md",
        "AGENTS.override.md",
        "GEMINI.md",
        ".gemini/settings.json",
        ".codex/config.toml",
        ".github/copilot-instructions.md",
        ".github/instructions/x.instructions.md",
        ".github/hooks/h.json",
        ".aider.conf.yml",
        ".continue/config.yaml",
        ".clinerules",
        ".clinerules/a.md",
        "opencode.json",
        ".opencode/agent/x.md",
        ".cargo/config",
        ".cargo/config.toml",
        "pip.conf",
        ".cordon.toml",
        // ASCII case variants (case-insensitive mounts)
        ".GIT/CONFIG",
        ".Git/Hooks/pre-commit",
        "claude.md",
        ".VSCode/settings.json",
    ] {
        assert!(matched(s, &format!("{WS}/{p}")), "{p} not protected");
    }
}

#[test]
fn ordinary_files_and_agent_state_stay_writable() {
    let s = set();
    for p in [
        format!("{WS}/src/main.rs"),
        format!("{WS}/.git/objects/ab/cdef"),
        format!("{WS}/.git/index"),
        format!("{WS}/.git/HEAD"),
        format!("{WS}/.git/refs/heads/main"),
        format!("{WS}/.git/logs/HEAD"),
        format!("{WS}/.git/COMMIT_EDITMSG"),
        format!("{WS}/.git/refs/stash"),
        format!("{WS}/.gitignore"),
        format!("{WS}/.github/workflows/ci.yml"),
        format!("{WS}/Makefile"),
        format!("{WS}/.bashrc"), // home-anchored only
        format!("{HOME}/.claude/projects/p/session.jsonl"),
        format!("{HOME}/.claude/todos/t.json"),
        format!("{HOME}/.claude/shell-snapshots/s.sh"),
        format!("{HOME}/.claude/.credentials.json"),
        format!("{HOME}/.claude.json"),
        format!("{HOME}/.codex/sessions/2025/x.jsonl"),
        format!("{HOME}/.codex/auth.json"),
        format!("{HOME}/.codex/history.jsonl"),
        format!("{HOME}/.gemini/tmp/x/chats.json"),
        format!("{HOME}/.gemini/oauth_creds.json"),
        format!("{HOME}/.continue/sessions/s.json"),
        format!("{HOME}/.local/share/opencode/log"),
        format!("{HOME}/.cache/pip/x"),
        format!("{HOME}/.npm/_cacache/x"),
        format!("{HOME}/.local/lib/python3.11/site-packages/pkg/__init__.py"),
        "/tmp/x".to_string(),
    ] {
        assert!(
            !matched(s, &p),
            "{p} protected: {:?}",
            s.matches(Path::new(&p))
        );
    }
}

#[test]
fn protected_in_home() {
    let s = set();
    for p in [
        ".bashrc",
        ".profile",
        ".zshrc",
        ".config/fish/config.fish",
        ".gitconfig",
        ".config/git/config",
        ".ssh/authorized_keys",
        ".ssh/config",
        ".local/bin/python",
        ".config/systemd/user/x.service",
        ".config/autostart/x.desktop",
        ".local/lib/python3.12/site-packages/evil.pth",
        ".local/lib/python3.12/site-packages/sitecustomize.py",
        ".config/cordon/policy.toml",
        ".local/state/cordon/trust",
        ".claude/settings.json",
        ".claude/CLAUDE.md",
        ".claude/hooks/x",
        ".codex/config.toml",
        ".codex/AGENTS.md",
        ".codex/rules/default.rules",
        ".codex/prompts/p.md",
        ".gemini/settings.json",
        ".gemini/GEMINI.md",
        ".gemini/extensions/e/gemini-extension.json",
        ".config/Code/User/settings.json",
        ".vscode/extensions/x/package.json",
        ".config/opencode/opencode.json",
        ".curlrc",
        ".tmux.conf",
        ".config/nvim/init.lua",
        ".pam_environment",
    ] {
        assert!(matched(s, &format!("{HOME}/{p}")), "~/{p} not protected");
    }
}

#[test]
fn matches_reports_the_rule() {
    let s = set();
    let r = s
        .matches(Path::new("/home/u/src/app/.git/hooks/pre-push"))
        .unwrap();
    assert_eq!(r.pattern, ".git/hooks/**");
    assert_eq!(r.kind, ProtectKind::Anywhere);
    assert_eq!(r.why.as_deref(), Some("git"));
    assert!(r
        .origin
        .to_string()
        .starts_with("builtin data/protected.toml:"));
}

#[test]
fn policy_rules_are_added() {
    let origin = Origin::bare(Tier::User);
    let extra = vec![
        ProtectRule::from_policy("~/.myrc", origin.clone()).unwrap(),
        ProtectRule::from_policy("**/.idea2/**", origin.clone()).unwrap(),
        ProtectRule::from_policy("Makefile.local", origin.clone()).unwrap(),
        ProtectRule::from_policy("/opt/tool/**", origin.clone()).unwrap(),
    ];
    let s = &ProtectSet::new(Path::new(HOME), &extra).unwrap();
    assert!(matched(s, "/home/u/.myrc"));
    assert!(!matched(s, "/home/u/src/.myrc"));
    assert!(matched(s, "/home/u/src/app/a/.idea2/x"));
    assert!(matched(s, "/home/u/src/app/sub/makefile.LOCAL"));
    assert!(matched(s, "/opt/tool"));
    assert!(matched(s, "/opt/tool/bin/x"));
    assert!(!matched(s, "/opt/toolx"));
    assert!(s.is_ancestor(Path::new("/opt")));
    assert!(ProtectRule::from_policy("~", origin.clone()).is_err());
    assert!(ProtectRule::from_policy("~bob/x", origin.clone()).is_err());
    assert_eq!(
        ProtectRule::from_policy("a//./b/", origin).unwrap().pattern,
        "a/b"
    );
}

#[test]
fn exact_paths_take_glob_characters_literally() {
    let origin = Origin::bare(Tier::Cli);
    let hooks = ProtectRule::exact(
        Path::new("/home/u/hooks[1]*"),
        true,
        Some("core.hooksPath".into()),
        origin.clone(),
    )
    .unwrap();
    let inc =
        ProtectRule::exact(Path::new("/home/u/inc.cfg"), false, None, origin.clone()).unwrap();
    let s = ProtectSet::from_rules(Path::new(HOME), vec![hooks, inc]).unwrap();
    assert!(matched(&s, "/home/u/hooks[1]*"));
    assert!(matched(&s, "/home/u/hooks[1]*/pre-commit"));
    assert!(!matched(&s, "/home/u/hooks[1]x/pre-commit"));
    assert!(matched(&s, "/home/u/INC.cfg"));
    assert!(!matched(&s, "/home/u/inc.cfg/x"));
    assert!(s.is_ancestor(Path::new("/home")));
    assert!(ProtectRule::exact(Path::new("rel"), false, None, origin.clone()).is_err());
    assert!(ProtectRule::exact(Path::new("/"), true, None, origin.clone()).is_err());
    assert!(ProtectRule::exact(Path::new("/a/../b"), true, None, origin).is_err());
}

#[test]
fn ancestors() {
    let s = set();
    for p in [
        "/",
        "/home",
        HOME,
        "/home/u/.config",
        "/home/u/.local/lib/python3.11",
        "/home/u/src/app/.git",
        "/home/u/src/app/x/.git/modules/a/b",
        "/home/u/src/app/.github",
        "/home/u/src/app/.git/hooks",
        "/home/u/src/app/.claude",
        "/home/u/.codex",
    ] {
        assert!(s.is_ancestor(Path::new(p)), "{p} not an ancestor");
    }
    for p in [
        "/home/u/src/app/src",
        "/home/u/src/app/.git/objects/pack",
        "/home/u/src/app/.git/refs",
        "/home/u/src/app/.github/workflows",
        "/tmp/x",
        "/home/u/.cache",
        "/home/u/.claude/projects",
        "/home/u/src/app/.git/config",
    ] {
        assert!(!s.is_ancestor(Path::new(p)), "{p} is an ancestor");
    }
}

#[test]
fn matching_is_fast() {
    let s = set();
    let paths: Vec<PathBuf> = (0..200)
        .map(|i| {
            PathBuf::from(format!(
                "/home/u/src/app/target/debug/deps/lib{i}/x/y/z/file{i}.rs"
            ))
        })
        .collect();
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..50 {
        for p in &paths {
            hits += usize::from(s.matches(p).is_some());
        }
    }
    let per = start.elapsed() / (50 * 200);
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "ProtectSet::matches: {per:?} per 10-component path ({} rules, {build} build)",
        s.rules().len()
    );
    assert_eq!(hits, 0);
    // Generous: a debug build on a slow CI core; release is far below this.
    assert!(per.as_micros() < 500, "{per:?}");
}

const ANYWHERE_SAMPLES: &[&str] = &[
    ".git/hooks/pre-commit",
    ".git/modules/a/b/config",
    ".git/worktrees/w/gitdir",
    ".claude/skills/x/SKILL.md",
    ".vscode/tasks.json",
    ".husky/_/h",
    ".cursor/rules/r.mdc",
    ".github/instructions/a/b.md",
    "CLAUDE.md",
];
const HOME_SAMPLES: &[&str] = &[
    ".config/git/config",
    ".local/lib/python3.12/site-packages/evil.pth",
    ".ssh/authorized_keys",
    ".config/systemd/user/a.service",
    ".local/bin/python",
    ".bashrc",
];

fn flip_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    /// Every anywhere sample is matched under any directory, in any ASCII case, and every
    /// ancestor inside the matched components is an ancestor.
    #[test]
    fn anywhere_match_and_ancestors(
        middle in prop::collection::vec("[a-z]{1,6}", 0..4),
        idx in 0..ANYWHERE_SAMPLES.len(),
        mask in any::<u64>(),
    ) {
        let s = set();
        let base = PathBuf::from(WS).join(middle.join("/"));
        let suffix = flip_case(ANYWHERE_SAMPLES[idx], mask);
        let full = base.join(&suffix);
        prop_assert!(s.matches(&full).is_some(), "{full:?}");
        let comps: Vec<&str> = suffix.split('/').collect();
        for k in 1..comps.len() {
            let anc = base.join(comps[..k].join("/"));
            prop_assert!(s.is_ancestor(&anc), "{anc:?}");
        }
    }

    /// Home-anchored samples: matched, and every ancestor up to `/` is an ancestor.
    #[test]
    fn home_match_and_all_ancestors(idx in 0..HOME_SAMPLES.len(), mask in any::<u64>()) {
        let s = set();
        let full = PathBuf::from(HOME).join(flip_case(HOME_SAMPLES[idx], mask));
        prop_assert!(s.matches(&full).is_some(), "{full:?}");
        for anc in full.ancestors().skip(1) {
            prop_assert!(s.is_ancestor(anc), "{anc:?}");
        }
    }

    /// Arbitrary paths and patterns never panic.
    #[test]
    fn matcher_never_panics(path in "(/[a-zA-Z.*?]{0,4}){0,8}", pat in "[a-z.*?/]{0,12}") {
        let s = set();
        let _ = s.matches(Path::new(&path));
        let _ = s.is_ancestor(Path::new(&path));
        if let Ok(rule) = ProtectRule::from_policy(&pat, Origin::bare(Tier::User)) {
            let s = ProtectSet::from_rules(Path::new(HOME), vec![rule]).unwrap();
            let _ = s.matches(Path::new(&path));
            let _ = s.is_ancestor(Path::new(&path));
        }
    }
}

/// The rules that hold inside dependency trees, as the guard builds them.
fn dependency_set() -> ProtectSet {
    let rules = set()
        .rules()
        .iter()
        .filter(|r| r.applies_in_dependency_trees())
        .cloned()
        .collect();
    ProtectSet::from_rules(Path::new(HOME), rules).unwrap()
}

#[test]
fn dependency_trees_keep_what_runs_on_entering_and_lift_what_packages_ship() {
    let deps = dependency_set();
    let nm = format!("{WS}/node_modules/pkg");
    for kept in [
        ".git",
        ".git/config",
        ".git/hooks/pre-commit",
        ".gitmodules",
        ".envrc",
        "mise.toml",
        ".cordon.toml",
        ".vscode/tasks.json",
        ".vscode/launch.json",
        "a.code-workspace",
        ".idea/runConfigurations/r.xml",
    ] {
        assert!(
            matched(&deps, &format!("{nm}/{kept}")),
            "{kept} must hold in node_modules"
        );
    }
    for lifted in [
        "CLAUDE.md",
        "AGENTS.md",
        ".vscode/settings.json",
        ".vscode/extensions.json",
        ".cargo/config.toml",
        ".github/copilot-instructions.md",
        ".husky/pre-commit",
        ".idea/misc.xml",
    ] {
        assert!(
            !matched(&deps, &format!("{nm}/{lifted}")),
            "{lifted} is shipped by packages"
        );
        assert!(
            matched(set(), &format!("{WS}/{lifted}")),
            "{lifted} is protected in the project"
        );
    }
    // Anchored rules always hold; rules a person adds hold everywhere.
    assert!(matched(&deps, &format!("{HOME}/.bashrc")));
    let mine = ProtectRule::from_policy("notes.md", Origin::bare(Tier::User)).unwrap();
    assert!(mine.applies_in_dependency_trees());
}

#[test]
fn every_group_with_anywhere_rules_says_whether_it_holds_in_dependency_trees() {
    let text = "[[group]]\nname = \"x\"\nanywhere = [\"a\"]\n";
    let e = data::parse_protect_data(Path::new("p.toml"), text).unwrap_err();
    assert!(e.to_string().contains("in_dependency_trees"), "{e}");
    let ok = "[[group]]\nname = \"x\"\nin_dependency_trees = false\ndependency_trees_why = \"w\"\nanywhere = [\"a\"]\n";
    let rules = data::parse_protect_data(Path::new("p.toml"), ok).unwrap();
    assert!(!rules[0].applies_in_dependency_trees());
}

#[test]
fn existing_protected_files_are_found_parents_first() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let ws = home.join("ws");
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    std::fs::write(home.join(".bashrc"), "").unwrap();
    std::fs::write(ws.join(".git/config"), "").unwrap();
    std::fs::write(ws.join(".envrc"), "").unwrap();
    std::fs::write(ws.join("notes.md"), "").unwrap();
    // A directory reached through a symlink is looked into, as the kernel's lookup would.
    std::fs::create_dir_all(ws.join("real-claude")).unwrap();
    std::fs::write(ws.join("real-claude/settings.json"), "{}").unwrap();
    std::os::unix::fs::symlink("real-claude", ws.join(".claude")).unwrap();
    let set = ProtectSet::new(&home, &[]).unwrap();
    let found = set.existing(&home, std::slice::from_ref(&ws));
    for want in [
        home.join(".bashrc"),
        ws.join(".git/config"),
        ws.join(".envrc"),
        ws.join(".git/hooks"),
        ws.join(".claude/settings.json"),
    ] {
        assert!(found.contains(&want), "{} not in {found:?}", want.display());
    }
    assert!(!found.contains(&ws.join("notes.md")));
    let depth: Vec<usize> = found.iter().map(|p| p.components().count()).collect();
    assert!(depth.windows(2).all(|w| w[0] <= w[1]), "{found:?}");
}
