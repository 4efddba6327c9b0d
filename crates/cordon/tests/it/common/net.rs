//! The test "internet" for the network tests.
//!
//! One network namespace per test binary (`cordon-it-net`), joined to the host by a veth
//! pair: host side `cit-h0` = 198.18.0.1/24, namespace side `cit-n0` = 198.18.0.2/24, .3 and
//! .10-.250 (one address per test, so a test's "the server saw nothing" cannot be confused
//! by another test running in parallel). Recording servers run inside it (see `server.rs`);
//! their JSON-lines log is what the tests check. Everything lives in 127.0.0.0/8 and
//! 198.18.0.0/15 (the benchmarking range, which cordon refuses unless `allow_cidrs` lists it).
//!
//! Needs root (tests run as root in CI and drop to `cordon-test` for cordon itself); when it
//! cannot be built, [`NetTest::new`] prints a SKIP line and returns None.

mod server;

use super::*;
use serde_json::Value;
use std::io::BufRead;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

/// The namespace holding the test servers.
pub const NS: &str = "cordon-it-net";
/// Host side of the veth pair.
pub const HOST_IF: &str = "cit-h0";
/// Namespace side of the veth pair.
pub const NS_IF: &str = "cit-n0";
/// The host's address on the test link.
pub const HOST_ADDR: &str = "198.18.0.1";
/// The "usual" server address.
pub const SERVER_ADDR: &str = "198.18.0.2";
/// "Another host".
pub const OTHER_ADDR: &str = "198.18.0.3";
/// `allow_cidrs` entry admitting the whole test range on every port.
pub const CIDR_ALL: &str = "198.18.0.0/15:*";
/// The allowed name most tests use (the TLS certificate covers it).
pub const NAME: &str = "api.test.example";
/// A second name the certificate covers (for fronting).
pub const OTHER_NAME: &str = "other.test.example";
/// First and last per-test address (last octet).
const FIRST_TEST_OCTET: u32 = 10;
const LAST_TEST_OCTET: u32 = 250;

/// The running test internet.
pub struct Internet {
    /// Scratch directory (CA, server cert, log).
    pub dir: PathBuf,
    /// The servers' JSON-lines log.
    pub log: PathBuf,
    /// PEM of the test CA (clients inside verify the HTTPS server with it).
    pub ca_pem: String,
    next: AtomicU32,
}

static SERVER_PID: AtomicU32 = AtomicU32::new(0);

/// The test internet, built on first use; Err(reason) when it cannot be built here.
pub fn internet() -> Result<&'static Internet, String> {
    static NET: OnceLock<Result<Internet, String>> = OnceLock::new();
    NET.get_or_init(setup).as_ref().map_err(Clone::clone)
}

