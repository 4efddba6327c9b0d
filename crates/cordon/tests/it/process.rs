//! Processes, signals, syscalls and network: nothing inside reaches host processes, the
//! kernel's riskier surface, host sockets or the host loopback.
use crate::common;

use common::*;
use std::fs;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn exit_status_passthrough() {
    let sb = Sandbox::new("exit3");
    let out = sb.sh("exit 3");
    assert_eq!(
        out.code,
        3,
        "the command's exit status must pass through\n{}",
        out.show()
    );
    let ok = sb.run(&["true"]);
    assert_eq!(ok.code, 0, "`true` must exit 0\n{}", ok.show());
}

#[test]
fn signal_status_is_128_plus_n() {
    let sb = Sandbox::new("sigterm");
    let out = sb.sh("kill -TERM $$");
    assert_eq!(
        out.code,
        143,
        "`kill -TERM $$` must give 143 (the command is not pid 1)\n{}",
        out.show()
    );
    let out = sb.sh("kill -KILL $$");
    assert_eq!(
        out.code,
        137,
        "`kill -KILL $$` must give 137\n{}",
        out.show()
    );
}

#[test]
fn missing_command_is_127() {
    let sb = Sandbox::new("enoent");
    let out = sb.run(&["cordon-it-no-such-command"]);
    assert_eq!(
        out.code,
        127,
        "a command that does not exist must give 127\n{}",
        out.show()
    );
}

#[test]
fn non_executable_is_126() {
    let sb = Sandbox::new("noexec");
    sb.write_host(&sb.ws.join("script.sh"), "#!/bin/sh\necho ran\n");
    let p = sb.ws.join("script.sh").display().to_string();
    let out = sb.run(&[&p]);
    assert_eq!(
        out.code,
        126,
        "a non-executable file must give 126\n{}",
        out.show()
    );
    assert!(!out.stdout.contains("ran"), "{}", out.show());
}

