//! The one error type of sandbox setup: what failed, why, and what the person can do.

use std::fmt;
use std::io;

#[derive(Debug)]
pub struct SetupError {
    /// What cordon was doing ("mount the private layer on /tmp").
    pub what: String,
    /// The OS error, if any.
    pub cause: Option<io::Error>,
    /// How to fix it, when there is something to say.
    pub fix: &'static str,
}

impl SetupError {
    pub fn new(what: impl Into<String>, cause: io::Error) -> Self {
        Self {
            what: what.into(),
            cause: Some(cause),
            fix: "",
        }
    }
    pub fn msg(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            cause: None,
            fix: "",
        }
    }
    pub fn fix(mut self, fix: &'static str) -> Self {
        self.fix = fix;
        self
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {}", self.what)?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        if !self.fix.is_empty() {
            write!(f, " ({})", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for SetupError {}

/// Attaches a description to an `io::Result`.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(what(), e))
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(what(), io::Error::from(e)))
    }
}
