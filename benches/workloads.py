"""File-heavy workloads bare and in each sandbox, paired and round-robin; run by workloads.sh.

Every side runs the very same `bash -c SCRIPT` in the same workspace. Before each timed run the
workspace is reset untimed by renaming the previous run's output into a trash directory, which
is deleted only after the last run (deleting thousands of files just before a timed run pads it
with the file system's discard work). Each round times every side once, in an order rotated
from round to round; a side's figure is the median over rounds of its time divided by the bare
time of the same round, with the min and max of those ratios.
"""
import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tarfile
import io
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import as_user, srt_settings  # noqa: E402


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


class Env:
    def __init__(self, run_user):
        self.ws, self.env, self.kw = as_user(run_user)
        self.run_user = run_user
        self.uid = os.getuid()
        self.gid = os.getgid()
        if run_user:
            pw = pwd.getpwnam(run_user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def sh(self, script, cwd, check=True, **extra):
        """Untimed helper run as the measuring user."""
        return subprocess.run(["bash", "-c", script], cwd=cwd, env=self.env, check=check,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, **self.kw, **extra)


# --- the sides -------------------------------------------------------------------------------

def sides(cordon, want, cordon_b=""):
    out = [("bare", lambda ws, s: ["bash", "-c", s])]
    out.append(("cordon", lambda ws, s: [cordon, "run", "--no-network", "-w", ws, "--",
                                         "bash", "-c", s]))
    if cordon_b:
        # A second binary (an older build, say), in the same rounds.
        out.append(("cordon-b", lambda ws, s: [cordon_b, "run", "--no-network", "-w", ws, "--",
                                               "bash", "-c", s]))
    skipped = []
    if shutil.which("bwrap"):
        out.append(("bwrap", lambda ws, s: [
            "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--bind", ws, ws, "--unshare-all", "--die-with-parent",
            "--chdir", ws, "bash", "-c", s]))
    else:
        skipped.append("bwrap: not installed (benches/setup.sh)")
    if shutil.which("codex"):
        out.append(("codex", lambda ws, s: ["codex", "sandbox", "-P", ":workspace", "-C", ws,
                                            "--", "bash", "-c", s]))
    else:
        skipped.append("codex: not installed (benches/setup.sh)")
    if shutil.which("srt"):
        def srt(ws, s):
            return ["srt", "-s", srt_settings(ws), "-c", s]
        out.append(("srt", srt))
    else:
        skipped.append("srt: not installed (benches/setup.sh)")
    if want:
        keep = set(want.split(",")) | {"bare"}
        out = [x for x in out if x[0] in keep]
    return out, skipped


# --- the workloads ---------------------------------------------------------------------------

class Workload:
    """name, script (run in `ws`), setup(env, ws) once, reset(env, ws, trash) before each run."""

    heavy = False

    def __init__(self, name, script):
        self.name, self.script = name, script

    def setup(self, e, ws):
        pass

    def reset(self, e, ws, trash):
        pass


def trash_move(ws, rel, trash):
    p = os.path.join(ws, rel)
    if os.path.lexists(p):
        os.rename(p, os.path.join(trash, f"{rel.replace('/', '_')}.{time.monotonic_ns()}"))


def chown_tree(e, top):
    if e.run_user:
        for d, dirs, files in os.walk(top):
            os.chown(d, e.uid, e.gid)
            for f in files:
                os.lchown(os.path.join(d, f), e.uid, e.gid)


def make_tree(e, top, n, dirs, text):
    """`n` small files `top/d{i % dirs}/f{i}.txt` holding `text(i)`, owned by the user."""
    for i in range(n):
        d = os.path.join(top, f"d{i % dirs}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.txt"), "w") as f:
            f.write(text(i))
    chown_tree(e, top)


