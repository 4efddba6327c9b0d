//! `cordon policy show|check` and `cordon trust`.

use crate::cli::{PolicyCommand, PolicyLayers};
use crate::{dirs, plan, EXIT_CORDON};
use cordon_policy::{check_file, content_hash, parse_policy, Effective, Tier, PROJECT_POLICY};
use std::path::Path;

pub fn policy(cmd: PolicyCommand) -> i32 {
    match cmd {
        PolicyCommand::Show { layers, only } => show(&layers, only),
        PolicyCommand::Check {
            file: Some(file),
            layers,
        } => check(&file, &layers),
        PolicyCommand::Check { file: None, layers } => check_effective(&layers),
    }
}

/// The lines of `rendered` that profile `name` set (their origin is `builtin profile NAME`,
/// followed by `:LINE` or, for the person's override, ` FILE:LINE`).
fn profile_lines(rendered: &str, names: &[String]) -> String {
    rendered
        .lines()
        .filter(|l| {
            l.rsplit_once("  # ").is_some_and(|(_, origin)| {
                names.iter().any(|n| {
                    origin
                        .strip_prefix("builtin profile ")
                        .and_then(|o| o.strip_prefix(n.as_str()))
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' '))
                })
            })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn show(layers: &PolicyLayers, only: bool) -> i32 {
    if only && layers.profile.is_empty() {
        eprintln!("cordon: --only shows what profiles add: name them with --profile NAME");
        return 2;
    }
    let result = (|| -> Result<String, String> {
        let home = plan::home()?;
        let ws = plan::workspace(layers)?;
        // From $HOME (or /) `cordon run` refuses the workspace; the policy is still worth
        // reading, so it is shown for a project directory below $HOME, saying so.
        let (ws, mut out) = match cordon_policy::check_workspace(&home, &ws) {
            Ok(()) => (ws, String::new()),
            Err(e) => {
                let stand_in = home.join("PROJECT");
                let note = format!(
                    "# note: `cordon run` here would exit 125: {e}\n# shown for a workspace at {} instead (no project file read)\n",
                    stand_in.display()
                );
                (stand_in, note)
            }
        };
        let eff = plan::effective(layers, &home, &ws)?;
        if only {
            let names = layers.profile.join(", ");
            let lines = profile_lines(&eff.render(), &layers.profile);
            return Ok(format!("# what --profile {names} adds\n{lines}"));
        }
        let set = plan::protect_set(&eff, &home, &ws)?;
        out.push_str(&eff.render());
        let builtin = cordon_policy::builtin_protect_rules().unwrap_or_default();
        let extra: Vec<_> = set
            .rules()
            .iter()
            .filter(|r| !eff.protect.contains(r) && !builtin.contains(r))
            .collect();
        // Grouped by their reason: git configuration pointing somewhere, cordon's runtime
        // directory, ...
        let mut whys: Vec<&str> = extra
            .iter()
            .map(|r| r.why.as_deref().unwrap_or(""))
            .collect();
        whys.dedup();
        for why in whys {
            let label = match why {
                w if w.starts_with("git ") => {
                    format!("protected because git configuration points there ({w})")
                }
                "" => "protected".to_string(),
                w => format!("protected: {w}"),
            };
            out.push_str(&format!("\n# {label}\n"));
            for r in extra
                .iter()
                .filter(|r| r.why.as_deref().unwrap_or("") == why)
            {
                out.push_str(&format!(
                    "protect {}  # {}\n",
                    cordon_policy::quoted(&r.to_string()),
                    r.origin
                ));
            }
        }
        out.push_str(&format!("\n# policy digest {}\n", eff.digest()));
        Ok(out)
    })();
    match result {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("cordon: {e}");
            EXIT_CORDON
        }
    }
}

/// `cordon policy check` without a file: every tier `cordon run` would read here.
fn check_effective(layers: &PolicyLayers) -> i32 {
    let result = (|| -> Result<Effective, String> {
        let home = plan::home()?;
        let ws = plan::workspace(layers)?;
        plan::compiled(layers, &home, &ws).map(|c| c.effective)
    })();
    match result {
        Ok(eff) => {
            for w in &eff.warnings {
                println!("warning: {w}");
            }
            println!(
                "effective policy for {}: ok (digest {})",
                eff.workspace.display(),
                eff.digest()
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// `cordon policy check FILE`: the file alone, read and compiled exactly as `cordon run -p
/// FILE` (a `.cordon.toml` as the project file) would in this workspace.
fn check(file: &Path, layers: &PolicyLayers) -> i32 {
    let home = plan::home().unwrap_or_else(|_| "/".into());
    // From $HOME (or /) `run` refuses the workspace itself; the file is still worth checking,
    // for a project directory below $HOME.
    let ws = plan::workspace(layers)
        .ok()
        .filter(|ws| cordon_policy::check_workspace(&home, ws).is_ok())
        .unwrap_or_else(|| home.join("PROJECT"));
    match check_file(file, &home, &ws) {
        Ok(_) => {
            println!("{}: ok", file.display());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

pub fn trust(workspace: Option<&Path>, revoke: bool) -> i32 {
    let result = (|| -> Result<String, String> {
        let home = plan::home()?;
        let layers = PolicyLayers {
            workspace: workspace.map(Path::to_path_buf),
            ..Default::default()
        };
        let ws = plan::workspace(&layers)?;
        let file = ws.join(PROJECT_POLICY);
        let mut store = dirs::load_trust(&home)?;
        let msg = if revoke {
            store.untrust(&file);
            format!("no longer trusting {}", file.display())
        } else {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            parse_policy(&file, &text, Tier::Project, &home).map_err(|e| e.to_string())?;
            store.trust(&file, &text).map_err(|e| e.to_string())?;
            format!(
                "trusting {} (sha256 {}); any change to it ends the trust",
                file.display(),
                content_hash(&text)
            )
        };
        let path = dirs::trust_file(&home);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, store.format())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(msg)
    })();
    match result {
        Ok(m) => {
            println!("{m}");
            0
        }
        Err(e) => {
            eprintln!("cordon: {e}");
            EXIT_CORDON
        }
    }
}
