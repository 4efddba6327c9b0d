//! Placeholders: random stand-ins shaped like the real value, so tools that check a token's
//! shape (prefix, length, alphabet) accept them.

/// Prefixes that tools check; kept as they are.
const KNOWN_PREFIXES: &[&str] = &[
    "github_pat_",
    "sk-proj-",
    "sk-ant-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "glpat-",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "npm_",
    "pypi-",
    "hf_",
    "sk-",
];

/// Fewer random characters than this and a shaped placeholder would be guessable.
const MIN_RANDOM: usize = 12;

/// The prefix kept verbatim: a known one, or whatever precedes the first `_`/`-` if short.
fn prefix(real: &str) -> &str {
    if let Some(p) = KNOWN_PREFIXES.iter().find(|p| real.starts_with(**p)) {
        return &real[..p.len()];
    }
    match real.find(['_', '-']) {
        Some(i) if i <= 8 && real[..i].bytes().all(|b| b.is_ascii_alphanumeric()) => &real[..=i],
        _ => "",
    }
}

/// A random byte source (`/dev/urandom` in production, fixed in tests).
pub trait Rand {
    /// A uniformly random byte.
    fn byte(&mut self) -> std::io::Result<u8>;
    /// Uniform in `0..n` (`n` > 0), by rejection so no value is favoured.
    fn below(&mut self, n: u8) -> std::io::Result<u8> {
        let limit = 256 - (256 % u16::from(n));
        loop {
            let b = self.byte()?;
            if u16::from(b) < limit {
                return Ok(b % n);
            }
        }
    }
}

/// Reads `/dev/urandom` in blocks.
pub struct OsRand {
    buf: Vec<u8>,
}

impl OsRand {
    /// Opens nothing yet; the first byte reads a block.
    pub fn new() -> Self {
        OsRand { buf: Vec::new() }
    }
}

impl Default for OsRand {
    fn default() -> Self {
        Self::new()
    }
}

impl Rand for OsRand {
    fn byte(&mut self) -> std::io::Result<u8> {
        if self.buf.is_empty() {
            use std::io::Read;
            let mut b = vec![0u8; 256];
            std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
            self.buf = b;
        }
        self.buf
            .pop()
            .ok_or_else(|| std::io::Error::other("empty random buffer"))
    }
}

/// A fresh placeholder for `real`: the same length, the kept prefix, and each other
/// character replaced by a random one of its class (lower, upper, digit; hex stays hex);
/// punctuation stays. A value with too few random characters gets a longer, unshaped one.
/// Never equal to `real`, never a substring of it or containing it.
pub fn make(real: &str, rng: &mut impl Rand) -> std::io::Result<String> {
    let keep = prefix(real);
    let body = &real[keep.len()..];
    let random = body.bytes().filter(|b| b.is_ascii_alphanumeric()).count();
    let hex = body
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || !b.is_ascii_alphanumeric());
    for _ in 0..16 {
        let p = if random >= MIN_RANDOM {
            let mut s = String::with_capacity(real.len());
            s.push_str(keep);
            for c in body.chars() {
                s.push(match c {
                    'a'..='z' if hex => (b"abcdef"[rng.below(6)? as usize]) as char,
                    'A'..='Z' if hex => (b"ABCDEF"[rng.below(6)? as usize]) as char,
                    'a'..='z' => (b'a' + rng.below(26)?) as char,
                    'A'..='Z' => (b'A' + rng.below(26)?) as char,
                    '0'..='9' => (b'0' + rng.below(10)?) as char,
                    other => other,
                });
            }
            s
        } else {
            let mut s = String::from("cordon-placeholder-");
            for _ in 0..24 {
                s.push((b'a' + rng.below(26)?) as char);
            }
            s
        };
        if p != real && (real.is_empty() || !p.contains(real)) && !real.contains(&p) {
            return Ok(p);
        }
    }
    // Sixteen collisions in a row cannot happen with a working random source.
    Err(std::io::Error::other("the random source repeats itself"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl Rand for Counter {
        fn byte(&mut self) -> std::io::Result<u8> {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            Ok(self.0)
        }
    }

    fn class(c: char) -> u8 {
        if c.is_ascii_lowercase() {
            1
        } else if c.is_ascii_uppercase() {
            2
        } else if c.is_ascii_digit() {
            3
        } else {
            c as u8
        }
    }

    #[test]
    fn keeps_prefix_length_and_classes() {
        let mut r = OsRand::new();
        for real in [
            "ghp_aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "sk-proj-abcDEF123ghiJKL456mnoPQR789",
            "xoxb-123456789012-1234567890123-abcdefABCDEF",
            "glpat-abcdefghij0123456789",
            "hf_abcdefghijklmnopqrstuvwxyzABCD",
            "AKIAIOSFODNN7EXAMPLEKEY",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc123def456",
        ] {
            let p = make(real, &mut r).unwrap();
            assert_ne!(p, real);
            assert_eq!(p.len(), real.len(), "{real} -> {p}");
            assert_eq!(prefix(&p), prefix(real));
            assert!(p.starts_with(prefix(real)));
            for (a, b) in p.chars().zip(real.chars()) {
                assert_eq!(class(a), class(b), "{real} -> {p}");
            }
        }
        let p = make("ghp_aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5", &mut r).unwrap();
        assert!(p.starts_with("ghp_"));
        let p = make("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", &mut r).unwrap();
        assert!(p.starts_with("github_pat_"));
    }

    #[test]
    fn hex_stays_hex_and_fresh_each_time() {
        let mut r = OsRand::new();
        let real = "0123456789abcdef0123456789abcdef";
        let a = make(real, &mut r).unwrap();
        let b = make(real, &mut r).unwrap();
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn short_values_get_a_long_unshaped_placeholder() {
        let mut r = Counter(1);
        let p = make("abc", &mut r).unwrap();
        assert!(p.starts_with("cordon-placeholder-") && p.len() > 20);
        let p = make("", &mut r).unwrap();
        assert!(!p.is_empty());
    }
}
