#!/usr/bin/env bash
# Pod start-up overhead of cordon inside a container (not a test): in one container started
# with the settings `cordon kube render` writes (own user namespace, /proc unmasked, all
# capabilities dropped, no_new_privs, read-only root, emptyDir-like /tmp and $HOME), the
# median wall time of `cordon run -- true` against the bare `true`, as a ratio.
# Usage: benches/kube.sh [N=50]. Needs root and podman (see .ci/run); builds the base image
# from Debian packages with mmdebstrap when localhost/cordon-it-base:bookworm is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50}"
BIN="${CORDON_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release -q -p cordon
    BIN=target/release/cordon
fi
work="$(mktemp -d /var/tmp/cordon-kube-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
if ! podman image exists localhost/cordon-it-base:bookworm; then
    timeout 600 mmdebstrap --variant=apt --include=git,ca-certificates,python3 bookworm "$work/rootfs.tar"
    podman import "$work/rootfs.tar" localhost/cordon-it-base:bookworm >/dev/null
    rm -f "$work/rootfs.tar"
fi
cp "$BIN" "$work/cordon"
printf 'FROM localhost/cordon-it-base:bookworm\nCOPY cordon /usr/local/bin/cordon\nRUN useradd -u 1000 -m agent\n' > "$work/Containerfile"
podman build -q -t localhost/cordon-kube-bench:latest "$work" >/dev/null

cat > "$work/bench.py" <<'PY'
import statistics, subprocess, sys, time, os
n = int(sys.argv[1])
os.makedirs("/tmp/ws", exist_ok=True)
def median(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp/ws")
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp/ws")
        ts.append((time.perf_counter_ns() - t) / 1e6)
    return statistics.median(ts)
bare = median(["true"])
cordon = median(["cordon", "run", "--no-auto-profile", "-w", "/tmp/ws", "--", "true"])
print(f"inside the container, N={n} each ({os.cpu_count()} cpus)")
print(f"true                        median {bare:8.2f} ms")
print(f"cordon run -- true          median {cordon:8.2f} ms")
print(f"ratio cordon/bare: {cordon / bare:.1f}x  (cordon adds {cordon - bare:.2f} ms per start)")
PY
timeout 600 podman run --rm --uidmap=0:400000:65536 --gidmap=0:400000:65536 --user 1000:1000 \
    --cap-drop=all --security-opt=no-new-privileges --security-opt=unmask=ALL \
    --read-only --read-only-tmpfs=false --tmpfs /tmp:mode=1777 --tmpfs /home/agent:mode=1777 \
    -e HOME=/home/agent -v "$work/bench.py:/bench.py:ro" \
    localhost/cordon-kube-bench:latest python3 /bench.py "$N"
