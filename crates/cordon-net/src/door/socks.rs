//! The SOCKS5 listener.

use super::tunnel::{first_bytes, open, splice, unsynth, Failure};
use super::Ctx;
use crate::event::Kind;
use crate::parse::Parsed;
use crate::socks::{
    parse_greeting, parse_request, reply, METHOD_NONE, METHOD_NO_AUTH, REP_HOST_UNREACHABLE,
    REP_NOT_ALLOWED, REP_OK, REP_REFUSED,
};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::io::read_some;

const MAX_HANDSHAKE: usize = 600;

pub(crate) async fn serve(ctx: Arc<Ctx>, mut s: TcpStream) {
    let deadline = tokio::time::Instant::now() + ctx.opts.head_timeout;
    let mut buf = Vec::new();
    let no_auth = loop {
        match parse_greeting(&buf) {
            Ok(Parsed::Done(ok, n)) => {
                buf.drain(..n);
                break ok;
            }
            Ok(Parsed::Incomplete) => {
                match read_some(&mut s, &mut buf, MAX_HANDSHAKE, deadline).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            Err(_) => return,
        }
    };
    if !no_auth {
        let _ = s.write_all(&METHOD_NONE).await;
        return;
    }
    if s.write_all(&METHOD_NO_AUTH).await.is_err() {
        return;
    }
    let req = loop {
        match parse_request(&buf) {
            Ok(Parsed::Done(r, n)) => {
                buf.drain(..n);
                break r;
            }
            Ok(Parsed::Incomplete) => {
                match read_some(&mut s, &mut buf, MAX_HANDSHAKE, deadline).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            Err((code, why)) => {
                let mut e = crate::event::Event::new(Kind::Deny, "socks", String::new(), 0);
                e.rule = "socks5".into();
                e.reason = why;
                ctx.emit(e);
                let _ = s.write_all(&reply(code)).await;
                return;
            }
        }
    };
    // Bytes pipelined after the request belong to the tunnel.
    let target = unsynth(&ctx, req.host);
    let port = req.port;
    let v = ctx.policy.check(&target, port);
    let approved = match ctx
        .admit("socks", &target, port, v, s.peer_addr().ok())
        .await
    {
        Ok(a) => a,
        Err((r, asked)) => {
            ctx.refuse("socks", &target, port, r, asked);
            let _ = s.write_all(&reply(REP_NOT_ALLOWED)).await;
            return;
        }
    };
    // Connected before the reply, so the reply code says what happened (first bytes are
    // still checked before anything goes upstream).
    let (up, rule) = match open(&ctx, "socks", &target, port, approved).await {
        Ok(x) => x,
        Err(r) => {
            let code = match r.failure {
                _ if r.denied => REP_NOT_ALLOWED,
                Failure::Refused => REP_REFUSED,
                Failure::Unresolved | Failure::Unreachable => REP_HOST_UNREACHABLE,
            };
            let _ = s.write_all(&reply(code)).await;
            return;
        }
    };
    if s.write_all(&reply(REP_OK)).await.is_err() {
        return;
    }
    let Ok(first) = first_bytes(&ctx, "socks", &mut s, &target, port, buf).await else {
        return;
    };
    splice(&ctx, "socks", s, (up, rule), &first, &target, port).await;
}
