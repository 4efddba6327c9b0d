//! Remembers which terminal modes the sandboxed program left switched on, so the relay can
//! switch them off when it ends. A TUI that is killed mid-run would otherwise leave the
//! person's shell with mouse reporting, bracketed paste, a hidden cursor, the alternate
//! screen or the kitty keyboard protocol active.

use super::policy::Csi;

/// DEC private modes worth undoing, with the state the outer shell expects (`true` = set).
const DEC_MODES: [(u32, bool); 19] = [
    (2026, false), // synchronised output: the terminal would stop drawing
    (9, false),    // mouse reporting, all flavours and encodings
    (1000, false),
    (1001, false),
    (1002, false),
    (1003, false),
    (1005, false),
    (1006, false),
    (1015, false),
    (1016, false),
    (1004, false), // focus events
    (2004, false), // bracketed paste
    (1, false),    // application cursor keys
    (66, false),   // application keypad (DECNKM)
    (1049, false), // alternate screen (the three variants)
    (1047, false),
    (47, false),
    (25, true), // cursor visible
    (7, true),  // autowrap
];

/// Upper bound on kitty keyboard pushes we remember (the terminal's own stack is small too).
const MAX_KITTY_DEPTH: u8 = 64;

/// Tracks modes changed by sequences that passed the filter.
#[derive(Debug, Default, Clone)]
pub(crate) struct ModeTracker {
    /// Bit i set: `DEC_MODES[i]` differs from what the outer shell expects.
    changed: u32,
    kitty_depth: u8,
    modify_other_keys: bool,
    keypad: bool,
    sgr: bool,
    colours: bool,
}

impl ModeTracker {
    /// Records the effect of a CSI sequence that is about to be emitted.
    pub fn on_csi(&mut self, csi: &Csi<'_>) {
        match (csi.private, csi.intermediates, csi.final_byte) {
            (Some(b'?'), b"", f @ (b'h' | b'l')) => {
                for n in csi.numbers().flatten() {
                    if let Some(i) = DEC_MODES.iter().position(|&(m, _)| m == n) {
                        let set = f == b'h';
                        if set == DEC_MODES[i].1 {
                            self.changed &= !(1 << i);
                        } else {
                            self.changed |= 1 << i;
                        }
                    }
                }
            }
            (Some(b'>'), b"", b'u') => {
                self.kitty_depth = self.kitty_depth.saturating_add(1).min(MAX_KITTY_DEPTH);
            }
            (Some(b'<'), b"", b'u') => {
                let n = csi.first().unwrap_or(1).min(u32::from(MAX_KITTY_DEPTH));
                self.kitty_depth = self.kitty_depth.saturating_sub(n as u8);
            }
            (Some(b'>'), b"", b'm') => {
                let mut it = csi.numbers();
                if it.next() == Some(Some(4)) {
                    self.modify_other_keys = matches!(it.next(), Some(Some(n)) if n > 0);
                }
            }
            (None, b"", b'm') => {
                self.sgr = !(csi.params.is_empty() || csi.params == b"0");
            }
            (None, b"!", b'p') => {
                // DECSTR soft reset: conservatively keep everything; resetting twice is harmless.
            }
            _ => {}
        }
    }

    /// Records the effect of an `ESC ...` sequence (body without ESC) about to be emitted.
    pub fn on_esc(&mut self, body: &[u8]) {
        match body {
            b"=" => self.keypad = true,
            b">" => self.keypad = false,
            b"c" => *self = Self::default(),
            _ => {}
        }
    }

    /// Records the effect of an OSC string about to be emitted (payload after `OSC`).
    pub fn on_osc(&mut self, payload: &[u8]) {
        if super::policy::osc_sets_colour(payload) {
            self.colours = true;
        }
    }

    /// Appends the sequences that undo every remembered change, then forgets them.
    pub fn reset(&mut self, out: &mut Vec<u8>) {
        if self.sgr {
            out.extend_from_slice(b"\x1b[0m");
        }
        for (i, &(mode, expected)) in DEC_MODES.iter().enumerate() {
            if self.changed & (1 << i) != 0 {
                let f = if expected { 'h' } else { 'l' };
                out.extend_from_slice(format!("\x1b[?{mode}{f}").as_bytes());
            }
        }
        if self.kitty_depth > 0 {
            out.extend_from_slice(format!("\x1b[<{}u", self.kitty_depth).as_bytes());
        }
        if self.modify_other_keys {
            out.extend_from_slice(b"\x1b[>4m");
        }
        if self.keypad {
            out.extend_from_slice(b"\x1b>");
        }
        if self.colours {
            out.extend_from_slice(b"\x1b]104\x1b\\\x1b]110\x1b\\\x1b]111\x1b\\\x1b]112\x1b\\");
        }
        *self = Self::default();
    }
}
