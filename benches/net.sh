#!/usr/bin/env bash
# Network benchmark (not a test): throughput of a large HTTP download and connection
# latency / rate, direct (root, host network namespace, no sandbox) versus through cordon
# (HTTP_PROXY, a CONNECT tunnel, and a proxy-unaware client through the transparent door),
# side by side with ratios: each round transfers once per path, in rotated order, and a path's
# ratio is the median of its per-round ratios to the direct transfer of the same round.
# Targets: throughput >= 0.8x direct; added median connect latency <= 0.3 ms.
#
# Usage (as root): benches/net.sh [SIZE_MIB] [CONNECTIONS] [REPS]
#   defaults: 1024 MiB transfer, 500 connections, 3 rounds.
#   CORDON_BENCH_BIN=PATH measures that binary; CORDON_BENCH_BIN_B=PATH adds its tunnel and
#   transparent paths to the same rounds (before/after on one machine).
# It creates its own network namespace (cordon-bench-net, veth cbn-h0/cbn-n0 on
# 198.18.1.0/24, a benchmarking range) with the servers inside, and removes it on exit.
# No assertions: it prints what it measured, and why anything could not be measured.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE_MIB="${1:-1024}"
CONNS="${2:-500}"
REPS="${3:-3}"
NS=cordon-bench-net
HIF=cbn-h0
NIF=cbn-n0
HOST_IP=198.18.1.1
SRV_IP=198.18.1.2
NAME=bench.test.example

. benches/lib.sh
bench_need_root benches/net.sh ip curl python3
bench_build release
bench_as_user /tmp/cordon-it cordon-netbench
if [ -n "${CORDON_BENCH_BIN_B:-}" ]; then
    install -m 0755 "$CORDON_BENCH_BIN_B" /tmp/cordon-it/cordon-netbench-b
    CORDON_BENCH_BIN_B=/tmp/cordon-it/cordon-netbench-b
fi
home="$(getent passwd cordon-test | cut -d: -f6)"
ws="$home/cordon-netbench-ws"
work="$(mktemp -d /tmp/cordon-netbench.XXXXXX)"

bench_netns

# Servers: HTTP on :80 (GET /bytes/N streams N zero bytes) and a "greeter" on :9000 that
# sends one byte and closes (connection latency: connect until the first byte arrives).
cat >"$work/server.py" <<'PY'
import socket, sys, threading
CHUNK = memoryview(bytes(1 << 20))
def http(c):
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                return
            head += d
        path = head.split(b" ", 2)[1].decode()
        n = int(path.rsplit("/", 1)[1]) if path.startswith("/bytes/") else 0
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
        while n > 0:
            k = min(n, len(CHUNK))
            c.sendall(CHUNK[:k])
            n -= k
    except OSError:
        pass
    finally:
        c.close()
def serve_http():
    s = socket.create_server(("0.0.0.0", 80), backlog=128, reuse_port=False)
    while True:
        c, _ = s.accept()
        threading.Thread(target=http, args=(c,), daemon=True).start()
def serve_greeter():
    s = socket.create_server(("0.0.0.0", 9000), backlog=1024)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"x")
        except OSError:
            pass
        c.close()
threading.Thread(target=serve_http, daemon=True).start()
threading.Thread(target=serve_greeter, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
PY
timeout 3600 ip netns exec "$NS" python3 "$work/server.py" >"$work/server.out" 2>&1 &
for _ in $(seq 50); do grep -q ready "$work/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/server.out" || { echo "benchmark servers did not start:"; cat "$work/server.out"; exit 1; }

# Connection client: N sequential connections; prints the median and p90 latency (ms) and
# connections per second. MODE direct/transparent connects to HOST:PORT itself (through the
# stub and the transparent door inside cordon); MODE proxy uses HTTP CONNECT on 127.0.0.1:3128.
cat >"$ws/conn.py" <<'PY'
import json, socket, statistics, sys, time
mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode != "proxy":
    addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
def once():
    if mode == "proxy":
        s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port, host.encode(), port))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                raise ConnectionError("proxy closed")
            head += d
        if b" 200" not in head.split(b"\r\n")[0]:
            raise ConnectionError(head.split(b"\r\n")[0].decode())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(addr)
    if s.recv(1) != b"x":
        raise ConnectionError("no greeting")
    s.close()
lat, errors = [], 0
once()  # warm-up
t0 = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    try:
        once()
        lat.append((time.perf_counter() - t) * 1000)
    except OSError:
        errors += 1
