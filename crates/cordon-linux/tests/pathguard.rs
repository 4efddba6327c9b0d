//! Path guard against the real kernel.
//!
//! Each scenario re-executes this test binary as a child (`zz_child_entry` with
//! `PATHGUARD_CHILD=<scenario>`). The child sets no_new_privs, installs the filter, passes the
//! listener's number to the parent (which takes it with pidfd_getfd), waits for "go", performs
//! syscalls and prints `PG:<name>=<result>` lines. The parent serves the listener with test
//! rules, then checks the child's results and, above all, the disk.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cordon_linux::pathguard::{self, Event, GuardConfig, Op, Rules, Verdict};

const CHILD_ENV: &str = "PATHGUARD_CHILD";
const SOCK_ENV: &str = "PATHGUARD_SOCK";
const DIR_ENV: &str = "PATHGUARD_DIR";
const OUTSIDE_ENV: &str = "PATHGUARD_OUTSIDE";

// ---------------------------------------------------------------------------------------------
// Rules used by the tests: `**/.git/hooks` (and beneath) and `<ws>/.envrc`.

struct TestRules {
    ws: PathBuf,
}

impl Rules for TestRules {
    fn check(&self, _op: Op, path: &Path) -> Verdict {
        let comps: Vec<_> = path.components().collect();
        let hooks = comps
            .windows(2)
            .any(|w| w[0].as_os_str() == ".git" && w[1].as_os_str() == "hooks");
        if hooks {
            return Verdict::Deny {
                errno: libc::EPERM,
                rule: "**/.git/hooks/**".into(),
            };
        }
        if path == self.ws.join(".envrc") {
            return Verdict::Deny {
                errno: libc::EPERM,
                rule: "<ws>/.envrc".into(),
            };
        }
        Verdict::Allow
    }
}

// ---------------------------------------------------------------------------------------------
// Parent side.

struct Outcome {
    results: BTreeMap<String, String>,
    events: Vec<Event>,
    status: std::process::ExitStatus,
    raw: String,
}

impl Outcome {
    fn get(&self, key: &str) -> &str {
        match self.results.get(key) {
            Some(v) => v,
            None => panic!("child did not report {key}; output:\n{}", self.raw),
        }
    }

    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.get(key), want, "{key}; output:\n{}", self.raw);
    }
}

struct Setup {
    scenario: &'static str,
    /// Sandbox-visible workspace (also the child's cwd unless the scenario changes it).
    dir: PathBuf,
    /// The workspace as the rules see it.
    ws_in_sandbox: PathBuf,
    writable: Vec<PathBuf>,
    protected_inodes: HashSet<(u64, u64)>,
    outside: Option<PathBuf>,
    /// Called with the child's pid once it is connected and namespaced (before "go").
    on_ready: Option<Box<dyn FnOnce(i32)>>,
}

/// The listener fd and the pid of the process that installed the filter: the child sends its
/// pid and the listener's number (sendmsg would go to the guard that does not exist yet), and
/// the parent takes the listener with pidfd_getfd.
fn recv_fd(mut sock: &UnixStream) -> (OwnedFd, i32) {
    let mut msg = [0u8; 8];
    sock.read_exact(&mut msg)
        .expect("read pid and listener number");
    let pid = i32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let n = i32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).expect("child pid"),
        rustix::process::PidfdFlags::empty(),
    )
    .expect("pidfd_open");
    (
        pathguard::take_listener(&pidfd, n).expect("pidfd_getfd"),
        pid,
    )
}

