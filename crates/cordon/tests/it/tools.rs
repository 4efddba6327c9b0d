//! Legitimate work inside the sandbox: the twins of the attack tests. Builds, package
//! managers and terminals must keep working, with caches in the private layer.
use crate::common;

use common::*;
use std::process::Stdio;

#[test]
fn c_project_with_make_and_gcc() {
    let sb = Sandbox::new("c-build");
    if !sb.has_tool("gcc") || !sb.has_tool("make") {
        skip(
            "tools::c_project_with_make_and_gcc",
            "gcc or make not installed (.ci/run installs build-essential)",
        );
        return;
    }
    sb.write_host(
        &sb.ws.join("main.c"),
        "#include <stdio.h>\nint main(void){puts(\"hello from c\");return 0;}\n",
    );
    sb.write_host(
        &sb.ws.join("Makefile"),
        "hello: main.c\n\tgcc -O1 -o hello main.c\n",
    );
    let out = sb.sh("make && ./hello");
    assert_eq!(
        out.code,
        0,
        "make + gcc must work in the workspace\n{}",
        out.show()
    );
    assert!(out.stdout.contains("hello from c"), "{}", out.show());
    assert!(
        sb.ws.join("hello").exists(),
        "the built binary must persist on the host\n{}",
        out.show()
    );
}

#[test]
fn cargo_build_tiny_crate() {
    let sb = Sandbox::new("cargo-build");
    if !sb.has_tool("cargo") || sb.host_sh("cargo --version").code != 0 {
        skip(
            "tools::cargo_build_tiny_crate",
            "cargo is not runnable by the test user (rustup toolchain under /root is not shared); Rust build not checked",
        );
        return;
    }
    // Its own workspace: the test home may lie inside cordon's checkout, whose Cargo.toml
    // cargo would otherwise take for this crate's workspace.
    sb.write_host(
        &sb.ws.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\n[workspace]\n",
    );
    sb.write_host(
        &sb.ws.join("src/main.rs"),
        "fn main() { println!(\"hello from rust\"); }\n",
    );
    let out = sb.sh("CARGO_HOME=~/.cargo-private cargo run --offline -q");
    assert_eq!(
        out.code,
        0,
        "cargo build of a tiny crate must work\n{}",
        out.show()
    );
    assert!(out.stdout.contains("hello from rust"), "{}", out.show());
    assert!(
        sb.ws.join("target").is_dir(),
        "target/ must persist in the workspace"
    );
    assert_absent(&sb.home.join(".cargo-private"), &out);
}

