//! The network policy: domain patterns, CIDR allowances, special ranges,
//! and the verdict (with the rule, reason and fix) for every destination.

use crate::host::{canonical_ip, parse_host, validate_name, Host};
use crate::ranges::{embedded_v4, host_net, is_metadata, special_range};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

/// A rule as written, with where it came from (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSrc {
    /// The pattern text, e.g. `*.example.com:8443` or `10.0.0.0/8`.
    pub pattern: String,
    /// Where it came from, e.g. `--allow-domain` or `policy.toml:12`.
    pub origin: String,
}

impl RuleSrc {
    /// Convenience constructor.
    pub fn new(pattern: impl Into<String>, origin: impl Into<String>) -> Self {
        RuleSrc {
            pattern: pattern.into(),
            origin: origin.into(),
        }
    }
}

/// The rule of a destination that no rule names, under `unknown = "ask"`.
pub const ASK_RULE: &str = "no rule: unknown = ask";
/// The rule reported for a connection a person allowed when asked.
pub const APPROVED_RULE: &str = "approved when asked (unknown = ask)";

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
    pub allow: Vec<RuleSrc>,
    /// Domain patterns that are denied (beat `allow`).
    pub deny: Vec<RuleSrc>,
    /// CIDR ranges (with optional port) admitted as destinations.
    pub allow_cidrs: Vec<RuleSrc>,
    /// `[network.hosts]`: name, address, origin.
    pub hosts: Vec<(String, IpAddr, String)>,
    /// What to do with destinations no rule names.
    pub unknown: Unknown,
    /// Managed (administrator) denies: beat everything.
    pub managed_deny: Vec<RuleSrc>,
    /// Names a ready-made option that would allow a host no rule names (`--profile npm`),
    /// offered first in the fix.
    pub suggest: Option<fn(&str) -> Option<String>>,
}

/// The decision for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by `rule`.
    Allow {
        /// The rule that allowed it, with its origin.
        rule: String,
    },
    /// Refused.
    Deny {
        /// The rule that decided, or `no rule: unknown = deny`.
        rule: String,
        /// Why, in words.
        reason: String,
        /// The flag or policy line that would allow it.
        fix: String,
    },
}

impl Verdict {
    /// Whether this is an `Allow`.
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow { .. })
    }
    /// Whether the policy says to ask about this destination (no rule names
    /// it and `unknown = "ask"`).
    pub fn is_ask(&self) -> bool {
        matches!(self, Verdict::Deny { rule, .. } if rule == ASK_RULE)
    }
    /// The deciding rule.
    pub fn rule(&self) -> &str {
        match self {
            Verdict::Allow { rule } | Verdict::Deny { rule, .. } => rule,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ports {
    /// No port given: 80 and 443.
    Default,
    One(u16),
    Any,
}

impl Ports {
    fn contains(self, port: u16) -> bool {
        match self {
            Ports::Default => port == 80 || port == 443,
            Ports::One(p) => p == port,
            Ports::Any => true,
        }
    }

    fn parse(s: Option<&str>) -> Result<Ports, String> {
        match s {
            None => Ok(Ports::Default),
            Some("*") => Ok(Ports::Any),
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => Err(format!("bad port {p:?}")),
                    Ok(n) => Ok(Ports::One(n)),
                }
            }
            Some(p) => Err(format!("bad port {p:?}")),
        }
    }
}

#[derive(Clone, Debug)]
struct DomainRule {
    wildcard: bool,
    base: String,
    ports: Ports,
    src: RuleSrc,
}

impl DomainRule {
    fn parse(src: &RuleSrc) -> Result<DomainRule, String> {
        let err = |m: String| format!("{}: bad domain pattern {:?}: {m}", src.origin, src.pattern);
        let lower = src.pattern.trim().to_ascii_lowercase();
        let (name, port) = match lower.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (lower.as_str(), None),
        };
        let ports = Ports::parse(port).map_err(err)?;
        let name = name.strip_suffix('.').unwrap_or(name);
        let (wildcard, base) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        if base.contains('*') {
            return Err(err("`*` is only allowed as a leading `*.` label".into()));
        }
        validate_name(base).map_err(err)?;
        match parse_host(base) {
            Ok(Host::Name(_)) => {}
            Ok(Host::Ip(_)) => {
                return Err(err("an IP address is not a domain; use allow_cidrs".into()))
            }
            Err(e) => return Err(err(e)),
        }
        Ok(DomainRule {
            wildcard,
            base: base.to_string(),
            ports,
            src: src.clone(),
        })
    }

    fn matches_name(&self, name: &str) -> bool {
        if self.wildcard {
            name.len() > self.base.len() + 1
                && name.ends_with(&self.base)
                && name.as_bytes()[name.len() - self.base.len() - 1] == b'.'
        } else {
            name == self.base
        }
    }

    fn matches(&self, name: &str, port: u16) -> bool {
        self.ports.contains(port) && self.matches_name(name)
    }

    fn describe(&self, kind: &str) -> String {
        format!("{kind} {} ({})", self.src.pattern, self.src.origin)
    }
}

