//! `--isolation vm`: the command runs in a QEMU microVM whose QEMU is itself confined
//! by the namespace tier. Each test boots a guest under software emulation (TCG, a few seconds
//! each), so they are few and each checks several things in one boot. Attacks are checked on
//! the HOST afterwards and have a legitimate twin in the same run.
use crate::common;

use common::net::*;
use common::*;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const VM: &[&str] = &["--isolation", "vm", "--allow-emulation"];
/// A TCG boot plus the run; generous for two busy cores.
const VM_TIMEOUT: Duration = Duration::from_secs(150);

/// Why the VM tier cannot be tested here, if it cannot.
fn unavailable() -> Option<String> {
    let qemu = [
        "/usr/bin/qemu-system-x86_64",
        "/usr/local/bin/qemu-system-x86_64",
    ];
    if !qemu.iter().any(|q| Path::new(q).exists()) {
        return Some(
            "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)".into(),
        );
    }
    let kernels: Vec<_> = std::fs::read_dir("/boot")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
                .collect()
        })
        .unwrap_or_default();
    if kernels.is_empty() {
        return Some("no /boot/vmlinuz-* (apt-get install linux-image-amd64)".into());
    }
    None
}

/// The binary under test, copied where the test user can run it. A copy of its own: the
/// shared /tmp/cordon-it/cordon may be replaced by another test binary while a VM boots.
fn vm_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let built = std::env::var_os("CORDON_IT_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_cordon").into());
        if !test_user().drop_privs {
            return built;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = Path::new("/tmp/cordon-it-vm");
        std::fs::create_dir_all(dir).expect("create /tmp/cordon-it-vm");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // Copies of earlier runs (not of one running now) are of no more use.
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(1800));
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let dst = dir.join(format!("cordon-{}", unique()));
        std::fs::copy(&built, &dst).expect("copy cordon");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        dst
    })
}

fn vm_command(sb: &Sandbox) -> std::process::Command {
    sb.user_command(vm_bin())
}

fn vm_ready(test: &str) -> bool {
    match unavailable() {
        Some(why) => {
            skip(&format!("vm::{test}"), &why);
            false
        }
        None => true,
    }
}

/// `cordon run --isolation vm --allow-emulation OPTS -- bash -c SCRIPT` with `input` on stdin;
/// raw stdout bytes, stderr, exit status.
fn vm_run(sb: &Sandbox, opts: &[&str], script: &str, input: &[u8]) -> (Vec<u8>, String, i32) {
    let mut cmd = vm_command(sb);
    cmd.arg("run")
        .args(VM)
        .args(opts)
        .args(["--", "bash", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cordon");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = match wait_timeout(&mut child, VM_TIMEOUT) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cordon --isolation vm did not finish in {VM_TIMEOUT:?}");
        }
    };
    let _ = feeder.join();
    let stdout = reader.join().unwrap_or_default();
    let stderr = ereader.join().unwrap_or_default();
    (stdout, stderr, status_code(status))
}

