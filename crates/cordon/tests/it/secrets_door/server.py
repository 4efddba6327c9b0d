# Recording HTTPS (:8443) and HTTP (:8080) server for secrets_door.rs, run as root inside the
# test network namespace. Logs every request (method, path, headers, body) as a JSON line.
# /git/... answers 401 with a Basic challenge until credentials come, then a ref advertisement;
# /echo sends the Authorization header back (in a header and the body), /reason in the
# status line; /echo-slow answers after 3 s. Exits with its parent.
import json, os, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG, CERT, KEY, PARENT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lock = threading.Lock()
out = open(LOG, "a", buffering=1)

def log(**kw):
    kw["t"] = time.time()
    with lock:
        out.write(json.dumps(kw) + "\n")
        out.flush()

def pkt(b):
    return b"%04x" % (len(b) + 4) + b

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().strip().split(b";")[0], 16)
                if n == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""
    def reply(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def any(self):
        data = self.body()
        dst = self.connection.getsockname()[0]
        auth = self.headers.get("Authorization", "")
        log(srv=self.server.name, ev="request", dst=dst, method=self.command, path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()}, body=data.decode("latin1")[:4000])
        if "/git/" in self.path:
            if not auth:
                return self.reply(401, b"auth needed\n", [("WWW-Authenticate", 'Basic realm="git"')])
            if "info/refs" in self.path:
                sha = b"0123456789abcdef0123456789abcdef01234567"
                adv = (pkt(b"# service=git-upload-pack\n") + b"0000" +
                       pkt(sha + b" HEAD\0agent=cit\n") + pkt(sha + b" refs/heads/main\n") + b"0000")
                return self.reply(200, adv, [("Content-Type", "application/x-git-upload-pack-advertisement"),
                                             ("Cache-Control", "no-cache")])
        if self.path.startswith("/reason"):
            # The Authorization header in the status line's reason phrase.
            self.send_response(200, "echo " + auth)
            self.send_header("Content-Length", "3")
            self.end_headers()
            return self.wfile.write(b"ok\n")
        if self.path.startswith("/echo-slow"):
            time.sleep(3)
        if self.path.startswith("/echo"):
            return self.reply(200, ("echo-auth=%s\n" % auth).encode(), [("X-Echo", auth)])
        self.reply(200, ("srv-ok %s\n" % self.path).encode(), [("Content-Type", "text/plain")])
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = any

class S(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def finish_request(self, request, addr):
        # The TLS handshake runs in the request's thread: a client that never speaks must
        # not hold up everyone else.
        request.settimeout(20)
        if self.ctx is not None:
            request = self.ctx.wrap_socket(request, server_side=True)
        self.RequestHandlerClass(request, addr, self)

def serve(port, ctx, name):
    s = S(("0.0.0.0", port), H)
    s.ctx, s.name = ctx, name
    threading.Thread(target=s.serve_forever, daemon=True).start()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
serve(8443, ctx, "https")
serve(8080, None, "http")
log(srv="control", ev="ready", dst="-")
while True:
    try:
        os.kill(PARENT, 0)
    except ProcessLookupError:
        os._exit(0)
    except PermissionError:
        pass
    time.sleep(0.5)