fn accept_with_timeout(l: &UnixListener, child: &mut std::process::Child) -> UnixStream {
    l.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(st)) = child.try_wait() {
                    let mut out = String::new();
                    if let Some(o) = child.stdout.as_mut() {
                        let _ = o.read_to_string(&mut out);
                    }
                    panic!("child exited before connecting: {st}; output:\n{out}");
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "child never connected"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn run(setup: Setup) -> Outcome {
    let sockdir = tempfile::tempdir().expect("tempdir");
    let sock_path = sockdir.path().join("s");
    let listener = UnixListener::bind(&sock_path).expect("bind");
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "zz_child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, setup.scenario)
    .env(SOCK_ENV, &sock_path)
    .env(DIR_ENV, &setup.dir)
    .current_dir(&setup.dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(o) = &setup.outside {
        cmd.env(OUTSIDE_ENV, o);
    }
    let mut child = cmd.spawn().expect("spawn child");
    let mut sock = accept_with_timeout(&listener, &mut child);
    let (fd, pid) = recv_fd(&sock);
    if let Some(f) = setup.on_ready {
        f(pid);
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let cfg = GuardConfig {
        rules: Arc::new(TestRules {
            ws: setup.ws_in_sandbox.clone(),
        }),
        writable_roots: setup.writable,
        protected_inodes: setup.protected_inodes,
        on_event: Box::new(move |e| {
            if let Ok(mut v) = sink.lock() {
                v.push(e);
            }
        }),
        net: None,
        asker: None,
        own_sockets: Default::default(),
        kvm: false,
    };
    let handle = pathguard::serve(fd, pid, cfg).expect("serve");
    sock.write_all(b"g").expect("go");
    let mut raw = String::new();
    if let Some(o) = child.stdout.as_mut() {
        o.read_to_string(&mut raw).expect("read child output");
    }
    let status = child.wait().expect("wait child");
    // The receiver thread must notice that no process is left and finish.
    let start = Instant::now();
    while !handle.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "serve did not finish after child exit"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.join().expect("serve thread");
    let results = raw
        .lines()
        .filter_map(|l| l.find("PG:").map(|i| &l[i + 3..]))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let events = events.lock().map(|v| v.clone()).unwrap_or_default();
    Outcome {
        results,
        events,
        status,
        raw,
    }
}

fn workspace() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path();
    std::fs::create_dir_all(p.join(".git")).expect("mk .git");
    std::fs::create_dir_all(p.join("sub/.git/hooks")).expect("mk sub hooks");
    std::fs::create_dir_all(p.join("emptydir")).expect("mk emptydir");
    std::fs::write(p.join("plain2.txt"), b"2").expect("plain2");
    std::fs::write(p.join("plain3.txt"), b"3").expect("plain3");
    std::fs::write(p.join("guarded.txt"), b"g").expect("guarded");
    d
}

fn plain_setup(scenario: &'static str, dir: &Path) -> Setup {
    Setup {
        scenario,
        dir: dir.to_path_buf(),
        ws_in_sandbox: dir.to_path_buf(),
        writable: vec![dir.to_path_buf(), PathBuf::from("/dev")],
        protected_inodes: HashSet::new(),
        outside: None,
        on_ready: None,
    }
}

const EPERM: &str = "E1";
const EACCES: &str = "E13";

#[test]
fn protected_names_cannot_be_created_and_twins_work() {
    let ws = workspace();
    let w = ws.path();
    let outside = tempfile::tempdir().expect("outside");
    let g = std::fs::metadata(w.join("guarded.txt")).expect("meta");
    let mut setup = plain_setup("basic", w);
    setup.protected_inodes.insert((g.dev(), g.ino()));
    setup.outside = Some(outside.path().to_path_buf());
    let out = run(setup);
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        out.status,
        out.raw
    );

    // Protected: refused, and nothing on disk.
    for (k, want) in [
        ("create_hook", EPERM),
        ("creat_envrc", EPERM),
        ("mkdir_hooks", EPERM),
        ("symlink_hook", EPERM),
        ("link_envrc", EPERM),
        ("rename_onto_envrc", EPERM),
        ("mknod_hook", EPERM),
        ("dotdot_envrc", EPERM),
        ("dotdot_hooks", EPERM),
        ("follow_rel_link", EPERM),
        ("follow_abs_link", EPERM),
        ("openat_dirfd_hook", EPERM),
        ("rename_dir_with_hooks", EPERM),
        ("tmpfile_link_envrc", EPERM),
        ("link_protected_inode", EPERM),
        ("outside_roots", EACCES),
        ("unlink_hooks_dir", EPERM),
    ] {
        out.expect(k, want);
    }
    for p in [
        "sub/.git/hooks/pre-commit",
        ".envrc",
        ".git/hooks",
        "sub/.git/hooks/post-checkout",
        "sub/.git/hooks/fifo",
        "sub/.git/hooks/pre-push",
        "sub/.git/hooks/x",
        "alias.txt",
    ] {
        assert!(
            std::fs::symlink_metadata(w.join(p)).is_err(),
            "{p} exists on disk"
        );
    }
    assert!(w.join("sub/.git/hooks").is_dir(), "hooks dir was removed");
    assert!(w.join("sub").is_dir(), "sub was renamed");
    assert!(!outside.path().join("escape.txt").exists());

    // Twins: succeed and really exist with the right modes (child umask 027).
    for k in [
        "create_plain",
        "mkdir_new",
        "symlink_plain",
        "link_plain",
        "rename_plain",
        "mknod_fifo",
        "unlink_hard",
        "rmdir_empty",
        "openat_dirfd_plain",
        "tmpfile_link_plain",
        "rename_dir_plain",
        "dev_null",
        "via_proc_self_fd",
        "via_dev_stdout",
        "write_plain",
    ] {
        out.expect(k, "ok");
    }
    let mode = |p: &str| {
        std::fs::symlink_metadata(w.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("plain.txt"), 0o640);
    assert_eq!(mode("newdir"), 0o750);
    assert_eq!(mode("fifo1"), 0o640);
    assert_eq!(
        std::fs::read(w.join("plain.txt")).expect("read plain"),
        b"hello"
    );
    assert_eq!(
        std::fs::read_link(w.join("lnk")).expect("lnk"),
        PathBuf::from("plain.txt")
    );
    assert!(!w.join("hard.txt").exists(), "hard.txt should be unlinked");
    assert!(w.join("renamed.txt").exists() && !w.join("plain2.txt").exists());
    assert!(!w.join("emptydir").exists());
    assert!(w.join("sub2/.git").is_dir() && w.join("sub2/inner").is_dir());
    assert!(w.join("sub/ok.txt").exists());
    assert_eq!(std::fs::read(w.join("tmpf.txt")).expect("tmpf"), b"tmp");
    assert_eq!(
        std::fs::metadata(w.join("plain3.txt")).expect("p3").ino(),
        std::fs::metadata(w.join("hard3.txt")).expect("h3").ino()
    );

    // Flags and special cases.
    out.expect("cloexec_set", "1");
    out.expect("cloexec_unset", "0");
    out.expect("excl_existing", "E17");
    out.expect("creat_on_dir", "E21");
    assert!(out.raw.contains("PG:stdout_line=through proc self fd"));
    assert!(out.raw.contains("PG:stdout_line=through dev stdout"));
    let tty = out.get("dev_tty");
    assert!(tty == "E6" || tty == "ok", "dev_tty: {tty}");
    if own_tty_nr() == 0 {
        assert_eq!(tty, "E6", "no controlling tty must give ENXIO");
    }

    // The audit sink saw the denials with their rules.
    let denied: Vec<_> = out.events.iter().filter(|e| !e.allowed).collect();
    assert!(denied.iter().any(|e| e.op == Op::Create
        && e.path == w.join(".envrc")
        && e.rule.as_deref() == Some("<ws>/.envrc")));
    assert!(denied
        .iter()
        .any(|e| e.op == Op::Mkdir && e.path == w.join(".git/hooks")));
    assert!(denied.iter().any(|e| e.op == Op::LinkFrom
        && e.rule
            .as_deref()
            .is_some_and(|r| r.starts_with("protected inode"))));
    assert!(denied
        .iter()
        .any(|e| e.op == Op::RenameFrom && e.path == w.join("sub/.git/hooks")));
}

/// A host-unique file name stem for the pivot scenario, from the temp root's name.
fn escape_tag(root: &Path) -> String {
    let leaf = root.file_name().map(|n| n.to_string_lossy().into_owned());
    format!("pg-escape{}", leaf.unwrap_or_default())
}

fn own_tty_nr() -> i64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    s.rfind(')')
        .and_then(|i| s[i + 1..].split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn fifo_open_does_not_block_other_calls() {
    let ws = workspace();
    let out = run(plain_setup("fifo", ws.path()));
    println!("events: {:?}", out.events);
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        out.status,
        out.raw
    );
    out.expect("mkfifo", "ok");
    out.expect("other_create", "ok");
    out.expect("other_fast", "1");
    out.expect("fifo_writer", "ok");
    out.expect("fifo_read", "hi");
}

#[test]
fn toctou_path_flipping_never_creates_protected_file() {
    let ws = workspace();
    let out = run(plain_setup("toctou", ws.path()));
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        out.status,
        out.raw
    );
    assert!(!ws.path().join(".envrc").exists(), ".envrc was created");
    assert_eq!(out.get("breach"), "0", "{}", out.raw);
    let created: u64 = out.get("created").parse().expect("created");
    let denied: u64 = out.get("denied").parse().expect("denied");
    println!("toctou: {created} safe creations, {denied} denials in ~2 s");
    assert!(
        created > 0 && denied > 0,
        "the race was not exercised: {}",
        out.raw
    );
}

/// A child in its own user+mount namespace that pivot_root'ed: `..` and absolute symlinks
/// stay inside its root, and readlink(/proc/<pid>/cwd) names the path inside that namespace.
#[test]
fn pivoted_child_cannot_climb_out_of_its_root() {
    let root = tempfile::tempdir().expect("root");
    let r = root.path();
    for d in ["work", "tmp", "oldroot"] {
        std::fs::create_dir_all(r.join(d)).expect("mk");
    }
    let tag = escape_tag(r);
    let seen_cwd = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&seen_cwd);
    let setup = Setup {
        scenario: "pivot",
        dir: r.to_path_buf(),
        ws_in_sandbox: PathBuf::from("/work"),
        writable: vec![PathBuf::from("/")],
        protected_inodes: HashSet::new(),
        outside: None,
        on_ready: Some(Box::new(move |pid| {
            let l = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            if let Ok(mut s) = seen.lock() {
                *s = l;
            }
        })),
    };
    let out = run(setup);
    if out.get("unshare") != "ok" {
        let why = format!(
            "cannot unshare user+mount namespaces here ({})",
            out.get("unshare")
        );
        println!("SKIPPED pivot test: {why}");
        test_summary::record("SKIP", "pathguard pivot test", &why);
        return;
    }
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        out.status,
        out.raw
    );
    let cwd = seen_cwd.lock().map(|s| s.clone()).unwrap_or(None);
    println!("readlink(/proc/<pivoted child>/cwd) = {cwd:?}");
    assert_eq!(
        cwd,
        Some(PathBuf::from("/work")),
        "d_path is namespace-relative"
    );
    for k in [
        "dotdot",
        "rel_link",
        "abs_link",
        "relative",
        "envrc_protected",
    ] {
        out.expect(k, if k == "envrc_protected" { EPERM } else { "ok" });
    }
    // Everything landed inside the pivoted root, nothing on the host.
    assert!(r.join(format!("{tag}-dotdot")).exists());
    assert!(r.join(format!("tmp/{tag}-rel")).exists());
    assert!(r.join(format!("tmp/{tag}-abs")).exists());
    assert!(r.join(format!("work/{tag}-relative")).exists());
    assert!(!r.join("work/.envrc").exists());
    for host in [
        PathBuf::from(format!("/{tag}-dotdot")),
        PathBuf::from(format!("/tmp/{tag}-rel")),
        PathBuf::from(format!("/tmp/{tag}-abs")),
    ] {
        assert!(!host.exists(), "{} escaped to the host", host.display());
    }
}

