//! Making strings from the sandbox safe to show a person: no control or escape sequences
//! (they could move the cursor, retitle the terminal or paint a fake prompt), no
//! bidirectional overrides or invisible characters (they could reorder what is read), and
//! no unbounded length (visibly shortened with "…").

/// The longest string shown for a name or command line, in characters.
pub const MAX_SHOWN: usize = 160;

/// Characters that change how surrounding text is ordered or are invisible.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// `s` with escape sequences and control, bidi and invisible characters removed (tabs and
/// line breaks become spaces), shortened to `max` characters with a trailing "…".
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' | '\u{9b}' | '\u{9d}' => skip_sequence(c, &mut it),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() || invisible(c) => {}
            c => out.push(c),
        }
    }
    shorten(out, max)
}

/// Skips the rest of an escape sequence started by `first` (ESC, CSI or OSC).
fn skip_sequence(first: char, it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let kind = match first {
        '\x1b' => match it.next() {
            Some('[') => '[',
            Some(']') | Some('P') | Some('_') | Some('^') | Some('X') => ']',
            // Two-character sequences (ESC c, ESC 7, ...): already consumed.
            _ => return,
        },
        '\u{9b}' => '[',
        _ => ']',
    };
    if kind == '[' {
        // CSI: parameters and intermediates, then one final byte in @..~.
        for c in it.by_ref() {
            if ('@'..='~').contains(&c) {
                return;
            }
        }
    } else {
        // String sequences end with BEL or ST (ESC \ or U+9C).
        while let Some(c) = it.next() {
            match c {
                '\x07' | '\u{9c}' => return,
                '\x1b' => {
                    if it.peek() == Some(&'\\') {
                        it.next();
                    }
                    return;
                }
                _ => {}
            }
        }
    }
}

fn shorten(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_removed() {
        assert_eq!(clean("a\x1b[31mred\x1b[0m b", 100), "ared b");
        assert_eq!(clean("x\x1b]0;pwned title\x07y", 100), "xy");
        assert_eq!(
            clean("x\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\y", 100),
            "xlinky"
        );
        assert_eq!(clean("x\u{9b}2Jy", 100), "xy");
        assert_eq!(clean("a\x1bcb", 100), "ab");
        assert_eq!(clean("bell\x07\x08\x7f!", 100), "bell!");
        assert_eq!(clean("two\nlines\r\ttab", 100), "two lines  tab");
        // An unterminated sequence swallows the rest rather than leaking it.
        assert_eq!(clean("ok\x1b[99999", 100), "ok");
    }

    #[test]
    fn bidi_and_invisible_are_removed() {
        assert_eq!(clean("evil\u{202E}moc.elgoog", 100), "evilmoc.elgoog");
        assert_eq!(
            clean("a\u{2066}b\u{2069}c\u{200F}d\u{200B}e\u{FEFF}", 100),
            "abcde"
        );
    }

    #[test]
    fn long_strings_are_shortened_visibly() {
        let s = "x".repeat(500);
        let c = clean(&s, 20);
        assert_eq!(c.chars().count(), 20);
        assert!(c.ends_with('…'));
        assert_eq!(clean("short", 20), "short");
        assert_eq!(clean("ünïcödé", 7), "ünïcödé");
    }

    #[test]
    fn nothing_dangerous_survives_arbitrary_input() {
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let s: String = (0..40)
                .filter_map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    char::from_u32((seed >> 8) % 0x2100)
                })
                .collect();
            let c = clean(&s, 30);
            assert!(c.chars().count() <= 30);
            assert!(!c.chars().any(|c| c.is_control() || invisible(c)), "{c:?}");
        }
    }
}
