//! The pod `cordon kube render` writes really runs, under podman (no cluster here): a small
//! Debian image with the built cordon, the rendered Sandbox's pod started with every setting
//! of its podTemplate, and attacks from inside through the rendered entrypoint.
//!
//! podman 4.3's `kube play` cannot run this pod as rendered: it ignores `procMount` and
//! `hostUsers`, and under a user namespace its configMap files belong to nobody (the managed
//! tier then, rightly, refuses them). So each podTemplate field is applied as the podman flag
//! or host-side preparation listed in `apply` (an unknown field fails the test, so a new
//! setting is never silently dropped). What podman cannot stand for (the NetworkPolicy, the
//! agent-sandbox controller, kata) is tested by `cordon kube check` only: see docs/kubernetes.md.
//!
//! Needs root, podman (runc, `default_ulimits = []`: see .ci/run) and mmdebstrap + a Debian
//! mirror for the base image (built once, kept as localhost/cordon-it-base:bookworm); else SKIP.
#![allow(clippy::unwrap_used)]

use crate::common;

use serde_json::Value;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BASE: &str = "localhost/cordon-it-base:bookworm";
const IMAGE: &str = "localhost/cordon-it-pod:test";
/// Host uid/gid the pod's root maps to (hostUsers: false).
const MAP: u32 = 400_000;
const TOKEN: &str = "real-token-5ecret-0123456789abcdef";

fn run(cmd: &mut Command, secs: u64) -> Result<Output, String> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} took more than {secs} s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn podman(args: &[&str], secs: u64) -> Result<Output, String> {
    run(
        Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", conf()),
        secs,
    )
}

/// A containers.conf for these machines: runc (crun refuses hybrid cgroups), no default
/// ulimits (root lacks CAP_SYS_RESOURCE).
fn conf() -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kube-pod-containers.conf");
    let _ = std::fs::write(
        &p,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    );
    p
}

