//! Audit events: every decision the door makes.

use cordon_policy::{Outcome, Refusal};
use serde::{Deserialize, Serialize};

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A connection admitted upstream.
    Connect,
    /// A connection or request refused.
    Deny,
    /// A DNS query answered by the stub.
    Dns,
    /// A connection ended (with its byte counts), or an allowed one that failed.
    Close,
    /// The door itself failed (it could not start).
    Error,
}

/// What was decided, as an event records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    /// Allowed.
    Allow,
    /// Refused.
    Deny,
    /// The policy said to ask and there was nobody to ask: refused.
    Ask,
    /// Allowed, but it failed (resolving, connecting, upstream TLS).
    Error,
    /// DNS: answered with addresses.
    Answered,
    /// DNS: the name may resolve, but not for this type.
    Nodata,
    /// DNS: no such name (or not one the policy lets resolve).
    Nxdomain,
    /// DNS: refused (zone transfers, updates...).
    Refused,
    /// DNS: malformed query.
    Formerr,
    /// DNS: an opcode the stub does not implement.
    Notimp,
    /// DNS: the stub could not answer.
    Servfail,
}

impl Decided {
    /// The spelling in the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Decided::Allow => "allow",
            Decided::Deny => "deny",
            Decided::Ask => "ask",
            Decided::Error => "error",
            Decided::Answered => "answered",
            Decided::Nodata => "nodata",
            Decided::Nxdomain => "nxdomain",
            Decided::Refused => "refused",
            Decided::Formerr => "formerr",
            Decided::Notimp => "notimp",
            Decided::Servfail => "servfail",
        }
    }
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What it records.
    pub kind: Kind,
    /// `http`, `connect`, `socks`, `transparent` or `dns`.
    pub via: &'static str,
    /// The destination name or address (for DNS: the queried name).
    pub target: String,
    /// The destination port (0 for DNS).
    pub port: u16,
    /// What was decided.
    pub decision: Decided,
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

/// Whether a refused connection was asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// The policy refused it outright.
    Not,
    /// The policy said to ask, and there was nobody to ask.
    Nobody,
    /// The approver was asked; this is how it ended.
    Answered(Outcome),
}

impl Event {
    /// The record of a refused connection.
    pub fn refused(via: &'static str, target: String, port: u16, r: Refusal, asked: Asked) -> Self {
        let mut e = Event::new(Kind::Deny, via, target, port);
        match asked {
            Asked::Not => {}
            // Nobody to ask: refused, but reported as what the policy asked for.
            Asked::Nobody => e.decision = Decided::Ask,
            Asked::Answered(o) => e.asked = Some(o),
        }
        e.rule = r.rule;
        e.reason = r.reason;
        e.fix = r.fix;
        e
    }

    /// An event with no byte counts.
    pub fn new(kind: Kind, via: &'static str, target: String, port: u16) -> Self {
        Event {
            kind,
            via,
            target,
            port,
            decision: if kind == Kind::Deny {
                Decided::Deny
            } else {
                Decided::Allow
            },
            rule: String::new(),
            reason: String::new(),
            fix: String::new(),
            bytes_up: 0,
            bytes_down: 0,
            asked: None,
        }
    }
}
