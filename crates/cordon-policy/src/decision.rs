//! What a check decides and how a question put to a person ends: the vocabulary the door,
//! the path guard, the approval broker and the audit trail share, so none of them compares
//! rule texts to learn what happened.

use serde::{Deserialize, Serialize};

/// Why a destination or operation was refused (or is to be asked about).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The rule that decided, with its origin (`deny x.test (user ~/.config/cordon/policy.toml:3)`),
    /// or the built-in rule.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
    /// The flag or policy line that would allow it (may be empty).
    pub fix: String,
}

/// The decision of a policy check. The audit writes it as `"decision"` with its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Allowed by `rule` (with its origin).
    Allow {
        /// The rule that allowed it, with its origin; empty when no rule was needed.
        rule: String,
    },
    /// Refused.
    Deny(Refusal),
    /// No rule decides and the policy says to ask a person (`unknown = "ask"`, `ask_read`,
    /// `ask_write`); refused unless one allows it.
    Ask(Refusal),
}

impl Decision {
    /// Whether this is an [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// Whether this is an [`Decision::Ask`].
    pub fn is_ask(&self) -> bool {
        matches!(self, Decision::Ask(_))
    }

    /// The deciding rule.
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow { rule } => rule,
            Decision::Deny(r) | Decision::Ask(r) => &r.rule,
        }
    }

    /// The refusal, for a decision that is not an allow.
    pub fn refusal(self) -> Option<Refusal> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Deny(r) | Decision::Ask(r) => Some(r),
        }
    }
}

/// How long a person's "yes" lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    /// This one connection or operation.
    Once,
    /// Everything with the same target until the sandbox ends (`[approval] session_scope`).
    Session,
    /// Covered by an earlier [`Grant::Session`]: nobody was asked this time.
    Remembered,
}

/// Why a question was refused without a person's answer because too many came at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flood {
    /// More prompts pending than `max_pending`.
    QueueFull,
    /// More new prompts in the last minute than allowed.
    RateLimit,
}

/// How one question put to a person (through the approval broker) ended. Everything but
/// [`Outcome::Granted`] refuses: the machinery fails closed.
///
/// On disk (audit events, the approver protocol) it is the pair `"decision"`
/// (`allow_once`, `allow_session`, `deny`) and `"by"` (who or what decided).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "OutcomeWire", try_from = "OutcomeWire")]
pub enum Outcome {
    /// A person allowed it (or an earlier session allowance covered it).
    Granted(Grant),
    /// A person refused it.
    Denied,
    /// Nobody answered in time.
    Timeout,
    /// No approver was connected.
    NoApprover,
    /// The last approver went away while the question was pending.
    ApproverGone,
    /// Refused unasked: too many questions.
    Flooded(Flood),
    /// The sandbox ended while the question was pending (or before it was asked).
    SandboxEnded,
    /// The one asking went away first (its system call was interrupted): nothing to admit.
    Withdrawn,
}

impl Outcome {
    /// Whether the connection or operation may go ahead.
    pub fn allowed(self) -> bool {
        matches!(self, Outcome::Granted(_))
    }

    /// `allow_once`, `allow_session` or `deny`.
    pub fn decision(self) -> &'static str {
        match self {
            Outcome::Granted(Grant::Once) => "allow_once",
            Outcome::Granted(Grant::Session | Grant::Remembered) => "allow_session",
            _ => "deny",
        }
    }

    /// Who or what decided, as the audit and the approver protocol name it.
    pub fn by(self) -> &'static str {
        match self {
            Outcome::Granted(Grant::Once | Grant::Session) | Outcome::Denied => "approver",
            Outcome::Granted(Grant::Remembered) => "session",
            Outcome::Timeout => "timeout",
            Outcome::NoApprover => "no approver",
            Outcome::ApproverGone => "approver gone",
            Outcome::Flooded(Flood::RateLimit) => "rate limit",
            Outcome::Flooded(Flood::QueueFull) => "queue full",
            Outcome::SandboxEnded => "sandbox ended",
            Outcome::Withdrawn => "withdrawn",
        }
    }

    /// The outcome written as `decision` and `by`; `None` for a pair no outcome writes.
    pub fn from_parts(decision: &str, by: &str) -> Option<Outcome> {
        let o = match (decision, by) {
            ("allow_once", "approver") => Outcome::Granted(Grant::Once),
            ("allow_session", "approver") => Outcome::Granted(Grant::Session),
            ("allow_session", "session") => Outcome::Granted(Grant::Remembered),
            ("deny", "approver") => Outcome::Denied,
            ("deny", "timeout") => Outcome::Timeout,
            ("deny", "no approver") => Outcome::NoApprover,
            ("deny", "approver gone") => Outcome::ApproverGone,
            ("deny", "rate limit") => Outcome::Flooded(Flood::RateLimit),
            ("deny", "queue full") => Outcome::Flooded(Flood::QueueFull),
            ("deny", "sandbox ended") => Outcome::SandboxEnded,
            ("deny", "withdrawn") => Outcome::Withdrawn,
            _ => return None,
        };
        Some(o)
    }
}

