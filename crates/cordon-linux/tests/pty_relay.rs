//! The relay with a real pty pair (`/dev/ptmx` of this machine): a child writes through the
//! slave, the relay delivers filtered output to a pipe; input from a pipe reaches the slave;
//! EOF is passed on as VEOF; window sizes are copied; raw mode is entered and undone.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cordon_linux::pty::{copy_winsize, open_pair, RawTerminal, Relay};
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetwinsize, LocalModes, Winsize};

const PTMX: &str = "/dev/ptmx";

/// Opens a pair, or explains why this machine cannot run the test.
fn pair() -> Option<(OwnedFd, OwnedFd)> {
    match open_pair(Path::new(PTMX)) {
        Ok(pair) => Some(pair),
        Err(err) => {
            let why = format!("cannot open a pty pair from {PTMX}: {err}");
            eprintln!("SKIPPED: {why}");
            test_summary::record("SKIP", "pty_relay", &why);
            None
        }
    }
}

/// Spawns `sh -c script` with the slave as stdin, stdout and stderr, then closes our slave
/// so that the master reports EOF once the child (and its children) are gone.
fn spawn_on(slave: OwnedFd, script: &str) -> Child {
    let stdin = slave.try_clone().expect("dup slave");
    let stdout = slave.try_clone().expect("dup slave");
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("spawn sh");
    child
}

/// Turns off echo on the slave before the child starts, so output holds only what it writes.
fn no_echo(slave: &OwnedFd) {
    let mut t = tcgetattr(slave).expect("tcgetattr");
    t.local_modes.remove(LocalModes::ECHO);
    rustix::termios::tcsetattr(slave, rustix::termios::OptionalActions::Now, &t)
        .expect("tcsetattr");
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().expect("try_wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A pipe whose read end is drained into memory on a thread (so the relay never blocks).
struct Capture {
    write: Option<OwnedFd>,
    seen: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Capture {
    fn new() -> Self {
        let (read, write) = rustix::pipe::pipe().expect("pipe");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let reader = std::thread::spawn(move || {
            let mut file = std::fs::File::from(read);
            let mut buf = [0u8; 8192];
            while let Ok(n) = file.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Self {
            write: Some(write),
            seen,
            reader,
        }
    }

    fn fd(&self) -> i32 {
        self.write.as_ref().expect("open").as_raw_fd()
    }

    /// Waits until the output so far contains `needle`.
    fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if String::from_utf8_lossy(&self.seen.lock().expect("lock")).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Closes our write end (the relay has closed its copy when joined) and returns all output.
    fn finish(mut self) -> String {
        self.write.take();
        self.reader.join().expect("reader");
        let seen = self.seen.lock().expect("lock");
        String::from_utf8_lossy(&seen).into_owned()
    }
}

/// A stdin pipe the test writes to.
fn stdin_pipe() -> (OwnedFd, std::fs::File) {
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    (read, std::fs::File::from(write))
}

fn wait_finished(relay: &Relay, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if relay.is_finished() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn output_is_filtered_and_eof_ends_the_relay() {
    let Some((master, slave)) = pair() else {
        return;
    };
    let mut child = spawn_on(
        slave,
        r"printf 'hello\033]52;c;ZWNobyBwd25lZA==\007 \005\033[21t\033[1;32mgreen\033[0m world\n'",
    );
    let (stdin_read, _stdin_write) = stdin_pipe();
    let out = Capture::new();
    let relay = Relay::start(master, stdin_read.as_raw_fd(), out.fd()).expect("relay");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)));
    // With every slave closed, the master reports EIO and the relay ends on its own.
    assert!(
        wait_finished(&relay, Duration::from_secs(10)),
        "relay did not see EOF on the master"
    );
    relay.stop_and_join();
    let text = out.finish();
    assert_eq!(text, "hello \x1b[1;32mgreen\x1b[0m world\r\n");
}

#[test]
fn input_reaches_the_slave_and_stdin_eof_becomes_veof() {
    let Some((master, slave)) = pair() else {
        return;
    };
    no_echo(&slave);
    let mut child = spawn_on(slave, "echo ready; cat; echo done");
    let (stdin_read, mut stdin_write) = stdin_pipe();
    let out = Capture::new();
    let relay = Relay::start(master, stdin_read.as_raw_fd(), out.fd()).expect("relay");
    stdin_write.write_all(b"ping\n").expect("write");
    drop(stdin_write);
    assert!(
        wait_with_timeout(&mut child, Duration::from_secs(10)),
        "cat never saw EOF"
    );
    relay.stop_and_join();
    assert_eq!(out.finish(), "ready\r\nping\r\ndone\r\n");
}

#[test]
fn eof_after_a_partial_line_still_ends_the_reader() {
    let Some((master, slave)) = pair() else {
        return;
    };
    no_echo(&slave);
    let mut child = spawn_on(slave, "echo ready; cat; echo; echo done");
    let (stdin_read, mut stdin_write) = stdin_pipe();
    let out = Capture::new();
    let relay = Relay::start(master, stdin_read.as_raw_fd(), out.fd()).expect("relay");
    stdin_write.write_all(b"no newline").expect("write");
    drop(stdin_write);
    assert!(
        wait_with_timeout(&mut child, Duration::from_secs(10)),
        "cat never saw EOF after a partial line"
    );
    relay.stop_and_join();
    assert_eq!(out.finish(), "ready\r\nno newline\r\ndone\r\n");
}

#[test]
fn closed_stdin_is_an_immediate_eof() {
    let Some((master, slave)) = pair() else {
        return;
    };
    let mut child = spawn_on(slave, "cat; echo done");
    let out = Capture::new();
    let relay = Relay::start(master, -1, out.fd()).expect("relay");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)));
    relay.stop_and_join();
    assert!(out.finish().ends_with("done\r\n"));
}

