//! Trust records for project policy files: `<sha256 hex> <absolute path>` lines. Trust is
//! bound to the exact content, so editing a trusted `.cordon.toml` (or an attacker swapping
//! it) makes it untrusted again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::PolicyError;

/// Lower-case hex SHA-256 of `content`.
pub fn content_hash(content: &str) -> String {
    hex(&Sha256::digest(content.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The set of trusted project files: one hash per absolute path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    entries: BTreeMap<PathBuf, String>,
}

impl TrustStore {
    /// Parses the text of a trust file. Blank lines and `#` comments are skipped; any other
    /// malformed line is an error (a corrupted trust file must not silently trust anything).
    /// `file` is only used in error messages.
    pub fn parse(file: &Path, text: &str) -> Result<TrustStore, PolicyError> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |col: usize, msg: &str| PolicyError::at(file, i + 1, col, msg);
            let (hash, path) = line
                .split_once(' ')
                .ok_or_else(|| bad(1, "expected `<sha256> <absolute path>`"))?;
            if hash.len() != 64
                || !hash
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(bad(1, "expected 64 lower-case hex digits"));
            }
            let path = PathBuf::from(path);
            if !path.is_absolute() || path.as_os_str().is_empty() {
                return Err(bad(66, "expected an absolute path"));
            }
            entries.insert(path, hash.to_string());
        }
        Ok(TrustStore { entries })
    }

    /// The file text: sorted lines, each `<sha256> <path>\n`.
    pub fn format(&self) -> String {
        let mut s = String::new();
        for (path, hash) in &self.entries {
            s.push_str(hash);
            s.push(' ');
            s.push_str(&path.to_string_lossy());
            s.push('\n');
        }
        s
    }

    /// Records that the file at `path` with this exact `content` is trusted (replacing any
    /// earlier record for the path). Refuses paths that could not be stored faithfully.
    pub fn trust(&mut self, path: &Path, content: &str) -> Result<(), PolicyError> {
        let text = path.to_str().ok_or_else(|| {
            PolicyError::plain(format!(
                "cannot trust {}: path is not valid UTF-8",
                path.display()
            ))
        })?;
        if !path.is_absolute() || text.contains(['\n', '\r', '\0']) {
            return Err(PolicyError::plain(format!(
                "cannot trust {}: need an absolute path without newlines",
                path.display()
            )));
        }
        self.entries
            .insert(path.to_path_buf(), content_hash(content));
        Ok(())
    }

    /// Forgets the record for `path`; returns whether there was one.
    pub fn untrust(&mut self, path: &Path) -> bool {
        self.entries.remove(path).is_some()
    }

    /// Is the file at `path` with this `content` trusted?
    pub fn is_trusted(&self, path: &Path, content: &str) -> bool {
        self.entries
            .get(path)
            .is_some_and(|h| *h == content_hash(content))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256() {
        assert_eq!(
            content_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn round_trip_and_content_binding() {
        let mut t = TrustStore::default();
        t.trust(Path::new("/w/a b/.cordon.toml"), "x = 1").unwrap();
        t.trust(Path::new("/w/c/.cordon.toml"), "y").unwrap();
        let text = t.format();
        let back = TrustStore::parse(Path::new("trust"), &text).unwrap();
        assert_eq!(back, t);
        assert!(back.is_trusted(Path::new("/w/a b/.cordon.toml"), "x = 1"));
        assert!(!back.is_trusted(Path::new("/w/a b/.cordon.toml"), "x = 2"));
        assert!(!back.is_trusted(Path::new("/w/other/.cordon.toml"), "x = 1"));
        let mut back = back;
        assert!(back.untrust(Path::new("/w/c/.cordon.toml")));
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn malformed_lines_are_errors() {
        let h = content_hash("");
        for bad in [
            "nohash",
            &format!("{h} relative/path"),
            &format!("{} /x", h.to_uppercase()),
            "abc /x",
        ] {
            let e = TrustStore::parse(Path::new("/t"), bad).unwrap_err();
            assert!(e.to_string().starts_with("/t:1:"), "{e}");
        }
        assert!(TrustStore::parse(Path::new("/t"), "# c\n\n")
            .unwrap()
            .is_empty());
        let mut t = TrustStore::default();
        assert!(t.trust(Path::new("/a\nb"), "").is_err());
        assert!(t.trust(Path::new("rel"), "").is_err());
    }
}
