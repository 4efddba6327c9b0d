#!/usr/bin/env bash
# Installs what benches/workloads.sh compares against and runs (Debian/Ubuntu, as root):
# bubblewrap, ripgrep and socat from apt; Codex's CLI (`codex sandbox`) and Anthropic's
# sandbox-runtime (`srt`, which needs bubblewrap, socat and ripgrep) from npm. Not run by CI.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "benches/setup.sh: run as root (it installs packages)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq bubblewrap ripgrep socat git tar python3 python3-venv gcc >/dev/null
command -v npm >/dev/null || { echo "benches/setup.sh: npm is needed for codex and srt (install Node.js)" >&2; exit 2; }
command -v codex >/dev/null || npm install -g --silent @openai/codex
command -v srt >/dev/null || npm install -g --silent @anthropic-ai/sandbox-runtime
for t in bwrap rg socat codex srt; do
    printf '%-6s %s\n' "$t" "$(command -v "$t" || echo MISSING)"
done
