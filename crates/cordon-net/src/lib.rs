//! cordon's network door.
//!
//! The sandbox has only loopback; listeners bound inside it are served here,
//! on the host's network, and every connection is checked against the
//! [`NetPolicy`] before anything reaches the destination.

pub mod host;
pub mod policy;
pub mod ranges;

pub use host::{parse_host, Host};
pub use policy::{NetConfig, NetPolicy, RuleSrc, Unknown, Verdict};

pub mod dns;
pub mod event;
pub mod httphead;
pub mod inspect;
pub mod origdst;
pub mod parse;
pub mod sni;
pub mod socks;
pub mod synth;

pub use event::Event;
pub use origdst::OriginalDst;
pub use synth::Synth;
pub mod door;

pub use door::{Door, DoorOptions, Listeners};
