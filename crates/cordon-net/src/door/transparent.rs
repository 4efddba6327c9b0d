//! The transparent door: connections the interceptor redirected here. The
//! original destination is looked up by the client's address; denials reset
//! the connection at once.

use super::tunnel::{first_bytes, open, splice, unsynth};
use super::Ctx;
use crate::event::Kind;
use crate::host::{canonical_ip, Host};
use std::sync::Arc;
use tokio::net::TcpStream;

fn reset(s: TcpStream) {
    // SO_LINGER 0: close sends RST, so the caller fails fast instead of hanging.
    let _ = s.set_zero_linger();
    drop(s);
}

pub(crate) async fn serve(ctx: Arc<Ctx>, mut s: TcpStream) {
    let Ok(peer) = s.peer_addr() else {
        return reset(s);
    };
    let Some(dst) = ctx.dst.take(peer) else {
        let mut e = crate::event::Event::new(Kind::Deny, "transparent", peer.to_string(), 0);
        e.rule = "built-in: transparent door".into();
        e.reason = format!("no original destination registered for {peer}");
        ctx.emit(e);
        return reset(s);
    };
    let target = unsynth(&ctx, Host::Ip(canonical_ip(dst.ip())));
    let port = dst.port();
    let v = ctx.policy.check(&target, port);
    let approved = match ctx.admit("transparent", &target, port, v, Some(peer)).await {
        Ok(a) => a,
        Err((r, asked)) => {
            ctx.refuse("transparent", &target, port, r, asked);
            return reset(s);
        }
    };
    let Ok(first) = first_bytes(&ctx, "transparent", &mut s, &target, port, Vec::new()).await
    else {
        return reset(s);
    };
    let Ok((up, rule)) = open(&ctx, "transparent", &target, port, approved).await else {
        return reset(s);
    };
    splice(&ctx, "transparent", s, (up, rule), &first, &target, port).await;
}
