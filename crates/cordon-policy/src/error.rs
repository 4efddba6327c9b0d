//! The one error type of the crate: always a single line, `FILE:LINE:COL: message` when the
//! location is known, so editors and terminals can jump to it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A policy error with its location, when known.
///
/// `Display` prints exactly one line: `FILE:LINE:COL: message`, `FILE: message` when the line
/// is unknown (an I/O error), or just `message` for rules that come from the command line
/// (the message then names the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file the error is in, if it came from a file.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column, counted in characters.
    pub col: Option<usize>,
    /// What is wrong; never contains a newline.
    pub message: String,
}

impl PolicyError {
    /// An error at a known place in a file.
    pub fn at(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        PolicyError {
            file: Some(file.to_path_buf()),
            line: Some(line),
            col: Some(col),
            message: one_line(message.into()),
        }
    }

    /// An error about a whole file (unreadable, wrong owner, ...).
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        PolicyError {
            file: Some(file.to_path_buf()),
            line: None,
            col: None,
            message: one_line(message.into()),
        }
    }

    /// An error with no file (command-line flags, computed checks).
    pub fn plain(message: impl Into<String>) -> Self {
        PolicyError {
            file: None,
            line: None,
            col: None,
            message: one_line(message.into()),
        }
    }
}

/// Hostile file content can end up in messages (a quoted key); keep the "one line" promise
/// and keep terminal control sequences out.
fn one_line(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.col) {
            (Some(file), Some(line), Some(col)) => {
                write!(f, "{}:{line}:{col}: {}", file.display(), self.message)
            }
            (Some(file), Some(line), None) => {
                write!(f, "{}:{line}: {}", file.display(), self.message)
            }
            (Some(file), None, _) => write!(f, "{}: {}", file.display(), self.message),
            (None, _, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_location() {
        let e = PolicyError::at(Path::new("/x/.cordon.toml"), 3, 1, "bad\nthing");
        assert_eq!(e.to_string(), "/x/.cordon.toml:3:1: bad thing");
        let e = PolicyError::in_file(Path::new("/x"), "cannot read");
        assert_eq!(e.to_string(), "/x: cannot read");
        assert_eq!(
            PolicyError::plain("--allow-write /: no").to_string(),
            "--allow-write /: no"
        );
    }
}
