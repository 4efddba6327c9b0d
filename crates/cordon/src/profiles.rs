//! Agent and tool profiles in the binary: finding them (built in, or the person's override
//! in `${XDG_CONFIG_HOME:-~/.config}/cordon/profiles/NAME.toml`), choosing them from the
//! command, listing them (`cordon profiles`) and the one-time notice of a first run.

use crate::dirs;
use cordon_policy::{
    builtin_profile, check_profile_name, parse_profile, profile_for_command, Locations, Profile,
    BUILTIN_PROFILES,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The person's profile directory.
pub fn user_dir(home: &Path) -> PathBuf {
    dirs::config_dir(home).join("profiles")
}

/// Reads profile `name`: the person's file if there is one, else the built-in one. Parsed
/// once per process: selecting a profile, its first-run notice and the policy merge all ask
/// for it on the start-up path, and neither `$HOME` nor the files change during one run.
pub fn load_one(home: &Path, name: &str) -> Result<Profile, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PARSED: OnceLock<Mutex<HashMap<(PathBuf, String), Profile>>> = OnceLock::new();
    let cache = PARSED.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (home.to_path_buf(), name.to_string());
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(p);
    }
    let p = parse_one(home, name)?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, p.clone());
    }
    Ok(p)
}

fn parse_one(home: &Path, name: &str) -> Result<Profile, String> {
    check_profile_name(name).map_err(|e| format!("--profile {e}"))?;
    let file = user_dir(home).join(format!("{name}.toml"));
    match std::fs::read(&file) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("{}: file is not valid UTF-8", file.display()))?;
            parse_profile(name, &file, &text, Some(&file), home).map_err(|e| e.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = builtin_profile(name).ok_or_else(|| {
                format!("unknown profile {name:?} (`cordon profiles` lists them)")
            })?;
            let shown = PathBuf::from(format!("profiles/{name}.toml"));
            parse_profile(name, &shown, text, None, home).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// Reads the named profiles (each once, in order). State paths that do not exist are
/// dropped: there is nothing to keep yet, and a missing path cannot be mounted.
pub fn load(home: &Path, names: &[String]) -> Result<Vec<Profile>, String> {
    let mut out = load_all(home, names)?;
    for p in &mut out {
        p.layer
            .allow_write
            .retain(|r| std::fs::symlink_metadata(&r.value).is_ok());
    }
    Ok(out)
}

/// [`load`] keeping every state path, existing or not.
pub fn load_all(home: &Path, names: &[String]) -> Result<Vec<Profile>, String> {
    let mut out: Vec<Profile> = Vec::new();
    for name in names {
        if !out.iter().any(|p| &p.name == name) {
            out.push(load_one(home, name)?);
        }
    }
    Ok(out)
}

/// Creates the profiles' `[state] dirs` that are missing (empty, 0700), so the agent's state
/// is kept and its settings can be saved from its very first run. Never through a symlink:
/// each directory is made relative to its parent, opened without following.
pub fn create_state_dirs(home: &Path, profiles: &[Profile]) -> Result<(), String> {
    for p in profiles {
        for d in &p.dirs {
            crate::agentconfig::mkdirs_under(home, &d.value).map_err(|e| {
                format!(
                    "cannot create {}'s directory {} ({}): {e}; create it yourself or remove it from the profile",
                    p.name,
                    d.value.display(),
                    d.origin
                )
            })?;
        }
    }
    Ok(())
}

/// Every profile name: the built-in ones and the person's own files.
fn all_names(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN_PROFILES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    if let Ok(rd) = std::fs::read_dir(user_dir(home)) {
        for e in rd.flatten() {
            let file = e.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".toml")) else {
                continue;
            };
            if check_profile_name(name).is_ok() && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    names
}

/// The profile the command selects by its name, if any (parse errors in the person's files
/// are reported, not skipped: a broken override must not silently weaken nothing or all).
pub fn auto_select(home: &Path, command: &[OsString]) -> Result<Option<String>, String> {
    let argv: Vec<String> = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Parsing every profile on every run was a third of start-up; only profiles whose text
    // names one of the command's words (as a quoted string, as `commands = [...]` does) can
    // match, so only those are parsed, and the full matcher still decides.
    let words: Vec<String> = argv
        .iter()
        .take(6)
        .flat_map(|a| {
            let base = Path::new(a)
                .file_name()
                .and_then(|b| b.to_str())
                .unwrap_or(a)
                .to_string();
            let pkg = match a.rsplit_once('@') {
                Some((p, _)) if !p.is_empty() => p.to_string(),
                _ => a.clone(),
            };
            [a.clone(), base, pkg]
        })
        .map(|w| format!("\"{w}\""))
        .collect();
    let mut candidates = Vec::new();
    for name in all_names(home) {
        let quoted_match =
            match std::fs::read_to_string(user_dir(home).join(format!("{name}.toml"))) {
                Ok(text) => words.iter().any(|w| text.contains(w.as_str())),
                Err(_) => builtin_profile(&name)
                    .is_some_and(|t| words.iter().any(|w| t.contains(w.as_str()))),
            };
        if quoted_match {
            candidates.push(load_one(home, &name)?);
        }
    }
    Ok(profile_for_command(&candidates, &argv).map(|p| p.name.clone()))
}

/// `cordon profiles`.
pub fn list() -> i32 {
    let result = (|| -> Result<String, String> {
        let home = dirs::home()?;
        let mut rows = vec![[
            "NAME".to_string(),
            "SOURCE".to_string(),
            "COMMANDS".to_string(),
            "DESCRIPTION".to_string(),
        ]];
        for name in all_names(&home) {
            let p = load_one(&home, &name)?;
            let source = match (&p.file, builtin_profile(&name).is_some()) {
                (Some(_), true) => "overridden",
                (Some(_), false) => "user",
                (None, _) => "built-in",
            };
            rows.push([
                name,
                source.to_string(),
                if p.commands.is_empty() {
                    "-".into()
                } else {
                    p.commands.join(",")
                },
                p.description.clone(),
            ]);
        }
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        let mut out = String::new();
        for r in &rows {
            out.push_str(&format!(
                "{:w0$}  {:w1$}  {:w2$}  {}\n",
                r[0], r[1], r[2], r[3]
            ));
        }
        out.push_str(&format!(
            "\nOverride one by writing {}/NAME.toml (same schema); `cordon policy show --profile NAME` shows what it adds.\n",
            user_dir(&home).display()
        ));
        Ok(out)
    })();
    match result {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("cordon: {e}");
            crate::EXIT_CORDON
        }
    }
}

