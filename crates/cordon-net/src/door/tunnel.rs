//! The common part of CONNECT, SOCKS5 and transparent tunnels: the
//! first-bytes check, then splicing with byte counts.

use super::io::{read_some, Counted, Counters};
use super::upstream::{connect, UpErr};
use super::Ctx;
use crate::event::Event;
use crate::host::Host;
use crate::inspect::{inspect, Inspect, MAX_FIRST_BYTES};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
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
        ctx.deny(
            via,
            target,
            port,
            "fronting check".into(),
            why,
            String::new(),
        );
        return Err(());
    }
}

/// Why a tunnel or request did not get an upstream connection.
pub(crate) struct Refused {
    /// Refused by policy (as opposed to a resolution or connect failure).
    pub(crate) denied: bool,
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
        Err(UpErr::Denied { rule, reason, fix }) => {
            let message = deny_text(target, port, &rule, &reason, &fix);
            ctx.deny(via, target, port, rule, reason, fix);
            Err(Refused {
                denied: true,
                message,
            })
        }
        Err(UpErr::Failed(why)) => {
            let mut e = Event::new("close", via, target.to_string(), port);
            e.decision = "error";
            e.reason = why.clone();
            ctx.emit(e);
            Err(Refused {
                denied: false,
                message: format!("cordon: {target}:{port}: {why}\n"),
            })
        }
    }
}

/// Copy buffer per direction (bounded: at most `max_conns` tunnels at once).
const SPLICE_BUF: usize = 128 * 1024;

/// Sends the buffered first bytes and splices both ways; logs open and close.
pub(crate) async fn splice<C: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    via: &'static str,
    client: &mut C,
    (upstream, rule): (TcpStream, String),
    first: &[u8],
    target: &Host,
    port: u16,
) {
    let mut e = Event::new("connect", via, target.to_string(), port);
    e.rule = rule.clone();
    ctx.emit(e);
    let counters = Arc::new(Counters::default());
    let mut up = Counted::new(upstream, counters.clone());
    let result = async {
        up.write_all(first).await?;
        // Large buffers: tokio's default 8 KiB means a syscall pair per 8 KiB and held a bulk
        // transfer to a fraction of the direct speed.
        tokio::io::copy_bidirectional_with_sizes(client, &mut up, SPLICE_BUF, SPLICE_BUF).await
    }
    .await;
    let (bytes_up, bytes_down) = counters.get();
    let mut e = Event::new("close", via, target.to_string(), port);
    e.rule = rule;
    e.bytes_up = bytes_up;
    e.bytes_down = bytes_down;
    if let Err(err) = result {
        e.reason = err.to_string();
    }
    ctx.emit(e);
}