class GitCommit(Workload):
    def __init__(self, n):
        super().__init__(f"git add+commit {n} files",
                         "cd g && git add -A && git -c user.name=b -c user.email=b@b commit -qm b")
        self.n = n

    def setup(self, e, ws):
        g = os.path.join(ws, "g")
        if not os.path.isdir(g):
            make_tree(e, g, self.n, 20, lambda i: f"file {i}\n" * 5)
        tpl = os.path.join(ws, "git-template")
        if not os.path.isdir(tpl):
            e.sh("git init -q git-template-tmp && mv git-template-tmp/.git git-template "
                 "&& rmdir git-template-tmp", ws)

    def reset(self, e, ws, trash):
        trash_move(ws, "g/.git", trash)
        e.sh("cp -a git-template g/.git", ws)


class TarX(Workload):
    def __init__(self, n):
        super().__init__(f"tar xf {n} files", "mkdir t && cd t && tar xf ../files.tar")
        self.n = n

    def setup(self, e, ws):
        p = os.path.join(ws, "files.tar")
        if os.path.exists(p):
            return
        with tarfile.open(p, "w") as t:
            for i in range(self.n):
                data = (f"file {i}\n" * 20).encode()
                info = tarfile.TarInfo(f"d{i % 50}/file{i}.txt")
                info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
                t.addfile(info, io.BytesIO(data))
        if e.run_user:
            os.chown(p, e.uid, e.gid)

    def reset(self, e, ws, trash):
        trash_move(ws, "t", trash)


class Npm(Workload):
    """`npm install --offline` of local tarballs (made here with `npm pack`): no registry."""

    def __init__(self, n):
        super().__init__(f"npm install --offline, {n} packages",
                         "cd npmproj && npm_config_cache=$PWD/../.npm-cache npm install "
                         "--offline --no-audit --no-fund --loglevel=error >/dev/null")
        self.n = n

    def setup(self, e, ws):
        proj = os.path.join(ws, "npmproj")
        if os.path.isdir(proj):
            return
        src, tgz = os.path.join(ws, "npm-src"), os.path.join(ws, "npm-tgz")
        os.makedirs(tgz, exist_ok=True)
        deps = {}
        for i in range(self.n):
            d = os.path.join(src, f"p{i}")
            os.makedirs(os.path.join(d, "lib"), exist_ok=True)
            with open(os.path.join(d, "package.json"), "w") as f:
                f.write(f'{{"name": "bench-p{i}", "version": "1.0.0", "main": "lib/f0.js"}}\n')
            for j in range(20):
                with open(os.path.join(d, "lib", f"f{j}.js"), "w") as f:
                    f.write(f"module.exports = function f{j}(x) {{ return x + {i * j}; }};\n")
            deps[f"bench-p{i}"] = f"file:../npm-tgz/bench-p{i}-1.0.0.tgz"
        os.makedirs(proj, exist_ok=True)
        import json
        with open(os.path.join(proj, "package.json"), "w") as f:
            json.dump({"name": "bench", "version": "1.0.0", "private": True,
                       "dependencies": deps}, f)
        chown_tree(e, src)
        chown_tree(e, tgz)
        chown_tree(e, proj)
        e.sh("for p in npm-src/*; do (cd npm-tgz && npm_config_cache=$PWD/../.npm-cache "
             "npm pack --silent ../$p >/dev/null); done", ws)

    def reset(self, e, ws, trash):
        trash_move(ws, "npmproj/node_modules", trash)
        trash_move(ws, "npmproj/package-lock.json", trash)


class Venv(Workload):
    heavy = True

    def __init__(self):
        super().__init__("python3 -m venv", "/usr/bin/python3 -m venv v")

    def reset(self, e, ws, trash):
        trash_move(ws, "v", trash)


