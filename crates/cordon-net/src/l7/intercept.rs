//! An intercepted tunnel: TLS terminated with a leaf minted for the checked host (the SNI
//! must name it), HTTP/1.1 served on it, each request checked and rewritten, then forwarded
//! over cordon's own TLS connection to the same, already-checked upstream address (never
//! resolved again), whose certificate is verified for the host name against the host's
//! trust store. Plain HTTP on a tunnel (port 80) gets the same treatment without TLS.

use super::body::L7Body;
use super::request::{exfil, prepare, scrub_response, text, Denied};
use super::L7;
use crate::door::io::{read_some, Prefixed};
use crate::door::upstream::{Kept, Next};
use crate::door::Ctx;
use crate::event::Event;
use crate::event::{Decided, Kind};
use crate::inspect::MAX_FIRST_BYTES;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

type OnEvent = Arc<dyn Fn(Event) + Send + Sync>;

/// One intercepted client connection.
struct Conn {
    l7: Arc<L7>,
    on_event: OnEvent,
    via: &'static str,
    host: String,
    port: u16,
    addr: SocketAddr,
    tls: bool,
    connect_timeout: Duration,
    up: tokio::sync::Mutex<Kept<L7Body>>,
}

impl Conn {
    fn deny(&self, d: Denied) -> Response<L7Body> {
        (self.on_event)(d.event(self.via, &self.host, self.port));
        d.response()
    }

    /// The Host header must name the checked host (a different virtual host on the same
    /// address would get the secret otherwise).
    fn host_ok(&self, req: &Request<hyper::body::Incoming>) -> bool {
        let named = |s: &str| {
            let h = crate::host::split_host_port(s.trim())
                .map(|(h, _)| h.to_string())
                .unwrap_or_default();
            h.eq_ignore_ascii_case(&self.host)
        };
        let hosts: Vec<&HeaderValue> = req.headers().get_all(header::HOST).iter().collect();
        let header_ok = match hosts.as_slice() {
            [] => true,
            [h] => h.to_str().is_ok_and(named),
            _ => false,
        };
        header_ok && req.uri().authority().is_none_or(|a| named(a.as_str()))
    }