/// Cost per O_CREAT open through the guard vs without (no timing assertions).
/// Run with `cargo test -p cordon-linux --test pathguard -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_ocreat_cost() {
    // tmpfs, so the number measures the guard rather than the disk's journal.
    let ws = tempfile::tempdir_in("/dev/shm").expect("tmpfs dir");
    std::fs::create_dir_all(ws.path().join("bare")).expect("bare");
    std::fs::create_dir_all(ws.path().join("guarded/a/b/c")).expect("guarded");
    let out = run(plain_setup("bench", ws.path()));
    assert!(out.status.success(), "{}", out.raw);
    let bare: f64 = out.get("bare_us").parse().expect("bare");
    let guarded: f64 = out.get("guarded_us").parse().expect("guarded");
    let deep: f64 = out.get("guarded_deep_us").parse().expect("deep");
    println!(
        "O_CREAT open+close: bare {bare:.2} us, guarded {guarded:.2} us (ratio {:.1}x), \
         guarded 4-deep relative path {deep:.2} us (ratio {:.1}x)",
        guarded / bare,
        deep / bare
    );
}

// ---------------------------------------------------------------------------------------------
// Child side.

/// Harness entry for the re-executed child; does nothing in a normal test run.
#[test]
fn zz_child_entry() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    let code = child_main(&scenario);
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process; after a fork (pivot scenario) this is the safe way out.
    unsafe { libc::_exit(code) };
}