#[derive(Clone, Debug)]
struct CidrRule {
    net: IpNet,
    ports: Ports,
    src: RuleSrc,
}

impl CidrRule {
    /// Forms: `10.0.0.0/8`, `10.0.0.0/8:8080`, `fd00::/8:*`, `[fd00::/8]:443`,
    /// or a bare address (a single host).
    fn parse(src: &RuleSrc) -> Result<CidrRule, String> {
        let err = |m: String| format!("{}: bad CIDR {:?}: {m}", src.origin, src.pattern);
        let s = src.pattern.trim();
        let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inner, after) = rest
                .split_once(']')
                .ok_or_else(|| err("unbalanced [".into()))?;
            let port = match after {
                "" => None,
                a => Some(
                    a.strip_prefix(':')
                        .ok_or_else(|| err("garbage after ]".into()))?,
                ),
            };
            (inner, port)
        } else if let Some((a, tail)) = s.rsplit_once('/') {
            match tail.split_once(':') {
                Some((len, p)) => (&s[..a.len() + 1 + len.len()], Some(p)),
                None => (s, None),
            }
        } else if s.matches(':').count() == 1 {
            let (a, p) = s.split_once(':').ok_or_else(|| err("bad".into()))?;
            (a, Some(p))
        } else {
            (s, None)
        };
        let ports = Ports::parse(port).map_err(err)?;
        let net = if addr.contains('/') {
            addr.parse::<IpNet>().map_err(|e| err(e.to_string()))?
        } else {
            host_net(addr.parse::<IpAddr>().map_err(|e| err(e.to_string()))?)
        };
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // An entry written as ::ffff:a.b.c.d/n means the IPv4 range.
                Some(v4) if v6.prefix_len() >= 96 => IpNet::V4(
                    ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                        .map_err(|e| err(e.to_string()))?,
                ),
                _ => net,
            },
            n => n,
        };
        Ok(CidrRule {
            net: net.trunc(),
            ports,
            src: src.clone(),
        })
    }

    fn describe(&self) -> String {
        format!("allow_cidrs {} ({})", self.src.pattern, self.src.origin)
    }
}

