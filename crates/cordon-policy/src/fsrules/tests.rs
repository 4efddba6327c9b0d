use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::{resolve, Inputs, OwnConfig};

const HOME: &str = "/home/u";
const WS: &str = "/home/u/src/app";

fn rules_with(policy: &str, home: &str, shared: &[&str]) -> FileRules {
    let ws = shared.first().copied().unwrap_or(WS);
    let mut inputs = Inputs::new(home, ws);
    inputs
        .user
        .push(("/home/u/.config/cordon/policy.toml".into(), policy.into()));
    let eff = resolve(&inputs).expect("resolves");
    let asks = AskPaths::from_policy(&eff, Path::new(ws)).expect("asks");
    let set = ProtectSet::new(Path::new(home), &eff.protect).expect("set");
    FileRules::new(
        set,
        home.into(),
        shared.iter().map(PathBuf::from).collect(),
        asks,
        None,
    )
}

fn rules() -> FileRules {
    rules_with("", HOME, &[WS])
}

fn refused(r: &FileRules, op: FileOp, path: &str) -> Option<String> {
    match r.decide(op, Path::new(path)) {
        FileDecision::Deny(why) => Some(why.to_string()),
        _ => None,
    }
}

#[test]
fn scratch_is_exempt_but_not_home_or_shared_paths_below_it() {
    let r = rules();
    assert_eq!(
        r.decide(FileOp::Create, Path::new("/tmp/x/.git/hooks/pre-commit")),
        FileDecision::Allow
    );
    assert_eq!(r.place(Path::new("/dev/shm/a")), Place::Scratch);
    assert_eq!(r.place(Path::new("/run/a")), Place::Elsewhere);
    // A home below /tmp keeps its protections, and so does a workspace shared from there.
    let r = rules_with("", "/tmp/h", &["/tmp/ws"]);
    assert!(refused(&r, FileOp::Create, "/tmp/h/.bashrc").is_some());
    assert!(refused(&r, FileOp::Create, "/tmp/ws/.git/hooks/pre-commit").is_some());
    assert_eq!(r.place(Path::new("/tmp/h/x")), Place::HomeLayer);
    assert_eq!(r.place(Path::new("/tmp/ws/x")), Place::HostShared);
    assert_eq!(
        r.decide(FileOp::Create, Path::new("/tmp/other/.bashrc")),
        FileDecision::Allow
    );
}

#[test]
fn dependency_trees_lift_only_unmarked_anywhere_rules() {
    let r = rules();
    let nm = format!("{WS}/node_modules/pkg");
    assert!(refused(&r, FileOp::Create, &format!("{WS}/CLAUDE.md")).is_some());
    for lifted in ["CLAUDE.md", ".vscode/settings.json"] {
        let p = format!("{nm}/{lifted}");
        assert_eq!(
            r.decide(FileOp::Create, Path::new(&p)),
            FileDecision::Allow,
            "{p}"
        );
    }
    for kept in [".git/hooks/pre-commit", ".git/config", ".envrc"] {
        let p = format!("{nm}/{kept}");
        assert!(refused(&r, FileOp::Create, &p).is_some(), "{p}");
    }
    // Exact names only: a look-alike lifts nothing.
    let p = format!("{WS}/node_modules2/CLAUDE.md");
    assert!(refused(&r, FileOp::Create, &p).is_some());
    // Package caches under $HOME, and only there.
    assert_eq!(
        r.decide(FileOp::Create, Path::new("/home/u/.cache/pkg/CLAUDE.md")),
        FileDecision::Allow
    );
    assert!(refused(&r, FileOp::Create, "/home/u/.cachex/CLAUDE.md").is_some());
    // Anchored rules apply in trees too.
    assert!(refused(&r, FileOp::Create, "/home/u/.bashrc").is_some());
    assert!(refused(&r, FileOp::Create, "/home/u/.cache/.bashrc").is_none());
}

