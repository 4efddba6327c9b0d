//! Streaming search-and-replace over a body that arrives in chunks: a value split across two
//! chunks is still found, because a tail that could be the start of one is held back until
//! the next chunk (or the end) decides.

/// What to do where a pattern occurs.
#[derive(Clone)]
pub enum Action {
    /// Put these bytes in its place.
    Replace(Vec<u8>),
    /// Stop: the stream carries something it must not (the index says which secret).
    Forbid(usize),
}

/// One pattern (never empty).
#[derive(Clone)]
pub struct Pattern {
    /// The bytes looked for.
    pub from: Vec<u8>,
    /// What happens where they occur.
    pub action: Action,
}

/// The streaming replacer.
pub struct Stream {
    pats: Vec<Pattern>,
    first: [bool; 256],
    carry: Vec<u8>,
}

impl Stream {
    /// A replacer for `pats`; empty patterns are dropped.
    pub fn new(pats: Vec<Pattern>) -> Self {
        let pats: Vec<Pattern> = pats.into_iter().filter(|p| !p.from.is_empty()).collect();
        let mut first = [false; 256];
        for p in &pats {
            first[p.from[0] as usize] = true;
        }
        Stream {
            pats,
            first,
            carry: Vec::new(),
        }
    }

    /// Whether any pattern changes the length of what passes (then Content-Length is void).
    pub fn changes_length(&self) -> bool {
        self.pats
            .iter()
            .any(|p| matches!(&p.action, Action::Replace(to) if to.len() != p.from.len()))
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    /// Feeds a chunk; returns what may be passed on now. `Err(i)`: a `Forbid(i)` pattern.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, usize> {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        self.run(data, false)
    }

    /// Ends the stream; returns the held-back tail (replaced where it matches).
    pub fn finish(&mut self) -> Result<Vec<u8>, usize> {
        let data = std::mem::take(&mut self.carry);
        self.run(data, true)
    }

    fn run(&mut self, data: Vec<u8>, last: bool) -> Result<Vec<u8>, usize> {
        if self.pats.is_empty() {
            return Ok(data);
        }
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            // Skip to the next byte that can start a pattern.
            let next = data[i..]
                .iter()
                .position(|b| self.first[*b as usize])
                .map_or(data.len(), |n| i + n);
            out.extend_from_slice(&data[i..next]);
            i = next;
            if i >= data.len() {
                break;
            }
            let rest = &data[i..];
            if let Some(p) = self.pats.iter().find(|p| rest.starts_with(&p.from)) {
                match &p.action {
                    Action::Replace(to) => out.extend_from_slice(to),
                    Action::Forbid(k) => return Err(*k),
                }
                i += p.from.len();
                continue;
            }
            if !last && self.pats.iter().any(|p| p.from.starts_with(rest)) {
                // Could be a pattern that the next chunk completes.
                self.carry = rest.to_vec();
                return Ok(out);
            }
            out.push(data[i]);
            i += 1;
        }
        Ok(out)
    }
}

/// Replaces every occurrence in one complete buffer.
pub fn replace_all(pats: &[Pattern], data: &[u8]) -> Result<Vec<u8>, usize> {
    let mut s = Stream::new(pats.to_vec());
    let mut out = s.push(data)?;
    out.extend(s.finish()?);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rep(from: &str, to: &str) -> Pattern {
        Pattern {
            from: from.as_bytes().to_vec(),
            action: Action::Replace(to.as_bytes().to_vec()),
        }
    }

    fn feed(s: &mut Stream, chunks: &[&[u8]]) -> Result<Vec<u8>, usize> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c)?);
        }
        out.extend(s.finish()?);
        Ok(out)
    }

    #[test]
    fn value_split_across_chunks_is_replaced() {
        let mut s = Stream::new(vec![rep("REALSECRET", "PLACEHOLDR")]);
        let out = feed(&mut s, &[b"token: REAL", b"SEC", b"RET and more REALSE"]).unwrap();
        assert_eq!(out, b"token: PLACEHOLDR and more REALSE");
        let mut s = Stream::new(vec![rep("abc", "xyz")]);
        let out = feed(&mut s, &[b"a", b"b", b"c", b"a", b"ab", b"cab"]).unwrap();
        assert_eq!(out, b"xyzaxyzab");
    }

    #[test]
    fn forbid_stops_before_the_pattern_is_passed_on() {
        let mut s = Stream::new(vec![Pattern {
            from: b"ghp_PLACE".to_vec(),
            action: Action::Forbid(3),
        }]);
        let first = s.push(b"data=ghp_PL").unwrap();
        assert_eq!(first, b"data=");
        assert_eq!(s.push(b"ACE..."), Err(3));
    }

    #[test]
    fn different_lengths_and_replace_all() {
        let pats = vec![rep("aa", "b"), rep("cd", "eeee")];
        assert_eq!(replace_all(&pats, b"aaacdx").unwrap(), b"baeeeex");
        assert!(Stream::new(pats).changes_length());
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_result(data in proptest::collection::vec(prop_oneof![Just(b'S'), Just(b'E'), Just(b'C'), Just(b'x')], 0..200), cuts in proptest::collection::vec(0usize..200, 0..10)) {
            let pats = vec![rep("SEC", "abc"), rep("SECS", "wxyz")];
            let whole = replace_all(&pats, &data).unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c <= data.len()).collect();
            cuts.sort_unstable();
            let mut s = Stream::new(pats);
            let mut out = Vec::new();
            let mut at = 0;
            for c in cuts {
                out.extend(s.push(&data[at..c]).unwrap());
                at = c;
            }
            out.extend(s.push(&data[at..]).unwrap());
            out.extend(s.finish().unwrap());
            prop_assert_eq!(out, whole);
        }
    }
}
