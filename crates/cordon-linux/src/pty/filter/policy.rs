//! Which complete escape sequences may reach the person's real terminal.
//!
//! The filter (see the parent module) only ever asks about *complete, well-formed* sequences;
//! this module is the list of decisions, each with its reason. The guiding question for every
//! entry: can the sequence make the outer terminal *act* beyond drawing in its own window
//! (touch the clipboard, files, other programs, the window itself, key definitions), or make
//! it *reply* with bytes that someone other than the person chose (a reply that arrives after
//! cordon exits is typed into the outer shell)? If so it is dropped. Replies that are fixed
//! formats of digits (cursor position, device attributes, mode reports, colours) are allowed:
//! full-screen programs (Ink, vim, neovim) rely on them, and while cordon runs the replies go
//! to the sandboxed program, not to the outer shell.
//!
//! Summary of what is dropped, and why:
//! - `OSC 52` clipboard write and read: writes plant commands for the person to paste; reads
//!   leak whatever the person copied (passwords) into the sandbox.
//! - `OSC 1337` (iTerm2: file download, clipboard copy, user variables, attention),
//!   `OSC 5113` (kitty file transfer), `OSC 5522` (kitty clipboard), `OSC 99` and `OSC 9`
//!   (desktop notifications; ConEmu's `OSC 9` also runs GUI macros), `OSC 777` (urxvt hands it
//!   to Perl extensions; other terminals raise notifications), `OSC 633` shell
//!   integration (VS Code: sets the command line that the terminal offers to re-run), `OSC 7`/`OSC 6`
//!   (working directory: new tabs would open where the sandbox says), `OSC 3` (sets X
//!   properties), `OSC 46` (xterm: changes the log file, i.e. writes to a path), `OSC 50`
//!   (fonts), and every OSC number not in the allowlist.
//! - `CSI 20 t` / `CSI 21 t`: report the icon label / window title, which the sandbox set
//!   itself: the classic way to type attacker-chosen text into the outer shell.
//!   `CSI 1..=11 t` (iconify, move, resize, raise, lower, maximise, full-screen: hiding or
//!   covering the window) and `CSI >=24 t` (resize to N lines) are dropped too; only the
//!   size reports 14, 15, 16, 18, 19 and the title stack push/pop 22, 23 (vim) pass.
//! - `CSI > ... t` (xterm title modes: only matter for the blocked reports) and any other
//!   `CSI <private> ... t`.
//! - `CSI ... * y` (DECRQCRA): a checksum of a screen rectangle, enough to read back what the
//!   screen showed before the sandbox started, character by character.
//! - `CSI ... i` (media copy): prints the screen or enters printer pass-through; xterm can
//!   pipe this into a command.
//! - `CSI ... " p` (DECSCL) and `ESC SP G` / `ESC SP L|M|N`: switch the terminal to 8-bit
//!   controls, after which raw C1 bytes would become live controls.
//! - `ESC % @` (leave UTF-8): same reason; the filter assumes a UTF-8 terminal.
//! - `CSI ? 2 l` (VT52 mode) and `CSI ? 38 h` (Tektronix mode): the terminal would parse
//!   later bytes with a different grammar than the filter. Also `ESC k` (GNU screen and
//!   tmux read a window-name string after it) and every other unlisted `ESC x`.
//! - `CSI ... $ u` (DECRQTSR) and `CSI ... & u` (DECRQUPSS): state reports nobody needs.
//! - `CSI 2 h` (KAM: locks the keyboard) and `CSI 12 h|l` (SRM: local echo).
//! - ENQ (0x05): makes the terminal send its answerback string.
//! - all DCS except `DCS = 1 s` / `DCS = 2 s` (synchronised update): DECRQSS (`DCS $ q`),
//!   XTGETTCAP (`DCS + q`), DECUDK (defines what function keys *type*, i.e. input injection
//!   after exit), DECDLD (soft fonts), DECRSTS (restores state, answerback included), tmux and
//!   screen pass-through (`DCS tmux; ...` forwards anything to the terminal outside tmux),
//!   sixel (dropped for simplicity; images are not needed by text TUIs).
//! - SOS and PM strings, and APC strings other than kitty graphics with direct (in-band) data:
//!   kitty's file, temp-file and shared-memory media make the terminal read (and, for temp
//!   files, delete) host paths.
//!
//! Everything else in CSI passes: SGR colours, cursor movement, erase, scroll regions, DEC
//! private modes (mouse, bracketed paste, focus, alternate screen, synchronised output),
//! DA1/DA2/DA3, DSR/CPR, DECRQM, XTVERSION, kitty keyboard protocol, cursor shape. Allowed
//! OSC: 0/1/2 (title set), 4/5/10-19/104/105/110-119 (colours and colour queries), 8
//! (hyperlinks), 22 (pointer shape), 133 (prompt marks), `9;4` (progress bar); their payload
//! must be UTF-8 without control characters (so nothing can hide a terminator inside).