fn report(key: &str, val: impl std::fmt::Display) {
    println!("PG:{key}={val}");
}

fn res<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("E{}", e.raw_os_error().unwrap_or(-1)),
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in test path")
}

/// Returns the raw syscall result as io::Result.
fn sys(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_raw(path: &str, flags: i32, mode: u32) -> std::io::Result<OwnedFd> {
    let p = cstr(path);
    // SAFETY: valid NUL-terminated path; the fd returned is ours.
    let fd = sys(unsafe { libc::open(p.as_ptr(), flags, mode) })?;
    // SAFETY: fresh fd from open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn child_setup(scenario: &str) -> std::io::Result<UnixStream> {
    let sock = UnixStream::connect(std::env::var(SOCK_ENV).map_err(std::io::Error::other)?)?;
    if scenario == "pivot" {
        // unshare(CLONE_NEWUSER) needs a single-threaded process; libtest is not one, so a
        // forked copy of this thread carries on and this process just relays its status.
        // SAFETY: fork; the child only continues this thread's code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid > 0 {
            let mut st = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            let code = if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                99
            };
            // SAFETY: leave without running the test harness's teardown twice.
            unsafe { libc::_exit(code) };
        }
        let r = enter_pivoted_root();
        if let Err(e) = &r {
            eprintln!("pivot setup: {e}");
        }
        report("unshare", res(r));
        // On failure we still hand over a listener so the parent's serve() can end normally.
    }
    if scenario == "bench" {
        // Baseline before the filter exists: same directory depth as the flat guarded run.
        let _ = BARE_US.set(time_creates("bare"));
    }
    // SAFETY: prctl with constant arguments.
    sys(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    let listener = pathguard::install()?;
    let mut me = std::process::id().to_le_bytes().to_vec();
    me.extend_from_slice(&listener.as_raw_fd().to_le_bytes());
    (&sock).write_all(&me)?;
    let mut go = [0u8; 1];
    (&sock).read_exact(&mut go)?;
    // The sandbox must not keep its own listener.
    drop(listener);
    Ok(sock)
}

