//! Filesystem writes (M2, R6): only the workspace and allow_write paths reach the host.
use crate::common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

#[test]
fn workspace_write_persists() {
    let sb = Sandbox::new("ws-persist");
    let out = sb.sh("mkdir -p src && echo hello > src/new.txt && pwd");
    assert_eq!(
        out.code,
        0,
        "writing in the workspace must work\n{}",
        out.show()
    );
    assert_eq!(
        out.stdout.trim(),
        sb.ws.display().to_string(),
        "the command must start in the workspace (cwd)\n{}",
        out.show()
    );
    let got = read_opt(&sb.ws.join("src/new.txt"));
    assert_eq!(
        got.as_deref(),
        Some(&b"hello\n"[..]),
        "a file written in the workspace must persist on the host\n{}",
        out.show()
    );
    let meta = fs::metadata(sb.ws.join("src/new.txt")).expect("stat new file");
    assert_eq!(
        meta.uid(),
        sb.user.uid,
        "files created in the workspace must belong to the user on the host"
    );
}

#[test]
fn workspace_flag_sets_root_and_cwd() {
    let sb = Sandbox::new("ws-flag");
    let proj = sb.ws.join("proj");
    fs::create_dir_all(&proj).expect("mkdir proj");
    chown_tree(&sb.root);
    let p = proj.display().to_string();
    let out = sb.sh_opts(&["-w", &p], "pwd; echo x > made-here");
    assert_eq!(out.code, 0, "-w DIR must work\n{}", out.show());
    assert_eq!(
        out.stdout.trim(),
        p,
        "CMD must start in the -w directory\n{}",
        out.show()
    );
    assert!(
        proj.join("made-here").exists(),
        "write in -w dir must persist\n{}",
        out.show()
    );
}

#[test]
fn home_cache_write_is_private() {
    let sb = Sandbox::new("cache-private");
    let before = sb.home_snapshot();
    let out =
        sb.sh("mkdir -p ~/.cache/tool && echo cached > ~/.cache/tool/x && cat ~/.cache/tool/x");
    assert_eq!(
        out.code,
        0,
        "writing in ~/.cache must succeed inside\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("cached"),
        "the write must be visible inside the sandbox\n{}",
        out.show()
    );
    assert_absent(&sb.home.join(".cache/tool/x"), &out);
    assert_unchanged("~/.cache write", &before, &sb.home_snapshot(), &out);
}

#[test]
fn home_existing_file_modified_privately() {
    // The private layer sits over the host's home (copy-up): existing host files stay
    // visible and can be changed inside, but the change never reaches the host.
    let sb = Sandbox::new("cache-copyup");
    let before = sb.home_snapshot();
    let out = sb.sh("echo more >> ~/.cache/existing/keep.txt && cat ~/.cache/existing/keep.txt");
    assert_eq!(
        out.code,
        0,
        "appending to an existing file under ~/.cache must work inside\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("host cache file\nmore"),
        "inside, the host file's content plus the append must be visible\n{}",
        out.show()
    );
    assert_unchanged("existing ~/.cache file", &before, &sb.home_snapshot(), &out);
}

#[test]
fn system_dirs_not_writable() {
    let sb = Sandbox::new("sysdirs");
    let tag = unique();
    for dir in ["/etc", "/usr", "/usr/local/bin", "/var/lib", "/opt"] {
        let target = format!("{dir}/cordon-it-{tag}");
        let out = sb.sh(&format!("echo x > {target}"));
        assert_ne!(out.code, 0, "writing {target} must fail\n{}", out.show());
        let e = out.stderr.to_lowercase();
        assert!(
            e.contains("read-only file system") || e.contains("permission denied"),
            "writing {target} must fail with EROFS or EACCES\n{}",
            out.show()
        );
        assert_absent(Path::new(&target), &out);
    }
}

#[test]
fn system_dirs_readable_twin() {
    let sb = Sandbox::new("sysread");
    let out = sb.sh("head -1 /etc/passwd && ls /usr/bin >/dev/null && echo OK");
    assert_eq!(out.code, 0, "the host FS must be readable\n{}", out.show());
    assert!(
        out.stdout.contains("root:") && out.stdout.contains("OK"),
        "{}",
        out.show()
    );
}

