//! Plain HTTP on a checked tunnel (the transparent door, or a CONNECT or SOCKS5 tunnel to
//! port 80): served request by request, so every request on a keep-alive connection must
//! name the allowed host, not only the first one the tunnel was checked with. A request
//! naming another host is refused and ends the connection. A protocol upgrade the server
//! accepts (101) is spliced as is from then on, as a direct connection would carry it.

use super::io::{Counted, Counters, Prefixed};
use super::tunnel::{close_event, deny_text};
use super::upstream::{Kept, Next};
use super::Ctx;
use crate::event::Event;
use crate::event::Kind;
use crate::host::Host;
use crate::httphead::{host_matches, Head};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
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

type Body = BoxBody<Bytes, hyper::Error>;
type OnEvent = Arc<dyn Fn(Event) + Send + Sync>;

/// One plain-HTTP tunnel.
struct Plain {
    on_event: OnEvent,
    via: &'static str,
    target: Host,
    port: u16,
    /// The address the tunnel was checked and connected to; reconnections go there only.
    addr: SocketAddr,
    connect_timeout: Duration,
    counters: Arc<Counters>,
    up: tokio::sync::Mutex<Kept<Incoming>>,
}

/// A response that ends the connection (the client's later bytes are not trusted).
fn closing(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(msg))
            .map_err(|n: Infallible| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

impl Plain {
    fn refuse(&self, status: StatusCode, rule: &str, reason: String) -> Response<Body> {
        let mut e = Event::new(Kind::Deny, self.via, self.target.to_string(), self.port);
        e.rule = rule.into();
        e.reason = reason.clone();
        (self.on_event)(e);
        closing(
            status,
            deny_text(&self.target, self.port, rule, &reason, "none"),
        )
    }

    /// The same check as the tunnel's first request: one Host header naming the destination,
    /// and an absolute-form target (if any) naming it too.
    fn names_target(&self, req: &Request<Incoming>) -> Result<(), String> {
        let hosts: Vec<&HeaderValue> = req.headers().get_all(header::HOST).iter().collect();
        let host = match hosts.as_slice() {
            [h] => h
                .to_str()
                .map_err(|_| "Host header is not text".to_string())?,
            [] => return Err("request without a Host header".into()),
            _ => return Err("several Host headers".into()),
        };
        let head = Head {
            method: req.method().to_string(),
            target: req.uri().to_string(),
            host: host.trim().to_string(),
        };
        host_matches(&head, &self.target, self.port)
    }

    async fn handle(self: Arc<Self>, mut req: Request<Incoming>) -> Response<Body> {
        if let Err(why) = super::http::framing_ok(req.headers()) {
            return self.refuse(StatusCode::BAD_REQUEST, "built-in: malformed request", why);
        }
        if let Err(why) = self.names_target(&req) {
            return self.refuse(
                StatusCode::FORBIDDEN,
                "fronting check",
                format!("a later request on this connection: {why}"),
            );
        }
        let client_upgrade = req
            .headers()
            .contains_key(header::UPGRADE)
            .then(|| hyper::upgrade::on(&mut req));
        let mut sender = match self.sender().await {
            Ok(s) => s,
            Err(why) => {
                return closing(
                    StatusCode::BAD_GATEWAY,
                    format!("cordon: {}:{}: {why}\n", self.target, self.port),
                )
            }
        };
        let sent = sender.send_request(req).await;
        self.up.lock().await.sender = Some(sender);
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                return closing(
                    StatusCode::BAD_GATEWAY,
                    format!("cordon: upstream {}:{}: {e}\n", self.target, self.port),
                )
            }
        };
        if let (StatusCode::SWITCHING_PROTOCOLS, Some(client)) = (resp.status(), client_upgrade) {
            let server = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(c), Ok(s)) = (client.await, server.await) {
                    let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                }
            });
        }
        resp.map(BodyExt::boxed)
    }

    /// A sender for the next request: the kept one, or a new connection to the same address.
    async fn sender(&self) -> Result<SendRequest<Incoming>, String> {
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
        let io = TokioIo::new(Counted::new(tcp, self.counters.clone()));
        let (s, conn) = hyper::client::conn::http1::Builder::new()
            .preserve_header_case(true)
            .handshake::<_, Incoming>(io)
            .await
            .map_err(|e| format!("upstream handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(s)
    }
}

/// Serves a plain-HTTP tunnel to `target:port` until either side ends it; `first` holds the
/// bytes already read (and checked).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<C>(
    ctx: &Ctx,
    via: &'static str,
    client: C,
    upstream: TcpStream,
    rule: String,
    first: Vec<u8>,
    target: &Host,
    port: u16,
) where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(addr) = upstream.peer_addr() else {
        return;
    };
    let mut e = Event::new(Kind::Connect, via, target.to_string(), port);
    e.rule = rule.clone();
    ctx.emit(e);
    let counters = Arc::new(Counters::default());
    let plain = Arc::new(Plain {
        on_event: ctx.on_event.clone(),
        via,
        target: target.clone(),
        port,
        addr,
        connect_timeout: ctx.opts.connect_timeout,
        counters: counters.clone(),
        up: tokio::sync::Mutex::new(Kept::new(upstream)),
    });
    let svc = hyper::service::service_fn(move |req| {
        let plain = plain.clone();
        async move { Ok::<_, Infallible>(plain.handle(req).await) }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(ctx.opts.head_timeout)
        .max_buf_size(crate::httphead::MAX_HEAD)
        .max_headers(crate::httphead::MAX_HEADERS)
        .preserve_header_case(true);
    let io = TokioIo::new(Prefixed::new(first, client));
    let result = b.serve_connection(io, svc).with_upgrades().await;
    ctx.emit(close_event(
        via,
        target,
        port,
        rule,
        &counters,
        result.err(),
    ));
}
