//! A protected file is protected whatever name reaches it: magic links, `O_PATH`
//! descriptors, hard links old and new, names in dependency trees, metadata, and unix sockets
//! (bind, connect, datagrams) when the places they live in are shared with the host. Every
//! attack is checked on the HOST afterwards (bytes, mode, whether `git status` there runs
//! anything); every one has its legitimate twin.
use crate::common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A workspace with a nested repository made on the host (config, a disabled hook), a
/// package with a `CLAUDE.md`, a deeper `.vscode/tasks.json`, and a marker path that the
/// nested repository's fsmonitor would create if anything planted a command in it.
struct Ws {
    sb: Sandbox,
    marker: PathBuf,
}

const GIT: &str = "git -c user.name=h -c user.email=h@e";

fn workspace(name: &str) -> Ws {
    let sb = Sandbox::new(name);
    let marker = sb.root.join("pwned");
    sb.write_host(&sb.ws.join("README.md"), "# project\n");
    sb.write_host(
        &sb.ws.join("packages/x/CLAUDE.md"),
        "package instructions\n",
    );
    sb.write_host(&sb.ws.join("packages/x/.vscode/tasks.json"), "{}\n");
    sb.write_host(&sb.ws.join("nested/file.txt"), "nested\n");
    sb.host_sh_ok(&format!(
        "cd nested && git init -q -b main . && {GIT} add -A && {GIT} commit -q -m initial && \
         printf '#!/bin/sh\\nexit 0\\n' > .git/hooks/pre-commit && chmod 644 .git/hooks/pre-commit"
    ));
    chown_tree(&sb.root);
    Ws { sb, marker }
}

/// What is watched of a host file: bytes, mode, owner, mtime, and its xattrs.
type FileState = (Vec<u8>, u32, u32, i64, i64, Vec<String>);

/// The state of each watched host file.
fn state(paths: &[PathBuf]) -> Vec<Option<FileState>> {
    paths
        .iter()
        .map(|p| {
            let m = fs::symlink_metadata(p).ok()?;
            Some((
                fs::read(p).unwrap_or_default(),
                m.mode(),
                m.uid(),
                m.mtime(),
                m.mtime_nsec(),
                xattrs(p),
            ))
        })
        .collect()
}

/// The names of a host file's extended attributes.
fn xattrs(p: &Path) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os,sys; print(sorted(os.listxattr(sys.argv[1])))",
        ])
        .arg(p)
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .into_iter()
        .collect()
}

const WATCHED: &[&str] = &[
    "nested/.git/config",
    "nested/.git/hooks/pre-commit",
    "packages/x/CLAUDE.md",
    "packages/x/.vscode/tasks.json",
];

impl Ws {
    fn watched(&self) -> Vec<PathBuf> {
        WATCHED.iter().map(|w| self.sb.ws.join(w)).collect()
    }

    /// Runs `script` inside; every line it prints must start with `refused` (each attack
    /// prints `refused <what>` or `WROTE <what>`), the watched files must be unchanged on the
    /// host, and `git status` in the nested repository on the host must run nothing.
    fn attack(&self, script: &str, min_refusals: usize) -> Out {
        self.attack_opts(&[], script, min_refusals)
    }

    fn attack_opts(&self, opts: &[&str], script: &str, min_refusals: usize) -> Out {
        let paths = self.watched();
        let before = state(&paths);
        let out = self.sb.sh_opts(opts, script);
        self.after(&paths, &before, &out, min_refusals);
        out
    }

    fn after(&self, paths: &[PathBuf], before: &[Option<FileState>], out: &Out, n: usize) {
        let after = state(paths);
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(
                after[i],
                before[i],
                "{}: bytes, mode, owner, mtime or xattrs changed on the HOST\n{}",
                p.display(),
                out.show()
            );
        }
        assert!(
            !out.stdout.contains("WROTE"),
            "an attack went through\n{}",
            out.show()
        );
        let refusals = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("refused"))
            .count();
        assert!(
            refusals >= n,
            "expected at least {n} refusals (did the attacks run?)\n{}",
            out.show()
        );
        self.host_git_runs_nothing(out);
    }

    fn host_git_runs_nothing(&self, out: &Out) {
        let st = self
            .sb
            .host_sh("git -C nested status --short >/dev/null 2>&1; true");
        assert!(
            !self.marker.exists(),
            "`git status` on the host ran a planted command\n{}\n{}",
            st.show(),
            out.show()
        );
    }
}

/// `try "what" command...`: prints `WROTE what` if the command succeeded, else `refused what`.
const TRY: &str = "t() { w=$1; shift; if \"$@\" 2>/dev/null; then echo \"WROTE $w\"; else echo \"refused $w\"; fi; }; ";

fn fsmonitor(marker: &Path) -> String {
    format!(
        "[core]\\n\\tfsmonitor = \\\"touch {}; false\\\"\\n",
        marker.display()
    )
}