#[test]
fn write_outside_workspace_does_not_reach_host() {
    let sb = Sandbox::new("outside");
    let before_home = sb.home_snapshot();
    let before_root = host_snapshot(&sb.root);
    let script = "echo x > ~/other; mkdir -p ~/newdir && echo y > ~/newdir/f; \
                  echo z > ~/../outside-home; echo w > \"$PWD/../../sibling\"; true";
    let out = sb.sh(script);
    assert_absent(&sb.home.join("other"), &out);
    assert_absent(&sb.home.join("newdir"), &out);
    assert_absent(&sb.root.join("outside-home"), &out);
    assert_absent(&sb.root.join("sibling"), &out);
    assert_unchanged("home", &before_home, &sb.home_snapshot(), &out);
    // The per-test root is owned by the user and writable on the host: a real escape target.
    let after_root: Snapshot = host_snapshot(&sb.root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&sb.home))
        .collect();
    let before_root: Snapshot = before_root
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&sb.home))
        .collect();
    assert_unchanged("parent of home", &before_root, &after_root, &out);
}

#[test]
fn tmp_is_private() {
    let sb = Sandbox::new("tmp");
    let tag = unique();
    let host_file = format!("/tmp/cordon-it-host-{tag}");
    fs::write(&host_file, "host tmp content\n").expect("write host tmp file");
    let _ = fs::set_permissions(
        &host_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    );
    let script = format!(
        "if cat {host_file} 2>/dev/null; then echo SAW-HOST; fi; \
         echo in > /tmp/cordon-it-in-{tag} && cat /tmp/cordon-it-in-{tag} && \
         echo v > /var/tmp/cordon-it-in-{tag} && echo s > /dev/shm/cordon-it-in-{tag} && echo WROTE"
    );
    let out = sb.sh(&script);
    let _ = fs::remove_file(&host_file);
    assert!(
        !out.stdout.contains("SAW-HOST") && !out.stdout.contains("host tmp content"),
        "a host file in /tmp must be invisible inside\n{}",
        out.show()
    );
    assert_eq!(
        out.code,
        0,
        "/tmp, /var/tmp, /dev/shm must be writable inside\n{}",
        out.show()
    );
    assert!(out.stdout.contains("WROTE"), "{}", out.show());
    for dir in ["/tmp", "/var/tmp", "/dev/shm"] {
        assert_absent(Path::new(&format!("{dir}/cordon-it-in-{tag}")), &out);
    }
}

#[test]
fn nothing_accumulates_across_runs() {
    let sb = Sandbox::new("accumulate");
    let tag = unique();
    let first = sb.sh(&format!(
        "mkdir -p ~/.cache && echo 1 > ~/.cache/acc-{tag} && echo 1 > /tmp/acc-{tag}"
    ));
    assert_eq!(
        first.code,
        0,
        "first run must be able to write\n{}",
        first.show()
    );
    let second = sb.sh(&format!("ls -a ~/.cache; test -e ~/.cache/acc-{tag} && echo LEFTOVER-HOME; test -e /tmp/acc-{tag} && echo LEFTOVER-TMP; true"));
    assert_eq!(second.code, 0, "{}", second.show());
    assert!(
        !second.stdout.contains("LEFTOVER"),
        "the second run must not see the first run's private files\n{}",
        second.show()
    );
    assert_absent(&sb.home.join(format!(".cache/acc-{tag}")), &second);
}

#[test]
fn allow_write_persists() {
    let sb = Sandbox::new("allow-write");
    let extra = sb.home.join("extra");
    fs::create_dir_all(&extra).expect("mkdir extra");
    chown_tree(&sb.root);
    let e = extra.display().to_string();
    let without = sb.sh(&format!("echo a > {e}/without; true"));
    assert_absent(&extra.join("without"), &without);
    let with = sb.sh_opts(&["--allow-write", &e], &format!("echo b > {e}/with"));
    assert_eq!(
        with.code,
        0,
        "--allow-write DIR must make DIR writable\n{}",
        with.show()
    );
    assert_eq!(
        read_opt(&extra.join("with")).as_deref(),
        Some(&b"b\n"[..]),
        "a write to an --allow-write dir must persist\n{}",
        with.show()
    );
}

