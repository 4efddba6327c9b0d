#!/usr/bin/env bash
# `cordon exec` benchmark (not a test): median wall time of `cordon exec NAME -- true` into a
# running named sandbox against `cordon run -- true`, in the same run, and the ratio.
# Usage: benches/exec.sh [N]   (default N=30). Run as root, it measures as cordon-test.
set -euo pipefail

cd "$(dirname "$0")/.."
N="${1:-30}"

. benches/lib.sh
bench_build release
bench_as_user /tmp/cordon-it cordon-bench

exec python3 - "$N" "$bin" "$run_user" <<'PY'
import os, statistics, subprocess, sys, time

n, cordon, run_user = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, "benches")
from benchenv import as_user
ws, env, kw = as_user(run_user)
name = "bench-exec-%d" % os.getpid()

def cordon_cmd(*args, **extra):
    return subprocess.run([cordon, *args], cwd=ws, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw, **extra)

def once(argv):
    t = time.perf_counter_ns()
    p = cordon_cmd(*argv)
    return time.perf_counter_ns() - t, p

bg = subprocess.Popen([cordon, "run", "--name", name, "--", "sleep", "infinity"], cwd=ws, env=env,
                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
try:
    deadline = time.time() + 30
    while cordon_cmd("exec", name, "--", "true").returncode != 0:
        if time.time() > deadline or bg.poll() is not None:
            sys.exit("benches/exec.sh: the named sandbox did not start")
        time.sleep(0.05)
    cases = [("cordon exec NAME -- true", ["exec", name, "--", "true"]),
             ("cordon run -- true", ["run", "--", "true"])]
    results = {}
    for label, argv in cases:
        once(argv)  # warm-up
        times = []
        for _ in range(n):
            dt, p = once(argv)
            if p.returncode != 0:
                sys.exit("benches/exec.sh: %s failed: %s" % (label, p.stderr.decode(errors="replace")))
            times.append(dt)
        results[label] = statistics.median(times) / 1e6
        print("%-28s median %8.2f ms  (N=%d)" % (label, results[label], n))
    e, r = results["cordon exec NAME -- true"], results["cordon run -- true"]
    print("exec/run ratio: %.2f (exec is %.1fx faster)" % (e / r, r / e))
finally:
    cordon_cmd("rm", "--force", name)
    bg.wait(timeout=30)
PY
