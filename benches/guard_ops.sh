#!/usr/bin/env bash
# Per-operation cost of the path guard for ordinary file creation: create+close of FILES new
# files (timed inside the process, so start-up is not counted), bare and inside `cordon run`,
# and, given a second binary (OLD=path), inside that one too, to compare the guard's cost
# before and after a change. Also times chmod, write-opens of existing files, and a sendmsg+recv
# on a socketpair (chmod and sendmsg are routed too). Medians of REPS. No
# assertions; it prints numbers. Run by hand.
# Usage: [NEW=/path/to/cordon] [OLD=/path/to/old/cordon] benches/guard_ops.sh [FILES=3000] [REPS=5]
# (without NEW, this tree is built in release mode). WHERE=/tmp measures on tmpfs (the
# sandbox's private /tmp and the host's), where the file system's own cost is smallest and the
# guard's share shows best; the default is a workspace on the home file system.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
FILES=${1:-3000}
REPS=${2:-5}

if [ -n "${NEW:-}" ]; then bin=$NEW; else bench_build release; fi
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
import tempfile
n = int(sys.argv[1]); d = tempfile.mkdtemp(dir=sys.argv[2])
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
import socket
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
t = time.perf_counter()
for i in range(n):
    a.sendmsg([b"x"]); b.recv(1)
s = time.perf_counter() - t
print("%.2f %.2f %.2f %.2f" % (c / n * 1e6, m / n * 1e6, w / n * 1e6, s / n * 1e6))
'
as tee "$ws/probe.py" >/dev/null <<<"$probe"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lowest() { sort -n | head -1; }
run() {
    local how=$1
    case $how in
        bare) as bash -c "cd $ws && python3 $ws/probe.py $FILES ${WHERE:-.}" ;;
        *) as bash -c "cd $ws && $how run --no-network -- python3 $ws/probe.py $FILES ${WHERE:-.}" ;;
    esac
}
# The variants take turns, REPS rounds, so drift in the machine's load hits each alike.
names=(bare new)
hows=(bare "$new")
if [ -n "$old" ]; then names+=(old); hows+=("$old"); fi
declare -A res
for _ in $(seq "$REPS"); do
    for i in "${!names[@]}"; do
        res[${names[$i]}]+="$(run "${hows[$i]}")"$'\n'
    done
done
echo "guard per-op cost, $FILES files, median (and lowest) of $REPS rounds"
for n in "${names[@]}"; do
    out=${res[$n]}
    c=$(awk 'NF {print $1}' <<<"$out" | median)
    m=$(awk 'NF {print $2}' <<<"$out" | median)
    w=$(awk 'NF {print $3}' <<<"$out" | median)
    g=$(awk 'NF {print $4}' <<<"$out" | median)
    lc=$(awk 'NF {print $1}' <<<"$out" | lowest)
    printf '%-5s create+close %8s us (lowest %8s)   chmod %8s us   open-existing-for-write %8s us   sendmsg %8s us\n' "$n" "$c" "$lc" "$m" "$w" "$g"
    eval "${n}_c=$c"
done
python3 - "$bare_c" "$new_c" "${old_c:-}" <<'PY'
import sys
bare, new = float(sys.argv[1]), float(sys.argv[2])
print(f"guard cost per create (new): {new - bare:.2f} us ({new / bare:.2f}x bare)")
if sys.argv[3]:
    old = float(sys.argv[3])
    print(f"guard cost per create (old): {old - bare:.2f} us; growth new vs old: {((new - bare) / (old - bare) - 1) * 100:+.1f}%")
PY
as rm -rf "$ws"
