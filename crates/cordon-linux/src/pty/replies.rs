//! Terminal replies that reach the sandbox's pty when nobody reads them as replies.
//!
//! A program asks the person's terminal something (device attributes, the cursor position, a
//! colour) and reads the answer in raw mode. When it has exited or given up before the answer
//! comes (a shell's `printf '\033[c'; exit`, a TUI quitting), the answer reaches a pty in its
//! ordinary line mode: the line discipline echoes it onto the screen (`^[[?1;2c^[[4;1R` before
//! the person's prompt) and leaves it in the next line a program reads. A reader that waits
//! for a reply has switched echo or line mode off, so while both are on, complete replies are
//! dropped instead of typed in. No key sends these shapes, except a modified F3 that some
//! terminals send as a cursor report, which line mode would only have echoed as junk.

use rustix::termios::{LocalModes, Termios};

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// Whether the pty is in line mode with echo: nobody is reading a reply now.
pub(crate) fn nobody_waits(t: &Termios) -> bool {
    t.local_modes
        .contains(LocalModes::ICANON | LocalModes::ECHO)
}

/// `input` without the complete terminal replies in it; `None` when it holds none. A reply cut
/// off at the end of `input` is kept (it is passed on as it is, as before).
pub(crate) fn strip(input: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    let mut kept_to = 0;
    while i < input.len() {
        if input[i] != ESC {
            i += 1;
            continue;
        }
        match reply_len(&input[i..]) {
            Some(n) => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(input.len()));
                o.extend_from_slice(&input[kept_to..i]);
                i += n;
                kept_to = i;
            }
            None => i += 1,
        }
    }
    let mut o = out?;
    o.extend_from_slice(&input[kept_to..]);
    Some(o)
}

/// The length of the complete reply `s` starts with (`s[0]` is ESC), if it is one.
fn reply_len(s: &[u8]) -> Option<usize> {
    match s.get(1)? {
        b'[' => csi_reply_len(s),
        // OSC (colours, the clipboard) and DCS (version, settings, capabilities): no key sends
        // them; they end with BEL (OSC only) or ST.
        b']' => string_end(s, true),
        b'P' => string_end(s, false),
        _ => None,
    }
}

/// OSC/DCS body up to its terminator.
fn string_end(s: &[u8], bel_ends: bool) -> Option<usize> {
    let mut j = 2;
    while j < s.len() {
        match s[j] {
            BEL if bel_ends => return Some(j + 1),
            ESC => return (s.get(j + 1) == Some(&b'\\')).then_some(j + 2),
            _ => j += 1,
        }
    }
    None
}

/// CSI replies: device attributes (`CSI ? … c`, `CSI > … c`, `CSI = … c`), the cursor report
/// (`CSI row ; col R`), the status report (`CSI 0 n`, `CSI 3 n`), mode reports (`CSI ? … $ y`),
/// the keyboard protocol's flags (`CSI ? flags u`).
fn csi_reply_len(s: &[u8]) -> Option<usize> {
    let mut j = 2;
    let prefix = match s.get(j) {
        Some(p @ (b'?' | b'>' | b'=' | b'<')) => {
            j += 1;
            Some(*p)
        }
        _ => None,
    };
    let params_at = j;
    while s
        .get(j)
        .is_some_and(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
    {
        j += 1;
    }
    let params = &s[params_at..j];
    let intermediate_at = j;
    while s.get(j).is_some_and(|b| (0x20..=0x2f).contains(b)) {
        j += 1;
    }
    let intermediates = &s[intermediate_at..j];
    let fin = *s.get(j)?;
    if !(0x40..=0x7e).contains(&fin) {
        return None;
    }
    let reply = match (prefix, intermediates, fin) {
        (Some(b'?' | b'>' | b'='), b"", b'c') => true,
        (None, b"", b'R') => params.contains(&b';'),
        (None, b"", b'n') => matches!(params, b"0" | b"3"),
        (Some(b'?') | None, b"$", b'y') => true,
        (Some(b'?'), b"", b'u') => true,
        _ => false,
    };
    reply.then_some(j + 1)
}

#[cfg(test)]
mod tests {
    use super::strip;

    fn s(input: &[u8]) -> Vec<u8> {
        strip(input).unwrap_or_else(|| input.to_vec())
    }

    #[test]
    fn replies_are_dropped_and_the_rest_is_kept() {
        assert_eq!(s(b"\x1b[?1;2c\x1b[4;1R"), b"");
        assert_eq!(s(b"ab\x1b[?62;22cde"), b"abde");
        assert_eq!(s(b"\x1b[>41;371;0c\x1b[0n"), b"");
        assert_eq!(s(b"\x1b]11;rgb:0000/0000/0000\x07x"), b"x");
        assert_eq!(s(b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\"), b"");
        assert_eq!(s(b"\x1bP>|xterm(390)\x1b\\"), b"");
        assert_eq!(s(b"\x1b[?2004;2$y\x1b[?0u"), b"");
    }

    #[test]
    fn keys_and_partial_replies_pass() {
        for keys in [
            &b"ls -l\r"[..],
            b"\x1b[A\x1b[B\x1b[C\x1b[D",
            b"\x1b[1;5C\x1b[3~\x1b[200~paste\x1b[201~",
            b"\x1bOP\x1b[15~",
            b"\x1b[6n",
            b"\x1b[?1;2",
            b"\x1b]11;rgb:00",
            "\u{e9}t\u{e9} \u{9b}".as_bytes(),
            b"\x1b",
        ] {
            assert_eq!(strip(keys), None, "{keys:?}");
        }
    }
}
