#!/usr/bin/env bash
# What routing read-only opens through the path guard costs (it happens only when some
# `ask_read` path or `--fs strict` is configured): `git status` and `find | xargs cat` over a
# tree of small files, bare, inside `cordon run`, and inside `cordon run` with an ask_read
# (elsewhere: nothing is asked, every open is looked at and let through). Medians of REPS.
# No assertions; it prints ratios. Runs as cordon-test when started as root.
# Usage: benches/fsask.sh [FILES=2000] [REPS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-2000}
REPS=${2:-3}

cargo build --release -q
BIN=/tmp/cordon-bench/cordon
mkdir -p /tmp/cordon-bench && cp target/release/cordon "$BIN" && chmod 755 /tmp/cordon-bench "$BIN"

if [ "$(id -u)" -eq 0 ]; then
    id cordon-test >/dev/null 2>&1 || useradd -m -s /bin/bash cordon-test
    AS=(runuser -u cordon-test --)
    HOMEDIR=/home/cordon-test
else
    AS=()
    HOMEDIR=$HOME
fi
for tool in git find xargs python3; do
    command -v "$tool" >/dev/null || { echo "cannot measure: $tool is not installed"; exit 0; }
done

WS="$HOMEDIR/cordon-bench-fsask"
POLICY="$HOMEDIR/cordon-bench-fsask.toml"
"${AS[@]}" rm -rf "$WS"
"${AS[@]}" mkdir -p "$WS" "$HOMEDIR/cordon-bench-hidden"
"${AS[@]}" bash -c "printf '[filesystem]\nask_read = [\"~/cordon-bench-hidden\"]\n' > $POLICY"
"${AS[@]}" python3 - "$WS" "$FILES" <<'PY'
import os, sys
ws, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = f"{ws}/src/d{i % 40}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}.txt", "w") as f:
        f.write(f"line {i}\n" * 10)
PY
# The repository is made on the host: `git init` inside the workspace is refused (protected .git).
"${AS[@]}" bash -c "cd $WS && git init -q . && git add -A && git -c user.name=b -c user.email=b@b commit -qm b"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# median wall seconds of SCRIPT: bare, in cordon, or in cordon with the ask_read policy
measure() {
    local mode=$1 script=$2 ts=()
    for _ in $(seq "$REPS"); do
        local t0 t1
        t0=$(date +%s.%N)
        case $mode in
            bare) "${AS[@]}" bash -c "cd $WS && $script" </dev/null >/dev/null ;;
            cordon) "${AS[@]}" bash -c "cd $WS && $BIN run --no-network -- bash -c '$script'" </dev/null >/dev/null ;;
            ask) "${AS[@]}" bash -c "cd $WS && $BIN run --no-network -p $POLICY -- bash -c '$script'" </dev/null >/dev/null ;;
        esac
        t1=$(date +%s.%N)
        ts+=("$(python3 -c "print($t1 - $t0)")")
    done
    printf '%s\n' "${ts[@]}" | median
}

printf '%-26s %8s %9s %9s %10s %10s\n' "work ($FILES files)" "bare s" "cordon s" "ask s" "ask/cordon" "ask/bare"
for case in "git status:git status --porcelain" "find | xargs cat:find src -type f | xargs cat" "true (start-up):true"; do
    name=${case%%:*}; script=${case#*:}
    bare=$(measure bare "$script")
    inside=$(measure cordon "$script")
    ask=$(measure ask "$script")
    printf '%-26s %8.3f %9.3f %9.3f %9.2fx %9.2fx\n' "$name" "$bare" "$inside" "$ask" \
        "$(python3 -c "print($ask / $inside)")" "$(python3 -c "print($ask / $bare)")"
done
"${AS[@]}" rm -rf "$WS" "$POLICY" "$HOMEDIR/cordon-bench-hidden"
