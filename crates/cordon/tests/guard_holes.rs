//! A protected file is protected whatever name reaches it (issue 12): magic links, `O_PATH`
//! descriptors, hard links old and new, names in dependency trees, metadata, and unix sockets
//! (bind, connect, datagrams) when the places they live in are shared with the host. Every
//! attack is checked on the HOST afterwards (bytes, mode, whether `git status` there runs
//! anything); every one has its legitimate twin.
mod common;

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

/// Bytes and mode of each watched host file.
fn state(paths: &[PathBuf]) -> Vec<Option<(Vec<u8>, u32)>> {
    paths
        .iter()
        .map(|p| {
            let m = fs::symlink_metadata(p).ok()?;
            Some((fs::read(p).unwrap_or_default(), m.mode()))
        })
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

    fn after(&self, paths: &[PathBuf], before: &[Option<(Vec<u8>, u32)>], out: &Out, n: usize) {
        let after = state(paths);
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(
                after[i],
                before[i],
                "{}: bytes or mode changed on the HOST\n{}",
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
