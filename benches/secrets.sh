#!/usr/bin/env bash
# Secrets benchmark (not a test): HTTPS requests per second through an INTERCEPTED host (a
# secret's host: cordon terminates TLS, swaps the placeholder, opens its own TLS upstream)
# versus a TUNNELLED one (spliced untouched), in the same cordon run, same server, same client
# (keep-alive over one CONNECT tunnel, sequential requests). Prints both rates and the ratio.
#
# Usage (as root): benches/secrets.sh [REQUESTS]   (default 2000 per host)
# It makes its own network namespace (cordon-bench-sec, veth cbs-h0/cbs-n0 on 198.18.2.0/24)
# and a throwaway CA with openssl, and removes them on exit. No assertions.
set -euo pipefail

cd "$(dirname "$0")/.."
N="${1:-2000}"
NS=cordon-bench-sec
HIF=cbs-h0
NIF=cbs-n0
HOST_IP=198.18.2.1
SRV_IP=198.18.2.2
SEC=sec.bench.example
TUN=tun.bench.example

. benches/lib.sh
bench_need_root benches/secrets.sh ip openssl python3
bench_build release
bench_as_user /tmp/cordon-it cordon-secbench
home="$(getent passwd cordon-test | cut -d: -f6)"
ws="$home/cordon-secbench-ws"
work="$(mktemp -d /tmp/cordon-secbench.XXXXXX)"

bench_netns

# A CA and a server certificate for both names.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 \
    -subj "/CN=cordon secrets bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec[@]}" -keyout "$work/srv.key" -out "$work/srv.csr" -subj "/CN=$SEC" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' "$SEC" "$TUN" >"$work/srv.ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/srv.pem" -days 2 -extfile "$work/srv.ext" 2>/dev/null

cat >"$work/server.py" <<'PY'
import ssl, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one write per response (flushed by the handler): no Nagle stalls
    def log_message(self, *a): pass
    def do_GET(self):
        body = b"ok " + self.headers.get("Authorization", "").encode()[:16] + b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = ThreadingHTTPServer(("0.0.0.0", 443), H)
s.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print("ready", flush=True)
s.serve_forever()
PY
timeout 3600 ip netns exec "$NS" python3 "$work/server.py" "$work/srv.pem" "$work/srv.key" \
    >"$work/server.out" 2>&1 &
for _ in $(seq 50); do grep -q ready "$work/server.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/server.out" || { echo "benchmark server did not start:"; cat "$work/server.out"; exit 1; }

# Client inside: N sequential GETs over one keep-alive CONNECT tunnel per host.
cat >"$ws/client.py" <<'PY'
import http.client, json, os, ssl, sys, time
n = int(sys.argv[1])
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
out = {}
for host in sys.argv[2:]:
    c = http.client.HTTPSConnection("127.0.0.1", 3128, context=ctx, timeout=20)
    c.set_tunnel(host, 443)
    hdr = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"]}
    c.request("GET", "/warm", headers=hdr); c.getresponse().read()
    t = time.perf_counter()
    for i in range(n):
        c.request("GET", "/r%d" % i, headers=hdr)
        c.getresponse().read()
    out[host] = n / (time.perf_counter() - t)
    c.close()
print(json.dumps(out))
PY
cp "$work/ca.pem" "$ws/ca.pem"
cat >"$ws/policy.toml" <<EOF
[network]
allow = ["$SEC", "$TUN"]
allow_cidrs = ["198.18.0.0/15:*"]
[network.hosts]
"$SEC" = "$SRV_IP"
"$TUN" = "$SRV_IP"
[secrets.BENCH_TOKEN]
from_env = "BENCH_REAL"
hosts = ["$SEC"]
EOF
chown -R cordon-test: "$ws"

res="$(cd "$ws" && env -i HOME="$home" PATH=/usr/local/bin:/usr/bin:/bin USER=cordon-test \
    LOGNAME=cordon-test SSL_CERT_FILE="$ws/ca.pem" BENCH_REAL=ghp_benchREALtoken0123456789abcdefghij \
    setpriv --reuid cordon-test --regid cordon-test --clear-groups -- \
    "$bin" run -p "$ws/policy.toml" -- python3 "$ws/client.py" "$N" "$SEC" "$TUN" 2>"$work/err" | tail -n 1)" || true
if [ -z "$res" ]; then
    echo "benches/secrets.sh: the client failed:"; cat "$work/err"; exit 1
fi
python3 - "$res" "$SEC" "$TUN" "$N" <<'PY'
import json, sys
r, sec, tun, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
i, t = r[sec], r[tun]
print("requests/s over one keep-alive HTTPS connection, %s sequential GETs each:" % n)
print("  tunnelled   (%s): %8.0f req/s" % (tun, t))
print("  intercepted (%s): %8.0f req/s" % (sec, i))
print("secrets-bench intercepted/tunnelled ratio: %.2f" % (i / t))
PY
