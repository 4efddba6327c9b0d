//! The streaming output filter: sandbox output in, bytes safe for the person's terminal out.
//!
//! Design: a byte-at-a-time state machine after the DEC VT500 parser, with one invariant
//! that makes it robust against parser differences between terminals: **bytes of an escape
//! sequence are withheld until the sequence is complete, well-formed and allowed; then it is
//! emitted whole, or not at all.** Text between sequences is emitted only as valid UTF-8
//! (invalid bytes become U+FFFD, C1 code points U+0080..U+009F are treated as the 7-bit
//! `ESC Fe` controls they stand for) plus the harmless C0 controls BEL, BS, HT, LF, VT, FF,
//! CR, SO, SI. So the terminal never sees the start of a sequence we drop, and can never be
//! left inside a half-sent one: whatever our model of the stream is, the terminal's matches
//! it at every sequence boundary, across any split of the input into reads.
//!
//! Memory is bounded: CSI and escape sequences are capped at a few hundred bytes, OSC, DCS,
//! APC, SOS and PM strings at [`MAX_STRING`]; a longer string is dropped and the rest of it
//! skipped without buffering. The decisions themselves live in [`policy`].
//!
//! Assumption: the outer terminal decodes UTF-8 (every current terminal does by default).
//! A terminal in 8-bit mode would treat continuation bytes 0x80-0x9F of ordinary text as C1
//! controls, which no output filter can prevent without breaking text; `ESC % @` and the
//! 8-bit-control switches are dropped so the sandbox cannot put the terminal in that mode.

pub(crate) mod modes;
pub(crate) mod policy;
#[cfg(test)]
mod tests;

use modes::ModeTracker;
use policy::Csi;

/// Longest OSC/DCS/APC/SOS/PM string that is buffered; longer ones are dropped.
pub const MAX_STRING: usize = 64 * 1024;
/// Longest CSI sequence that is buffered (xterm keeps at most 30 parameters).
const MAX_CSI: usize = 512;
/// Most intermediate bytes accepted in a plain escape sequence.
const MAX_ESC_INTERMEDIATES: usize = 3;
/// Above this, the string buffer's capacity is released once the string ends.
const KEEP_CAPACITY: usize = 4096;

const ESC: u8 = 0x1b;
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// Kind of a control string, which decides its terminators and its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrKind {
    Osc,
    Dcs,
    Apc,
    SosPm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC; `seq` holds ESC and intermediates.
    Escape,
    /// After CSI; `seq` holds `ESC [` and what followed.
    Csi,
    /// A CSI sequence too long or malformed: skip to its final byte.
    CsiIgnore,
    /// Inside a control string. `esc`: the previous byte was ESC (maybe ST).
    /// `overflow`: the string outgrew [`MAX_STRING`] and is being skipped.
    Str {
        kind: StrKind,
        esc: bool,
        overflow: bool,
    },
}

/// Streaming output filter (sandbox -> real terminal).
///
/// Feed it the sandbox's output in pieces of any size; it appends what may reach the real
/// terminal. See the module documentation of `pty::filter::policy` for what is dropped.
#[derive(Debug, Clone)]
pub struct OutputFilter {
    state: State,
    seq: Vec<u8>,
    utf8: Utf8,
    modes: ModeTracker,
    dropped: u64,
    queried: bool,
}

impl Default for OutputFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputFilter {
    /// A filter in the ground state.
    pub fn new() -> Self {
        Self {
            state: State::Ground,
            seq: Vec::new(),
            utf8: Utf8::default(),
            modes: ModeTracker::default(),
            dropped: 0,
            queried: false,
        }
    }