/// The marker that says the first-run notice of `name` was shown.
fn seen_marker(home: &Path, name: &str) -> PathBuf {
    dirs::state_dir(home).join("seen").join(name)
}

/// On the first run of each profile when the person has no policy file: one paragraph on
/// stderr saying what is protected, what is allowed and where to change it.
/// Returns the notices printed.
pub fn first_run_notice(home: &Path, workspace: &Path, profiles: &[Profile]) -> Vec<String> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let user_policy = Locations::standard(home, xdg.as_deref(), workspace).user;
    let mut shown = Vec::new();
    if user_policy.exists() {
        return shown;
    }
    for p in profiles {
        let marker = seen_marker(home, &p.name);
        if marker.exists() {
            continue;
        }
        let text = notice_text(home, p, &user_policy);
        eprintln!("{text}");
        shown.push(text);
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&marker, "") {
            eprintln!("cordon: warning: cannot write {}: {e}", marker.display());
        }
    }
    shown
}

fn notice_text(home: &Path, p: &Profile, user_policy: &Path) -> String {
    let tilde = |path: &Path| match path.strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    };
    let hosts: Vec<&str> = p.layer.net_allow.iter().map(|r| r.value.as_str()).collect();
    let state: Vec<String> = p.persist_paths().iter().map(|w| tilde(w)).collect();
    let config: Vec<String> = p
        .layer
        .protect
        .iter()
        .take(4)
        .map(|r| r.to_string())
        .collect();
    let more = p.layer.protect.len().saturating_sub(config.len());
    format!(
        "cordon: profile {name} ({desc}): the workspace is writable; the rest of the host is read-only and secrets (~/.ssh, ~/.aws, tokens) are hidden. \
         Protected: shell, git and editor configuration and {name}'s own ({config}{more}). \
         Kept between runs: {state}. \
         Settings {name} saves in its own files stay inside the sandbox for that run; afterwards `cordon config diff` shows them and `cordon config apply {name}` keeps them. \
         Network: {hosts}; anything else is refused until you allow it. \
         Change it in {policy} or {override_file}; `cordon policy show --profile {name}` lists every rule. (Shown once.)",
        name = p.name,
        desc = p.description,
        config = if config.is_empty() { "none".into() } else { config.join(", ") },
        more = if more > 0 { format!(" and {more} more") } else { String::new() },
        state = if state.is_empty() { "nothing outside the workspace (none of its state directories exists yet)".into() } else { state.join(", ") },
        hosts = if hosts.is_empty() { "no extra hosts".into() } else { hosts.join(", ") },
        policy = tilde(user_policy),
        override_file = tilde(&user_dir(home).join(format!("{}.toml", p.name))),
    )
}

/// Before `cordon run`: adds the profile the command selects (unless `--no-auto-profile`)
/// and prints the first-run notice of every profile in force.
/// Returns the first-run notices it printed.
pub fn prepare_run(args: &mut crate::cli::RunArgs) -> Result<Vec<String>, String> {
    let home = crate::plan::home()?;
    if !args.no_auto_profile {
        if let Some(name) = auto_select(&home, &args.command)? {
            if !args.layers.profile.contains(&name) {
                args.layers.profile.push(name);
            }
        }
    }
    if args.layers.profile.is_empty() {
        return Ok(Vec::new());
    }
    let workspace = crate::plan::workspace(&args.layers)?;
    if args.isolation != crate::cli::Isolation::Landlock {
        create_state_dirs(&home, &load_all(&home, &args.layers.profile)?)?;
    }
    let profiles = load(&home, &args.layers.profile)?;
    Ok(first_run_notice(&home, &workspace, &profiles))
}
