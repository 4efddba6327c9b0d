use std::ffi::OsString;

use super::*;
use crate::resolve::{resolve, Inputs};

fn eff(user_toml: &str, cli_env: &[&str]) -> Effective {
    let mut i = Inputs::new("/home/u", "/home/u/ws");
    i.user = vec![("/u.toml".into(), user_toml.to_string())];
    i.cli.env = cli_env.iter().map(OsString::from).collect();
    resolve(&i).unwrap()
}

fn host() -> Vec<(OsString, OsString)> {
    [
        ("PATH", "/usr/bin"),
        ("HOME", "/home/u"),
        ("TERM", "xterm"),
        ("LC_ALL", "C.UTF-8"),
        ("LANG", "C.UTF-8"),
        ("FOO", "foo"),
        ("CARGO_HOME", "/home/u/.cargo"),
        ("CARGO_REGISTRY_TOKEN", "cio_secret"),
        ("GITHUB_TOKEN", "ghp_secret"),
        ("GH_HOST", "github.com"),
        ("AWS_PROFILE", "prod"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret"),
        ("OPENAI_API_KEY", "sk-secret"),
        ("ANTHROPIC_API_KEY", "sk-ant-secret"),
        ("SSH_AUTH_SOCK", "/run/user/1000/ssh"),
        ("MY_PAT", "pat"),
        ("DB_PASSWORD", "pw"),
        ("PWD", "/home/u/ws"),
        ("SESSION_COOKIE", "c"),
        ("RUST_LOG", "debug"),
    ]
    .iter()
    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
    .collect()
}

fn names(env: &[(OsString, OsString)]) -> Vec<String> {
    env.iter()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn only_the_allowlist_passes_by_default() {
    let out = scrub_env(host().into_iter(), &eff("", &[]));
    assert_eq!(names(&out), vec!["HOME", "LANG", "LC_ALL", "PATH", "TERM"]);
}

#[test]
fn globs_never_pass_secret_looking_names() {
    let out = scrub_env(host().into_iter(), &eff("[env]\npass = [\"*\"]\n", &[]));
    let n = names(&out);
    for ok in ["FOO", "CARGO_HOME", "PWD", "RUST_LOG", "PATH"] {
        assert!(n.contains(&ok.to_string()), "{ok} missing from {n:?}");
    }
    for secret in [
        "CARGO_REGISTRY_TOKEN",
        "GITHUB_TOKEN",
        "GH_HOST",
        "AWS_PROFILE",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "SSH_AUTH_SOCK",
        "MY_PAT",
        "DB_PASSWORD",
        "SESSION_COOKIE",
    ] {
        assert!(!n.contains(&secret.to_string()), "{secret} leaked");
    }
    let out = scrub_env(
        host().into_iter(),
        &eff("[env]\npass = [\"AWS_*\", \"CARGO_*\"]\n", &[]),
    );
    let n = names(&out);
    assert!(n.contains(&"CARGO_HOME".to_string()));
    assert!(!n
        .iter()
        .any(|x| x.starts_with("AWS_") || x == "CARGO_REGISTRY_TOKEN"));
}

#[test]
fn exact_names_pass_even_if_secret_looking() {
    let out = scrub_env(
        host().into_iter(),
        &eff(
            "[env]\npass = [\"AWS_PROFILE\"]\n",
            &["GITHUB_TOKEN", "NEW=1", "FOO=override"],
        ),
    );
    let map: std::collections::BTreeMap<_, _> = out.into_iter().collect();
    assert_eq!(
        map.get(&OsString::from("AWS_PROFILE")),
        Some(&OsString::from("prod"))
    );
    assert_eq!(
        map.get(&OsString::from("GITHUB_TOKEN")),
        Some(&OsString::from("ghp_secret"))
    );
    assert_eq!(map.get(&OsString::from("NEW")), Some(&OsString::from("1")));
    assert_eq!(
        map.get(&OsString::from("FOO")),
        Some(&OsString::from("override"))
    );
    assert!(!map.contains_key(&OsString::from("OPENAI_API_KEY")));
}

#[test]
fn set_overrides_host_and_output_is_unique() {
    let mut h = host();
    h.push(("PATH".into(), "/evil".into()));
    let out = scrub_env(
        h.into_iter(),
        &eff("[env.set]\nPATH = \"/sandbox/bin\"\n", &[]),
    );
    let paths: Vec<_> = out.iter().filter(|(k, _)| k == "PATH").collect();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].1, OsString::from("/sandbox/bin"));
}

#[test]
fn malformed_host_entries_are_dropped() {
    let h = vec![
        (OsString::from(""), OsString::from("x")),
        (OsString::from("A=B"), OsString::from("x")),
        (OsString::from("TERM"), OsString::from("a\0b")),
    ];
    assert!(scrub_env(h.into_iter(), &eff("[env]\npass = [\"*\"]\n", &[])).is_empty());
}

#[test]
fn secret_names() {
    for s in [
        "GITHUB_TOKEN",
        "github_token",
        "NPM_TOKEN",
        "MY_PAT",
        "GH_ENTERPRISE_TOKEN",
        "AWS_REGION",
        "STRIPE_KEY",
        "MYSQL_PWD",
        "SENTRY_DSN",
        "DATABASE_URL",
        "X_AUTH_HEADER",
        "PGPASSWORD",
        "HF_TOKEN",
        "VAULT_ADDR",
        "DOCKER_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "KUBECONFIG",
        "SSH_AUTH_SOCK",
        "GPG_AGENT_INFO",
        "ANTHROPIC_API_KEY",
        "OP_SESSION_my",
    ] {
        assert!(looks_secret(s), "{s}");
    }
    for s in [
        "PATH",
        "HOME",
        "PWD",
        "OLDPWD",
        "CARGO_HOME",
        "RUST_LOG",
        "LANG",
        "EDITOR",
        "NODE_ENV",
        "KEYBOARD",
    ] {
        assert!(!looks_secret(s), "{s}");
    }
}
