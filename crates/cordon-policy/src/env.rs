//! Environment scrubbing: what of the host environment reaches the sandbox.
//!
//! Rules, in order:
//! 1. A fixed allowlist passes (see [`BASE_ALLOW`]); `LC_*` is the only glob in it.
//! 2. `[env] pass` entries and `--env NAME` add to it. An entry without `*`/`?` is an *exact*
//!    name; one with them is a glob.
//! 3. A name that looks like a secret ([`looks_secret`]) passes only when named exactly; no
//!    glob, however broad (`*`, `AWS_*`), lets it through. This keeps `pass = ["*"]` from
//!    leaking every token in the person's shell.
//! 4. `[env] set` and `--env NAME=VALUE` set values, overriding the host's.
//!
//! Names are compared byte-wise and case-sensitively (as the kernel and libc do); the secret
//! check upper-cases first so `github_token` is caught too.

use crate::glob::glob_bytes;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::effective::Effective;

/// Host variables that always pass. Beyond the list: `VISUAL` (the other half of
/// `EDITOR`), `PAGER` (git and man use it), `LANGUAGE` (gettext's part of the locale) and
/// `NO_COLOR` (a preference, never a secret). Not `TMPDIR` and friends: the sandbox has its
/// own `/tmp` and a host path there may not be writable. `HOME` is passed as on the host; the
/// binary may override it.
pub const BASE_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "NO_COLOR",
];

/// Substrings that mark a name as secret-looking (compared upper-cased).
const SECRET_PARTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "SESSION_KEY",
    "SIGNING_KEY",
    "ENCRYPTION_KEY",
    "AUTH",
    "COOKIE",
    "BEARER",
    "JWT",
    "DATABASE_URL",
    "CONNECTION_STRING",
    "SSH_",
    "GPG_",
    "KUBECONFIG",
];

/// Prefixes of whole families of cloud and forge credentials.
const SECRET_PREFIXES: &[&str] = &[
    "AWS_",
    "AZURE_",
    "ARM_",
    "GOOGLE_",
    "GCLOUD_",
    "GCP_",
    "CLOUDSDK_",
    "GH_",
    "GITHUB_",
    "GITLAB_",
    "GL_",
    "NPM_",
    "NODE_AUTH",
    "DOCKER_",
    "VAULT_",
    "HF_",
    "HUGGING",
    "OP_",
    "DIGITALOCEAN_",
    "DO_",
    "HEROKU_",
    "CLOUDFLARE_",
    "CF_",
    "TF_VAR_",
    "TF_TOKEN",
    "OPENAI_",
    "ANTHROPIC_",
    "STRIPE_",
    "TWILIO_",
    "SLACK_",
    "SENTRY_",
    "DATADOG_",
    "DD_",
    "CODECOV_",
    "CI_JOB_",
    "ACTIONS_",
    "RUNNER_",
];

/// Underscore-separated words that mark a secret (`*_PAT`, `*_KEY`, `MYSQL_PWD`, `*_DSN`).
const SECRET_WORDS: &[&str] = &[
    "PAT", "KEY", "KEYS", "PWD", "PASS", "DSN", "SIG", "CERT", "OTP", "PIN",
];

/// Does this variable name look like it holds a secret? Conservative on purpose: a false
/// positive only means the person has to name the variable exactly to pass it.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper == "PWD" || upper == "OLDPWD" {
        // The working directory, not a password.
        return false;
    }
    SECRET_PARTS.iter().any(|p| upper.contains(p))
        || SECRET_PREFIXES.iter().any(|p| upper.starts_with(p))
        || upper.split('_').any(|w| SECRET_WORDS.contains(&w))
}

/// Builds the sandbox environment from the host's. Output is sorted by name, one entry per
/// name. See the module docs for the rules.
pub fn scrub_env(
    host: impl Iterator<Item = (OsString, OsString)>,
    eff: &Effective,
) -> Vec<(OsString, OsString)> {
    let exact: Vec<&[u8]> = eff
        .env_pass
        .iter()
        .map(|r| r.value.as_bytes())
        .filter(|p| !is_glob(p))
        .collect();
    let globs: Vec<&[u8]> = BASE_ALLOW
        .iter()
        .map(|s| s.as_bytes())
        .chain(eff.env_pass.iter().map(|r| r.value.as_bytes()))
        .filter(|p| is_glob(p))
        .collect();
    let base_exact: Vec<&[u8]> = BASE_ALLOW
        .iter()
        .map(|s| s.as_bytes())
        .filter(|p| !is_glob(p))
        .collect();

    let mut out: BTreeMap<OsString, OsString> = BTreeMap::new();
    for (name, value) in host {
        let n = name.as_bytes();
        if n.is_empty() || n.contains(&b'=') || n.contains(&0) || value.as_bytes().contains(&0) {
            continue;
        }
        let named = base_exact.contains(&n) || exact.contains(&n);
        let globbed = || {
            globs.iter().any(|g| glob_bytes(g, n))
                && std::str::from_utf8(n).is_ok_and(|s| !looks_secret(s))
        };
        if named || globbed() {
            out.insert(name, value);
        }
    }
    for r in &eff.env_set {
        out.insert(OsString::from(&r.value.0), r.value.1.clone());
    }
    out.into_iter().collect()
}

fn is_glob(p: &[u8]) -> bool {
    p.contains(&b'*') || p.contains(&b'?')
}

/// Convenience for callers holding `std::env::vars_os()`-like data as `&OsStr` pairs.
pub fn scrub_env_refs<'a>(
    host: impl Iterator<Item = (&'a OsStr, &'a OsStr)>,
    eff: &Effective,
) -> Vec<(OsString, OsString)> {
    scrub_env(host.map(|(k, v)| (k.to_os_string(), v.to_os_string())), eff)
}

#[cfg(test)]
mod tests;
