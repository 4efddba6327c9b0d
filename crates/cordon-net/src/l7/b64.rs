//! Standard base64 (RFC 4648 with padding), for `Authorization: Basic`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes with padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 text that `data` becomes wherever it sits in an encoded stream, one per
/// alignment (0, 1 or 2 bytes before it in its 3-byte group): only the characters that
/// `data` alone decides, so they occur in any encoding that holds `data` at that alignment.
pub fn aligned(data: &[u8]) -> [String; 3] {
    [0usize, 1, 2].map(|shift| {
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(data);
        let enc = encode(&buf);
        // The first group mixes in the bytes before `data`; a last partial group, those after.
        let from = if shift > 0 { 4 } else { 0 };
        let to = 4 * (buf.len() / 3);
        enc.get(from..to).unwrap_or("").to_string()
    })
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes; padding is optional. `None` for anything that is not base64.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_known_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("x:ghp_abc", "eDpnaHBfYWJj"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(decode("Zm9vYg").as_deref(), Some(&b"foob"[..]));
        assert_eq!(decode("Zm9v!"), None);
        assert_eq!(decode("Z"), None);
    }

    #[test]
    fn aligned_cores_occur_in_every_encoding_of_the_value() {
        let v = b"ghp_RealTokenValue0123456789";
        let cores = aligned(v);
        for pre in 0..7 {
            for post in 0..4 {
                let mut buf = vec![b'u'; pre];
                buf.extend_from_slice(v);
                buf.extend(std::iter::repeat_n(b'!', post));
                let enc = encode(&buf);
                assert!(
                    cores
                        .iter()
                        .any(|c| !c.is_empty() && enc.contains(c.as_str())),
                    "{pre} {post}: {enc} {cores:?}"
                );
            }
        }
    }
}
