//! The framing on the one virtio-serial port between the host helper and the guest's init.
//!
//! Every frame is `kind: u8, stream: u32 LE, len: u32 LE, data[len]`. Both ends treat the other
//! as hostile: a frame longer than [`MAX_DATA`] or of an unknown kind ends the session, never
//! the process by a panic.

use std::io::{self, Read, Write};

/// The largest payload a frame may carry (bounded buffers on both sides).
pub const MAX_DATA: usize = 64 * 1024;

/// What a frame is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// host -> guest: the run's configuration (JSON), first frame.
    Config = 1,
    /// host -> guest: bytes for the command's stdin; empty = end of input.
    Stdin = 2,
    /// guest -> host: the command's stdout (or its pty's output).
    Stdout = 3,
    /// guest -> host: the command's stderr.
    Stderr = 4,
    /// guest -> host: the command's exit status (i32 LE); the last frame.
    Exit = 5,
    /// guest -> host: open stream `stream` to door port (u16 LE).
    Open = 6,
    /// both: bytes on stream `stream`.
    Data = 7,
    /// both: no more bytes on `stream` in this direction.
    Eof = 8,
    /// guest -> host: a DNS query (stream = query id); host -> guest: its answer.
    Dns = 9,
    /// host -> guest: window size (rows u16 LE, cols u16 LE).
    Winsize = 10,
    /// host -> guest: deliver this signal (i32 LE) to the command.
    Signal = 11,
    /// guest -> host: the guest could not start the command (UTF-8 message).
    Error = 12,
    /// guest -> host: one informational line (e.g. the inner wall's Landlock ABI).
    Note = 13,
    /// guest -> host: open stream `stream` to an original destination (a program that
    /// ignored the proxy variables): family 4 or 6, the address, port u16 LE.
    OpenTo = 14,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Config,
            2 => Kind::Stdin,
            3 => Kind::Stdout,
            4 => Kind::Stderr,
            5 => Kind::Exit,
            6 => Kind::Open,
            7 => Kind::Data,
            8 => Kind::Eof,
            9 => Kind::Dns,
            10 => Kind::Winsize,
            11 => Kind::Signal,
            12 => Kind::Error,
            13 => Kind::Note,
            14 => Kind::OpenTo,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub stream: u32,
    pub data: Vec<u8>,
}

/// Encodes one frame (callers keep `data` within [`MAX_DATA`]; longer data is an error).
pub fn encode(kind: Kind, stream: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    if data.len() > MAX_DATA {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too long",
        ));
    }
    let mut out = Vec::with_capacity(9 + data.len());
    out.push(kind as u8);
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// Writes one frame in a single `write_all` (callers serialise writers with a lock).
pub fn write(w: &mut impl Write, kind: Kind, stream: u32, data: &[u8]) -> io::Result<()> {
    w.write_all(&encode(kind, stream, data)?)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of the channel.
pub fn read(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 9];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = Kind::from_u8(head[0])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown frame kind"))?;
    let stream = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
    if len > MAX_DATA {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some(Frame { kind, stream, data }))
}

/// Encodes an original destination for [`Kind::OpenTo`].
pub fn encode_addr(a: std::net::SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match a.ip() {
        std::net::IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        std::net::IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_le_bytes());
    out
}

/// Decodes a [`Kind::OpenTo`] payload; `None` for anything malformed.
pub fn decode_addr(d: &[u8]) -> Option<std::net::SocketAddr> {
    let (ip, rest): (std::net::IpAddr, &[u8]) = match d.first()? {
        4 => {
            let o: [u8; 4] = d.get(1..5)?.try_into().ok()?;
            (o.into(), d.get(5..)?)
        }
        6 => {
            let o: [u8; 16] = d.get(1..17)?.try_into().ok()?;
            (o.into(), d.get(17..)?)
        }
        _ => return None,
    };
    let port: [u8; 2] = rest.try_into().ok()?;
    Some(std::net::SocketAddr::new(ip, u16::from_le_bytes(port)))
}

/// A little-endian i32 payload, or `None` if the payload is not 4 bytes.
pub fn i32_of(data: &[u8]) -> Option<i32> {
    Some(i32::from_le_bytes(data.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write(&mut buf, Kind::Data, 7, b"hello").unwrap();
        write(&mut buf, Kind::Eof, 7, b"").unwrap();
        let mut r = &buf[..];
        let f = read(&mut r).unwrap().unwrap();
        assert_eq!(
            (f.kind, f.stream, &f.data[..]),
            (Kind::Data, 7, &b"hello"[..])
        );
        assert_eq!(read(&mut r).unwrap().unwrap().kind, Kind::Eof);
        assert!(read(&mut r).unwrap().is_none());
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        // Unknown kind, oversized length, truncated header and body.
        for bad in [
            vec![99u8, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![7u8, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            vec![7u8, 0, 0],
            vec![7u8, 0, 0, 0, 0, 5, 0, 0, 0, b'x'],
        ] {
            assert!(read(&mut &bad[..]).is_err(), "{bad:?}");
        }
        assert!(encode(Kind::Data, 0, &vec![0; MAX_DATA + 1]).is_err());
        assert_eq!(i32_of(&[1, 0]), None);
        let a: std::net::SocketAddr = "240.0.0.7:443".parse().unwrap();
        assert_eq!(decode_addr(&encode_addr(a)), Some(a));
        let b: std::net::SocketAddr = "[fd63::1]:80".parse().unwrap();
        assert_eq!(decode_addr(&encode_addr(b)), Some(b));
        for bad in [
            &[][..],
            &[5, 1, 2, 3, 4, 0, 0],
            &[4, 1, 2, 3, 4, 0],
            &[4, 1, 2, 3, 4, 0, 0, 9],
        ] {
            assert_eq!(decode_addr(bad), None, "{bad:?}");
        }
        assert_eq!(i32_of(&3i32.to_le_bytes()), Some(3));
    }
}
