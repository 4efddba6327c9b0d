//! `[secrets]` at run time: values fetched on the host (never inside), placeholders made,
//! the door's layer 7 configured, and what the sandbox gets (variables, files, the CA).

use cordon_linux::spec::SpecFile;
use cordon_net::l7::{placeholder, HostRules, Refresh, RuleTable, SecretConf};
use cordon_net::{L7Config, L7};
use cordon_policy::{Effective, Inject, SecretDef, SecretSource};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where `inject = "file"` secrets live inside (a private tmpfs, gone at exit).
pub const SECRETS_DIR: &str = "/run/cordon/secrets";

/// CA bundles that tools read, in the order they are looked for.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Where the bundle is when the host has none of [`BUNDLES`].
const OWN_BUNDLE: &str = "/run/cordon/ca-bundle.pem";

/// Variables that point TLS clients at the bundle.
const CA_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "CARGO_HTTP_CAINFO",
];

/// What a run with secrets or request rules needs.
#[derive(Default)]
pub struct Prepared {
    /// The door's layer 7 (`None` when nothing needs it or there is no network).
    pub l7: Option<Arc<L7>>,
    /// Variables to set inside (placeholders, `NAME_FILE`, CA bundle pointers).
    pub env: Vec<(OsString, OsString)>,
    /// Files to put in place inside.
    pub files: Vec<SpecFile>,
    /// Whether any secret is configured (then cordon keeps itself out of core dumps).
    pub any_secret: bool,
    /// Host variables that hold a real value (`from_env` sources): never passed inside, even
    /// when `env.pass` names them.
    pub unset: Vec<OsString>,
}

/// Fetches a secret's value on the host. Errors name the secret and the source, never a value.
pub fn fetch(def: &SecretDef) -> Result<Zeroizing<String>, String> {
    let name = &def.name;
    let raw: Zeroizing<Vec<u8>> = match &def.source {
        SecretSource::Env(var) => match std::env::var_os(var) {
            Some(v) => Zeroizing::new(v.into_encoded_bytes()),
            None => {
                return Err(format!(
                    "secret {name}: from_env: the variable {var} is not set"
                ))
            }
        },
        SecretSource::File(p) => Zeroizing::new(std::fs::read(p).map_err(|e| {
            format!(
                "secret {name}: from_file {}: cannot read: {}",
                p.display(),
                e.kind()
            )
        })?),
        SecretSource::Command(argv) => {
            let Some((prog, args)) = argv.split_first() else {
                return Err(format!("secret {name}: from_command is empty"));
            };
            run_bounded(name, prog, args, COMMAND_TIMEOUT)?
        }
    };
    let mut end = raw.len();
    while end > 0 && matches!(raw[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let value = std::str::from_utf8(&raw[..end])
        .map_err(|_| format!("secret {name}: the value is not UTF-8 text"))?;
    if value.is_empty() {
        return Err(format!(
            "secret {name}: {} gave an empty value",
            def.source.kind()
        ));
    }
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!(
            "secret {name}: the value contains control characters (it must fit in an HTTP header)"
        ));
    }
    Ok(Zeroizing::new(value.to_string()))
}

/// How long a `from_command` helper may take, and how much it may print.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const COMMAND_MAX_OUTPUT: usize = 64 * 1024;

/// Runs a `from_command` helper with a deadline and an output bound, without starting a thread
/// (fetching happens before the sandbox forks, while the process must be single-threaded).
fn run_bounded(
    name: &str,
    prog: &str,
    args: &[String],
    limit: std::time::Duration,
) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| format!("secret {name}: from_command {prog}: {e}"))?;
    let deadline = std::time::Instant::now() + limit;
    let mut out = Zeroizing::new(Vec::new());
    let mut failure = None;
    if let Some(mut stdout) = child.stdout.take() {
        let mut buf = Zeroizing::new([0u8; 4096]);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                failure = Some(format!(
                    "secret {name}: from_command {prog} took longer than {}s",
                    limit.as_secs_f32()
                ));
                break;
            }
            let timeout = rustix::event::Timespec::try_from(left).ok();
            let mut fds = [rustix::event::PollFd::new(
                &stdout,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    failure = Some(format!("secret {name}: from_command {prog}: {e}"));
                    break;
                }
            }
            match stdout.read(&mut buf[..]) {
                Ok(0) => break,
                Ok(n) => {
                    if out.len() + n > COMMAND_MAX_OUTPUT {
                        failure = Some(format!(
                            "secret {name}: from_command {prog} printed more than {COMMAND_MAX_OUTPUT} bytes"
                        ));
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("secret {name}: from_command {prog}: {e}"));
                    break;
                }
            }
        }
    }
    if let Some(f) = failure {
        let _ = child.kill();
        let _ = child.wait();
        return Err(f);
    }
    let status = child
        .wait()
        .map_err(|e| format!("secret {name}: from_command {prog}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "secret {name}: from_command {prog} failed ({status})"
        ));
    }
    Ok(out)
}

