//! Frames from the host after the command started: stdin, window size, signals and the
//! network streams' data.

use super::command::set_winsize;
use super::{forward, Port};
use crate::frame::{self, Kind};
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

/// How many stdin frames (at most 64 KiB each) wait for a command that does not read.
const STDIN_QUEUE: usize = 64;

fn stdin_writer(mut sink: Box<dyn Write + Send>) -> std::sync::mpsc::SyncSender<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(STDIN_QUEUE);
    std::thread::spawn(move || {
        for chunk in rx {
            if sink.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    tx
}

/// Frames from the host: stdin, window size, signals, network replies.
pub fn control_loop(
    mut reader: File,
    _port: Port,
    streams: Arc<forward::Streams>,
    udp: Option<std::net::UdpSocket>,
    stdin: Option<Box<dyn Write + Send>>,
    master: Option<i32>,
) {
    // Stdin has a writer of its own, so a command that does not read its input holds up
    // only its input (up to STDIN_QUEUE frames), not the network streams behind it.
    let mut stdin = stdin.map(stdin_writer);
    while let Ok(Some(f)) = frame::read(&mut reader) {
        match f.kind {
            // End of input: a pipe closes; a pty gets the EOF character from the host.
            Kind::Stdin if f.data.is_empty() && master.is_none() => stdin = None,
            Kind::Stdin if f.data.is_empty() => {}
            Kind::Stdin => {
                if let Some(s) = stdin.as_ref() {
                    if s.send(f.data).is_err() {
                        stdin = None;
                    }
                }
            }
            Kind::Winsize => {
                if let (Some(m), &[a, b, c, d]) = (master, &f.data[..]) {
                    set_winsize(m, (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d])));
                }
            }
            Kind::Signal => {
                if let Some(sig) = frame::i32_of(&f.data) {
                    // SAFETY: kill(-1) signals every process but init; no pointers.
                    unsafe { libc::kill(-1, sig) };
                }
            }
            Kind::Data => forward::data(&streams, f.stream, &f.data),
            Kind::Eof => forward::eof(&streams, f.stream),
            Kind::Dns => {
                if let Some(u) = &udp {
                    forward::dns_answer(u, &streams, f.stream, &f.data);
                }
            }
            _ => {}
        }
    }
}
