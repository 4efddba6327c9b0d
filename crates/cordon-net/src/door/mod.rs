//! The door: serves the listeners the sandbox bound, on a dedicated tokio
//! runtime in a background thread.

mod dns;
mod http;
pub(crate) mod io;
mod kernel;
mod plain;
mod socks;
mod transparent;
mod tunnel;
pub(crate) mod upstream;

use crate::approve::{Approver, AskRequest};
use crate::event::{Asked, Event, Kind};
use crate::host::Host;
use crate::origdst::OriginalDst;
use crate::policy::NetPolicy;
use crate::synth::Synth;
use cordon_policy::{Decision, Refusal};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Listening sockets bound inside the sandbox's network namespace.
#[derive(Default)]
pub struct Listeners {
    /// HTTP proxy (absolute-form and CONNECT).
    pub http: Vec<std::net::TcpListener>,
    /// SOCKS5.
    pub socks: Vec<std::net::TcpListener>,
    /// The transparent door for intercepted connects.
    pub transparent: Vec<std::net::TcpListener>,
    /// DNS stub over UDP.
    pub dns_udp: Vec<std::net::UdpSocket>,
    /// DNS stub over TCP.
    pub dns_tcp: Vec<std::net::TcpListener>,
}

/// Limits and timeouts of the door.
#[derive(Clone)]
pub struct DoorOptions {
    /// How long a client may take to send the bytes that are checked
    /// (ClientHello, request head) on a tunnel.
    pub first_bytes_timeout: Duration,
    /// How long a client may take to send a request head, SOCKS5 handshake
    /// or DNS message.
    pub head_timeout: Duration,
    /// Timeout for resolving and for each upstream connect.
    pub connect_timeout: Duration,
    /// Most concurrent client connections; the excess is refused.
    pub max_conns: usize,
    /// Ports on which a tunnel's first bytes must be a TLS ClientHello or an
    /// HTTP request naming the destination; elsewhere (ports a rule named
    /// explicitly) raw TCP passes.
    pub checked_ports: Vec<u16>,
    /// Decides destinations the policy says to ask about; `None` refuses them.
    pub approver: Option<Arc<dyn Approver>>,
    /// Secrets and request rules (layer 7); `None`: every tunnel is spliced untouched.
    pub l7: Option<Arc<crate::l7::L7>>,
}

impl std::fmt::Debug for DoorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorOptions")
            .field("first_bytes_timeout", &self.first_bytes_timeout)
            .field("head_timeout", &self.head_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_conns", &self.max_conns)
            .field("checked_ports", &self.checked_ports)
            .field("approver", &self.approver.is_some())
            .field("l7", &self.l7.is_some())
            .finish()
    }
}

impl Default for DoorOptions {
    fn default() -> Self {
        DoorOptions {
            first_bytes_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_conns: 1024,
            checked_ports: vec![80, 443],
            approver: None,
            l7: None,
        }
    }
}

type OnEvent = Arc<dyn Fn(Event) + Send + Sync>;

/// What every connection handler shares.
pub(crate) struct Ctx {
    pub(crate) policy: Arc<NetPolicy>,
    pub(crate) synth: Arc<Synth>,
    pub(crate) dst: Arc<OriginalDst>,
    pub(crate) on_event: OnEvent,
    pub(crate) opts: DoorOptions,
    conns: Arc<Semaphore>,
}

impl Ctx {
    pub(crate) fn emit(&self, e: Event) {
        (self.on_event)(e);
    }

    /// Reports a refusal the policy (or a built-in check) decided.
    pub(crate) fn deny(&self, via: &'static str, target: &Host, port: u16, r: Refusal) {
        self.refuse(via, target, port, r, Asked::Not);
    }

    /// Reports a connection turned away at admission.
    pub(crate) fn refuse(
        &self,
        via: &'static str,
        target: &Host,
        port: u16,
        r: Refusal,
        asked: Asked,
    ) {
        self.emit(Event::refused(via, target.to_string(), port, r, asked));
    }

    /// Applies `v`, asking the approver when it says "ask" (the caller's
    /// connection waits meanwhile). `Ok(approved)` to go on, where `approved`
    /// means a person allowed it; `Err` is the refusal for the caller to report
    /// with [`Ctx::refuse`].
    pub(crate) async fn admit(
        &self,
        via: &'static str,
        target: &Host,
        port: u16,
        v: Decision,
        peer: Option<SocketAddr>,
    ) -> Result<bool, (Refusal, Asked)> {
        let r = match v {
            Decision::Allow { .. } => return Ok(false),
            Decision::Deny(r) => return Err((r, Asked::Not)),
            Decision::Ask(r) => r,
        };
        let Some(approver) = &self.opts.approver else {
            return Err((
                Refusal {
                    // The words `cordon log` uses for the same refusal.
                    reason: format!("asked; denied by no approver (no rule names {target}:{port})"),
                    ..r
                },
                Asked::Nobody,
            ));
        };
        let req = AskRequest {
            via,
            target: target.clone(),
            port,
            rule: r.rule.clone(),
            fix: r.fix.clone(),
            peer,
        };
        match approver.ask(req).await {
            o if o.allowed() => Ok(true),
            o => Err((
                Refusal {
                    // The words `cordon log` uses: "asked; denied by" who or what refused (the
                    // approver's outcome says which), and where the question is recorded.
                    reason: format!(
                        "asked; denied by {} (no rule names {target}:{port}; see `cordon log`)",
                        o.by()
                    ),
                    ..r
                },
                Asked::Answered(o),
            )),
        }
    }

