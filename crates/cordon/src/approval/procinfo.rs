//! Best effort: which process inside the sandbox owns a connection the door holds. The
//! door knows the client's address in the sandbox's network namespace; that namespace's
//! TCP table (read through the sandbox init's /proc entry) gives the socket's inode, and
//! the sandbox's processes' fd tables give its owner. Everything read here is controlled
//! by the sandbox and only ever shown after sanitising.

use super::sanitize::{clean, MAX_SHOWN};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The requesting process as far as it could be found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Its pid inside the sandbox.
    pub pid: Option<i64>,
    /// Its executable (sanitised; empty if unknown).
    pub exe: String,
    /// Its command line, arguments joined by spaces (sanitised; empty if unknown).
    pub cmdline: String,
}

/// The most processes looked at, so a fork bomb cannot make a lookup slow.
const MAX_PROCS: usize = 4096;

/// The process inside the sandbox of `init_pid` whose socket has local address `peer`.
pub fn lookup(init_pid: i32, peer: SocketAddr) -> Process {
    let Some(inode) = socket_inode(init_pid, peer) else {
        return Process::default();
    };
    let Ok(ns) = std::fs::read_link(format!("/proc/{init_pid}/ns/pid")) else {
        return Process::default();
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Process::default();
    };
    let want = format!("socket:[{inode}]");
    for e in rd.flatten().take(MAX_PROCS) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let dir = e.path();
        if std::fs::read_link(dir.join("ns/pid")).ok().as_ref() != Some(&ns) {
            continue;
        }
        if owns(&dir, &want) {
            return describe(&dir, pid);
        }
    }
    Process::default()
}

/// The process of host thread `tid` (its thread group's exe and command line), with the
/// pid inside the sandbox if the caller knows it.
pub fn of_task(tid: i32, ns_pid: Option<i32>) -> Process {
    let dir = std::path::PathBuf::from(format!("/proc/{tid}"));
    let Ok(host) = u32::try_from(tid) else {
        return Process::default();
    };
    let mut p = describe(&dir, host);
    if let Some(pid) = ns_pid {
        p.pid = Some(i64::from(pid));
    }
    p
}

fn owns(dir: &Path, want: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
        return false;
    };
    fds.flatten()
        .take(65536)
        .any(|f| std::fs::read_link(f.path()).is_ok_and(|t| t.as_os_str() == want))
}

fn describe(dir: &Path, host_pid: u32) -> Process {
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    // NSpid lists the pid in each nested namespace; the last one is the sandbox's.
    let pid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse::<i64>().ok())
        .or(Some(i64::from(host_pid)));
    let exe = std::fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmdline = std::fs::read(dir.join("cmdline"))
        .map(|b| {
            let b: Vec<u8> = b.into_iter().take(4096).collect();
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default();
    Process {
        pid,
        exe: clean(&exe, MAX_SHOWN),
        cmdline: clean(&cmdline, MAX_SHOWN),
    }
}

/// The inode of the TCP socket bound to `peer` in the namespace of `init_pid`.
fn socket_inode(init_pid: i32, peer: SocketAddr) -> Option<u64> {
    let (file, local) = match peer.ip() {
        IpAddr::V4(ip) => (
            "tcp",
            format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(ip.octets()),
                peer.port()
            ),
        ),
        IpAddr::V6(ip) => {
            let o = ip.octets();
            let words: String = o
                .chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            ("tcp6", format!("{words}:{:04X}", peer.port()))
        }
    };
    let table = std::fs::read_to_string(format!("/proc/{init_pid}/net/{file}")).ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1).is_some_and(|a| a.eq_ignore_ascii_case(&local)) {
            f.get(9).and_then(|i| i.parse().ok())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_its_own_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let me = i32::try_from(std::process::id()).expect("pid");
        let p = lookup(me, c.local_addr().expect("addr"));
        assert_eq!(p.pid, Some(i64::from(std::process::id())));
        assert!(!p.exe.is_empty());
        assert!(!p.cmdline.is_empty());
        let none = lookup(me, "127.0.0.1:1".parse().expect("addr"));
        assert_eq!(none, Process::default());
    }
}
