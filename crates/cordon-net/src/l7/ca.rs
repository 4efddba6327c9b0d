//! The sandbox's certificate authority: generated in memory at start (ECDSA P-256), its key
//! never written anywhere; leaf certificates minted per host on first use and cached.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most leaf configurations kept at once.
const MAX_LEAVES: usize = 256;

/// The CA and its leaf cache.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: String,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

fn serial() -> Result<SerialNumber, String> {
    use super::placeholder::{OsRand, Rand};
    let mut r = OsRand::new();
    let mut b = Vec::with_capacity(16);
    for _ in 0..16 {
        b.push(r.byte().map_err(|e| format!("random serial: {e}"))?);
    }
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(SerialNumber::from(b))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Hinnant's algorithm).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// Valid from yesterday (clock skew) for about two years: longer than any session.
fn validity(p: &mut CertificateParams) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0);
    let (y, m, d) = civil(today - 1);
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil(today + 730);
    p.not_after = rcgen::date_time_ymd(y, m, d);
}

/// The crypto provider everything here uses (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Ca {
    /// A fresh CA named after `label` (the sandbox id).
    pub fn new(label: &str) -> Result<Ca, String> {
        let err = |e: rcgen::Error| format!("cannot make the sandbox's certificate authority: {e}");
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.distinguished_name
            .push(DnType::CommonName, format!("cordon sandbox CA ({label})"));
        p.distinguished_name
            .push(DnType::OrganizationName, "cordon");
        p.serial_number = Some(serial()?);
        validity(&mut p);
        let cert = p.self_signed(&key).map_err(err)?;
        let pem = cert.pem();
        Ok(Ca {
            cert,
            key,
            pem,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate (PEM): what the sandbox trusts. Holds no key.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The TLS server configuration for `host` (a leaf for it, signed by this CA), minted on
    /// first use. Only `http/1.1` is offered in ALPN.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        if let Some(c) = self.leaves.lock().ok().and_then(|m| m.get(host).cloned()) {
            return Ok(c);
        }
        let err = |e: rcgen::Error| format!("cannot mint a certificate for {host}: {e}");
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut p = CertificateParams::new(vec![host.to_string()]).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, host);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.serial_number = Some(serial()?);
        validity(&mut p);
        let leaf = p.signed_by(&key, &self.cert, &self.key).map_err(err)?;
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), self.cert.der().clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| format!("TLS configuration for {host}: {e}"))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        if let Ok(mut m) = self.leaves.lock() {
            // `*.domain` hosts could name endless subdomains: keep the cache bounded.
            if m.len() >= MAX_LEAVES {
                m.clear();
            }
            m.insert(host.to_string(), cfg.clone());
        }
        Ok(cfg)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(20_513), (2026, 3, 1));
    }

    #[test]
    fn ca_pem_has_no_key_and_leaves_are_cached() {
        let ca = Ca::new("t").unwrap();
        assert!(ca.pem().contains("BEGIN CERTIFICATE"));
        assert!(!ca.pem().contains("PRIVATE"));
        let a = ca.server_config("api.example.com").unwrap();
        let b = ca.server_config("api.example.com").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
