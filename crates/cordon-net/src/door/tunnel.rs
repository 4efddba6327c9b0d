//! The common part of CONNECT, SOCKS5 and transparent tunnels: the
//! first-bytes check, then splicing with byte counts.

use super::io::{read_some, Counters};
use super::kernel;
pub(crate) use super::upstream::Failure;
use super::upstream::{connect, UpErr};
use super::Ctx;
use crate::event::Event;
use crate::event::{Decided, Kind};
use crate::host::Host;
use crate::inspect::{inspect, Inspect, MAX_FIRST_BYTES};
use cordon_policy::Refusal;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Maps a synthetic address back to its name.
pub(crate) fn unsynth(ctx: &Ctx, host: Host) -> Host {
    match host {
        Host::Ip(ip) => match ctx.synth.name_of(ip) {
            Some(n) => Host::Name(n),
            None => Host::Ip(ip),
        },
        h => h,
    }
}

/// Reads what the client sends first and checks that it names `target`.
/// Ports where raw TCP is allowed are not inspected (the server may speak
/// first). Denials are logged here.
pub(crate) async fn first_bytes<C: AsyncRead + Unpin>(
    ctx: &Ctx,
    via: &'static str,
    client: &mut C,
    target: &Host,
    port: u16,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, ()> {
    if ctx.raw_allowed(port) {
        return Ok(buf);
    }
    let deadline = tokio::time::Instant::now() + ctx.opts.first_bytes_timeout;
    loop {
        let why = match inspect(&buf, target, port) {
            Inspect::Pass => return Ok(buf),
            Inspect::Deny(why) => why,
            Inspect::NeedMore => match read_some(client, &mut buf, MAX_FIRST_BYTES, deadline).await
            {
                Err(e) => e,
                Ok(0) => "client closed before sending anything checkable".into(),
                Ok(_) => continue,
            },
        };
        let r = Refusal {
            rule: "fronting check".into(),
            reason: why,
            fix: String::new(),
        };
        ctx.deny(via, target, port, r);
        return Err(());
    }
}

/// Why a tunnel or request did not get an upstream connection.
pub(crate) struct Refused {
    /// Refused by policy (as opposed to a resolution or connect failure).
    pub(crate) denied: bool,
    /// For a failure (not a denial): what failed.
    pub(crate) failure: Failure,
    /// Text for the person: destination, rule, reason, fix.
    pub(crate) message: String,
}

/// The explanation given to a person for a denial.
pub(crate) fn deny_text(target: &Host, port: u16, rule: &str, reason: &str, fix: &str) -> String {
    let fix = if fix.is_empty() { "none" } else { fix };
    format!(
        "cordon: connection to {target}:{port} denied\nrule: {rule}\nreason: {reason}\nto allow it: {fix}\n"
    )
}

/// Connects upstream, logging a denial or failure. `approved`: a person
/// allowed it when asked.
pub(crate) async fn open(
    ctx: &Ctx,
    via: &'static str,
    target: &Host,
    port: u16,
    approved: bool,
) -> Result<(TcpStream, String), Refused> {
    match connect(ctx, target, port, approved).await {
        Ok((s, rule, _ip)) => Ok((s, rule)),
        Err(UpErr::Denied(r)) => {
            let message = deny_text(target, port, &r.rule, &r.reason, &r.fix);
            ctx.deny(via, target, port, r);
            Err(Refused {
                denied: true,
                failure: Failure::Unreachable,
                message,
            })
        }
        Err(UpErr::Failed(failure, why)) => {
            // Audited as an error (not a denial): the policy allowed it; `cordon log` and the
            // exit line report it so the person learns why their tool saw a failure.
            let mut e = Event::new(Kind::Close, via, target.to_string(), port);
            e.decision = Decided::Error;
            e.reason = why.clone();
            ctx.emit(e);
            Err(Refused {
                denied: false,
                failure,
                message: format!(
                    "cordon: {target}:{port} is allowed but cannot be reached: {why}\n"
                ),
            })
        }
    }
}

/// The audit record of a tunnel's end: its byte counts and what ended it, if an error.
pub(crate) fn close_event(
    via: &'static str,
    target: &Host,
    port: u16,
    rule: String,
    counters: &Counters,
    err: Option<impl std::fmt::Display>,
) -> Event {
    let (bytes_up, bytes_down) = counters.get();
    let mut e = Event::new(Kind::Close, via, target.to_string(), port);
    e.rule = rule;
    e.bytes_up = bytes_up;
    e.bytes_down = bytes_down;
    if let Some(err) = err {
        e.reason = err.to_string();
    }
    e
}

/// A reader task and a writer task per direction (as hyper's proxy path has), so reading
/// the next chunk overlaps writing the last one; a single loop that read then wrote held bulk
/// transfers to about 0.6 of the direct speed on two CPUs (`benches/net.sh`). Large chunks
/// matter (growing them from small sizes measured worse: reads return what is there). The
/// most per tunnel is 2 x (QUEUE + 2) x CHUNK; an idle reader's untouched chunk is not
/// resident (allocations this size are mmap'd), so idle tunnels cost little.
const CHUNK: usize = 256 * 1024;
const QUEUE: usize = 2;

/// Copies `r` to `w` until `r` ends (then half-closes `w`), counting into `count`.
async fn pump<R, W>(mut r: R, mut w: W, count: Arc<Counters>, up: bool) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(QUEUE);
    let reader = tokio::spawn(async move {
        loop {
            let mut b = bytes::BytesMut::with_capacity(CHUNK);
            if r.read_buf(&mut b).await? == 0 {
                return Ok::<(), std::io::Error>(());
            }
            if tx.send(b.freeze()).await.is_err() {
                return Ok(());
            }
        }
    });
    let written = async {
        while let Some(b) = rx.recv().await {
            w.write_all(&b).await?;
            let c = if up { &count.up } else { &count.down };
            c.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
        w.shutdown().await
    }
    .await;
    if written.is_err() {
        reader.abort();
    }
    let read = reader.await.unwrap_or(Ok(()));
    written.and(read)
}

/// The client's TCP socket, taken out of `slot` when the client is one (transparent, SOCKS)
/// or an upgraded CONNECT over one; what hyper had read past the CONNECT head is sent upstream
/// first. `None` leaves `slot` as it was.
async fn client_socket<C: 'static>(
    slot: &mut Option<C>,
    upstream: &mut TcpStream,
    counters: &Counters,
) -> std::io::Result<Option<TcpStream>> {
    let any = slot as &mut dyn Any;
    if let Some(s) = any.downcast_mut::<Option<TcpStream>>() {
        return Ok(s.take());
    }
    let Some(s) = any.downcast_mut::<Option<TokioIo<Upgraded>>>() else {
        return Ok(None);
    };
    let Some(io) = s.take() else {
        return Ok(None);
    };
    match io.into_inner().downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            upstream.write_all(&parts.read_buf).await?;
            counters
                .up
                .fetch_add(parts.read_buf.len() as u64, Ordering::Relaxed);
            Ok(Some(parts.io.into_inner()))
        }
        Err(upgraded) => {
            *s = Some(TokioIo::new(upgraded));
            Ok(None)
        }
    }
}

