//! Resolving and connecting upstream: every resolved address is checked, and
//! the connection goes to exactly an address that passed.

use super::Ctx;
use crate::host::{canonical_ip, Host};
use cordon_policy::{Decision, Refusal};
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpStream;

/// Why no upstream connection was made.
pub(crate) enum UpErr {
    /// The policy refused.
    Denied(Refusal),
    /// Resolution or connection failed.
    Failed(Failure, String),
}

/// What went wrong reaching an allowed destination (SOCKS5 has a reply code for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The name has no address (or resolving it failed or timed out).
    Unresolved,
    /// The destination answered with a refusal.
    Refused,
    /// No answer in time, or no route.
    Unreachable,
}

impl UpErr {
    fn from_decision(v: Decision) -> UpErr {
        match v {
            // An address that still needs asking was not approved: refused.
            Decision::Deny(r) | Decision::Ask(r) => UpErr::Denied(r),
            Decision::Allow { rule } => {
                UpErr::Failed(Failure::Unreachable, format!("unexpected allow by {rule}"))
            }
        }
    }
}

async fn resolve(ctx: &Ctx, name: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    if let Some(ips) = ctx.policy.hosts_lookup(name) {
        return Ok(ips.to_vec());
    }
    let lookup = tokio::net::lookup_host((name, port));
    match tokio::time::timeout(ctx.opts.connect_timeout, lookup).await {
        Err(_) => Err(format!("resolving {name} timed out")),
        Ok(Err(e)) => Err(format!("cannot resolve {name}: {e}")),
        Ok(Ok(it)) => Ok(it.map(|a| canonical_ip(a.ip())).collect()),
    }
}

/// Resolves `target`, checks every address, connects to the first allowed
/// one that answers. Returns the stream, the rule and the address used.
/// `approved`: a person allowed this connection when asked.
pub(crate) async fn connect(
    ctx: &Ctx,
    target: &Host,
    port: u16,
    approved: bool,
) -> Result<(TcpStream, String, IpAddr), UpErr> {
    let (name, candidates) = match target {
        Host::Ip(ip) => (None, vec![*ip]),
        Host::Name(n) => (
            Some(n.as_str()),
            resolve(ctx, n, port)
                .await
                .map_err(|e| UpErr::Failed(Failure::Unresolved, e))?,
        ),
    };
    let mut allowed = Vec::new();
    let mut first_denial = None;
    for ip in candidates {
        let v = if approved {
            ctx.policy.check_resolved_approved(name, ip, port)
        } else {
            ctx.policy.check_resolved(name, ip, port)
        };
        match v {
            Decision::Allow { rule } => allowed.push((ip, rule)),
            deny => {
                first_denial.get_or_insert(deny);
            }
        }
    }
    if allowed.is_empty() {
        return Err(match first_denial {
            Some(d) => UpErr::from_decision(d),
            None => UpErr::Failed(Failure::Unresolved, format!("{target} has no addresses")),
        });
    }
    let mut last_err = (Failure::Unreachable, String::new());
    for (ip, rule) in allowed {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(ctx.opts.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, rule, ip));
            }
            Ok(Err(e)) => {
                let f = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    Failure::Refused
                } else {
                    Failure::Unreachable
                };
                last_err = (f, format!("connecting to {addr}: {e}"));
            }
            Err(_) => {
                last_err = (
                    Failure::Unreachable,
                    format!("connecting to {addr} timed out"),
                )
            }
        }
    }
    Err(UpErr::Failed(last_err.0, last_err.1))
}

/// The upstream side of a tunnel that is served request by request (plain HTTP, or an
/// intercepted one): the connection the door opened for the check, then a kept sender.
pub(crate) struct Kept<B> {
    pub(crate) spare: Option<TcpStream>,
    pub(crate) sender: Option<hyper::client::conn::http1::SendRequest<B>>,
}

/// What the next request goes over.
pub(crate) enum Next<B> {
    /// The kept sender, ready.
    Ready(hyper::client::conn::http1::SendRequest<B>),
    /// A connection to hand-shake on: the spare one, or a new one to the same address.
    Fresh(TcpStream),
}

impl<B: hyper::body::Body + 'static> Kept<B> {
    pub(crate) fn new(spare: TcpStream) -> Self {
        Kept {
            spare: Some(spare),
            sender: None,
        }
    }

    /// Reconnections go to `addr` only: the address that was checked, never resolved again.
    pub(crate) async fn next(
        &mut self,
        addr: SocketAddr,
        timeout: std::time::Duration,
    ) -> Result<Next<B>, String> {
        if let Some(mut s) = self.sender.take() {
            if s.ready().await.is_ok() {
                return Ok(Next::Ready(s));
            }
        }
        let tcp = match self.spare.take() {
            Some(t) => t,
            None => match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return Err(format!("connecting to {addr}: {e}")),
                Err(_) => return Err(format!("connecting to {addr} timed out")),
            },
        };
        let _ = tcp.set_nodelay(true);
        Ok(Next::Fresh(tcp))
    }
}
