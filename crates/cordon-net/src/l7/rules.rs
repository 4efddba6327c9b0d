//! Request rules: per host, which methods and paths may pass (`"GET /**"`,
//! `"POST /repos/acme/*/pulls"`). `*` matches within one path segment, `**` across segments.

pub use cordon_policy::RequestRule;

/// Whether a request with `method` to `path` (no query) matches `rule`.
pub fn rule_matches(rule: &RequestRule, method: &str, path: &str) -> bool {
    rule.method
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case(method))
        && glob_match(&rule.path, path)
}

/// One policy table of rules for a host (`[requests."HOST"]` in one file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTable {
    /// Where it was written (`user ~/.config/cordon/policy.toml:12`).
    pub origin: String,
    /// Its entries.
    pub rules: Vec<RequestRule>,
}

/// Every table for one host: a request passes only if each table allows it, so a table
/// added anywhere (a project file, say) can only narrow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRules {
    /// Lower-case host name.
    pub host: String,
    /// The tables, strongest tier first.
    pub tables: Vec<RuleTable>,
}

/// Paths whose meaning a server might read differently from the glob: dot segments and
/// encoded separators or dots. Refused on hosts with rules.
pub fn ambiguous_path(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%2e") {
        return Some("an encoded `/`, `\\` or `.` in the path");
    }
    if path.contains('\\') {
        return Some("a `\\` in the path");
    }
    // Servers that drop path parameters before normalising (Tomcat, Jetty) read `..;x` as `..`.
    let dot = |s: &str| {
        let s = s.split(';').next().unwrap_or(s);
        s == "." || s == ".."
    };
    if path.split('/').any(dot) {
        return Some("a `.` or `..` segment in the path");
    }
    None
}

impl HostRules {
    /// `Ok` if every table allows `method path`; else the refusing table's origin.
    pub fn check(&self, method: &str, path: &str) -> Result<(), String> {
        for t in &self.tables {
            if !t.rules.iter().any(|r| rule_matches(r, method, path)) {
                return Err(t.origin.clone());
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Byte(u8),
    /// `*`: any run of bytes without `/`.
    Star,
    /// `**`: any run of bytes.
    Any,
}

fn tokens(pat: &str) -> Vec<Tok> {
    let b = pat.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'*' {
            if b.get(i + 1) == Some(&b'*') {
                out.push(Tok::Any);
                while b.get(i) == Some(&b'*') {
                    i += 1;
                }
            } else {
                out.push(Tok::Star);
                i += 1;
            }
        } else {
            out.push(Tok::Byte(b[i]));
            i += 1;
        }
    }
    out
}

/// Glob match in O(len(pattern) x len(path)), whatever the input (the path is the
/// sandbox's). A trailing `/**` also matches the directory itself (`/a/**` matches `/a`).
pub fn glob_match(pat: &str, path: &str) -> bool {
    if let Some(dir) = pat.strip_suffix("/**") {
        if !dir.is_empty() && glob_match(dir, path) {
            return true;
        }
    }
    let p = tokens(pat);
    let s = path.as_bytes();
    // cur[j]: the first j tokens match the bytes seen so far.
    let mut cur = vec![false; p.len() + 1];
    cur[0] = true;
    let close = |row: &mut Vec<bool>| {
        for j in 0..p.len() {
            if row[j] && matches!(p[j], Tok::Star | Tok::Any) {
                row[j + 1] = true;
            }
        }
    };
    close(&mut cur);
    for &c in s {
        let mut next = vec![false; p.len() + 1];
        for j in 0..p.len() {
            if !cur[j] {
                continue;
            }
            match p[j] {
                Tok::Byte(b) if b == c => next[j + 1] = true,
                Tok::Byte(_) => {}
                Tok::Star if c != b'/' => next[j] = true,
                Tok::Star => {}
                Tok::Any => next[j] = true,
            }
        }
        close(&mut next);
        cur = next;
    }
    cur[p.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("/**", "/"));
        assert!(glob_match("/**", "/a/b/c"));
        assert!(glob_match("/repos/acme/*/pulls", "/repos/acme/web/pulls"));
        assert!(!glob_match("/repos/acme/*/pulls", "/repos/acme/a/b/pulls"));
        assert!(!glob_match("/repos/acme/*/pulls", "/repos/evil/web/pulls"));
        assert!(!glob_match(
            "/repos/acme/*/pulls",
            "/repos/acme/web/pulls/1"
        ));
        assert!(glob_match("/a/**", "/a"));
        assert!(glob_match("/a/**/z", "/a/b/c/z"));
        assert!(glob_match("/a/*.git/info/refs", "/a/r.git/info/refs"));
        assert!(!glob_match("/x", "/xy"));
        let long = "/".to_string() + &"a/".repeat(5000);
        assert!(!glob_match("/*/*/*/*/*/*/*/*/*/*b", &long));
    }

    #[test]
    fn rules_and_tables() {
        let r = RequestRule::parse("post /repos/acme/*/pulls").unwrap();
        assert!(rule_matches(&r, "POST", "/repos/acme/x/pulls"));
        assert!(!rule_matches(&r, "GET", "/repos/acme/x/pulls"));
        let any = RequestRule::parse("* /health").unwrap();
        assert!(rule_matches(&any, "DELETE", "/health"));
        assert!(RequestRule::parse("GET").is_err());
        assert!(RequestRule::parse("GET repos").is_err());
        assert!(RequestRule::parse("GET /a?b=1").is_err());
        assert!(RequestRule::parse("G-T /a").is_err());
        let h = HostRules {
            host: "api.github.com".into(),
            tables: vec![
                RuleTable {
                    origin: "user".into(),
                    rules: vec![
                        RequestRule::parse("GET /**").unwrap(),
                        RequestRule::parse("POST /repos/acme/*/pulls").unwrap(),
                    ],
                },
                RuleTable {
                    origin: "project".into(),
                    rules: vec![RequestRule::parse("* /repos/**").unwrap()],
                },
            ],
        };
        assert_eq!(h.check("GET", "/repos/a"), Ok(()));
        assert_eq!(h.check("GET", "/user"), Err("project".into()));
        assert_eq!(h.check("POST", "/repos/acme/x/pulls"), Ok(()));
        assert_eq!(h.check("POST", "/repos/x"), Err("user".into()));
        assert!(ambiguous_path("/repos/acme/x/../../y").is_some());
        assert!(ambiguous_path("/repos/%2E%2e/y").is_some());
        assert!(ambiguous_path("/repos/acme/x/pulls").is_none());
        assert!(ambiguous_path("/public/..;/admin").is_some());
        assert!(ambiguous_path("/public/.;x=1/y").is_some());
        assert!(ambiguous_path("/public/a;v=1/..x").is_none());
    }
}