/// The compiled network policy.
#[derive(Debug)]
pub struct NetPolicy {
    allow: Vec<DomainRule>,
    deny: Vec<DomainRule>,
    managed_deny: Vec<DomainRule>,
    cidrs: Vec<CidrRule>,
    hosts: HashMap<String, Vec<IpAddr>>,
    unknown: Unknown,
    suggest: Option<fn(&str) -> Option<String>>,
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
    /// Compiles the configuration; a bad pattern is an error naming its origin.
    pub fn new(cfg: NetConfig) -> Result<Self, String> {
        let domains = |v: &[RuleSrc]| {
            v.iter()
                .map(DomainRule::parse)
                .collect::<Result<Vec<_>, _>>()
        };
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
            allow: domains(&cfg.allow)?,
            deny: domains(&cfg.deny)?,
            managed_deny: domains(&cfg.managed_deny)?,
            cidrs: cfg
                .allow_cidrs
                .iter()
                .map(CidrRule::parse)
                .collect::<Result<_, _>>()?,
            hosts,
            unknown: cfg.unknown,
            suggest: cfg.suggest,
        })
    }

    /// Addresses `[network.hosts]` gives for a canonical name.
    pub fn hosts_lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.hosts.get(name).map(Vec::as_slice)
    }

    /// The verdict for a target as named by the client, before resolution.
    pub fn check(&self, host: &Host, port: u16) -> Verdict {
        match host {
            Host::Name(n) => self.name_verdict(n, port),
            Host::Ip(ip) => self.ip_verdict(None, *ip, port),
        }
    }

    /// The verdict for connecting to `ip`, resolved from `name` (or a raw IP
    /// target when `name` is `None`).
    pub fn check_resolved(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Verdict {
        self.resolved_verdict(name, ip, port, false)
    }

    /// Like [`NetPolicy::check_resolved`] for a connection a person approved:
    /// an "ask" verdict counts as allowed; every other check (special ranges,
    /// metadata addresses, denies) still applies.
    pub fn check_resolved_approved(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Verdict {
        self.resolved_verdict(name, ip, port, true)
    }

    fn resolved_verdict(
        &self,
        name: Option<&str>,
        ip: IpAddr,
        port: u16,
        approved: bool,
    ) -> Verdict {
        let approve = |v: Verdict| match v {
            v if approved && v.is_ask() => Verdict::Allow {
                rule: APPROVED_RULE.into(),
            },
            v => v,
        };
        match name {
            None => approve(self.ip_verdict(None, ip, port)),
            Some(n) => match approve(self.name_verdict(n, port)) {
                Verdict::Allow { rule } => match self.ip_verdict(Some(n), ip, port) {
                    Verdict::Allow { rule: r2 } if r2.is_empty() => Verdict::Allow { rule },
                    Verdict::Allow { rule: r2 } => Verdict::Allow {
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
                .any(|d| d.ports == Ports::Any && d.matches_name(&n))
        };
        if self.unknown == Unknown::Ask && !denied_everywhere() {
            return true;
        }
        self.allow
            .iter()
            .filter(|r| r.matches_name(&n))
            .any(|r| match r.ports {
                Ports::Default => [80, 443]
                    .iter()
                    .any(|p| self.name_verdict(&n, *p).is_allow()),
                Ports::One(p) => self.name_verdict(&n, p).is_allow(),
                // Denies list finitely many ports unless one says `:*`.
                Ports::Any => !denied_everywhere(),
            })
    }

    fn name_verdict(&self, name: &str, port: u16) -> Verdict {
        if let Some(r) = self.managed_deny.iter().find(|r| r.matches(name, port)) {
            return Verdict::Deny {
                rule: r.describe("managed deny"),
                reason: format!("{name}:{port} is forbidden by a managed policy"),
                fix: "none: a managed policy forbids it (ask your administrator)".into(),
            };
        }
        if let Some(r) = self.deny.iter().find(|r| r.matches(name, port)) {
            return Verdict::Deny {
                rule: r.describe("deny"),
                reason: format!("{name}:{port} matches a deny rule"),
                fix: format!(
                    "remove the deny rule {:?} ({})",
                    r.src.pattern, r.src.origin
                ),
            };
        }
        if let Some(r) = self.allow.iter().find(|r| r.matches(name, port)) {
            return Verdict::Allow {
                rule: r.describe("allow"),
            };
        }
        let pat = format!("{name}{}", port_suffix(port));
        let profile = self
            .suggest
            .and_then(|f| f(name))
            .filter(|_| port == 80 || port == 443)
            .map(|p| format!("{p}  or  "))
            .unwrap_or_default();
        Verdict::Deny {
            rule: self.no_rule(),
            reason: format!("no allow rule names {name} on port {port}"),
            fix: format!("{profile}--allow-domain {pat}  or  [network] allow = [\"{pat}\"]"),
        }
    }

    fn no_rule(&self) -> String {
        match self.unknown {
            Unknown::Deny => "no rule: unknown = deny".into(),
            Unknown::Ask => ASK_RULE.into(),
        }
    }

    fn covering(&self, ip: IpAddr, port: u16) -> Option<&CidrRule> {
        self.cidrs
            .iter()
            .find(|c| c.ports.contains(port) && c.net.contains(&ip))
    }

    fn cidr_fix(ip: IpAddr, port: u16) -> String {
        let net = host_net(ip);
        format!("[network] allow_cidrs = [\"{net}{}\"]", port_suffix(port))
    }

    /// Returns `Allow` with an empty rule when a resolved name's address
    /// needs no CIDR entry.
    fn ip_verdict(&self, name: Option<&str>, ip: IpAddr, port: u16) -> Verdict {
        let ip = canonical_ip(ip);
        let what = match name {
            Some(n) => format!("{n} resolves to {ip}, which"),
            None => format!("{ip}"),
        };
        if let Some(m) = is_metadata(ip) {
            let exact = |a: IpAddr| {
                self.cidrs
                    .iter()
                    .find(|c| c.ports.contains(port) && c.net == host_net(a))
            };
            return match exact(ip).or_else(|| exact(m)) {
                Some(c) => Verdict::Allow { rule: c.describe() },
                None => Verdict::Deny {
                    rule: "built-in: cloud metadata addresses are refused".into(),
                    reason: format!("{what} is a cloud metadata address"),
                    fix: Self::cidr_fix(m, port),
                },
            };
        }
        let embedded = embedded_v4(ip).map(IpAddr::V4);
        let special = special_range(ip);
        let embedded_special = embedded.and_then(|e| special_range(e).map(|r| (e, r)));
        if name.is_some() && special.is_none() {
            return Verdict::Allow {
                rule: String::new(),
            };
        }
        let cover = self.covering(ip, port);
        let cover_embedded = match embedded_special {
            Some((e, _)) => self.covering(e, port),
            None => cover,
        };
        match (cover, cover_embedded) {
            (Some(c), Some(_)) => Verdict::Allow { rule: c.describe() },
            _ => {
                let (rule, reason) = match (special, embedded_special) {
                    (_, Some((e, r))) => (
                        "built-in: special-purpose ranges are refused".to_string(),
                        format!("{what} embeds {e} ({r})"),
                    ),
                    (Some(r), None) => (
                        "built-in: special-purpose ranges are refused".to_string(),
                        format!("{what} is in {r}"),
                    ),
                    (None, None) => (
                        self.no_rule(),
                        format!(
                            "{what} is a raw IP destination; domain rules never admit IP literals"
                        ),
                    ),
                };
                let fix_ip = match (cover, embedded_special) {
                    (Some(_), Some((e, _))) => e,
                    _ => ip,
                };
                Verdict::Deny {
                    rule,
                    reason,
                    fix: Self::cidr_fix(fix_ip, port),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