fn assert_refused(out: &Out, what: &str, marker: &Path) {
    assert_eq!(
        out.code,
        125,
        "{what} must be refused with exit 125\n{}",
        out.show()
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: the error must be exactly one line\n{}",
        out.show()
    );
    assert_absent(marker, out);
}

#[test]
fn allow_write_home_or_root_refused() {
    let sb = Sandbox::new("refuse");
    let marker = sb.ws.join("command-ran");
    let touch = format!("touch {}", marker.display());
    let h = sb.home.display().to_string();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "--allow-write $HOME".into(),
            vec!["--allow-write".into(), h.clone()],
        ),
        (
            "--allow-write ~".into(),
            vec!["--allow-write".into(), "~".into()],
        ),
        (
            "--allow-write /".into(),
            vec!["--allow-write".into(), "/".into()],
        ),
        (
            "--allow-write parent of $HOME".into(),
            vec!["--allow-write".into(), sb.root.display().to_string()],
        ),
        ("-w /".into(), vec!["-w".into(), "/".into()]),
        ("-w $HOME".into(), vec!["-w".into(), h.clone()]),
    ];
    for (what, opts) in cases {
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        let out = sb.run_opts(&opts, &["bash", "-c", &touch]);
        assert_refused(&out, &what, &marker);
    }
}

#[test]
fn symlink_to_home_file_does_not_write_host() {
    let sb = Sandbox::new("symlink");
    std::os::unix::fs::symlink(sb.home.join(".bashrc"), sb.ws.join("rc-link")).expect("symlink");
    std::os::unix::fs::symlink(sb.home.join("notes/other.txt"), sb.ws.join("note-link"))
        .expect("symlink");
    // Dangling link to a file that does not exist yet outside the workspace.
    std::os::unix::fs::symlink(sb.home.join("planted"), sb.ws.join("dangling")).expect("symlink");
    std::os::unix::fs::symlink(&sb.root, sb.ws.join("up")).expect("symlink");
    chown_tree(&sb.root);
    let before = sb.home_snapshot();
    let before_root = host_snapshot(&sb.root);
    let out = sb.sh(
        "echo evil >> rc-link; echo evil > note-link; echo evil > dangling; \
         echo evil > up/escaped; ln -s ../../ up2 && echo evil > up2/escaped2; true",
    );
    assert_unchanged("home via symlinks", &before, &sb.home_snapshot(), &out);
    assert_absent(&sb.home.join("planted"), &out);
    assert_absent(&sb.root.join("escaped"), &out);
    assert_absent(&sb.root.join("escaped2"), &out);
    let after_root = host_snapshot(&sb.root);
    for (p, e) in &before_root {
        if !p.starts_with(&sb.ws) {
            assert_eq!(
                after_root.get(p),
                Some(e),
                "{} changed on the host\n{}",
                p.display(),
                out.show()
            );
        }
    }
}

#[test]
fn symlink_inside_workspace_twin() {
    let sb = Sandbox::new("symlink-twin");
    let out = sb.sh("echo a > target && ln -s target link && echo b >> link && cat target");
    assert_eq!(
        out.code,
        0,
        "symlinks within the workspace must work\n{}",
        out.show()
    );
    assert_eq!(
        read_opt(&sb.ws.join("target")).as_deref(),
        Some(&b"a\nb\n"[..]),
        "{}",
        out.show()
    );
    assert!(exists_nofollow(&sb.ws.join("link")), "{}", out.show());
}

#[test]
fn hardlink_to_outside_file_fails() {
    let sb = Sandbox::new("hardlink");
    let before = sb.home_snapshot();
    let out = sb.sh("ln ~/notes/other.txt hl && echo LINKED && echo evil >> hl; ln ~/.bashrc hl2 && echo evil >> hl2; exit 0");
    assert!(
        !out.stdout.contains("LINKED"),
        "hard-linking a file outside the workspace into it must fail (EXDEV/EPERM)\n{}",
        out.show()
    );
    assert_absent(&sb.ws.join("hl"), &out);
    assert_absent(&sb.ws.join("hl2"), &out);
    assert_unchanged("home via hard links", &before, &sb.home_snapshot(), &out);
}

