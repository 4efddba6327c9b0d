//! Just enough of git's config syntax to find the paths git will execute from or read config
//! from: `core.hooksPath`, `include.path`, `includeIf.<cond>.path`. The binary protects those
//! targets too. Also `gitdir:` redirect files (worktrees, submodules).

use std::path::PathBuf;

/// What a path found in a git config is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitPathKind {
    /// `core.hooksPath`: a directory of executables.
    HooksPath,
    /// `include.path` or `includeIf.*.path`: another config file.
    Include,
}

/// A path value found in a git config file, verbatim (may be relative to the config file's
/// directory or start with `~/`; resolving it is the caller's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPathRef {
    /// Which key it came from.
    pub kind: GitPathKind,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// 1-based line where the value starts.
    pub line: usize,
}

/// Scans git config text for `core.hooksPath`, `include.path` and `includeIf.*.path`.
/// Section and key names are case-insensitive, values may be quoted. Malformed lines are
/// skipped (git itself would refuse the file; nothing here can panic).
pub fn git_extra_protect(text: &str) -> Vec<GitPathRef> {
    let mut out = Vec::new();
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut section = String::new();
    while let Some(c) = p.peek() {
        match c {
            '\n' => p.bump(),
            ' ' | '\t' | '\r' => p.bump(),
            '#' | ';' => p.skip_line(),
            '[' => match p.section_header() {
                Some(name) => section = name,
                None => {
                    section.clear();
                    p.skip_line();
                }
            },
            c if c.is_ascii_alphabetic() => {
                let line = p.line;
                let key = p.name();
                p.skip_blanks();
                if p.peek() == Some('=') {
                    p.bump();
                    let value = p.value();
                    let kind = match (section.as_str(), key.as_str()) {
                        ("core", "hookspath") => Some(GitPathKind::HooksPath),
                        ("include", "path") | ("includeif", "path") => Some(GitPathKind::Include),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        out.push(GitPathRef { kind, value, line });
                    }
                } else {
                    // `key` alone is boolean true; nothing to record.
                    p.skip_line();
                }
            }
            _ => p.skip_line(),
        }
    }
    out
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) {
        if self.peek() == Some('\n') {
            self.line += 1;
        }
        self.pos += 1;
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            self.bump();
            if c == '\n' {
                break;
            }
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    /// Lower-cased key name (`[A-Za-z0-9-]`).
    fn name(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '-' {
                s.push(c.to_ascii_lowercase());
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    /// `[section]`, `[section "sub"]` or legacy `[section.sub]`; returns the lower-cased
    /// section name (subsections do not matter for the keys we look for).
    fn section_header(&mut self) -> Option<String> {
        self.bump(); // '['
        let mut name = String::new();
        loop {
            match self.peek()? {
                ']' => {
                    self.bump();
                    break;
                }
                '.' => {
                    // Legacy `[section.sub]`: the section is what came before the dot.
                    while self.peek()? != ']' {
                        if self.peek()? == '\n' {
                            return None;
                        }
                        self.bump();
                    }
                }
                ' ' | '\t' => {
                    self.skip_blanks();
                    if self.peek()? != '"' {
                        return None;
                    }
                    self.bump();
                    loop {
                        match self.peek()? {
                            '"' => {
                                self.bump();
                                break;
                            }
                            '\\' => {
                                self.bump();
                                if self.peek()? == '\n' {
                                    return None;
                                }
                                self.bump();
                            }
                            '\n' => return None,
                            _ => self.bump(),
                        }
                    }
                    if self.peek()? != ']' {
                        return None;
                    }
                }
                c if c.is_ascii_alphanumeric() || c == '-' => {
                    name.push(c.to_ascii_lowercase());
                    self.bump();
                }
                _ => return None,
            }
        }
        Some(name)
    }

    /// A value after `=`: quotes toggle, `\` escapes, `#`/`;` start a comment outside quotes,
    /// a trailing `\` continues on the next line, unquoted trailing blanks are dropped.
    fn value(&mut self) -> String {
        let mut out = String::new();
        let mut quoted = false;
        // Length of `out` up to the last character that must be kept (quoted or non-blank).
        let mut keep = 0usize;
        self.skip_blanks();
        while let Some(c) = self.peek() {
            match c {
                '\n' => {
                    self.bump();
                    break;
                }
                '"' => {
                    quoted = !quoted;
                    self.bump();
                }
                '#' | ';' if !quoted => {
                    self.skip_line();
                    break;
                }
                '\\' => {
                    self.bump();
                    match self.peek() {
                        Some('\n') => self.bump(),
                        Some('\r') if self.chars.get(self.pos + 1) == Some(&'\n') => {
                            self.bump();
                            self.bump();
                        }
                        Some('n') => {
                            out.push('\n');
                            self.bump();
                        }
                        Some('t') => {
                            out.push('\t');
                            self.bump();
                        }
                        Some('b') => {
                            out.pop();
                            self.bump();
                        }
                        Some(e) => {
                            out.push(e);
                            self.bump();
                        }
                        None => {}
                    }
                    keep = out.len();
                }
                _ => {
                    out.push(c);
                    self.bump();
                    if quoted || !matches!(c, ' ' | '\t' | '\r') {
                        keep = out.len();
                    }
                }
            }
        }
        out.truncate(keep);
        out
    }
}

/// Parses a `.git` file (worktree or submodule) of the form `gitdir: <path>`. Returns the
/// path verbatim (often relative to the file's directory); `None` if the text is not one.
pub fn parse_gitdir_file(text: &str) -> Option<PathBuf> {
    let first = text.lines().next()?;
    let rest = first.strip_prefix("gitdir:")?;
    let path = rest.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r');
    if path.is_empty() || path.contains('\0') {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(text: &str) -> Vec<(GitPathKind, String)> {
        git_extra_protect(text)
            .into_iter()
            .map(|r| (r.kind, r.value))
            .collect()
    }

    #[test]
    fn finds_hooks_and_includes() {
        let text = r#"
# comment
[core]
	bare = false
	hooksPath = .githooks ; trailing comment
[Include]
	PATH = "~/extra config"
[includeIf "gitdir:~/work/"]
	path = work.inc
[remote "origin"]
	path = not-this
[core] HooksPath = "a\"b\\c"   # same line as header
"#;
        assert_eq!(
            vals(text),
            vec![
                (GitPathKind::HooksPath, ".githooks".to_string()),
                (GitPathKind::Include, "~/extra config".to_string()),
                (GitPathKind::Include, "work.inc".to_string()),
                (GitPathKind::HooksPath, "a\"b\\c".to_string()),
            ]
        );
        let refs = git_extra_protect(text);
        assert_eq!(refs[0].line, 5);
    }

    #[test]
    fn legacy_subsection_and_continuation() {
        let text = "[includeIf.gitdir:/x]\npath = a\\\nb\n[core]\nhookspath\n";
        assert_eq!(vals(text), vec![(GitPathKind::Include, "ab".to_string())]);
    }

    #[test]
    fn garbage_does_not_panic() {
        for t in [
            "[",
            "[core",
            "[core \"x",
            "a=\\",
            "[core]\nhookspath=\"unterminated",
            "\u{0}=\u{0}",
        ] {
            let _ = git_extra_protect(t);
        }
        assert_eq!(
            vals("[core]\nhookspath=\"unterminated"),
            vec![(GitPathKind::HooksPath, "unterminated".into())]
        );
    }

    #[test]
    fn gitdir_files() {
        assert_eq!(
            parse_gitdir_file("gitdir: ../.git/worktrees/a\n"),
            Some(PathBuf::from("../.git/worktrees/a"))
        );
        assert_eq!(
            parse_gitdir_file("gitdir:/abs/path\r\n"),
            Some(PathBuf::from("/abs/path"))
        );
        assert_eq!(parse_gitdir_file("gitdir: \n"), None);
        assert_eq!(parse_gitdir_file("ref: refs/heads/main\n"), None);
        assert_eq!(parse_gitdir_file(""), None);
    }
}