#[test]
fn stdio_and_exit_status_round_trip() {
    if !vm_ready("stdio_and_exit_status_round_trip") {
        return;
    }
    let sb = Sandbox::new("vm-io");
    // Binary stdout (NUL, high bytes, no trailing newline), stderr kept apart, stdin read
    // through, and the command's own status.
    let script =
        "printf 'A\\000\\377B'; cat; echo to-stderr >&2; printf '\\n%s' \"$(uname -r)\"; exit 7";
    // 1 MiB of every byte value (many frames each way), then a marker line.
    let mut input: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    input.extend_from_slice(b"from-stdin\n");
    let (out, err, code) = vm_run(&sb, &["--verbose"], script, &input);
    let mut want_head = b"A\x00\xffB".to_vec();
    want_head.extend_from_slice(&input);
    assert!(
        out.starts_with(&want_head),
        "stdout must be byte-exact ({} bytes, want {} first)\nstderr: {err}",
        out.len(),
        want_head.len()
    );
    assert_eq!(code, 7, "the guest command's exit status\nstderr: {err}");
    assert!(
        err.contains("to-stderr"),
        "stderr is relayed separately: {err}"
    );
    assert!(
        !String::from_utf8_lossy(&out).contains("to-stderr"),
        "stderr must not leak into stdout"
    );
    assert!(
        err.contains("software emulation"),
        "--allow-emulation warns that TCG is slow: {err}"
    );
    assert!(
        err.contains("inner wall") && err.contains("Landlock ABI"),
        "--verbose reports what the inner wall provides: {err}"
    );
    // The command really ran under a second kernel: the guest's, not necessarily the host's.
    let guest_release = String::from_utf8_lossy(&out[want_head.len()..])
        .trim()
        .to_string();
    assert!(
        !guest_release.is_empty(),
        "uname -r in the guest printed nothing"
    );
    // The inner wall, as the guest kernel reports it for the command.
    let (st, err, code) = vm_run(
        &sb,
        &[],
        "grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd|CapPrm):' /proc/self/status; echo CLOCK=$(date +%s)",
        b"",
    );
    let st = String::from_utf8_lossy(&st).into_owned();
    for want in [
        "Seccomp:\t2",
        "NoNewPrivs:\t1",
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapBnd:\t0000000000000000",
    ] {
        assert!(
            st.contains(want),
            "{want} in the guest\n{st}\n{err}\nexit {code}"
        );
    }
    // The guest keeps the host's time (TLS certificates are checked inside).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let guest: i64 = st
        .lines()
        .find_map(|l| l.strip_prefix("CLOCK="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        (guest - now).abs() < 600,
        "guest clock {guest} vs host {now}\n{st}"
    );
    let killed = vm_run(&sb, &[], "kill -TERM $$", b"");
    assert_eq!(killed.2, 128 + 15, "death by signal is 128+N\n{}", killed.1);
}

#[test]
fn without_kvm_or_permission_exits_125() {
    if !vm_ready("without_kvm_or_permission_exits_125") {
        return;
    }
    let sb = Sandbox::new("vm-nokvm");
    let can_kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
        && !sb.user.drop_privs;
    if can_kvm {
        note(
            "vm::without_kvm_or_permission_exits_125",
            "the test user can open /dev/kvm; the exit-125 path is not exercised",
        );
        return;
    }
    let mut cmd = vm_command(&sb);
    cmd.args([
        "run",
        "--isolation",
        "vm",
        "--",
        "bash",
        "-c",
        "echo SHOULD-NOT-RUN",
    ]);
    let out = exec(cmd, RUN_TIMEOUT);
    assert_eq!(out.code, 125, "{}", out.show());
    assert!(
        out.stderr.contains("KVM unavailable") && out.stderr.contains("--allow-emulation"),
        "the error says why and how to proceed\n{}",
        out.show()
    );
    assert!(!out.stdout.contains("SHOULD-NOT-RUN"), "{}", out.show());
}

#[test]
fn files_outer_and_inner_walls() {
    if !vm_ready("files_outer_and_inner_walls") {
        return;
    }
    let sb = Sandbox::new("vm-files");
    sb.host_sh_ok("mkdir -p .git/hooks && echo '[core]' > .git/config");
    let outside = sb.root.join("outside.txt");
    let before_home = sb.home_snapshot();
    let before_git = host_snapshot(&sb.ws.join(".git"));
    let script = format!(
        "echo {RAN}\n\
         echo legit > ws-file.txt && echo WS-WRITE-OK\n\
         mkdir -p src/deep && echo x > src/deep/a.rs && mv src/deep/a.rs src/deep/b.rs && echo WS-TREE-OK\n\
         echo x > /dev/null && echo DEVNULL-OK\n\
         echo evil > {outside} && echo OUTSIDE-WRITTEN\n\
         echo evil > /etc/cordon-vm-evil && echo ETC-WRITTEN\n\
         echo evil > .git/hooks/pre-commit && echo HOOK-WRITTEN\n\
         echo evil >> .git/config && echo GITCONFIG-WRITTEN\n\
         cat ~/.ssh/id_rsa | grep -q PRIVATE && echo SECRET-READ\n\
         cat ~/.aws/credentials | grep -q aws_secret && echo AWS-READ\n\
         echo scratch > ~/scratch.txt && cat ~/scratch.txt && echo HOME-LAYER-OK\n\
         echo evil >> ~/.bashrc && echo BASHRC-WRITTEN\n\
         mkdir -p ~/.claude && echo '{{\"hooks\":1}}' > ~/.claude/settings.json && echo AGENT-SETTINGS-WRITTEN\n\
         echo t > /tmp/t && echo TMP-OK\n",
        outside = outside.display()
    );
    let (out, err, code) = vm_run(&sb, &[], &script, b"");
    let out = String::from_utf8_lossy(&out).into_owned();
    let show = format!("stdout:\n{out}\nstderr:\n{err}\nexit {code}");
    let o = Out {
        code,
        stdout: out.clone(),
        stderr: err.clone(),
    };
    assert!(out.contains(RAN), "nothing ran\n{show}");
    // Legitimate twins.
    for ok in [
        "DEVNULL-OK",
        "WS-WRITE-OK",
        "WS-TREE-OK",
        "HOME-LAYER-OK",
        "TMP-OK",
    ] {
        assert!(out.contains(ok), "{ok} missing\n{show}");
    }
    assert_eq!(
        std::fs::read_to_string(sb.ws.join("ws-file.txt"))
            .ok()
            .as_deref(),
        Some("legit\n"),
        "a workspace write persists on the host\n{show}"
    );
    assert!(sb.ws.join("src/deep/b.rs").exists(), "{show}");
    // Attacks, checked on the host.
    for bad in [
        "OUTSIDE-WRITTEN",
        "ETC-WRITTEN",
        "HOOK-WRITTEN",
        "GITCONFIG-WRITTEN",
        "SECRET-READ",
        "AWS-READ",
        "BASHRC-WRITTEN",
        "AGENT-SETTINGS-WRITTEN",
    ] {
        assert!(!out.contains(bad), "{bad}\n{show}");
    }
    // Outside the workspace is read-only, unless the test root lies below /tmp (a checkout
    // there): then the guest's private /tmp has no such directory. Either way it is refused,
    // and the host is checked below.
    assert!(
        [
            "Read-only file system",
            "Permission denied",
            "No such file or directory"
        ]
        .iter()
        .any(|why| err.contains(&format!("outside.txt: {why}"))),
        "the refusal itself: outside.txt\n{show}"
    );
    assert!(
        err.contains("/etc/cordon-vm-evil: Read-only file system"),
        "the refusal itself: /etc\n{show}"
    );
    assert!(
        err.contains(".git/hooks/pre-commit: Operation not permitted")
            || err.contains(".git/hooks/pre-commit: Permission denied"),
        "the outer path guard refuses the hook through QEMU's 9p server\n{show}"
    );
    assert_absent(&outside, &o);
    assert!(!Path::new("/etc/cordon-vm-evil").exists(), "{show}");
    assert_unchanged(
        ".git (protected) on the host",
        &before_git,
        &host_snapshot(&sb.ws.join(".git")),
        &o,
    );
    assert_unchanged(
        "home (private layer only)",
        &before_home,
        &sb.home_snapshot(),
        &o,
    );
}

#[test]
fn network_only_through_the_door() {
    if !vm_ready("network_only_through_the_door") {
        return;
    }
    let Some(t) = NetTest::new("vm-net") else {
        return;
    };
    let deny_ip = t.net.alloc();
    let pol = t.std_policy(&[NAME], &[CIDR_ALL], &[("blocked.test.example", &deny_ip)]);
    let ok = format!("/vm-ok-{}", unique());
    let bad = format!("/vm-bad-{}", unique());
    let plain = format!("/vm-plain-{}", unique());
    let tls = format!("/vm-tls-{}", unique());
    let plain_bad = format!("/vm-plain-bad-{}", unique());
    // Programs that ignore the proxy variables: plain sockets, IPv4.
    let py = format!(
        "{NET_PY}\n\
attempt(\"plain\", plain_get, \"{NAME}\", 80, \"{plain}\", None, socket.AF_INET)\n\
attempt(\"plain_denied\", plain_get, \"blocked.test.example\", 80, \"{plain_bad}\", None, socket.AF_INET)\n\
attempt(\"plain_odd_port\", plain_get, \"{NAME}\", 8081, \"{plain_bad}\", None, socket.AF_INET)\n"
    );
    t.sb.write_host(&t.sb.ws.join("plain.py"), &py);
    let script = format!(
        "echo {RAN}\n\
         curl -sS --max-time 45 -o /dev/null -w 'ALLOWED=%{{http_code}}\\n' http://{NAME}{ok}\n\
         curl -sS --max-time 45 -o /dev/null -w 'DENIED=%{{http_code}}\\n' http://blocked.test.example{bad}\n\
         curl -sS --max-time 45 --cacert ca.pem -o /dev/null -w 'TLS=%{{http_code}}\\n' https://{NAME}{tls}\n\
         curl -sS --max-time 10 --noproxy '*' -o /dev/null -w 'DIRECT=%{{http_code}}\\n' http://192.0.2.1{bad} 2>/dev/null || echo DIRECT-FAILED\n\
         python3 -c 'import socket; print(\"RESOLVED\", socket.gethostbyname(\"{NAME}\"))' 2>&1\n\
         python3 plain.py\n",
    );
    let (out, err, code) = vm_run(
        &t.sb,
        &["-p", &pol, "--deny-domain", "blocked.test.example"],
        &script,
        b"",
    );
    let out = String::from_utf8_lossy(&out).into_owned();
    let show = format!("stdout:\n{out}\nstderr:\n{err}\nexit {code}");
    assert!(out.contains(RAN), "nothing ran\n{show}");
    assert!(
        out.contains("ALLOWED=200"),
        "an allowed name through the door\n{show}"
    );
    t.assert_request("http", &ok, &show);
    // TLS end to end from the guest through CONNECT: certificate checked in the guest.
    assert!(out.contains("TLS=200"), "HTTPS through the door\n{show}");
    let h = t.assert_request("https", &tls, &show);
    assert_eq!(h["sni"], NAME, "{h}");
    assert!(
        out.contains("DENIED=403"),
        "a denied name gets the door's 403\n{show}"
    );
    assert!(
        out.contains("DIRECT-FAILED") || out.contains("DIRECT=000"),
        "a raw address no rule allows: refused by the door, the guest has no other way out\n{show}"
    );
    assert!(
        out.contains("RESOLVED 240."),
        "DNS goes to the door's stub (synthetic address)\n{show}"
    );
    let r = Results::parse(Out {
        code,
        stdout: out.clone(),
        stderr: err.clone(),
    });
    r.assert_ok(
        "plain",
        &format!("cordon-it-ok path={plain}"),
        "a plain socket to an allowed name goes through the transparent door",
    );
    t.assert_request("http", &plain, &show);
    assert!(
        r.get("plain_denied").starts_with("err:"),
        "a plain socket to a denied name fails\n{show}"
    );
    assert!(
        r.get("plain_odd_port").starts_with("err:"),
        "a port no rule allows is not even listened for\n{show}"
    );
    let seen = t.net.seen_by(&deny_ip);
    assert!(
        seen.is_empty(),
        "the denied server was reached:\n{}\n{show}",
        show_records(&seen)
    );
}

#[test]
fn killing_cordon_leaves_no_qemu() {
    if !vm_ready("killing_cordon_leaves_no_qemu") {
        return;
    }
    let sb = Sandbox::new("vm-kill");
    let mut cmd = vm_command(&sb);
    cmd.arg("run")
        .args(VM)
        .args(["--", "bash", "-c", "echo VM-UP; exec sleep 300"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn cordon");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line == "VM-UP" {
                let _ = tx.send(());
            }
        }
    });
    let up = rx.recv_timeout(VM_TIMEOUT).is_ok();
    // QEMU's command line names this test's workspace (its 9p share).
    let marker = sb.ws.display().to_string();
    let qemus = || -> Vec<u32> {
        host_pids_with_cmdline(&marker)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.starts_with("qemu"))
            })
            .collect()
    };
    let before = qemus();
    // SAFETY: the pid of our own child; no memory involved.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    let gone = wait_for(Duration::from_secs(15), || qemus().is_empty());
    let left = qemus();
    kill_pids(&left);
    assert!(up, "the guest command never started");
    assert!(
        !before.is_empty(),
        "no QEMU process was found while the VM ran"
    );
    assert!(gone, "QEMU outlived a SIGKILLed cordon: {left:?}");
}