#[test]
fn host_processes_invisible() {
    let sb = Sandbox::new("pidns");
    let marker = format!("cordon-it-hostmarker-{}", unique());
    let mut host = Command::new("bash")
        .args(["-c", &format!("exec -a {marker} sleep 1000")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn host marker");
    assert!(
        wait_for(Duration::from_secs(5), || !host_pids_with_cmdline(&marker)
            .is_empty()),
        "host marker did not start (harness problem)"
    );
    let out = sb.sh("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; echo NPIDS=$(ls -d /proc/[0-9]* | wc -l)");
    let _ = host.kill();
    let _ = host.wait();
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        !out.stdout.contains(&marker),
        "a host process is visible inside\n{}",
        out.show()
    );
    let n: usize = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("NPIDS="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        n <= 10,
        "the sandbox must see only its own few processes, saw {n}\n{}",
        out.show()
    );
}

#[test]
fn own_processes_visible_twin() {
    let sb = Sandbox::new("pidns-twin");
    let out = sb.sh("sleep 30 & p=$!; test -d /proc/$p && echo SEEN; kill $p; wait $p; echo done");
    assert!(
        out.stdout.contains("SEEN"),
        "the sandbox must see its own children\n{}",
        out.show()
    );
    assert_eq!(out.code, 0, "{}", out.show());
}

#[test]
fn nothing_survives_sigkill_of_cordon() {
    let sb = Sandbox::new("sigkill");
    let a = format!("1000.{}", unique_digits());
    let b = format!("1001.{}", unique_digits());
    let mut cmd = sb.cordon_command();
    cmd.args(["run", "--", "bash", "-c"])
        .arg(format!(
            "S=sleep; $S {a} & setsid $S {b} & nohup $S {a} >/dev/null 2>&1 & wait"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn cordon");
    let needles = [format!("sleep {a}"), format!("sleep {b}")];
    let started = wait_for(Duration::from_secs(30), || {
        needles
            .iter()
            .all(|n| !host_pids_with_cmdline(n).is_empty())
    });
    if !started {
        let _ = child.kill();
        let _ = child.wait();
        let left: Vec<u32> = needles
            .iter()
            .flat_map(|n| host_pids_with_cmdline(n))
            .collect();
        kill_pids(&left);
        panic!("the sandboxed command never started its marker processes within 30 s");
    }
    child.kill().expect("SIGKILL cordon");
    let _ = child.wait();
    let gone = wait_for(Duration::from_secs(5), || {
        needles.iter().all(|n| host_pids_with_cmdline(n).is_empty())
    });
    let left: Vec<u32> = needles
        .iter()
        .flat_map(|n| host_pids_with_cmdline(n))
        .collect();
    kill_pids(&left);
    assert!(
        gone,
        "sandbox processes survived SIGKILL of cordon: pids {left:?}"
    );
}

fn unique_digits() -> String {
    unique()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(12)
        .collect()
}

#[test]
fn setsid_and_nohup_children_die_with_command() {
    let sb = Sandbox::new("setsid");
    let a = format!("1002.{}", unique_digits());
    let b = format!("1003.{}", unique_digits());
    let c = format!("1004.{}", unique_digits());
    let script = format!(
        "S=sleep; setsid $S {a} >/dev/null 2>&1 < /dev/null & nohup $S {b} >/dev/null 2>&1 & disown; \
         ( ( $S {c} >/dev/null 2>&1 & ) & ); sleep 0.5; \
         for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c '^sleep 100[234]\\.'; exit 0"
    );
    let out = sb.sh(&script);
    let needles = [
        format!("sleep {a}"),
        format!("sleep {b}"),
        format!("sleep {c}"),
    ];
    let gone = wait_for(Duration::from_secs(3), || {
        needles.iter().all(|n| host_pids_with_cmdline(n).is_empty())
    });
    let left: Vec<u32> = needles
        .iter()
        .flat_map(|n| host_pids_with_cmdline(n))
        .collect();
    kill_pids(&left);
    assert!(
        gone,
        "setsid/nohup/double-fork children outlived the command: pids {left:?}\n{}",
        out.show()
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.lines().any(|l| l.trim() == "3"),
        "the three escaping sleeps must have been running inside before the command exited\n{}",
        out.show()
    );
}

#[test]
fn background_job_within_command_works_twin() {
    let sb = Sandbox::new("bg-twin");
    let out = sb.sh("(sleep 0.2; echo child-done) & wait; echo parent-done");
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("child-done\nparent-done"),
        "{}",
        out.show()
    );
}

#[test]
fn fork_bomb_bounded() {
    let sb = Sandbox::new("forkbomb");
    note(
        "process::fork_bomb_bounded",
        "cgroup v2 pids/memory limits cannot be exercised on this cgroup-v1 machine; only RLIMIT_NPROC-style bounds are checked",
    );
    let py = r#"
import os, time, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
print("NPROC", soft, hard, flush=True)
n = 0
pids = []
for i in range(5000):
    try:
        pid = os.fork()
    except OSError as e:
        print("FORK-FAILED", n, e.errno, flush=True)
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    pids.append(pid)
    n += 1
print("FORKED", n, flush=True)
"#;
    let start = std::time::Instant::now();
    let out = sb.run(&["python3", "-c", py]);
    let took = start.elapsed();
    let ulimit = sb.sh("ulimit -u");
    let lim = ulimit.stdout.trim();
    let bounded_rlimit = lim.parse::<u64>().map(|n| n <= 4096).unwrap_or(false);
    let forked: Option<u64> = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("FORKED "))
        .and_then(|n| n.trim().parse().ok());
    assert!(
        bounded_rlimit || out.stdout.contains("FORK-FAILED"),
        "task count must be bounded (ulimit -u = {lim:?}, must be <= 4096, or the 5000-fork loop must fail partway)\n{}\n{}",
        ulimit.show(),
        out.show()
    );
    if let Some(n) = forked {
        assert!(
            n < 5000,
            "5000 forks all succeeded: no task limit\n{}",
            out.show()
        );
    }
    assert!(
        took < Duration::from_secs(50),
        "the bomb was not bounded in time: {took:?}"
    );
    // The host is fine: it can still start processes.
    let st = Command::new("true").status().expect("host can still fork");
    assert!(st.success());
}

fn py(sb: &Sandbox, body: &str) -> Out {
    assert_ran(sb.run(&["python3", "-c", &format!("{PY_SYSCALL}\n{body}")]))
}

/// Assert a python snippet printed `name=<errno>` with errno == EPERM.
fn assert_eperm(out: &Out, name: &str) {
    let want = format!("{name}=1");
    assert!(
        out.stdout.lines().any(|l| l.trim() == want),
        "{name} must fail with EPERM (errno 1) inside the sandbox\n{}",
        out.show()
    );
}

#[test]
fn dangerous_syscalls_eperm() {
    let sb = Sandbox::new("syscalls");
    let body = r#"
buf = ctypes.create_string_buffer(256)
def show(name, r):
    ret, err = r
    print(f"{name}={err if ret < 0 else 'OK'}", flush=True)
show("ptrace", sc(101, 0, 0, 0, 0))            # PTRACE_TRACEME
show("io_uring_setup", sc(425, 1, buf))
show("bpf", sc(321, 0, buf, 64))
show("perf_event_open", sc(298, buf, 0, -1 & 0xffffffffffffffff, -1 & 0xffffffffffffffff, 0))
show("userfaultfd", sc(323, 0))
show("keyctl", sc(250, 0, (-3) & 0xffffffffffffffff, 0))   # KEYCTL_GET_KEYRING_ID session
show("add_key", sc(248, ctypes.c_char_p(b"user"), ctypes.c_char_p(b"k"), ctypes.c_char_p(b"v"), 1, (-3) & 0xffffffffffffffff))
show("mount", sc(165, ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"tmpfs"), 0, 0))
show("unshare_user", sc(272, 0x10000000))       # CLONE_NEWUSER
show("unshare_ns", sc(272, 0x00020000))         # CLONE_NEWNS
show("process_vm_readv", sc(310, 1, buf, 1, buf, 1, 0))
show("setns", sc(308, 0, 0))
show("pivot_root", sc(155, ctypes.c_char_p(b"/"), ctypes.c_char_p(b"/")))
show("open_tree", sc(428, -100 & 0xffffffffffffffff, ctypes.c_char_p(b"/"), 1))
show("kexec_load", sc(246, 0, 0, 0, 0))
show("init_module", sc(175, 0, 0, ctypes.c_char_p(b"")))
show("reboot", sc(169, 0xfee1dead, 672274793, 0x4321fedc, 0))
show("swapon", sc(167, ctypes.c_char_p(b"/nonexistent"), 0))
show("getpid", sc(39))
"#;
    let out = py(&sb, body);
    for name in [
        "ptrace",
        "io_uring_setup",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "mount",
        "unshare_user",
        "process_vm_readv",
        "pivot_root",
        "reboot",
        "swapon",
        "setns",
        "open_tree",
        "kexec_load",
        "init_module",
    ] {
        assert_eperm(&out, name);
    }
    // Twin: an ordinary syscall through the same path works, so EPERM is the filter's answer.
    assert!(
        out.stdout.lines().any(|l| l == "getpid=OK"),
        "getpid via ctypes must work\n{}",
        out.show()
    );
}

