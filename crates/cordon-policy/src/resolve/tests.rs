use std::ffi::OsString;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::layer::CliLayer;

const HOME: &str = "/home/u";
const WS: &str = "/home/u/src/app";

fn inputs() -> Inputs {
    Inputs::new(HOME, WS)
}

fn managed(text: &str) -> Option<(PathBuf, String)> {
    Some((PathBuf::from("/etc/cordon/policy.toml"), text.to_string()))
}

fn user(text: &str) -> Vec<(PathBuf, String)> {
    vec![(
        PathBuf::from("/home/u/.config/cordon/policy.toml"),
        text.to_string(),
    )]
}

fn project(text: &str) -> Option<(PathBuf, String)> {
    Some((
        PathBuf::from("/home/u/src/app/.cordon.toml"),
        text.to_string(),
    ))
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn defaults_only() {
    let eff = resolve(&inputs()).unwrap();
    let denies = eff.deny_read_effective();
    assert!(denies.contains(&p("/home/u/.ssh")));
    assert!(denies.contains(&p("/home/u/.aws")));
    assert!(eff.allow_read_reopen().is_empty());
    assert!(eff.allow_write.is_empty());
    assert_eq!(eff.limits.max_tasks.value, 4096);
    assert_eq!(eff.limits.memory_mb.value, 8192);
    assert_eq!(eff.limits.layer_mb.value, 2048);
    assert_eq!(eff.limits.max_tasks.origin.tier, Tier::Builtin);
    assert_eq!(eff.network.unknown.value, UnknownAction::Ask);
    assert_eq!(eff.approval.timeout.value, 60);
    assert!(!eff.approval.session_scope.value);
    assert!(eff.warnings.is_empty(), "{:?}", eff.warnings);
    assert!(eff.is_read_denied(Path::new("/home/u/.ssh/id_ed25519")));
    assert!(!eff.is_read_denied(Path::new("/home/u/.sshx")));
    assert!(!eff.is_read_denied(Path::new(WS)));
}

#[test]
fn builtin_deny_can_be_reopened_by_user_and_cli() {
    let mut i = inputs();
    i.user = user("[filesystem]\nallow_read = [\"~/.aws/config\", \"~/.gnupg\"]\n");
    i.cli.allow_read = vec![p("~/.kube/config")];
    let eff = resolve(&i).unwrap();
    let denies = eff.deny_read_effective();
    // Exact re-open lifts the deny; a path inside stays a hole in a still-hidden directory.
    assert!(!denies.contains(&p("/home/u/.gnupg")));
    assert!(denies.contains(&p("/home/u/.aws")));
    assert_eq!(
        eff.allow_read_reopen(),
        vec![p("/home/u/.aws/config"), p("/home/u/.kube/config")]
    );
    assert!(!eff.is_read_denied(Path::new("/home/u/.aws/config")));
    assert!(eff.is_read_denied(Path::new("/home/u/.aws/credentials")));
    assert!(!eff.is_read_denied(Path::new("/home/u/.gnupg/pubring.kbx")));
    assert!(eff.warnings.is_empty(), "{:?}", eff.warnings);
}

#[test]
fn managed_deny_is_final() {
    let mut i = inputs();
    i.managed = managed("[filesystem]\ndeny_read = [\"/srv/secret\", \"~/.aws\"]\n");
    i.user = user("[filesystem]\nallow_read = [\"/srv/secret\", \"~/.aws/config\"]\n");
    i.cli.allow_read = vec![p("/srv/secret/sub")];
    let eff = resolve(&i).unwrap();
    let denies = eff.deny_read_effective();
    assert!(denies.contains(&p("/srv/secret")));
    assert!(denies.contains(&p("/home/u/.aws")));
    assert!(eff.allow_read_reopen().is_empty());
    assert!(eff.allow_read.is_empty());
    assert!(eff.is_read_denied(Path::new("/srv/secret/sub/x")));
    assert!(eff.is_read_denied(Path::new("/home/u/.aws/config")));
    assert_eq!(eff.warnings.len(), 3, "{:?}", eff.warnings);
    assert!(eff.warnings[0]
        .contains("cannot re-open deny_read `/srv/secret` set by the stronger managed tier"));
    // Managed may re-open its own and weaker denies.
    let mut i = inputs();
    i.managed = managed("[filesystem]\nallow_read = [\"~/.ssh/known_hosts\"]\n");
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.allow_read_reopen(), vec![p("/home/u/.ssh/known_hosts")]);
}

