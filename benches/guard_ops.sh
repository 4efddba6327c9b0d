#!/usr/bin/env bash
# Per-operation cost of the path guard for ordinary file creation: create+close of FILES new
# files (timed inside the process, so start-up is not counted), bare and inside `cordon run`,
# and, given a second binary (OLD=path), inside that one too, to compare the guard's cost
# before and after a change. Also times chmod and writes to existing files (routed since
# issue 12). Medians of REPS. No assertions; it prints numbers. Run by hand.
# Usage: [OLD=/path/to/old/cordon] benches/guard_ops.sh [FILES=3000] [REPS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
FILES=${1:-3000}
REPS=${2:-5}

bench_build release
bench_as_user /tmp/cordon-bench cordon
new=$bin
old=""
if [ -n "${OLD:-}" ]; then
    old=/tmp/cordon-bench/cordon-old
    install -m 0755 "$OLD" "$old"
fi
as() { if [ -n "$run_user" ]; then runuser -u "$run_user" -- "$@"; else "$@"; fi; }
home=$(as bash -c 'echo $HOME')
ws="$home/cordon-bench-guard"
as rm -rf "$ws"
as mkdir -p "$ws"

# Prints "create_us chmod_us write_us" per operation for one run.
probe='
import os, sys, time
n = int(sys.argv[1]); d = "d%d" % os.getpid(); os.mkdir(d)
t = time.perf_counter()
for i in range(n):
    os.close(os.open("%s/f%d" % (d, i), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
c = time.perf_counter() - t
t = time.perf_counter()
for i in range(n):
    os.chmod("%s/f%d" % (d, i), 0o600)
m = time.perf_counter() - t
t = time.perf_counter()
for i in range(n):
    os.close(os.open("%s/f%d" % (d, i), os.O_WRONLY))
w = time.perf_counter() - t
print("%.2f %.2f %.2f" % (c / n * 1e6, m / n * 1e6, w / n * 1e6))
'
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() {
    local how=$1
    case $how in
        bare) as bash -c "cd $ws && python3 -c '$probe' $FILES" ;;
        *) as bash -c "cd $ws && $how run --no-network -- python3 -c '$probe' $FILES" ;;
    esac
}
report() {
    local name=$1 how=$2 out c m w
    out=$(for _ in $(seq "$REPS"); do run "$how"; done)
    c=$(awk '{print $1}' <<<"$out" | median)
    m=$(awk '{print $2}' <<<"$out" | median)
    w=$(awk '{print $3}' <<<"$out" | median)
    printf '%-8s create+close %8s us   chmod %8s us   open-existing-for-write %8s us\n' "$name" "$c" "$m" "$w"
    eval "${name}_c=$c"
}
echo "guard per-op cost, $FILES files, median of $REPS"
report bare bare
report new "$new"
[ -n "$old" ] && report old "$old"
python3 - "$bare_c" "$new_c" "${old_c:-}" <<'PY'
import sys
bare, new = float(sys.argv[1]), float(sys.argv[2])
print(f"guard cost per create (new): {new - bare:.2f} us ({new / bare:.2f}x bare)")
if sys.argv[3]:
    old = float(sys.argv[3])
    print(f"guard cost per create (old): {old - bare:.2f} us; growth new vs old: {((new - bare) / (old - bare) - 1) * 100:+.1f}%")
PY
as rm -rf "$ws"