#[test]
fn clone3_answers_enosys_and_threads_work() {
    let sb = Sandbox::new("clone3");
    let body = r#"
import threading
buf = ctypes.create_string_buffer(88)
r, e = sc(435, buf, 88)
print("clone3", "OK" if r >= 0 else e, flush=True)
if r == 0:
    os._exit(0)
t = threading.Thread(target=lambda: print("thread-ran", flush=True)); t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
print("child-status", os.waitpid(pid, 0)[1] >> 8, flush=True)
"#;
    let out = py(&sb, body);
    assert!(
        out.stdout.contains("clone3 38"),
        "clone3 must answer ENOSYS (38)\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("thread-ran") && out.stdout.contains("child-status 7"),
        "threads and fork must work\n{}",
        out.show()
    );
}

#[test]
fn strace_and_unshare_tools_fail() {
    let sb = Sandbox::new("tools-deny");
    let mut script = String::from("unshare -U true && echo UNSHARE-U-OK; unshare -r true && echo UNSHARE-R-OK; \
        mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo MOUNT-OK; grep ' /tmp/m ' /proc/self/mountinfo && echo MOUNTED; ");
    let has_strace = sb.has_tool("strace");
    if has_strace {
        script.push_str("strace -o /dev/null true && echo STRACE-OK; ");
    } else {
        skip(
            "process::strace_and_unshare_tools_fail",
            "strace not installed; ptrace checked via ctypes only",
        );
    }
    script.push_str("true");
    let out = sb.sh(&script);
    for bad in [
        "UNSHARE-U-OK",
        "UNSHARE-R-OK",
        "MOUNT-OK",
        "MOUNTED",
        "STRACE-OK",
    ] {
        assert!(
            !out.stdout.contains(bad),
            "{bad}: this must fail inside the sandbox\n{}",
            out.show()
        );
    }
    assert_eq!(out.code, 0, "{}", out.show());
}

