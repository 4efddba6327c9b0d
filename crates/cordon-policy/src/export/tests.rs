use super::*;
use crate::{parse_policy, resolve, Inputs};
use std::collections::BTreeSet;

const USER: &str = r#"
[filesystem]
allow_write = ["~/src/lib", "/home/u/src/app/out"]
deny_read = ["~/work/customer"]
protect = ["Makefile.local", "~/.toolrc"]

[env]
pass = ["CARGO_HOME"]
[env.set]
RUST_LOG = "info"

[limits]
max_tasks = 900

[lifecycle]
max_age = "36h"

[network]
allow = ["api.example.com", "git.example.com:22", "*.cdn.example.net"]
deny = ["gist.example.com"]
allow_cidrs = ["10.20.0.0/16:5432", "192.168.7.9"]
[network.hosts]
"db.internal" = "10.20.0.5"

[secrets.GITHUB_TOKEN]
from_env = "GITHUB_TOKEN"
hosts = ["api.github.com"]

[requests."api.github.com"]
allow = ["GET /**"]
"#;

fn eff(user: &str) -> Effective {
    let mut inputs = Inputs::new("/home/u", "/home/u/src/app");
    inputs.user.push((
        "/home/u/.config/cordon/policy.toml".into(),
        user.to_string(),
    ));
    resolve(&inputs).unwrap()
}

fn to() -> Relocate {
    Relocate {
        workspace: "/workspace".into(),
        secrets_dir: "/etc/cordon/secrets".into(),
        secret_file: "value".into(),
    }
}

/// The exported file, loaded as the managed tier of a pod with another home and workspace,
/// gives the same rules there.
#[test]
fn export_round_trips_as_managed_tier() {
    let out = eff(USER).export_managed(&to()).unwrap();
    let file = std::path::Path::new("/etc/cordon/policy.toml");
    parse_policy(file, &out.toml, Tier::Managed, "/home/agent".as_ref()).unwrap();
    let mut inputs = Inputs::new("/home/agent", "/workspace");
    inputs.managed = Some((file.into(), out.toml.clone()));
    let pod = resolve(&inputs).unwrap();
    let writes = pod.allow_write_paths();
    assert!(writes.contains(&"/home/agent/src/lib".into()), "{writes:?}");
    assert!(writes.contains(&"/workspace/out".into()), "{writes:?}");
    assert!(pod.is_read_denied("/home/agent/work/customer".as_ref()));
    assert!(pod.is_read_denied("/etc/cordon/secrets/GITHUB_TOKEN/value".as_ref()));
    assert!(pod.is_read_denied("/home/agent/.ssh/id_rsa".as_ref()));
    let protect = pod.protect_set().unwrap();
    assert!(protect
        .matches("/workspace/a/Makefile.local".as_ref())
        .is_some());
    assert!(protect.matches("/home/agent/.toolrc".as_ref()).is_some());
    assert_eq!(pod.limits.max_tasks.value, 900);
    assert_eq!(pod.limits.max_age.value, 36 * 3600);
    assert_eq!(pod.limits.max_tasks.origin.tier, Tier::Managed);
    let allow: Vec<_> = pod.network.allow.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(
        allow,
        ["api.example.com", "git.example.com:22", "*.cdn.example.net"]
    );
    assert_eq!(pod.network.hosts[0].value.1.to_string(), "10.20.0.5");
    let s = &pod.secrets[0].value;
    assert_eq!(s.name, "GITHUB_TOKEN");
    assert_eq!(
        s.source,
        crate::SecretSource::File("/etc/cordon/secrets/GITHUB_TOKEN/value".into())
    );
    let allow: Vec<&str> = pod.requests[0]
        .value
        .allow
        .iter()
        .map(|r| r.text.as_str())
        .collect();
    assert_eq!(allow, ["GET /**"]);
    assert_eq!(pod.env_set[0].value.0, "RUST_LOG");
    assert_eq!(out.secrets, ["GITHUB_TOKEN"]);
}

#[test]
fn export_keeps_origins_and_leaves_builtin_data_out() {
    let out = eff(USER).export_managed(&to()).unwrap();
    assert!(
        out.toml
            .contains("\"~/src/lib\",  # user /home/u/.config/cordon/policy.toml:3"),
        "{}",
        out.toml
    );
    assert!(
        out.toml
            .contains("max_age = 129600  # user /home/u/.config/cordon/policy.toml:16"),
        "{}",
        out.toml
    );
    // ~/.ssh comes from the built-in data the pod's cordon carries itself.
    assert!(!out.toml.contains("~/.ssh"), "{}", out.toml);
    // The secret's value is never here, only where the pod reads it.
    assert!(out
        .toml
        .contains("from_file = \"/etc/cordon/secrets/GITHUB_TOKEN/value\""));
}

#[test]
fn export_is_deterministic() {
    let a = eff(USER).export_managed(&to()).unwrap();
    let b = eff(USER).export_managed(&to()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn export_refuses_secret_looking_env_set() {
    let e = eff("[env.set]\nAPI_TOKEN = \"x\"\n");
    let err = e.export_managed(&to()).unwrap_err();
    assert!(err.contains("[secrets.API_TOKEN]"), "{err}");
}

#[test]
fn export_of_defaults_is_valid_and_empty_of_rules() {
    let out = eff("").export_managed(&to()).unwrap();
    parse_policy("/p".as_ref(), &out.toml, Tier::Managed, "/h".as_ref()).unwrap();
    assert!(!out.toml.contains('['), "{}", out.toml);
}

#[test]
fn egress_ports_and_cidrs() {
    let e = eff(USER).network.egress();
    assert_eq!(e.public_ports, Some(BTreeSet::from([22, 80, 443])));
    assert_eq!(
        e.cidrs,
        vec![
            ("10.20.0.0/16".to_string(), Some(BTreeSet::from([5432]))),
            // Without a port the block admits allowed names on their rules' ports too.
            (
                "192.168.7.9/32".to_string(),
                Some(BTreeSet::from([22, 80, 443]))
            ),
        ]
    );
    let any = eff("[network]\nallow = [\"x.example:*\"]\nunknown = \"deny\"\n")
        .network
        .egress();
    assert_eq!(any.public_ports, None);
    let none = eff("[network]\nunknown = \"deny\"\n").network.egress();
    assert_eq!(none.public_ports, Some(BTreeSet::new()));
}

#[test]
fn special_cidrs_spelled() {
    let v4 = crate::special::v4_special_cidrs();
    assert!(v4.contains(&"169.254.0.0/16".to_string()));
    assert!(v4.contains(&"100.64.0.0/10".to_string()));
    let v6 = crate::special::v6_special_cidrs();
    assert!(v6.contains(&"fc00::/7".to_string()));
    assert!(v6.contains(&"::1/128".to_string()));
}