#[test]
fn hardlink_inside_workspace_twin() {
    let sb = Sandbox::new("hardlink-twin");
    let out = sb.sh("echo a > f && ln f g && echo b >> g");
    assert_eq!(
        out.code,
        0,
        "hard links within the workspace must work\n{}",
        out.show()
    );
    let a = fs::metadata(sb.ws.join("f")).expect("stat f");
    let b = fs::metadata(sb.ws.join("g")).expect("stat g");
    assert_eq!(
        a.ino(),
        b.ino(),
        "f and g must be the same inode on the host"
    );
}

#[test]
fn proc_self_root_write_fails() {
    let sb = Sandbox::new("proc-root");
    let before = sb.home_snapshot();
    let before_root = host_snapshot(&sb.root);
    let tag = unique();
    let script = format!(
        "echo evil >> /proc/self/root{h}/.bashrc; echo evil > /proc/self/root{r}/proc-escape; \
         echo evil > /proc/self/root/etc/cordon-it-{tag}; \
         exec 7<{h}/notes; echo evil > /proc/self/fd/7/other.txt; echo evil > /proc/self/fd/7/new; true",
        h = sb.home.display(),
        r = sb.root.display()
    );
    let out = sb.sh(&script);
    assert_unchanged("home via /proc/self", &before, &sb.home_snapshot(), &out);
    assert_absent(&sb.root.join("proc-escape"), &out);
    assert_absent(Path::new(&format!("/etc/cordon-it-{tag}")), &out);
    let after_root = host_snapshot(&sb.root);
    // cordon's own state (run logs under ~/.local/state/cordon) is not the sandbox's doing.
    let own = |p: &&std::path::PathBuf| {
        let h = &sb.home;
        p.starts_with(h.join(".local/state/cordon"))
            || p.starts_with(h.join(".cache/cordon"))
            || [".local", ".local/state", ".cache"]
                .iter()
                .any(|d| **p == h.join(d))
    };
    assert_eq!(
        before_root
            .keys()
            .filter(|p| !p.starts_with(&sb.ws) && !own(p))
            .count(),
        after_root
            .keys()
            .filter(|p| !p.starts_with(&sb.ws) && !own(p))
            .count(),
        "files appeared outside the workspace on the host\n{}",
        out.show()
    );
}

#[test]
fn proc_self_root_workspace_twin() {
    let sb = Sandbox::new("proc-root-twin");
    let script = format!("echo ok > /proc/self/root{}/via-proc", sb.ws.display());
    let out = sb.sh(&script);
    assert_eq!(
        out.code,
        0,
        "/proc/self/root/<workspace> must stay writable\n{}",
        out.show()
    );
    assert!(sb.ws.join("via-proc").exists(), "{}", out.show());
}

