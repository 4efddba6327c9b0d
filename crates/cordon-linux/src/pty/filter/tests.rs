//! Per-sequence tests of the filter, each also fed split at every byte boundary.

use super::{OutputFilter, MAX_STRING};

/// Output of the filter for `input` in one piece; also checks that every two-piece split
/// and byte-by-byte feeding give exactly the same bytes.
fn filter(input: &[u8]) -> Vec<u8> {
    let mut whole = Vec::new();
    OutputFilter::new().feed(input, &mut whole);
    for cut in 0..=input.len() {
        let mut f = OutputFilter::new();
        let mut out = Vec::new();
        f.feed(&input[..cut], &mut out);
        f.feed(&input[cut..], &mut out);
        assert_eq!(out, whole, "split at {cut} of {input:?}");
    }
    let mut f = OutputFilter::new();
    let mut out = Vec::new();
    for b in input {
        f.feed(std::slice::from_ref(b), &mut out);
    }
    assert_eq!(out, whole, "byte by byte: {input:?}");
    whole
}

fn passes(input: &[u8]) {
    assert_eq!(filter(input), input, "should pass unchanged: {input:?}");
}

/// Asserts the sequence vanishes entirely and the text around it survives.
fn blocked(seq: &[u8]) {
    let input = [b"before ".as_slice(), seq, b" after"].concat();
    assert_eq!(
        String::from_utf8_lossy(&filter(&input)),
        "before  after",
        "should be dropped: {seq:?}"
    );
    let mut f = OutputFilter::new();
    f.feed(seq, &mut Vec::new());
    assert!(f.dropped() >= 1, "dropped() counts {seq:?}");
}

#[test]
fn plain_text_sgr_and_cursor_movement_pass_identically() {
    passes(b"hello, world\r\n\ttabbed\x08\x07");
    passes("unicode: héllo wörld ✓ 日本語 🦀\r\n".as_bytes());
    passes(b"\x1b[0m\x1b[1;31mred\x1b[38;5;208m\x1b[38:2::255:0:0mtrue\x1b[m");
    passes(b"\x1b[H\x1b[2J\x1b[3J\x1b[10;20H\x1b[5A\x1b[K\x1b[1G\x1b[?25l\x1b[?25h");
    passes(b"\x1b7\x1b8\x1bM\x1bD\x1bE\x1b=\x1b>\x1b(0qqq\x1b(B\x1b#8\x1b%G\x1bc");
    passes(b"\x1b[2 q\x1b[?2026h\x1b[?2026l\x1b[3;20r\x1b[!p\x1b[4h\x1b[4l");
}

#[test]
fn tui_modes_and_queries_pass() {
    // Alternate screen, mouse, bracketed paste, focus, kitty keyboard protocol.
    passes(b"\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?1004h\x1b[>1u\x1b[<u\x1b[?1049l");
    // DA1, DA2, DA3, CPR, DSR, DECRQM, XTVERSION, kitty keyboard query, size reports.
    passes(b"\x1b[c\x1b[>c\x1b[=c\x1b[6n\x1b[5n\x1b[?6n\x1b[?2026$p\x1b[>q\x1b[?u");
    passes(b"\x1b[14t\x1b[16t\x1b[18t\x1b[22;0t\x1b[23;0t");
    // Colour queries and settings, title set, hyperlinks, prompt marks, progress.
    passes(b"\x1b]11;?\x07\x1b]10;?\x1b\\\x1b]4;1;rgb:ff/00/00\x07\x1b]104\x07");
    passes(b"\x1b]0;my title\x07\x1b]2;t\xc3\xaftle\x1b\\");
    passes(b"\x1b]8;;https://example.com/\x1b\\link\x1b]8;;\x1b\\");
    passes(b"\x1b]133;A\x07\x1b]9;4;1;50\x07");
    // Synchronised update DCS and kitty graphics with in-band data.
    passes(b"\x1bP=1s\x1b\\\x1bP=2s\x1b\\");
    passes(b"\x1b_Ga=T,f=100,t=d,i=1;iVBORw0KGgo=\x1b\\\x1b_Ga=q,i=2\x1b\\");
}

#[test]
fn clipboard_osc52_is_dropped_in_every_form() {
    blocked(b"\x1b]52;c;ZWNobyBwd25lZA==\x07");
    blocked(b"\x1b]52;c;ZWNobyBwd25lZA==\x1b\\");
    blocked(b"\x1b]52;c;?\x07");
    blocked(b"\x1b]52;p;?\x1b\\");
    // C1 forms written as UTF-8 (U+009D OSC, U+009C ST).
    blocked(b"\xc2\x9d52;c;ZWNobw==\x07");
    blocked(b"\xc2\x9d52;c;ZWNobw==\xc2\x9c\x1b\\");
}

#[test]
fn answerback_and_title_reports_are_dropped() {
    blocked(b"\x05");
    blocked(b"\x1b[21t");
    blocked(b"\x1b[20t");
    blocked(b"\x1b[21;0t");
    blocked(b"\xc2\x9b21t");
    blocked(b"\x1b[>3t");
}

