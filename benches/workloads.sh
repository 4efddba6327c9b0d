#!/usr/bin/env bash
# File-heavy work bare and in each sandbox, in one paired, round-robin run (not a test).
#
#   [CORDON_BENCH_BIN=new] [CORDON_BENCH_BIN_B=old] benches/workloads.sh [--reps N] [--heavy-reps N]
#       [--only NAME,...] [--sides cordon,cordon-b,bwrap]
#
# Sides: bare, `cordon run --no-network`, bwrap (workspace bound read-write, --unshare-all),
# `codex sandbox -P :workspace` and srt when installed (benches/setup.sh installs them).
# Workloads: git add+commit of 2000 files and tar xf of 5000 files on the disk workspace and on
# a tmpfs one; npm install --offline of 40 local tarballs; python3 -m venv; cargo build of a
# generated 20-crate workspace; rg over 20k files; git status; then a per-operation
# microbenchmark (benches/ops.c: create, rename, unlink, mkdir, rmdir, nested create, read-only
# open, loopback connect) bare vs cordon in µs. It prints one table with bare times beside the
# ratios (median of per-round ratios, min-max), the load before and after each workload, and
# the cordon supervisor's peak RSS. Defaults (5 rounds, 3 for venv/cargo) take about
# 6-9 minutes on 2 cores. Run as root, it measures as the user cordon-test.
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/lib.sh
bench_build release
bench_as_user /tmp/cordon-bench cordon-bench

ops=/tmp/cordon-bench/ops
mkdir -p /tmp/cordon-bench
cc -O2 -o "$ops" benches/ops.c
chmod 0755 "$ops"

tmpfs_args=()
if [ "$(id -u)" -eq 0 ]; then
    # Not below $HOME: cordon layers $HOME, and a tmpfs mounted inside it breaks that overlay.
    tmpmnt=/mnt/cordon-bench-tmpfs
    mkdir -p "$tmpmnt"
    mountpoint -q "$tmpmnt" || mount -t tmpfs -o size=3g,mode=0755 cordon-bench "$tmpmnt"
    trap 'umount "$tmpmnt" 2>/dev/null || true' EXIT
    mkdir -p "$tmpmnt/ws"
    [ -n "$run_user" ] && chown "$run_user:" "$tmpmnt/ws"
    tmpfs_args=(--tmpfs "$tmpmnt/ws")
fi

# CORDON_BENCH_BIN_B=PATH: a second binary (say, the build before a change) in the same rounds.
bin_b_args=()
if [ -n "${CORDON_BENCH_BIN_B:-}" ]; then
    install -m 0755 "$CORDON_BENCH_BIN_B" /tmp/cordon-bench/cordon-bench-b
    bin_b_args=(--bin-b /tmp/cordon-bench/cordon-bench-b)
fi

python3 benches/workloads.py --bin "$bin" --user "$run_user" --ops "$ops" \
    "${tmpfs_args[@]}" "${bin_b_args[@]}" "$@"
