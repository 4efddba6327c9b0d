use super::*;
use crate::{resolve, Inputs};

fn home() -> &'static Path {
    Path::new("/home/u")
}

fn builtin(name: &str) -> Profile {
    let text = builtin_profile(name).unwrap();
    let file = PathBuf::from(format!("profiles/{name}.toml"));
    parse_profile(name, &file, text, None, home()).unwrap()
}

#[test]
fn every_builtin_profile_parses_and_describes_itself() {
    assert!(BUILTIN_PROFILES.len() >= 15);
    for (name, _) in BUILTIN_PROFILES {
        let p = builtin(name);
        assert!(!p.description.is_empty(), "{name}");
        for r in &p.layer.net_allow {
            assert_eq!(
                r.origin.to_string().split(':').next().unwrap(),
                format!("builtin profile {name}")
            );
        }
    }
    for agent in [
        "claude", "codex", "gemini", "opencode", "aider", "copilot", "goose",
    ] {
        let p = builtin(agent);
        assert!(p.commands.contains(&agent.to_string()), "{agent}");
        assert!(!p.layer.protect.is_empty(), "{agent} protects its config");
        assert!(!p.layer.allow_write.is_empty(), "{agent} keeps its state");
    }
}

#[test]
fn builtin_profiles_pass_no_secrets_and_keep_state_below_home() {
    for (name, text) in BUILTIN_PROFILES {
        let p = builtin(name);
        // Constants only, and none that looks like a secret (the parser refuses those).
        assert!(
            p.layer.env_pass.is_empty(),
            "{name} must not pass environment"
        );
        for r in &p.layer.env_set {
            assert!(
                !crate::env::looks_secret(&r.value.0),
                "{name}: {}",
                r.value.0
            );
        }
        let _ = text;
        for w in p.persist_paths() {
            assert!(
                w.starts_with(home()) && w != home(),
                "{name}: {}",
                w.display()
            );
        }
    }
}

#[test]
fn claude_profile_content() {
    let p = builtin("claude");
    let hosts: Vec<&str> = p.layer.net_allow.iter().map(|r| r.value.as_str()).collect();
    assert!(hosts.contains(&"api.anthropic.com"));
    assert!(p
        .persist_paths()
        .contains(&PathBuf::from("/home/u/.claude/projects")));
    let set = crate::ProtectSet::new(home(), &p.layer.protect).unwrap();
    assert!(set
        .matches(Path::new("/home/u/.claude/settings.json"))
        .is_some());
    assert!(set.matches(Path::new("/w/ws/.mcp.json")).is_some());
    assert!(set
        .matches(Path::new("/home/u/.claude/projects/x.jsonl"))
        .is_none());
}

#[test]
fn strict_schema_with_locations() {
    let f = Path::new("/c/profiles/x.toml");
    let e = parse_profile("x", f, "description = \"d\"\nbogus = 1\n", None, home()).unwrap_err();
    assert!(e.to_string().starts_with("/c/profiles/x.toml:2:1: "), "{e}");
    let e = parse_profile(
        "x",
        f,
        "description = \"d\"\n[network]\nallow = [\"a\"]\ndeny = [\"b\"]\n",
        None,
        home(),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("/c/profiles/x.toml:4:1: "), "{e}");
    let e = parse_profile("x", f, "[env]\npass = [\"X\"]\n", None, home()).unwrap_err();
    assert!(e.to_string().starts_with("/c/profiles/x.toml:"), "{e}");
    // missing description
    assert!(parse_profile("x", f, "commands = [\"x\"]\n", None, home()).is_err());
    let bad = [
        "description = \"d\"\n[state]\npersist = [\"~\"]\n",
        "description = \"d\"\n[state]\npersist = [\"rel/dir\"]\n",
        "description = \"d\"\n[state]\npersist = [\"/home\"]\n",
        "description = \"d\"\n[network]\nallow = [\"a b\"]\n",
        "description = \"d\"\ncommands = [\"-x\"]\n",
        "description = \"d\"\n[config]\nprotect = [\"~\"]\n",
        "description = \"\"\n",
    ];
    for text in bad {
        let e = parse_profile("x", f, text, None, home()).unwrap_err();
        assert!(
            e.to_string().starts_with("/c/profiles/x.toml:"),
            "{text}: {e}"
        );
        assert!(!e.to_string().contains('\n'));
    }
    assert!(parse_profile("../x", f, "description = \"d\"\n", None, home()).is_err());
    assert!(parse_profile("X", f, "description = \"d\"\n", None, home()).is_err());
}

