//! Run logs and `cordon log`: every `cordon run` keeps its audit trail under
//! `${XDG_STATE_HOME:-~/.local/state}/cordon/logs/` (the last 50 runs), and `cordon log`
//! renders denials for a person, grouped by destination or path, with the rule that decided
//! and the flag or policy line that would allow it.

use crate::approval::sanitize::{clean, clean_name};
use crate::audit::{Allowed, Approval, AskKind, Event, Record};
use cordon_net::event::{Decided, Kind};
use cordon_policy::OptionalHost;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many run logs are kept.
pub const KEEP: usize = 50;
/// The longest string shown from a log (logs hold what sandboxed programs named).
const SHOWN: usize = 200;
/// Paths and host names are shown whole up to this length.
const SHOWN_NAME: usize = 400;
/// Fix lines are shown whole, so they can be copied and pasted (still cleaned); this only
/// bounds a hostile log.
const SHOWN_FIX: usize = 16 * 1024;
/// The kind of an allowed connection that failed (not a denial, reported with them).
pub const UNREACHABLE: &str = "unreachable";
/// The kind of a connection to a host a profile lists as optional (not a denial: the agent
/// works without it), reported apart.
pub const OPTIONAL: &str = "optional";

/// `<state>/cordon/logs`, created 0700.
pub fn logs_dir() -> Result<PathBuf, String> {
    let home = crate::dirs::home()?;
    let dir = crate::dirs::state_dir(&home).join("logs");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A fresh log file for sandbox `id`; older runs beyond the last [`KEEP`] are removed.
pub fn new_run_log(id: &str) -> Result<PathBuf, String> {
    let dir = logs_dir()?;
    let path = dir.join(format!("{:012}-{id}.jsonl", now() as u64));
    rotate(&dir, KEEP.saturating_sub(1));
    Ok(path)
}

/// Keeps the newest `keep` logs in `dir` (names start with the start time).
pub fn rotate(dir: &Path, keep: usize) {
    let mut logs = log_files(dir);
    if logs.len() > keep {
        let excess = logs.len() - keep;
        for p in logs.drain(..excess) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Run logs in `dir`, oldest first.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    v.sort();
    v
}

/// One denial, reduced to what a person needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// `network`, `file write`, `approval`...
    pub kind: String,
    /// Destination (`host:port`) or path.
    pub what: String,
    /// The rule that decided.
    pub rule: String,
    /// The flag or policy line that would allow it (may be empty).
    pub fix: String,
    /// For kind [`OPTIONAL`]: the profile that lists the host, and why.
    pub optional: Option<OptionalHost>,
}

/// A string from a log, made safe to show (logs hold what sandboxed programs named).
fn shown(s: &str) -> String {
    clean(s, SHOWN)
}

/// A host or path: names keep their end (whose file, whose host) when they must be shortened.
fn shown_name(s: &str) -> String {
    clean_name(s, SHOWN_NAME)
}

/// What to do about a write refused as protected configuration.
const PROTECTED_FIX: &str = "not from inside (protected configuration): make the change on the host, where you see it; an agent's own settings: `cordon config diff`, then `cordon config apply NAME`";

/// Fix lines are shown whole (cleaned): they are meant to be pasted.
fn shown_fix(s: &str) -> String {
    clean(s, SHOWN_FIX)
}

fn host_port(target: &str, port: u16) -> String {
    format!("{}:{port}", shown_name(target))
}

/// The denial an audit record holds, if it is one.
pub fn denial(r: &Record) -> Option<Denial> {
    match &r.event {
        Event::Net(n) if n.kind == Kind::Close && n.decision == Decided::Error => Some(Denial {
            kind: UNREACHABLE.into(),
            what: host_port(&n.target, n.port),
            rule: format!("allowed, but {}", shown(&n.reason)),
            fix: String::new(),
            optional: None,
        }),
        // A connection that was asked about is recorded by its approval event.
        Event::Net(n) if n.kind != Kind::Deny || n.asked.is_some() => None,
        Event::Net(n) if n.optional.is_some() => {
            let o = n.optional.as_ref().map(|o| OptionalHost {
                profile: shown_name(&o.profile),
                why: shown(&o.why),
            });
            Some(Denial {
                kind: OPTIONAL.into(),
                what: host_port(&n.target, n.port),
                rule: o
                    .as_ref()
                    .map(|o| format!("optional for the {} profile: {}", o.profile, o.why))
                    .unwrap_or_default(),
                fix: shown_fix(&n.fix),
                optional: o,
            })
        }
        Event::Net(n) => {
            let what = if n.port == 0 {
                shown_name(&n.target)
            } else {
                host_port(&n.target, n.port)
            };
            let mut rule = shown(&n.rule);
            if n.decision == Decided::Ask {
                rule = format!("{rule} (nobody to ask: denied)");
            }
            Some(Denial {
                kind: "network".into(),
                what,
                rule,
                fix: shown_fix(&n.fix),
                optional: None,
            })
        }
        Event::File(f) if f.decision == Allowed::Deny => Some(Denial {
            kind: format!("file {}", shown(&f.op)),
            what: shown_name(&f.path.to_string_lossy()),
            rule: f.rule.as_deref().map(shown).unwrap_or_default(),
            // Protected configuration has no flag that lifts it (that is the point); the person
            // should still be told what to do instead.
            fix: if f.rule.as_deref().is_some_and(|r| r.starts_with("protect ")) {
                PROTECTED_FIX.into()
            } else {
                String::new()
            },
            optional: None,
        }),
        Event::Approval(Approval::Decision(d)) if !d.outcome.allowed() => {
            let (kind, what) = match d.kind {
                AskKind::Read | AskKind::Write => {
                    (format!("file {}", d.kind.name()), shown_name(&d.target))
                }
                AskKind::Network => (d.kind.name().to_string(), host_port(&d.target, d.port)),
            };
            let by = d.outcome.by();
            Some(Denial {
                kind,
                what,
                rule: if d.note.is_empty() {
                    format!("asked; denied by {by}")
                } else {
                    format!("asked; denied by {by} ({})", shown(&d.note))
                },
                fix: shown_fix(&d.fix),
                optional: None,
            })
        }
        _ => None,
    }
}

/// The longest line read from a log; longer ones are skipped (a hostile one would otherwise
/// be held in memory whole).
const MAX_LINE: u64 = 1 << 20;

/// Reads the records in `path` at or after `since` written by `pid` (when given).
/// Lines that are not well-formed records are skipped.
pub fn read_events(path: &Path, since: f64, pid: Option<u32>) -> Vec<Record> {
    let Ok(f) = std::fs::File::open(path) else {
        return vec![];
    };
    let mut reader = std::io::BufReader::new(f);
    let mut out = Vec::new();
    let mut line = Vec::new();
    for _ in 0..1_000_000 {
        line.clear();
        let n = match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if n as u64 == MAX_LINE && line.last() != Some(&b'\n') {
            // Too long: skip to the end of this line.
            if skip_line(&mut reader).is_err() {
                break;
            }
            continue;
        }
        if let Some(r) = Record::parse(&line) {
            if r.ts >= since && pid.is_none_or(|p| r.pid == p) {
                out.push(r);
            }
        }
    }
    out
}

/// Consumes the rest of a line.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// What stderr says after a run: one line counting denials by kind and how to see them, and
/// one calm line for connections refused as a profile's optional hosts (not denials: the
/// agent works without them), naming them and the flag that would allow them.
pub fn exit_summary(path: &Path, since: f64, pid: u32, see: &str) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = 0;
    // (profile, why) -> hosts, and how many connections in all.
    let mut optional: BTreeMap<OptionalHost, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut optional_n = 0;
    for r in read_events(path, since, Some(pid)) {
        let Some(d) = denial(&r) else { continue };
        if let (Some(o), Event::Net(n)) = (d.optional, &r.event) {
            optional_n += 1;
            // As `--allow-domain` takes it: 80 and 443 need no port.
            let host = match n.port {
                80 | 443 => shown_name(&n.target),
                p => host_port(&n.target, p),
            };
            optional.entry(o).or_default().insert(host);
        } else if d.kind == UNREACHABLE {
            failed += 1;
        } else {
            *counts.entry(d.kind).or_default() += 1;
        }
    }
    let total: usize = counts.values().sum();
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let failed = match failed {
        0 => None,
        1 => Some("1 allowed connection failed".to_string()),
        n => Some(format!("{n} allowed connections failed")),
    };
    let said = match (total, failed) {
        (0, None) => None,
        (0, Some(f)) => Some(f),
        (_, None) => Some(format!("{total} denied ({})", parts.join(", "))),
        (_, Some(f)) => Some(format!("{total} denied ({}), {f}", parts.join(", "))),
    };
    let mut lines: Vec<String> = said
        .map(|s| format!("cordon: {s}; see `{see}`"))
        .into_iter()
        .collect();
    if optional_n > 0 {
        lines.push(optional_line(optional_n, &optional));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `cordon: 6 optional connections refused as the gemini profile says (registry.npmjs.org:
/// its update check); allow with --profile npm`.
fn optional_line(
    n: usize,
    groups: &BTreeMap<OptionalHost, std::collections::BTreeSet<String>>,
) -> String {
    let mut profiles: Vec<&str> = groups.keys().map(|o| o.profile.as_str()).collect();
    profiles.dedup();
    let says = match profiles.as_slice() {
        [one] => format!("the {one} profile says"),
        many => format!("the {} profiles say", many.join(" and ")),
    };
    let named: Vec<String> = groups
        .iter()
        .map(|(o, hosts)| {
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            format!("{}: {}", hosts.join(", "), o.why)
        })
        .collect();
    let hosts: std::collections::BTreeSet<&String> = groups.values().flatten().collect();
    // One tool profile that allows every host says it best; else each host's own flag.
    let first = |h: &str| cordon_policy::profiles_allowing(h).first().copied();
    let shared = hosts
        .iter()
        .map(|h| first(h))
        .reduce(|a, b| if a == b { a } else { None })
        .flatten();
    let allow = match shared {
        Some(p) => format!("--profile {p}"),
        None => hosts
            .iter()
            .map(|h| format!("--allow-domain {h}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let conns = if n == 1 { "connection" } else { "connections" };
    format!(
        "cordon: {n} optional {conns} refused as {says} ({}); allow with {allow}",
        named.join("; ")
    )
}

/// Parses `--since`: `30m`, `2h`, `1d`, `45s`, `today`, or unix seconds.
pub fn parse_since(s: &str, now: f64) -> Result<f64, String> {
    let s = s.trim();
    if s == "today" {
        // Local midnight needs the time zone; a person asking for "today" gets the last 24 hours.
        return Ok(now - 86400.0);
    }
    if let Ok(t) = s.parse::<f64>() {
        return Ok(t);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: f64 = n
        .parse()
        .map_err(|_| format!("bad --since {s:?}: use 30m, 2h, 1d, today or unix seconds"))?;
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "bad --since {s:?}: use 30m, 2h, 1d, today or unix seconds"
            ))
        }
    };
    Ok(now - n * mult)
}

/// Denials of one kind and target: count, rules, fixes.
type Group = (usize, Vec<String>, Vec<String>);

/// Renders the denials of `events` for a person.
pub fn render(events: &[Record]) -> String {
    // (kind, what) -> (count, rules, fixes)
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for d in events.iter().filter_map(denial) {
        let g = groups.entry((d.kind, d.what)).or_default();
        g.0 += 1;
        if !d.rule.is_empty() && !g.1.contains(&d.rule) && g.1.len() < 5 {
            g.1.push(d.rule);
        }
        if !d.fix.is_empty() && !g.2.contains(&d.fix) && g.2.len() < 5 {
            g.2.push(d.fix);
        }
    }
    if groups.is_empty() {
        return "no denials\n".into();
    }
    let mut out = String::new();
    let mut last_kind = String::new();
    for ((kind, what), (n, rules, fixes)) in &groups {
        if *kind != last_kind {
            if kind == UNREACHABLE {
                out.push_str("allowed, but could not be reached:\n");
            } else if kind == OPTIONAL {
                out.push_str(
                    "optional connections refused (an active profile says the agent works without them):\n",
                );
            } else {
                out.push_str(&format!("{kind} denials:\n"));
            }
            last_kind = kind.clone();
        }
        let times = if *n == 1 {
            "1 time".to_string()
        } else {
            format!("{n} times")
        };
        out.push_str(&format!("  {what}  ({times})\n"));
        let label = if kind == UNREACHABLE || kind == OPTIONAL {
            "why:   "
        } else {
            "rule:  "
        };
        for r in rules {
            out.push_str(&format!("    {label}      {r}\n"));
        }
        for f in fixes {
            out.push_str(&format!("    to allow it: {f}\n"));
        }
    }
    out
}

/// `cordon log [--sandbox ID] [--since T] [--file FILE]`.
pub fn log_command(sandbox: Option<&str>, since: Option<&str>, file: Option<&Path>) -> i32 {
    let t = now();
    let since = match since.map(|s| parse_since(s, t)).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cordon: {e}");
            return 2;
        }
    };
    let files = match file {
        Some(f) => vec![f.to_path_buf()],
        None => match logs_dir() {
            Ok(d) => {
                let all = log_files(&d);
                match sandbox {
                    Some(id) => all
                        .into_iter()
                        .filter(|p| {
                            p.file_stem()
                                .and_then(|s| s.to_str())
                                .and_then(|s| s.split_once('-'))
                                .is_some_and(|(_, rest)| rest == id)
                        })
                        .collect(),
                    None => all,
                }
            }
            Err(e) => {
                eprintln!("cordon: {e}");
                return crate::EXIT_CORDON;
            }
        },
    };
    if files.is_empty() {
        println!("no run logs found");
        return 0;
    }
    // Without --since or --sandbox, the last day is shown.
    let since = since.unwrap_or(if sandbox.is_some() || file.is_some() {
        0.0
    } else {
        t - 86400.0
    });
    let mut events = Vec::new();
    for f in &files {
        let mut ev = read_events(f, since, None);
        if let (Some(id), Some(_)) = (sandbox, file) {
            ev.retain(|r| r.event.sandbox().is_none_or(|s| s == id));
        }
        events.extend(ev);
    }
    print!("{}", render(&events));
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Records as a log holds them (the tests write the on-disk format).
    fn records(v: Vec<serde_json::Value>) -> Vec<Record> {
        v.into_iter()
            .map(|v| Record::parse(v.to_string().as_bytes()).expect("a record"))
            .collect()
    }

    #[test]
    fn file_approvals_are_grouped_by_path() {
        let events = vec![
            json!({"ts": 1.0, "event": "approval", "phase": "decision", "kind": "read", "target": "/h/o/f", "port": 0, "decision": "deny", "by": "no approver", "fix": "--allow-read /h/o/f  or  [filesystem] allow_read = [\"/h/o/f\"]"}),
            json!({"ts": 2.0, "event": "approval", "phase": "decision", "kind": "read", "target": "/h/o/f", "port": 0, "decision": "deny", "by": "approver"}),
            json!({"ts": 3.0, "event": "approval", "phase": "decision", "kind": "write", "target": "/ws/.env", "port": 0, "decision": "allow_once", "by": "approver"}),
        ];
        let text = render(&records(events));
        assert!(
            text.contains("file read denials:\n  /h/o/f  (2 times)"),
            "{text}"
        );
        assert!(text.contains("allow_read = [\"/h/o/f\"]"), "{text}");
        assert!(!text.contains("/ws/.env"), "{text}");
    }

    #[test]
    fn groups_denials_with_rule_and_fix() {
        let ev = vec![
            json!({"ts": 1.0, "event": "net", "kind": "deny", "target": "x.test", "port": 443, "decision": "deny", "rule": "no rule: unknown = deny", "fix": "--allow-domain x.test"}),
            json!({"ts": 2.0, "event": "net", "kind": "deny", "target": "x.test", "port": 443, "decision": "deny", "rule": "no rule: unknown = deny", "fix": "--allow-domain x.test"}),
            json!({"ts": 3.0, "event": "net", "kind": "connect", "target": "ok.test", "port": 443, "decision": "allow"}),
            json!({"ts": 4.0, "event": "file", "op": "write", "path": "/ws/.git/hooks/pre-commit", "decision": "deny", "rule": "protected: git hooks"}),
            json!({"ts": 4.5, "event": "file", "op": "mkdir", "path": "/ws/t/.git", "decision": "deny", "rule": "protect .git (builtin data/protected.toml:72)"}),
            json!({"ts": 5.0, "event": "approval", "phase": "decision", "kind": "network", "target": "e\u{1b}[31mvil.test", "port": 80, "decision": "deny", "by": "timeout"}),
        ];
        let r = render(&records(ev));
        assert!(
            r.contains("network denials:\n  evil.test:80  (1 time)\n"),
            "{r}"
        );
        assert!(r.contains("\n  x.test:443  (2 times)\n"), "{r}");
        assert!(r.contains("to allow it: --allow-domain x.test"), "{r}");
        assert!(
            r.contains("file write denials:\n  /ws/.git/hooks/pre-commit  (1 time)"),
            "{r}"
        );
        // A protected path says what to do instead; a denial of another kind gets no made-up fix.
        assert!(
            r.contains(&format!("  /ws/t/.git  (1 time)\n    rule:        protect .git (builtin data/protected.toml:72)\n    to allow it: {PROTECTED_FIX}\n")),
            "{r}"
        );
        assert!(
            !r.contains(
                "pre-commit  (1 time)\n    rule:        protected: git hooks\n    to allow it"
            ),
            "{r}"
        );
        assert!(
            r.contains("evil.test:80") && r.contains("denied by timeout"),
            "{r}"
        );
        assert!(!r.contains('\u{1b}'));
        assert!(!r.contains("ok.test"));
    }

    #[test]
    fn a_connection_asked_about_is_counted_once_by_its_approval() {
        let fix = "--allow-domain a.test";
        let ev = records(vec![
            json!({"ts": 1.0, "event": "net", "kind": "deny", "via": "socks", "target": "a.test", "port": 443, "decision": "deny", "rule": "no rule: unknown = ask", "fix": fix, "asked": {"decision": "deny", "by": "timeout"}}),
            json!({"ts": 1.0, "event": "approval", "phase": "decision", "kind": "network", "target": "a.test", "port": 443, "decision": "deny", "by": "timeout", "fix": fix}),
            json!({"ts": 2.0, "event": "net", "kind": "deny", "via": "socks", "target": "b.test", "port": 443, "decision": "ask", "rule": "no rule: unknown = ask", "fix": "--allow-domain b.test"}),
        ]);
        let r = render(&ev);
        assert!(
            r.contains("  a.test:443  (1 time)\n    rule:        asked; denied by timeout\n"),
            "{r}"
        );
        assert!(r.contains("  b.test:443  (1 time)\n    rule:        no rule: unknown = ask (nobody to ask: denied)\n"), "{r}");
    }

    #[test]
    fn hostile_logs_are_read_without_panicking() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("hostile.jsonl");
        let good = json!({"ts": 5.0, "pid": 7, "event": "file", "op": "write", "path": "/p", "decision": "deny", "rule": "r"});
        let mut body = Vec::new();
        body.extend_from_slice(b"\xff\xfe\x00garbage\n{\"event\":\"net\",\"port\":-1}\n");
        body.extend_from_slice(b"{\"event\":\"approval\",\"phase\":\"decision\",\"decision\":\"allow_once\",\"by\":\"rate limit\"}\n");
        body.extend(std::iter::repeat_n(b'x', 3 << 20));
        body.push(b'\n');
        body.extend_from_slice(format!("{good}\n").as_bytes());
        body.extend_from_slice(b"{\"event\":\"net\",\"kind\":\"deny\"");
        std::fs::write(&f, body).expect("write");
        let ev = read_events(&f, 0.0, None);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(
            render(&ev),
            "file write denials:\n  /p  (1 time)\n    rule:        r\n"
        );
    }

    #[test]
    fn fix_lines_are_never_cut() {
        let long = format!("/ws/{}/file", "d".repeat(400));
        let fix = format!("--allow-read {long}  or  [filesystem] allow_read = [\"{long}\"]");
        let ev = vec![
            json!({"ts": 1.0, "event": "approval", "phase": "decision", "kind": "read", "target": long, "port": 0, "decision": "deny", "by": "no approver", "fix": fix}),
        ];
        let r = render(&records(ev));
        assert!(r.contains(&format!("to allow it: {fix}\n")), "{r}");
    }

    #[test]
    fn optional_hosts_are_one_calm_line_apart_from_denials() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("opt.jsonl");
        let opt = |host: &str, profile: &str, why: &str| {
            json!({"ts": 5.0, "pid": 7, "event": "net", "kind": "deny", "via": "http", "target": host, "port": 443, "decision": "deny",
                   "rule": format!("optional {host} (builtin profile {profile}:20)"), "fix": format!("--allow-domain {host}"),
                   "optional": {"profile": profile, "why": why}})
        };
        let mut lines: Vec<_> = (0..6)
            .map(|_| opt("registry.npmjs.org", "gemini", "its update check"))
            .collect();
        let body = |l: &[serde_json::Value]| l.iter().map(|l| format!("{l}\n")).collect::<String>();
        std::fs::write(&f, body(&lines)).expect("write");
        assert_eq!(
            exit_summary(&f, 2.0, 7, "cordon log").as_deref(),
            Some("cordon: 6 optional connections refused as the gemini profile says (registry.npmjs.org: its update check); allow with --profile npm")
        );
        let r = render(&read_events(&f, 0.0, None));
        assert!(r.starts_with("optional connections refused (an active profile says the agent works without them):\n  registry.npmjs.org:443  (6 times)\n    why:         optional for the gemini profile: its update check\n    to allow it: --allow-domain registry.npmjs.org\n"), "{r}");
        assert!(!r.contains("denials"), "{r}");
        // Several hosts no one tool profile covers: each its own flag; a real denial keeps its line.
        lines = vec![
            opt("github.com", "codex", "its plugin sync"),
            opt("api.github.com", "codex", "its plugin sync"),
            opt("tel.x.test", "codex", "its telemetry"),
            json!({"ts": 5.0, "pid": 7, "event": "net", "kind": "deny", "target": "evil.test", "port": 443, "decision": "deny"}),
        ];
        std::fs::write(&f, body(&lines)).expect("write");
        let s = exit_summary(&f, 2.0, 7, "cordon log").expect("summary");
        assert_eq!(
            s,
            "cordon: 1 denied (1 network); see `cordon log`\n\
             cordon: 3 optional connections refused as the codex profile says (api.github.com, github.com: its plugin sync; tel.x.test: its telemetry); \
             allow with --allow-domain api.github.com --allow-domain github.com --allow-domain tel.x.test"
        );
    }

    #[test]
    fn since_parses() {
        assert_eq!(parse_since("30m", 10_000.0), Ok(8_200.0));
        assert_eq!(parse_since("2h", 10_000.0), Ok(2_800.0));
        assert_eq!(parse_since("1234.5", 0.0), Ok(1234.5));
        assert!(parse_since("soon", 0.0).is_err());
        assert!(parse_since("", 0.0).is_err());
    }

    #[test]
    fn summary_counts_by_kind_and_rotation_keeps_the_newest() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("000000000001-x-1.jsonl");
        let lines = [
            json!({"ts": 5.0, "pid": 7, "event": "net", "kind": "deny", "target": "a", "port": 1, "decision": "deny"}),
            json!({"ts": 5.0, "pid": 7, "event": "file", "op": "write", "path": "/p", "decision": "deny"}),
            json!({"ts": 5.0, "pid": 8, "event": "file", "op": "write", "path": "/p", "decision": "deny"}),
            json!({"ts": 1.0, "pid": 7, "event": "file", "op": "write", "path": "/p", "decision": "deny"}),
        ];
        let body: String = lines.iter().map(|l| format!("{l}\nnot json\n")).collect();
        std::fs::write(&f, body).expect("write");
        let s = exit_summary(&f, 2.0, 7, "cordon log").expect("summary");
        assert_eq!(
            s,
            "cordon: 2 denied (1 file write, 1 network); see `cordon log`"
        );
        assert!(exit_summary(&f, 2.0, 9, "x").is_none());
        let d2 = tempfile::tempdir().expect("tempdir");
        let g = d2.path().join("failed.jsonl");
        let fail = json!({"ts": 5.0, "pid": 7, "event": "net", "kind": "close", "target": "gone.test", "port": 443, "decision": "error", "reason": "cannot resolve gone.test"});
        std::fs::write(&g, format!("{fail}\n")).expect("write");
        assert_eq!(
            exit_summary(&g, 2.0, 7, "cordon log").as_deref(),
            Some("cordon: 1 allowed connection failed; see `cordon log`")
        );
        let r = render(&read_events(&g, 0.0, None));
        assert!(
            r.contains("allowed, but could not be reached:\n  gone.test:443  (1 time)\n    why:         allowed, but cannot resolve gone.test"),
            "{r}"
        );
        for i in 2..60 {
            std::fs::write(d.path().join(format!("{i:012}-x-1.jsonl")), "").expect("write");
        }
        rotate(d.path(), 50);
        let left = log_files(d.path());
        assert_eq!(left.len(), 50);
        assert!(left[0].ends_with("000000000010-x-1.jsonl"), "{left:?}");
    }
}