/// Run a root command, Ok(stdout) or Err(description).
fn root_cmd(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Remove whatever an earlier (crashed) run left: its servers, the namespace, the veth.
fn teardown() {
    if let Ok(pids) = root_cmd(&["ip", "netns", "pids", NS]) {
        let pids: Vec<u32> = pids.lines().filter_map(|l| l.trim().parse().ok()).collect();
        kill_pids(&pids);
    }
    let _ = root_cmd(&["ip", "netns", "del", NS]);
    let _ = root_cmd(&["ip", "link", "del", HOST_IF]);
}

extern "C" fn at_exit() {
    let pid = SERVER_PID.load(Ordering::SeqCst);
    if pid != 0 {
        kill_pids(&[pid]);
    }
    teardown();
}

fn setup() -> Result<Internet, String> {
    if euid() != 0 {
        return Err("not root: creating a network namespace and veth pair needs root".into());
    }
    for tool in ["ip", "openssl"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            return Err(format!("`{tool}` is not installed"));
        }
    }
    teardown();
    // Deleting a namespace removes its veth end asynchronously; wait before recreating it.
    wait_for(Duration::from_secs(5), || {
        root_cmd(&["ip", "link", "show", HOST_IF]).is_err()
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cordon-it-net");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;

    root_cmd(&["ip", "netns", "add", NS])?;
    // SAFETY: registering a plain extern "C" function with no captured state.
    unsafe {
        libc::atexit(at_exit);
    }
    root_cmd(&[
        "ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS,
    ])?;
    root_cmd(&[
        "ip",
        "addr",
        "add",
        &format!("{HOST_ADDR}/24"),
        "dev",
        HOST_IF,
    ])?;
    root_cmd(&["ip", "link", "set", HOST_IF, "up"])?;
    let mut batch = String::from("link set lo up\n");
    batch.push_str(&format!("link set {NS_IF} up\n"));
    for octet in [2, 3].into_iter().chain(FIRST_TEST_OCTET..=LAST_TEST_OCTET) {
        batch.push_str(&format!("addr add 198.18.0.{octet}/24 dev {NS_IF}\n"));
    }
    let batch_file = dir.join("ns.batch");
    fs::write(&batch_file, batch).map_err(|e| format!("write batch: {e}"))?;
    root_cmd(&["ip", "-n", NS, "-batch", &batch_file.display().to_string()])?;

    let ca_pem = make_certs(&dir)?;
    let log = dir.join("servers.log");
    fs::write(&log, "").map_err(|e| format!("create log: {e}"))?;
    start_servers(&dir, &log)?;
    // The link may need a moment (DAD is off for IPv4, but the veth carrier is async).
    if !wait_for(Duration::from_secs(10), || {
        TcpStream::connect_timeout(
            &format!("{SERVER_ADDR}:80")
                .parse()
                .expect("literal address"),
            Duration::from_millis(500),
        )
        .is_ok()
    }) {
        return Err(format!(
            "the test server at {SERVER_ADDR}:80 is not reachable from the host"
        ));
    }
    Ok(Internet {
        dir,
        log,
        ca_pem,
        next: AtomicU32::new(FIRST_TEST_OCTET),
    })
}

/// A throwaway CA and a server certificate for api/other/*.test.example; returns the CA PEM.
fn make_certs(dir: &Path) -> Result<String, String> {
    let p = |f: &str| dir.join(f).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["openssl", "req", "-x509"];
    ca.extend(ec);
    let (ca_key, ca_pem) = (p("ca.key"), p("ca.pem"));
    ca.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-days",
        "2",
        "-subj",
        "/CN=cordon-it test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    root_cmd(&ca)?;
    let (srv_key, srv_csr, srv_pem, ext) = (p("srv.key"), p("srv.csr"), p("srv.pem"), p("srv.ext"));
    let mut csr = vec!["openssl", "req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        &srv_key,
        "-out",
        &srv_csr,
        "-subj",
        "/CN=api.test.example",
    ]);
    root_cmd(&csr)?;
    fs::write(
        &ext,
        "subjectAltName=DNS:api.test.example,DNS:other.test.example,DNS:*.test.example\n\
         basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid,issuer\n",
    )
    .map_err(|e| format!("write {ext}: {e}"))?;
    root_cmd(&[
        "openssl",
        "x509",
        "-req",
        "-in",
        &srv_csr,
        "-CA",
        &ca_pem,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &srv_pem,
        "-days",
        "2",
        "-extfile",
        &ext,
    ])?;
    fs::read_to_string(&ca_pem).map_err(|e| format!("read {ca_pem}: {e}"))
}

fn start_servers(dir: &Path, log: &Path) -> Result<(), String> {
    let script = dir.join("server.py");
    fs::write(&script, server::SERVER_PY).map_err(|e| format!("write server.py: {e}"))?;
    let stderr = fs::File::create(dir.join("server.stderr"))
        .map_err(|e| format!("create server.stderr: {e}"))?;
    let child = Command::new("timeout")
        .args(["600", "ip", "netns", "exec", NS, python()])
        .arg(&script)
        .arg(log)
        .arg(dir.join("srv.pem"))
        .arg(dir.join("srv.key"))
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("start the test servers: {e}"))?;
    SERVER_PID.store(child.id(), Ordering::SeqCst);
    let ready = wait_for(Duration::from_secs(15), || {
        fs::read_to_string(log)
            .map(|s| s.contains("\"ready\""))
            .unwrap_or(false)
    });
    if ready {
        Ok(())
    } else {
        Err(format!(
            "the test servers did not start: {}",
            fs::read_to_string(dir.join("server.stderr")).unwrap_or_default()
        ))
    }
}

