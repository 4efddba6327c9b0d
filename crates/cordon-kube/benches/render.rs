//! `cordon kube render` of 1,000 distinct sandboxes (not a test): the whole path from the
//! policy tiers (resolve, export as the managed tier, egress) to the YAML, once per sandbox,
//! and the rendering alone. Prints the totals. Run: cargo bench -p cordon-kube
#![allow(clippy::unwrap_used)]

use cordon_kube::{render, Mode, Options, Policy, Seccomp};
use cordon_policy::{resolve, Inputs, Relocate};
use std::time::Instant;

const USER: &str = r#"
[network]
allow = ["api.anthropic.com", "github.com", "*.githubusercontent.com", "registry.npmjs.org"]
allow_cidrs = ["10.20.0.0/16:5432"]
[lifecycle]
max_age = "36h"
[secrets.GITHUB_TOKEN]
from_env = "GITHUB_TOKEN"
hosts = ["api.github.com"]
"#;

fn policy(i: usize) -> Policy {
    let mut inputs = Inputs::new("/home/dev", format!("/home/dev/src/app{i}"));
    inputs.user.push((
        "/home/dev/.config/cordon/policy.toml".into(),
        format!("{USER}\n[filesystem]\ndeny_read = [\"~/customer-{i}\"]\n"),
    ));
    let eff = resolve(&inputs).unwrap();
    let out = eff
        .export_managed(&Relocate {
            workspace: "/workspace".into(),
            secrets_dir: "/etc/cordon-secrets".into(),
            secret_file: "value".into(),
        })
        .unwrap();
    Policy {
        toml: out.toml,
        secrets: out.secrets,
        egress: eff.network.egress(),
        max_age: eff.limits.max_age.value,
    }
}

fn opts(i: usize) -> Options {
    Options {
        name: Some(format!("app-{i}")),
        image: "registry.example/agent:1".into(),
        runtime_class: Some("kata-qemu".into()),
        weaker: false,
        namespace: Some("agents".into()),
        command: vec!["claude".into(), format!("--task={i}")],
        now: 1_800_000_000,
        workspace_size: "10Gi".into(),
        seccomp: Seccomp::RuntimeDefault,
    }
}

fn main() {
    const N: usize = 1000;
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..N {
        bytes += render(&policy(i), &opts(i), &Mode::Sandbox)
            .unwrap()
            .yaml
            .len();
    }
    let full = t.elapsed();
    let p = policy(0);
    let t = Instant::now();
    for i in 0..N {
        bytes += render(&p, &opts(i), &Mode::Sandbox).unwrap().yaml.len();
    }
    let only = t.elapsed();
    println!(
        "cordon kube render, {N} distinct sandboxes ({} KiB of YAML in all):",
        bytes / 1024
    );
    println!(
        "  policy tiers + export + render: {:8.1} ms total, {:6.1} µs each",
        full.as_secs_f64() * 1e3,
        full.as_secs_f64() * 1e6 / N as f64
    );
    println!(
        "  render alone:                   {:8.1} ms total, {:6.1} µs each",
        only.as_secs_f64() * 1e3,
        only.as_secs_f64() * 1e6 / N as f64
    );
}
