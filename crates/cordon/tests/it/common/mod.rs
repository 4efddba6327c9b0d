//! Shared harness for the integration tests of the real `cordon` binary.
//!
//! Every test runs cordon as an UNPRIVILEGED user with a fresh fake home and workspace:
//! - as root (CI), the user `cordon-test` is created if missing, the binary is copied to a
//!   world-readable place and spawned with that uid/gid and no supplementary groups;
//! - as any other user, the test runs as itself with HOME pointed at a temporary directory
//!   under cargo's target dir, so the real home is never touched.
//!
//! Host-side checks (files, processes, sockets) are made by the test process itself, outside
//! the sandbox, so they observe the real host.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod approver;
pub mod net;

/// Name of the unprivileged account used when the tests run as root.
pub const TEST_USER: &str = "cordon-test";
/// How long one cordon invocation may take before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// PATH given to every process the harness starts.
pub const TEST_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The identity the tests run cordon as.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    /// Directory under which per-test roots are created.
    pub base: PathBuf,
    /// True when the harness drops from root to `uid`/`gid` for every spawn.
    pub drop_privs: bool,
}

/// Result of one process run by the harness.
#[derive(Clone, Debug)]
pub struct Out {
    /// Exit code, or 128+N when killed by signal N (as a shell reports it).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Human-readable dump for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "exit={}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            truncate(&self.stdout, 4000),
            truncate(&self.stderr, 4000)
        )
    }

    /// stdout and stderr together, for "does the output mention X" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A unique token for marker names: pid, time and a counter.
pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}{:x}{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Effective uid of the test process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Print a visible SKIP line (bypassing libtest's capture) and record it in a file that
/// `.ci/run` prints at the end, so a skipped check never passes silently.
pub fn skip(test: &str, reason: &str) {
    report("SKIP", test, reason);
}

/// Like [`skip`] but for partial coverage: something that could not be checked here.
pub fn note(test: &str, what: &str) {
    report("NOTE", test, what);
}

fn report(kind: &str, test: &str, reason: &str) {
    // Counted once for the whole `cargo test --workspace` run by crates/test-summary, whose
    // binary runs last.
    test_summary::record(kind, test, reason);
    let line = format!("{kind} {test}: {reason}\n");
    // std::io::stderr() is not captured by libtest (only the print macros are).
    let _ = std::io::stderr().write_all(line.as_bytes());
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cordon-it-skips.txt");
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(file) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The test identity, set up once per test binary.
pub fn test_user() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| {
        if euid() == 0 {
            root_test_user()
        } else {
            let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cordon-it");
            fs::create_dir_all(&base).expect("create harness base dir under CARGO_TARGET_TMPDIR");
            // SAFETY: getgid has no preconditions and cannot fail.
            let gid = unsafe { libc::getgid() };
            TestUser {
                uid: euid(),
                gid,
                name: std::env::var("USER").unwrap_or_else(|_| "nobody".into()),
                base,
                drop_privs: false,
            }
        }
    })
}

fn lookup_user(name: &str) -> Option<(u32, u32, PathBuf)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 6 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?, PathBuf::from(f[5])))
        } else {
            None
        }
    })
}

fn root_test_user() -> TestUser {
    // Several test binaries may race to create the user; useradd locks /etc/passwd, so retry.
    let mut tries = 0;
    let (uid, gid, home) = loop {
        if let Some(u) = lookup_user(TEST_USER) {
            break u;
        }
        let _ = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", TEST_USER])
            .status();
        tries += 1;
        assert!(
            tries < 20,
            "could not create the unprivileged test user {TEST_USER} with useradd"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    fs::create_dir_all(&home).expect("create test user's home");
    chown(&home, uid, gid);
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).expect("chmod test home");
    TestUser {
        uid,
        gid,
        name: TEST_USER.into(),
        base: home,
        drop_privs: true,
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// Recursively hand a tree to the test user (no-op when not root).
pub fn chown_tree(path: &Path) {
    let u = test_user();
    if !u.drop_privs {
        return;
    }
    chown(path, u.uid, u.gid);
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(path) {
                for e in rd.flatten() {
                    chown_tree(&e.path());
                }
            }
        }
    }
}

/// Path of the cordon binary the test user can execute.
pub fn cordon_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // CORDON_IT_BIN runs the suite against another build (e.g. a release binary).
        let built = std::env::var_os("CORDON_IT_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cordon")));
        if !test_user().drop_privs {
            return built;
        }
        // The cargo target dir may sit under /root (mode 0700): copy the binary to a
        // world-readable place. Copy then rename so a concurrently running test binary never
        // executes a half-written file; one copy per build path, so test runs of other
        // checkouts on the same machine never replace this build's binary mid-run.
        let dir = Path::new("/tmp/cordon-it");
        fs::create_dir_all(dir).expect("create /tmp/cordon-it");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod /tmp/cordon-it");
        let tmp = dir.join(format!("cordon.{}", unique()));
        fs::copy(&built, &tmp).expect("copy cordon binary to /tmp/cordon-it");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod cordon copy");
        let dst = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            built.hash(&mut h);
            dir.join(format!("cordon-{:x}", h.finish()))
        };
        fs::rename(&tmp, &dst).expect("install cordon copy");
        dst
    })
}