#[test]
fn user_deny_cannot_be_reopened_by_trusted_project() {
    let mut i = inputs();
    i.user = user("[filesystem]\ndeny_read = [\"/data/private\"]\n");
    i.project = project("[filesystem]\nallow_read = [\"/data/private\", \"~/.aws\"]\n");
    i.project_trusted = true;
    let eff = resolve(&i).unwrap();
    assert!(eff.deny_read_effective().contains(&p("/data/private")));
    // ... but the builtin deny is weaker than the (trusted) project tier.
    assert!(!eff.deny_read_effective().contains(&p("/home/u/.aws")));
    assert_eq!(eff.warnings.len(), 1, "{:?}", eff.warnings);
}

const LOOSENING_PROJECT: &str = r#"
[filesystem]
allow_write = ["/data/out"]
allow_read = ["~/.ssh"]
deny_read = ["/data/keys"]
protect = ["Makefile.local"]
[env]
pass = ["*"]
[env.set]
TOKEN = "s3cr3t-value"
[limits]
max_tasks = 100
memory_mb = 999999
[network]
allow = ["evil.example"]
allow_cidrs = ["0.0.0.0/0"]
unknown = "ask"
[network.hosts]
"github.com" = "198.18.0.66"
[approval]
timeout = 999999
session_scope = true
[requests."api.example.com"]
allow = ["GET /**"]
"#;

#[test]
fn untrusted_project_only_tightens() {
    let mut i = inputs();
    i.project = project(LOOSENING_PROJECT);
    let eff = resolve(&i).unwrap();
    assert!(eff.allow_write.is_empty());
    assert!(eff.allow_read.is_empty());
    assert!(eff.deny_read_effective().contains(&p("/home/u/.ssh")));
    assert!(eff.deny_read_effective().contains(&p("/data/keys")));
    assert_eq!(eff.protect.len(), 1);
    assert!(eff.env_pass.is_empty());
    assert!(eff.env_set.is_empty());
    assert_eq!(eff.limits.max_tasks.value, 100);
    assert_eq!(eff.limits.max_tasks.origin.tier, Tier::Project);
    assert_eq!(eff.limits.memory_mb.value, 8192);
    assert!(eff.network.allow.is_empty());
    assert!(eff.network.allow_cidrs.is_empty());
    assert!(eff.network.hosts.is_empty());
    assert_eq!(eff.network.unknown.value, UnknownAction::Ask);
    assert_eq!(eff.network.unknown.origin.tier, Tier::Builtin);
    assert_eq!(eff.approval.timeout.value, 60);
    assert!(!eff.approval.session_scope.value);
    let w = eff.warnings.join("\n");
    for key in [
        "allow_write `/data/out` ignored: the project policy is not trusted",
        "allow_read `/home/u/.ssh` ignored",
        "env.pass `*` ignored",
        "env.set `TOKEN` ignored",
        "network.allow `evil.example` ignored",
        "network.allow_cidrs",
        "network.hosts `github.com` ignored",
        "network.unknown = \"ask\" ignored",
        "approval.timeout ignored",
        "approval.session_scope ignored",
        "limits.memory_mb = 999999 ignored",
    ] {
        assert!(w.contains(key), "missing warning {key:?} in\n{w}");
    }
    assert!(!w.contains("s3cr3t-value"));
    assert!(w.contains("project /home/u/src/app/.cordon.toml:3"), "{w}");
}

