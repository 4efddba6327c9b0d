//! TEMPORARY stub with the agreed API; replaced by the real relay from the `pty` branch.
#![allow(missing_docs, dead_code)]
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

pub fn open_pair(_ptmx: &Path) -> io::Result<(OwnedFd, OwnedFd)> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
pub fn copy_winsize(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    let ws = rustix::termios::tcgetwinsize(from)?;
    rustix::termios::tcsetwinsize(to, ws)?;
    Ok(())
}
pub struct RawTerminal { fd: RawFd, saved: rustix::termios::Termios }
impl RawTerminal {
    pub fn enter(fd: BorrowedFd) -> io::Result<Self> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Flush, &raw)?;
        Ok(Self { fd: fd.as_raw_fd(), saved })
    }
    pub fn restore(&self) {
        // SAFETY: fd stays open for the life of the process (it is stdin).
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Flush, &self.saved);
    }
    pub fn reenter(&self) -> io::Result<()> {
        // SAFETY: as above.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let mut raw = self.saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Flush, &raw)?;
        Ok(())
    }
}
impl Drop for RawTerminal { fn drop(&mut self) { self.restore() } }
pub struct Relay { master: OwnedFd, threads: Vec<std::thread::JoinHandle<()>> }
impl Relay {
    pub fn start(master: OwnedFd, stdin: RawFd, stdout: RawFd) -> io::Result<Self> {
        let m1 = master.try_clone()?; let m2 = master.try_clone()?;
        let t1 = std::thread::spawn(move || { let mut b=[0u8;8192]; loop { let n = unsafe{libc::read(m1.as_raw_fd(), b.as_mut_ptr().cast(), b.len())}; if n<=0 {break;} unsafe{libc::write(stdout, b.as_ptr().cast(), n as usize)}; } });
        let t2 = std::thread::spawn(move || { let mut b=[0u8;8192]; loop { let n = unsafe{libc::read(stdin, b.as_mut_ptr().cast(), b.len())}; if n<=0 {break;} unsafe{libc::write(m2.as_raw_fd(), b.as_ptr().cast(), n as usize)}; } });
        Ok(Self { master, threads: vec![t1, t2] })
    }
    pub fn master(&self) -> BorrowedFd<'_> { use std::os::fd::AsFd; self.master.as_fd() }
    pub fn stop_and_join(mut self) { if let Some(t) = self.threads.drain(..).next() { let _ = t.join(); } }
}