#[test]
fn magic_link_reopen_of_protected_files() {
    let w = workspace("magic-reopen");
    let evil = fsmonitor(&w.marker);
    let script = format!(
        "{TRY}
        exec 3<nested/.git/config 4<nested/.git/hooks/pre-commit 5<packages/x/CLAUDE.md 6<packages/x/.vscode/tasks.json
        t self sh -c 'printf \"{evil}\" > /proc/self/fd/3'
        t devfd sh -c 'printf \"{evil}\" > /dev/fd/3'
        t thread-self sh -c 'printf \"{evil}\" > /proc/thread-self/fd/3'
        t pid sh -c 'printf \"{evil}\" > /proc/$$/fd/3'
        t append sh -c 'printf \"{evil}\" >> /proc/self/fd/3'
        t hook sh -c 'echo \"touch {m}\" >> /proc/self/fd/4'
        t claude sh -c 'echo evil > /proc/self/fd/5'
        t tasks sh -c 'echo evil > /dev/fd/6'
        ln -s /proc/self/fd/3 /tmp/l3 && t symlink sh -c 'printf \"{evil}\" > /tmp/l3'
        ln -s /dev/fd/3 link-in-ws && t symlink-ws sh -c 'printf \"{evil}\" > link-in-ws'
        t truncate-path python3 -c 'import os; os.truncate(\"/proc/self/fd/3\", 0)'
        t truncate-cmd truncate -s 0 /dev/fd/3
        t opath python3 -c '
import os
fd = os.open(\"nested/.git/config\", os.O_PATH)
open(\"/proc/self/fd/%d\" % fd, \"w\").write(\"x\")'
        t opath-rdwr python3 -c '
import os
fd = os.open(\"nested/.git/hooks/pre-commit\", os.O_PATH)
os.close(os.open(\"/proc/thread-self/fd/%d\" % fd, os.O_RDWR | os.O_TRUNC))'
        true",
        m = w.marker.display()
    );
    w.attack(&script, 14);
}

#[test]
fn magic_link_reopen_of_ordinary_files_twin() {
    let w = workspace("magic-twin");
    let out = w.sb.sh(&format!(
        "set -e; exec 3>>log.txt; echo one > /proc/self/fd/3; echo two >> /dev/fd/3
         ( echo three > /dev/stdout ) >> log.txt
         ( echo tmp > /dev/stdout ) > /tmp/t.log; grep -q tmp /tmp/t.log
         ( echo home > /dev/stderr ) 2> ~/h.log; grep -q home ~/h.log
         exec 7>/tmp/fd7; echo seven > /proc/self/fd/7; grep -q seven /tmp/fd7
         cd nested && echo more >> file.txt && {GIT} commit -qam nested-commit && echo COMMIT-OK"
    ));
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("COMMIT-OK"), "{}", out.show());
    let log = fs::read_to_string(w.sb.ws.join("log.txt")).unwrap_or_default();
    assert!(
        log.contains("three"),
        "log.txt on the host: {log:?}\n{}",
        out.show()
    );
    let host_log = w.sb.host_sh_ok("git -C nested log --format=%s -1");
    assert!(
        host_log.stdout.contains("nested-commit"),
        "the nested commit made inside must be on the host\n{}",
        host_log.show()
    );
    w.host_git_runs_nothing(&out);
}

/// A python snippet making linkat calls by raw syscall (AT_EMPTY_PATH needs no privilege
/// on kernels since 6.10 when the fd was opened by the caller).
const PY_LINK: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100; AT_SYMLINK_FOLLOW = 0x400; AT_EMPTY_PATH = 0x1000
def linkat(ofd, old, nfd, new, flags):
    r = libc.linkat(ofd, old.encode(), nfd, new.encode(), flags)
    return r == 0
def report(what, ok, alias):
    if ok:
        try:
            open(alias, "a").write("[core]\n\tfsmonitor = touch MARKER\n")
            print("WROTE", what, flush=True)
        except OSError:
            print("refused", what, "(linked, write refused)", flush=True)
    else:
        print("refused", what, flush=True)
"#;

#[test]
fn hard_link_aliases_of_protected_files() {
    let w = workspace("hardlink-alias");
    // An alias that exists already on the host: a protected file with st_nlink > 1 reached
    // through an ordinary name, and one under node_modules (where agent files are lifted).
    let ws = &w.sb.ws;
    fs::create_dir_all(ws.join("docs")).expect("mkdir docs");
    fs::hard_link(ws.join("nested/.git/config"), ws.join("docs/notes.txt")).expect("host link");
    fs::create_dir_all(ws.join("node_modules/pkg")).expect("mkdir node_modules");
    fs::hard_link(
        ws.join("packages/x/CLAUDE.md"),
        ws.join("node_modules/pkg/README.md"),
    )
    .expect("host link 2");
    chown_tree(&w.sb.root);
    let py = PY_LINK.replace("MARKER", &w.marker.display().to_string());
    let script = format!(
        "{TRY}
        t old-alias sh -c 'echo \"[core] fsmonitor = touch {m}\" >> docs/notes.txt'
        t old-alias-trunc truncate -s 0 docs/notes.txt
        t old-alias-deps sh -c 'echo evil > node_modules/pkg/README.md'
        t plain-link ln nested/.git/config alias0
        python3 -c '{py}
fd = os.open(\"nested/.git/config\", os.O_RDONLY)
report(\"empty-path\", linkat(fd, \"\", AT_FDCWD, \"alias1\", AT_EMPTY_PATH), \"alias1\")
pfd = os.open(\"nested/.git/hooks/pre-commit\", os.O_PATH)
report(\"empty-path-opath\", linkat(pfd, \"\", AT_FDCWD, \"alias2\", AT_EMPTY_PATH), \"alias2\")
report(\"follow-magic\", linkat(AT_FDCWD, \"/proc/self/fd/%d\" % fd, AT_FDCWD, \"alias3\", AT_SYMLINK_FOLLOW), \"alias3\")
os.symlink(\"/proc/self/fd/%d\" % fd, \"/tmp/m\")
report(\"follow-symlink-to-magic\", linkat(AT_FDCWD, \"/tmp/m\", AT_FDCWD, \"node_modules/alias4\", AT_SYMLINK_FOLLOW), \"node_modules/alias4\")
cfd = os.open(\"packages/x/CLAUDE.md\", os.O_RDONLY)
report(\"empty-path-deps\", linkat(cfd, \"\", AT_FDCWD, \"node_modules/alias5\", AT_EMPTY_PATH), \"node_modules/alias5\")
'
        true",
        m = w.marker.display()
    );
    w.attack(&script, 9);
    for a in [
        "alias0",
        "alias1",
        "alias2",
        "alias3",
        "node_modules/alias4",
        "node_modules/alias5",
    ] {
        assert!(
            !ws.join(a).exists(),
            "{a}: a hard link to a protected file was made on the host"
        );
    }
}

#[test]
fn hard_links_of_ordinary_files_twin() {
    let w = workspace("hardlink-twin");
    let ws = &w.sb.ws;
    fs::write(ws.join("a.txt"), "a\n").expect("write a");
    fs::hard_link(ws.join("a.txt"), ws.join("b.txt")).expect("host link");
    chown_tree(&w.sb.root);
    let py = PY_LINK.replace("MARKER", "unused");
    let out = w.sb.sh(&format!(
        "set -e; echo more >> b.txt; ln a.txt c.txt; echo c >> c.txt
         python3 -c '{py}
fd = os.open(\"a.txt\", os.O_RDONLY)
assert linkat(fd, \"\", AT_FDCWD, \"d.txt\", AT_EMPTY_PATH)
print(\"LINKED\", flush=True)'"
    ));
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("LINKED"), "{}", out.show());
    let a = fs::read_to_string(ws.join("a.txt")).unwrap_or_default();
    assert_eq!(a, "a\nmore\nc\n", "{}", out.show());
    assert_eq!(
        fs::metadata(ws.join("d.txt"))
            .map(|m| m.nlink())
            .unwrap_or(0),
        4,
        "{}",
        out.show()
    );
}

#[test]
fn dependency_dir_names_do_not_lift_git_direnv_or_ide_tasks() {
    let w = workspace("deps-names");
    let marker = w.marker.display().to_string();
    let script = format!(
        "{TRY}
        t git-init-site-packages sh -c 'git init -q site-packages && git -C site-packages config core.fsmonitor \"touch {marker}; false\"'
        t git-init-node-modules git init -q node_modules/pkg
        t mkdir-git mkdir -p dist-packages/x/.git/hooks
        t gitdir-file sh -c 'mkdir -p node_modules/y && echo \"gitdir: /tmp/g\" > node_modules/y/.git'
        t gitmodules sh -c 'echo x > node_modules/y/.gitmodules'
        t bare-shape sh -c 'mkdir -p node_modules/b/objects node_modules/b/refs && echo ref > node_modules/b/HEAD'
        t envrc sh -c 'echo \"touch {marker}\" > node_modules/y/.envrc'
        t mise sh -c 'echo x > site-packages/mise.toml'
        t vscode-tasks sh -c 'mkdir -p node_modules/y/.vscode && echo {{}} > node_modules/y/.vscode/tasks.json'
        t vscode-launch sh -c 'mkdir -p site-packages/.vscode && echo {{}} > site-packages/.vscode/launch.json'
        t idea-run sh -c 'mkdir -p node_modules/y/.idea/runConfigurations && echo x > node_modules/y/.idea/runConfigurations/r.xml'
        t code-workspace sh -c 'echo {{}} > node_modules/y/a.code-workspace'
        true"
    );
    w.attack(&script, 12);
    let ws = &w.sb.ws;
    for p in [
        "site-packages/.git",
        "node_modules/pkg/.git",
        "dist-packages/x/.git",
        "node_modules/y/.git",
        "node_modules/y/.envrc",
        "node_modules/b/HEAD",
        "node_modules/y/.vscode/tasks.json",
    ] {
        assert!(!exists_nofollow(&ws.join(p)), "{p} exists on the host");
    }
    let st =
        w.sb.host_sh("cd site-packages 2>/dev/null && git status >/dev/null 2>&1; true");
    assert!(
        !w.marker.exists(),
        "git status in site-packages ran a command\n{}",
        st.show()
    );
}

#[test]
fn dependency_trees_install_packages_twin() {
    // An npm-like install (offline: the tree is written as npm unpacks it) of a package that
    // ships CLAUDE.md, AGENTS.md, .vscode/settings.json, .cargo/config.toml and .npmrc-free
    // content; and a pip-like install into a venv's site-packages.
    let w = workspace("deps-twin");
    let out = w.sb.sh(
        "set -e
         d=node_modules/@scope/pkg; mkdir -p $d/.vscode $d/.cargo $d/.github $d/lib
         echo '{\"name\":\"pkg\"}' > $d/package.json; echo x > $d/CLAUDE.md; echo x > $d/AGENTS.md
         echo '{}' > $d/.vscode/settings.json; echo '{}' > $d/.vscode/extensions.json
         echo x > $d/.cargo/config.toml; echo x > $d/.github/copilot-instructions.md; echo 'module.exports=1' > $d/lib/index.js
         chmod +x $d/lib/index.js; mkdir -p node_modules/.bin; ln -s ../@scope/pkg/lib/index.js node_modules/.bin/pkg
         sp=.venv/lib/python3.11/site-packages; mkdir -p $sp/m $sp/m-1.0.dist-info
         echo 'X=1' > $sp/m/__init__.py; echo x > $sp/m/CLAUDE.md; echo x > $sp/m-1.0.dist-info/RECORD
         mv $sp/m/__init__.py $sp/m/__init__.py.tmp && mv $sp/m/__init__.py.tmp $sp/m/__init__.py
         touch -d 2020-01-01 $sp/m/__init__.py
         echo INSTALL-OK",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("INSTALL-OK"), "{}", out.show());
    let ws = &w.sb.ws;
    for p in [
        "node_modules/@scope/pkg/CLAUDE.md",
        "node_modules/@scope/pkg/.vscode/settings.json",
        "node_modules/@scope/pkg/.cargo/config.toml",
        ".venv/lib/python3.11/site-packages/m/CLAUDE.md",
    ] {
        assert!(
            ws.join(p).exists(),
            "{p} missing on the host\n{}",
            out.show()
        );
    }
    let mode = fs::metadata(ws.join("node_modules/@scope/pkg/lib/index.js"))
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    assert_ne!(mode & 0o100, 0, "chmod +x in a package must work");
}

fn py_opts(sb: &Sandbox, opts: &[&str], body: &str) -> Out {
    let code = format!("{PY_SYSCALL}\n{body}");
    assert_ran(sb.run_opts(opts, &["python3", "-c", &code]))
}

/// Python helpers: `attempt(what, fn)` prints `WROTE what` when fn succeeds, else `refused`.
const PY_TRY: &str = r#"
def attempt(what, f):
    try:
        f()
        print("WROTE", what, flush=True)
    except OSError as e:
        print("refused", what, e.errno, flush=True)
def connect_send(path, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind)
    s.settimeout(3)
    if kind == socket.SOCK_DGRAM:
        s.sendto(b"pwn", path)
    else:
        s.connect(path); s.sendall(b"pwn")
"#;

/// A host "daemon": a listening stream socket and a bound datagram socket in a host
/// directory, reachable by the test user.
struct HostSockets {
    dir: PathBuf,
    stream: std::os::unix::net::UnixListener,
    dgram: std::os::unix::net::UnixDatagram,
}

impl HostSockets {
    fn new(dir: PathBuf) -> HostSockets {
        fs::create_dir_all(&dir).expect("mkdir host socket dir");
        let stream =
            std::os::unix::net::UnixListener::bind(dir.join("tmux-1000")).expect("bind stream");
        let dgram =
            std::os::unix::net::UnixDatagram::bind(dir.join("log-dgram")).expect("bind dgram");
        stream.set_nonblocking(true).expect("nonblocking");
        dgram.set_nonblocking(true).expect("nonblocking");
        for p in [dir.clone(), dir.join("tmux-1000"), dir.join("log-dgram")] {
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o777));
        }
        chown_tree(&dir);
        HostSockets { dir, stream, dgram }
    }

    fn stream_path(&self) -> String {
        self.dir.join("tmux-1000").display().to_string()
    }

    fn dgram_path(&self) -> String {
        self.dir.join("log-dgram").display().to_string()
    }

    /// Each of the `n` attempts inside was refused, and nothing reached the host's sockets.
    fn assert_all_refused(&self, out: &Out, n: usize) {
        assert!(!out.stdout.contains("WROTE"), "{}", out.show());
        let refused = out.stdout.lines().filter(|l| l.starts_with("refused"));
        assert_eq!(refused.count(), n, "{}", out.show());
        self.assert_untouched(out);
    }

    /// Nothing reached the host's sockets.
    fn assert_untouched(&self, out: &Out) {
        assert!(
            self.stream.accept().is_err(),
            "a host stream socket accepted a connection from inside\n{}",
            out.show()
        );
        let mut buf = [0u8; 64];
        assert!(
            self.dgram.recv(&mut buf).is_err(),
            "a host datagram socket received a datagram from inside\n{}",
            out.show()
        );
    }
}

impl Drop for HostSockets {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn host_sockets_unreachable_when_tmp_is_shared() {
    let sb = Sandbox::new("shared-tmp-sock");
    let host = HostSockets::new(PathBuf::from(format!("/tmp/cordon-it-hs-{}", unique())));
    let body = format!(
        r#"{PY_TRY}
attempt("connect", lambda: connect_send("{s}"))
attempt("sendto", lambda: connect_send("{d}", socket.SOCK_DGRAM))
attempt("sendto-relative", lambda: (os.chdir("{dir}"), connect_send("log-dgram", socket.SOCK_DGRAM)))
attempt("sendmsg", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendmsg([b"pwn"], [], 0, "{d}"))
def sendmmsg(path):
    import ctypes
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = ctypes.create_string_buffer(2 + len(path) + 1); addr.raw = b"\x01\x00" + path.encode() + b"\x00"
    data = ctypes.create_string_buffer(b"pwn")
    iov = (ctypes.c_uint64 * 2)(ctypes.addressof(data), 3)
    mm = (ctypes.c_uint64 * 8)(ctypes.addressof(addr), len(addr.raw), ctypes.addressof(iov), 1, 0, 0, 0, 0)
    r, e = sc(307, s.fileno(), ctypes.addressof(mm), 1, 0)
    if r != 1: raise OSError(e, "sendmmsg")
attempt("sendmmsg", lambda: sendmmsg("{d}"))
"#,
        s = host.stream_path(),
        d = host.dgram_path(),
        dir = host.dir.display()
    );
    let out = py_opts(&sb, &["--allow-write", "/tmp"], &body);
    host.assert_all_refused(&out, 5);
}

#[test]
fn sockets_made_inside_work_twin() {
    // A dev server's socket in a shared /tmp and in the workspace, a long name, and a datagram
    // socket the sandbox bound itself: all usable inside.
    let sb = Sandbox::new("own-sock-twin");
    let tmpdir = format!("/tmp/cordon-it-own-{}", unique());
    let body = format!(
        r#"
os.makedirs("{tmpdir}", exist_ok=True)
long = "d" * 90
os.makedirs(long, exist_ok=True)
for p in ("{tmpdir}/dev.sock", os.path.join(os.getcwd(), "dev.sock"), long + "/x" * 1 + ".sock"):
    srv = socket.socket(socket.AF_UNIX); srv.bind(p); srv.listen(1)
    c = socket.socket(socket.AF_UNIX); c.connect(p); c.sendall(b"ping")
    conn, _ = srv.accept(); print("GOT", conn.recv(4).decode(), flush=True)
r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); r.bind("dgram.sock")
w = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); w.sendto(b"dgram", "dgram.sock")
print("DGRAM", r.recv(16).decode(), flush=True)
w.sendto(b"again", os.path.abspath("dgram.sock")); print("DGRAM", r.recv(16).decode(), flush=True)
w.sendmsg([b"by", b"msg"], [], 0, "dgram.sock"); print("DGRAM", r.recv(16).decode(), flush=True)
import array
a, b = socket.socketpair()
a.sendmsg([b"fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r.fileno()]))])
msg, anc, _, _ = b.recvmsg(16, socket.CMSG_SPACE(4))
passed = array.array("i", anc[0][2][:4])[0]
w.sendto(b"viafd", "dgram.sock"); print("PASSED", socket.socket(fileno=passed).recv(16).decode(), flush=True)
big = b"z" * (3 << 20)
import threading
got = []
def reader():
    n = 0
    while n < len(big):
        c = b.recv(1 << 16)
        if not c: break
        n += len(c)
    got.append(n)
t = threading.Thread(target=reader); t.start()
print("SENT", a.sendmsg([big[:1 << 20], big[1 << 20:]]), flush=True); t.join()
print("SENTTO", w.sendto(b"to" * 100, "dgram.sock"), len(r.recv(256)), flush=True)
import ctypes
path = os.path.abspath("dgram.sock").encode()
addr = ctypes.create_string_buffer(2 + len(path) + 1); addr.raw = b"\x01\x00" + path + b"\x00"
bufs = [ctypes.create_string_buffer(b"mm1"), ctypes.create_string_buffer(b"mm22")]
iovs = [(ctypes.c_uint64 * 2)(ctypes.addressof(bufs[0]), 3), (ctypes.c_uint64 * 2)(ctypes.addressof(bufs[1]), 4)]
mm = (ctypes.c_uint64 * 16)(ctypes.addressof(addr), len(addr.raw), ctypes.addressof(iovs[0]), 1, 0, 0, 0, 0,
                            ctypes.addressof(addr), len(addr.raw), ctypes.addressof(iovs[1]), 1, 0, 0, 0, 0)
n, e = sc(307, w.fileno(), ctypes.addressof(mm), 2, 0)
print("MMSG", n, mm[7] & 0xffffffff, mm[15] & 0xffffffff, r.recv(8).decode(), r.recv(8).decode(), flush=True)
print("RECEIVED", got[0], flush=True)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.sendto(b"udp", u.getsockname())
print("UDP", u.recv(8).decode(), flush=True)
"#
    );
    let out = py_opts(&sb, &["--allow-write", "/tmp"], &body);
    let _ = fs::remove_dir_all(&tmpdir);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(out.stdout.matches("GOT ping").count(), 3, "{}", out.show());
    assert!(
        out.stdout.contains("DGRAM dgram") && out.stdout.contains("DGRAM again"),
        "{}",
        out.show()
    );
    assert!(out.stdout.contains("UDP udp"), "{}", out.show());
    let mode = fs::symlink_metadata(sb.ws.join("dev.sock"))
        .map(|m| m.file_type())
        .ok();
    assert!(
        mode.is_some_and(|t| std::os::unix::fs::FileTypeExt::is_socket(&t)),
        "the socket bound inside must exist in the workspace on the host"
    );
}

#[test]
fn approvals_socket_unreachable_when_tmp_is_shared() {
    // No XDG_RUNTIME_DIR: the broker's socket is under /tmp/cordon-UID, which --allow-write
    // /tmp puts in the sandbox's reach. It can neither be reached nor replaced.
    let sb = Sandbox::new("broker-tmp");
    let policy = sb.root.join("policy.toml");
    sb.write_host(&policy, "[filesystem]\nask_write = [\"~/ws/asked\"]\n");
    let uid = sb.user.uid;
    let body = format!(
        r#"{PY_TRY}
found = []
for d, _, names in os.walk("/tmp/cordon-{uid}"):
    for n in names:
        p = os.path.join(d, n)
        import stat
        if stat.S_ISSOCK(os.lstat(p).st_mode):
            found.append(p)
print("FOUND", len(found), flush=True)
for p in found:
    attempt("connect " + p, lambda: connect_send(p))
    attempt("unlink " + p, lambda: os.unlink(p))
    attempt("rename " + p, lambda: os.rename(p, p + ".x"))
attempt("plant", lambda: socket.socket(socket.AF_UNIX).bind("/tmp/cordon-{uid}/approvals/fake.sock"))
"#
    );
    let policy = policy.display().to_string();
    let out = py_opts(&sb, &["-p", &policy, "--allow-write", "/tmp"], &body);
    assert!(
        !out.stdout.contains("FOUND 0") && out.stdout.contains("FOUND"),
        "the broker's socket should be visible under /tmp/cordon-{uid} for this test to mean anything\n{}",
        out.show()
    );
    assert!(!out.stdout.contains("WROTE"), "{}", out.show());
}

#[test]
fn socket_age_cannot_be_forged() {
    // git's fsmonitor daemon socket, made on the host before the run: chmod, utime or a
    // rename from inside move its ctime forward; it is still not the sandbox's.
    let w = workspace("sock-age");
    let host = HostSockets::new(w.sb.ws.join("nested/.git/fsmon"));
    let body = format!(
        r#"{PY_TRY}
import time
time.sleep(0.05)
s = "{s}"
for how in ("chmod", "utime", "rename"):
    try:
        if how == "chmod": os.chmod(s, 0o777)
        elif how == "utime": os.utime(s)
        else:
            os.rename(s, s + ".2"); s = s + ".2"
    except OSError as e:
        print("note", how, e.errno, flush=True)
    attempt("connect after " + how, lambda: connect_send(s))
    attempt("sendto after " + how, lambda: connect_send("{d}", socket.SOCK_DGRAM))
"#,
        s = host.stream_path(),
        d = host.dgram_path()
    );
    let out = py_opts(&w.sb, &[], &body);
    host.assert_all_refused(&out, 6);
}

#[test]
fn bind_cannot_create_protected_names() {
    let w = workspace("bind-protected");
    fs::create_dir_all(w.sb.ws.join("evil/objects")).expect("mkdir");
    fs::create_dir_all(w.sb.ws.join("evil/refs")).expect("mkdir");
    fs::create_dir_all(w.sb.ws.join("node_modules/pkg")).expect("mkdir");
    chown_tree(&w.sb.root);
    let body = format!(
        r#"{PY_TRY}
def bind(p):
    socket.socket(socket.AF_UNIX).bind(p)
for p in (".envrc", "nested/.git/hooks/post-checkout", "evil/HEAD", "node_modules/pkg/.envrc",
          ".mcp.json", "packages/x/.vscode/launch.json", os.path.abspath("AGENTS.md"),
          "/etc/cordon-it.sock", "{home}/.bashrc.d"):
    attempt("bind " + p, lambda: bind(p))
"#,
        home = w.sb.home.display()
    );
    let paths = w.watched();
    let before = state(&paths);
    let out = py_opts(&w.sb, &[], &body);
    w.after(&paths, &before, &out, 9);
    for p in [
        ".envrc",
        "nested/.git/hooks/post-checkout",
        "evil/HEAD",
        ".mcp.json",
        "packages/x/.vscode/launch.json",
        "AGENTS.md",
    ] {
        assert!(
            !exists_nofollow(&w.sb.ws.join(p)),
            "{p} was created on the host\n{}",
            out.show()
        );
    }
}

#[test]
fn metadata_of_protected_files_at_any_depth() {
    let w = workspace("meta-protected");
    let uid = w.sb.user.uid;
    let body = format!(
        r#"{PY_TRY}
hook = "nested/.git/hooks/pre-commit"; cfg = "nested/.git/config"
claude = "packages/x/CLAUDE.md"; tasks = "packages/x/.vscode/tasks.json"
fd = os.open(hook, os.O_RDONLY); pfd = os.open(cfg, os.O_PATH)
AT_EMPTY_PATH = 0x1000; AT_SYMLINK_NOFOLLOW = 0x100
attempt("chmod +x hook", lambda: os.chmod(hook, 0o755))
attempt("fchmod hook", lambda: os.fchmod(fd, 0o755))
attempt("chmod via magic", lambda: os.chmod("/proc/self/fd/%d" % fd, 0o755))
attempt("chmod via dev-fd", lambda: os.chmod("/dev/fd/%d" % fd, 0o755))
attempt("fchmodat nofollow", lambda: os.chmod(hook, 0o755, follow_symlinks=False))
def fchmodat2(dfd, path, mode, flags):
    r, e = sc(452, dfd, path, mode, flags)
    if r != 0: raise OSError(e, "fchmodat2")
attempt("fchmodat2 empty-path opath", lambda: fchmodat2(pfd, b"", 0o777, AT_EMPTY_PATH))
attempt("chmod deeper claude", lambda: os.chmod(claude, 0o777))
attempt("chown", lambda: os.chown(cfg, {uid}, -1))
attempt("lchown", lambda: os.lchown(tasks, {uid}, -1))
attempt("fchown", lambda: os.fchown(fd, {uid}, -1))
attempt("utime", lambda: os.utime(cfg, (0, 0)))
attempt("utime now", lambda: os.utime(claude))
attempt("futimens", lambda: os.utime(fd, (1, 1)))
attempt("utime nofollow", lambda: os.utime(tasks, (2, 2), follow_symlinks=False))
def utimes(path):
    r, e = sc(235, path, 0)
    if r != 0: raise OSError(e, "utimes")
attempt("utimes", lambda: utimes(hook.encode()))
def utime_raw(path):
    r, e = sc(132, path, 0)
    if r != 0: raise OSError(e, "utime")
attempt("utime raw", lambda: utime_raw(cfg.encode()))
def futimesat(dfd, path):
    r, e = sc(261, dfd, path, 0)
    if r != 0: raise OSError(e, "futimesat")
attempt("futimesat", lambda: futimesat(-100, b"nested/.git/config"))
attempt("setxattr", lambda: os.setxattr(cfg, "user.x", b"1"))
attempt("lsetxattr", lambda: os.setxattr(claude, "user.x", b"1", follow_symlinks=False))
attempt("fsetxattr", lambda: os.setxattr(fd, "user.x", b"1"))
attempt("removexattr", lambda: os.removexattr(tasks, "user.keep"))
attempt("fremovexattr", lambda: os.removexattr(fd, "user.keep"))
r, e = sc(463, -100, b"nested/.git/config", 0, b"user.x", 0, 0)
print("refused setxattrat" if r != 0 else "WROTE setxattrat", e, flush=True)
"#
    );
    // Attributes to remove must exist, or the refusal proves nothing.
    for f in [
        "packages/x/.vscode/tasks.json",
        "nested/.git/hooks/pre-commit",
    ] {
        w.sb.host_sh_ok(&format!(
            "python3 -c 'import os; os.setxattr(\"{f}\", \"user.keep\", b\"1\")'"
        ));
    }
    let paths = w.watched();
    let before = state(&paths);
    let out = py_opts(&w.sb, &[], &body);
    w.after(&paths, &before, &out, 23);
    let st =
        w.sb.host_sh("cd nested && git commit -q --allow-empty -m x >/dev/null 2>&1; true");
    assert!(!w.marker.exists(), "{}", st.show());
}

#[test]
fn metadata_of_ordinary_files_twin() {
    let w = workspace("meta-twin");
    let out = w.sb.sh(
        "set -e; echo x > tool.sh; chmod +x tool.sh; touch -d 2020-01-01 tool.sh
         python3 -c 'import os; os.setxattr(\"tool.sh\", \"user.k\", b\"v\"); fd = os.open(\"tool.sh\", os.O_RDONLY); os.fchmod(fd, 0o750); os.utime(fd, (5, 5))'
         mkdir -p node_modules/pkg/bin && echo x > node_modules/pkg/bin/cli && chmod 755 node_modules/pkg/bin/cli
         chmod 600 nested/file.txt; chmod 700 nested
         cp -a nested/file.txt copy.txt
         echo META-OK",
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("META-OK"), "{}", out.show());
    let m = fs::metadata(w.sb.ws.join("tool.sh")).expect("tool.sh on the host");
    assert_eq!(m.permissions().mode() & 0o777, 0o750, "{}", out.show());
    assert_eq!(m.mtime(), 5, "{}", out.show());
    assert!(xattrs(&w.sb.ws.join("tool.sh"))
        .iter()
        .any(|x| x.contains("user.k")));
    let n = fs::metadata(w.sb.ws.join("nested/file.txt")).expect("nested file");
    assert_eq!(n.permissions().mode() & 0o777, 0o600);
}

/// Metadata calls through a descriptor are decided on the file as it is named now, however
/// the descriptor was come by: dup'd, passed to another process, opened through a hard link
/// made on the host, or held while the host renamed the file into a protected name (a file
/// the guard itself created and decided on included).
#[test]
fn fd_metadata_is_decided_on_the_file_as_named_now() {
    let w = workspace("meta-fd");
    let ws = &w.sb.ws;
    w.sb.host_sh_ok("ln nested/.git/hooks/pre-commit alias-hook && echo x > later.txt");
    let body = format!(
        r#"{PY_TRY}
import fcntl, time
hook = "nested/.git/hooks/pre-commit"
fd = os.open(hook, os.O_RDONLY); d = os.dup(fd); d2 = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 50)
attempt("fchmod dup", lambda: os.fchmod(d, 0o755))
attempt("futimens dup", lambda: os.utime(d2, (1, 1)))
attempt("fsetxattr dup", lambda: os.setxattr(d, "user.x", b"1"))
a = os.open("alias-hook", os.O_RDONLY)
attempt("fchmod alias", lambda: os.fchmod(a, 0o755))
attempt("futimens alias", lambda: os.utime(a, (1, 1)))
l, r = socket.socketpair()
pid = os.fork()
if pid == 0:
    _, fds, _, _ = socket.recv_fds(r, 10, 1)
    attempt("fchmod passed", lambda: os.fchmod(fds[0], 0o755))
    os._exit(0)
socket.send_fds(l, [b"x"], [fd]); os.waitpid(pid, 0)
held = os.open("later.txt", os.O_RDONLY)
mine = os.open("mine.txt", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
os.utime(mine, (7, 7)); os.fchmod(held, 0o640)
print("ordinary fd metadata works", flush=True)
open("ready", "w").close()
for _ in range(1200):
    if os.path.exists("renamed"): break
    time.sleep(0.05)
attempt("fchmod held after host rename", lambda: os.fchmod(held, 0o755))
attempt("futimens held after host rename", lambda: os.utime(held, (1, 1)))
attempt("fchmod mine after host rename", lambda: os.fchmod(mine, 0o755))
attempt("futimens mine after host rename", lambda: os.utime(mine, (1, 1)))
"#
    );
    let paths = w.watched();
    let before = state(&paths);
    let hooks = ws.join("nested/.git/hooks");
    let moved = [hooks.join("post-checkout"), hooks.join("post-merge")];
    let (out, at_rename) = std::thread::scope(|s| {
        let inside = s.spawn(|| py_opts(&w.sb, &[], &body));
        let ready = wait_for(std::time::Duration::from_secs(60), || {
            ws.join("ready").exists() || inside.is_finished()
        });
        assert!(ready, "the script never got ready");
        fs::rename(ws.join("later.txt"), &moved[0]).expect("host rename");
        fs::rename(ws.join("mine.txt"), &moved[1]).expect("host rename");
        let at: Vec<_> = moved
            .iter()
            .map(|p| state(std::slice::from_ref(p)))
            .collect();
        fs::write(ws.join("renamed"), "").expect("marker");
        (inside.join().expect("inside"), at)
    });
    assert!(
        out.stdout.contains("ordinary fd metadata works"),
        "{}",
        out.show()
    );
    w.after(&paths, &before, &out, 10);
    for (p, at) in moved.iter().zip(at_rename) {
        let m = fs::metadata(p).expect("renamed file");
        assert_eq!(
            m.mode() & 0o111,
            0,
            "{} became executable\n{}",
            p.display(),
            out.show()
        );
        assert_eq!(
            state(std::slice::from_ref(p)),
            at,
            "{} changed\n{}",
            p.display(),
            out.show()
        );
    }
}

/// The older times calls (utime, utimes, futimesat: each lays its times out differently) and
/// truncate and mknod, on ordinary files, do what they say.
#[test]
fn older_time_calls_and_truncate_on_ordinary_files_twin() {
    let w = workspace("meta-old-twin");
    let body = r#"
import struct
for n in ("a", "b", "c", "t"):
    open(n, "w").write("0123456789")
def check(what, r):
    print(what, "ok" if r[0] == 0 else "failed %d" % r[1], flush=True)
check("utime", sc(132, b"a", struct.pack("qq", 11, 1000011)))
check("utimes", sc(235, b"b", struct.pack("qqqq", 12, 0, 1000012, 5)))
check("futimesat", sc(261, -100, b"c", struct.pack("qqqq", 13, 0, 1000013, 0)))
check("truncate", sc(76, b"t", 4))
check("mknod fifo", sc(133, b"fifo", 0o10644, 0))
"#;
    let out = py_opts(&w.sb, &[], body);
    for what in ["utime", "utimes", "futimesat", "truncate", "mknod fifo"] {
        assert!(
            out.stdout.contains(&format!("{what} ok")),
            "{what}\n{}",
            out.show()
        );
    }
    for (name, mtime) in [("a", 1000011), ("b", 1000012), ("c", 1000013)] {
        let m = fs::metadata(w.sb.ws.join(name)).expect("file on the host");
        assert_eq!(m.mtime(), mtime, "{name}\n{}", out.show());
    }
    let t = fs::metadata(w.sb.ws.join("t")).expect("t on the host");
    assert_eq!(t.len(), 4, "{}", out.show());
}