/// One test's fresh fake home and workspace, removed when dropped.
pub struct Sandbox {
    pub name: String,
    /// Per-test root, parent of `home`; owned by the test user and writable on the host,
    /// which makes it a good "outside the workspace and outside $HOME" target.
    pub root: PathBuf,
    pub home: PathBuf,
    pub ws: PathBuf,
    pub user: TestUser,
}

impl Sandbox {
    /// Create `<base>/t-<name>-<rand>/home` with a workspace at `home/ws`, some typical
    /// dotfiles and secrets with known content, all owned by the test user.
    pub fn new(name: &str) -> Sandbox {
        let user = test_user().clone();
        let root = user.base.join(format!("t-{name}-{}", unique()));
        let home = root.join("home");
        let ws = home.join("ws");
        fs::create_dir_all(&ws).expect("create workspace");
        let sb = Sandbox {
            name: name.into(),
            root,
            home,
            ws,
            user,
        };
        sb.populate_home();
        fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).expect("chmod root");
        chown_tree(&sb.root);
        sb
    }

    fn populate_home(&self) {
        let files: &[(&str, &str)] = &[
            (".bashrc", "# host bashrc\nexport HOST_BASHRC=1\n"),
            (".profile", "# host profile\n"),
            (".gitconfig", "[user]\n\tname = Host User\n"),
            (".ssh/id_rsa", SSH_KEY),
            (
                ".ssh/authorized_keys",
                "ssh-ed25519 AAAAhost host@example\n",
            ),
            (".aws/credentials", AWS_CREDS),
            (
                ".netrc",
                "machine example.com login me password netrc-secret-42\n",
            ),
            (".cache/existing/keep.txt", "host cache file\n"),
            (".config/sometool/config", "host tool config\n"),
            ("notes/other.txt", "ordinary host note\n"),
        ];
        for (rel, content) in files {
            let p = self.home.join(rel);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).expect("create home subdir");
            }
            fs::write(&p, content).expect("write home file");
        }
        let _ = fs::set_permissions(self.home.join(".ssh"), fs::Permissions::from_mode(0o700));
        let _ = fs::set_permissions(
            self.home.join(".ssh/id_rsa"),
            fs::Permissions::from_mode(0o600),
        );
    }

    /// Write a host file (creating parents) and give it to the test user.
    pub fn write_host(&self, path: &Path, content: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        chown_tree(&self.root);
    }

    /// Environment every spawn gets (the environment is cleared first).
    pub fn base_env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("PATH".into(), TEST_PATH.into()),
            ("USER".into(), self.user.name.clone()),
            ("LOGNAME".into(), self.user.name.clone()),
        ]
    }

    /// A `Command` for `program` as the test user, with a clean environment, cwd = workspace.
    pub fn user_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(self.base_env())
            .current_dir(&self.ws)
            .stdin(Stdio::null());
        if self.user.drop_privs {
            // std drops supplementary groups itself when it changes uid as root.
            cmd.uid(self.user.uid).gid(self.user.gid);
        }
        cmd
    }

    /// A `Command` for the cordon binary as the test user (no arguments yet).
    pub fn cordon_command(&self) -> Command {
        self.user_command(cordon_bin())
    }

    /// `cordon run -- ARGS...`
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_opts(&[], args)
    }

    /// `cordon run OPTS... -- ARGS...`
    pub fn run_opts(&self, opts: &[&str], args: &[&str]) -> Out {
        self.run_with(|_| {}, opts, args)
    }

    /// `cordon run OPTS... -- ARGS...` after `tweak` adjusted the command (env, cwd, fds).
    pub fn run_with(&self, tweak: impl FnOnce(&mut Command), opts: &[&str], args: &[&str]) -> Out {
        let mut cmd = self.cordon_command();
        cmd.arg("run").args(opts).arg("--").args(args);
        tweak(&mut cmd);
        exec(cmd, RUN_TIMEOUT)
    }

    /// `cordon run -- bash -c SCRIPT`, asserting that the script really started (so an
    /// attack test cannot pass just because nothing ran). The marker line is removed.
    pub fn sh(&self, script: &str) -> Out {
        self.sh_opts(&[], script)
    }

    /// `cordon run OPTS... -- bash -c SCRIPT`, asserting that the script really started.
    pub fn sh_opts(&self, opts: &[&str], script: &str) -> Out {
        let out = self.run_opts(opts, &["bash", "-c", &format!("echo {RAN}; {script}")]);
        assert_ran(out)
    }

    /// `cordon ARGS...` (any subcommand).
    pub fn cordon(&self, args: &[&str]) -> Out {
        let mut cmd = self.cordon_command();
        cmd.args(args);
        exec(cmd, RUN_TIMEOUT)
    }

    /// `bash -c SCRIPT` on the HOST as the test user (no sandbox), cwd = workspace.
    pub fn host_sh(&self, script: &str) -> Out {
        let mut cmd = self.user_command("bash");
        cmd.arg("-c").arg(script);
        exec(cmd, RUN_TIMEOUT)
    }

    /// Like [`Sandbox::host_sh`] but panics unless the script succeeds.
    pub fn host_sh_ok(&self, script: &str) -> Out {
        let out = self.host_sh(script);
        assert_eq!(
            out.code,
            0,
            "host setup step failed (not a cordon problem): {script}\n{}",
            out.show()
        );
        out
    }

    /// Is `tool` runnable by the test user on the host?
    pub fn has_tool(&self, tool: &str) -> bool {
        self.host_sh(&format!("command -v {tool} >/dev/null 2>&1"))
            .code
            == 0
    }

    /// Snapshot of the home directory, ignoring the workspace and cordon's own state/cache
    /// directories (which the contract allows a run to create).
    pub fn home_snapshot(&self) -> Snapshot {
        let ws = self.ws.clone();
        let home = self.home.clone();
        let own: Vec<PathBuf> = [".local/state/cordon", ".cache/cordon"]
            .iter()
            .map(|p| home.join(p))
            .collect();
        let parents: Vec<PathBuf> = [".local", ".local/state", ".cache"]
            .iter()
            .map(|p| home.join(p))
            .collect();
        snapshot_filtered(&self.home, &move |p: &Path, is_dir: bool| {
            if p.starts_with(&ws) || own.iter().any(|o| p.starts_with(o)) {
                return false;
            }
            // cordon may create the parents of its own directories; their contents still count.
            !(is_dir && parents.iter().any(|q| q == p))
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::env::var_os("CORDON_IT_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A `cordon run` in the background, killed (and with it its sandbox) if the test fails before
/// waiting for it: a failed test once left its sandbox running, holding the shared test lock
/// it had inherited, and blocked every other test run for twenty minutes.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn new(child: std::process::Child) -> Self {
        Running(Some(child))
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// Waits for it (failing the test after [`RUN_TIMEOUT`]) and collects its output.
    pub fn finish(self) -> Out {
        let mut child = self.take();
        let Some(status) = wait_timeout(&mut child, RUN_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("TIMEOUT: cordon run still running after {RUN_TIMEOUT:?}");
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut stdout);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        Out {
            code: status_code(status),
            stdout,
            stderr,
        }
    }

    /// The child, now the caller's to wait for.
    pub fn take(mut self) -> std::process::Child {
        match self.0.take() {
            Some(c) => c,
            None => unreachable!("a Running always holds its child until taken"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `cordon run -p POLICY OPTS -- bash run.sh ARGS` (the workspace's `run.sh`) in the
/// background, with `runtime` as its `$XDG_RUNTIME_DIR` (where its approvals socket appears).
pub fn run_script_in_background(
    sb: &Sandbox,
    runtime: &Path,
    policy: &Path,
    opts: &[&str],
    args: &[&str],
) -> Running {
    let mut cmd = sb.user_command(cordon_bin());
    cmd.env("XDG_RUNTIME_DIR", runtime)
        .arg("run")
        .arg("-p")
        .arg(policy)
        .args(opts)
        .args(["--", "bash", "run.sh"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Running::new(cmd.spawn().expect("spawn cordon run"))
}

/// Spawn `cmd`, collect its output, and fail the test if it outlives `timeout`.
pub fn exec(mut cmd: Command, timeout: Duration) -> Out {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not spawn {cmd:?}: {e}"));
    let out_rx = reader(child.stdout.take());
    let err_rx = reader(child.stderr.take());
    let status = wait_timeout(&mut child, timeout);
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_rx
                .recv_timeout(Duration::from_secs(2))
                .unwrap_or_default();
            let stderr = err_rx
                .recv_timeout(Duration::from_secs(2))
                .unwrap_or_default();
            panic!(
                "TIMEOUT: {cmd:?} still running after {timeout:?}; killed it\n--- stdout ---\n{}\n--- stderr ---\n{}",
                truncate(&stdout, 4000),
                truncate(&stderr, 4000)
            );
        }
    };
    // A process that escaped the sandbox could keep the pipes open forever: don't wait on it.
    let grace = Duration::from_secs(10);
    let stdout = out_rx.recv_timeout(grace).unwrap_or_else(|_| {
        "<stdout still held open by a surviving process 10 s after exit>".into()
    });
    let stderr = err_rx.recv_timeout(grace).unwrap_or_else(|_| {
        "<stderr still held open by a surviving process 10 s after exit>".into()
    });
    Out {
        code: status_code(status),
        stdout,
        stderr,
    }
}

/// Exit code as a shell reports it: 128+N for signal N.
pub fn status_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => -1,
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// `f` applied to a name for the unix socket at `path` that fits `sockaddr_un` (108 bytes):
/// the path itself, or `/proc/self/fd/N/NAME` through its directory, so a checkout under a
/// long path binds and connects like any other (instead of "path must be shorter than
/// SUN_LEN").
pub fn via_short_name<T>(
    path: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() < 108 {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let d = fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    let r = f(&short);
    drop(d);
    r
}

/// Binds a unix listener at `path`, however long the path.
pub fn unix_listener(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    via_short_name(path, |p| std::os::unix::net::UnixListener::bind(p))
}

/// Connects to the unix socket at `path`, however long the path.
pub fn unix_connect(path: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    via_short_name(path, |p| std::os::unix::net::UnixStream::connect(p))
}

/// A short path for a socket a host tool (tmux) makes itself, whatever the checkout's path.
pub fn short_socket_path(tag: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/cit-{tag}-{}.sock", unique()))
}

/// Poll `child` until it exits or `timeout` passes (None on timeout).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(e) => panic!("waiting for child: {e}"),
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One file's observable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: char,
    pub size: u64,
    pub mtime_ns: i128,
    pub mode: u32,
    /// File content (small files) or symlink target, to catch same-size rewrites.
    pub content: Vec<u8>,
}

/// Files under a directory with their state, keyed by path.
pub type Snapshot = BTreeMap<PathBuf, Entry>;

/// Every file, directory and symlink under `dir` (not following symlinks).
pub fn host_snapshot(dir: &Path) -> Snapshot {
    snapshot_filtered(dir, &|_, _| true)
}

/// Like [`host_snapshot`], keeping only entries for which `keep(path, is_dir)` holds
/// (a directory that is not kept is still descended into).
pub fn snapshot_filtered(dir: &Path, keep: &dyn Fn(&Path, bool) -> bool) -> Snapshot {
    let mut snap = Snapshot::new();
    walk(dir, keep, &mut snap);
    snap
}

fn walk(dir: &Path, keep: &dyn Fn(&Path, bool) -> bool, snap: &mut Snapshot) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else {
            '?'
        };
        if keep(&p, ft.is_dir()) {
            let content = if ft.is_symlink() {
                fs::read_link(&p)
                    .map(|t| t.into_os_string().into_encoded_bytes())
                    .unwrap_or_default()
            } else if ft.is_file() && m.len() <= 1 << 20 {
                fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            snap.insert(
                p.clone(),
                Entry {
                    kind,
                    // A directory's size changes with its entries, which are compared anyway.
                    size: if ft.is_dir() { 0 } else { m.len() },
                    mtime_ns: if ft.is_dir() {
                        0
                    } else {
                        m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
                    },
                    mode: m.mode(),
                    content,
                },
            );
        }
        if ft.is_dir() {
            walk(&p, keep, snap);
        }
    }
}

/// Describe what changed between two snapshots (empty when equal).
pub fn diff(before: &Snapshot, after: &Snapshot) -> String {
    let mut s = String::new();
    for (p, e) in after {
        match before.get(p) {
            None => s.push_str(&format!("  added:   {} ({})\n", p.display(), e.kind)),
            Some(b) if b != e => s.push_str(&format!("  changed: {}\n", p.display())),
            _ => {}
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) {
            s.push_str(&format!("  removed: {}\n", p.display()));
        }
    }
    s
}

/// Assert two snapshots are equal, explaining the difference otherwise.
pub fn assert_unchanged(what: &str, before: &Snapshot, after: &Snapshot, out: &Out) {
    let d = diff(before, after);
    assert!(
        d.is_empty(),
        "{what}: the HOST changed after the sandboxed command:\n{d}\ncordon output:\n{}",
        out.show()
    );
}

/// Bytes of a host file, or None when it does not exist.
pub fn read_opt(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// Does the host have `path` (without following a final symlink)?
pub fn exists_nofollow(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Assert a host path does not exist after the run.
pub fn assert_absent(path: &Path, out: &Out) {
    assert!(
        !exists_nofollow(path),
        "{} exists on the HOST after the sandboxed command; it must not\ncordon output:\n{}",
        path.display(),
        out.show()
    );
}

/// Pids on the host whose command line contains `needle`.
pub fn host_pids_with_cmdline(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = fs::read(e.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Wait up to `timeout` for `cond` to hold.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// SIGKILL the given host pids (used only to clean up after a failed containment test).
pub fn kill_pids(pids: &[u32]) {
    for &pid in pids {
        if let Ok(p) = i32::try_from(pid) {
            // SAFETY: kill with a specific pid we found by its unique marker; no memory involved.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

/// Line printed first by [`Sandbox::sh`] scripts and the python prelude.
pub const RAN: &str = "CORDON-IT-RAN";

/// Assert the sandboxed command printed [`RAN`]; return the output without that line.
pub fn assert_ran(mut out: Out) -> Out {
    assert!(
        out.stdout.lines().any(|l| l == RAN),
        "the sandboxed command never ran (no {RAN} line on stdout), so nothing was tested\n{}",
        out.show()
    );
    out.stdout = out
        .stdout
        .lines()
        .filter(|l| *l != RAN)
        .map(|l| format!("{l}\n"))
        .collect();
    out
}

/// A python3 prelude giving `sc(nr, *args) -> (ret, errno)` for raw syscalls via ctypes.
pub const PY_SYSCALL: &str = r#"
import ctypes, sys, os, socket, errno
print("CORDON-IT-RAN", flush=True)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a & 0xffffffffffffffff) if isinstance(a, int) else a for a in args])
    return r, ctypes.get_errno()
"#;

/// Known private key content the harness puts in `~/.ssh/id_rsa`.
pub const SSH_KEY: &str =
    "-----BEGIN OPENSSH PRIVATE KEY-----\ncordon-it-ssh-secret-7f3a91\n-----END OPENSSH PRIVATE KEY-----\n";
/// Marker inside [`SSH_KEY`].
pub const SSH_MARKER: &str = "cordon-it-ssh-secret-7f3a91";
/// Known content of `~/.aws/credentials`.
pub const AWS_CREDS: &str =
    "[default]\naws_access_key_id = AKIACORDONIT\naws_secret_access_key = cordon-it-aws-secret-55e1\n";
/// Marker inside [`AWS_CREDS`].
pub const AWS_MARKER: &str = "cordon-it-aws-secret-55e1";
