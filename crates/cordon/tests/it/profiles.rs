//! Agent profiles: listing, `policy show --profile`, automatic selection, and for each agent
//! that installs from npm: it starts inside cordon with its profile, its state directory is
//! writable (and kept on the host), its configuration is not.
use crate::common;

use common::*;
use std::fs;
use std::path::Path;

#[test]
fn profiles_lists_every_profile() {
    let sb = Sandbox::new("profiles-list");
    let out = sb.cordon(&["profiles"]);
    assert_eq!(out.code, 0, "{}", out.show());
    for name in [
        "claude",
        "codex",
        "gemini",
        "opencode",
        "aider",
        "copilot",
        "goose",
        "npm",
        "pypi",
        "crates",
        "go",
        "github",
        "gitlab",
        "huggingface",
        "apt",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing\n{}",
            out.show()
        );
    }
    let claude = out
        .stdout
        .lines()
        .find(|l| l.starts_with("claude "))
        .unwrap_or_default();
    assert!(
        claude.contains("built-in") && claude.contains("Claude Code"),
        "{claude}"
    );
    assert!(claude.contains("claude"), "commands listed: {claude}");

    // An override in the person's config directory replaces the built-in profile.
    sb.write_host(
        &sb.home.join(".config/cordon/profiles/claude.toml"),
        "description = \"my claude\"\ncommands = [\"claude\"]\n[network]\nallow = [\"llm.example.test\"]\n",
    );
    let out = sb.cordon(&["profiles"]);
    let claude = out
        .stdout
        .lines()
        .find(|l| l.starts_with("claude "))
        .unwrap_or_default();
    assert!(
        claude.contains("overridden") && claude.contains("my claude"),
        "{}",
        out.show()
    );
    let show = sb.cordon(&["policy", "show", "--profile", "claude"]);
    assert_eq!(show.code, 0, "{}", show.show());
    assert!(
        show.stdout
            .contains("network.allow llm.example.test  # builtin profile claude "),
        "{}",
        show.show()
    );
    assert!(
        !show.stdout.contains("api.anthropic.com"),
        "{}",
        show.show()
    );

    // A broken override is an error with file:line:col, never silently ignored.
    sb.write_host(
        &sb.home.join(".config/cordon/profiles/claude.toml"),
        "description = \"x\"\n[network]\nalow = []\n",
    );
    let out = sb.cordon(&["policy", "show", "--profile", "claude"]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(
        out.stderr.contains("profiles/claude.toml:3:1:"),
        "{}",
        out.show()
    );
}

#[test]
fn policy_show_profile_claude_names_its_origin() {
    let sb = Sandbox::new("profiles-show");
    let out = sb.cordon(&["policy", "show", "--profile", "claude"]);
    assert_eq!(out.code, 0, "{}", out.show());
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("network.allow api.anthropic.com "))
        .unwrap_or_else(|| panic!("api.anthropic.com not shown\n{}", out.show()));
    assert!(line.contains("# builtin profile claude:"), "{line}");
    assert!(
        out.stdout
            .contains("filesystem.protect ~/.claude/settings.json  # builtin profile claude:"),
        "{}",
        out.show()
    );
    // Without the profile, none of it.
    let plain = sb.cordon(&["policy", "show"]);
    assert!(!plain.stdout.contains("profile claude"), "{}", plain.show());
    let bad = sb.cordon(&["policy", "show", "--profile", "no-such-agent"]);
    assert_eq!(bad.code, 125, "{}", bad.show());
    assert!(bad.stderr.contains("unknown profile"), "{}", bad.show());
    let bad = sb.cordon(&["policy", "show", "--profile", "../claude"]);
    assert_eq!(bad.code, 125, "{}", bad.show());
}

/// A user deny beats what a profile allows.
#[test]
fn user_policy_beats_profile() {
    let sb = Sandbox::new("profiles-deny");
    sb.write_host(&sb.home.join(".claude/projects/keep"), "x\n");
    sb.write_host(
        &sb.home.join(".config/cordon/policy.toml"),
        "[filesystem]\ndeny_read = [\"~/.claude\"]\n[network]\ndeny = [\"api.anthropic.com\"]\n",
    );
    let out = sb.cordon(&["policy", "show", "--profile", "claude"]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        !out.stdout.contains("filesystem.allow_write"),
        "the hidden state dir must not be writable\n{}",
        out.show()
    );
    assert!(
        out.stdout
            .contains("network.deny api.anthropic.com  # user "),
        "{}",
        out.show()
    );
}