#[test]
fn tiocsti_denied() {
    let sb = Sandbox::new("tiocsti");
    let body = r#"
c = ctypes.c_char(b"x")
for fd in (0, 1, 2):
    r, e = sc(16, fd, 0x5412, ctypes.byref(c))
    print(f"tiocsti{fd}={e if r < 0 else 'OK'}", flush=True)
r, e = sc(16, 0, 0xffffffff00005412, ctypes.byref(c))
print(f"tiocsti_high={e if r < 0 else 'OK'}", flush=True)
r, e = sc(16, 0, 0x541C, ctypes.byref(c))   # TIOCLINUX
print(f"tioclinux={e if r < 0 else 'OK'}", flush=True)
ws = ctypes.create_string_buffer(8)
r, e = sc(16, 0, 0x5413, ws)   # TIOCGWINSZ: allowed; stdin is not a tty here
print(f"tiocgwinsz={e if r < 0 else 'OK'}", flush=True)
"#;
    let out = py(&sb, body);
    for n in [
        "tiocsti0",
        "tiocsti1",
        "tiocsti2",
        "tiocsti_high",
        "tioclinux",
    ] {
        assert_eperm(&out, n);
    }
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "tiocgwinsz=25" || l == "tiocgwinsz=OK"),
        "ordinary ioctls (TIOCGWINSZ) must not be denied (expect ENOTTY=25 on a pipe)\n{}",
        out.show()
    );
}

#[test]
fn socket_families_restricted() {
    let sb = Sandbox::new("sockfam");
    let body = r#"
def try_sock(name, fam, typ, proto=0):
    try:
        s = socket.socket(fam, typ, proto); s.close(); print(f"{name}=OK", flush=True)
    except OSError as e:
        print(f"{name}={e.errno}", flush=True)
try_sock("packet", 17, socket.SOCK_RAW, 0x0300)
try_sock("netlink_audit", 16, socket.SOCK_RAW, 9)
try_sock("netlink_uevent", 16, socket.SOCK_RAW, 15)
try_sock("vsock", 40, socket.SOCK_STREAM)
try_sock("bluetooth", 31, socket.SOCK_RAW, 0)
try_sock("unix", socket.AF_UNIX, socket.SOCK_STREAM)
try_sock("inet", socket.AF_INET, socket.SOCK_STREAM)
try_sock("inet6", socket.AF_INET6, socket.SOCK_DGRAM)
"#;
    let out = py(&sb, body);
    for n in [
        "packet",
        "netlink_audit",
        "netlink_uevent",
        "vsock",
        "bluetooth",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{n}=")) && !l.ends_with("=OK")),
            "socket family {n} must be refused\n{}",
            out.show()
        );
    }
    for n in ["unix", "inet", "inet6"] {
        assert!(
            out.stdout.lines().any(|l| l == format!("{n}=OK")),
            "{n} sockets must work\n{}",
            out.show()
        );
    }
}

