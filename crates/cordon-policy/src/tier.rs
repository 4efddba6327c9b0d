//! Where a rule came from: its tier and, for files, the file and line.

use std::fmt;
use std::path::PathBuf;

/// A policy tier. Strength decides who may loosen what another tier set; see [`Tier::strength`]
/// (deliberately no `Ord`: variant order says nothing about strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The data files shipped inside cordon (weakest).
    Builtin,
    /// `/etc/cordon/policy.toml`, root-owned; its denies, protections and limits are final.
    Managed,
    /// `~/.config/cordon/policy.toml` and `-p FILE`s.
    User,
    /// Command-line flags; as strong as the user tier.
    Cli,
    /// `<workspace>/.cordon.toml`; only tightens unless trusted.
    Project,
}

impl Tier {
    /// Higher is stronger. User and Cli are the same tier (the person at the keyboard).
    pub fn strength(self) -> u8 {
        match self {
            Tier::Builtin => 0,
            Tier::Project => 1,
            Tier::User | Tier::Cli => 2,
            Tier::Managed => 3,
        }
    }

    /// Lower-case name used in listings.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Builtin => "builtin",
            Tier::Managed => "managed",
            Tier::User => "user",
            Tier::Cli => "cli",
            Tier::Project => "project",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The origin of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The tier the rule belongs to.
    pub tier: Tier,
    /// The file it was read from (`None` for flags).
    pub file: Option<PathBuf>,
    /// 1-based line in that file.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the entry on that line, when known.
    pub col: Option<usize>,
    /// The command-line flag that set it (`--allow-domain`), for flags.
    pub flag: Option<&'static str>,
}

impl Origin {
    /// An origin without a file (command-line flags, built-in constants).
    pub fn bare(tier: Tier) -> Self {
        Origin {
            tier,
            file: None,
            line: None,
            col: None,
            flag: None,
        }
    }

    /// The origin of a command-line flag.
    pub fn flag(flag: &'static str) -> Self {
        Origin {
            flag: Some(flag),
            ..Origin::bare(Tier::Cli)
        }
    }
}

impl Origin {
    /// An error about the rule of this origin, at `file:line:col` when the origin has them.
    pub fn error(&self, message: impl Into<String>) -> crate::PolicyError {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => crate::PolicyError::at(f, l, self.col.unwrap_or(1), message),
            (Some(f), None) => crate::PolicyError::in_file(f, message),
            _ => crate::PolicyError::plain(match self.flag {
                Some(flag) => format!("{flag}: {}", message.into()),
                None => message.into(),
            }),
        }
    }
}

impl fmt::Display for Origin {
    /// `tier file:line`, `tier file`, `tier --flag` or `tier`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tier.name())?;
        if let Some(flag) = self.flag {
            write!(f, " {flag}")?;
        }
        if let Some(file) = &self.file {
            write!(f, " {}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
        }
        Ok(())
    }
}

/// A value together with the place that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

impl<T> Rule<T> {
    /// Pairs a value with its origin.
    pub fn new(value: T, origin: Origin) -> Self {
        Rule { value, origin }
    }
}
