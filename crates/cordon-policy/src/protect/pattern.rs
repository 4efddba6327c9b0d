//! Component-wise glob patterns for protected paths.
//!
//! Syntax: `/`-separated components; `*` and `?` inside one component; `**` as a whole component
//! matches zero or more components. Nothing else is special, and `[ ] { } \` are refused rather
//! than taken literally, so nobody writes `*.{yml,yaml}` believing it protects something.
//! Matching is ASCII case-insensitive (patterns are stored lower-cased; callers lower-case the
//! path), because a case-insensitive mount (vfat, ciopfs, casefolded ext4) would make `.GIT/config`
//! the same file as `.git/config`.

/// Enough for any real configuration path; lets the matcher keep its state in one `u64`.
const MAX_SEGS: usize = 62;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(Box<[u8]>),
    Glob(Box<[u8]>),
    AnyDepth,
}

/// A compiled pattern: a small NFA over path components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    segs: Vec<Seg>,
}

impl Pattern {
    /// Compiles a relative pattern (no leading `/`; callers strip anchors).
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        if text.contains('\0') {
            return Err("pattern contains a NUL byte".into());
        }
        let mut segs = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => continue,
                ".." => return Err("pattern contains a `..` component".into()),
                "**" => {
                    // `**/**` is the same as `**`; keeping one keeps the NFA small.
                    if segs.last() != Some(&Seg::AnyDepth) {
                        segs.push(Seg::AnyDepth);
                    }
                }
                _ => {
                    if part.contains("**") {
                        return Err(format!("`**` must be a whole path component in `{part}`"));
                    }
                    if let Some(c) = part
                        .chars()
                        .find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\'))
                    {
                        return Err(format!(
                            "unsupported glob character `{c}` (only `*`, `?` and `**` are special)"
                        ));
                    }
                    let lower = part.to_ascii_lowercase().into_bytes().into_boxed_slice();
                    if part.contains(['*', '?']) {
                        segs.push(Seg::Glob(lower));
                    } else {
                        segs.push(Seg::Lit(lower));
                    }
                }
            }
        }
        if segs.is_empty() {
            return Err("empty pattern".into());
        }
        if segs.len() > MAX_SEGS {
            return Err(format!("pattern has more than {MAX_SEGS} components"));
        }
        Ok(Pattern { segs })
    }

    /// An exact path (no glob characters are special), optionally with everything below it.
    pub(crate) fn literal(comps: &[&[u8]], subtree: bool) -> Result<Pattern, String> {
        let mut segs: Vec<Seg> = comps
            .iter()
            .map(|c| Seg::Lit(c.to_ascii_lowercase().into_boxed_slice()))
            .collect();
        if subtree {
            segs.push(Seg::AnyDepth);
        }
        if segs.is_empty() {
            return Err("empty pattern".into());
        }
        if segs.len() > MAX_SEGS {
            return Err(format!("pattern has more than {MAX_SEGS} components"));
        }
        Ok(Pattern { segs })
    }

    /// The first component when it is a plain name (used to index rules).
    pub(crate) fn first_literal(&self) -> Option<&[u8]> {
        match self.segs.first() {
            Some(Seg::Lit(l)) => Some(l),
            _ => None,
        }
    }

    /// Does the pattern match exactly `comps` (already lower-cased)?
    pub(crate) fn matches(&self, comps: &[&[u8]]) -> bool {
        self.run(comps) & (1u64 << self.segs.len()) != 0
    }

    /// After matching all of `comps`, could one or more further components complete a match?
    /// That is: is `comps` a strict ancestor of something this pattern matches?
    pub(crate) fn could_extend(&self, comps: &[&[u8]]) -> bool {
        self.run(comps) & ((1u64 << self.segs.len()) - 1) != 0
    }

    /// Set of NFA states (bit j = "the first j segments are matched") after `comps`.
    fn run(&self, comps: &[&[u8]]) -> u64 {
        let mut states = self.closure(1);
        for comp in comps {
            if states == 0 {
                break;
            }
            let mut next = 0u64;
            for (j, seg) in self.segs.iter().enumerate() {
                if states & (1u64 << j) == 0 {
                    continue;
                }
                let advance = match seg {
                    Seg::AnyDepth => {
                        next |= 1u64 << j;
                        true
                    }
                    Seg::Lit(l) => **l == **comp,
                    Seg::Glob(g) => glob_component(g, comp),
                };
                if advance {
                    next |= 1u64 << (j + 1);
                }
            }
            states = self.closure(next);
        }
        states
    }

    /// `**` may match nothing: wherever we stand before one, we also stand after it.
    fn closure(&self, mut states: u64) -> u64 {
        for (j, seg) in self.segs.iter().enumerate() {
            if *seg == Seg::AnyDepth && states & (1u64 << j) != 0 {
                states |= 1u64 << (j + 1);
            }
        }
        states
    }
}

/// `*` / `?` match within one component (`?` is one byte).
fn glob_component(pat: &[u8], s: &[u8]) -> bool {
    crate::glob::glob_bytes(pat, s)
}

/// Splits an absolute or relative path (as lower-cased bytes) into components, dropping empty
/// and `.` ones.
pub(crate) fn components(lower: &[u8]) -> Vec<&[u8]> {
    lower
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        Pattern::parse(p)
            .unwrap()
            .matches(&components(lower.as_bytes()))
    }
    fn ext(p: &str, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        Pattern::parse(p)
            .unwrap()
            .could_extend(&components(lower.as_bytes()))
    }

    #[test]
    fn literal_and_globs() {
        assert!(m(".git/config", ".git/config"));
        assert!(m(".git/config", ".GIT/Config"));
        assert!(!m(".git/config", ".git/config.lock"));
        assert!(m("*.code-workspace", "a.code-workspace"));
        assert!(m("*.code-workspace", ".code-workspace"));
        assert!(!m("*.code-workspace", "a.code-workspace.bak"));
        assert!(m("python*/x", "python3.11/x"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
    }

    #[test]
    fn any_depth() {
        assert!(m(".git/hooks/**", ".git/hooks"));
        assert!(m(".git/hooks/**", ".git/hooks/pre-commit"));
        assert!(m(".git/hooks/**", ".git/hooks/a/b/c"));
        assert!(!m(".git/hooks/**", ".git/hookz/a"));
        assert!(m(".git/modules/**/config", ".git/modules/a/config"));
        assert!(m(".git/modules/**/config", ".git/modules/a/b/config"));
        assert!(m(".git/modules/**/config", ".git/modules/config"));
        assert!(!m(".git/modules/**/config", ".git/modules/a/config/x"));
        assert!(m("**/.idea/**", ".idea/workspace.xml"));
    }

    #[test]
    fn extension() {
        assert!(ext(".git/hooks/**", ".git"));
        assert!(ext(".git/hooks/**", ".git/hooks"));
        assert!(ext(".git/hooks/**", ".git/hooks/x"));
        assert!(!ext(".git/config", ".git/config"));
        assert!(ext(".git/config", ".git"));
        assert!(!ext(".git/config", "src"));
        assert!(ext(".git/modules/**/config", ".git/modules/a/b"));
        assert!(ext("a", ""));
    }

    #[test]
    fn refused_syntax() {
        for bad in [
            "",
            "/",
            "a/../b",
            "a**",
            "*.{yml,yaml}",
            "[ab]",
            "a\\b",
            "a\0",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = vec!["a"; 63].join("/");
        assert!(Pattern::parse(&long).is_err());
    }
}
