//! Byte offsets (what toml reports) to 1-based line and column (what people read).

/// Line and column (both 1-based, column in characters) of byte `offset` in `text`.
/// Offsets past the end or inside a character are clamped, never a panic.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Line starts of one text, so each rule's line is a binary search rather than a rescan
/// (built-in data has hundreds of rules; rescanning made loading quadratic).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self { starts }
    }

    /// 1-based line and column (in characters) of byte `offset` of `text`, the text this
    /// index was built from ([`line_col`] without scanning the whole text).
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let mut end = offset.min(text.len());
        while end > 0 && !text.is_char_boundary(end) {
            end -= 1;
        }
        let col = text
            .get(start.min(end)..end)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, col)
    }

    /// 1-based line of byte `offset` (clamped like [`line_col`]).
    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{line_col, LineIndex};

    #[test]
    fn index_agrees_with_line_col() {
        let t = "ab\ncd\n\né x\n";
        let idx = LineIndex::new(t);
        for off in 0..t.len() + 3 {
            assert_eq!(idx.line(off), line_col(t, off).0, "offset {off}");
        }
    }

    #[test]
    fn positions() {
        let t = "ab\ncd\né x";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 4), (2, 2));
        // after the 2-byte 'é': column counts characters
        assert_eq!(line_col(t, 8), (3, 2));
        // inside 'é' and past the end: clamped
        assert_eq!(line_col(t, 7), (3, 1));
        assert_eq!(line_col(t, 999), (3, 4));
    }
}
