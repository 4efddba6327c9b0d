#!/usr/bin/env bash
# Start-up benchmark (not a test): median wall time of `true`, `cordon run -- true` (full
# default policy) and `bwrap --unshare-all ... true`, side by side, plus the cordon/bwrap ratio.
# Usage: benches/startup.sh [N]   (default N=200). Run as root, it measures as cordon-test.
set -euo pipefail

cd "$(dirname "$0")/.."
N="${1:-200}"

. benches/lib.sh
bench_build release
bench_as_user /tmp/cordon-it cordon-bench

exec python3 - "$N" "$bin" "$run_user" <<'PY'
import os, pwd, shutil, statistics, subprocess, sys, time

n, cordon, run_user = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, "benches")
from benchenv import as_user
ws, env, kw = as_user(run_user)

def once(argv):
    t = time.perf_counter_ns()
    p = subprocess.run(argv, cwd=ws, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    return time.perf_counter_ns() - t, p

cases = [("true", ["true"]), ("cordon run -- true", [cordon, "run", "--", "true"])]
bwrap = shutil.which("bwrap")
bwrap_argv = [bwrap or "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
cases.append(("bwrap --unshare-all ... true", bwrap_argv))

results, problems = {}, []
for name, argv in cases:
    if name.startswith("bwrap") and not bwrap:
        problems.append(f"{name}: bwrap not installed (apt-get install bubblewrap)")
        continue
    try:
        _, p = once(argv)  # warm-up, and a check that it works at all
    except OSError as e:
        problems.append(f"{name}: could not start: {e}")
        continue
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        problems.append(f"{name}: exit {p.returncode}: {err[-1] if err else '(no stderr)'}")
        continue
    times = []
    for _ in range(n):
        dt, p = once(argv)
        if p.returncode != 0:
            problems.append(f"{name}: a timed run exited {p.returncode}; result discarded")
            times = []
            break
        times.append(dt / 1e6)
    if times:
        times.sort()
        results[name] = (statistics.median(times), times[len(times) // 10], times[(len(times) * 9) // 10])

who = run_user or pwd.getpwuid(os.getuid()).pw_name
print(f"start-up wall time, N={n} runs each, as {who} ({os.cpu_count()} cpus)")
print(f"{'command':<32}{'median ms':>11}{'p10 ms':>9}{'p90 ms':>9}")
for name, _ in cases:
    if name in results:
        med, p10, p90 = results[name]
        print(f"{name:<32}{med:>11.2f}{p10:>9.2f}{p90:>9.2f}")
    else:
        print(f"{name:<32}{'n/a':>11}")
c, b = results.get("cordon run -- true"), results.get("bwrap --unshare-all ... true")
if c and b:
    print(f"ratio cordon/bwrap (medians): {c[0] / b[0]:.2f}x   (target <= 1.5x, cordon < 10 ms)")
else:
    print("ratio cordon/bwrap: n/a")
for msg in problems:
    print(f"not measured: {msg}")
PY