    /// Whether a tunnel to `port` skips the first-bytes check.
    pub(crate) fn raw_allowed(&self, port: u16) -> bool {
        !self.opts.checked_ports.contains(&port)
    }

    fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.conns.clone().try_acquire_owned().ok()
    }
}

/// The running door.
pub struct Door {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    synth: Arc<Synth>,
}

impl Door {
    /// Starts serving with default limits; returns immediately.
    /// `on_event` gets every decision; it runs on the door's runtime and must
    /// not block long. Dropping the `Door` stops it too.
    pub fn start(
        l: Listeners,
        policy: Arc<NetPolicy>,
        dst: Arc<OriginalDst>,
        on_event: Arc<dyn Fn(Event) + Send + Sync>,
    ) -> std::io::Result<Door> {
        Self::start_with(l, policy, dst, on_event, DoorOptions::default())
    }

    /// Like [`Door::start`], with explicit limits and timeouts.
    pub fn start_with(
        l: Listeners,
        policy: Arc<NetPolicy>,
        dst: Arc<OriginalDst>,
        on_event: Arc<dyn Fn(Event) + Send + Sync>,
        opts: DoorOptions,
    ) -> std::io::Result<Door> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cordon-net")
            .enable_io()
            .enable_time()
            .build()?;
        let synth = Arc::new(Synth::new());
        let ctx = Arc::new(Ctx {
            policy,
            synth: synth.clone(),
            dst,
            on_event,
            conns: Arc::new(Semaphore::new(opts.max_conns.max(1))),
            opts,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        {
            let _guard = rt.enter();
            let tcp = |v: Vec<std::net::TcpListener>| -> std::io::Result<Vec<TcpListener>> {
                v.into_iter()
                    .map(|s| {
                        s.set_nonblocking(true)?;
                        TcpListener::from_std(s)
                    })
                    .collect()
            };
            for s in tcp(l.http)? {
                spawn_accept(&rt, ctx.clone(), s, "http", http::serve);
            }
            for s in tcp(l.socks)? {
                spawn_accept(&rt, ctx.clone(), s, "socks", socks::serve);
            }
            for s in tcp(l.transparent)? {
                spawn_accept(&rt, ctx.clone(), s, "transparent", transparent::serve);
            }
            for s in tcp(l.dns_tcp)? {
                spawn_accept(&rt, ctx.clone(), s, "dns", dns::serve_tcp);
            }
            for u in l.dns_udp {
                u.set_nonblocking(true)?;
                let u = tokio::net::UdpSocket::from_std(u)?;
                rt.spawn(dns::serve_udp(ctx.clone(), u));
            }
        }
        let thread = std::thread::Builder::new()
            .name("cordon-net-door".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                // The sandbox is gone when the door stops; nothing is left to wait for, and
                // waiting (for a blocking name lookup, say) would only delay cordon's exit.
                rt.shutdown_background();
            })?;
        Ok(Door {
            stop: Some(stop),
            thread: Some(thread),
            synth,
        })
    }

    /// The DNS stub's name <-> synthetic address map.
    pub fn synthetic(&self) -> Arc<Synth> {
        self.synth.clone()
    }

    /// Stops serving and waits for the runtime to wind down.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn spawn_accept<F, Fut>(
    rt: &tokio::runtime::Runtime,
    ctx: Arc<Ctx>,
    l: TcpListener,
    via: &'static str,
    serve: F,
) where
    F: Fn(Arc<Ctx>, TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    rt.spawn(async move {
        loop {
            let (stream, peer) = match l.accept().await {
                Ok(x) => x,
                Err(_) => {
                    // Out of fds or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(permit) = ctx.permit() else {
                let _ = stream.set_zero_linger();
                let mut e = Event::new(Kind::Deny, via, peer.to_string(), 0);
                e.rule = "built-in: connection limit".into();
                e.reason = format!("more than {} concurrent connections", ctx.opts.max_conns);
                ctx.emit(e);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let fut = serve(ctx.clone(), stream);
            tokio::spawn(async move {
                fut.await;
                drop(permit);
            });
        }
    });
}
