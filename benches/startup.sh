#!/usr/bin/env bash
# Start-up benchmark (not a test): `true` bare, in `cordon run` (with and without the network
# door), `cordon exec` into a running named sandbox, bwrap, and Codex's and srt's sandboxes when
# installed; paired rounds in rotated order, median of per-round ratios with min-max, the load.
# Usage: benches/startup.sh [ROUNDS]   (default 100). Run as root, it measures as cordon-test.
set -euo pipefail

cd "$(dirname "$0")/.."
N="${1:-100}"

. benches/lib.sh
bench_build release
bench_as_user /tmp/cordon-it cordon-bench

exec python3 benches/startup.py "$N" "$bin" "$run_user"
