//! The HTTP proxy listener: absolute-form forwarding of plain HTTP, and
//! CONNECT tunnels.

use super::io::{Counted, Counters};
use super::tunnel::{deny_text, first_bytes, open, splice, unsynth};
use super::Ctx;
use crate::event::{Asked, Event, Kind};
use crate::host::{parse_host, split_host_port, Host};
use crate::httphead::{parse_authority, MAX_HEAD, MAX_HEADERS};
use crate::l7::request::strip_hop_by_hop;
use bytes::Bytes;
use cordon_policy::Refusal;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpStream;

/// The longest CONNECT target accepted.
pub(crate) const MAX_CONNECT_TARGET: usize = 300;

type Body = BoxBody<Bytes, crate::l7::body::BoxError>;

fn text(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(msg))
            .map_err(|n: Infallible| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn bad_request(ctx: &Ctx, via: &'static str, target: &str, why: String) -> Response<Body> {
    let mut e = Event::new(
        Kind::Deny,
        via,
        target.chars().take(MAX_CONNECT_TARGET).collect(),
        0,
    );
    e.rule = "built-in: malformed request".into();
    e.reason = why.clone();
    ctx.emit(e);
    text(
        StatusCode::BAD_REQUEST,
        format!("cordon: bad request: {why}\n"),
    )
}

fn forbidden(
    ctx: &Ctx,
    via: &'static str,
    target: &Host,
    port: u16,
    (r, asked): (Refusal, Asked),
) -> Response<Body> {
    let body = deny_text(target, port, &r.rule, &r.reason, &r.fix);
    ctx.refuse(via, target, port, r, asked);
    text(StatusCode::FORBIDDEN, body)
}

pub(crate) async fn serve(ctx: Arc<Ctx>, s: TcpStream) {
    let peer = s.peer_addr().ok();
    let io = TokioIo::new(s);
    let svc_ctx = ctx.clone();
    // Set when a response should end the connection (a refused CONNECT or a
    // malformed request): the client's next bytes cannot be trusted.
    let closing = Arc::new(tokio::sync::Notify::new());
    let svc_closing = closing.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let ctx = svc_ctx.clone();
        let closing = svc_closing.clone();
        async move {
            let is_connect = req.method() == Method::CONNECT;
            let r = if is_connect {
                connect(ctx, req, peer).await
            } else {
                forward(ctx, req, peer).await
            };
            let close = r
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v == "close");
            if close || (is_connect && !r.status().is_success()) {
                closing.notify_one();
            }
            Ok::<_, Infallible>(r)
        }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(ctx.opts.head_timeout)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let conn = b.serve_connection(io, svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.notified() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(ctx.opts.head_timeout, conn).await;
}

async fn connect(
    ctx: Arc<Ctx>,
    mut req: Request<Incoming>,
    peer: Option<std::net::SocketAddr>,
) -> Response<Body> {
    let raw = req.uri().to_string();
    if raw.len() > MAX_CONNECT_TARGET {
        return bad_request(&ctx, "connect", &raw, "CONNECT target too long".into());
    }
    let Some(auth) = req.uri().authority().map(|a| a.as_str().to_string()) else {
        return bad_request(&ctx, "connect", &raw, "CONNECT needs host:port".into());
    };
    let parsed = parse_authority(&auth).and_then(|(h, p)| match p {
        Some(p) => Ok((h, p)),
        None => Err("CONNECT needs a port".into()),
    });
    let (host, port) = match parsed {
        Ok(x) => x,
        Err(e) => return bad_request(&ctx, "connect", &raw, e),
    };
    let target = unsynth(&ctx, host);
    let v = ctx.policy.check(&target, port);
    let approved = match ctx.admit("connect", &target, port, v, peer).await {
        Ok(a) => a,
        Err(v) => return forbidden(&ctx, "connect", &target, port, v),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Resolved and connected before the answer: a destination that cannot be reached gets a
    // 502 naming the cause, not a "200" followed by a hang-up. Nothing is sent upstream until
    // the first bytes passed their check.
    let (up, rule) = match open(&ctx, "connect", &target, port, approved).await {
        Ok(x) => x,
        Err(r) if r.denied => return text(StatusCode::FORBIDDEN, r.message),
        Err(r) => return text(StatusCode::BAD_GATEWAY, r.message),
    };
    let task_ctx = ctx.clone();
    tokio::spawn(async move {
        let ctx = task_ctx;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let Ok(first) = first_bytes(&ctx, "connect", &mut client, &target, port, Vec::new()).await
        else {
            return;
        };
        splice(&ctx, "connect", client, (up, rule), &first, &target, port).await;
    });
    let mut resp = Response::new(
        Full::new(Bytes::new())
            .map_err(|n: Infallible| match n {})
            .boxed(),
    );
    resp.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            b"Connection established",
        ));
    resp
}

/// Refuses ambiguous message framing (request smuggling).
pub(crate) fn framing_ok(h: &HeaderMap) -> Result<(), String> {
    let cl: Vec<&HeaderValue> = h.get_all(header::CONTENT_LENGTH).iter().collect();
    let te = h.get_all(header::TRANSFER_ENCODING).iter().count();
    if te > 0 && !cl.is_empty() {
        return Err("both Transfer-Encoding and Content-Length".into());
    }
    if cl.len() > 1 {
        return Err("several Content-Length headers".into());
    }
    if te > 1 {
        return Err("several Transfer-Encoding headers".into());
    }
    if let Some(v) = h.get(header::TRANSFER_ENCODING) {
        if !v.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err("unsupported Transfer-Encoding".into());
        }
    }
    Ok(())
}