fn ok(o: &Output) -> bool {
    o.status.success()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Builds the base image once (Debian packages only: no registry is reachable), then the
/// test image with this build's cordon. Err is a reason to skip.
fn image(dir: &Path) -> Result<(), String> {
    if !podman(&["image", "exists", BASE], 30).is_ok_and(|o| ok(&o)) {
        let tar = dir.join("rootfs.tar");
        let o = run(
            Command::new("mmdebstrap")
                .args([
                    "--variant=apt",
                    "--include=git,ca-certificates,python3",
                    "bookworm",
                ])
                .arg(&tar),
            600,
        )?;
        if !ok(&o) {
            return Err(format!(
                "mmdebstrap failed: {}",
                text(&o).lines().last().unwrap_or("")
            ));
        }
        let o = podman(&["import", &tar.to_string_lossy(), BASE], 120)?;
        if !ok(&o) {
            return Err(format!("podman import failed: {}", text(&o)));
        }
        let _ = std::fs::remove_file(&tar);
    }
    std::fs::copy(env!("CARGO_BIN_EXE_cordon"), dir.join("cordon")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("Containerfile"),
        format!("FROM {BASE}\nCOPY cordon /usr/local/bin/cordon\nRUN useradd -u 1000 -m -s /bin/bash agent && mkdir -p /workspace /etc/cordon /etc/cordon-secrets\n"),
    )
    .map_err(|e| e.to_string())?;
    let o = podman(&["build", "-q", "-t", IMAGE, &dir.to_string_lossy()], 300)?;
    if !ok(&o) {
        return Err(format!("podman build failed: {}", text(&o)));
    }
    Ok(())
}

/// What podman stands for each rendered field; the list the module comment promises.
struct Applied {
    /// `podman pod create` flags (the user namespace is per pod, as in Kubernetes).
    pod_flags: Vec<String>,
    /// The agent container's `podman run` flags.
    flags: Vec<String>,
    /// Host directories behind the pod's volumes, by volume name.
    dirs: std::collections::BTreeMap<String, PathBuf>,
    /// Fields with nothing to do under podman (it mounts no token, sets no service links).
    nothing: Vec<&'static str>,
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

fn mkdir(p: &Path, uid: u32, gid: u32, mode: u32) {
    std::fs::create_dir_all(p).unwrap();
    chown(p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn apply(manifest: &[Value], dir: &Path) -> Applied {
    let sandbox = manifest.iter().find(|d| d["kind"] == "Sandbox").unwrap();
    let config = manifest.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let pod = sandbox["spec"]["podTemplate"]["spec"].as_object().unwrap();
    let mut a = Applied {
        pod_flags: Vec::new(),
        flags: Vec::new(),
        dirs: Default::default(),
        nothing: Vec::new(),
    };
    let fs_group = pod["securityContext"]["fsGroup"].as_u64().unwrap() as u32;
    for (k, v) in pod {
        match k.as_str() {
            "automountServiceAccountToken" => {
                assert_eq!(v, false);
                a.nothing
                    .push("automountServiceAccountToken: podman mounts no token");
            }
            "enableServiceLinks" => {
                assert_eq!(v, false);
                a.nothing
                    .push("enableServiceLinks: podman sets no service variables");
            }
            "hostUsers" => {
                assert_eq!(v, false);
                a.pod_flags.extend([
                    format!("--uidmap=0:{MAP}:65536"),
                    format!("--gidmap=0:{MAP}:65536"),
                ]);
            }
            "securityContext" => {
                assert_eq!(v["runAsNonRoot"], true);
                // fsGroup: the volumes below are group-owned by it.
            }
            "containers" | "volumes" => {}
            other => {
                panic!("podTemplate.spec.{other} is not applied by this test: add it to `apply`")
            }
        }
    }
    let c = pod["containers"][0].as_object().unwrap();
    for (k, v) in c {
        match k.as_str() {
            "name" | "image" | "command" | "volumeMounts" => {}
            "env" => {
                for e in v.as_array().unwrap() {
                    a.flags.push(format!(
                        "--env={}={}",
                        e["name"].as_str().unwrap(),
                        e["value"].as_str().unwrap()
                    ));
                }
            }
            "workingDir" => a.flags.push(format!("--workdir={}", v.as_str().unwrap())),
            "securityContext" => {
                for (sk, sv) in v.as_object().unwrap() {
                    match sk.as_str() {
                        "allowPrivilegeEscalation" => {
                            assert_eq!(sv, false);
                            a.flags.push("--security-opt=no-new-privileges".into());
                        }
                        "capabilities" => {
                            assert_eq!(sv["drop"], serde_json::json!(["ALL"]));
                            assert!(sv.get("add").is_none());
                            a.flags.push("--cap-drop=all".into());
                        }
                        // Kubernetes' Unmasked: no masked or read-only /proc paths at all.
                        "procMount" => {
                            assert_eq!(sv, "Unmasked");
                            a.flags.push("--security-opt=unmask=ALL".into());
                        }
                        "readOnlyRootFilesystem" => {
                            assert_eq!(sv, true);
                            a.flags
                                .extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
                        }
                        "runAsNonRoot" => assert_eq!(sv, true),
                        "runAsUser" => {}
                        "runAsGroup" => a.flags.push(format!(
                            "--user={}:{}",
                            v["runAsUser"].as_u64().unwrap(),
                            sv.as_u64().unwrap()
                        )),
                        // podman's default profile is the runtime default (the same profile
                        // CRI-O uses).
                        "seccompProfile" => assert_eq!(sv["type"], "RuntimeDefault"),
                        other => {
                            panic!("container securityContext.{other} is not applied by this test")
                        }
                    }
                }
            }
            other => panic!("container field {other} is not applied by this test"),
        }
    }
    let volumes = pod["volumes"].as_array().unwrap();
    for m in c["volumeMounts"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let path = m["mountPath"].as_str().unwrap();
        let host = dir.join("vol").join(name);
        let ro = m["readOnly"] == true;
        let vol = volumes.iter().find(|v| v["name"] == name);
        match vol {
            // emptyDir: group-owned by fsGroup, setgid, as the kubelet makes it.
            Some(v) if v.get("emptyDir").is_some() => mkdir(&host, MAP, MAP + fs_group, 0o2775),
            Some(v) if v.get("configMap").is_some() => {
                mkdir(&host, MAP, MAP, 0o755);
                for item in v["configMap"]["items"].as_array().unwrap() {
                    let f = host.join(item["path"].as_str().unwrap());
                    std::fs::write(
                        &f,
                        config["data"][item["key"].as_str().unwrap()]
                            .as_str()
                            .unwrap(),
                    )
                    .unwrap();
                    chown(&f, Some(MAP), Some(MAP)).unwrap();
                    let mode = v["configMap"]["defaultMode"].as_u64().unwrap() as u32;
                    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
                }
            }
            Some(v) if v.get("secret").is_some() => {
                mkdir(&host, MAP, MAP + fs_group, 0o750);
                let f = host.join("value");
                std::fs::write(&f, TOKEN).unwrap();
                chown(&f, Some(MAP), Some(MAP + fs_group)).unwrap();
                let mode = v["secret"]["defaultMode"].as_u64().unwrap() as u32;
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            // A volume claim of a named sandbox: a directory as the provisioner would give.
            None => mkdir(&host, MAP, MAP + fs_group, 0o2775),
            Some(v) => panic!("volume kind not applied by this test: {v}"),
        }
        a.flags.push(format!(
            "--volume={}:{path}:{}",
            host.display(),
            if ro { "ro" } else { "rw" }
        ));
        a.dirs.insert(name.to_string(), host);
    }
    a
}

const SERVER: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("REQ", self.path, "AUTH=" + str(self.headers.get("Authorization")), flush=True)
        body = ("hello from the test server; you sent " + str(self.headers.get("Authorization"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 8080), H).serve_forever()
"#;

const PROBE: &str = r#"
echo CORDON-IT-RAN
py() { python3 -c "$1" 2>&1 | tail -n 1; }
get() { py "import urllib.request,os; r=urllib.request.Request('$1', headers={'Authorization': 'Bearer ' + os.environ.get('TEST_TOKEN','')}); print('GOT', urllib.request.urlopen(r, timeout=10).read().decode())"; }
plain() { py "import urllib.request; print('GOT', urllib.request.urlopen('$1', timeout=30).read().decode())"; }
echo "OUTSIDE $( (echo x > /home/agent/outside.txt && echo x > /etc/cordon-pwn) 2>/dev/null && echo written || echo refused)"
echo "HOOK $( (echo evil > /workspace/.git/hooks/pre-commit) 2>/dev/null && echo written || echo refused)"
echo "SECRETFILE $(cat /etc/cordon-secrets/TEST_TOKEN/value 2>/dev/null || echo refused)"
echo "ENVTOKEN $TEST_TOKEN"
echo "DENIED $(get http://denied.test:8080/x)"
echo "ALLOWED $(get http://allowed.test:8080/hello)"
echo "APPROVALS-INSIDE $(ls /tmp/cordon-1000/approvals 2>&1 | head -n 1)"
echo work > /workspace/file.txt
cd /workspace && git add file.txt && git -c user.name=t -c user.email=t@example.test commit -qm "from the pod" && echo COMMIT-OK
# R4 across the pod: the test starts `cordon approvals` in the container, then this asks.
echo WAITING-APPROVER
for i in $(seq 1 300); do test -e /workspace/.approver-up && break; sleep 0.1; done
echo "ASKED $(plain http://asked.test:8080/ask)"
echo WAITING-END
# The test looks for the approval socket from the container (as `kubectl exec` would).
for i in $(seq 1 300); do test -e /workspace/.probe-done && break; sleep 0.1; done
"#;

/// `podman exec -i AGENT cordon approvals` (what `kubectl exec -i POD -- cordon approvals`
/// does), answering `a` to the first request naming `host`. Returns what it printed.
fn approve_from_container(agent: &str, host: &str, ready: &Path) -> String {
    use std::io::{BufRead, Write};
    let mut child = match Command::new("podman")
        .args(["exec", "-i", agent, "cordon", "approvals"])
        .env("CONTAINERS_CONF", conf())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return format!("cannot start: {e}"),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
    }
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut answered = false;
    while std::time::Instant::now() < deadline {
        let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        seen.push_str(&l);
        seen.push('\n');
        if l.contains("] connected:") {
            let _ = std::fs::write(ready, "");
        }
        if l.contains("request") && l.contains(host) {
            if let Some(i) = child.stdin.as_mut() {
                let _ = i.write_all(b"a");
            }
            answered = true;
        }
        if answered && l.contains("allow_once") {
            break;
        }
    }
    if let Some(i) = child.stdin.as_mut() {
        let _ = i.write_all(b"q");
    }
    drop(child.stdin.take());
    let _ = run_wait(&mut child, 10);
    seen
}

fn run_wait(child: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

#[test]
fn rendered_pod_runs_under_podman_with_the_walls() {
    let t = "rendered_pod_runs_under_podman_with_the_walls";
    if common::euid() != 0 {
        return common::skip(t, "needs root (rootful podman with a uid map)");
    }
    if !podman(&["info", "--format", "{{.Host.OCIRuntime.Name}}"], 60).is_ok_and(|o| ok(&o)) {
        return common::skip(t, "podman is not installed or not usable (see .ci/run)");
    }
    let dir = tempfile::Builder::new()
        .prefix("cordon-kube-pod")
        .tempdir_in("/var/tmp")
        .unwrap();
    if let Err(why) = image(dir.path()) {
        return common::skip(t, &format!("no test image: {why}"));
    }
    // The rendering machine: a home with a user policy, a workspace.
    let home = dir.path().join("home");
    let ws = home.join("ws");
    std::fs::create_dir_all(home.join(".config/cordon")).unwrap();
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        home.join(".config/cordon/policy.toml"),
        "[network]\nallow = [\"allowed.test:8080\"]\nallow_cidrs = [\"127.0.0.1/32:8080\"]\nunknown = \"ask\"\n\
         [network.hosts]\n\"allowed.test\" = \"127.0.0.1\"\n\"denied.test\" = \"127.0.0.1\"\n\"asked.test\" = \"127.0.0.1\"\n\
         [secrets.TEST_TOKEN]\nfrom_env = \"CORDON_IT_TOKEN\"\nhosts = [\"allowed.test\"]\nallow_plaintext = true\n",
    )
    .unwrap();
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args([
                "kube",
                "render",
                "--image",
                IMAGE,
                "--now",
                "1800000000",
                "--no-auto-profile",
                "-w",
            ])
            .arg(&ws)
            .args(["--", "bash", "-c", PROBE])
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME"),
        60,
    )
    .unwrap();
    assert!(ok(&out), "{}", text(&out));
    let manifest: Vec<Value> =
        serde_norway::Deserializer::from_str(&String::from_utf8_lossy(&out.stdout))
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect();
    let applied = apply(&manifest, dir.path());
    let sandbox = manifest.iter().find(|d| d["kind"] == "Sandbox").unwrap();
    let c = &sandbox["spec"]["podTemplate"]["spec"]["containers"][0];
    let command: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();

    // The workspace holds a repository made outside, as a checkout would.
    let wsdir = &applied.dirs["workspace"];
    for args in [
        vec!["init", "-q"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    ] {
        let o = run(
            Command::new("git")
                .args(["-c", "safe.directory=*"])
                .args(&args)
                .current_dir(wsdir),
            30,
        )
        .unwrap();
        assert!(ok(&o), "{}", text(&o));
    }
    chown_tree(wsdir, MAP + 1000, MAP + 1000);

    let id = common::unique();
    let pod = format!("cordon-it-pod-{id}");
    let server = format!("cordon-it-srv-{id}");
    let agent = format!("cordon-it-agent-{id}");
    let mut create = vec!["pod", "create", "--name", &pod];
    create.extend(applied.pod_flags.iter().map(String::as_str));
    let o = podman(&create, 60).unwrap();
    assert!(ok(&o), "{}", text(&o));
    // The test server shares the pod's network namespace: it is the pod's 127.0.0.1:8080.
    let o = podman(
        &[
            "run", "-d", "--pod", &pod, "--name", &server, IMAGE, "python3", "-c", SERVER,
        ],
        60,
    )
    .unwrap();
    if !ok(&o) {
        let _ = podman(&["pod", "rm", "-f", &pod], 60);
        panic!("{}", text(&o));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--pod".into(),
        pod.clone(),
        "--name".into(),
        agent.clone(),
    ];
    args.extend(applied.flags.iter().cloned());
    args.push(IMAGE.into());
    args.extend(command);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = podman(&argv, 120);
    // R4 across the cluster: `kubectl exec POD -- cordon approvals` reaches the broker's
    // socket in the container's /tmp (the sandbox inside has its own /tmp).
    let mut socket_from_container = String::new();
    let mut doctor = String::new();
    let mut approver = String::new();
    if started.as_ref().is_ok_and(ok) {
        for _ in 0..600 {
            let logs = podman(&["logs", &agent], 30)
                .map(|o| text(&o))
                .unwrap_or_default();
            if approver.is_empty() && logs.lines().any(|l| l == "WAITING-APPROVER") {
                approver =
                    approve_from_container(&agent, "asked.test", &wsdir.join(".approver-up"));
                // Whatever happened, let the probe go on.
                let _ = std::fs::write(wsdir.join(".approver-up"), "");
            }
            if logs.lines().any(|l| l == "WAITING-END") {
                socket_from_container = podman(
                    &["exec", &agent, "sh", "-c", "ls /tmp/cordon-1000/approvals"],
                    30,
                )
                .map(|o| text(&o))
                .unwrap_or_default();
                doctor = podman(&["exec", &agent, "cordon", "doctor"], 60)
                    .map(|o| text(&o))
                    .unwrap_or_default();
                let _ = std::fs::write(wsdir.join(".probe-done"), "");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = podman(&["wait", &agent], 120);
    let res = podman(&["logs", &agent], 30);
    let code = podman(&["inspect", &agent, "--format", "{{.State.ExitCode}}"], 30)
        .map(|o| text(&o))
        .unwrap_or_default();
    let srv_log = podman(&["logs", &server], 30)
        .map(|o| text(&o))
        .unwrap_or_default();
    let _ = podman(&["pod", "rm", "-f", &pod], 60);
    assert!(
        started.as_ref().is_ok_and(ok),
        "{:?}",
        started.map(|o| text(&o))
    );
    let o = res.unwrap();
    let all = text(&o);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{all}"))
            .to_string()
    };
    assert!(
        stdout.contains("CORDON-IT-RAN"),
        "the probe did not run:\n{all}"
    );
    // M2: a write outside the workspace never reaches the pod's volumes.
    assert!(!applied.dirs["home"].join("outside.txt").exists(), "{all}");
    assert_eq!(line("OUTSIDE"), "OUTSIDE refused", "{all}");
    // M3: a git hook cannot be written, and the host has none.
    assert!(line("HOOK").ends_with("refused"), "{all}");
    assert!(!wsdir.join(".git/hooks/pre-commit").exists());
    // R3: the mounted secret is hidden; R5: the variable is a placeholder.
    assert!(!line("SECRETFILE").contains(TOKEN), "{all}");
    let env_token = line("ENVTOKEN");
    assert!(
        !env_token.contains(TOKEN) && env_token.len() > "ENVTOKEN ".len() + 8,
        "{all}"
    );
    // M1: a name the policy does not allow is refused at the door.
    let denied = line("DENIED");
    assert!(!denied.contains("GOT"), "{all}");
    // The allowed name goes through the door; the placeholder became the real value on the
    // way out and the reflected value came back as the placeholder.
    let allowed = line("ALLOWED");
    assert!(allowed.contains("GOT hello from the test server"), "{all}");
    assert!(
        !allowed.contains(TOKEN),
        "the real token came back inside: {allowed}"
    );
    assert!(
        srv_log.contains(&format!("AUTH=Bearer {TOKEN}")),
        "server saw: {srv_log}"
    );
    assert!(
        !srv_log.contains("/x "),
        "the denied request reached the server: {srv_log}"
    );
    // R4: the approval socket lives in the container's /tmp, which the sandbox does not see.
    assert!(!line("APPROVALS-INSIDE").contains(".sock"), "{all}");
    assert!(
        socket_from_container.contains(".sock"),
        "no approval socket from the container: {socket_from_container}"
    );
    // R4: an approver in the container (kubectl exec) saw the request and allowed it once.
    assert!(
        approver.contains("asked.test") && approver.contains("allow_once"),
        "cordon approvals in the container:\n{approver}\n{all}"
    );
    assert!(line("ASKED").contains("GOT hello"), "{all}");
    // `cordon doctor` in the pod finds every rendered setting in place.
    for l in [
        "works    procMount: Unmasked",
        "works    hostUsers: false",
        "works    seccompProfile",
        "full isolation",
    ] {
        assert!(doctor.contains(l), "doctor in the pod:\n{doctor}");
    }
    // The legitimate work: a commit in the workspace, visible outside.
    assert!(stdout.contains("COMMIT-OK"), "{all}");
    let log = run(
        Command::new("git")
            .args(["-c", "safe.directory=*", "log", "--format=%s"])
            .current_dir(wsdir),
        30,
    )
    .unwrap();
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("from the pod"),
        "{all}"
    );
    // Audit events are JSON lines on the container's stdout (what `kubectl logs` shows).
    assert!(
        stdout.lines().any(|l| l.starts_with('{')
            && l.contains("\"decision\":\"deny\"")
            && l.contains("denied.test")),
        "no audit line for the denied name:\n{all}"
    );
    assert_eq!(code.trim(), "0", "{all}");
    common::note(
        t,
        &format!(
            "podTemplate applied by podman flags (pod: {}; container: {}); no-ops under podman: {}; NetworkPolicy, the agent-sandbox controller and kata are not exercised (no cluster)",
            applied.pod_flags.join(" "),
            applied.flags.iter().filter(|f| !f.starts_with("--volume") && !f.starts_with("--env")).cloned().collect::<Vec<_>>().join(" "),
            applied.nothing.join("; ")
        ),
    );
}