fn child_main(scenario: &str) -> i32 {
    let _sock = match child_setup(scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("child setup failed: {e}");
            return 2;
        }
    };
    match scenario {
        "basic" => child_basic(),
        "fifo" => child_fifo(),
        "toctou" => child_toctou(),
        "pivot" => child_pivot(),
        "bench" => child_bench(),
        _ => return 3,
    }
    0
}

/// `uid`/`gid` are the ids from before unshare (afterwards they read as the overflow id).
fn write_uid_map(uid: u32, gid: u32) -> std::io::Result<()> {
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

fn enter_pivoted_root() -> std::io::Result<()> {
    let dir = std::env::var(DIR_ENV).map_err(std::io::Error::other)?;
    // SAFETY: unshare with constant flags; this child is about to run single-threaded code only.
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let step = |what: &'static str| {
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    sys(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) })
        .map_err(step("unshare"))?;
    write_uid_map(uid, gid).map_err(step("uid_map"))?;
    let none = cstr("none");
    let slash = cstr("/");
    let d = cstr(&dir);
    // SAFETY: mount/pivot_root/umount2 with valid NUL-terminated strings.
    unsafe {
        sys(libc::mount(
            none.as_ptr(),
            slash.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        sys(libc::mount(
            d.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ))?;
    }
    std::env::set_current_dir(&dir)?;
    let dot = cstr(".");
    let old = cstr("oldroot");
    // SAFETY: see above.
    unsafe {
        sys(libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), old.as_ptr()) as libc::c_int)?;
    }
    let oldroot = cstr("/oldroot");
    // SAFETY: see above.
    unsafe {
        sys(libc::umount2(oldroot.as_ptr(), libc::MNT_DETACH))?;
    }
    std::env::set_current_dir("/work")?;
    Ok(())
}