#[test]
fn window_manipulation_is_dropped() {
    for seq in [
        &b"\x1b[2t"[..],
        b"\x1b[3;0;0t",
        b"\x1b[8;1;1t",
        b"\x1b[9;1t",
        b"\x1b[10;2t",
        b"\x1b[11t",
        b"\x1b[50t",
        b"\x1b[t",
    ] {
        blocked(seq);
    }
}

#[test]
fn reply_eliciting_and_state_changing_dcs_is_dropped() {
    blocked(b"\x1bP$qm\x1b\\"); // DECRQSS
    blocked(b"\x1bP$q\"p\x1b\\");
    blocked(b"\x1bP+q544e\x1b\\"); // XTGETTCAP
    blocked(b"\x1bP1;1|17/6563686f\x1b\\"); // DECUDK
    blocked(b"\x1bPtmux;\x1b\x1b]52;c;ZWNobw==\x07\x1b\\"); // tmux pass-through
    blocked(b"\x1bP0;1;0q#0;2;0;0;0#0!10~-\x1b\\"); // sixel
    blocked(b"\x1bP1$p\x1b\\"); // DECRSTS
    blocked(b"\xc2\x90$qm\xc2\x9c\x1b\\");
}

#[test]
fn tmux_passthrough_inner_sequence_does_not_leak() {
    // After dropping the DCS, what follows the inner ESC must not surface as OSC 52.
    let out = filter(b"\x1bPtmux;\x1b\x1b]52;c;ZWNobw==\x07\x1b\\text");
    assert_eq!(out, b"text");
}

#[test]
fn terminal_specific_dangerous_osc_is_dropped() {
    blocked(b"\x1b]1337;File=name=eA==;size=1:eA==\x07"); // iTerm2 download
    blocked(b"\x1b]1337;CopyToClipboard=\x07");
    blocked(b"\x1b]5113;ac=send;id=1\x1b\\"); // kitty file transfer
    blocked(b"\x1b]5522;type=read\x1b\\"); // kitty clipboard
    blocked(b"\x1b]777;notify;title;body\x07"); // urxvt perl / notifications
    blocked(b"\x1b]99;;hello\x1b\\");
    blocked(b"\x1b]9;hello\x07");
    blocked(b"\x1b]7;file://host/tmp\x07");
    blocked(b"\x1b]3;WM_NAME=x\x07");
    blocked(b"\x1b]46;/tmp/log\x07");
    blocked(b"\x1b]50;?\x07");
    blocked(b"\x1b]633;E;rm -rf ~\x07");
    blocked(b"\x1b]\x07");
    blocked(b"\x1b];x\x07");
}

#[test]
fn other_dangerous_csi_and_esc_are_dropped() {
    blocked(b"\x1b[1;1;1;1;1;1*y"); // DECRQCRA
    blocked(b"\x1b[0i"); // media copy
    blocked(b"\x1b[?5i");
    blocked(b"\x1b[62;0\"p"); // DECSCL with 8-bit controls
    blocked(b"\x1b[1$u"); // DECRQTSR
    blocked(b"\x1b[2h"); // KAM keyboard lock
    blocked(b"\x1b[4;2h");
    blocked(b"\x1b[12l"); // SRM
    blocked(b"\x1b%@"); // leave UTF-8
    blocked(b"\x1b G"); // S8C1T
    blocked(b"\x1b L");
    blocked(b"\x1b\\"); // stray ST
    blocked(b"\x1b[?2l"); // VT52 mode
    blocked(b"\x1b[?1;38h"); // Tektronix mode
    blocked(b"\x1bk"); // screen/tmux window name string
    blocked(b"\x1bg");
    blocked(b"\x1bX sos \x1b\\");
    blocked(b"\x1b^ pm \x1b\\");
    blocked(b"\x1b_Gt=f;L2V0Yy9wYXNzd2Q=\x1b\\"); // kitty graphics from a host file
    blocked(b"\x1b_Ga=T,t=s;c2htbQ==\x1b\\");
    blocked(b"\x1b_hello\x1b\\");
}

#[test]
fn incomplete_sequences_are_withheld() {
    for seq in [
        &b"\x1b[1;2;3"[..],
        b"\x1b",
        b"\x1b]0;title",
        b"\x1bP=1s",
        b"\xe2\x82",
    ] {
        let mut f = OutputFilter::new();
        let mut out = Vec::new();
        f.feed(seq, &mut out);
        assert!(out.is_empty(), "{seq:?} -> {out:?}");
        f.finish(&mut out);
        assert!(out.is_empty(), "{seq:?} -> {out:?} after finish");
    }
}

#[test]
fn title_with_control_characters_is_dropped() {
    blocked(b"\x1b]0;evil\x05title\x07");
    blocked(b"\x1b]2;a\xc2\x9cb\x07");
    blocked(b"\x1b]2;bad\xffutf8\x07");
}