#[test]
fn override_file_is_named_in_origins() {
    let f = Path::new("/home/u/.config/cordon/profiles/claude.toml");
    let p = parse_profile(
        "claude",
        f,
        "description = \"mine\"\n[network]\nallow = [\"example.com\"]\n",
        Some(f),
        home(),
    )
    .unwrap();
    assert_eq!(
        p.layer.net_allow[0].origin.to_string(),
        "builtin profile claude /home/u/.config/cordon/profiles/claude.toml:3"
    );
    assert_eq!(p.file.as_deref(), Some(f));
}

#[test]
fn profiles_merge_at_the_builtin_tier() {
    let mut inputs = Inputs::new("/home/u", "/home/u/src/app");
    inputs.profiles.push(builtin("claude"));
    let eff = resolve(&inputs).unwrap();
    let allow = eff
        .network
        .allow
        .iter()
        .find(|r| r.value.as_str() == "api.anthropic.com")
        .unwrap();
    assert_eq!(allow.origin.tier, Tier::Builtin);
    assert!(allow
        .origin
        .to_string()
        .starts_with("builtin profile claude:"));
    assert!(eff
        .allow_write
        .iter()
        .any(|r| r.value == Path::new("/home/u/.claude/projects")));
    assert!(
        eff.render()
            .contains("api.anthropic.com  # builtin profile claude:"),
        "{}",
        eff.render()
    );

    // A user deny beats a profile's persisted state.
    inputs.user.push((
        "/home/u/.config/cordon/policy.toml".into(),
        "[filesystem]\ndeny_read = [\"~/.claude\"]\n".into(),
    ));
    let eff = resolve(&inputs).unwrap();
    assert!(!eff
        .allow_write
        .iter()
        .any(|r| r.value.starts_with("/home/u/.claude")));
    assert!(eff.warnings.iter().any(|w| w.contains("profile claude")));
}

#[test]
fn selection_by_command() {
    let all: Vec<Profile> = BUILTIN_PROFILES.iter().map(|(n, _)| builtin(n)).collect();
    let pick = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        profile_for_command(&all, &argv).map(|p| p.name.clone())
    };
    assert_eq!(pick(&["claude", "--version"]).as_deref(), Some("claude"));
    assert_eq!(pick(&["/usr/bin/codex"]).as_deref(), Some("codex"));
    assert_eq!(
        pick(&[
            "node",
            "--no-warnings",
            "/usr/lib/node_modules/@google/gemini-cli/bundle/gemini.js"
        ])
        .as_deref(),
        Some("gemini")
    );
    assert_eq!(
        pick(&["npx", "-y", "@openai/codex@0.1.2", "exec"]).as_deref(),
        Some("codex")
    );
    assert_eq!(
        pick(&["npx", "--package=opencode-ai", "opencode"]).as_deref(),
        Some("opencode")
    );
    assert_eq!(
        pick(&["npx", "-y", "@anthropic-ai/claude-code"]).as_deref(),
        Some("claude")
    );
    assert_eq!(pick(&["bash", "-c", "claude"]), None);
    assert_eq!(pick(&["npx"]), None);
    assert_eq!(pick(&["npx", "@"]), None);
    assert_eq!(pick(&[]), None);
    assert_eq!(pick(&["é@", "ö"]), None);
}