#[test]
fn scrub_and_guard_share_one_answer() {
    let set = ProtectSet::new(Path::new(HOME), &[]).expect("set");
    let nm = format!("{WS}/node_modules/pkg");
    assert!(set
        .protecting(Path::new(&format!("{nm}/CLAUDE.md")))
        .is_none());
    assert!(set.matches(Path::new(&format!("{nm}/CLAUDE.md"))).is_some());
    assert!(set
        .protecting(Path::new(&format!("{nm}/.git/config")))
        .is_some());
    assert!(set.leads_to_protected(Path::new(&format!("{nm}/.git"))));
    assert!(!set.leads_to_protected(Path::new(&format!("{nm}/.cargo"))));
    assert!(set.is_ancestor(Path::new(&format!("{WS}/.cargo"))));
}

#[test]
fn a_head_outside_git_is_refused_where_it_places_a_name() {
    let r = rules();
    let want = "protect: a HEAD file outside .git makes a bare-repository-shaped directory";
    for op in [
        FileOp::Create,
        FileOp::Mkdir,
        FileOp::Symlink,
        FileOp::RenameTo,
    ] {
        assert_eq!(
            refused(&r, op, &format!("{WS}/x/HEAD")).as_deref(),
            Some(want)
        );
        assert_eq!(
            refused(&r, op, &format!("{WS}/x/head")).as_deref(),
            Some(want)
        );
    }
    // Removing one, and git's own HEADs, are fine.
    assert_eq!(
        r.decide(FileOp::Unlink, Path::new(&format!("{WS}/x/HEAD"))),
        FileDecision::Allow
    );
    for ok in [
        ".git/HEAD",
        ".git/logs/HEAD",
        ".GIT/modules/m/HEAD",
        "x/HEADS",
    ] {
        let p = format!("{WS}/{ok}");
        assert_eq!(
            r.decide(FileOp::Create, Path::new(&p)),
            FileDecision::Allow,
            "{p}"
        );
    }
    // In scratch it is the sandbox's own.
    assert_eq!(
        r.decide(FileOp::Create, Path::new("/tmp/r/HEAD")),
        FileDecision::Allow
    );
    assert!(makes_bare_repository(FileOp::Create, Path::new("/a/HEAD")));
}

#[test]
fn moving_a_directory_that_leads_to_protected_paths_is_refused() {
    let r = rules();
    let want = "protect: this directory leads to protected paths";
    assert_eq!(
        refused(&r, FileOp::RenameFrom, "/home/u/.config").as_deref(),
        Some(want)
    );
    assert_eq!(refused(&r, FileOp::Mkdir, "/home/u/.config"), None);
    assert_eq!(
        r.decide(FileOp::RenameFrom, Path::new(&format!("{WS}/src"))),
        FileDecision::Allow
    );
}

#[test]
fn refusals_name_the_rule_and_its_origin() {
    let r = rules_with("[filesystem]\nprotect = [\"notes.md\"]\n", HOME, &[WS]);
    let why = refused(&r, FileOp::Write, &format!("{WS}/notes.md")).expect("refused");
    assert_eq!(
        why,
        "protect notes.md (user /home/u/.config/cordon/policy.toml:2)"
    );
    let why = refused(&r, FileOp::Create, &format!("{WS}/.git/hooks/x")).expect("refused");
    assert!(why.starts_with("protect .git/hooks/** (builtin"), "{why}");
}

#[test]
fn asks_come_after_protections_and_name_their_entry() {
    let policy = "[filesystem]\nask_write = [\"~/src/app\"]\nask_read = [\"~/other\"]\n";
    let r = rules_with(policy, HOME, &[WS]);
    // A protected path is refused, never asked about.
    assert!(refused(&r, FileOp::Write, &format!("{WS}/.envrc")).is_some());
    match r.decide(FileOp::Write, Path::new(&format!("{WS}/main.rs"))) {
        FileDecision::Ask(a) => {
            assert_eq!(a.rule.kind, AskKind::Write);
            assert_eq!(a.path, Path::new(WS));
            assert_eq!(
                a.rule.to_string(),
                "ask_write /home/u/src/app (user /home/u/.config/cordon/policy.toml:2)"
            );
        }
        other => panic!("{other:?}"),
    }
    match r.decide(FileOp::Read, Path::new("/home/u/other/k")) {
        FileDecision::Ask(a) => assert_eq!(a.rule.kind, AskKind::Read),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.decide(FileOp::Read, Path::new("/home/u/.bashrc")),
        FileDecision::Allow
    );
}

