//! `cordon kube render` and `cordon kube check`, through the library: golden output, the
//! outer walls each object carries, and the checker against planted mistakes.
//!
//! The agent-sandbox CRDs are test data outside the repository: `../shared/k8s/agent-sandbox/`
//! from the repository root (or `CORDON_KUBE_CRDS`). Without them the CRD checks print SKIP.
#![allow(clippy::unwrap_used)]

use cordon_kube::check::{check, Finding, Schemas};
use cordon_kube::{render, render_claim, Mode, Options, Policy, Seccomp};
use cordon_policy::{resolve, Inputs, Relocate};
use serde_json::Value;
use std::path::PathBuf;

const NOW: u64 = 1_800_000_000; // 2027-01-15T08:00:00Z

const USER_POLICY: &str = r#"
[network]
allow = ["api.anthropic.com", "github.com", "git.example.com:22"]
allow_cidrs = ["10.20.0.0/16:5432"]

[lifecycle]
max_age = "36h"

[secrets.GITHUB_TOKEN]
from_env = "GITHUB_TOKEN"
hosts = ["api.github.com", "github.com"]

[requests."api.github.com"]
allow = ["GET /**"]
"#;

fn policy(user: &str) -> Policy {
    let mut inputs = Inputs::new("/home/dev", "/home/dev/src/app");
    inputs.user.push((
        "/home/dev/.config/cordon/policy.toml".into(),
        user.to_string(),
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

fn opts(name: Option<&str>) -> Options {
    Options {
        name: name.map(str::to_string),
        image: "registry.example/agent:1".into(),
        runtime_class: Some("kata-qemu".into()),
        weaker: false,
        namespace: Some("agents".into()),
        command: vec!["claude".into()],
        now: NOW,
        workspace_size: "10Gi".into(),
        seccomp: Seccomp::RuntimeDefault,
    }
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn kind<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == k).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        actual, expected,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it after review)"
    );
}

fn skip(test: &str, why: &str) {
    // std::io::stderr() is not captured by libtest (the print macros are).
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("SKIP {test}: {why}\n").as_bytes());
    test_summary::record("SKIP", test, why);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("cordon-it-skips.txt"))
    {
        use std::io::Write;
        let _ = writeln!(f, "SKIP {test}: {why}");
    }
}

fn crd_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CORDON_KUBE_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s/agent-sandbox")
        });
    dir.join("agents.x-k8s.io_sandboxes.yaml")
        .is_file()
        .then_some(dir)
}

fn schemas(test: &str) -> Option<Schemas> {
    match crd_dir() {
        Some(d) => Some(Schemas::load(Some(&d)).unwrap()),
        None => {
            skip(
                test,
                "agent-sandbox CRDs not found at ../shared/k8s/agent-sandbox (or CORDON_KUBE_CRDS)",
            );
            None
        }
    }
}

fn errors(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.error).collect()
}

#[test]
fn golden_named_sandbox() {
    let r = render(&policy(USER_POLICY), &opts(Some("app")), &Mode::Sandbox).unwrap();
    golden("sandbox-app.yaml", &r.yaml);
}

#[test]
fn golden_template_and_warm_pool() {
    let mode = Mode::Template {
        name: "team".into(),
        warm: 20,
    };
    let r = render(&policy(USER_POLICY), &opts(None), &mode).unwrap();
    golden("template-team.yaml", &r.yaml);
}

#[test]
fn golden_claim() {
    let y = render_claim("team", "team-alice", Some("agents"), NOW, 3600).unwrap();
    golden("claim-team.yaml", &y);
}

#[test]
fn rendering_is_deterministic_and_distinct() {
    let p = policy(USER_POLICY);
    let a = render(&p, &opts(None), &Mode::Sandbox).unwrap();
    let b = render(&p, &opts(None), &Mode::Sandbox).unwrap();
    assert_eq!(a, b);
    let mut other = opts(None);
    other.command = vec!["codex".into()];
    let c = render(&p, &other, &Mode::Sandbox).unwrap();
    assert_ne!(a.yaml, c.yaml);
    assert_ne!(
        kind(&docs(&a.yaml), "Sandbox")["metadata"]["name"],
        kind(&docs(&c.yaml), "Sandbox")["metadata"]["name"]
    );
}