class Cargo(Workload):
    heavy = True

    def __init__(self, n):
        super().__init__(f"cargo build, {n}-crate workspace",
                         "cd cw && CARGO_HOME=$PWD/../.cargo-home cargo build --offline -q")
        self.n = n

    def setup(self, e, ws):
        cw = os.path.join(ws, "cw")
        if os.path.isdir(cw):
            return
        members = [f"c{i}" for i in range(self.n)]
        os.makedirs(cw)
        with open(os.path.join(cw, "Cargo.toml"), "w") as f:
            f.write("[workspace]\nresolver = \"2\"\nmembers = [%s]\n"
                    % ", ".join(f'"{m}"' for m in members))
        for i, m in enumerate(members):
            os.makedirs(os.path.join(cw, m, "src"))
            dep = f'c{i - 1} = {{ path = "../c{i - 1}" }}\n' if i % 4 else ""
            with open(os.path.join(cw, m, "Cargo.toml"), "w") as f:
                f.write(f'[package]\nname = "{m}"\nversion = "0.1.0"\nedition = "2021"\n'
                        f"\n[dependencies]\n{dep}")
            body = "".join(f"pub fn f{j}(x: u64) -> u64 {{ x.wrapping_mul({j + i + 1}) ^ {j} }}\n"
                           for j in range(30))
            with open(os.path.join(cw, m, "src", "lib.rs"), "w") as f:
                f.write(body)
        chown_tree(e, cw)
        # The lock file is written once, untimed, so the timed builds only compile.
        e.sh("cd cw && CARGO_HOME=$PWD/../.cargo-home cargo generate-lockfile --offline -q", ws)

    def reset(self, e, ws, trash):
        trash_move(ws, "cw/target", trash)


class Rg(Workload):
    def __init__(self, n):
        super().__init__(f"rg over {n} files", "rg -c needle rgtree >/dev/null; true")
        self.n = n

    def setup(self, e, ws):
        top = os.path.join(ws, "rgtree")
        if os.path.isdir(top):
            return
        make_tree(e, top, self.n, 200,
                  lambda i: "hay " * 30 + ("needle\n" if i % 97 == 0 else "\n"))


class GitStatus(Workload):
    def __init__(self, n):
        super().__init__(f"git status, {n} files", "cd gs && git status --porcelain >/dev/null")
        self.n = n

    def setup(self, e, ws):
        gs = os.path.join(ws, "gs")
        if os.path.isdir(gs):
            return
        make_tree(e, gs, self.n, 20, lambda i: f"file {i}\n")
        e.sh("cd gs && git init -q && git add -A && "
             "git -c user.name=b -c user.email=b@b commit -qm b && git status -s >/dev/null", ws)


# --- measuring -------------------------------------------------------------------------------