/// Drives a command on a pty of its own (window 33x101), types a line after READY.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select, struct, fcntl, termios
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
out, sent, start = b"", False, time.time()
while time.time() - start < 120:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
        if b"READY" in out and not sent:
            os.write(fd, b"typed-line\r")
            sent = True
sys.stdout.write(out.decode("utf-8", "replace"))
_, st = os.waitpid(pid, 0)
print("\nSTATUS=%d" % os.waitstatus_to_exitcode(st))
"#;

#[test]
fn interactive_pty_window_size_and_input() {
    if !vm_ready("interactive_pty_window_size_and_input") {
        return;
    }
    let sb = Sandbox::new("vm-pty");
    if !sb.has_tool("python3") {
        skip(
            "vm::interactive_pty_window_size_and_input",
            "python3 is not installed",
        );
        return;
    }
    let mut cmd = sb.user_command("python3");
    cmd.args(["-c", PTY_DRIVER])
        .arg(vm_bin())
        .args(["run"])
        .args(VM)
        .args([
            "--",
            "bash",
            "-c",
            "tty; stty size; echo READY; read x; echo got=$x; exit 5",
        ]);
    let out = exec(cmd, VM_TIMEOUT);
    let text = out.stdout.replace('\r', "");
    assert!(
        text.contains("/dev/pts/"),
        "the guest command has a pty\n{}",
        out.show()
    );
    assert!(
        text.contains("33 101"),
        "the window size crosses into the guest\n{}",
        out.show()
    );
    assert!(
        text.contains("got=typed-line"),
        "typed input reaches it\n{}",
        out.show()
    );
    assert!(
        text.contains("STATUS=5"),
        "and its exit status comes back\n{}",
        out.show()
    );
}