#[test]
fn host_loopback_unreachable() {
    let sb = Sandbox::new("net-host");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind host loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let body = format!(
        r#"
for host in ("127.0.0.1", "127.1", "0.0.0.0", "localhost", "::ffff:127.0.0.1"):
    try:
        s = socket.create_connection((host, {port}), timeout=3); s.sendall(b"leak"); print("CONNECTED", host, flush=True)
    except OSError as e:
        print("refused", host, e, flush=True)
for host, port in (("1.1.1.1", 53), ("169.254.169.254", 80), ("198.18.0.1", 80)):
    try:
        s = socket.create_connection((host, port), timeout=2); print("CONNECTED", host, flush=True)
    except OSError as e:
        print("refused", host, e, flush=True)
"#
    );
    let out = py(&sb, &body);
    let accepted = listener.accept().is_ok();
    assert!(
        !accepted,
        "the host loopback listener received a connection from inside\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("CONNECTED"),
        "a connection out of the sandbox succeeded\n{}",
        out.show()
    );
    assert_eq!(out.code, 0, "{}", out.show());
}

#[test]
fn loopback_inside_works_twin() {
    let sb = Sandbox::new("net-inside");
    let body = r#"
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
c = socket.create_connection(("127.0.0.1", port), timeout=5)
conn, _ = srv.accept(); c.sendall(b"ping"); print("GOT", conn.recv(4).decode(), flush=True)
"#;
    let out = py(&sb, body);
    assert_eq!(
        out.code,
        0,
        "loopback inside the sandbox must work\n{}",
        out.show()
    );
    assert!(out.stdout.contains("GOT ping"), "{}", out.show());
}

#[test]
fn host_unix_sockets_unreachable() {
    let sb = Sandbox::new("unix-sock");
    let tag = unique();
    let tmp_path = format!("/tmp/cordon-it-sock-{tag}");
    let home_path = sb.home.join("sock");
    // A host daemon's socket inside the workspace (created before the run) stays closed too.
    let ws_path = sb.ws.join("host-daemon.sock");
    let run_dir = format!("/run/cordon-it-{tag}");
    let l1 = UnixListener::bind(&tmp_path).expect("bind /tmp socket");
    let l2 = unix_listener(&home_path).expect("bind home socket");
    let l5 = unix_listener(&ws_path).expect("bind workspace socket");
    let _ = fs::create_dir_all(&run_dir);
    let run_path = format!("{run_dir}/sock");
    let l3 = UnixListener::bind(&run_path).ok();
    let abs_name = format!("cordon-it-abstract-{tag}");
    let l4 = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abs_name.as_bytes())
            .expect("abstract addr");
        UnixListener::bind_addr(&addr).expect("bind abstract socket")
    };
    for p in [
        &tmp_path,
        &home_path.display().to_string(),
        &ws_path.display().to_string(),
        &run_path,
        &run_dir,
    ] {
        let _ = fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    }
    chown_tree(&sb.root);
    let all: Vec<&UnixListener> = [Some(&l1), Some(&l2), l3.as_ref(), Some(&l4), Some(&l5)]
        .into_iter()
        .flatten()
        .collect();
    for l in &all {
        l.set_nonblocking(true).expect("nonblocking");
    }
    let body = format!(
        r#"
top = os.getcwd()
for p in ("{tmp_path}", "{home}", "{ws}", "{run_path}", "\0{abs_name}"):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(3)
        if len(p) >= 108 and not p.startswith("\0"):
            # Too long for a socket name: reached relative to its directory instead.
            os.chdir(os.path.dirname(p)); s.connect(os.path.basename(p))
        else:
            s.connect(p)
        s.sendall(b"x"); print("CONNECTED", repr(p), flush=True)
    except OSError as e:
        print("refused", repr(p), e, flush=True)
    finally:
        os.chdir(top)
"#,
        home = home_path.display(),
        ws = ws_path.display()
    );
    let out = py(&sb, &body);
    let accepted: Vec<bool> = all.iter().map(|l| l.accept().is_ok()).collect();
    let _ = fs::remove_file(&tmp_path);
    let _ = fs::remove_dir_all(&run_dir);
    assert!(
        !out.stdout.contains("CONNECTED"),
        "a host unix socket was reachable from inside\n{}",
        out.show()
    );
    assert!(
        accepted.iter().all(|a| !a),
        "a host unix listener accepted a connection: {accepted:?}\n{}",
        out.show()
    );
    if l3.is_none() {
        note(
            "process::host_unix_sockets_unreachable",
            "could not create a socket under /run (not root); /run not checked",
        );
    }
}