/// Request rules grouped by host, each policy table kept apart (each must allow).
fn host_rules(eff: &Effective) -> Vec<HostRules> {
    let mut out: Vec<HostRules> = Vec::new();
    for r in &eff.requests {
        // Parsed once, by the policy file's reader.
        let table = RuleTable {
            origin: r.origin.to_string(),
            rules: r.value.allow.clone(),
        };
        match out.iter_mut().find(|h| h.host == r.value.host) {
            Some(h) => h.tables.push(table),
            None => out.push(HostRules {
                host: r.value.host.clone(),
                tables: vec![table],
            }),
        }
    }
    out
}

fn var(k: &str, v: impl Into<OsString>) -> (OsString, OsString) {
    (OsString::from(k), v.into())
}

/// Fetches every secret and builds what the run needs. `network`: the door exists (else no
/// interception; placeholders are still given, and useless). Fails, naming the secret, when
/// a source is missing.
pub fn prepare(eff: &Effective, label: &str, network: bool) -> Result<Prepared, String> {
    let mut p = Prepared {
        any_secret: !eff.secrets.is_empty(),
        ..Prepared::default()
    };
    let mut confs = Vec::new();
    let mut rng = placeholder::OsRand::new();
    for r in &eff.secrets {
        let def = &r.value;
        let value = fetch(def)?;
        if let SecretSource::Env(v) = &def.source {
            p.unset.push(OsString::from(v));
        }
        match def.inject {
            Inject::Env => p.env.push(var(&def.name, value.as_str())),
            Inject::File => {
                let path = PathBuf::from(SECRETS_DIR).join(&def.name);
                p.files.push(SpecFile {
                    path: path.clone(),
                    content: value.as_bytes().to_vec(),
                    mode: 0o400,
                });
                p.env.push(var(&format!("{}_FILE", def.name), path));
            }
            Inject::Door => {
                let ph = placeholder::make(&value, &mut rng)
                    .map_err(|e| format!("secret {}: no placeholder: {e}", def.name))?;
                p.env.push(var(&def.name, ph.as_str()));
                let refresh: Option<Refresh> = def.ttl.map(|_| {
                    let d = def.clone();
                    Arc::new(move || fetch(&d)) as Refresh
                });
                confs.push(SecretConf {
                    name: def.name.clone(),
                    placeholder: ph,
                    hosts: def.hosts.clone(),
                    allow_plaintext: def.allow_plaintext,
                    in_query: def.in_query,
                    in_body: def.in_body,
                    value,
                    ttl: def.ttl.map(Duration::from_secs),
                    refresh,
                });
            }
        }
    }
    let rules = host_rules(eff);
    if !network || (confs.is_empty() && rules.is_empty()) {
        return Ok(p);
    }
    let l7 = L7::new(L7Config {
        secrets: confs,
        rules,
        label: label.to_string(),
    })?;
    let (files, bundle) = ca_bundle(l7.ca_pem());
    p.files.extend(files);
    for k in CA_VARS {
        p.env.push(var(k, &bundle));
    }
    p.l7 = Some(Arc::new(l7));
    Ok(p)
}