/// Sends the buffered first bytes and splices both ways; logs open and close.
pub(crate) async fn splice<C: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    ctx: &Ctx,
    via: &'static str,
    client: C,
    (mut upstream, rule): (TcpStream, String),
    first: &[u8],
    target: &Host,
    port: u16,
) {
    if let (Some(l7), Host::Name(name)) = (&ctx.opts.l7, target) {
        if l7.intercepts(name) {
            let (l7, name) = (l7.clone(), name.clone());
            let (first, rule) = (first.to_vec(), rule);
            crate::l7::intercept::run(ctx, l7, via, client, upstream, rule, first, name, port)
                .await;
            return;
        }
    }
    if !ctx.raw_allowed(port) && first.first().is_some_and(|b| *b != 0x16) {
        // Checked plain HTTP: every request on the connection is checked, not only this one.
        super::plain::run(
            ctx,
            via,
            client,
            upstream,
            rule,
            first.to_vec(),
            target,
            port,
        )
        .await;
        return;
    }
    let mut e = Event::new(Kind::Connect, via, target.to_string(), port);
    e.rule = rule.clone();
    ctx.emit(e);
    let counters = Arc::new(Counters::default());
    let mut slot = Some(client);
    let result = async {
        upstream.write_all(first).await?;
        counters.up.fetch_add(first.len() as u64, Ordering::Relaxed);
        // The kernel moves the bytes when both ends are plain sockets and pipes are to be had
        // (each tunnel takes four more fds); otherwise they are copied through here.
        if let Some((_slot, pipes)) = kernel::kernel_slot() {
            if let Some(tcp) = client_socket(&mut slot, &mut upstream, &counters).await? {
                return kernel::tunnel(tcp, upstream, pipes, counters.clone()).await;
            }
        }
        let Some(client) = slot.take() else {
            return Ok(());
        };
        let (cr, cw) = tokio::io::split(client);
        let (ur, uw) = upstream.into_split();
        let up = tokio::spawn(pump(cr, uw, counters.clone(), true));
        let down = pump(ur, cw, counters.clone(), false).await;
        if down.is_err() {
            up.abort();
        }
        let up = up.await.unwrap_or(Ok(()));
        down.and(up)
    }
    .await;
    ctx.emit(close_event(
        via,
        target,
        port,
        rule,
        &counters,
        result.err(),
    ));
}