#[test]
fn trusted_project_may_allow_but_never_env_approval_secrets() {
    let mut i = inputs();
    i.project = project(LOOSENING_PROJECT);
    i.project_trusted = true;
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.allow_write_paths(), vec![p("/data/out")]);
    assert!(!eff.deny_read_effective().contains(&p("/home/u/.ssh")));
    assert_eq!(eff.network.allow.len(), 1);
    assert!(eff.env_pass.is_empty() && eff.env_set.is_empty());
    assert!(eff.network.allow_cidrs.is_empty() && eff.network.hosts.is_empty());
    assert!(!eff.approval.session_scope.value);
    let w = eff.warnings.join("\n");
    assert!(!w.contains("allow_write"), "{w}");
    assert!(w.contains("env.set `TOKEN` ignored: a project policy may never"));
    assert_eq!(
        eff.requests.len(),
        1,
        "request rules may come from a project: they only narrow"
    );
}

#[test]
fn project_deny_network_unknown_tightens() {
    let mut i = inputs();
    i.user = user("[network]\nunknown = \"ask\"\n");
    i.project = project("[network]\nunknown = \"deny\"\ndeny = [\"x.example\"]\n");
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.network.unknown.value, UnknownAction::Deny);
    assert_eq!(eff.network.unknown.origin.tier, Tier::Project);
    assert_eq!(eff.network.deny.len(), 1);
}

#[test]
fn limits_are_ceilings_from_stronger_tiers() {
    let mut i = inputs();
    i.managed = managed("[limits]\nmax_tasks = 1000\n");
    i.user = user("[limits]\nmax_tasks = 2000\nmemory_mb = 16384\nlayer_mb = 512\n");
    i.project = project("[limits]\nlayer_mb = 4096\n");
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.limits.max_tasks.value, 1000);
    assert_eq!(eff.limits.max_tasks.origin.tier, Tier::Managed);
    // The user may raise a default the managed tier did not cap.
    assert_eq!(eff.limits.memory_mb.value, 16384);
    assert_eq!(eff.limits.layer_mb.value, 512);
    assert!(
        eff.warnings[0].contains("limits.layer_mb = 4096 ignored"),
        "{:?}",
        eff.warnings
    );
}

#[test]
fn max_age_defaults_to_a_week_and_managed_is_a_ceiling() {
    assert_eq!(resolve(&inputs()).unwrap().limits.max_age.value, 7 * 86400);
    let mut i = inputs();
    i.managed = managed("[lifecycle]\nmax_age = \"1d\"\n");
    i.user = user("[lifecycle]\nmax_age = \"30d\"\n");
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.limits.max_age.value, 86400);
    assert_eq!(eff.limits.max_age.origin.tier, Tier::Managed);
    // Below the ceiling the user may lower it; a project only lowers.
    let mut i = inputs();
    i.user = user("[lifecycle]\nmax_age = \"36h\"\n");
    i.project = project("[lifecycle]\nmax_age = 999999\n");
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.limits.max_age.value, 36 * 3600);
    assert!(
        eff.warnings
            .iter()
            .any(|w| w.contains("lifecycle.max_age = 999999 ignored")),
        "{:?}",
        eff.warnings
    );
}

#[test]
fn env_merging() {
    let mut i = inputs();
    i.managed = managed("[env.set]\nPINNED = \"managed\"\n");
    i.user = vec![
        (
            p("/u.toml"),
            "[env]\npass = [\"CARGO_*\"]\n[env.set]\nA = \"user\"\nPINNED = \"user\"\n".into(),
        ),
        (
            p("/p.toml"),
            "[env.set]\nA = \"dash-p\"\nB = \"dash-p\"\n".into(),
        ),
    ];
    i.cli.env = vec!["B=cli".into(), "RUST_LOG".into(), "PINNED=cli".into()];
    let eff = resolve(&i).unwrap();
    let set: Vec<(String, OsString)> = eff.env_set.iter().map(|r| r.value.clone()).collect();
    assert_eq!(
        set,
        vec![
            ("A".into(), "dash-p".into()),
            ("B".into(), "cli".into()),
            ("PINNED".into(), "managed".into()),
        ]
    );
    let pass: Vec<&str> = eff.env_pass.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(pass, vec!["CARGO_*", "RUST_LOG"]);
}