/// [`Outcome`] as written: two strings.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OutcomeWire {
    decision: String,
    by: String,
}

impl From<Outcome> for OutcomeWire {
    fn from(o: Outcome) -> Self {
        OutcomeWire {
            decision: o.decision().into(),
            by: o.by().into(),
        }
    }
}

impl TryFrom<OutcomeWire> for Outcome {
    type Error = String;
    fn try_from(w: OutcomeWire) -> Result<Self, String> {
        Outcome::from_parts(&w.decision, &w.by)
            .ok_or_else(|| format!("unknown approval outcome {:?} by {:?}", w.decision, w.by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Outcome; 11] = [
        Outcome::Granted(Grant::Once),
        Outcome::Granted(Grant::Session),
        Outcome::Granted(Grant::Remembered),
        Outcome::Denied,
        Outcome::Timeout,
        Outcome::NoApprover,
        Outcome::ApproverGone,
        Outcome::Flooded(Flood::QueueFull),
        Outcome::Flooded(Flood::RateLimit),
        Outcome::SandboxEnded,
        Outcome::Withdrawn,
    ];

    #[test]
    fn every_outcome_round_trips_through_its_two_fields() {
        for o in ALL {
            let v = serde_json::to_value(o).unwrap();
            assert_eq!(v["decision"], o.decision(), "{o:?}");
            assert_eq!(v["by"], o.by(), "{o:?}");
            assert_eq!(v.as_object().map(|m| m.len()), Some(2), "{v}");
            assert_eq!(serde_json::from_value::<Outcome>(v).unwrap(), o);
            assert_eq!(o.allowed(), o.decision() != "deny", "{o:?}");
        }
        let pairs: std::collections::HashSet<_> =
            ALL.iter().map(|o| (o.decision(), o.by())).collect();
        assert_eq!(pairs.len(), ALL.len(), "two outcomes share a spelling");
    }

    #[test]
    fn unknown_outcomes_are_errors_not_guesses() {
        for bad in [
            r#"{"decision":"allow_once","by":"timeout"}"#,
            r#"{"decision":"allow","by":"approver"}"#,
            r#"{"decision":"deny"}"#,
            r#"{"decision":7,"by":"approver"}"#,
        ] {
            assert!(serde_json::from_str::<Outcome>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decisions_round_trip_with_the_audit_field_names() {
        let r = Refusal {
            rule: "no rule: unknown = ask".into(),
            reason: "no allow rule names x.test on port 443".into(),
            fix: "--allow-domain x.test".into(),
        };
        for d in [
            Decision::Allow {
                rule: "allow x.test (user)".into(),
            },
            Decision::Deny(r.clone()),
            Decision::Ask(r.clone()),
        ] {
            let v = serde_json::to_value(&d).unwrap();
            assert_eq!(v["rule"], d.rule());
            assert_eq!(
                serde_json::from_value::<Decision>(v.clone()).unwrap(),
                d,
                "{v}"
            );
        }
        let ask = serde_json::to_value(Decision::Ask(r.clone())).unwrap();
        assert_eq!(ask["decision"], "ask");
        assert_eq!(ask["fix"], "--allow-domain x.test");
        assert!(Decision::Ask(r.clone()).is_ask() && !Decision::Deny(r.clone()).is_ask());
        assert_eq!(Decision::Deny(r.clone()).refusal(), Some(r));
    }
}