total = time.perf_counter() - t0
lat.sort()
print(json.dumps({"median_ms": statistics.median(lat) if lat else None,
                  "p90_ms": lat[int(len(lat) * 0.9)] if lat else None,
                  "cps": len(lat) / total if total else None, "errors": errors}))
PY

# Concurrency: N tunnels (CONNECT, or transparent) opened at once, each sending a GET for 64 KiB
# through its tunnel once all are open, and all held until every answer is in; prints the count
# that completed and the errors.
cat >"$ws/conc.py" <<'PY'
import asyncio, json, socket, sys
mode, host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def one(opened, go):
    try:
        if mode == "proxy":
            r, w = await asyncio.open_connection("127.0.0.1", 3128)
            w.write(b"CONNECT %s:80 HTTP/1.1\r\nHost: %s:80\r\n\r\n" % (host.encode(), host.encode()))
            head = await r.readuntil(b"\r\n\r\n")
            if b" 200" not in head.split(b"\r\n")[0]:
                raise ConnectionError(head[:40])
        else:
            r, w = await asyncio.open_connection(host, 80)
        opened.append(1)
        await go.wait()
        w.write(b"GET /bytes/65536 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode())
        got = len(await r.read(-1))
        w.close()
        return got > 65536
    except (OSError, asyncio.IncompleteReadError, ConnectionError) as e:
        return repr(e)[:80]
async def main():
    opened, go = [], asyncio.Event()
    tasks = [asyncio.create_task(one(opened, go)) for _ in range(n)]
    for _ in range(300):
        if len(opened) + sum(t.done() for t in tasks) >= n:
            break
        await asyncio.sleep(0.05)
    held = len(opened)
    go.set()
    res = await asyncio.gather(*tasks)
    errs = [r for r in res if r is not True]
    print(json.dumps({"held": held, "ok": n - len(errs), "errors": len(errs), "first_error": errs[0] if errs else None}))
asyncio.run(main())
PY

cat >"$work/policy.toml" <<EOF
[network]
allow = ["$NAME:*"]
allow_cidrs = ["198.18.0.0/15:*"]

[network.hosts]
"$NAME" = "$SRV_IP"
EOF
cp "$work/policy.toml" "$ws/policy.toml"
chown -R cordon-test: "$ws"

as_user() {
    (cd "$ws" && env -i HOME="$home" PATH=/usr/local/bin:/usr/bin:/bin USER=cordon-test \
        LOGNAME=cordon-test setpriv --reuid cordon-test --regid cordon-test --clear-groups -- "$@")
}
in_cordon() {
    as_user "$bin" run -p "$ws/policy.toml" -- "$@"
}

BYTES=$((SIZE_MIB * 1024 * 1024))
problems=()
declare -A tput conn ratio

# CORDON_BENCH_BIN_B=PATH: also measure that binary's tunnel and transparent paths, in the same
# rounds (a before/after comparison that the machine's load cannot skew).
in_cordon_b() {
    as_user "$CORDON_BENCH_BIN_B" run -p "$ws/policy.toml" -- "$@"
}
CURL=(curl -sS --fail --max-time 600 -o /dev/null -w '%{speed_download}')
paths=(direct proxy tunnel transparent)
[ -n "${CORDON_BENCH_BIN_B:-}" ] && paths+=(tunnel-B transparent-B)
tput_once() {
    case "$1" in
        direct) "${CURL[@]}" --noproxy '*' "http://$SRV_IP/bytes/$BYTES" ;;
        proxy) in_cordon "${CURL[@]}" "http://$NAME/bytes/$BYTES" ;;
        transparent) in_cordon "${CURL[@]}" --noproxy '*' "http://$NAME/bytes/$BYTES" ;;
        # The same bytes through a CONNECT tunnel (the path HTTPS takes through HTTPS_PROXY).
        tunnel) in_cordon "${CURL[@]}" -p "http://$NAME/bytes/$BYTES" ;;
        transparent-B) in_cordon_b "${CURL[@]}" --noproxy '*' "http://$NAME/bytes/$BYTES" ;;
        tunnel-B) in_cordon_b "${CURL[@]}" -p "http://$NAME/bytes/$BYTES" ;;
    esac
}
# Throughput in MiB/s as curl reports it (the transfer only, not cordon's start-up). Each round
# measures every path once, in an order rotated from round to round; a path's ratio is the
# median of its per-round ratios to the direct transfer of the same round.
load_before=$(cut -d' ' -f1 /proc/loadavg)
declare -A vals
for r in $(seq "$REPS"); do
    n=${#paths[@]}
    for i in $(seq 0 $((n - 1))); do
        p=${paths[$(((i + r) % n))]}
        if v="$(tput_once "$p" 2>"$work/err")" && [ -n "$v" ] && [ "$v" != "0" ]; then
            vals[$p]+="$(python3 -c "print(${v%%,*} / 1048576)") "
        else
            problems+=("$p round $r: $(tail -n 2 "$work/err" | tr '\n' ' ') (output: ${v:-none})")
            vals[$p]+="nan "
        fi
    done
done
for p in "${paths[@]}"; do
    read -r t rt < <(python3 - "${vals[$p]}" "${vals[direct]}" <<'PY'
import math, statistics, sys
v = [float(x) for x in sys.argv[1].split()]
d = [float(x) for x in sys.argv[2].split()]
ok = [x for x in v if not math.isnan(x)]
rs = [a / b for a, b in zip(v, d) if not (math.isnan(a) or math.isnan(b)) and b > 0]
print("%.1f" % statistics.median(ok) if ok else "n/a",
      "%.2f(%.2f-%.2f)" % (statistics.median(rs), min(rs), max(rs)) if rs else "n/a")
PY
)
    tput[$p]=$t
    ratio[$p]=$rt
done
load_tput="$load_before->$(cut -d' ' -f1 /proc/loadavg)"

measure_conn() {
    local label="$1"; shift
    local out
    if out="$("$@" 2>"$work/err")" && [ -n "$out" ]; then
        conn[$label]="$out"
    else
        problems+=("$label connections: $(tail -n 2 "$work/err" | tr '\n' ' ')")
    fi
}
load_conn0=$(cut -d' ' -f1 /proc/loadavg)
measure_conn direct python3 "$ws/conn.py" direct "$SRV_IP" 9000 "$CONNS"
measure_conn proxy in_cordon python3 conn.py proxy "$NAME" 9000 "$CONNS"
measure_conn transparent in_cordon python3 conn.py transparent "$NAME" 9000 "$CONNS"
load_conn="$load_conn0->$(cut -d' ' -f1 /proc/loadavg)"
declare -A conc
for p in proxy transparent; do
    conc[$p]="$(in_cordon python3 conc.py "$p" "$NAME" "$CONNS" 2>&1 | tail -n 1)"
done

echo "network benchmark: $SIZE_MIB MiB transfer ($REPS paired rounds), $CONNS sequential connections, $(nproc) cpus"
if [ "$SIZE_MIB" -lt 1024 ]; then
    echo "NOTE: transfer size reduced to $SIZE_MIB MiB (the issue asks for 1 GiB)"
fi
printf '%-14s %12s %18s   %10s %8s %8s %8s\n' path "MiB/s" "x direct(min-max)" "median ms" "p90 ms" "conn/s" "+ms"
for p in "${paths[@]}"; do
    python3 - "$p" "${tput[$p]:-}" "${ratio[$p]:-n/a}" "${conn[$p]:-}" "${conn[direct]:-}" <<'PY'
import json, sys
p, t, ratio, c, cd = sys.argv[1:6]
def j(s):
    try:
        return json.loads(s)
    except ValueError:
        return {}
c, cd = j(c), j(cd)
med, p90, cps = c.get("median_ms"), c.get("p90_ms"), c.get("cps")
added = "%+.3f" % (med - cd["median_ms"]) if med is not None and cd.get("median_ms") is not None else "n/a"
f = lambda v, fmt: fmt % v if v is not None else "n/a"
err = " (%d errors)" % c["errors"] if c.get("errors") else ""
print("%-14s %12s %18s   %10s %8s %8s %8s%s" % (p, t or "n/a", ratio, f(med, "%.3f"), f(p90, "%.3f"), f(cps, "%.0f"), added, err))
PY
done
echo "load during the transfers: $load_tput; during the connections: $load_conn"
for p in proxy transparent; do
    echo "$CONNS concurrent $p tunnels: ${conc[$p]}"
done
echo "targets: throughput >= 0.80x direct; added median connect latency <= 0.3 ms"
for msg in "${problems[@]+"${problems[@]}"}"; do
    echo "not measured: $msg"
done
