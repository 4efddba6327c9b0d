//! Audit events: every decision the door makes.

use cordon_policy::Outcome;

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `connect`, `deny`, `dns` or `close`.
    pub kind: &'static str,
    /// `http`, `connect`, `socks`, `transparent` or `dns`.
    pub via: &'static str,
    /// The destination name or address (for DNS: the queried name).
    pub target: String,
    /// The destination port (0 for DNS).
    pub port: u16,
    /// `allow`, `deny`, or for DNS `answered`, `nxdomain`, `refused`, ...
    pub decision: &'static str,
    /// The rule that decided.
    pub rule: String,
    /// Why (for DNS: the query type and outcome).
    pub reason: String,
    /// For denials: the flag or policy line that would allow it.
    pub fix: String,
    /// Bytes sent towards the destination (on `close`).
    pub bytes_up: u64,
    /// Bytes received from the destination (on `close`).
    pub bytes_down: u64,
    /// For a destination the policy said to ask about: how the question ended (the
    /// approval broker records the question and its answer on its own).
    pub asked: Option<Outcome>,
}

impl Event {
    /// An event with no byte counts.
    pub fn new(kind: &'static str, via: &'static str, target: String, port: u16) -> Self {
        Event {
            kind,
            via,
            target,
            port,
            decision: if kind == "deny" { "deny" } else { "allow" },
            rule: String::new(),
            reason: String::new(),
            fix: String::new(),
            bytes_up: 0,
            bytes_down: 0,
            asked: None,
        }
    }
}