#[test]
fn a_host_a_builtin_profile_allows_suggests_that_profile() {
    // (Other profiles may list the same hosts: only what the suggestion must name is checked.)
    assert!(
        profile_suggestion("Static.Crates.IO.").is_some_and(|s| s.starts_with("--profile crates"))
    );
    assert!(
        profile_suggestion("registry.npmjs.org").is_some_and(|s| s.starts_with("--profile npm"))
    );
    // A wildcard covers subdomains, not the bare name or a look-alike.
    let sub = profile_suggestion("europe-west1-aiplatform.googleapis.com");
    assert!(sub.is_none(), "{sub:?}");
    assert!(profile_suggestion("us-central1.aiplatform.googleapis.com")
        .is_some_and(|s| s.contains("gemini")));
    assert!(profile_suggestion("evilregistry.npmjs.org").is_none());
    assert!(profile_suggestion("registry.npmjs.org.evil.test").is_none());
    // A tool bundle comes before an agent's profile that also allows the host.
    let gh = profile_suggestion("api.github.com").expect("github");
    assert!(gh.starts_with("--profile github"), "{gh}");
    // Several profiles: all named.
    let s = profile_suggestion("api.openai.com").expect("openai");
    assert!(s.starts_with("--profile ") && s.contains("codex"), "{s}");
}

#[test]
fn regenerated_and_volatile_stay_within_the_agents_own_configuration() {
    let parse = |text: &str| parse_profile("x", Path::new("profiles/x.toml"), text, None, home());
    let base =
        "description = \"x\"\n[config]\nprotect = [\"~/.x/config.toml\", \"~/.x/skills/**\"]\n";
    let ok = parse(&format!(
        "{base}regenerated = [\"~/.x/skills/.system/**\"]\n[config.volatile]\n\"~/.x/config.toml\" = [\"a.count\"]\n"
    ))
    .unwrap();
    let own = OwnConfig::new(home(), std::slice::from_ref(&ok)).unwrap();
    assert!(own.regenerated(&home().join(".x/skills/.system/s/SKILL.md")));
    assert!(!own.regenerated(&home().join(".x/skills/mine/SKILL.md")));
    assert_eq!(
        own.volatile_keys(&home().join(".x/config.toml")),
        ["a.count"]
    );
    // Outside its own configuration, neither is accepted, and each error has its place.
    for bad in [
        format!("{base}regenerated = [\"~/.bashrc\"]\n"),
        format!("{base}regenerated = [\".x/skills/**\"]\n"),
        format!("{base}[config.volatile]\n\"~/.bashrc\" = [\"a\"]\n"),
        format!("{base}[config.volatile]\n\"~/.x/config.toml\" = [\"a..b\"]\n"),
    ] {
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("profiles/x.toml:"), "{e}");
    }
}

#[test]
fn a_profile_sets_constants_only_and_every_other_tier_overrides_them() {
    let parse = |text: &str| parse_profile("x", Path::new("profiles/x.toml"), text, None, home());
    let p = parse("description = \"x\"\n[env]\nset = { X_QUIET = \"1\" }\n").unwrap();
    let mut inputs = Inputs::new("/home/u", "/home/u/src");
    inputs.profiles.push(p.clone());
    let eff = resolve(&inputs).unwrap();
    assert_eq!(eff.env_set.len(), 1);
    assert_eq!(eff.env_set[0].value.1, "1");
    inputs.user.push((
        "/home/u/.config/cordon/policy.toml".into(),
        "[env]\nset = { X_QUIET = \"0\" }\n".into(),
    ));
    let eff = resolve(&inputs).unwrap();
    assert_eq!(eff.env_set.len(), 1);
    assert_eq!(eff.env_set[0].value.1, "0", "the person's value wins");
    for bad in [
        "[env]\nset = { API_TOKEN = \"x\" }\n",
        "[env]\nset = { lower = \"x\" }\n",
        "[env]\npass = [\"HOME\"]\n",
    ] {
        assert!(
            parse(&format!("description = \"x\"\n{bad}")).is_err(),
            "{bad}"
        );
    }
}
