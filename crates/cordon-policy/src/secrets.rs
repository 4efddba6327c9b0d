//! `[secrets.NAME]` and `[requests."HOST"]`: the policy model (values are never read here).

use std::path::PathBuf;

/// Where a secret's value comes from (read by the binary at start, on the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `from_env = "VAR"`: cordon's own environment.
    Env(String),
    /// `from_file = "PATH"`: the file's content, without a trailing newline.
    File(PathBuf),
    /// `from_command = ["argv", ...]`: what the command prints, run outside the sandbox.
    Command(Vec<String>),
}

impl SecretSource {
    /// `from_env`, `from_file` or `from_command`, for listings.
    pub fn kind(&self) -> &'static str {
        match self {
            SecretSource::Env(_) => "from_env",
            SecretSource::File(_) => "from_file",
            SecretSource::Command(_) => "from_command",
        }
    }
}

/// How the sandbox gets the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// A placeholder inside; the door swaps in the real value (the default).
    Door,
    /// The real value in the environment (weaker: the sandbox holds the secret).
    Env,
    /// The real value in a file under `/run/cordon/secrets/` (weaker, as `Env`).
    File,
}

impl Inject {
    /// The spelling used in policy files.
    pub fn name(self) -> &'static str {
        match self {
            Inject::Door => "door",
            Inject::Env => "env",
            Inject::File => "file",
        }
    }
}

/// One `[secrets.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDef {
    /// The table key: also the variable the sandbox sees.
    pub name: String,
    /// Where the value comes from.
    pub source: SecretSource,
    /// Seconds a `from_command` value lasts before the command runs again.
    pub ttl: Option<u64>,
    /// Hosts (or `*.domain`) that may receive the real value; lower-case.
    pub hosts: Vec<String>,
    /// The value may also go over plain HTTP.
    pub allow_plaintext: bool,
    /// Placeholders in the URL query are replaced too.
    pub in_query: bool,
    /// Placeholders in request bodies are replaced too.
    pub in_body: bool,
    /// How the sandbox gets it.
    pub inject: Inject,
}

/// One `[requests."HOST"]` table: what may be sent to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTable {
    /// Lower-case host name.
    pub host: String,
    /// `METHOD /path-glob` entries.
    pub allow: Vec<RequestRule>,
}

/// One `METHOD /path-glob` entry of `[requests."HOST"] allow`, parsed once here; the door
/// matches requests against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRule {
    /// Upper-case method, or `None` for `*`.
    pub method: Option<String>,
    /// Glob over the URL path (no query).
    pub path: String,
    /// The entry as written, for messages.
    pub text: String,
}

impl RequestRule {
    /// Parses `METHOD /glob`. The method is `*` or a token of letters; the glob starts with `/`.
    pub fn parse(text: &str) -> Result<RequestRule, String> {
        let mut parts = text.split_whitespace();
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "{text:?}: expected \"METHOD /path\" (e.g. \"GET /**\" or \"POST /repos/acme/*/pulls\")"
            ));
        };
        let method = if method == "*" {
            None
        } else if method.bytes().all(|b| b.is_ascii_alphabetic()) {
            Some(method.to_ascii_uppercase())
        } else {
            return Err(format!("{text:?}: {method:?} is not a method or `*`"));
        };
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(format!(
                "{text:?}: the path must start with `/` and carry no query"
            ));
        }
        Ok(RequestRule {
            method,
            path: path.to_string(),
            text: text.trim().to_string(),
        })
    }
}

/// Host names in `hosts` and `[requests."HOST"]`: a name, or `*.` and a name.
pub(crate) fn check_secret_host(h: &str) -> Result<(), String> {
    let body = h.strip_prefix("*.").unwrap_or(h);
    let ok = !body.is_empty()
        && body.contains('.')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!("{h:?} is not a host name (or `*.domain`)"))
    }
}