    async fn handle(self: Arc<Self>, mut req: Request<hyper::body::Incoming>) -> Response<L7Body> {
        if req.headers().contains_key(header::UPGRADE) {
            return text(
                StatusCode::NOT_IMPLEMENTED,
                format!("cordon: protocol upgrades (WebSocket) are not supported on {}, whose traffic cordon inspects (secrets or request rules)\n", self.host),
            );
        }
        if !self.host_ok(&req) {
            return self.deny(Denied {
                status: StatusCode::FORBIDDEN,
                rule: "built-in: no fronting".into(),
                reason: format!("the request names another host than {}", self.host),
                fix: "send a Host header that names the host connected to".into(),
            });
        }
        if !req.headers().contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(&self.host) {
                req.headers_mut().insert(header::HOST, v);
            }
        }
        if let Some(pq) = req.uri().path_and_query().cloned() {
            // Origin form upstream, whatever the client sent.
            if let Ok(u) = pq.as_str().parse() {
                *req.uri_mut() = u;
            }
        }
        let (out, trip) = match prepare(&self.l7, &self.host, self.tls, req).await {
            Ok(x) => x,
            Err(d) => return self.deny(d),
        };
        let sent = match self.sender().await {
            Ok(mut s) => {
                let fut = s.send_request(out);
                self.up.lock().await.sender = Some(s);
                fut.await
            }
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("cordon: {}:{}: {e}\n", self.host, self.port),
                )
            }
        };
        if let Some(k) = trip.tripped() {
            return self.deny(exfil(&self.l7, k, &self.host, self.tls));
        }
        match sent {
            Ok(resp) => scrub_response(&self.l7, resp),
            Err(e) => text(
                StatusCode::BAD_GATEWAY,
                format!("cordon: upstream {}:{}: {e}\n", self.host, self.port),
            ),
        }
    }

    /// A sender ready for the next request: the kept one, or a new connection to the same
    /// address.
    async fn sender(&self) -> Result<SendRequest<L7Body>, String> {
        let next = self
            .up
            .lock()
            .await
            .next(self.addr, self.connect_timeout)
            .await?;
        let tcp = match next {
            Next::Ready(s) => return Ok(s),
            Next::Fresh(t) => t,
        };
        if self.tls {
            let cfg = self.l7.client_config()?;
            let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| format!("{}: {e}", self.host))?;
            let tls = tokio::time::timeout(
                self.connect_timeout,
                tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
            )
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS to {} ({}): {e}", self.host, self.addr))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<L7Body>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (s, conn) = hyper::client::conn::http1::handshake::<_, L7Body>(io)
        .await
        .map_err(|e| format!("upstream handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(s)
}

/// Serves an intercepted tunnel to `host:port` until either side ends it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<C>(
    ctx: &Ctx,
    l7: Arc<L7>,
    via: &'static str,
    mut client: C,
    upstream: TcpStream,
    rule: String,
    mut first: Vec<u8>,
    host: String,
    port: u16,
) where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(addr) = upstream.peer_addr() else {
        return;
    };
    let mut e = Event::new(Kind::Connect, via, host.clone(), port);
    e.rule = rule.clone();
    e.reason = "intercepted: secrets or request rules apply to this host".into();
    ctx.emit(e);
    let deadline = tokio::time::Instant::now() + ctx.opts.first_bytes_timeout;
    if first.is_empty()
        && read_some(&mut client, &mut first, MAX_FIRST_BYTES, deadline)
            .await
            .is_err()
    {
        return;
    }
    let tls = first.first() == Some(&0x16);
    let conn = Arc::new(Conn {
        l7: l7.clone(),
        on_event: ctx.on_event.clone(),
        via,
        host: host.clone(),
        port,
        addr,
        tls,
        connect_timeout: ctx.opts.connect_timeout,
        up: tokio::sync::Mutex::new(Kept::new(upstream)),
    });
    let io = Prefixed::new(first, client);
    let result = if tls {
        let acc = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
        let start = match tokio::time::timeout_at(deadline, acc).await {
            Ok(Ok(s)) => s,
            _ => return,
        };
        let sni = start.client_hello().server_name().map(str::to_string);
        if sni
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case(&host))
        {
            let mut e = Event::new(Kind::Deny, via, host.clone(), port);
            e.rule = "fronting check".into();
            e.reason = format!("TLS server name {sni:?} does not match {host}");
            ctx.emit(e);
            return;
        }
        let cfg = match l7.ca.server_config(&host) {
            Ok(c) => c,
            Err(why) => {
                let mut e = Event::new(Kind::Close, via, host.clone(), port);
                e.decision = Decided::Error;
                e.reason = why;
                ctx.emit(e);
                return;
            }
        };
        match tokio::time::timeout_at(deadline, start.into_stream(cfg)).await {
            Ok(Ok(tls)) => serve(ctx, conn, tls).await,
            _ => Err("TLS handshake with the client failed".to_string()),
        }
    } else {
        serve(ctx, conn, io).await
    };
    let mut e = Event::new(Kind::Close, via, host, port);
    e.rule = rule;
    if let Err(why) = result {
        e.reason = why;
    }
    ctx.emit(e);
}

async fn serve<S>(ctx: &Ctx, conn: Arc<Conn>, io: S) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(conn.handle(req).await) }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(ctx.opts.head_timeout)
        .max_buf_size(crate::httphead::MAX_HEAD)
        .max_headers(crate::httphead::MAX_HEADERS);
    b.serve_connection(TokioIo::new(io), svc)
        .await
        .map_err(|e| e.to_string())
}
