//! The DNS stub's UDP and TCP listeners.

use super::io::read_some;
use super::Ctx;
use crate::dns::{respond, Answer, MAX_MESSAGE};
use crate::event::Event;
use crate::event::{Decided, Kind};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

fn log(ctx: &Ctx, a: &Answer) {
    let mut e = Event::new(Kind::Dns, "dns", a.name.clone(), 0);
    e.decision = a.decision;
    e.rule = if a.decision == Decided::Answered || a.decision == Decided::Nodata {
        "name allowed by policy".into()
    } else {
        String::new()
    };
    e.reason = format!("{} {}", a.qtype, a.decision.name());
    ctx.emit(e);
}

pub(crate) async fn serve_udp(ctx: Arc<Ctx>, sock: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let a = respond(&buf[..n], &ctx.policy, &ctx.synth);
        log(&ctx, &a);
        if let Some(r) = a.response {
            let _ = sock.send_to(&r, from).await;
        }
    }
}

pub(crate) async fn serve_tcp(ctx: Arc<Ctx>, mut s: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let deadline = tokio::time::Instant::now() + ctx.opts.head_timeout;
        while buf.len() < 2 {
            match read_some(&mut s, &mut buf, 2 + MAX_MESSAGE, deadline).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
        if len > MAX_MESSAGE {
            return;
        }
        while buf.len() < 2 + len {
            match read_some(&mut s, &mut buf, 2 + MAX_MESSAGE, deadline).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let a = respond(&buf[2..2 + len], &ctx.policy, &ctx.synth);
        buf.drain(..2 + len);
        log(&ctx, &a);
        let Some(r) = a.response else { return };
        let Ok(rlen) = u16::try_from(r.len()) else {
            return;
        };
        let mut out = rlen.to_be_bytes().to_vec();
        out.extend_from_slice(&r);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}