#[test]
fn stop_drains_pending_output_and_returns_while_the_child_runs() {
    let Some((master, slave)) = pair() else {
        return;
    };
    let mut child = spawn_on(slave, "echo started; exec sleep 30");
    let (stdin_read, _stdin_write) = stdin_pipe();
    let out = Capture::new();
    let relay = Relay::start(master, stdin_read.as_raw_fd(), out.fd()).expect("relay");
    assert!(out.wait_for("started", Duration::from_secs(10)));
    assert!(!relay.is_finished(), "the child still holds the slave");
    let start = Instant::now();
    relay.stop_and_join();
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    assert_eq!(out.finish(), "started\r\n");
}

#[test]
fn large_output_is_delivered_completely() {
    let Some((master, slave)) = pair() else {
        return;
    };
    // 2 MiB of text: far more than the pty and pipe buffers hold.
    let mut child = spawn_on(slave, "head -c 2097152 /dev/zero | tr '\\0' 'x'");
    let (stdin_read, _stdin_write) = stdin_pipe();
    let out = Capture::new();
    let relay = Relay::start(master, stdin_read.as_raw_fd(), out.fd()).expect("relay");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)));
    relay.stop_and_join();
    let text = out.finish();
    assert_eq!(text.len(), 2_097_152);
    assert!(text.bytes().all(|b| b == b'x'));
}

#[test]
fn window_size_is_copied_to_the_master() {
    let Some((master_a, slave_a)) = pair() else {
        return;
    };
    let Some((master_b, slave_b)) = pair() else {
        return;
    };
    let size = Winsize {
        ws_row: 33,
        ws_col: 101,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    tcsetwinsize(&master_a, size).expect("set size");
    copy_winsize(slave_a.as_fd(), master_b.as_fd()).expect("copy size");
    let seen = tcgetwinsize(&slave_b).expect("get size");
    assert_eq!((seen.ws_row, seen.ws_col), (33, 101));
    // And a program on the slave sees it.
    let mut child = spawn_on(slave_b, "stty size");
    let out = Capture::new();
    let relay = Relay::start(master_b, -1, out.fd()).expect("relay");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)));
    relay.stop_and_join();
    assert!(out.finish().contains("33 101"));
    drop(master_a);
}

#[test]
fn copy_winsize_from_a_non_tty_fails_cleanly() {
    let Some((master, _slave)) = pair() else {
        return;
    };
    let (read, _write) = rustix::pipe::pipe().expect("pipe");
    assert!(copy_winsize(read.as_fd(), master.as_fd()).is_err());
}

#[test]
fn open_pair_rejects_a_non_ptmx_path() {
    assert!(open_pair(Path::new("/dev/null")).is_err());
    assert!(open_pair(Path::new("/nonexistent/ptmx")).is_err());
}

