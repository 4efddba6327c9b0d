//! Fuzz-style properties of the terminal output filter: arbitrary (and arbitrarily split)
//! sandbox output never panics, never lets a dangerous sequence through, keeps memory
//! bounded, and leaves ordinary output byte-identical.

use cordon_linux::pty::{OutputFilter, MAX_STRING};
use proptest::prelude::*;

/// Fragments that steer random input into the interesting corners of the state machine.
const FRAGMENTS: &[&[u8]] = &[
    b"\x1b",
    b"\x1b[",
    b"\x1b]",
    b"\x1bP",
    b"\x1b_",
    b"\x1bX",
    b"\x1b^",
    b"\x1b\\",
    b"\x07",
    b"\x05",
    b"\x18",
    b"\x1a",
    b"\xc2\x9b",
    b"\xc2\x9d",
    b"\xc2\x90",
    b"\xc2\x9c",
    b"\x9b",
    b"\x9d",
    b"52;c;",
    b"52;",
    b"0;",
    b"8;;",
    b"1337;",
    b"5113;",
    b"777;",
    b"21t",
    b"20t",
    b"21",
    b"t",
    b";",
    b"?",
    b">",
    b"$q",
    b"+q",
    b"tmux;",
    b"G",
    b"t=f",
    b"m",
    b"1049h",
    b"\xe2\x9c\x93",
    b"\xf0\x9f",
    b"hello",
    b" ",
];

fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop::collection::vec(piece, 0..120).prop_map(|pieces| pieces.concat())
}

/// Feeds `input` in chunks cut at `cuts` (positions taken modulo the length).
fn run(input: &[u8], cuts: &[usize]) -> (Vec<u8>, OutputFilter) {
    let mut positions: Vec<usize> = cuts
        .iter()
        .map(|c| c % (input.len() + 1))
        .chain([0, input.len()])
        .collect();
    positions.sort_unstable();
    let mut f = OutputFilter::new();
    let mut out = Vec::new();
    for w in positions.windows(2) {
        f.feed(&input[w[0]..w[1]], &mut out);
        assert!(f.buffered_len() <= MAX_STRING + 8);
    }
    (out, f)
}

/// Every way a forbidden action could be spelled in the output, in 7-bit form (the filter
/// never emits C1 code points, which is checked separately).
fn assert_safe(out: &[u8]) {
    let text = std::str::from_utf8(out).expect("output is always valid UTF-8");
    assert!(
        !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
        "C1 control in output: {text:?}"
    );
    assert!(!out.contains(&0x05), "ENQ in output: {text:?}");
    for bad in [
        "\x1b]52",
        "\x1b]1337",
        "\x1b]5113",
        "\x1b]777",
        "\x1b]7;",
        "\x1bPtmux",
        "\x1bP$q",
        "\x1bP+q",
        "\x1bX",
        "\x1b^",
        "\x1b%@",
        "\x1b G",
    ] {
        assert!(!text.contains(bad), "{bad:?} in output: {text:?}");
    }
    // Any CSI whose final byte is `t` must be one of the harmless window reports/stack ops.
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        rest = &rest[i + 2..];
        let end = rest
            .find(|c: char| ('\u{40}'..='\u{7e}').contains(&c))
            .expect("every emitted CSI is complete");
        let params = &rest[..end];
        let no_intermediates = !params.bytes().any(|b| (0x20..=0x2f).contains(&b));
        if rest.as_bytes()[end] == b't' && no_intermediates {
            let first = params.split(';').next().unwrap_or("");
            assert!(
                matches!(first, "14" | "15" | "16" | "18" | "19" | "22" | "23"),
                "window op CSI {}t in output",
                &rest[..end]
            );
        }
    }
    // Only the synchronised-update DCS may appear.
    let mut rest = text;
    while let Some(i) = rest.find("\x1bP") {
        rest = &rest[i + 2..];
        assert!(
            rest.starts_with("=1s\x1b\\") || rest.starts_with("=2s\x1b\\"),
            "DCS in output: {text:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hostile_output_is_filtered_the_same_however_it_is_split(
        input in hostile(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let (whole, _) = run(&input, &[]);
        let (split, _) = run(&input, &cuts);
        prop_assert_eq!(&whole, &split);
        assert_safe(&whole);
        // What the filter emits, it would emit again: nothing in it is something it drops.
        let (again, f) = run(&whole, &[]);
        prop_assert_eq!(&again, &whole);
        prop_assert_eq!(f.dropped(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        input in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let (out, mut f) = run(&input, &cuts);
        assert_safe(&out);
        let mut tail = Vec::new();
        f.finish(&mut tail);
        prop_assert_eq!(f.buffered_len(), 0);
    }

    #[test]
    fn ordinary_output_passes_byte_identical(
        pieces in prop::collection::vec(prop_oneof![
            "[ -~]{0,40}".prop_map(String::into_bytes),
            "\\PC{0,10}".prop_map(String::into_bytes),
            prop::sample::select(&[
                "\r\n", "\t", "\x08", "\x07", "\x1b[0m", "\x1b[1;31m", "\x1b[38;5;208m",
                "\x1b[48;2;10;20;30m", "\x1b[H", "\x1b[2J", "\x1b[K", "\x1b[12;40H", "\x1b[3A",
                "\x1b[2C", "\x1b[?25l", "\x1b[?25h", "\x1b[?1049h", "\x1b[?1049l", "\x1b7",
                "\x1b8", "\x1b[6n", "\x1b[c", "\x1b]0;title\x07", "\x1b[?2004h",
            ][..]).prop_map(|s| s.as_bytes().to_vec()),
        ], 0..60),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let input = pieces.concat();
        let (out, f) = run(&input, &cuts);
        prop_assert_eq!(out, input);
        prop_assert_eq!(f.dropped(), 0);
    }

    #[test]
    fn dangerous_sequences_never_survive_any_split(
        prefix in "[ -~]{0,8}",
        which in 0usize..8,
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let seqs: [&[u8]; 8] = [
            b"\x1b]52;c;ZWNobyBoaQ==\x07",
            b"\x1b]52;c;?\x1b\\",
            b"\x05",
            b"\x1b[21t",
            b"\xc2\x9b20t",
            b"\x1bP$qm\x1b\\",
            b"\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\",
            b"\x1b]1337;File=inline=0:eA==\x07",
        ];
        let input = [prefix.as_bytes(), seqs[which], b"end"].concat();
        let (out, f) = run(&input, &cuts);
        prop_assert_eq!(out, [prefix.as_bytes(), b"end"].concat());
        prop_assert!(f.dropped() >= 1);
    }
}

#[test]
fn huge_unterminated_osc52_is_never_buffered_without_bound() {
    let mut f = OutputFilter::new();
    let mut out = Vec::new();
    f.feed(b"\x1b]52;c;", &mut out);
    let chunk = vec![b'Q'; 64 * 1024];
    for _ in 0..160 {
        // 10 MiB in total
        f.feed(&chunk, &mut out);
        assert!(f.buffered_len() <= MAX_STRING + 8);
    }
    assert!(out.is_empty());
    f.feed(b"\x07visible", &mut out);
    assert_eq!(out, b"visible");
}
