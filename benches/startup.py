"""Start-up benchmark (not a test): the wall time of running `true` bare, in `cordon run`
(default policy, with the network door; and with --no-network), in `cordon exec` into a
running named sandbox, and in bwrap, Codex's and srt's sandboxes when they are installed.

Rounds are paired: every round runs each side once, in an order rotated from round to round,
and ratios are taken within a round (median of the per-round ratios, with min-max), so load
that comes and goes hits every side alike. The load is printed before and after.

Usage (from benches/startup.sh): startup.py ROUNDS CORDON RUN_USER
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import as_user, srt_settings  # noqa: E402


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    rounds, cordon, run_user = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ws, env, kw = as_user(run_user)
    name = "bench-start-%d" % os.getpid()

    def run(argv):
        t = time.perf_counter_ns()
        p = subprocess.run(argv, cwd=ws, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, **kw)
        return (time.perf_counter_ns() - t) / 1e6, p

    sides = [("bare", ["true"]),
             ("cordon run", [cordon, "run", "--", "true"]),
             ("cordon run --no-network", [cordon, "run", "--no-network", "--", "true"]),
             ("cordon exec", [cordon, "exec", name, "--", "true"])]
    missing = []
    if shutil.which("bwrap"):
        sides.append(("bwrap", ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
                                "--proc", "/proc", "--tmpfs", "/tmp", "--bind", ws, ws,
                                "--die-with-parent", "true"]))
    else:
        missing.append("bwrap: not installed (benches/setup.sh)")
    if shutil.which("codex"):
        sides.append(("codex", ["codex", "sandbox", "-P", ":workspace", "-C", ws, "--", "true"]))
    else:
        missing.append("codex: not installed (benches/setup.sh)")
    if shutil.which("srt"):
        sides.append(("srt", ["srt", "-s", srt_settings(ws, kw), "-c", "true"]))
    else:
        missing.append("srt: not installed (benches/setup.sh)")

    bg = subprocess.Popen([cordon, "run", "--name", name, "--", "sleep", "infinity"], cwd=ws,
                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, **kw)
    try:
        deadline = time.time() + 30
        while run(sides[3][1])[1].returncode != 0:
            if time.time() > deadline or bg.poll() is not None:
                sys.exit("benches/startup.sh: the named sandbox for `cordon exec` did not start")
            time.sleep(0.05)
        live, broken = [], {}
        for label, argv in sides:
            _, p = run(argv)  # warm-up, and proof that the side works at all
            if p.returncode == 0:
                live.append((label, argv))
            else:
                err = p.stderr.decode(errors="replace").strip().splitlines()
                broken[label] = "exit %d: %s" % (p.returncode, err[-1] if err else "(no stderr)")
        l0 = load()
        times = {label: [] for label, _ in live}
        for r in range(rounds):
            k = r % len(live)
            for label, argv in live[k:] + live[:k]:
                dt, p = run(argv)
                if p.returncode != 0:
                    broken[label] = "exit %d in round %d" % (p.returncode, r + 1)
                times[label].append(dt)
        l1 = load()
    finally:
        subprocess.run([cordon, "rm", "--force", name], cwd=ws, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, **kw)
        bg.wait(timeout=30)

    def ratio(a, b):
        if a not in times or b not in times:
            return "n/a"
        rs = [x / y for x, y in zip(times[a], times[b])]
        return "%.2fx (%.2f-%.2f)" % (statistics.median(rs), min(rs), max(rs))

    print("start-up of `true`, %d paired rounds (rotated order), as %s, %d CPUs; load before %s, after %s"
          % (rounds, run_user or "the current user", os.cpu_count(), l0, l1))
    print("%-26s%11s%9s%9s%24s%24s" % ("side", "median ms", "min", "max", "/ bwrap", "/ bare"))
    for label, _ in sides:
        if label in broken or label not in times:
            print("%-26s  not measured: %s" % (label, broken.get(label, "?")))
            continue
        t = times[label]
        print("%-26s%11.2f%9.2f%9.2f%24s%24s" % (label, statistics.median(t), min(t), max(t),
                                                 ratio(label, "bwrap"), ratio(label, "bare")))
    print("targets: cordon run <= 1.25x bwrap (paired), cordon exec <= 3 ms")
    for m in missing:
        print("not measured: " + m)


if __name__ == "__main__":
    main()
