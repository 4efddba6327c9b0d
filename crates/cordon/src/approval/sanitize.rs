//! Making strings from the sandbox safe to show a person: no control or escape sequences
//! (they could move the cursor, retitle the terminal or paint a fake prompt), no
//! bidirectional controls, Unicode tag characters or other invisible characters (they could
//! reorder or hide what is read), and no unbounded length (visibly shortened with "…"; names
//! are shortened in the middle, so their end, which says whose they are, stays visible).

/// The longest string shown for a name or command line, in characters.
pub const MAX_SHOWN: usize = 160;

/// Characters that change how surrounding text is ordered or are invisible.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{180E}' | '\u{034F}' | '\u{E0000}'..='\u{E007F}')
}

/// `s` with escape sequences and control, bidi and invisible characters removed (tabs and
/// line breaks become spaces), shortened to `max` characters with a trailing "…".
pub fn clean(s: &str, max: usize) -> String {
    shorten(strip(s), max)
}

/// Like [`clean`], but a long `s` loses its middle, not its end: a host name keeps at least
/// its last two labels (three when the second-level one is short, as in `co.uk`), a path
/// its file name, so `api.example.com.<many x>.evil.test` still shows `evil.test`.
pub fn clean_name(s: &str, max: usize) -> String {
    let s = strip(s);
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    let labels: Vec<&str> = s.rsplit(['.', '/']).take(3).collect();
    let owner = match labels.as_slice() {
        [tld, sld, third, ..] if sld.chars().count() <= 3 => {
            [tld, sld, third]
                .iter()
                .map(|l| l.chars().count())
                .sum::<usize>()
                + 2
        }
        [tld, sld, ..] => tld.chars().count() + sld.chars().count() + 1,
        _ => 0,
    };
    let tail = owner.max(max / 2).min(max.saturating_sub(2));
    let head = max.saturating_sub(tail + 1);
    let chars: Vec<char> = s.chars().collect();
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[n - tail..]);
    out
}

/// `s` for a person to review, nothing dropped: text as it is, but every control, bidi or
/// invisible character other than line breaks and tabs shown as an escape (`\x1b`,
/// `\u{202e}`), so what the sandbox wrote can neither act on the terminal nor hide from the
/// reader (a diff that retitled the terminal and showed `+{"x":""}` hid its payload).
pub fn visible(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn strip(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' | '\u{9b}' | '\u{9d}' => skip_sequence(c, &mut it),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() || invisible(c) => {}
            c => out.push(c),
        }
    }
    out
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
    fn visible_escapes_every_control_and_keeps_text() {
        assert_eq!(visible("a\x1b]0;t\x07b"), "a\\x1b]0;t\\x07b");
        assert_eq!(visible("line\n\tnext"), "line\n\tnext");
        assert_eq!(
            visible("x\u{9b}2J\u{202e}y\u{e0041}"),
            "x\\x9b2J\\u{202e}y\\u{e0041}"
        );
        assert_eq!(visible("plain {\"k\": 1} é"), "plain {\"k\": 1} é");
        assert_eq!(visible("\r\x7f\0"), "\\x0d\\x7f\\x00");
    }

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
    fn tag_characters_are_removed() {
        let tagged: String = "api.example.com"
            .chars()
            .chain(['\u{E0001}', '\u{E0065}', '\u{E007F}'])
            .collect();
        assert_eq!(clean(&tagged, 100), "api.example.com");
        assert_eq!(clean_name(&tagged, 100), "api.example.com");
    }

    #[test]
    fn long_names_keep_their_end() {
        let host = format!("api.anthropic.com.{}.evil.test", "x".repeat(200));
        let c = clean_name(&host, 160);
        assert_eq!(c.chars().count(), 160);
        assert!(c.starts_with("api.anthropic.com.x"), "{c}");
        assert!(c.ends_with("xxx.evil.test"), "{c}");
        assert!(c.contains('…'));
        // A long last label still shows whole with its parent.
        let label = "y".repeat(63);
        let host = format!("{}.{label}.example.co.uk", "a".repeat(150));
        let c = clean_name(&host, 100);
        assert!(c.ends_with("example.co.uk"), "{c}");
        let path = format!("/home/me/{}/secret.txt", "d".repeat(300));
        assert!(clean_name(&path, 80).ends_with("/secret.txt"));
        assert_eq!(clean_name("short.test", 160), "short.test");
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
