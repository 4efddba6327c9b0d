# Shared set-up of the benchmark scripts (sourced, from the repository root).

# bench_build [release|debug]: builds cordon and sets $bin to the built binary.
# CORDON_BENCH_BIN=PATH skips the build and measures that binary (e.g. an older one).
bench_build() {
    local profile="${1:-release}"
    if [ -n "${CORDON_BENCH_BIN:-}" ]; then
        bin="$CORDON_BENCH_BIN"
        return
    fi
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if [ "$profile" = release ]; then
        cargo build --release --locked -q -p cordon
    else
        cargo build --locked -q -p cordon
    fi
    local target_dir
    target_dir="$(cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    bin="$target_dir/$profile/cordon"
}

# bench_as_user DIR NAME: cordon is for unprivileged users, so as root the benchmark measures
# as `cordon-test` (created if missing): $bin is installed as DIR/NAME, which that user can
# run, and $run_user is set. As anyone else, $run_user is empty and $bin stays.
bench_as_user() {
    run_user=""
    if [ "$(id -u)" -eq 0 ]; then
        id cordon-test >/dev/null 2>&1 || useradd -m -s /bin/bash cordon-test
        run_user=cordon-test
        mkdir -p "$1"
        chmod 0755 "$1"
        install -m 0755 "$bin" "$1/$2"
        bin="$1/$2"
    fi
}

# bench_need_root ME TOOL...: the network benchmarks create a network namespace.
bench_need_root() {
    local me="$1"
    shift
    if [ "$(id -u)" -ne 0 ]; then
        echo "$me: must run as root (it creates a network namespace)" >&2
        exit 2
    fi
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$me: $tool is not installed" >&2; exit 2; }
    done
}

bench_netns_cleanup() {
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HIF" 2>/dev/null || true
    rm -rf "$work" "$ws"
}

# bench_netns: the test "internet": namespace $NS with $SRV_IP on $NIF, reached from the host's
# $HOST_IP on $HIF (addresses in 198.18.0.0/15); removed at exit with $work and $ws.
bench_netns() {
    trap bench_netns_cleanup EXIT
    bench_netns_cleanup
    sleep 0.5
    mkdir -p "$work" "$ws"
    ip netns add "$NS"
    ip link add "$HIF" type veth peer name "$NIF" netns "$NS"
    ip addr add "$HOST_IP/24" dev "$HIF"
    ip link set "$HIF" up
    ip -n "$NS" link set lo up
    ip -n "$NS" addr add "$SRV_IP/24" dev "$NIF"
    ip -n "$NS" link set "$NIF" up
}