fn child_basic() {
    use std::os::unix::fs::symlink;
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0o027) };
    let ws = std::env::var(DIR_ENV).unwrap_or_default();
    let cr = |p: &str| open_raw(p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o666);

    // Protected.
    report(
        "create_hook",
        res(std::fs::File::create("sub/.git/hooks/pre-commit")),
    );
    let envrc = cstr(".envrc");
    // SAFETY: valid path.
    let r = sys(unsafe { libc::creat(envrc.as_ptr(), 0o644) });
    report("creat_envrc", res(r));
    report("mkdir_hooks", res(std::fs::create_dir(".git/hooks")));
    report(
        "symlink_hook",
        res(symlink("x", "sub/.git/hooks/post-checkout")),
    );
    let fifo = cstr("sub/.git/hooks/fifo");
    // SAFETY: valid path.
    let r = sys(unsafe { libc::mknod(fifo.as_ptr(), libc::S_IFIFO | 0o644, 0) });
    report("mknod_hook", res(r));
    report("dotdot_envrc", res(cr("sub/../.envrc")));
    report("dotdot_hooks", res(cr("sub/.git/../.git/hooks/x")));

    // Twins.
    match std::fs::File::create("plain.txt") {
        Ok(mut f) => report("write_plain", res(f.write_all(b"hello"))),
        Err(e) => report("write_plain", res::<()>(Err(e))),
    }
    report("create_plain", res(cr("plain.txt").map(drop)));
    // create_plain truncated it: write again.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("plain.txt") {
        let _ = f.write_all(b"hello");
    }
    let nd = cstr("newdir");
    // SAFETY: valid path.
    report(
        "mkdir_new",
        res(sys(unsafe { libc::mkdir(nd.as_ptr(), 0o777) })),
    );
    report("symlink_plain", res(symlink("plain.txt", "lnk")));
    report(
        "link_plain",
        res(std::fs::hard_link("plain.txt", "hard.txt")),
    );
    report("link_envrc", res(std::fs::hard_link("plain.txt", ".envrc")));
    report(
        "rename_plain",
        res(std::fs::rename("plain2.txt", "renamed.txt")),
    );
    report(
        "rename_onto_envrc",
        res(std::fs::rename("renamed.txt", ".envrc")),
    );
    let f1 = cstr("fifo1");
    // SAFETY: valid path.
    let r = sys(unsafe { libc::mknod(f1.as_ptr(), libc::S_IFIFO | 0o666, 0) });
    report("mknod_fifo", res(r));
    report("unlink_hard", res(std::fs::remove_file("hard.txt")));
    report("rmdir_empty", res(std::fs::remove_dir("emptydir")));
    report(
        "unlink_hooks_dir",
        res(std::fs::remove_dir("sub/.git/hooks")),
    );
    report(
        "link_plain3",
        res(std::fs::hard_link("plain3.txt", "hard3.txt")),
    );
    report(
        "link_protected_inode",
        res(std::fs::hard_link("guarded.txt", "alias.txt")),
    );

    // Symlinks in the workspace pointing at protected names.
    let _ = symlink("sub/.git/hooks/pre-push", "evil");
    report("follow_rel_link", res(cr("evil")));
    let _ = symlink(format!("{ws}/.envrc"), "evil2");
    report("follow_abs_link", res(cr("evil2")));

    // dirfd-relative.
    match open_raw("sub", libc::O_RDONLY | libc::O_DIRECTORY, 0) {
        Ok(d) => {
            let hook = cstr(".git/hooks/x");
            let okp = cstr("ok.txt");
            let fl = libc::O_CREAT | libc::O_WRONLY;
            // SAFETY: valid dirfd and paths.
            let r = sys(unsafe { libc::openat(d.as_raw_fd(), hook.as_ptr(), fl, 0o644) });
            report("openat_dirfd_hook", res(r));
            // SAFETY: as above.
            let r = sys(unsafe { libc::openat(d.as_raw_fd(), okp.as_ptr(), fl, 0o644) });
            if let Ok(fd) = r {
                // SAFETY: fd just returned to us.
                unsafe { libc::close(fd) };
            }
            report("openat_dirfd_plain", res(r));
        }
        Err(e) => report("openat_dirfd_hook", res::<()>(Err(e))),
    }

    // Directory renames check every name beneath.
    report("rename_dir_with_hooks", res(std::fs::rename("sub", "subX")));
    let _ = std::fs::create_dir_all("pkg/.git");
    let _ = std::fs::create_dir_all("pkg/inner");
    report("rename_dir_plain", res(std::fs::rename("pkg", "sub2")));

    // O_TMPFILE + linkat through /proc/self/fd.
    match open_raw(".", libc::O_TMPFILE | libc::O_WRONLY, 0o600) {
        Ok(fd) => {
            let mut f = std::fs::File::from(fd);
            let _ = f.write_all(b"tmp");
            let src = cstr(&format!("/proc/self/fd/{}", f.as_raw_fd()));
            let bad = cstr(".envrc");
            let good = cstr("tmpf.txt");
            let flw = libc::AT_SYMLINK_FOLLOW;
            // SAFETY: valid paths.
            let r = sys(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    src.as_ptr(),
                    libc::AT_FDCWD,
                    bad.as_ptr(),
                    flw,
                )
            });
            report("tmpfile_link_envrc", res(r));
            // SAFETY: valid paths.
            let r = sys(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    src.as_ptr(),
                    libc::AT_FDCWD,
                    good.as_ptr(),
                    flw,
                )
            });
            report("tmpfile_link_plain", res(r));
        }
        Err(e) => report("tmpfile_link_plain", res::<()>(Err(e))),
    }

    // Outside the writable roots.
    let outside = std::env::var(OUTSIDE_ENV).unwrap_or_default();
    report("outside_roots", res(cr(&format!("{outside}/escape.txt"))));

    // Flags.
    let fl = libc::O_CREAT | libc::O_WRONLY;
    let cloexec = |fd: &OwnedFd| {
        // SAFETY: F_GETFD on an open fd.
        let f = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        i32::from(f >= 0 && f & libc::FD_CLOEXEC != 0)
    };
    match open_raw("cx", fl | libc::O_CLOEXEC, 0o644) {
        Ok(fd) => report("cloexec_set", cloexec(&fd)),
        Err(e) => report("cloexec_set", res::<()>(Err(e))),
    }
    match open_raw("ncx", fl, 0o644) {
        Ok(fd) => report("cloexec_unset", cloexec(&fd)),
        Err(e) => report("cloexec_unset", res::<()>(Err(e))),
    }
    report(
        "excl_existing",
        res(open_raw("cx", fl | libc::O_EXCL, 0o644)),
    );
    report("creat_on_dir", res(open_raw("newdir", fl, 0o644)));
    report("dev_null", res(cr("/dev/null")));
    report("dev_tty", res(cr("/dev/tty")));

    // `echo x > /dev/stdout`: both spellings.
    let _ = std::io::stdout().flush();
    match cr("/proc/self/fd/1") {
        Ok(fd) => {
            let mut f = std::fs::File::from(fd);
            report(
                "via_proc_self_fd",
                res(f.write_all(b"PG:stdout_line=through proc self fd\n")),
            );
        }
        Err(e) => report("via_proc_self_fd", res::<()>(Err(e))),
    }
    match cr("/dev/stdout") {
        Ok(fd) => {
            let mut f = std::fs::File::from(fd);
            report(
                "via_dev_stdout",
                res(f.write_all(b"PG:stdout_line=through dev stdout\n")),
            );
        }
        Err(e) => report("via_dev_stdout", res::<()>(Err(e))),
    }
}

