//! The ask hook: a destination whose verdict is "ask" (`unknown = "ask"` and no
//! rule names it) is held while an [`Approver`] decides. Without an approver
//! such destinations are refused, as before.

use crate::host::Host;
use cordon_policy::Outcome;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// One question about one held connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AskRequest {
    /// The listener the connection came through (`transparent`, `socks`, ...).
    pub via: &'static str,
    /// The destination as the client named it (synthetic addresses mapped back to names).
    pub target: Host,
    /// The destination port.
    pub port: u16,
    /// The rule that sent it to "ask".
    pub rule: String,
    /// The flag or policy line that would allow it for good.
    pub fix: String,
    /// The client's address as the door sees it (inside the sandbox's network namespace).
    pub peer: Option<SocketAddr>,
}

/// Decides held connections. `ask` resolves to [`Outcome::Granted`] to admit exactly the
/// connection asked about; any other outcome refuses (a dropped future must resolve to a
/// refusal too).
pub trait Approver: Send + Sync {
    /// Asks about one connection; the connection waits until this resolves.
    fn ask(&self, req: AskRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;
}

#[cfg(test)]
mod tests;
