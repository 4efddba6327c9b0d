//! The recording servers of the test "internet" (a python3 script run as root inside the
//! test network namespace). Kept apart from the namespace plumbing in `net.rs`.

/// `server.py LOG CERT KEY PARENT_PID`: HTTP on :80, HTTPS on :443 (recording the SNI), a
/// TCP echo on :7, a DNS "server" on UDP/TCP :53 and a UDP sink on :9, all on every address
/// of the namespace; plus raw-socket sniffers that record every TCP SYN, UDP datagram and
/// ICMP echo request that reaches the namespace, so "the server saw nothing" also covers
/// ports nobody listens on. Every record is one JSON line with `srv` and `dst` (the
/// destination address). It exits when the test binary (PARENT_PID) is gone.
pub const SERVER_PY: &str = r#####"
import json, os, socket, ssl, struct, sys, threading, time

LOG, CERT, KEY, PARENT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log_lock = threading.Lock()
log_file = open(LOG, "a", buffering=1)

def log(**kw):
    kw["t"] = time.time()
    with log_lock:
        log_file.write(json.dumps(kw) + "\n")
        log_file.flush()

def watch_parent():
    while True:
        try:
            os.kill(PARENT, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.5)

def spawn(fn, *a):
    t = threading.Thread(target=fn, args=a, daemon=True)
    t.start()
    return t

def read_head(c, limit=65536):
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < limit:
        d = c.recv(4096)
        if not d:
            break
        buf += d
    return buf

def http_serve(c, srv, dst, extra):
    # One request per connection, unless the client asks for keep-alive (bounded).
    for _ in range(20):
        head = read_head(c)
        if not head:
            return
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin1").split(" ")
        path = parts[1] if len(parts) > 1 else ""
        host = ""
        keep = False
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.strip().lower() == b"host":
                host = v.strip().decode("latin1")
            if k.strip().lower() == b"connection" and v.strip().lower() == b"keep-alive":
                keep = True
        log(srv=srv, ev="request", dst=dst, method=parts[0], path=path, host=host, **extra)
        body = ("cordon-it-ok path=%s host=%s dst=%s\n" % (path, host, dst)).encode()
        conn = b"keep-alive" if keep else b"close"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: " + conn +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        if not keep:
            return

tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls_ctx.load_cert_chain(CERT, KEY)
tls_local = threading.local()
def on_sni(sock, name, ctx):
    tls_local.sni = name
tls_ctx.sni_callback = on_sni

def handle(c, port, peer):
    dst = c.getsockname()[0]
    c.settimeout(15)
    try:
        if port == 80:
            log(srv="http", ev="accept", dst=dst, peer=peer[0])
            http_serve(c, "http", dst, {})
        elif port == 443:
            log(srv="https", ev="accept", dst=dst, peer=peer[0])
            tls_local.sni = None
            try:
                t = tls_ctx.wrap_socket(c, server_side=True)
            except Exception as e:
                log(srv="https", ev="tls-fail", dst=dst, sni=tls_local.sni, err=str(e)[:200])
                return
            log(srv="https", ev="handshake", dst=dst, sni=tls_local.sni)
            http_serve(t, "https", dst, {"sni": tls_local.sni})
            t.close()
        elif port == 7:
            log(srv="echo", ev="accept", dst=dst, peer=peer[0])
            first = True
            while True:
                d = c.recv(65536)
                if not d:
                    break
                if first:
                    log(srv="echo", ev="data", dst=dst, data=d[:200].decode("latin1"))
                    first = False
                c.sendall(d)
        else:
            log(srv="tcp%d" % port, ev="accept", dst=dst, peer=peer[0])
            d = c.recv(4096)
            log(srv="tcp%d" % port, ev="data", dst=dst, data=d[:200].decode("latin1"))
    except Exception as e:
        log(srv="port%d" % port, ev="error", dst=dst, err=str(e)[:200])
    finally:
        try:
            c.close()
        except Exception:
            pass

def tcp_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(256)
    def loop():
        while True:
            c, peer = s.accept()
            spawn(handle, c, port, peer)
    spawn(loop)

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
def udp_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", port))
    def loop():
        while True:
            data, anc, _, peer = s.recvmsg(65536, 256)
            dst = "?"
            for level, kind, cdata in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 12:
                    dst = socket.inet_ntoa(cdata[8:12])
            log(srv="udp%d" % port, ev="datagram", dst=dst, peer=peer[0],
                data=data[:300].decode("latin1"))
    spawn(loop)

def sniffer(proto, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    def loop():
        while True:
            pkt = s.recv(65536)
            if len(pkt) < 20:
                continue
            ihl = (pkt[0] & 0x0F) * 4
            dst = socket.inet_ntoa(pkt[16:20])
            body = pkt[ihl:]
            if proto == socket.IPPROTO_TCP and len(body) >= 14:
                flags = body[13]
                if flags & 0x02 and not flags & 0x10:
                    log(srv="pkt", proto="tcp", dst=dst, dport=struct.unpack(">H", body[2:4])[0])
            elif proto == socket.IPPROTO_UDP and len(body) >= 8:
                log(srv="pkt", proto="udp", dst=dst, dport=struct.unpack(">H", body[2:4])[0])
            elif proto == socket.IPPROTO_ICMP and len(body) >= 1 and body[0] == 8:
                log(srv="pkt", proto="icmp", dst=dst, dport=0)
    spawn(loop)

for p in (socket.IPPROTO_TCP, socket.IPPROTO_UDP, socket.IPPROTO_ICMP):
    sniffer(p, p)
for port in (80, 443, 7, 53):
    tcp_server(port)
for port in (53, 9):
    udp_server(port)
spawn(watch_parent)
log(srv="control", ev="ready", dst="-")
while True:
    time.sleep(3600)
"#####;