impl Internet {
    /// A fresh server address for one test (198.18.0.10 and up).
    pub fn alloc(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        assert!(
            n <= LAST_TEST_OCTET,
            "more network tests than test addresses; raise LAST_TEST_OCTET"
        );
        format!("198.18.0.{n}")
    }

    /// Every record the servers have written so far.
    pub fn records(&self) -> Vec<Value> {
        let Ok(f) = fs::File::open(&self.log) else {
            return Vec::new();
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// Records of everything that reached `ip` (packets, accepts, requests, datagrams).
    pub fn seen_by(&self, ip: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["dst"] == ip)
            .collect()
    }

    /// Records of any DNS query or UDP datagram that reached the namespace, to any address.
    pub fn dns_and_udp(&self) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| {
                r["srv"] == "udp53"
                    || r["srv"] == "udp9"
                    || r["srv"] == "tcp53"
                    || (r["srv"] == "pkt" && r["proto"] != "tcp")
            })
            .collect()
    }
}

/// Show records for an assertion message.
pub fn show_records(recs: &[Value]) -> String {
    if recs.is_empty() {
        return "  (none)\n".into();
    }
    recs.iter().map(|r| format!("  {r}\n")).collect()
}

/// `key=value` results printed by the sandboxed python (`R key=value` lines).
pub struct Results {
    map: BTreeMap<String, String>,
    out: Out,
}