#[test]
fn only_the_vm_tiers_qemu_gets_dev_kvm() {
    // /dev/kvm is bound into the outer sandbox only when the VM tier runs QEMU under KVM; an
    // ordinary sandbox never has it (a KVM ioctl bug would otherwise be reachable from inside).
    let sb = Sandbox::new("vm-nokvm-dev");
    let out = sb.sh("test -e /dev/kvm && echo KVM-PRESENT || echo KVM-ABSENT");
    assert!(out.stdout.contains("KVM-ABSENT"), "{}", out.show());
    if !Path::new("/dev/kvm").exists() {
        note(
            "vm::only_the_vm_tiers_qemu_gets_dev_kvm",
            "this host has no /dev/kvm, so its absence inside proves little",
        );
    }
}

#[test]
fn doctor_reports_the_vm_tier() {
    if !vm_ready("doctor_reports_the_vm_tier") {
        return;
    }
    let sb = Sandbox::new("vm-doctor");
    let mut cmd = vm_command(&sb);
    // The guest boots are behind --verbose (a plain `doctor` answers at once).
    cmd.args(["doctor", "--verbose"]);
    let out = exec(cmd, VM_TIMEOUT);
    let kvm = out
        .stdout
        .lines()
        .find(|l| l.contains("VM tier: KVM"))
        .unwrap_or_else(|| panic!("no KVM line\n{}", out.show()))
        .to_string();
    assert!(
        kvm.contains("works: a guest reached userspace") || kvm.contains("unavailable: "),
        "the KVM line says whether and why\n{}",
        out.show()
    );
    if kvm.contains("unavailable") {
        assert!(
            out.stdout.contains("VM tier: emulation")
                && out.stdout.contains("reached userspace in"),
            "without KVM, doctor boots under emulation and says so\n{}",
            out.show()
        );
    }
    assert!(
        out.stdout.contains("VM inner wall") && out.stdout.contains("guest Landlock ABI"),
        "doctor reports the inner wall's Landlock ABI\n{}",
        out.show()
    );
}