/// One agent's checks. `state` and `config` are relative to $HOME.
struct Agent {
    test: &'static str,
    bin: &'static str,
    profile: &'static str,
    state: &'static str,
    config: &'static str,
    install: &'static str,
}

fn looks_like_version(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|t| {
            t.split('.')
                .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .count()
                >= 2
        })
}

fn check_agent(a: &Agent) {
    let sb = Sandbox::new(a.profile);
    if !sb.has_tool(a.bin) {
        skip(
            a.test,
            &format!("`{}` is not installed ({})", a.bin, a.install),
        );
        return;
    }
    let state = sb.home.join(a.state);
    let config = sb.home.join(a.config);
    fs::create_dir_all(&state).expect("create state dir");
    sb.write_host(&config, "{\"host\": \"config\"}\n");
    let before = fs::read(&config).expect("read config");

    // The profile is chosen from the command's name; the first run says so once.
    let out = sb.run(&[a.bin, "--version"]);
    assert_eq!(
        out.code,
        0,
        "{} --version inside cordon\n{}",
        a.bin,
        out.show()
    );
    assert!(
        looks_like_version(&out.stdout),
        "no version printed\n{}",
        out.show()
    );
    assert!(
        out.stderr
            .contains(&format!("cordon: profile {} (", a.profile)),
        "first run of the profile prints its notice\n{}",
        out.show()
    );
    assert!(sb
        .home
        .join(".local/state/cordon/seen")
        .join(a.profile)
        .exists());
    let again = sb.run(&[a.bin, "--version"]);
    assert_eq!(again.code, 0, "{}", again.show());
    assert!(
        !again.stderr.contains("cordon: profile"),
        "notice shown once\n{}",
        again.show()
    );

    // State is writable and kept; the agent's own configuration is writable only in the
    // private layer (listed at exit); the host shows both.
    let marker = format!("state-{}", unique());
    let script = format!(
        "echo kept > '{s}/{marker}' && echo state-ok; echo inside > '{c}' && cat '{c}'; true",
        s = state.display(),
        c = config.display()
    );
    let out = sb.sh_opts(&["--profile", a.profile], &script);
    assert!(
        out.stdout.contains("state-ok"),
        "state dir must be writable\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("inside"),
        "the agent's own config is writable in the private layer\n{}",
        out.show()
    );
    assert!(
        out.stderr.contains(&format!(
            "cordon: {} saved its settings inside the sandbox only",
            a.profile
        )),
        "{}",
        out.show()
    );
    assert_eq!(
        fs::read_to_string(state.join(&marker)).ok().as_deref(),
        Some("kept\n"),
        "state written inside must be on the host\n{}",
        out.show()
    );
    assert_eq!(
        fs::read(&config).ok(),
        Some(before),
        "host config changed\n{}",
        out.show()
    );

    // Control: without the profile the same write does not reach the host.
    let other = format!("noprofile-{}", unique());
    let out = sb.sh(&format!("echo x > '{}/{other}'; true", state.display()));
    assert!(
        !Path::new(&state.join(&other)).exists(),
        "without the profile, state must stay in the private layer\n{}",
        out.show()
    );
}

const NPM: &str = ".ci/run installs it with npm install -g";

#[test]
fn claude_profile() {
    check_agent(&Agent {
        test: "profiles::claude_profile",
        bin: "claude",
        profile: "claude",
        state: ".claude/projects",
        config: ".claude/settings.json",
        install: NPM,
    });
}

#[test]
fn codex_profile() {
    check_agent(&Agent {
        test: "profiles::codex_profile",
        bin: "codex",
        profile: "codex",
        state: ".codex/sessions",
        config: ".codex/config.toml",
        install: NPM,
    });
}

#[test]
fn gemini_profile() {
    check_agent(&Agent {
        test: "profiles::gemini_profile",
        bin: "gemini",
        profile: "gemini",
        state: ".gemini/tmp",
        config: ".gemini/settings.json",
        install: NPM,
    });
}

#[test]
fn opencode_profile() {
    check_agent(&Agent {
        test: "profiles::opencode_profile",
        bin: "opencode",
        profile: "opencode",
        state: ".local/share/opencode/storage",
        config: ".config/opencode/opencode.json",
        install: NPM,
    });
}

#[test]
fn aider_profile() {
    check_agent(&Agent {
        test: "profiles::aider_profile",
        bin: "aider",
        profile: "aider",
        state: ".aider/caches",
        config: ".aider.conf.yml",
        install: "aider-chat is not installed by .ci/run: it pulls in hundreds of MB of Python dependencies; `pipx install aider-chat` enables this test",
    });
}