#[test]
fn open_pair_gives_cloexec_descriptors_and_a_noctty_slave() {
    let Some((master, slave)) = pair() else {
        return;
    };
    for fd in [&master, &slave] {
        let flags = rustix::io::fcntl_getfd(fd).expect("getfd");
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }
    assert!(rustix::termios::isatty(&slave));
}

#[test]
fn raw_terminal_enters_restores_reenters_and_flushes() {
    let Some((master, slave)) = pair() else {
        return;
    };
    let before = tcgetattr(&slave).expect("tcgetattr");
    assert!(before.local_modes.contains(LocalModes::ICANON));
    {
        let raw = RawTerminal::enter(slave.as_fd()).expect("enter raw");
        let now = tcgetattr(&slave).expect("tcgetattr");
        assert!(!now.local_modes.contains(LocalModes::ICANON));
        assert!(!now.local_modes.contains(LocalModes::ECHO));
        raw.restore();
        let now = tcgetattr(&slave).expect("tcgetattr");
        assert!(now
            .local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO));
        raw.reenter().expect("reenter");
        assert!(!tcgetattr(&slave)
            .expect("tcgetattr")
            .local_modes
            .contains(LocalModes::ICANON));
        // A late "reply" arrives as input; dropping the guard must discard it.
        rustix::io::write(&master, b"\x1b[1;1R").expect("type");
        std::thread::sleep(Duration::from_millis(100));
        assert!(rustix::io::ioctl_fionread(&slave).expect("fionread") > 0);
    }
    let after = tcgetattr(&slave).expect("tcgetattr");
    assert_eq!(after.local_modes, before.local_modes);
    assert_eq!(after.input_modes, before.input_modes);
    assert_eq!(after.output_modes, before.output_modes);
    assert_eq!(rustix::io::ioctl_fionread(&slave).expect("fionread"), 0);
}

#[test]
fn modes_left_on_are_reset_when_stdout_is_a_terminal() {
    let Some((master, slave)) = pair() else {
        return;
    };
    // The "person's terminal" is a second pty; we read what reaches it from its master.
    let Some((outer_master, outer_slave)) = pair() else {
        return;
    };
    let mut child = spawn_on(slave, r"printf 'x\033[?1049h\033[?2004h\033[?25l'");
    let relay = Relay::start(master, -1, outer_slave.as_raw_fd()).expect("relay");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(10)));
    assert!(wait_finished(&relay, Duration::from_secs(10)));
    relay.stop_and_join();
    drop(outer_slave);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = rustix::io::read(&outer_master, &mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.starts_with("x\x1b[?1049h\x1b[?2004h\x1b[?25l"),
        "{seen:?}"
    );
    for want in ["\x1b[?2004l", "\x1b[?1049l", "\x1b[?25h"] {
        assert!(seen.contains(want), "{want:?} missing in {seen:?}");
    }
}

#[test]
fn relay_reports_whether_the_program_queried_the_terminal() {
    for (script, expect) in [
        (r"printf 'plain \033[1mtext\n'", false),
        (r"printf '\033[6n'", true),
    ] {
        let Some((master, slave)) = pair() else {
            return;
        };
        let mut child = spawn_on(slave, script);
        let out = Capture::new();
        let relay = Relay::start(master, -1, out.fd()).expect("relay");
        assert!(wait_with_timeout(&mut child, Duration::from_secs(10)));
        assert!(wait_finished(&relay, Duration::from_secs(10)));
        assert_eq!(relay.queried(), expect, "{script}");
        relay.stop_and_join();
        drop(out.finish());
    }
}

#[test]
fn a_query_relayed_only_by_the_final_drain_still_counts() {
    // The program asked and exited before the relay read anything: its query is relayed by
    // the drain at the stop, and the terminal will answer it, so the stop must say so (a
    // look before the stop said no, and the answer was echoed into the person's shell).
    // Twin: plain output drained the same way is no query.
    for (script, expect, relayed) in [
        (r"printf '\033[c'", true, "\x1b[c"),
        (r"printf 'plain \033[1mtext\n'", false, "text"),
    ] {
        let Some((master, slave)) = pair() else {
            return;
        };
        let mut child = spawn_on(slave, script);
        assert!(wait_with_timeout(&mut child, Duration::from_secs(10)));
        let out = Capture::new();
        let relay = Relay::start(master, -1, out.fd()).expect("relay");
        assert_eq!(relay.stop_and_join(), expect, "{script}");
        let seen = out.finish();
        assert!(seen.contains(relayed), "{script}: {seen:?}");
    }
}

