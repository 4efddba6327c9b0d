//! The channel between the supervisor and the sandbox's init (a SOCK_SEQPACKET pair): one
//! message per packet, a one-byte tag, an optional text payload, and at most one descriptor.
//! The sandbox side is trusted code (cordon's own init) but it runs next to hostile code, so
//! the supervisor treats every message as untrusted input: unknown tags and malformed
//! packets are errors, never panics.

use crate::spec::DoorSocket;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// What travels on the channel.
#[derive(Debug)]
pub enum Msg {
    /// init -> supervisor: the pty master of the sandbox's devpts.
    PtyMaster(OwnedFd),
    /// command child -> supervisor, before its path-guard filter exists: a pidfd of itself and
    /// the write end of a pipe it waits on until the supervisor has taken the listener.
    Pidfd(OwnedFd),
    Gate(OwnedFd),
    /// command child -> supervisor: the number of its seccomp user-notification listener, to
    /// take with pidfd_getfd. (Not the fd itself: once the filter exists, sendmsg goes to the
    /// path guard, which cannot answer before it has the listener.)
    ListenerAt(i32),
    /// command child -> supervisor: exec is about to happen; setup finished.
    Started,
    /// init -> supervisor: setup failed; the text is one line for the person.
    SetupFailed(String),
    /// init -> supervisor: the command stopped (job control) with this signal.
    Stopped(u8),
    /// supervisor -> init: continue the stopped command.
    Continue,
    /// init -> supervisor: a socket bound in the sandbox's network namespace for the door.
    Socket(DoorSocket, OwnedFd),
}

const TAG_PTY: u8 = b'P';
const TAG_PIDFD: u8 = b'I';
const TAG_GATE: u8 = b'G';
const TAG_LISTENER_AT: u8 = b'L';
const TAG_STARTED: u8 = b'S';
const TAG_FAILED: u8 = b'E';
const TAG_STOPPED: u8 = b'T';
const TAG_CONTINUE: u8 = b'C';
const TAG_SOCKET: u8 = b'N';

/// Largest packet accepted; longer error texts are cut.
const MAX_PACKET: usize = 1024;

pub fn send(sock: BorrowedFd<'_>, msg: &Msg) -> io::Result<()> {
    let mut payload = Vec::with_capacity(16);
    let fd = match msg {
        Msg::PtyMaster(fd) => {
            payload.push(TAG_PTY);
            Some(fd.as_fd())
        }
        Msg::Pidfd(fd) => {
            payload.push(TAG_PIDFD);
            Some(fd.as_fd())
        }
        Msg::Gate(fd) => {
            payload.push(TAG_GATE);
            Some(fd.as_fd())
        }
        Msg::ListenerAt(n) => {
            payload.push(TAG_LISTENER_AT);
            payload.extend_from_slice(&n.to_le_bytes());
            None
        }
        Msg::Started => {
            payload.push(TAG_STARTED);
            None
        }
        Msg::SetupFailed(text) => {
            payload.push(TAG_FAILED);
            let bytes = text.as_bytes();
            payload.extend_from_slice(&bytes[..bytes.len().min(MAX_PACKET - 1)]);
            None
        }
        Msg::Stopped(sig) => {
            payload.push(TAG_STOPPED);
            payload.push(*sig);
            None
        }
        Msg::Continue => {
            payload.push(TAG_CONTINUE);
            None
        }
        Msg::Socket(kind, fd) => {
            payload.push(TAG_SOCKET);
            payload.push(*kind as u8);
            Some(fd.as_fd())
        }
    };
    let Some(fd) = fd else {
        // Plain send: the path guard routes sendmsg, and the command's last messages are sent
        // with its filter installed.
        send_plain(sock, &payload)?;
        return Ok(());
    };
    let iov = [IoSlice::new(&payload)];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(sock, &iov, &mut anc, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// One packet without descriptors, by `send` (sendto without an address: never routed).
pub fn send_plain(sock: BorrowedFd<'_>, payload: &[u8]) -> io::Result<()> {
    loop {
        match rustix::net::send(sock, payload, SendFlags::NOSIGNAL) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receives one message; `Ok(None)` means the peer closed the channel.
pub fn recv(sock: BorrowedFd<'_>) -> io::Result<Option<Msg>> {
    let mut buf = [0u8; MAX_PACKET];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let n = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let r = loop {
            match recvmsg(sock, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other,
            }
        }?;
        r.bytes
    };
    let mut fd: Option<OwnedFd> = None;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            for f in rights {
                // Keep the first descriptor; any extra ones are dropped (closed).
                if fd.is_none() {
                    fd = Some(f);
                }
            }
        }
    }
    if n == 0 {
        return Ok(None);
    }
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed control message");
    let msg = match buf[0] {
        TAG_PTY => Msg::PtyMaster(fd.ok_or_else(bad)?),
        TAG_PIDFD => Msg::Pidfd(fd.ok_or_else(bad)?),
        TAG_GATE => Msg::Gate(fd.ok_or_else(bad)?),
        TAG_LISTENER_AT if n == 5 => {
            Msg::ListenerAt(i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]))
        }
        TAG_STARTED => Msg::Started,
        TAG_FAILED => Msg::SetupFailed(String::from_utf8_lossy(&buf[1..n]).into_owned()),
        TAG_STOPPED if n >= 2 => Msg::Stopped(buf[1]),
        TAG_CONTINUE => Msg::Continue,
        TAG_SOCKET if n >= 2 => {
            let kind = DoorSocket::from_u8(buf[1]).ok_or_else(bad)?;
            Msg::Socket(kind, fd.ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    };
    Ok(Some(msg))
}