#[test]
fn pod_runs_cordon_with_the_policy_as_managed_tier() {
    let r = render(&policy(USER_POLICY), &opts(Some("app")), &Mode::Sandbox).unwrap();
    let d = docs(&r.yaml);
    let cm = kind(&d, "ConfigMap");
    let toml = cm["data"]["policy.toml"].as_str().unwrap();
    // The managed file parses and keeps the origins of the rendering machine.
    cordon_policy::parse_policy(
        "/etc/cordon/policy.toml".as_ref(),
        toml,
        cordon_policy::Tier::Managed,
        "/home/agent".as_ref(),
    )
    .unwrap();
    assert!(
        toml.contains("# user /home/dev/.config/cordon/policy.toml:3"),
        "{toml}"
    );
    let sb = kind(&d, "Sandbox");
    let pod = &sb["spec"]["podTemplate"]["spec"];
    let c = &pod["containers"][0];
    let cmd: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        cmd,
        [
            "cordon",
            "run",
            "--no-auto-profile",
            "-w",
            "/workspace",
            "--audit",
            "-",
            "--name",
            "app",
            "--",
            "claude"
        ]
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    let policy_mount = mounts
        .iter()
        .find(|m| m["mountPath"] == "/etc/cordon")
        .unwrap();
    assert_eq!(policy_mount["readOnly"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["hostUsers"], false);
    assert_eq!(pod["runtimeClassName"], "kata-qemu");
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(sc["procMount"], "Unmasked");
    assert!(sc.get("privileged").is_none() && sc["capabilities"].get("add").is_none());
    // Each setting says why, on its line.
    for key in [
        "procMount: Unmasked  # measured",
        "hostUsers: false  # ",
        "readOnlyRootFilesystem: true  # measured",
    ] {
        assert!(r.yaml.contains(key), "no comment for {key}");
    }
}

#[test]
fn secrets_are_read_only_mounts_never_env() {
    let r = render(&policy(USER_POLICY), &opts(None), &Mode::Sandbox).unwrap();
    let d = docs(&r.yaml);
    let pod = &kind(&d, "Sandbox")["spec"]["podTemplate"]["spec"];
    let c = &pod["containers"][0];
    // The only variable is HOME; no valueFrom (secretKeyRef) anywhere, no envFrom.
    assert_eq!(c["env"].as_array().unwrap().len(), 1);
    assert_eq!(c["env"][0]["name"], "HOME");
    assert!(c.get("envFrom").is_none());
    assert!(!r.yaml.contains("secretKeyRef"));
    let m = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/cordon-secrets/GITHUB_TOKEN")
        .unwrap();
    assert_eq!(m["readOnly"], true);
    let v = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == m["name"])
        .unwrap();
    assert_eq!(v["secret"]["secretName"], "cordon-github-token");
    let toml = kind(&d, "ConfigMap")["data"]["policy.toml"]
        .as_str()
        .unwrap();
    assert!(
        toml.contains("from_file = \"/etc/cordon-secrets/GITHUB_TOKEN/value\""),
        "{toml}"
    );
    assert!(
        toml.contains("\"/etc/cordon-secrets\",  # "),
        "the secrets directory is not hidden:\n{toml}"
    );
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("kubectl create secret generic cordon-github-token")));
}

