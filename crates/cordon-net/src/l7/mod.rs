//! Layer 7 at the door: secrets swapped in for their placeholders on the way out (and back
//! on the way in), request rules, and the TLS interception both need for HTTPS.
//!
//! Only hosts that need it are intercepted (a secret's host, a host with request rules);
//! every other connection is tunnelled untouched. Plain-HTTP proxy requests are all looked
//! at (that costs nothing extra: the door parses them anyway).

pub mod b64;
pub mod body;
pub mod ca;
pub(crate) mod intercept;
pub mod placeholder;
pub mod request;
pub mod rules;
pub mod scrub;
pub mod secret;

pub use ca::Ca;
pub use rules::{HostRules, RequestRule, RuleTable};
pub use secret::{Refresh, SecretConf};

use rustls::ClientConfig;
use secret::Live;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// What the door needs for layer 7.
pub struct L7Config {
    /// The secrets, with their real values and placeholders.
    pub secrets: Vec<SecretConf>,
    /// Request rules per host.
    pub rules: Vec<HostRules>,
    /// A label for the CA's name (the sandbox id).
    pub label: String,
}

/// Layer 7 state shared by every connection of one sandbox.
pub struct L7 {
    pub(crate) secrets: Vec<Live>,
    pub(crate) rules: HashMap<String, HostRules>,
    intercept: Vec<String>,
    pub(crate) ca: Ca,
    roots: OnceLock<Result<Arc<ClientConfig>, String>>,
}

/// Whether `pattern` (`host` or `*.domain`) names `host` (both lower-case).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(dom) => {
            host.len() > dom.len() + 1 && host.ends_with(dom) && {
                let cut = host.len() - dom.len() - 1;
                host.as_bytes()[cut] == b'.'
            }
        }
        None => pattern == host,
    }
}

impl L7 {
    /// Builds the state and the CA. Fails only if the CA cannot be made.
    pub fn new(cfg: L7Config) -> Result<L7, String> {
        let mut intercept: Vec<String> = Vec::new();
        for s in &cfg.secrets {
            intercept.extend(s.hosts.iter().map(|h| h.to_ascii_lowercase()));
        }
        let mut rules = HashMap::new();
        for r in cfg.rules {
            let host = r.host.to_ascii_lowercase();
            intercept.push(host.clone());
            rules.insert(host, r);
        }
        intercept.sort();
        intercept.dedup();
        Ok(L7 {
            secrets: cfg.secrets.into_iter().map(Live::new).collect(),
            rules,
            intercept,
            ca: Ca::new(&cfg.label)?,
            roots: OnceLock::new(),
        })
    }

    /// Whether connections to `host` are intercepted.
    pub fn intercepts(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.intercept.iter().any(|p| host_matches(p, &host))
    }

    /// The CA certificate the sandbox must trust (PEM).
    pub fn ca_pem(&self) -> &str {
        self.ca.pem()
    }

    /// The rules for `host`, if it has any.
    pub(crate) fn rules_for(&self, host: &str) -> Option<&HostRules> {
        self.rules.get(&host.to_ascii_lowercase())
    }

    /// The TLS client configuration for upstream connections: the host's trust store
    /// (honouring SSL_CERT_FILE and SSL_CERT_DIR), loaded on first use.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        self.roots
            .get_or_init(|| {
                let loaded = rustls_native_certs::load_native_certs();
                let mut roots = rustls::RootCertStore::empty();
                for c in loaded.certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err("no trusted certificates found on the host (SSL_CERT_FILE, SSL_CERT_DIR or the system store)".into());
                }
                let mut cfg = ClientConfig::builder_with_provider(ca::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(Arc::new(cfg))
            })
            .clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.github.com", "api.github.com"));
        assert!(!host_matches("api.github.com", "xapi.github.com"));
        assert!(host_matches("*.github.com", "api.github.com"));
        assert!(!host_matches("*.github.com", "github.com"));
        assert!(!host_matches("*.github.com", "evilgithub.com"));
    }
}