/// A parsed control sequence `CSI [private] params intermediates final`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Csi<'a> {
    pub private: Option<u8>,
    pub params: &'a [u8],
    pub intermediates: &'a [u8],
    pub final_byte: u8,
}

impl<'a> Csi<'a> {
    /// Parses the bytes between `CSI` and the final byte. Returns `None` for anything outside
    /// the strict grammar `[<=>?]? [0-9:;]* [ -/]*`: a sequence we cannot parse is one whose
    /// meaning we cannot vouch for.
    pub fn parse(body: &'a [u8], final_byte: u8) -> Option<Self> {
        let (private, rest) = match body.split_first() {
            Some((&p, rest)) if (b'<'..=b'?').contains(&p) => (Some(p), rest),
            _ => (None, body),
        };
        let split = rest
            .iter()
            .position(|b| (0x20..=0x2f).contains(b))
            .unwrap_or(rest.len());
        let (params, intermediates) = rest.split_at(split);
        let params_ok = params
            .iter()
            .all(|&b| b.is_ascii_digit() || b == b';' || b == b':');
        let inter_ok = intermediates.iter().all(|b| (0x20..=0x2f).contains(b));
        (params_ok && inter_ok).then_some(Csi {
            private,
            params,
            intermediates,
            final_byte,
        })
    }

    /// The numeric parameters (sub-parameters after `:` ignored); `None` for an empty one.
    pub fn numbers(&self) -> impl Iterator<Item = Option<u32>> + 'a {
        let params = self.params;
        params
            .split(|&b| b == b';')
            .filter(move |_| !params.is_empty())
            .map(|p| {
                let main = p.split(|&b| b == b':').next().unwrap_or(&[]);
                parse_u32(main)
            })
    }

    /// The first numeric parameter, if present.
    pub fn first(&self) -> Option<u32> {
        self.numbers().next().flatten()
    }
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    Some(digits.iter().fold(0u32, |acc, &d| {
        acc.saturating_mul(10)
            .saturating_add(u32::from(d.wrapping_sub(b'0')))
    }))
}

/// Decides whether a complete CSI sequence may pass.
pub(crate) fn csi_allowed(csi: &Csi<'_>) -> bool {
    match (csi.private, csi.intermediates, csi.final_byte) {
        // Window operations and reports: only size reports and the title stack.
        (None, b"", b't') => matches!(csi.first(), Some(14 | 15 | 16 | 18 | 19 | 22 | 23)),
        // Private forms: xterm's title modes (`>`), unassigned otherwise.
        (Some(_), b"", b't') => false,
        // Media copy: printing and printer pass-through.
        (_, _, b'i') => false,
        // DECRQCRA: checksum of screen contents.
        (_, b"*", b'y') => false,
        // DECSCL: conformance level, can enable 8-bit controls.
        (_, b"\"", b'p') => false,
        // DECRQTSR / DECRQUPSS.
        (_, b"$" | b"&", b'u') => false,
        // ANSI modes: KAM locks the keyboard, SRM toggles local echo.
        (None, b"", b'h' | b'l') => !csi.numbers().any(|n| matches!(n, Some(2 | 12))),
        // DEC modes that change the terminal's grammar: DECANM (VT52 mode) and DECTEK
        // (Tektronix mode, with its own reply mechanisms). Our parser would no longer
        // describe what the terminal does with the bytes we pass.
        (Some(b'?'), b"", b'h' | b'l') => !csi.numbers().any(|n| matches!(n, Some(2 | 38))),
        _ => true,
    }
}