#[test]
fn inherited_fd_not_passed_in() {
    let sb = Sandbox::new("inherited-fd");
    let target = sb.home.join("notes/other.txt");
    let before = read_opt(&target);
    let file = fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(&target)
        .expect("open note");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let out = assert_ran(sb.run_with(
        move |cmd| {
            // SAFETY: dup2 is async-signal-safe; fd stays open in the parent until spawn returns.
            unsafe {
                cmd.pre_exec(move || {
                    if fd == 5 {
                        // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                        if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(fd, 5) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
        &[],
        &[
            "bash",
            "-c",
            "echo CORDON-IT-RAN; ls -l /proc/self/fd; echo evil >&5 && echo WROTE-FD5; true",
        ],
    ));
    drop(file);
    assert!(
        !out.stdout.contains("WROTE-FD5"),
        "fd 5 inherited by cordon must not reach the command\n{}",
        out.show()
    );
    assert_eq!(
        read_opt(&target),
        before,
        "host file behind fd 5 changed\n{}",
        out.show()
    );
}

#[test]
fn private_layer_is_size_limited_twin() {
    // Filling /tmp (one limit for the whole private layer) stops at the limit with ENOSPC,
    // quickly, and leaves nothing behind; a write below the limit works.
    let sb = Sandbox::new("layer-limit");
    let pol = sb.root.join("small-layer.toml");
    sb.write_host(&pol, "[limits]\nlayer_mb = 64\n");
    let out = sb.sh_opts(
        &["-p", &pol.display().to_string()],
        "head -c 8M /dev/zero > /tmp/ok && echo SMALL-OK; \
         err=$(head -c 200M /dev/zero 2>&1 >/tmp/big); echo BIG-RC=$?; echo \"$err\" | grep -o 'No space left' | head -1; \
         du -sm /tmp/big | cut -f1",
    );
    assert!(
        out.stdout.contains("SMALL-OK"),
        "a write below the limit must work\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("No space left") && !out.stdout.contains("BIG-RC=0"),
        "a write past the private layer's limit must fail with ENOSPC\n{}",
        out.show()
    );
    let mb: u64 = out
        .stdout
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(999);
    assert!(
        mb <= 64,
        "the layer held {mb} MiB, more than its 64 MiB limit\n{}",
        out.show()
    );
}

/// The guard creates files on the caller's behalf with the caller's umask, which it remembers
/// between calls: every way a umask changes (the shell's builtin before a command, another
/// thread sharing it, a child's own) must show in the modes on the host.
#[test]
fn created_modes_follow_every_umask_change_twin() {
    let sb = Sandbox::new("umask-modes");
    let py = r#"
import os, threading
def mk(name, mode=0o666):
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_EXCL, mode))
os.umask(0o022); mk("py-022")
t = threading.Thread(target=lambda: os.umask(0o077)); t.start(); t.join()
mk("py-thread-077"); os.mkdir("py-dir-077")
pid = os.fork()
if pid == 0:
    os.umask(0o002); mk("py-child-002"); os._exit(0)
os.waitpid(pid, 0)
mk("py-parent-still-077")
"#;
    // A thread with a umask of its own execs, and so takes over its group leader's pid: the
    // leader's umask, read a moment before, must not be taken for its.
    let takeover = r#"
import os, threading, ctypes
libc = ctypes.CDLL(None, use_errno=True)
os.umask(0o022); open("lead-022", "w").close()
go = threading.Event(); done = threading.Event()
def t():
    libc.unshare(0x200)
    os.umask(0o077); open("thread-077", "w").close()
    done.set(); go.wait()
    os.execv("/usr/bin/touch", ["touch", "exec-077"])
threading.Thread(target=t).start()
done.wait(); open("lead-again-022", "w").close(); go.set()
threading.Event().wait(30)
"#;
    let out = sb.sh(&format!(
        "set -e; umask 022; touch sh-022; mkdir sh-dir-022
         umask 027; touch sh-027; mkdir sh-dir-027
         (umask 077; touch sub-077); touch sh-027-again
         umask 0; touch sh-000
         umask 022; python3 -c '{py}'
         python3 -c '{takeover}'
         mkdir -p keep/a && chmod 751 keep/a && touch -d @1000000000 keep/a/f && chmod 604 keep/a/f
         tar cf keep.tar keep && mkdir x && tar xpf keep.tar -C x && cp -rp keep cp-copy
         echo MODES-OK"
    ));
    assert!(out.stdout.contains("MODES-OK"), "{}", out.show());
    let want: &[(&str, u32)] = &[
        ("sh-022", 0o644),
        ("sh-dir-022", 0o755),
        ("sh-027", 0o640),
        ("sh-dir-027", 0o750),
        ("sub-077", 0o600),
        ("sh-027-again", 0o640),
        ("sh-000", 0o666),
        ("py-022", 0o644),
        ("py-thread-077", 0o600),
        ("py-dir-077", 0o700),
        ("py-child-002", 0o664),
        ("py-parent-still-077", 0o600),
        ("lead-022", 0o644),
        ("thread-077", 0o600),
        ("lead-again-022", 0o644),
        ("exec-077", 0o600),
        ("x/keep/a", 0o751),
        ("x/keep/a/f", 0o604),
        ("cp-copy/a", 0o751),
        ("cp-copy/a/f", 0o604),
    ];
    for (name, mode) in want {
        let m = fs::symlink_metadata(sb.ws.join(name))
            .unwrap_or_else(|e| panic!("{name} on the host: {e}\n{}", out.show()));
        assert_eq!(m.mode() & 0o7777, *mode, "{name}\n{}", out.show());
    }
    for name in ["x/keep/a/f", "cp-copy/a/f"] {
        let m = fs::metadata(sb.ws.join(name)).expect("copied file");
        assert_eq!(
            m.mtime(),
            1_000_000_000,
            "{name} kept its time\n{}",
            out.show()
        );
    }
}
