//! cordon's network door.
//!
//! The sandbox's network namespace has only loopback and no routes. Sandbox
//! init binds listeners inside it and hands them to the supervisor, which
//! serves them here, on the host's network ([`Door`]):
//!
//! - HTTP proxy: absolute-form forwarding of plain HTTP and CONNECT;
//! - SOCKS5: CONNECT with remote name resolution, no authentication;
//! - the transparent door: connects intercepted elsewhere (seccomp user
//!   notification) arrive here; [`OriginalDst`] says where they were headed;
//! - the DNS stub: answers allowed names with synthetic per-name addresses
//!   ([`Synth`]) and never forwards a query anywhere.
//!
//! Every destination is checked by [`NetPolicy`] before anything is sent
//! upstream: the name first, then every resolved address (special-purpose
//! ranges need `allow_cidrs`), and on tunnels to ports 80/443 the client's
//! first bytes (TLS SNI or HTTP Host) must name the same destination. The
//! connection goes to exactly the address that was checked. A destination
//! the policy says to "ask" about is held while an [`Approver`] decides.

// The door handles hostile bytes and needs no syscall of its own: tokio and std reach the kernel.
#![forbid(unsafe_code)]
pub mod approve;
/// Host parsing lives with the policy vocabulary; re-exported for the door's modules.
pub use cordon_policy::host;
pub mod dns;
pub mod door;
pub mod event;
pub mod httphead;
pub mod inspect;
pub mod l7;
pub mod origdst;
pub mod parse;
pub mod policy;
pub mod precheck;
pub mod ranges;
pub mod sni;
pub mod socks;
pub mod synth;

pub use approve::{Approver, AskRequest};
pub use cordon_policy::{Decision, Outcome, Refusal};
pub use door::{Door, DoorOptions, Listeners};
pub use event::Event;
pub use host::{parse_host, Host};
pub use l7::{L7Config, L7};
pub use origdst::OriginalDst;
pub use policy::{NetConfig, NetPolicy, Unknown};
pub use precheck::Precheck;
pub use synth::Synth;
