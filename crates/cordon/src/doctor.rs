//! `cordon doctor`: what this machine supports, layer by layer, proven by starting a real
//! sandbox rather than by reading version numbers.

use cordon_linux::landlock_rules;
use std::path::Path;
use std::process::{Command, Stdio};

struct Report {
    failures: usize,
}

impl Report {
    fn line(&mut self, ok: bool, layer: &str, detail: &str) {
        if !ok {
            self.failures += 1;
        }
        println!(
            "{:<8} {layer:<28} {detail}",
            if ok { "works" } else { "MISSING" }
        );
    }
    fn note(&self, layer: &str, detail: &str) {
        println!("{:<8} {layer:<28} {detail}", "note");
    }
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn apparmor_profile(exe: &Path) -> String {
    format!(
        "  cat <<'EOF' | sudo tee /etc/apparmor.d/cordon\n  abi <abi/4.0>,\n  include <tunables/global>\n  \
         profile cordon {} flags=(unconfined) {{\n    userns,\n  }}\n  EOF\n  sudo apparmor_parser -r /etc/apparmor.d/cordon",
        exe.display()
    )
}

pub fn doctor(verbose: bool) -> i32 {
    let mut r = Report { failures: 0 };
    let exe = std::env::current_exe().unwrap_or_else(|_| "cordon".into());

    let max_ns =
        read_trim("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok());
    let unpriv = read_trim("/proc/sys/kernel/unprivileged_userns_clone");
    let apparmor = read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let userns_ok = max_ns != Some(0) && unpriv.as_deref() != Some("0");
    r.line(
        userns_ok,
        "user namespaces",
        if userns_ok { "enabled" } else { "disabled: sudo sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000" },
    );
    if apparmor.as_deref() == Some("1") {
        r.note(
            "AppArmor",
            "kernel.apparmor_restrict_unprivileged_userns=1: cordon needs a profile allowing `userns`:",
        );
        println!("{}", apparmor_profile(&exe));
    }

    let abi = landlock_rules::kernel_abi();
    r.line(
        abi >= 1,
        "Landlock",
        &match abi {
            0 => "unavailable: boot with `lsm=landlock,...` (Linux 5.13+)".to_string(),
            1..=5 => format!("ABI {abi}: file rules work; signal/abstract-socket scoping needs ABI 6 (Linux 6.12)"),
            _ => format!("ABI {abi}: file rules and signal/abstract-socket scoping"),
        },
    );
    let actions = read_trim("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    r.line(
        actions.contains("errno"),
        "seccomp filter",
        if actions.is_empty() {
            "unknown"
        } else {
            "available"
        },
    );
    r.line(
        actions.contains("user_notif"),
        "seccomp user notification",
        if actions.contains("user_notif") {
            "available (protected paths that do not exist yet)"
        } else {
            "missing: Linux 5.14+ needed for protected-path enforcement"
        },
    );

    if actions.contains("user_notif") {
        r.note(
            "path guard wake-ups",
            if cordon_linux::pathguard::sync_wakeup_supported() {
                "synchronous (each guarded call costs a few µs)"
            } else {
                "ordinary: guarded calls cost ~50 µs more each (synchronous wake-ups need Linux 6.6+)"
            },
        );
    }
    let probe = probe_sandbox(&exe);
    match &probe {
        Ok(()) => r.line(
            true,
            "sandbox start",
            "a test sandbox started: mounts, overlay, pid/net namespaces, Landlock, seccomp",
        ),
        Err(e) => r.line(false, "sandbox start", e),
    }
    // In a container or pod: which of the settings `cordon kube render` writes are missing.
    for (ok, setting, detail) in crate::kube::doctor_lines(probe.as_ref().err().map(String::as_str))
    {
        r.line(ok, setting, &detail);
    }

    let cg = cgroup_report();
    r.note("resource limits", &cg);
    match crate::dirs::vm_places() {
        Ok(places) => {
            for (layer, detail) in cordon_vm::doctor_lines(verbose, &places) {
                r.note(layer, &detail);
            }
        }
        Err(e) => r.note("VM tier", &format!("unusable: {e}")),
    }
    if r.failures == 0 {
        println!("\ncordon can run here with full isolation.");
        0
    } else {
        println!(
            "\n{} layer(s) missing: `cordon run` will refuse to start (exit 125) until fixed.",
            r.failures
        );
        1
    }
}

/// Starts `cordon run -- <shell probe>` and checks what the probe saw from inside.
fn probe_sandbox(exe: &Path) -> Result<(), String> {
    // A fresh directory of its own, in cordon's private runtime directory: the temp directory
    // itself may be an ancestor of $HOME (a home under /tmp), which `cordon run` rightly
    // refuses as a workspace.
    use std::os::unix::fs::DirBuilderExt;
    let base = crate::dirs::runtime_dir().unwrap_or_else(|_| std::env::temp_dir());
    let dir = base.join(format!("doctor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create a probe workspace {}: {e}", dir.display()))?;
    let result = probe_in(exe, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn probe_in(exe: &Path, dir: &Path) -> Result<(), String> {
    let script = "test \"$(cat /proc/self/status | grep ^CapEff | tr -d '[:space:]')\" = CapEff:0000000000000000 \
                  && ! touch /usr/.cordon-doctor 2>/dev/null && test -d /proc/1 && echo probe-ok";
    // The probe's own refused write goes to an audit file in the probe directory (removed
    // after), not to the person's run logs, where `cordon log` listed it as a denial.
    let out = Command::new(exe)
        .args(["run", "-w"])
        .arg(dir)
        .arg("--audit")
        .arg(dir.join("probe-audit.jsonl"))
        .args(["--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("probe-ok") {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .find(|l| !l.starts_with("cordon: note:"))
            .unwrap_or("the probe failed")
            .trim()
            .to_string())
    }
}

fn cgroup_report() -> String {
    let is_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if is_v2 {
        "cgroup v2: tasks and memory limited by a delegated cgroup when available, else rlimits"
            .into()
    } else {
        "cgroup v1/hybrid: tasks limited by RLIMIT_NPROC, memory per process by RLIMIT_DATA, \
         private layer by tmpfs size; no sandbox-wide memory cap (oom_score_adj=1000 makes the \
         kernel pick the sandbox first)"
            .into()
    }
}