/// Runs `script` on the slave; once it printed `ready`, types `input` at the relay. Returns
/// everything the relay delivered, or `None` when this machine has no ptys.
fn type_after_ready(script: &str, input: &[u8]) -> Option<String> {
    let (master, slave) = pair()?;
    let mut child = spawn_on(slave, script);
    let (stdin_read, mut stdin_write) = stdin_pipe();
    let out = Capture::new();
    let relay = Relay::start(master, stdin_read.as_raw_fd(), out.fd()).expect("relay");
    assert!(out.wait_for("ready", Duration::from_secs(10)), "{script}");
    stdin_write.write_all(input).expect("write");
    assert!(
        wait_with_timeout(&mut child, Duration::from_secs(10)),
        "{script}"
    );
    relay.stop_and_join();
    Some(out.finish())
}

#[test]
fn a_reply_nobody_reads_is_not_echoed_but_typing_is() {
    // The pty is in line mode with echo (a shell ran `printf '\033[c'; exit` and the answer
    // comes late): the answer would be echoed onto the person's screen and typed into the
    // next line read. Twin: what the person types is echoed and read as before.
    let Some(seen) = type_after_ready(
        "echo ready; read line; echo \"GOT[$line]\"",
        b"typed\x1b[?1;2c\x1b[4;1R here\n",
    ) else {
        return;
    };
    assert!(seen.contains("GOT[typed here]"), "{seen:?}");
    assert!(
        !seen.contains("1;2c") && !seen.contains("4;1R"),
        "a reply was echoed or read: {seen:?}"
    );
}

#[test]
fn a_program_reading_in_raw_mode_gets_the_reply_twin() {
    let Some(seen) = type_after_ready(
        "stty raw -echo; echo ready; head -c 8 | od -An -tx1",
        b"\x1b[?1;2cX",
    ) else {
        return;
    };
    assert!(seen.contains("1b 5b 3f 31 3b 32 63 58"), "{seen:?}");
}

/// Runs `RawTerminal::discard_replies` against a terminal emulator that, once it saw
/// cordon's DA1 query, writes each of `replies` after its delay. Returns how long the wait
/// took, after checking that nothing was left for the outer shell.
fn discard_against(replies: &'static [(u64, &'static [u8])]) -> Option<Duration> {
    // The slave plays the person's terminal device; the test thread holding the master plays
    // the terminal emulator.
    let (emulator, terminal) = pair()?;
    let raw = RawTerminal::enter(terminal.as_fd()).expect("raw");
    let answerer = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !seen.windows(3).any(|w| w == b"\x1b[c") {
            match rustix::io::read(&emulator, &mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => return emulator,
            }
        }
        for (delay, reply) in replies {
            std::thread::sleep(Duration::from_millis(*delay));
            rustix::io::write(&emulator, reply).expect("reply");
        }
        emulator
    });
    let start = Instant::now();
    raw.discard_replies(Duration::from_secs(3));
    let took = start.elapsed();
    let _emulator = answerer.join().expect("answerer");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        rustix::io::ioctl_fionread(&terminal).expect("fionread"),
        0,
        "a reply was left for the outer shell"
    );
    drop(raw);
    Some(took)
}

#[test]
fn late_query_replies_are_awaited_and_discarded() {
    // A slow terminal: a reply to an earlier query of the program, then the answer to
    // cordon's DA1 (this one does not answer the status report).
    let Some(took) = discard_against(&[(150, b"\x1b[12;1R\x1b[?62;22c")]) else {
        return;
    };
    assert!(
        took >= Duration::from_millis(150),
        "returned before the reply: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "waited too long: {took:?}");
}

#[test]
fn a_late_reply_of_the_program_does_not_end_the_wait_early() {
    // The program's own DA1 reply arrives first; cordon's status report and DA1 replies come
    // 100 ms later (a loaded terminal): they must be swallowed too, not echoed afterwards.
    let Some(took) = discard_against(&[(0, b"\x1b[?1;2c"), (100, b"\x1b[0n\x1b[?1;2c")]) else {
        return;
    };
    assert!(
        took >= Duration::from_millis(100),
        "returned at the program's reply: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "waited too long: {took:?}");
}