#[test]
fn network_policy_no_ingress_dns_and_allowed_ports_only() {
    let r = render(&policy(USER_POLICY), &opts(None), &Mode::Sandbox).unwrap();
    let d = docs(&r.yaml);
    let np = kind(&d, "NetworkPolicy");
    let spec = &np["spec"];
    assert_eq!(
        spec["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(spec["ingress"], serde_json::json!([]));
    let sb = kind(&d, "Sandbox");
    let label = &sb["spec"]["podTemplate"]["metadata"]["labels"]["cordon.dev/sandbox"];
    assert_eq!(
        &spec["podSelector"]["matchLabels"]["cordon.dev/sandbox"],
        label
    );
    let egress = spec["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 3, "{egress:#?}");
    assert_eq!(
        egress[0]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    let ports: Vec<i64> = egress[1]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [22, 80, 443]);
    let except: Vec<&str> = egress[1]["to"][0]["ipBlock"]["except"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for special in [
        "10.0.0.0/8",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "100.64.0.0/10",
        "192.168.0.0/16",
    ] {
        assert!(except.contains(&special), "{special} not refused");
    }
    assert_eq!(egress[1]["to"][1]["ipBlock"]["cidr"], "::/0");
    assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "10.20.0.0/16");
    assert_eq!(egress[2]["ports"][0]["port"], 5432);
    // Nothing asked about and no rule: only DNS.
    let closed = policy("[network]\nunknown = \"deny\"\n");
    let r = render(&closed, &opts(None), &Mode::Sandbox).unwrap();
    let np = docs(&r.yaml)
        .into_iter()
        .find(|d| d["kind"] == "NetworkPolicy")
        .unwrap();
    assert_eq!(np["spec"]["egress"].as_array().unwrap().len(), 1);
}

#[test]
fn lifecycle_named_retains_unnamed_deletes() {
    let p = policy(USER_POLICY);
    let named = docs(&render(&p, &opts(Some("app")), &Mode::Sandbox).unwrap().yaml);
    let sb = kind(&named, "Sandbox");
    assert_eq!(sb["spec"]["shutdownPolicy"], "Retain");
    assert_eq!(sb["spec"]["shutdownTime"], "2027-01-16T20:00:00Z"); // NOW + 36h
    let vct: Vec<&str> = sb["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(vct, ["workspace", "state"]);
    let unnamed = docs(&render(&p, &opts(None), &Mode::Sandbox).unwrap().yaml);
    let sb = kind(&unnamed, "Sandbox");
    assert_eq!(sb["spec"]["shutdownPolicy"], "Delete");
    assert!(sb["spec"].get("volumeClaimTemplates").is_none());
    let vols = sb["spec"]["podTemplate"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(vols
        .iter()
        .any(|v| v["name"] == "workspace" && v.get("emptyDir").is_some()));
}

#[test]
fn gvisor_refused_unless_weaker_with_gaps() {
    let mut o = opts(None);
    o.runtime_class = Some("gvisor".into());
    let e = render(&policy(USER_POLICY), &o, &Mode::Sandbox).unwrap_err();
    assert!(
        e.contains("neither Landlock nor seccomp user notification"),
        "{e}"
    );
    o.weaker = true;
    let e = render(&policy(USER_POLICY), &o, &Mode::Sandbox).unwrap_err();
    assert!(e.contains("[secrets]"), "{e}");
    let r = render(
        &policy("[network]\nallow = [\"github.com\"]\n"),
        &o,
        &Mode::Sandbox,
    )
    .unwrap();
    assert!(r.notes.iter().any(|n| n.contains("WEAKER")));
    assert!(r.notes.iter().any(|n| n.contains("M3:")));
    let d = docs(&r.yaml);
    let c = &kind(&d, "Sandbox")["spec"]["podTemplate"]["spec"]["containers"][0];
    assert_eq!(c["command"], serde_json::json!(["claude"]));
}

#[test]
fn bad_names_are_refused() {
    for bad in ["App", "a_b", "-x", "x-", ""] {
        assert!(
            render(&policy(""), &opts(Some(bad)), &Mode::Sandbox).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn check_passes_rendered_files() {
    let Some(s) = schemas("check_passes_rendered_files") else {
        return;
    };
    let p = policy(USER_POLICY);
    let mut all = vec![
        render(&p, &opts(Some("app")), &Mode::Sandbox).unwrap().yaml,
        render(&p, &opts(None), &Mode::Sandbox).unwrap().yaml,
        render(
            &p,
            &opts(None),
            &Mode::Template {
                name: "team".into(),
                warm: 3,
            },
        )
        .unwrap()
        .yaml,
        render_claim("team", "c1", None, NOW, 60).unwrap(),
    ];
    let mut unconfined = opts(None);
    unconfined.seccomp = Seccomp::Unconfined;
    all.push(render(&p, &unconfined, &Mode::Sandbox).unwrap().yaml);
    for y in &all {
        let f = check(&s, y, None);
        assert!(errors(&f).is_empty(), "{f:#?}\n{y}");
    }
    // The one transition rule is named as not evaluated, not skipped silently.
    let f = check(&s, &all[0], None);
    assert!(
        f.iter().any(|f| !f.error
            && f.message
                .contains("volumeClaimTemplates == oldSelf.volumeClaimTemplates")),
        "{f:#?}"
    );
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn check_catches_a_field_outside_the_schema() {
    let Some(s) = schemas("check_catches_a_field_outside_the_schema") else {
        return;
    };
    let y = render(&policy(USER_POLICY), &opts(Some("app")), &Mode::Sandbox)
        .unwrap()
        .yaml;
    let bad = y.replacen(
        "      automountServiceAccountToken: false",
        "      automountServiceAccountToken: false\n      privilegedMode: true",
        1,
    );
    let f = check(&s, &bad, None);
    let e = errors(&f);
    assert_eq!(e.len(), 1, "{f:#?}");
    assert!(e[0].message.contains("privilegedMode"), "{:?}", e[0]);
    assert_eq!(e[0].line, line_of(&bad, "privilegedMode"));
    // And in a core object.
    let bad = y.replacen("  policyTypes:", "  egressMode: strict\n  policyTypes:", 1);
    let e: Vec<_> = check(&s, &bad, None)
        .into_iter()
        .filter(|f| f.error)
        .collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].message.contains("NetworkPolicy") && e[0].message.contains("egressMode"),
        "{e:?}"
    );
}

#[test]
fn check_catches_a_bad_enum_value_with_its_line() {
    let Some(s) = schemas("check_catches_a_bad_enum_value_with_its_line") else {
        return;
    };
    let y = render(&policy(USER_POLICY), &opts(Some("app")), &Mode::Sandbox)
        .unwrap()
        .yaml;
    let bad = y.replace("shutdownPolicy: Retain", "shutdownPolicy: Never");
    let e: Vec<_> = check(&s, &bad, None)
        .into_iter()
        .filter(|f| f.error)
        .collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].line, line_of(&bad, "shutdownPolicy: Never"));
    assert!(e[0].message.contains("Never"), "{e:?}");
}

#[test]
fn check_catches_a_missing_required_field() {
    let Some(s) = schemas("check_catches_a_missing_required_field") else {
        return;
    };
    let y = render_claim("team", "c1", None, NOW, 60).unwrap();
    let bad: String = y
        .lines()
        .filter(|l| !l.contains("warmPoolRef") && !l.contains("name: team"))
        .map(|l| format!("{l}\n"))
        .collect();
    let e: Vec<_> = check(&s, &bad, None)
        .into_iter()
        .filter(|f| f.error)
        .collect();
    assert_eq!(e.len(), 1, "{e:#?}\n{bad}");
    assert!(e[0].message.contains("warmPoolRef"), "{e:?}");
}

#[test]
fn check_evaluates_the_immutable_rule_against_the_old_version() {
    let Some(s) = schemas("check_evaluates_the_immutable_rule_against_the_old_version") else {
        return;
    };
    let p = policy(USER_POLICY);
    let old = render(&p, &opts(Some("app")), &Mode::Sandbox).unwrap().yaml;
    let mut bigger = opts(Some("app"));
    bigger.workspace_size = "20Gi".into();
    let new = render(&p, &bigger, &Mode::Sandbox).unwrap().yaml;
    let e: Vec<_> = check(&s, &new, Some(&old))
        .into_iter()
        .filter(|f| f.error)
        .collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].message.contains("volumeClaimTemplates is immutable"),
        "{e:?}"
    );
    let sandbox_at = line_of(&new, "kind: Sandbox");
    let spec_at = sandbox_at
        + new
            .lines()
            .skip(sandbox_at)
            .position(|l| l == "spec:")
            .unwrap()
        + 1;
    assert_eq!(
        e[0].line, spec_at,
        "points at the Sandbox spec holding the rule"
    );
    // Its twin: the same claims with another image is a valid update.
    let mut image = opts(Some("app"));
    image.image = "registry.example/agent:2".into();
    let same = render(&p, &image, &Mode::Sandbox).unwrap().yaml;
    let f = check(&s, &same, Some(&old));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn check_reads_hand_written_flow_style_and_unknown_kinds() {
    let Some(s) = schemas("check_reads_hand_written_flow_style_and_unknown_kinds") else {
        return;
    };
    let y = "# hand-written\napiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\nmetadata: {name: team}\nspec: {replicas: -1, sandboxTemplateRef: {name: team}}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
    let f = check(&s, y, None);
    let e = errors(&f);
    assert_eq!(e.len(), 2, "{f:#?}");
    assert!(e[0].message.contains("-1") && e[0].line == 5, "{:?}", e[0]);
    assert!(
        e[1].message.contains("no schema for example.com/v1 Widget") && e[1].line == 8,
        "{:?}",
        e[1]
    );
    let broken = check(&s, "kind: [\n", None);
    assert!(
        broken[0].error && broken[0].message.starts_with("not YAML"),
        "{broken:?}"
    );
}