impl Results {
    /// Parse the `R ` lines of `out`.
    pub fn parse(out: Out) -> Results {
        let map = out
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("R "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Results { map, out }
    }

    /// The value of `key`; fails the test if the script never printed it.
    pub fn get(&self, key: &str) -> &str {
        match self.map.get(key) {
            Some(v) => v,
            None => panic!(
                "the sandboxed script never reported {key:?} (it died early?)\n{}",
                self.out.show()
            ),
        }
    }

    /// The whole run, for messages.
    pub fn show(&self) -> String {
        self.out.show()
    }

    /// The run itself.
    pub fn out(&self) -> &Out {
        &self.out
    }

    /// Assert `key` succeeded and its value contains `needle`.
    pub fn assert_ok(&self, key: &str, needle: &str, why: &str) {
        let v = self.get(key);
        assert!(
            v.starts_with("ok:") && v.contains(needle),
            "{why}: {key} should succeed and contain {needle:?}, got {v:?}\n{}",
            self.show()
        );
    }

    /// Assert `key` failed (an error, not a hang) within 5 seconds.
    pub fn assert_fails_fast(&self, key: &str, why: &str) {
        let v = self.get(key);
        assert!(
            v.starts_with("err:"),
            "{why}: {key} should fail with an error (refused/reset/denied), got {v:?}\n{}",
            self.show()
        );
        let secs: f64 = self.get(&format!("{key}.secs")).parse().unwrap_or(99.0);
        assert!(
            secs < 5.0,
            "{why}: {key} failed only after {secs} s; a denial must be fast, never a hang\n{}",
            self.show()
        );
    }
}

/// Python prelude for sandboxed scripts: prints the RAN marker and defines `res`, `attempt`
/// (runs a function, reports ok:VALUE / err:TYPE:MSG / timeout and the seconds it took),
/// plain/proxy/SOCKS/TLS clients and a tiny DNS client.
pub const NET_PY: &str = r#"
import os, socket, ssl, struct, sys, time
print("CORDON-IT-RAN", flush=True)
def res(k, v):
    print("R %s=%s" % (k, str(v).replace("\r", "\\r").replace("\n", "\\n")[:3000]), flush=True)
def attempt(k, fn, *a, **kw):
    t = time.monotonic()
    try:
        res(k, "ok:%s" % (fn(*a, **kw),))
    except TimeoutError:
        res(k, "timeout")
    except BaseException as e:
        res(k, "err:%s:%s" % (type(e).__name__, e))
    res(k + ".secs", "%.2f" % (time.monotonic() - t))
def recv_all(s, limit=1 << 20):
    buf = b""
    while len(buf) < limit:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf
def must(data):
    if not data:
        raise ConnectionError("closed without data")
    return data
def recv_n(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return buf
def http_over(s, host, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
    data = recv_all(s)
    s.close()
    if not data:
        raise ConnectionError("empty response")
    return data.decode("latin1")
def plain_get(host, port, path, hosthdr=None, family=0):
    fam, _, _, _, addr = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0]
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(addr)
    return http_over(s, hosthdr or host, path)
def tcp(addr, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((addr, port))
    return s
def echo(s, data):
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    if not got:
        raise ConnectionError("closed without echo")
    return got.decode("latin1")
def proxy_connect(target, port):
    s = tcp("127.0.0.1", 3128)
    s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (target, port, target, port)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1)
        if not d:
            raise ConnectionError("proxy closed: %r" % head)
        head += d
    line = head.split(b"\r\n")[0].decode("latin1")
    if line.split(" ")[1:2] != ["200"]:
        s.close()
        raise ConnectionError("CONNECT refused: " + line)
    return s
def socks_connect(target, port):
    s = tcp("127.0.0.1", 1080)
    s.sendall(b"\x05\x01\x00")
    if recv_n(s, 2) != b"\x05\x00":
        raise ConnectionError("SOCKS5 greeting refused")
    name = target.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
    r = recv_n(s, 4)
    if r[1] != 0:
        s.close()
        raise ConnectionError("SOCKS5 reply %d" % r[1])
    alen = {1: 4, 4: 16}.get(r[3])
    recv_n(s, (alen if alen else recv_n(s, 1)[0]) + 2)
    return s
def tls_get(s, sni, path, hosthdr=None):
    ctx = ssl.create_default_context(cafile="ca.pem")
    t = ctx.wrap_socket(s, server_hostname=sni)
    return http_over(t, hosthdr or sni, path)
def status(resp):
    return resp.split("\r\n", 1)[0]
def dns_query(name, qtype=1, server=("127.0.0.1", 53)):
    q = os.urandom(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(q, server)
    data = s.recv(4096)
    s.close()
    rcode, ancount = data[3] & 0x0F, struct.unpack(">H", data[6:8])[0]
    def skip(i):
        while data[i] != 0:
            if data[i] & 0xC0 == 0xC0:
                return i + 2
            i += data[i] + 1
        return i + 1
    i = skip(12) + 4
    addrs = []
    for _ in range(ancount):
        i = skip(i)
        typ, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        rd = data[i + 10:i + 10 + rdlen]
        if typ == 1 and rdlen == 4:
            addrs.append(socket.inet_ntop(socket.AF_INET, rd))
        elif typ == 28 and rdlen == 16:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rd))
        i += 10 + rdlen
    return "rcode=%d an=%d addrs=%s" % (rcode, ancount, ",".join(addrs))
"#;

/// One network test: a fresh sandbox home plus a server address of its own.
pub struct NetTest {
    pub sb: Sandbox,
    pub net: &'static Internet,
    /// This test's server address (nobody else's records mention it).
    pub ip: String,
    pub test: String,
}

impl NetTest {
    /// Prepare a test, or print SKIP and return None when the test internet is unavailable.
    pub fn new(test: &str) -> Option<NetTest> {
        let net = match internet() {
            Ok(n) => n,
            Err(reason) => {
                skip(&format!("net::{test}"), &reason);
                return None;
            }
        };
        let sb = Sandbox::new(test);
        sb.write_host(&sb.ws.join("ca.pem"), &net.ca_pem);
        Some(NetTest {
            sb,
            net,
            ip: net.alloc(),
            test: test.into(),
        })
    }

    /// Write a policy file (outside the workspace) and return its path.
    pub fn policy(&self, toml: &str) -> String {
        let p = self.sb.root.join(format!("net-{}.toml", unique()));
        self.sb.write_host(&p, toml);
        p.display().to_string()
    }