async fn forward(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    peer: Option<std::net::SocketAddr>,
) -> Response<Body> {
    let uri = req.uri().clone();
    let raw = uri.to_string();
    if uri.scheme_str() != Some("http") {
        return bad_request(
            &ctx,
            "http",
            &raw,
            "only absolute http:// URLs are forwarded (use CONNECT for https)".into(),
        );
    }
    let Some(auth) = uri.authority().map(|a| a.as_str().to_string()) else {
        return bad_request(&ctx, "http", &raw, "no host in URL".into());
    };
    let (host, port) = match parse_authority(&auth) {
        Ok((h, p)) => (h, p.unwrap_or(80)),
        Err(e) => return bad_request(&ctx, "http", &raw, e),
    };
    let target = unsynth(&ctx, host);
    let hosts: Vec<&HeaderValue> = req.headers().get_all(header::HOST).iter().collect();
    if hosts.len() > 1 {
        return bad_request(&ctx, "http", &raw, "several Host headers".into());
    }
    if let Some(h) = hosts.first() {
        let matches = h
            .to_str()
            .ok()
            .and_then(|s| {
                split_host_port(s.trim())
                    .ok()
                    .map(|(h, p)| (h.to_string(), p))
            })
            .and_then(|(h, p)| parse_host(&h).ok().map(|h| (unsynth(&ctx, h), p)))
            .is_some_and(|(h, p)| h == target && p.is_none_or(|p| p == port));
        if !matches || h.as_bytes().contains(&b'@') {
            let r = Refusal {
                rule: "built-in: no fronting".into(),
                reason: format!(
                    "Host header {h:?} does not match the request target {target}:{port}"
                ),
                fix: "send a Host header that names the URL's host".into(),
            };
            return forbidden(&ctx, "http", &target, port, (r, Asked::Not));
        }
    }
    if let Err(e) = framing_ok(req.headers()) {
        return bad_request(&ctx, "http", &raw, e);
    }
    let v = ctx.policy.check(&target, port);
    let approved = match ctx.admit("http", &target, port, v, peer).await {
        Ok(a) => a,
        Err(v) => return forbidden(&ctx, "http", &target, port, v),
    };
    // Layer 7 before any upstream connection: a refused request never leaves.
    let host_s = target.to_string();
    let (req, trip) = match &ctx.opts.l7 {
        Some(l7) => match crate::l7::request::prepare(l7, &host_s, false, req).await {
            Ok((r, t)) => (r, Some(t)),
            Err(d) => {
                ctx.emit(d.event("http", &host_s, port));
                return d.response();
            }
        },
        None => (req.map(|b| b.map_err(Into::into).boxed()), None),
    };
    let (up, rule) = match open(&ctx, "http", &target, port, approved).await {
        Ok(x) => x,
        Err(r) if r.denied => return text(StatusCode::FORBIDDEN, r.message),
        Err(r) => return text(StatusCode::BAD_GATEWAY, r.message),
    };
    let (mut parts, body) = req.into_parts();
    // The prepared request's target: layer 7 may have swapped a placeholder in the query.
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = match pq.parse::<Uri>() {
        Ok(u) => u,
        Err(_) => return bad_request(&ctx, "http", &raw, "bad path".into()),
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    if !parts.headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&auth) {
            parts.headers.insert(header::HOST, v);
        }
    }
    let counters = Arc::new(Counters::default());
    let io = TokioIo::new(Counted::new(up, counters.clone()));
    let (mut sender, conn) = match hyper::client::conn::http1::handshake::<_, Body>(io).await {
        Ok(x) => x,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("cordon: upstream handshake: {e}\n"),
            )
        }
    };
    let mut e = Event::new(Kind::Connect, "http", target.to_string(), port);
    e.rule = rule.clone();
    ctx.emit(e);
    let close_ctx = ctx.clone();
    let close_target = target.to_string();
    tokio::spawn(async move {
        let r = conn.await;
        let (bytes_up, bytes_down) = counters.get();
        let mut e = Event::new(Kind::Close, "http", close_target, port);
        e.rule = rule;
        e.bytes_up = bytes_up;
        e.bytes_down = bytes_down;
        if let Err(err) = r {
            e.reason = err.to_string();
        }
        close_ctx.emit(e);
    });
    let sent = sender.send_request(Request::from_parts(parts, body)).await;
    if let (Some(l7), Some(k)) = (&ctx.opts.l7, trip.and_then(|t| t.tripped())) {
        let d = crate::l7::request::exfil(l7, k, &host_s, false);
        ctx.emit(d.event("http", &host_s, port));
        return d.response();
    }
    match sent {
        Ok(resp) => match &ctx.opts.l7 {
            Some(l7) => crate::l7::request::scrub_response(l7, resp),
            None => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.map_err(Into::into).boxed())
            }
        },
        Err(e) => text(StatusCode::BAD_GATEWAY, format!("cordon: upstream: {e}\n")),
    }
}