/// The sandbox's view of the trust store: the host's bundle, any bundle cordon itself was told
/// to trust (SSL_CERT_FILE), and the sandbox's CA, over every usual bundle path that exists.
/// Returns the files and the path the variables point to.
fn ca_bundle(ca_pem: &str) -> (Vec<SpecFile>, PathBuf) {
    let existing: Vec<&str> = BUNDLES
        .iter()
        .copied()
        .filter(|p| Path::new(p).is_file())
        .collect();
    let mut content = existing
        .first()
        .and_then(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    if let Some(extra) = std::env::var_os("SSL_CERT_FILE") {
        let extra = PathBuf::from(extra);
        if !existing.iter().any(|p| Path::new(p) == extra) {
            if let Ok(b) = std::fs::read(&extra) {
                if !content.ends_with(b"\n") && !content.is_empty() {
                    content.push(b'\n');
                }
                content.extend_from_slice(&b);
            }
        }
    }
    if !content.ends_with(b"\n") && !content.is_empty() {
        content.push(b'\n');
    }
    content.extend_from_slice(ca_pem.as_bytes());
    let mut files: Vec<SpecFile> = existing
        .iter()
        .map(|p| SpecFile {
            path: PathBuf::from(p),
            content: content.clone(),
            mode: 0o444,
        })
        .collect();
    files.push(SpecFile {
        path: PathBuf::from(OWN_BUNDLE),
        content,
        mode: 0o444,
    });
    let target = existing
        .first()
        .map_or_else(|| PathBuf::from(OWN_BUNDLE), PathBuf::from);
    (files, target)
}

/// Keeps the supervisor (which holds the real values) out of core dumps and out of reach of
/// same-user ptrace and /proc/<pid>/mem.
pub fn harden_supervisor() -> Result<(), String> {
    cordon_linux::sys::setrlimit(libc::RLIMIT_CORE, 0, 0)
        .map_err(|e| format!("cannot disable core dumps: {e}"))?;
    cordon_linux::sys::set_dumpable(false)
        .map_err(|e| format!("cannot make cordon non-dumpable: {e}"))
}

/// Removes `unset`, then sets `vars` in a `KEY=VALUE` environment, replacing any earlier
/// value of the same key.
pub fn apply_env(
    env: &mut Vec<std::ffi::CString>,
    unset: &[OsString],
    vars: &[(OsString, OsString)],
) {
    for k in unset {
        let mut prefix = k.as_encoded_bytes().to_vec();
        prefix.push(b'=');
        env.retain(|e| !e.as_bytes().starts_with(&prefix));
    }
    for (k, v) in vars {
        let mut prefix = k.as_encoded_bytes().to_vec();
        prefix.push(b'=');
        env.retain(|e| !e.as_bytes().starts_with(&prefix));
        let mut kv = prefix;
        kv.extend_from_slice(v.as_encoded_bytes());
        env.extend(std::ffi::CString::new(kv).ok());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn def(source: SecretSource) -> SecretDef {
        SecretDef {
            name: "TOK".into(),
            source,
            ttl: None,
            hosts: vec!["api.example.com".into()],
            allow_plaintext: false,
            in_query: false,
            in_body: false,
            inject: Inject::Door,
        }
    }

    #[test]
    fn sources_are_read_trimmed_and_errors_never_hold_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "file-secret-value-123\n").unwrap();
        assert_eq!(
            fetch(&def(SecretSource::File(f.clone()))).unwrap().as_str(),
            "file-secret-value-123"
        );
        let cmd = SecretSource::Command(vec!["printf".into(), "cmd-secret-456\\r\\n".into()]);
        assert_eq!(fetch(&def(cmd)).unwrap().as_str(), "cmd-secret-456");
        let e = fetch(&def(SecretSource::Env("CORDON_UNIT_SURELY_UNSET".into()))).unwrap_err();
        assert!(
            e.contains("TOK") && e.contains("CORDON_UNIT_SURELY_UNSET"),
            "{e}"
        );
        let fail = SecretSource::Command(vec![
            "sh".into(),
            "-c".into(),
            "echo leaked-789; exit 3".into(),
        ]);
        let e = fetch(&def(fail)).unwrap_err();
        assert!(e.contains("TOK") && !e.contains("leaked-789"), "{e}");
        std::fs::write(&f, "\n").unwrap();
        assert!(fetch(&def(SecretSource::File(f.clone())))
            .unwrap_err()
            .contains("empty"));
        std::fs::write(&f, "two\nlines").unwrap();
        let e = fetch(&def(SecretSource::File(f))).unwrap_err();
        assert!(
            e.contains("control characters") && !e.contains("two"),
            "{e}"
        );
    }

    #[test]
    fn env_is_replaced_and_sources_unset() {
        let mut env: Vec<std::ffi::CString> = ["A=1", "SRC=real", "TOK=old", "TOKEN2=x"]
            .iter()
            .map(|s| std::ffi::CString::new(*s).unwrap())
            .collect();
        apply_env(
            &mut env,
            &[OsString::from("SRC")],
            &[(OsString::from("TOK"), OsString::from("ph"))],
        );
        let got: Vec<&str> = env.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(got, vec!["A=1", "TOKEN2=x", "TOK=ph"]);
    }

    #[test]
    fn from_command_is_bounded_in_time_and_output() {
        let started = std::time::Instant::now();
        let slow = run_bounded(
            "S",
            "sleep",
            &["5".into()],
            std::time::Duration::from_millis(200),
        );
        assert!(
            slow.as_ref().is_err_and(|e| e.contains("took longer")),
            "{slow:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
        let chatty = run_bounded("S", "yes", &[], std::time::Duration::from_secs(10));
        assert!(
            chatty.as_ref().is_err_and(|e| e.contains("more than")),
            "{chatty:?}"
        );
        let ok = run_bounded(
            "S",
            "printf",
            &["tok".into()],
            std::time::Duration::from_secs(10),
        );
        assert_eq!(ok.as_deref().map(|v| v.as_slice()), Ok(&b"tok"[..]));
    }
}