fn child_fifo() {
    let f = cstr("f");
    // SAFETY: valid path.
    report(
        "mkfifo",
        res(sys(unsafe {
            libc::mknod(f.as_ptr(), libc::S_IFIFO | 0o600, 0)
        })),
    );
    let writer = std::thread::spawn(|| -> std::io::Result<()> {
        // Blocks (in the guard) until a reader opens the FIFO.
        let fd = open_raw("f", libc::O_CREAT | libc::O_WRONLY, 0o600)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(b"hi")
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let other = open_raw("other.txt", libc::O_CREAT | libc::O_WRONLY, 0o600);
    report("other_create", res(other));
    report(
        "other_fast",
        i32::from(t.elapsed() < Duration::from_secs(1)),
    );
    // A reader (not routed: no O_CREAT) lets the writer through.
    let mut got = Vec::new();
    if let Ok(fd) = open_raw("f", libc::O_RDONLY | libc::O_NONBLOCK, 0) {
        let mut file = std::fs::File::from(fd);
        let start = Instant::now();
        while got.len() < 2 && start.elapsed() < Duration::from_secs(10) {
            let mut b = [0u8; 8];
            match file.read(&mut b) {
                Ok(n) => got.extend_from_slice(&b[..n]),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    report(
        "fifo_writer",
        res(writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("panic")))),
    );
    report("fifo_read", String::from_utf8_lossy(&got));
}

fn child_toctou() {
    // Same length so the flip is a plain byte swap; the buffer is shared with the flipper.
    const SAFE: &[u8; 7] = b"safe.tx";
    const BAD: &[u8; 7] = b".envrc\0";
    static BUF: [AtomicU8; 8] = [const { AtomicU8::new(0) }; 8];
    static STOP: AtomicBool = AtomicBool::new(false);
    let flipper = std::thread::spawn(|| {
        let mut i = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            let src = if i.is_multiple_of(2) { SAFE } else { BAD };
            for (b, v) in BUF.iter().zip(src.iter()) {
                b.store(*v, Ordering::Relaxed);
            }
            i += 1;
        }
    });
    let (mut created, mut denied, mut breach) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) && n < 200_000 {
        n += 1;
        // SAFETY: BUF is a static NUL-terminated (index 7 stays 0) byte array; AtomicU8 has
        // u8's layout. The kernel reads it while the flipper rewrites it: that is the test.
        let fd = unsafe {
            libc::open(
                BUF.as_ptr() as *const libc::c_char,
                libc::O_CREAT | libc::O_WRONLY,
                0o644,
            )
        };
        if fd >= 0 {
            created += 1;
            // SAFETY: fd just returned to us.
            unsafe { libc::close(fd) };
        } else {
            denied += 1;
        }
        if Path::new(".envrc").exists() {
            breach += 1;
            break;
        }
    }
    STOP.store(true, Ordering::Relaxed);
    let _ = flipper.join();
    report("created", created);
    report("denied", denied);
    report("breach", breach);
}

fn child_pivot() {
    use std::os::unix::fs::symlink;
    let tag = escape_tag(Path::new(&std::env::var(DIR_ENV).unwrap_or_default()));
    let cr = |p: &str| open_raw(p, libc::O_CREAT | libc::O_WRONLY, 0o644);
    report("dotdot", res(cr(&format!("../../../../../{tag}-dotdot"))));
    let _ = symlink("../../../../../../tmp", "up");
    report("rel_link", res(cr(&format!("up/{tag}-rel"))));
    let _ = symlink("/../../tmp", "abs");
    report("abs_link", res(cr(&format!("abs/{tag}-abs"))));
    report("relative", res(cr(&format!("{tag}-relative"))));
    report("envrc_protected", res(cr("/work/../work/.envrc")));
}

static BARE_US: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn time_creates(dir: &str) -> f64 {
    const N: usize = 2000;
    let t = Instant::now();
    for i in 0..N {
        let p = format!("{dir}/f{i}");
        if let Ok(fd) = open_raw(&p, libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644) {
            drop(fd);
        }
    }
    t.elapsed().as_secs_f64() * 1e6 / N as f64
}

fn child_bench() {
    report(
        "bare_us",
        format!("{:.3}", BARE_US.get().copied().unwrap_or(f64::NAN)),
    );
    report("guarded_us", format!("{:.3}", time_creates("guarded")));
    report(
        "guarded_deep_us",
        format!("{:.3}", time_creates("guarded/a/b/c")),
    );
}