def timed(e, argv, ws, hwm=False):
    """(seconds, returncode, stderr tail, supervisor VmHWM kB or None)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=ws, env=e.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **e.kw)
    peak = [None]
    stop = threading.Event()

    def sample():
        path = f"/proc/{p.pid}/status"
        while not stop.wait(0.02):
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = int(line.split()[1])
            except OSError:
                return

    th = None
    if hwm:
        th = threading.Thread(target=sample, daemon=True)
        th.start()
    _, err = p.communicate()
    dt = time.perf_counter() - t0
    stop.set()
    if th:
        th.join()
    return dt, p.returncode, err.decode(errors="replace").strip()[-300:], peak[0]


def run_workload(e, w, ws, trash, side_list, reps, log):
    w.setup(e, ws)
    results = {name: [] for name, _ in side_list}
    broken, hwm = {}, None
    # Warm-up (untimed): every side once, which also shows whether it works at all.
    for name, wrap in side_list:
        w.reset(e, ws, trash)
        dt, rc, err, peak = timed(e, wrap(ws, w.script), ws, hwm=(name == "cordon"))
        if name == "cordon":
            hwm = peak
        if rc != 0:
            broken[name] = f"exit {rc}: {err.splitlines()[-1] if err else ''}"
    live = [(n, f) for n, f in side_list if n not in broken]
    if "bare" in broken:
        return results, broken, hwm
    l0 = load()
    for r in range(reps):
        k = r % len(live)
        order = live[k:] + live[:k]
        for name, wrap in order:
            w.reset(e, ws, trash)
            dt, rc, err, _ = timed(e, wrap(ws, w.script), ws)
            if rc != 0:
                broken[name] = f"exit {rc} in round {r + 1}: {err.splitlines()[-1] if err else ''}"
            results[name].append(dt)
    w.reset(e, ws, trash)
    log(f"  {w.name}: load {l0} -> {load()}")
    return results, broken, hwm


def ratio_text(times, bare):
    rs = [t / b for t, b in zip(times, bare)]
    if not rs:
        return "n/a"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def ops_bench(e, ops, side_list, ws, trash, rounds, n, log):
    """Per-operation (median, mean) in µs bare and in cordon, paired per round."""
    per = {}
    sel = [s for s in side_list if s[0] in ("bare", "cordon", "cordon-b")]
    for r in range(rounds):
        order = sel if r % 2 == 0 else sel[::-1]
        for name, wrap in order:
            d = os.path.join(ws, "opsdir")
            trash_move(ws, "opsdir", trash)
            os.mkdir(d)
            if e.run_user:
                os.chown(d, e.uid, e.gid)
            p = subprocess.run(wrap(ws, f"{ops} opsdir {n}"), cwd=ws, env=e.env,
                               stdin=subprocess.DEVNULL, capture_output=True, **e.kw)
            if p.returncode != 0:
                log(f"  ops in {name} failed: {p.stderr.decode(errors='replace')[-200:]}")
                continue
            for line in p.stdout.decode().splitlines():
                op, med, mean = line.split()
                per.setdefault(op, {}).setdefault(name, []).append((float(med), float(mean)))
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bin-b", default="", help="a second cordon binary measured alongside")
    ap.add_argument("--user", default="")
    ap.add_argument("--ops", default="")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--heavy-reps", type=int, default=3)
    ap.add_argument("--only", default="", help="workload name prefixes, comma-separated")
    ap.add_argument("--sides", default="", help="e.g. cordon,bwrap (bare is always measured)")
    ap.add_argument("--tmpfs", default="", help="a tmpfs directory for the tmpfs workspace")
    args = ap.parse_args()

    e = Env(args.user)
    side_list, skipped = sides(args.bin, args.sides, args.bin_b)
    lines = []

    def log(s):
        print(s, file=sys.stderr, flush=True)

    print(f"cordon workloads: {time.strftime('%Y-%m-%d %H:%M:%S')}, kernel {os.uname().release}, "
          f"{os.cpu_count()} CPUs, load before {open('/proc/loadavg').read().split()[:3]}")
    for s in skipped:
        print(f"SKIP {s}")

    fs = subprocess.run(["stat", "-f", "-c", "%T", e.ws], capture_output=True,
                        text=True).stdout.strip() or "disk"
    spaces = [("ext4" if fs == "ext2/ext3" else fs, e.ws)]
    if args.tmpfs:
        spaces.append(("tmpfs", args.tmpfs))
    else:
        print("SKIP tmpfs workspace: needs root (to mount it)")

    work = []
    for fsname, ws in spaces:
        work += [(fsname, ws, GitCommit(2000)), (fsname, ws, TarX(5000))]
    ws0 = spaces[0][1]
    if shutil.which("npm"):
        work.append((spaces[0][0], ws0, Npm(40)))
    else:
        print("SKIP npm install: npm is not installed")
    work.append((spaces[0][0], ws0, Venv()))
    if shutil.which("cargo"):
        work.append((spaces[0][0], ws0, Cargo(20)))
    else:
        print("SKIP cargo build: cargo is not on the measuring user's PATH")
    if shutil.which("rg"):
        work.append((spaces[0][0], ws0, Rg(20000)))
    else:
        print("SKIP rg: ripgrep is not installed (benches/setup.sh)")
    work.append((spaces[0][0], ws0, GitStatus(2000)))
    if args.only:
        pre = args.only.split(",")
        work = [x for x in work if any(x[2].name.startswith(p) or p == x[0] for p in pre)]

    names = [n for n, _ in side_list]
    rows, notes, hwms = [], [], []
    trashes = []
    for fsname, ws, w in work:
        trash = os.path.join(ws, ".bench-trash")
        os.makedirs(trash, exist_ok=True)
        if e.run_user:
            os.chown(trash, e.uid, e.gid)
        trashes.append(trash)
        l0 = load()
        res, broken, hwm = run_workload(e, w, ws, trash, side_list,
                                        args.heavy_reps if w.heavy else args.reps, log)
        if hwm:
            hwms.append(hwm)
        bare = res.get("bare", [])
        cells = []
        for n in names:
            if n in broken:
                cells.append("failed")
                notes.append(f"{w.name} ({fsname}) in {n}: {broken[n]}")
            elif res[n]:
                cells.append(f"{statistics.median(res[n]):.3f}")
            else:
                cells.append("")
        ratios = [("n/a" if n in broken else ratio_text(res[n], bare)) for n in names[1:]]
        rows.append((f"{w.name} ({fsname})", cells, ratios, f"{l0}->{load()}",
                     len(bare)))

    ops_rows = []
    if args.ops and "cordon" in names:
        ws = spaces[-1][1]
        trash = os.path.join(ws, ".bench-trash")
        os.makedirs(trash, exist_ok=True)
        trashes.append(trash)
        # In the workspace: the sandboxes have a /tmp of their own.
        ops = os.path.join(ws, ".bench-ops")
        shutil.copy(args.ops, ops)
        os.chmod(ops, 0o755)
        l0 = load()
        per = ops_bench(e, ops, side_list, ws, trash, 3, 2000, log)
        def med(runs, i):
            """The median over rounds of each round's median (i=0) or mean (i=1)."""
            return statistics.median(r[i] for r in runs) if runs else None

        for op, by in per.items():
            b, c, cb = (by.get(k, []) for k in ("bare", "cordon", "cordon-b"))
            ops_rows.append((op, [med(b, 0), med(b, 1)], [med(c, 0), med(c, 1)],
                             [med(cb, 0), med(cb, 1)] if cb else None))
        ops_fs = spaces[-1][0]
        ops_load = f"{l0}->{load()}"

    hdr = ["workload"] + [f"{n} s" for n in names] + [f"{n}/bare" for n in names[1:]] + \
        ["load", "n"]
    print()
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for name, cells, ratios, ld, n in rows:
        print("| " + " | ".join([name] + cells + ratios + [ld, str(n)]) + " |")
    print("\nratios: median of per-round ratios to bare (min-max); times: medians in seconds")
    if ops_rows:
        print(f"\nper operation ({ops_fs}, 2000 each, µs median / mean, 3 paired rounds, load "
              f"{ops_load}; a workload pays the mean):")
        with_b = any(r[3] is not None for r in ops_rows)
        print("| op | bare µs | cordon µs | added µs |" + (" cordon-b µs | added µs |" if with_b else ""))
        print("|---|---|---|---|" + ("---|---|" if with_b else ""))

        def pair(x):
            return "n/a" if None in x else f"{x[0]:.1f} / {x[1]:.1f}"

        def added(x, b):
            return "n/a" if None in x or None in b else pair([x[0] - b[0], x[1] - b[1]])

        for op, b, c, cb in ops_rows:
            extra = f" {pair(cb)} | {added(cb, b)} |" if cb is not None else (" | |" if with_b else "")
            print(f"| {op} | {pair(b)} | {pair(c)} | {added(c, b)} |{extra}")
    if hwms:
        print(f"\ncordon supervisor peak RSS (VmHWM): {min(hwms) / 1024:.1f}-{max(hwms) / 1024:.1f} MiB")
    for n in notes:
        print(f"note: {n}")
    print(f"load after {open('/proc/loadavg').read().split()[:3]}")
    # The trash goes last, once nothing is timed any more.
    for t in set(trashes):
        shutil.rmtree(t, ignore_errors=True)


if __name__ == "__main__":
    main()
