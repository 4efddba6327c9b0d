//! The network policy: domain patterns, CIDR allowances, special ranges,
//! and the verdict (with the rule, reason and fix) for every destination.

use crate::host::{canonical_ip, parse_host, Host};
use crate::ranges::{embedded_v4, host_net, is_metadata, special_range};
use cordon_policy::{CidrPattern, Decision, DomainPattern, Ports, Refusal, Rule};
use std::collections::HashMap;
use std::net::IpAddr;

/// The rule of a destination that no rule names, under `unknown = "ask"` (a description:
/// whether to ask is the [`Decision::Ask`] variant, never this text).
const ASK_RULE: &str = "no rule: unknown = ask";
/// The rule reported for a connection a person allowed when asked.
const APPROVED_RULE: &str = "approved when asked (unknown = ask)";

/// What happens to a destination that no rule names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Unknown {
    /// Refuse.
    #[default]
    Deny,
    /// Ask the person (through the door's approver; refused without one).
    Ask,
}

/// Everything the network policy is built from.
#[derive(Clone, Debug, Default)]
pub struct NetConfig {
    /// Domain patterns that are allowed.
    pub allow: Vec<Rule<DomainPattern>>,
    /// Domain patterns that are denied (beat `allow`).
    pub deny: Vec<Rule<DomainPattern>>,
    /// CIDR ranges (with optional port) admitted as destinations.
    pub allow_cidrs: Vec<Rule<CidrPattern>>,
    /// `[network.hosts]`: name, address, origin.
    pub hosts: Vec<(String, IpAddr, String)>,
    /// What to do with destinations no rule names.
    pub unknown: Unknown,
    /// Managed (administrator) denies: beat everything.
    pub managed_deny: Vec<Rule<DomainPattern>>,
}

fn describe_domain(r: &Rule<DomainPattern>, kind: &str) -> String {
    format!("{kind} {} ({})", r.value, r.origin)
}

fn describe_cidr(r: &Rule<CidrPattern>) -> String {
    format!("allow_cidrs {} ({})", r.value, r.origin)
}

/// The compiled network policy.
#[derive(Debug)]
pub struct NetPolicy {
    allow: Vec<Rule<DomainPattern>>,
    deny: Vec<Rule<DomainPattern>>,
    managed_deny: Vec<Rule<DomainPattern>>,
    cidrs: Vec<Rule<CidrPattern>>,
    hosts: HashMap<String, Vec<IpAddr>>,
    unknown: Unknown,
}

/// How a port suffix is written in a fix (80/443 need none).
fn port_suffix(port: u16) -> String {
    if port == 80 || port == 443 {
        String::new()
    } else {
        format!(":{port}")
    }
}