    /// The usual policy: `allow` patterns, `cidrs`, and `hosts` (name, address) entries;
    /// NAME and OTHER_NAME always map to this test's address.
    pub fn std_policy(&self, allow: &[&str], cidrs: &[&str], hosts: &[(&str, &str)]) -> String {
        let list = |v: &[&str]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut t = format!(
            "[network]\nallow = [{}]\nallow_cidrs = [{}]\nunknown = \"deny\"\n\n[network.hosts]\n",
            list(allow),
            list(cidrs)
        );
        for (n, a) in [(NAME, self.ip.as_str()), (OTHER_NAME, self.ip.as_str())]
            .iter()
            .chain(hosts)
        {
            t.push_str(&format!("{n:?} = {a:?}\n"));
        }
        self.policy(&t)
    }

    /// `cordon run OPTS -- python3 -c NET_PY+SCRIPT`, results parsed.
    pub fn py(&self, opts: &[&str], script: &str) -> Results {
        let full = format!("{NET_PY}\n{script}");
        let out = assert_ran(self.sb.run_opts(opts, &["python3", "-c", &full]));
        Results::parse(out)
    }

    /// `cordon run OPTS -- bash -c SCRIPT` (with the RAN marker checked).
    pub fn sh(&self, opts: &[&str], script: &str) -> Out {
        self.sb.sh_opts(opts, script)
    }

    /// Records at this test's address, after a grace period for in-flight log lines.
    pub fn seen(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(300));
        self.net.seen_by(&self.ip)
    }

    /// Wait (up to 5 s) until a record at this test's address satisfies `pred`.
    pub fn wait_seen(&self, pred: impl Fn(&Value) -> bool) -> bool {
        wait_for(Duration::from_secs(5), || {
            self.net.seen_by(&self.ip).iter().any(&pred)
        })
    }

    /// Assert nothing at all reached this test's address (no SYN, datagram or request).
    pub fn assert_nothing_reached(&self, what: &str, detail: &str) {
        let seen = self.seen();
        assert!(
            seen.is_empty(),
            "{what}: the test server at {} was reached; it must not have been:\n{}\n{detail}",
            self.ip,
            show_records(&seen)
        );
    }

    /// Assert the HTTP(S) server at this address logged a request for `path`.
    pub fn assert_request(&self, srv: &str, path: &str, detail: &str) -> Value {
        let found =
            self.wait_seen(|r| r["srv"] == srv && r["ev"] == "request" && r["path"] == path);
        let seen = self.net.seen_by(&self.ip);
        assert!(
            found,
            "the {srv} server at {} never logged a request for {path}:\n{}\n{detail}",
            self.ip,
            show_records(&seen)
        );
        seen.into_iter()
            .find(|r| r["srv"] == srv && r["ev"] == "request" && r["path"] == path)
            .unwrap_or(Value::Null)
    }

    /// Assert no server at this address logged a request for `path`.
    pub fn assert_no_request(&self, path: &str, detail: &str) {
        let seen = self.seen();
        let hits: Vec<Value> = seen
            .iter()
            .filter(|r| r["ev"] == "request" && r["path"] == path)
            .cloned()
            .collect();
        assert!(
            hits.is_empty(),
            "a server at {} received {path}; it must not have:\n{}\n{detail}",
            self.ip,
            show_records(&hits)
        );
    }
}

/// A TCP listener on the HOST's 127.0.0.1 (random port) that records the first bytes of
/// every connection and answers `host-listener-ok`.
pub struct HostListener {
    pub port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl HostListener {
    /// Start it (the thread ends when the listener is dropped).
    pub fn start() -> HostListener {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a host loopback listener");
        let port = l.local_addr().expect("listener address").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = c else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 512];
                let n = c.read(&mut buf).unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Ok(mut v) = h.lock() {
                    v.push(text);
                }
                let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nhost-listener-ok\n");
            }
        });
        HostListener { port, hits, stop }
    }

    /// What the connections sent so far (one entry per connection).
    pub fn hits(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        self.hits.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for HostListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A currently free port on the host's 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// Parse `--audit` JSON lines (unparseable lines are kept as Null so they still count).
pub fn audit_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}