/// A profile `gemini` whose own configuration is `protect`.
fn gemini(protect: &str) -> crate::Profile {
    let text = format!("description = \"g\"\n[config]\nprotect = [\"{protect}\"]\n");
    crate::parse_profile("gemini", Path::new("p.toml"), &text, None, Path::new(HOME))
        .expect("profile")
}

#[test]
fn a_profiles_own_configuration_lands_in_the_layer() {
    let home = Path::new(HOME);
    let profile = gemini("~/.gemini/settings.json");
    let mut all = crate::builtin_protect_rules().expect("builtin");
    all.extend(profile.layer.protect.iter().cloned());
    let own = OwnConfig::new(home, &[profile]).expect("own");
    let build = |own| {
        let set = ProtectSet::from_rules(home, all.clone()).expect("set");
        FileRules::new(set, home.into(), vec![WS.into()], AskPaths::default(), own)
    };
    let file = Path::new("/home/u/.gemini/settings.json");
    assert!(matches!(
        build(None).decide(FileOp::Write, file),
        FileDecision::Deny(_)
    ));
    let with = build(Some(Arc::new(own)));
    assert_eq!(with.decide(FileOp::Write, file), FileDecision::Allow);
    // Nothing else the profile does not name.
    assert!(matches!(
        with.decide(FileOp::Write, Path::new("/home/u/.bashrc")),
        FileDecision::Deny(_)
    ));
}

#[test]
fn exemptions_are_well_formed() {
    for e in EXEMPTIONS {
        assert!(!e.why.is_empty(), "{e:?}");
        match e.kind {
            ExemptKind::Scratch => assert!(e.path.starts_with('/'), "{e:?}"),
            ExemptKind::DependencyTree => assert!(!e.path.contains('/'), "{e:?}"),
            ExemptKind::PackageCache => assert!(!e.path.starts_with('/'), "{e:?}"),
        }
    }
}

#[test]
fn policy_show_lists_every_exemption_and_refusal_with_why() {
    let eff = resolve(&Inputs::new(HOME, WS)).expect("resolves");
    let text = eff.render();
    for e in EXEMPTIONS {
        let at = match e.kind {
            ExemptKind::PackageCache => format!("~/{}", e.path),
            _ => e.path.to_string(),
        };
        let want = format!("filesystem.exempt {} {at}  # builtin\n", e.kind.name());
        assert!(text.contains(&want), "{want}");
        assert!(text.contains(e.why), "{}", e.why);
    }
    for (what, why) in BUILTIN_REFUSALS {
        assert!(text.contains(&format!("filesystem.refuse {what}  # builtin\n")));
        assert!(text.contains(why));
    }
}

#[test]
fn a_head_only_the_private_home_layer_holds_is_the_sandboxs_own() {
    let home = Path::new(HOME);
    let own = OwnConfig::new(home, &[gemini("~/.gemini/commands/**")]).expect("own");
    let set = ProtectSet::new(home, &[]).expect("set");
    let shared = vec![PathBuf::from(WS), PathBuf::from("/home/u/kept")];
    let r = FileRules::new(
        set,
        home.into(),
        shared,
        AskPaths::default(),
        Some(Arc::new(own)),
    );
    // codex's marketplace clone in its private home layer.
    let staging = "/home/u/.codex/.tmp/.staging/m/HEAD";
    assert_eq!(
        r.decide(FileOp::Create, Path::new(staging)),
        FileDecision::Allow
    );
    // What leaves the layer keeps the rule: the workspace, a host-shared path under $HOME, the
    // agent's own configuration (copied out by `config apply`).
    for p in [
        format!("{WS}/x/HEAD"),
        "/home/u/kept/r/HEAD".to_string(),
        "/home/u/.gemini/commands/HEAD".to_string(),
    ] {
        assert!(refused(&r, FileOp::Create, &p).is_some(), "{p}");
    }
    // Without a private layer `$HOME` is the host's.
    assert!(refused(&rules(), FileOp::Create, staging).is_some());
}