/// Decides whether a complete two-or-more byte escape sequence `ESC intermediates final`
/// (not CSI/OSC/DCS/APC/SOS/PM, which have their own rules) may pass. `body` excludes ESC.
pub(crate) fn esc_allowed(body: &[u8]) -> bool {
    match body {
        // A lone string terminator has nothing to terminate.
        [b'\\'] => false,
        // Cursor save/restore, keypad modes, index/next line/tab set/reverse index, single
        // shifts, DECID (fixed reply), full reset, back/forward index, locking shifts,
        // protected areas, leaving VT52 mode. Not `ESC k` (a string in screen and tmux).
        [final_byte] => b"78=>DEHMNOZc69FlmnoVW|}~<".contains(final_byte),
        // Character set designation (G0-G3, 94 and 96 sets, multi-byte sets).
        [b'(' | b')' | b'*' | b'+' | b'-' | b'.' | b'/', ..] => true,
        // DEC line attributes and screen alignment test.
        [b'#', _] => true,
        // Select UTF-8 is fine; leaving UTF-8 would make raw C1 bytes live.
        [b'%', b'G'] => true,
        // S7C1T keeps replies 7-bit; S8C1T and conformance levels are refused.
        [b' ', b'F'] => true,
        _ => false,
    }
}

/// True for allowed CSI sequences the terminal answers (DA, DSR/CPR, DECRQM, XTVERSION,
/// size reports, kitty keyboard query, ...): their replies must be awaited or discarded.
pub(crate) fn csi_elicits_reply(csi: &Csi<'_>) -> bool {
    match (csi.private, csi.intermediates, csi.final_byte) {
        (_, b"", b'c' | b'n') | (None, b"", b'x') => true,
        (_, b"$", b'p') | (Some(b'>'), b"", b'q') | (Some(b'?'), b"", b'u' | b'S') => true,
        (None, b"", b't') => matches!(csi.first(), Some(14..=19)),
        _ => false,
    }
}

/// True for allowed OSC strings that query (colour queries end in `?`).
pub(crate) fn osc_elicits_reply(payload: &[u8]) -> bool {
    payload.split(|&b| b == b';').any(|p| p == b"?")
}

/// True for OSC numbers that set colours (which the relay resets at the end).
pub(crate) fn osc_sets_colour(payload: &[u8]) -> bool {
    let mut parts = payload.split(|&b| b == b';');
    let number = parts.next().and_then(parse_u32);
    matches!(number, Some(4 | 5 | 10..=19)) && parts.any(|p| p != b"?" && !p.is_empty())
}

/// OSC numbers whose effect stays within drawing and fixed-format replies.
fn osc_number_allowed(n: u32, rest: &[u8]) -> bool {
    match n {
        0..=2 | 4 | 5 | 8 | 10..=19 | 22 | 104 | 105 | 110..=119 | 133 => true,
        // ConEmu/Windows Terminal progress indicator only; other OSC 9 forms notify or run macros.
        9 => rest.starts_with(b"4;") || rest == b"4",
        _ => false,
    }
}

/// Decides whether an OSC string may pass; `payload` is everything between `OSC` and the
/// terminator.
pub(crate) fn osc_allowed(payload: &[u8]) -> bool {
    let (number, rest) = match payload.iter().position(|&b| b == b';') {
        Some(i) => (&payload[..i], &payload[i + 1..]),
        None => (payload, &payload[payload.len()..]),
    };
    if number.is_empty() || number.len() > 6 || !number.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let Some(n) = parse_u32(number) else {
        return false;
    };
    osc_number_allowed(n, rest) && printable_utf8(rest)
}

/// Decides whether a DCS string may pass; `payload` is everything between `DCS` and `ST`.
/// Only the synchronised-update brackets `DCS = 1 s` and `DCS = 2 s` do.
pub(crate) fn dcs_allowed(payload: &[u8]) -> bool {
    matches!(payload, b"=1s" | b"=2s")
}

/// Decides whether an APC string may pass: kitty graphics (`APC G keys ; base64`) with
/// in-band data only. File (`t=f`), temp-file (`t=t`) and shared-memory (`t=s`) media would
/// make the terminal open host paths.
pub(crate) fn apc_allowed(payload: &[u8]) -> bool {
    let Some(body) = payload.strip_prefix(b"G") else {
        return false;
    };
    let (control, data) = match body.iter().position(|&b| b == b';') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &body[body.len()..]),
    };
    let data_ok = data
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    let control_ok = control.is_empty()
        || control.split(|&b| b == b',').all(|kv| match kv {
            [b't', b'=', value @ ..] => value == b"d",
            [key, b'=', value @ ..] => {
                key.is_ascii_alphabetic()
                    && !value.is_empty()
                    && value
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            }
            _ => false,
        });
    data_ok && control_ok
}

/// True when `bytes` is UTF-8 without C0, DEL or C1 code points: nothing inside can end the
/// string early or start another sequence in any terminal's parser.
pub(crate) fn printable_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| !s.chars().any(char::is_control))
}