    /// Filters `input`, appending the bytes that may reach the terminal to `out`.
    /// Sequences split across calls are handled; nothing is emitted half.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Ground && self.utf8.idle() {
                // Fast path for the common case: a run of printable ASCII.
                let run = input[i..]
                    .iter()
                    .position(|b| !(0x20..0x7f).contains(b))
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    out.extend_from_slice(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            self.byte(input[i], out);
            i += 1;
        }
    }

    /// How many sequences, control characters and invalid bytes were removed or replaced.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// True once an emitted sequence asked the terminal for a reply (device attributes,
    /// cursor position, colours, ...). Such replies may still be in flight when the program
    /// ends; see `RawTerminal::discard_replies`.
    pub fn queried(&self) -> bool {
        self.queried
    }

    /// Bytes currently withheld while a sequence is incomplete (bounded; for diagnostics and tests).
    pub fn buffered_len(&self) -> usize {
        self.seq.len() + usize::from(self.utf8.len)
    }

    /// Ends the stream: drops any incomplete sequence and appends the sequences that switch
    /// off modes the program left on (mouse, bracketed paste, alternate screen, hidden
    /// cursor, ...). Write the result only to a terminal. The filter can be reused afterwards.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state != State::Ground || !self.utf8.idle() {
            self.dropped += 1;
        }
        self.state = State::Ground;
        self.seq.clear();
        self.utf8 = Utf8::default();
        self.modes.reset(out);
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => self.ground(b, out),
            State::Escape => self.escape(b, out),
            State::Csi => self.csi(b, out),
            State::CsiIgnore => self.csi_ignore(b, out),
            State::Str {
                kind,
                esc,
                overflow,
            } => self.string(kind, esc, overflow, b, out),
        }
    }

    fn ground(&mut self, b: u8, out: &mut Vec<u8>) {
        if b >= 0x80 || !self.utf8.idle() {
            match self.utf8.push(b) {
                Utf8Step::Pending => {}
                Utf8Step::Char(bytes, len) => {
                    if len == 2 && bytes[0] == 0xc2 && bytes[1] <= 0x9f {
                        // A C1 control written as UTF-8: handle as its 7-bit form.
                        self.begin_escape();
                        self.escape(bytes[1] - 0x40, out);
                    } else {
                        out.extend_from_slice(&bytes[..len]);
                    }
                }
                Utf8Step::Invalid { reprocess } => {
                    out.extend_from_slice(REPLACEMENT);
                    self.dropped += 1;
                    if reprocess {
                        self.ground(b, out);
                    }
                }
            }
            return;
        }
        match b {
            ESC => self.begin_escape(),
            // BEL BS HT LF VT FF CR SO SI: formatting only.
            0x07..=0x0f => out.push(b),
            0x20..=0x7e => out.push(b),
            // ENQ (answerback) and every other C0 control, and DEL: nothing a program needs.
            _ => self.dropped += 1,
        }
    }

    fn begin_escape(&mut self) {
        self.seq.clear();
        self.seq.push(ESC);
        self.state = State::Escape;
    }

    /// Abandons the sequence being collected (nothing of it was emitted).
    fn abort(&mut self) {
        self.seq.clear();
        self.state = State::Ground;
        self.dropped += 1;
    }

    /// A byte that cannot continue the current sequence: abandon the sequence, then give the
    /// byte its ground-state meaning (CAN and SUB only cancel).
    fn interrupt(&mut self, b: u8, out: &mut Vec<u8>) {
        self.abort();
        if b != 0x18 && b != 0x1a {
            self.ground(b, out);
        }
    }

    fn escape(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0x20..=0x2f => {
                if self.seq.len() > MAX_ESC_INTERMEDIATES {
                    self.interrupt(b, out);
                } else {
                    self.seq.push(b);
                }
            }
            0x30..=0x7e => {
                if self.seq.len() == 1 {
                    let kind = match b {
                        b'[' => {
                            self.seq.push(b);
                            self.state = State::Csi;
                            return;
                        }
                        b']' => Some(StrKind::Osc),
                        b'P' => Some(StrKind::Dcs),
                        b'_' => Some(StrKind::Apc),
                        b'X' | b'^' => Some(StrKind::SosPm),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        self.seq.push(b);
                        self.state = State::Str {
                            kind,
                            esc: false,
                            overflow: false,
                        };
                        return;
                    }
                }
                self.seq.push(b);
                if policy::esc_allowed(&self.seq[1..]) {
                    self.modes.on_esc(&self.seq[1..]);
                    self.queried |= self.seq[1..] == *b"Z";
                    out.extend_from_slice(&self.seq);
                } else {
                    self.dropped += 1;
                }
                self.seq.clear();
                self.state = State::Ground;
            }
            0x7f => {}
            _ => self.interrupt(b, out),
        }
    }

    fn csi(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0x20..=0x3f => {
                if self.seq.len() >= MAX_CSI {
                    self.abort();
                    self.state = State::CsiIgnore;
                } else {
                    self.seq.push(b);
                }
            }
            0x40..=0x7e => {
                let body = &self.seq[2..];
                match Csi::parse(body, b).filter(policy::csi_allowed) {
                    Some(csi) => {
                        self.modes.on_csi(&csi);
                        self.queried |= policy::csi_elicits_reply(&csi);
                        out.extend_from_slice(&self.seq);
                        out.push(b);
                    }
                    None => self.dropped += 1,
                }
                self.seq.clear();
                self.state = State::Ground;
            }
            0x7f => {}
            _ => self.interrupt(b, out),
        }
    }

    fn csi_ignore(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0x20..=0x3f | 0x7f => {}
            0x40..=0x7e => self.state = State::Ground,
            _ => {
                // The overlong sequence was already counted; this byte starts afresh.
                self.state = State::Ground;
                if b != 0x18 && b != 0x1a {
                    self.ground(b, out);
                }
            }
        }
    }

    fn string(&mut self, kind: StrKind, esc: bool, overflow: bool, b: u8, out: &mut Vec<u8>) {
        if esc {
            if b == b'\\' {
                self.end_string(kind, overflow, b"\x1b\\", out);
            } else {
                // ESC not followed by `\` abandons the string and starts a new sequence.
                self.drop_string(overflow);
                self.begin_escape();
                self.escape(b, out);
            }
            return;
        }
        match b {
            ESC => {
                self.state = State::Str {
                    kind,
                    esc: true,
                    overflow,
                }
            }
            0x07 if kind == StrKind::Osc => self.end_string(kind, overflow, b"\x07", out),
            0x18 | 0x1a => self.drop_string(overflow),
            _ if overflow => {}
            _ if self.seq.len() >= MAX_STRING => {
                self.seq.clear();
                self.dropped += 1;
                self.state = State::Str {
                    kind,
                    esc: false,
                    overflow: true,
                };
            }
            // Other controls are kept: they make an allowed string invalid, so it is dropped.
            _ => self.seq.push(b),
        }
    }

    fn end_string(&mut self, kind: StrKind, overflow: bool, terminator: &[u8], out: &mut Vec<u8>) {
        if !overflow {
            let payload = &self.seq[2..];
            let allowed = match kind {
                StrKind::Osc => policy::osc_allowed(payload),
                StrKind::Dcs => policy::dcs_allowed(payload),
                StrKind::Apc => policy::apc_allowed(payload),
                StrKind::SosPm => false,
            };
            if allowed {
                if kind == StrKind::Osc {
                    self.modes.on_osc(payload);
                    self.queried |= policy::osc_elicits_reply(payload);
                } else {
                    // Only kitty graphics and sync brackets get here; kitty answers them.
                    self.queried |= kind == StrKind::Apc;
                }
                out.extend_from_slice(&self.seq);
                // A BEL-terminated DCS/APC never reaches here; keep the sender's OSC style
                // because terminals answer queries with the terminator they were asked with.
                out.extend_from_slice(terminator);
            } else {
                self.dropped += 1;
            }
        }
        self.release_string();
    }

    fn drop_string(&mut self, overflow: bool) {
        if !overflow {
            self.dropped += 1;
        }
        self.release_string();
    }

    fn release_string(&mut self) {
        self.seq.clear();
        if self.seq.capacity() > KEEP_CAPACITY {
            self.seq.shrink_to(KEEP_CAPACITY);
        }
        self.state = State::Ground;
    }
}