#[test]
fn esc_inside_a_string_abandons_it_and_starts_a_new_sequence() {
    assert_eq!(filter(b"\x1b]0;title\x1b[31mred"), b"\x1b[31mred");
    assert_eq!(filter(b"\x1b]0;title\x1b]52;c;eA==\x07x"), b"x");
    assert_eq!(filter(b"\x1b]0;ti\x18tle"), b"tle");
}

#[test]
fn c0_controls_inside_csi_abort_it() {
    assert_eq!(filter(b"\x1b[31\nm"), b"\nm");
    assert_eq!(filter(b"\x1b[2\x1b[1t"), b"");
    assert_eq!(filter(b"\x1b[2\x05"), b"");
}

#[test]
fn invalid_utf8_and_raw_c1_become_replacement_characters() {
    assert_eq!(filter(b"a\x9bb"), "a\u{fffd}b".as_bytes());
    assert_eq!(
        filter(b"a\x9d52;c;eA==\x07"),
        "a\u{fffd}52;c;eA==\x07".as_bytes()
    );
    assert_eq!(filter(b"\xe2\x82x"), "\u{fffd}x".as_bytes());
    assert_eq!(
        filter(b"\xed\xa0\x80"),
        "\u{fffd}\u{fffd}\u{fffd}".as_bytes()
    );
    assert_eq!(filter(b"\xf4\x90\x80\x80"), "\u{fffd}".repeat(4).as_bytes());
    assert_eq!(filter(b"\xc0\xaf"), "\u{fffd}\u{fffd}".as_bytes());
}

#[test]
fn c1_controls_written_as_utf8_are_normalised_to_7bit() {
    // U+009B CSI: a harmless SGR passes in its 7-bit form.
    assert_eq!(filter(b"\xc2\x9b1mX"), b"\x1b[1mX");
    // U+0085 NEL.
    assert_eq!(filter(b"\xc2\x85"), b"\x1bE");
}

#[test]
fn unterminated_strings_are_bounded() {
    for intro in [
        &b"\x1b]52;c;"[..],
        b"\x1b]0;",
        b"\x1bP",
        b"\x1b_G",
        b"\x1bX",
    ] {
        let mut f = OutputFilter::new();
        let mut out = Vec::new();
        f.feed(intro, &mut out);
        let chunk = vec![b'A'; 8192];
        for _ in 0..(4 * MAX_STRING / chunk.len()) {
            f.feed(&chunk, &mut out);
            assert!(f.buffered_len() <= MAX_STRING + 8, "{}", f.buffered_len());
        }
        assert!(out.is_empty(), "nothing of an unterminated string leaks");
        // The overlong string ends at its terminator; text after it flows again.
        f.feed(b"\x1b\\after", &mut out);
        assert_eq!(out, b"after");
        assert_eq!(f.buffered_len(), 0);
    }
}

#[test]
fn overlong_title_is_dropped_but_normal_one_passes() {
    let mut long = b"\x1b]0;".to_vec();
    long.extend(std::iter::repeat_n(b'x', MAX_STRING + 1));
    long.extend_from_slice(b"\x07ok");
    let mut out = Vec::new();
    OutputFilter::new().feed(&long, &mut out);
    assert_eq!(out, b"ok");
}

#[test]
fn overlong_csi_is_skipped_to_its_final_byte() {
    let mut seq = b"\x1b[".to_vec();
    seq.extend(std::iter::repeat_n(b'1', 10_000));
    seq.extend_from_slice(b"mtext");
    let mut f = OutputFilter::new();
    let mut out = Vec::new();
    f.feed(&seq, &mut out);
    assert_eq!(out, b"text");
    assert!(f.dropped() >= 1);
}

#[test]
fn finish_undoes_modes_left_on() {
    let mut f = OutputFilter::new();
    let mut out = Vec::new();
    f.feed(
        b"\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?25l\x1b[>1u\x1b=\x1b[31m\x1b]11;#000000\x07\x1b]0;t",
        &mut out,
    );
    out.clear();
    f.finish(&mut out);
    let s = String::from_utf8_lossy(&out);
    for want in [
        "\x1b[0m",
        "\x1b[?1000l",
        "\x1b[?1006l",
        "\x1b[?2004l",
        "\x1b[?1049l",
        "\x1b[?25h",
        "\x1b[<1u",
        "\x1b>",
        "\x1b]111\x1b\\",
    ] {
        assert!(s.contains(want), "{want:?} missing in {s:?}");
    }
    assert_eq!(f.buffered_len(), 0, "the pending OSC was discarded");
    // A second finish has nothing left to undo.
    out.clear();
    f.finish(&mut out);
    assert!(out.is_empty());
}

#[test]
fn finish_is_quiet_when_modes_were_restored() {
    let mut f = OutputFilter::new();
    let mut out = Vec::new();
    f.feed(
        b"\x1b[?1049h\x1b[?25l\x1b[1m\x1b[?25h\x1b[?1049l\x1b[0m",
        &mut out,
    );
    out.clear();
    f.finish(&mut out);
    assert!(out.is_empty(), "{out:?}");
}
