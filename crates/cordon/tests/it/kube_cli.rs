//! `cordon kube render|claim|check` through the binary: exit codes, stdout/stderr split and
//! the FILE:LINE form of check's findings. (Rendering itself: crates/cordon-kube/tests.)
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn crds() -> Option<PathBuf> {
    let dir = std::env::var_os("CORDON_KUBE_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s/agent-sandbox")
        });
    dir.join("agents.x-k8s.io_sandboxes.yaml")
        .is_file()
        .then_some(dir)
}

fn cordon(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("CORDON_KUBE_CRDS")
        .current_dir(home.join("ws"))
        .output()
        .unwrap()
}

fn home() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("ws")).unwrap();
    std::fs::create_dir_all(d.path().join(".config/cordon")).unwrap();
    std::fs::write(
        d.path().join(".config/cordon/policy.toml"),
        "[network]\nallow = [\"github.com\"]\n",
    )
    .unwrap();
    d
}

#[test]
fn kube_render_then_check_through_the_binary() {
    let t = "kube_render_then_check_through_the_binary";
    let h = home();
    let render = [
        "kube",
        "render",
        "--image",
        "x/agent:1",
        "--now",
        "1800000000",
        "--",
        "claude",
    ];
    let a = cordon(h.path(), &render);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = cordon(h.path(), &render);
    assert_eq!(a.stdout, b.stdout, "same inputs, same bytes");
    let yaml = String::from_utf8(a.stdout).unwrap();
    assert!(yaml.contains("kind: Sandbox") && yaml.contains("\"github.com\",  # user "));
    let claim = cordon(h.path(), &["kube", "claim", "team", "--now", "1800000000"]);
    assert!(claim.status.success());
    assert!(String::from_utf8_lossy(&claim.stdout).contains("name: team-1800000000"));

    let gv = cordon(
        h.path(),
        &[
            "kube",
            "render",
            "--image",
            "x",
            "--runtime-class",
            "gvisor",
            "--",
            "claude",
        ],
    );
    assert_eq!(gv.status.code(), Some(125));
    assert!(gv.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&gv.stderr).lines().count(), 1);

    let Some(dir) = crds() else {
        return common::skip(
            t,
            "agent-sandbox CRDs not found at ../shared/k8s/agent-sandbox (or CORDON_KUBE_CRDS)",
        );
    };
    let file = h.path().join("app.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let dirs = dir.to_string_lossy().into_owned();
    let f = file.to_string_lossy().into_owned();
    let ok = cordon(h.path(), &["kube", "check", "--crds", &dirs, &f]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout), format!("{f}: ok\n"));
    assert!(String::from_utf8_lossy(&ok.stderr).contains(": note: Sandbox"));
    let bad = yaml.replace("shutdownPolicy: Delete", "shutdownPolicy: Sometimes");
    std::fs::write(&file, &bad).unwrap();
    let line = bad.lines().position(|l| l.contains("Sometimes")).unwrap() + 1;
    let e = cordon(h.path(), &["kube", "check", "--crds", &dirs, &f]);
    assert_eq!(e.status.code(), Some(1));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains(&format!("{f}:{line}: Sandbox ")), "{err}");
    // Without the CRDs an agent-sandbox object is an error, never passed unchecked.
    let none = cordon(h.path(), &["kube", "check", &f]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("pass --crds DIR"));
}
