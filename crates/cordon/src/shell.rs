//! `cordon shell`: a drop-in `$SHELL` for agents that run each tool call as `$SHELL -c CMD`.
//! Every call runs inside the named sandbox of its workspace (`ws-<hash>`), which is started
//! in the background when it is not running and ends by itself after [`IDLE_SECS`] without
//! calls (or with `cordon rm --force ws-<hash>`).

use crate::cli::ShellArgs;
use crate::fail;
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A background sandbox ends after this many seconds without a running or new call.
pub const IDLE_SECS: u64 = 15 * 60;

/// The workspace of a call: `$CORDON_WORKSPACE`, else the nearest directory above the
/// current one holding `.git`, else the current directory. The search stops below `$HOME`
/// and its ancestors (a repository around them, a dotfiles one or a checkout holding test
/// homes, can never be a workspace).
fn workspace() -> Result<PathBuf, String> {
    if let Some(w) = std::env::var_os("CORDON_WORKSPACE") {
        return Path::new(&w)
            .canonicalize()
            .map_err(|e| format!("cannot use CORDON_WORKSPACE: {e}"));
    }
    let cwd = std::env::current_dir()
        .and_then(|c| c.canonicalize())
        .map_err(|e| format!("cannot read the current directory: {e}"))?;
    let home = crate::dirs::home().ok().and_then(|h| h.canonicalize().ok());
    let encloses_home = |a: &Path| home.as_deref().is_some_and(|h| h.starts_with(a));
    Ok(cwd
        .ancestors()
        .take_while(|a| !encloses_home(a))
        .find(|a| a.join(".git").exists())
        .unwrap_or(&cwd)
        .to_path_buf())
}

/// `ws-` and the first 12 hex digits of the workspace path's SHA-256.
pub fn name_for(workspace: &Path) -> String {
    let digest = Sha256::digest(workspace.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("ws-{hex}")
}

/// The shell run inside the sandbox.
fn inner_shell() -> &'static str {
    if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    }
}

pub fn shell(args: ShellArgs) -> i32 {
    let ws = match workspace() {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let name = name_for(&ws);
    let conn = match connect_or_start(&name, &ws) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut argv: Vec<OsString> = vec![inner_shell().into()];
    match &args.command {
        Some(cmd) => {
            argv.push("-c".into());
            argv.push(cmd.into());
            argv.extend(args.args.iter().cloned());
        }
        None => {
            if cordon_linux::sandbox::any_stdio_is_tty() {
                argv.push("-i".into());
            }
        }
    }
    crate::exec::exec_on(conn, &argv)
}

fn connect_or_start(name: &str, ws: &Path) -> Result<std::os::fd::OwnedFd, String> {
    if let Some(c) = crate::exec::connect(name)? {
        return Ok(c);
    }
    let runtime = crate::dirs::runtime_dir()?;
    let log = runtime.join("exec").join(format!("{name}.log"));
    std::fs::create_dir_all(runtime.join("exec"))
        .map_err(|e| format!("cannot create {}: {e}", runtime.display()))?;
    let out =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find cordon itself: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("run")
        .arg("--name")
        .arg(name)
        .arg("--idle-exit")
        .arg(IDLE_SECS.to_string())
        .arg("--no-auto-profile")
        .arg("-w")
        .arg(ws)
        .args(["--", "sleep", "infinity"])
        .current_dir(ws)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start sandbox {name}: {e}"))?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(c) = crate::exec::connect(name)? {
            // The run keeps its (now nameless) log open; nothing waits on it here.
            let _ = std::fs::remove_file(&log);
            drop(child);
            return Ok(c);
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Another call may have started it at the same time: keep waiting for it.
            if !crate::named::Entry::new(&crate::dirs::home()?, name)?.running() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "sandbox {name} did not start: {}",
                    text.trim().trim_start_matches("cordon: ")
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("sandbox {name} did not start within 30 s"))
}