#[test]
fn approval_merging() {
    let mut i = inputs();
    i.managed = managed("[approval]\nsession_scope = false\ntimeout = 30\n");
    i.user = user("[approval]\nsession_scope = true\ntimeout = 300\n");
    let eff = resolve(&i).unwrap();
    assert!(!eff.approval.session_scope.value);
    assert_eq!(eff.approval.timeout.value, 30);
    let mut i = inputs();
    i.user = user("[approval]\nsession_scope = true\ntimeout = 300\n");
    let eff = resolve(&i).unwrap();
    assert!(eff.approval.session_scope.value);
    assert_eq!(eff.approval.timeout.value, 300);
}

#[test]
fn workspace_and_allow_write_checks() {
    for ws in ["/", "/home", HOME, "/home/u/"] {
        let e = resolve(&Inputs::new(HOME, ws)).unwrap_err().to_string();
        assert!(e.starts_with("workspace "), "{e}");
        assert!(!e.contains('\n'));
    }
    let e = resolve(&Inputs::new(HOME, "relative"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not absolute"), "{e}");
    let mut i = inputs();
    i.user = user("\n[filesystem]\nallow_write = [\"/tmp/ok\", \"/home\"]\n");
    let e = resolve(&i).unwrap_err().to_string();
    assert_eq!(
        e,
        "/home/u/.config/cordon/policy.toml:3:27: allow_write `/home` is an ancestor of $HOME; only directories below $HOME (or outside it) can be writable"
    );
    let mut i = inputs();
    i.cli.allow_write = vec![p("~")];
    assert!(resolve(&i)
        .unwrap_err()
        .to_string()
        .starts_with("--allow-write ~:"));
    assert!(check_workspace(Path::new(HOME), Path::new("/home/u/x")).is_ok());
}

#[test]
fn deny_beats_allow_write_and_hidden_workspace_is_refused() {
    let mut i = inputs();
    i.cli.allow_write = vec![p("~/.aws/cli"), p("/data/ok")];
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.allow_write_paths(), vec![p("/data/ok")]);
    assert!(
        eff.warnings[0].contains("allow_write `/home/u/.aws/cli` ignored"),
        "{:?}",
        eff.warnings
    );
    let e = resolve(&Inputs::new(HOME, "/home/u/.ssh/x"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("inside a deny_read path"), "{e}");
}

#[test]
fn digest_is_stable_and_tracks_content_not_origin() {
    let mut a = inputs();
    a.user = user("[filesystem]\ndeny_read = [\"/data/x\"]\n");
    let mut b = inputs();
    b.user = vec![(
        p("/elsewhere.toml"),
        "\n\n[filesystem]\ndeny_read = [\"/data/x\"]\n".into(),
    )];
    let da = resolve(&a).unwrap().digest();
    assert_eq!(da.len(), 64);
    assert_eq!(da, resolve(&a).unwrap().digest());
    assert_eq!(da, resolve(&b).unwrap().digest());
    let mut c = a.clone();
    c.cli.deny_read = vec![p("/data/y")];
    assert_ne!(da, resolve(&c).unwrap().digest());
    let mut d = a.clone();
    d.cli.env = vec!["X=1".into()];
    let mut e = a.clone();
    e.cli.env = vec!["X=2".into()];
    assert_ne!(resolve(&d).unwrap().digest(), resolve(&e).unwrap().digest());
}

#[test]
fn render_lists_rules_with_origins_and_hides_values() {
    let mut i = inputs();
    i.user = user(
        "[filesystem]\nallow_read = [\"~/.aws/config\"]\n[env.set]\nAPI = \"very-secret-value\"\n",
    );
    i.cli.allow_write = vec![p("/data/out")];
    i.project = project("[env.set]\nX = \"other-secret\"\n");
    let eff = resolve(&i).unwrap();
    let text = eff.render();
    assert!(
        text.contains("filesystem.allow_write /data/out  # cli\n"),
        "{text}"
    );
    assert!(
        text.contains("filesystem.deny_read /home/u/.ssh  # builtin data/builtin.toml:"),
        "{text}"
    );
    assert!(text.contains(
        "filesystem.allow_read /home/u/.aws/config  (re-opens inside a hidden path)  # user /home/u/.config/cordon/policy.toml:2"
    ), "{text}");
    assert!(
        text.contains("env.set API = <hidden>  # user /home/u/.config/cordon/policy.toml:4"),
        "{text}"
    );
    assert!(
        text.contains("limits.max_tasks 4096  # builtin data/builtin.toml:"),
        "{text}"
    );
    assert!(
        text.contains("warning: project /home/u/src/app/.cordon.toml:2: env.set `X` ignored"),
        "{text}"
    );
    assert!(!text.contains("very-secret-value") && !text.contains("other-secret"));
}

#[test]
fn bad_files_name_their_tier_file() {
    let mut i = inputs();
    i.project = project("[filesystem]\nalow_write = []\n");
    let e = resolve(&i).unwrap_err().to_string();
    assert!(
        e.starts_with("/home/u/src/app/.cordon.toml:2:1: unknown field `alow_write`"),
        "{e}"
    );
}

fn arb_path() -> impl Strategy<Value = String> {
    let comp = prop::sample::select(vec!["a", "b", "c", ".ssh", ".aws", "x"]);
    (
        prop::sample::select(vec!["/home/u", "/data", "/home/u/src"]),
        prop::collection::vec(comp, 0..3),
    )
        .prop_map(|(root, comps)| {
            let mut s = root.to_string();
            for c in comps {
                s.push('/');
                s.push_str(c);
            }
            s
        })
}

fn arb_tier_text() -> impl Strategy<Value = u8> {
    0u8..4
}

fn toml_list(key: &str, paths: &[String]) -> String {
    let items: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    format!("{key} = [{}]\n", items.join(", "))
}

fn build(denies: &[(u8, String)], allows: &[(u8, String)]) -> Inputs {
    let mut by_tier: [(Vec<String>, Vec<String>); 4] = Default::default();
    for (t, d) in denies {
        by_tier[usize::from(*t)].0.push(d.clone());
    }
    for (t, a) in allows {
        by_tier[usize::from(*t)].1.push(a.clone());
    }
    let text = |i: usize| {
        format!(
            "[filesystem]\n{}{}",
            toml_list("deny_read", &by_tier[i].0),
            toml_list("allow_read", &by_tier[i].1)
        )
    };
    let mut inputs = Inputs::new(HOME, "/work/ws");
    inputs.managed = Some((p("/m.toml"), text(0)));
    inputs.user = vec![(p("/u.toml"), text(1))];
    inputs.project = Some((p("/w/.cordon.toml"), text(2)));
    inputs.project_trusted = true;
    inputs.cli = CliLayer {
        deny_read: by_tier[3].0.iter().map(PathBuf::from).collect(),
        allow_read: by_tier[3].1.iter().map(PathBuf::from).collect(),
        ..Default::default()
    };
    inputs
}

proptest! {
    /// Adding a deny anywhere never un-hides a path that was hidden.
    #[test]
    fn adding_a_deny_is_monotone(
        denies in prop::collection::vec((arb_tier_text(), arb_path()), 0..5),
        allows in prop::collection::vec((arb_tier_text(), arb_path()), 0..5),
        extra in (arb_tier_text(), arb_path()),
        probes in prop::collection::vec(arb_path(), 1..8),
    ) {
        let before = resolve(&build(&denies, &allows)).unwrap();
        let mut more = denies.clone();
        more.push(extra);
        let after = resolve(&build(&more, &allows)).unwrap();
        for d in before.deny_read_effective() {
            prop_assert!(after.deny_read_effective().contains(&d), "{d:?} lost");
        }
        for probe in probes.iter().chain(denies.iter().map(|(_, d)| d)) {
            let probe = Path::new(probe);
            if before.is_read_denied(probe) {
                prop_assert!(after.is_read_denied(probe), "{probe:?} un-hidden");
            }
        }
        for w in after.allow_write_paths() {
            prop_assert!(!after.is_read_denied(&w));
        }
    }

    /// Whatever bytes a policy file holds, resolve returns Ok or a one-line error.
    #[test]
    fn resolve_never_panics(text in ".{0,200}") {
        let mut i = inputs();
        i.project = project(&text);
        if let Err(e) = resolve(&i) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }
}

#[test]
fn project_secret_is_an_error_naming_the_place() {
    let mut i = inputs();
    i.project = project(
        "[secrets.GITHUB_TOKEN]\nfrom_env = \"GITHUB_TOKEN\"\nhosts = [\"evil.example\"]\n",
    );
    let e = resolve(&i).unwrap_err().to_string();
    assert!(e.contains(".cordon.toml:1:"), "{e}");
    assert!(e.contains("may not define secrets"), "{e}");
    i.project_trusted = true;
    assert!(resolve(&i).is_err());
}

#[test]
fn secrets_merge_by_name_and_show_never_prints_values() {
    let mut i = inputs();
    i.managed = managed("[secrets.T]\nfrom_env = \"A\"\nhosts = [\"a.example\"]\n");
    i.user = user("[secrets.T]\nfrom_env = \"B\"\nhosts = [\"b.example\"]\n[secrets.U]\nfrom_command = [\"helper\", \"--token\"]\nttl = 60\nhosts = [\"u.example\"]\ninject = \"env\"\n[requests.\"u.example\"]\nallow = [\"GET /**\"]\n");
    let eff = resolve(&i).unwrap();
    assert_eq!(eff.secrets.len(), 2);
    let t = eff.secrets.iter().find(|r| r.value.name == "T").unwrap();
    assert_eq!(
        t.value.hosts,
        vec!["a.example".to_string()],
        "managed is final"
    );
    let text = eff.render();
    assert!(
        text.contains("secrets.U from_command hosts [u.example] inject env ttl 60"),
        "{text}"
    );
    assert!(!text.contains("--token"), "{text}");
    assert!(
        text.contains("secret T is sent to a.example, which has no request rules"),
        "{text}"
    );
    assert!(
        !text.contains("secret U is sent to u.example, which has no request rules"),
        "{text}"
    );
    assert!(text.contains("secret U has inject = \"env\""), "{text}");
}

#[test]
fn vm_kernel_comes_from_the_strongest_tier_and_never_the_project() {
    let mut i = inputs();
    i.managed = managed("[vm]\nkernel = \"/boot/vmlinuz-managed\"\n");
    i.user = user("[vm]\nkernel = \"~/kernels/vmlinuz-mine\"\n");
    i.project = project("[vm]\nkernel = \"/tmp/evil-kernel\"\n");
    i.project_trusted = true;
    let eff = resolve(&i).unwrap();
    let k = eff.vm_kernel.as_ref().map(|r| r.value.clone());
    assert_eq!(k, Some(p("/boot/vmlinuz-managed")));
    assert!(eff
        .warnings
        .join("\n")
        .contains("vm.kernel `/tmp/evil-kernel` ignored"));
    let mut i = inputs();
    i.user = user("[vm]\nkernel = \"~/kernels/vmlinuz-mine\"\n");
    let eff = resolve(&i).unwrap();
    let k = eff.vm_kernel.as_ref().map(|r| r.value.clone());
    assert_eq!(k, Some(p("/home/u/kernels/vmlinuz-mine")));
    let mut i = inputs();
    i.user = user("[vm]\nkernal = \"x\"\n");
    assert!(resolve(&i).is_err(), "unknown keys are errors");
}