/// `cordon ARGS` with the VM tests' copy of the binary.
fn vm_cordon(sb: &Sandbox, args: &[&str]) -> Out {
    let mut cmd = vm_command(sb);
    cmd.args(args);
    exec(cmd, Duration::from_secs(60))
}

#[test]
fn named_vm_sandbox_keeps_home_and_var_tmp() {
    if !vm_ready("named_vm_sandbox_keeps_home_and_var_tmp") {
        return;
    }
    let sb = Sandbox::new("vm-named");
    let name = format!("vm{}", unique());
    let state = sb.home.join(".local/state/cordon/sandboxes").join(&name);
    let bashrc_before = std::fs::read(sb.home.join(".bashrc")).ok();
    // Run 1 writes the kept layer; the protected ~/.bashrc is attacked through the guest's
    // 9p home (the outer path guard must refuse it, nothing in the guest can).
    let script = format!(
        "echo {RAN}\n\
         echo kept-home > ~/kept.txt && mkdir -p ~/.cache/tool && echo c > ~/.cache/tool/c && echo HOME-OK\n\
         echo kept-vt > /var/tmp/kept-vt.txt && echo VARTMP-OK\n\
         echo gone > /tmp/not-kept.txt && echo TMP-OK\n\
         echo 'echo PWNED' >> ~/.bashrc && echo BASHRC-WRITTEN\n"
    );
    let (out, err, code) = vm_run(&sb, &["--name", &name], &script, b"");
    let out = String::from_utf8_lossy(&out).into_owned();
    let show = format!("run 1 stdout:\n{out}\nstderr:\n{err}\nexit {code}");
    assert!(out.contains(RAN), "nothing ran\n{show}");
    for ok in ["HOME-OK", "VARTMP-OK", "TMP-OK"] {
        assert!(out.contains(ok), "{ok} missing\n{show}");
    }
    assert!(!out.contains("BASHRC-WRITTEN"), "{show}");
    assert!(
        err.contains(".bashrc: Operation not permitted")
            || err.contains(".bashrc: Permission denied"),
        "the outer path guard refuses ~/.bashrc through QEMU's 9p server\n{show}"
    );
    // The host's real home has none of it.
    assert!(!sb.home.join("kept.txt").exists(), "{show}");
    assert!(!sb.home.join(".cache/tool").exists(), "{show}");
    assert_eq!(
        std::fs::read(sb.home.join(".bashrc")).ok(),
        bashrc_before,
        "{show}"
    );
    let meta = std::fs::read_to_string(state.join("meta.json")).unwrap_or_default();
    assert!(
        meta.contains("\"isolation\": \"vm\""),
        "meta.json records the tier: {meta}\n{show}"
    );

    // Run 2 (same name) sees the kept files, not /tmp's or the refused .bashrc line; while it
    // runs, exec is refused (joining the outer sandbox would run outside the guest).
    let mut cmd = vm_command(&sb);
    cmd.arg("run")
        .args(VM)
        .args(["--name", &name, "--", "bash", "-c"])
        .arg(
            "cat ~/kept.txt ~/.cache/tool/c /var/tmp/kept-vt.txt; \
         test -e /tmp/not-kept.txt && echo TMP-KEPT; \
         grep -q PWNED ~/.bashrc 2>/dev/null && echo BASHRC-KEPT; \
         echo VM2-UP; while [ ! -e go ]; do sleep 0.2; done; echo VM2-DONE",
        );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cordon");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line == "VM2-UP" {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let up = rx.recv_timeout(VM_TIMEOUT).is_ok();
    let exec_out = vm_cordon(&sb, &["exec", &name, "--", "touch", "joined"]);
    let ls = vm_cordon(&sb, &["ls", "--json"]);
    let table = vm_cordon(&sb, &["ls"]);
    std::fs::write(sb.ws.join("go"), b"").expect("write go");
    let status = match wait_timeout(&mut child, VM_TIMEOUT) {
        Some(s) => status_code(s),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second VM run did not finish");
        }
    };
    let out2 = reader.join().unwrap_or_default();
    let err2 = ereader.join().unwrap_or_default();
    let show = format!("run 2 stdout:\n{out2}\nstderr:\n{err2}\nexit {status}");
    assert!(up, "run 2 never came up\n{show}");
    assert_eq!(status, 0, "{show}");
    for kept in ["kept-home", "kept-vt", "VM2-DONE"] {
        assert!(out2.lines().any(|l| l == kept), "{kept} missing\n{show}");
    }
    assert!(out2.lines().any(|l| l == "c"), "~/.cache kept\n{show}");
    assert!(!out2.contains("TMP-KEPT"), "/tmp is not kept\n{show}");
    assert!(!out2.contains("BASHRC-KEPT"), "{show}");
    assert_eq!(exec_out.code, 125, "exec refused\n{}", exec_out.show());
    assert!(
        exec_out.stderr.contains(&format!(
            "{name} runs in a VM; cordon exec into VM sandboxes is not supported"
        )),
        "{}",
        exec_out.show()
    );
    assert!(
        !sb.ws.join("joined").exists(),
        "exec ran a command\n{}",
        exec_out.show()
    );
    let v: serde_json::Value = serde_json::from_str(&ls.stdout).expect("ls --json");
    let me = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("{name} missing from ls: {}", ls.show()));
    assert_eq!(me["isolation"], "vm", "{}", ls.show());
    assert_eq!(me["running"], true, "{}", ls.show());
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with(&name) && l.contains(" vm ") && l.contains("running")),
        "{}",
        table.show()
    );

    // A name stays with its tier; rm removes the state.
    let other = vm_cordon(&sb, &["run", "--name", &name, "--", "true"]);
    assert_eq!(other.code, 125, "{}", other.show());
    assert!(
        other.stderr.contains("was created with --isolation vm"),
        "{}",
        other.show()
    );
    let rm = vm_cordon(&sb, &["rm", &name]);
    assert_eq!(rm.code, 0, "{}", rm.show());
    assert!(!state.exists(), "rm removes the kept layer\n{}", rm.show());
}
