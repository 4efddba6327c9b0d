#!/usr/bin/env bash
# What the path guard (every create/write-open, rename, unlink goes through cordon) costs on
# real work: a C build with make, unpacking a tarball of small files, and `git add`+`commit`
# of them — each bare and inside `cordon run`, in the same run, medians of REPS. No
# assertions; it prints ratios. Runs as cordon-test when started as root.
# Usage: benches/build.sh [FILES=400] [REPS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-400}
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
for tool in make gcc git tar python3; do
    command -v "$tool" >/dev/null || { echo "cannot measure: $tool is not installed"; exit 0; }
done

WS="$HOMEDIR/cordon-bench-ws"
"${AS[@]}" rm -rf "$WS"
"${AS[@]}" mkdir -p "$WS/src"
"${AS[@]}" python3 - "$WS" "$FILES" <<'EOF'
import os, sys, tarfile, io
ws, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(f"{ws}/src/f{i}.c", "w") as f:
        f.write(f"int f{i}(int x) {{ return x * {i} + 1; }}\n")
with open(f"{ws}/src/main.c", "w") as f:
    f.write("int main(void) { return 0; }\n")
with open(f"{ws}/Makefile", "w") as f:
    f.write("SRC := $(wildcard src/*.c)\nOBJ := $(SRC:src/%.c=out/%.o)\n"
            "all: out/prog\nout/%.o: src/%.c\n\t@mkdir -p out\n\t@gcc -O0 -c $< -o $@\n"
            "out/prog: $(OBJ)\n\t@gcc $(OBJ) -o $@\nclean:\n\t@rm -rf out\n")
with tarfile.open(f"{ws}/files.tar", "w") as t:
    for i in range(n * 5):
        data = (f"file {i}\n" * 20).encode()
        info = tarfile.TarInfo(f"unpacked/d{i % 50}/file{i}.txt"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
EOF

# median wall seconds of: bash -c "$2" (inside cordon when $1 = cordon)
measure() {
    local mode=$1 script=$2 ts=()
    for _ in $(seq "$REPS"); do
        "${AS[@]}" bash -c "cd $WS && make -s clean >/dev/null; rm -rf unpacked .git" 
        local t0 t1
        t0=$(date +%s.%N)
        if [ "$mode" = cordon ]; then
            "${AS[@]}" bash -c "cd $WS && $BIN run --no-network -- bash -c '$script'" </dev/null >/dev/null
        else
            "${AS[@]}" bash -c "cd $WS && $script" </dev/null >/dev/null
        fi
        t1=$(date +%s.%N)
        ts+=("$(python3 -c "print($t1 - $t0)")")
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

printf '%-28s %10s %10s %8s\n' "work ($FILES C files, $((FILES * 5)) small files)" "bare s" "cordon s" "ratio"
for case in "make -j2:make -s -j2" "tar x:tar xf files.tar" \
            "git add+commit:tar xf files.tar && git init -q . && git add -A && git -c user.name=b -c user.email=b@b commit -qm b"; do
    name=${case%%:*}; script=${case#*:}
    if [ "$name" = "git add+commit" ]; then
        # git init in the workspace is refused inside cordon (protected .git): init outside.
        bare=$(measure bare "$script")
        script2="tar xf files.tar && git add -A && git -c user.name=b -c user.email=b@b commit -qm b"
        tc=()
        for _ in $(seq "$REPS"); do
            "${AS[@]}" bash -c "cd $WS && rm -rf unpacked .git && git init -q ."
            t0=$(date +%s.%N)
            "${AS[@]}" bash -c "cd $WS && $BIN run --no-network -- bash -c '$script2'" </dev/null >/dev/null
            t1=$(date +%s.%N)
            tc+=("$(python3 -c "print($t1 - $t0)")")
        done
        inside=$(printf '%s\n' "${tc[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    else
        bare=$(measure bare "$script")
        inside=$(measure cordon "$script")
    fi
    printf '%-28s %10.3f %10.3f %7.2fx\n' "$name" "$bare" "$inside" "$(python3 -c "print($inside / $bare)")"
done
"${AS[@]}" rm -rf "$WS"