/// A hand-made wheel (a zip with dist-info), so no build backend or network is needed.
const MAKE_WHEEL: &str = r#"
import zipfile, hashlib, base64
files = {
  "cordonitpkg/__init__.py": b"VALUE = 'wheel-installed-ok'\n",
  "cordonitpkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: cordonitpkg\nVersion: 0.1\n",
  "cordonitpkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
rec = []
for n, d in files.items():
    h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
    rec.append(f"{n},sha256={h},{len(d)}")
rec.append("cordonitpkg-0.1.dist-info/RECORD,,")
with zipfile.ZipFile("cordonitpkg-0.1-py3-none-any.whl", "w") as z:
    for n, d in files.items():
        z.writestr(n, d)
    z.writestr("cordonitpkg-0.1.dist-info/RECORD", "\n".join(rec) + "\n")
"#;

#[test]
fn python_venv_and_local_wheel() {
    let sb = Sandbox::new("py-venv");
    if sb.host_sh("python3 -c 'import venv, ensurepip'").code != 0 {
        skip(
            "tools::python_venv_and_local_wheel",
            "python3 venv/ensurepip missing (.ci/run installs python3-venv)",
        );
        return;
    }
    sb.write_host(&sb.ws.join("make_wheel.py"), MAKE_WHEEL);
    let before = sb.home_snapshot();
    let out = sb.sh("set -e; python3 make_wheel.py; python3 -m venv venv; \
         venv/bin/pip install -q --no-index ./cordonitpkg-0.1-py3-none-any.whl; \
         venv/bin/python -c 'import cordonitpkg; print(cordonitpkg.VALUE)'");
    assert_eq!(
        out.code,
        0,
        "python3 -m venv + pip install of a local wheel must work\n{}",
        out.show()
    );
    assert!(out.stdout.contains("wheel-installed-ok"), "{}", out.show());
    let installed = sb
        .host_sh("ls venv/lib/python3*/site-packages/cordonitpkg/__init__.py")
        .code;
    assert_eq!(
        installed, 0,
        "the venv must persist in the workspace on the host"
    );
    assert_unchanged(
        "home after pip (cache must be private)",
        &before,
        &sb.home_snapshot(),
        &out,
    );
}

#[test]
fn npm_with_cache_in_home() {
    let sb = Sandbox::new("npm");
    if !sb.has_tool("npm") || !sb.has_tool("node") {
        skip(
            "tools::npm_with_cache_in_home",
            "node/npm not installed (.ci/run installs them)",
        );
        return;
    }
    sb.write_host(
        &sb.ws.join("local-pkg/package.json"),
        "{\"name\":\"cordonit-local-pkg\",\"version\":\"1.0.0\",\"main\":\"index.js\"}\n",
    );
    sb.write_host(
        &sb.ws.join("local-pkg/index.js"),
        "module.exports = 'npm-local-ok';\n",
    );
    let before = sb.home_snapshot();
    let out = sb.sh("set -e; export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false; \
         (cd local-pkg && npm pack --silent); mkdir app && cd app && npm init -y >/dev/null; \
         npm install --offline --no-audit --no-fund ../local-pkg/cordonit-local-pkg-1.0.0.tgz; \
         node -e 'console.log(require(\"cordonit-local-pkg\"))'; test -d ~/.npm && echo CACHE-USED");
    assert_eq!(
        out.code,
        0,
        "npm init/pack/install of a local package must work\n{}",
        out.show()
    );
    assert!(out.stdout.contains("npm-local-ok"), "{}", out.show());
    assert!(
        out.stdout.contains("CACHE-USED"),
        "npm must have used its cache in ~/.npm\n{}",
        out.show()
    );
    assert!(
        sb.ws
            .join("app/node_modules/cordonit-local-pkg/package.json")
            .exists(),
        "node_modules must persist in the workspace\n{}",
        out.show()
    );
    assert_absent(&sb.home.join(".npm"), &out);
    assert_unchanged("home after npm", &before, &sb.home_snapshot(), &out);
}

#[test]
fn tui_in_pty_gets_window_size() {
    let sb = Sandbox::new("pty");
    if !sb.has_tool("script") {
        skip(
            "tools::tui_in_pty_gets_window_size",
            "`script` (util-linux) not installed",
        );
        return;
    }
    sb.write_host(
        &sb.ws.join("sti.py"),
        "import fcntl, termios\ntry:\n    fcntl.ioctl(0, termios.TIOCSTI, b'x')\n    print('STI-OK')\nexcept OSError as e:\n    print('STI-ERRNO', e.errno)\n",
    );
    let inner = format!(
        "stty cols 100 rows 30; {} run -- bash -c 'tput cols; stty size; test -t 0 && test -t 1 && echo BOTH-TTY; python3 sti.py; exit 5'",
        cordon_bin().display()
    );
    let mut cmd = sb.user_command("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    let out = exec(cmd, RUN_TIMEOUT);
    let text = out.stdout.replace('\r', "");
    assert_eq!(
        out.code,
        5,
        "exit status must pass through the pty relay\n{}",
        out.show()
    );
    assert!(
        // `script` turns its own end of input into a byte on the (raw) pty, echoed as `^@`.
        text.lines()
            .any(|l| l.trim().trim_start_matches("^@") == "100"),
        "tput cols must see the outer width 100\n{}",
        out.show()
    );
    assert!(
        text.lines().any(|l| l.trim() == "30 100"),
        "stty size must see 30 100\n{}",
        out.show()
    );
    assert!(
        text.contains("BOTH-TTY"),
        "the command must get a terminal\n{}",
        out.show()
    );
    assert!(
        text.contains("STI-ERRNO 1") && !text.contains("STI-OK"),
        "TIOCSTI on the sandbox pty must fail with EPERM\n{}",
        out.show()
    );
}

#[test]
fn tmux_tui_runs_inside() {
    let sb = Sandbox::new("tmux");
    if !sb.has_tool("tmux") {
        skip("tools::tmux_tui_runs_inside", "tmux not installed");
        return;
    }
    // A full-screen program inside the sandbox: tmux's own server lives in the private /tmp.
    let out = sb.sh("export TERM=xterm; tmux -L it new-session -d -x 90 -y 20 'echo inside-tmux; sleep 5' && sleep 0.5 && \
         tmux -L it capture-pane -p | head -3; tmux -L it kill-server");
    assert_eq!(
        out.code,
        0,
        "tmux must run inside the sandbox\n{}",
        out.show()
    );
    assert!(out.stdout.contains("inside-tmux"), "{}", out.show());
}

#[test]
fn works_with_only_home_and_path() {
    let sb = Sandbox::new("min-env");
    let mut cmd = sb.cordon_command();
    cmd.env_clear()
        .env("HOME", &sb.home)
        .env("PATH", TEST_PATH)
        .args(["run", "--", "bash", "-c"])
        .arg(format!("echo {RAN}; true"));
    let out = assert_ran(exec(cmd, RUN_TIMEOUT));
    assert_eq!(
        out.code,
        0,
        "`cordon run -- bash -c true` must work with only HOME and PATH set\n{}",
        out.show()
    );
}

#[test]
fn terminal_clipboard_and_title_report_sequences_filtered() {
    // Sequences that make the person's real terminal act (OSC 52 clipboard write, title
    // report request, ENQ) never reach it; ordinary colour output does.
    let sb = Sandbox::new("osc52");
    if !sb.has_tool("script") {
        skip(
            "tools::terminal_clipboard_and_title_report_sequences_filtered",
            "`script` (util-linux) not installed",
        );
        return;
    }
    let inner = format!(
        "{} run -- printf 'BEFORE\\033]52;c;ZXZpbA==\\007\\033[21t\\005\\033[31mRED\\033[0mAFTER\\n'",
        cordon_bin().display()
    );
    let mut cmd = sb.user_command("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null());
    let out = exec(cmd, RUN_TIMEOUT);
    assert!(
        out.stdout.contains("BEFORE") && out.stdout.contains("AFTER"),
        "{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("]52;"),
        "OSC 52 reached the outer terminal\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("\u{1b}[21t"),
        "a title report request reached the outer terminal\n{}",
        out.show()
    );
    assert!(
        !out.stdout.contains('\u{5}'),
        "ENQ reached the outer terminal\n{}",
        out.show()
    );
    assert!(
        out.stdout.contains("\u{1b}[31mRED"),
        "ordinary colour output must pass\n{}",
        out.show()
    );
}