impl NetPolicy {
    /// Compiles the configuration (the patterns were checked when the policy was parsed);
    /// a bad `[network.hosts]` name is an error naming its origin.
    pub fn new(cfg: NetConfig) -> Result<Self, String> {
        let mut hosts: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip, origin) in &cfg.hosts {
            match parse_host(name) {
                Ok(Host::Name(n)) => hosts.entry(n).or_default().push(canonical_ip(*ip)),
                _ => {
                    return Err(format!(
                        "{origin}: bad host name {name:?} in [network.hosts]"
                    ))
                }
            }
        }
        Ok(NetPolicy {
            allow: cfg.allow,
            deny: cfg.deny,
            managed_deny: cfg.managed_deny,
            cidrs: cfg.allow_cidrs,
            hosts,
            unknown: cfg.unknown,
        })
    }

    /// Addresses `[network.hosts]` gives for a canonical name.
    pub fn hosts_lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.hosts.get(name).map(Vec::as_slice)
    }

    /// The verdict for a target as named by the client, before resolution.
    pub fn check(&self, host: &Host, port: u16) -> Decision {
        match host {
            Host::Name(n) => self.name_verdict(n, port),
            Host::Ip(ip) => self.ip_verdict(None, *ip, port),
        }
    }

    /// The verdict for connecting to `ip`, resolved from `name` (or a raw IP
    /// target when `name` is `None`).
    pub fn check_resolved(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Decision {
        self.resolved_verdict(name, ip, port, false)
    }

    /// Like [`NetPolicy::check_resolved`] for a connection a person approved:
    /// an "ask" verdict counts as allowed; every other check (special ranges,
    /// metadata addresses, denies) still applies.
    pub fn check_resolved_approved(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Decision {
        self.resolved_verdict(name, ip, port, true)
    }

    fn resolved_verdict(
        &self,
        name: Option<&str>,
        ip: IpAddr,
        port: u16,
        approved: bool,
    ) -> Decision {
        let approve = |v: Decision| match v {
            v if approved && v.is_ask() => Decision::Allow {
                rule: APPROVED_RULE.into(),
            },
            v => v,
        };
        match name {
            None => approve(self.ip_verdict(None, ip, port)),
            Some(n) => match approve(self.name_verdict(n, port)) {
                Decision::Allow { rule } => match self.ip_verdict(Some(n), ip, port) {
                    Decision::Allow { rule: r2 } if r2.is_empty() => Decision::Allow { rule },
                    Decision::Allow { rule: r2 } => Decision::Allow {
                        rule: format!("{rule} + {r2}"),
                    },
                    deny => deny,
                },
                deny => deny,
            },
        }
    }

    /// Whether the DNS stub may answer for `name`: some port of it is allowed,
    /// or, under `unknown = "ask"`, may be asked about (the question comes at
    /// connect time, so resolvers get their answer at once).
    pub fn name_may_resolve(&self, name: &str) -> bool {
        let Ok(Host::Name(n)) = parse_host(name) else {
            return false;
        };
        let denied_everywhere = || {
            self.deny
                .iter()
                .chain(&self.managed_deny)
                .any(|d| d.value.ports() == Ports::Any && d.value.matches_name(&n))
        };
        if self.unknown == Unknown::Ask && !denied_everywhere() {
            return true;
        }
        self.allow
            .iter()
            .filter(|r| r.value.matches_name(&n))
            .any(|r| match r.value.ports() {
                Ports::Default => [80, 443]
                    .iter()
                    .any(|p| self.name_verdict(&n, *p).is_allow()),
                Ports::One(p) => self.name_verdict(&n, p).is_allow(),
                // Denies list finitely many ports unless one says `:*`.
                Ports::Any => !denied_everywhere(),
            })
    }

    fn name_verdict(&self, name: &str, port: u16) -> Decision {
        if let Some(r) = self
            .managed_deny
            .iter()
            .find(|r| r.value.matches(name, port))
        {
            return Decision::Deny(Refusal {
                rule: describe_domain(r, "managed deny"),
                reason: format!("{name}:{port} is forbidden by a managed policy"),
                fix: "none: a managed policy forbids it (ask your administrator)".into(),
            });
        }
        if let Some(r) = self.deny.iter().find(|r| r.value.matches(name, port)) {
            return Decision::Deny(Refusal {
                rule: describe_domain(r, "deny"),
                reason: format!("{name}:{port} matches a deny rule"),
                fix: format!("remove the deny rule {:?} ({})", r.value.as_str(), r.origin),
            });
        }
        if let Some(r) = self.allow.iter().find(|r| r.value.matches(name, port)) {
            return Decision::Allow {
                rule: describe_domain(r, "allow"),
            };
        }
        let pat = format!("{name}{}", port_suffix(port));
        // A built-in profile that allows the host says more than the bare name does.
        let profile = Some(port)
            .filter(|p| *p == 80 || *p == 443)
            .and_then(|_| cordon_policy::profile_suggestion(name))
            .map(|p| format!("{p}  or  "))
            .unwrap_or_default();
        self.no_rule(
            format!("no allow rule names {name} on port {port}"),
            format!("{profile}--allow-domain {pat}  or  [network] allow = [\"{pat}\"]"),
        )
    }

    /// What `unknown` decides for a destination no rule names.
    fn no_rule(&self, reason: String, fix: String) -> Decision {
        match self.unknown {
            Unknown::Deny => Decision::Deny(Refusal {
                rule: "no rule: unknown = deny".into(),
                reason,
                fix,
            }),
            Unknown::Ask => Decision::Ask(Refusal {
                rule: ASK_RULE.into(),
                reason,
                fix,
            }),
        }
    }

    /// The `allow_cidrs` entry admitting `ip` on `port`. For a name that a rule allowed
    /// (`named`), an entry written without a port only lifts the special-range refusal: the
    /// name rule already chose the ports. An entry that names ports still limits them.
    fn covering(&self, ip: IpAddr, port: u16, named: bool) -> Option<&Rule<CidrPattern>> {
        self.cidrs.iter().find(|c| {
            let ports = c.value.ports();
            (ports.contains(port) || (named && ports == Ports::Default))
                && c.value.net().contains(&ip)
        })
    }

    fn cidr_fix(ip: IpAddr, port: u16) -> String {
        let net = host_net(ip);
        format!("[network] allow_cidrs = [\"{net}{}\"]", port_suffix(port))
    }

    /// Returns `Allow` with an empty rule when a resolved name's address
    /// needs no CIDR entry.
    fn ip_verdict(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Decision {
        let ip = canonical_ip(ip);
        let what = match name {
            Some(n) => format!("{n} resolves to {ip}, which"),
            None => format!("{ip}"),
        };
        if let Some(m) = is_metadata(ip) {
            let exact = |a: IpAddr| {
                self.cidrs
                    .iter()
                    .find(|c| c.value.ports().contains(port) && c.value.net() == host_net(a))
            };
            return match exact(ip).or_else(|| exact(m)) {
                Some(c) => Decision::Allow {
                    rule: describe_cidr(c),
                },
                None => Decision::Deny(Refusal {
                    rule: "built-in: cloud metadata addresses are refused".into(),
                    reason: format!("{what} is a cloud metadata address"),
                    fix: Self::cidr_fix(m, port),
                }),
            };
        }
        let embedded = embedded_v4(ip).map(IpAddr::V4);
        let special = special_range(ip);
        let embedded_special = embedded.and_then(|e| special_range(e).map(|r| (e, r)));
        if name.is_some() && special.is_none() {
            return Decision::Allow {
                rule: String::new(),
            };
        }
        let cover = self.covering(ip, port, name.is_some());
        let cover_embedded = match embedded_special {
            Some((e, _)) => self.covering(e, port, name.is_some()),
            None => cover,
        };
        match (cover, cover_embedded) {
            (Some(c), Some(_)) => Decision::Allow {
                rule: describe_cidr(c),
            },
            _ => {
                let fix_ip = match (cover, embedded_special) {
                    (Some(_), Some((e, _))) => e,
                    _ => ip,
                };
                // A name's rule already chose the port: the address alone lifts the refusal.
                let fix_port = if name.is_some() { 443 } else { port };
                let fix = Self::cidr_fix(fix_ip, fix_port);
                let special_refusal = |reason| {
                    Decision::Deny(Refusal {
                        rule: "built-in: special-purpose ranges are refused".to_string(),
                        reason,
                        fix: fix.clone(),
                    })
                };
                match (special, embedded_special) {
                    (_, Some((e, r))) => special_refusal(format!("{what} embeds {e} ({r})")),
                    (Some(r), None) => special_refusal(format!("{what} is in {r}")),
                    (None, None) => self.no_rule(
                        format!(
                            "{what} is a raw IP destination; domain rules never admit IP literals"
                        ),
                        fix.clone(),
                    ),
                }
            }
        }
    }
}

/// A domain rule for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn test_domain(p: &str) -> Rule<DomainPattern> {
    Rule::new(
        DomainPattern::parse(p).expect("valid test pattern"),
        cordon_policy::Origin::bare(cordon_policy::Tier::User),
    )
}

#[cfg(test)]
mod tests;