/// Result of feeding one byte to the UTF-8 decoder.
enum Utf8Step {
    Pending,
    Char([u8; 4], usize),
    /// An ill-formed sequence ended; `reprocess`: the byte that ended it starts anew.
    Invalid {
        reprocess: bool,
    },
}

/// Incremental UTF-8 validation following the Unicode "maximal subpart" rule.
#[derive(Debug, Clone, Copy, Default)]
struct Utf8 {
    buf: [u8; 4],
    len: u8,
    need: u8,
    lo: u8,
    hi: u8,
}

impl Utf8 {
    fn idle(&self) -> bool {
        self.need == 0
    }

    fn push(&mut self, b: u8) -> Utf8Step {
        if self.need == 0 {
            let (need, lo, hi) = match b {
                0x00..=0x7f => return Utf8Step::Char([b, 0, 0, 0], 1),
                0xc2..=0xdf => (1, 0x80, 0xbf),
                0xe0 => (2, 0xa0, 0xbf),
                0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
                0xed => (2, 0x80, 0x9f),
                0xf0 => (3, 0x90, 0xbf),
                0xf1..=0xf3 => (3, 0x80, 0xbf),
                0xf4 => (3, 0x80, 0x8f),
                _ => return Utf8Step::Invalid { reprocess: false },
            };
            *self = Self {
                buf: [b, 0, 0, 0],
                len: 1,
                need,
                lo,
                hi,
            };
            return Utf8Step::Pending;
        }
        if b < self.lo || b > self.hi {
            *self = Self::default();
            return Utf8Step::Invalid { reprocess: true };
        }
        self.buf[usize::from(self.len)] = b;
        self.len += 1;
        self.need -= 1;
        self.lo = 0x80;
        self.hi = 0xbf;
        if self.need > 0 {
            return Utf8Step::Pending;
        }
        let step = Utf8Step::Char(self.buf, usize::from(self.len));
        *self = Self::default();
        step
    }
}