#[test]
fn unix_socket_inside_works_twin() {
    let sb = Sandbox::new("unix-inside");
    let body = r#"
p = "s.sock"  # relative: the workspace's absolute path may be longer than a socket name
srv = socket.socket(socket.AF_UNIX); srv.bind(p); srv.listen(1)
c = socket.socket(socket.AF_UNIX); c.connect(p)
conn, _ = srv.accept(); c.sendall(b"pong"); print("GOT", conn.recv(4).decode(), flush=True)
a, b = socket.socketpair(); a.sendall(b"pair"); print("PAIR", b.recv(4).decode(), flush=True)
"#;
    let out = py(&sb, body);
    assert_eq!(
        out.code,
        0,
        "unix sockets made inside must work\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("GOT pong") && out.stdout.contains("PAIR pair"),
        "{}",
        out.show()
    );
}

#[test]
fn devices_minimal() {
    let sb = Sandbox::new("dev");
    let out = sb.sh("ls /dev; for d in /dev/kvm /dev/sda /dev/vda /dev/nvme0n1 /dev/mem /dev/video0 /dev/snd; do \
         test -e $d && echo PRESENT $d; done; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo NULL-OK");
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        !out.stdout.contains("PRESENT"),
        "host devices visible in the sandbox /dev\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("NULL-OK") && out.stdout.contains("\n4\n"),
        "/dev/null and /dev/urandom must work\n{}",
        out.show()
    );
}

#[test]
fn setuid_binaries_gain_nothing() {
    let sb = Sandbox::new("setuid");
    let out = sb.sh(
        "grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb):' /proc/self/status; \
        (command -v sudo >/dev/null && sudo -n true 2>/dev/null && echo SUDO-OK); \
        (command -v su >/dev/null && su -c true root </dev/null 2>/dev/null && echo SU-OK); true",
    );
    assert!(
        out.stdout.contains("NoNewPrivs:\t1"),
        "no_new_privs must be set\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("CapEff:\t0000000000000000"),
        "no effective capabilities\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("SUDO-OK") && !out.stdout.contains("SU-OK"),
        "{}",
        out.show()
    );
}

#[test]
fn closed_stdio_never_exposes_cordon_descriptors() {
    // Started with stdin closed, cordon must not let one of its own descriptors (its control
    // channel, a signalfd) take fd 0 and reach the command as stdin. (Rust's runtime reopens
    // closed standard descriptors on /dev/null before main; this guards that property.)
    let sb = Sandbox::new("closed-stdin");
    let out = sb.host_sh(&format!(
        "{} run -- bash -c 'echo CORDON-IT-RAN; readlink /proc/self/fd/0' <&-",
        cordon_bin().display()
    ));
    assert!(out.stdout.contains("CORDON-IT-RAN"), "{}", out.show());
    let fd0 = out.stdout.lines().last().unwrap_or("").to_string();
    assert!(
        !fd0.contains("socket") && !fd0.contains("anon_inode"),
        "the command's stdin is one of cordon's descriptors: {fd0}\n{}",
        out.show()
    );
}
