//! cordon-linux: the enforcement layer. It builds what it is told (a [`spec::Spec`]) out of
//! namespaces, mounts, Landlock and seccomp, runs the command in it, and knows nothing of
//! policy files or HTTP.

// Tests may unwrap: a panic there is a failed test, not hostile input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bpf;
pub mod cgroup;
pub mod control;
pub mod door;
pub mod error;
pub mod exec;
pub mod landlock_rules;
pub mod landlock_tier;
pub mod mounts;
pub mod pathguard;
pub mod persist;
pub mod pty;
pub mod sandbox;
pub mod seccomp;
pub mod spec;
pub mod supervise;
pub mod sys;

pub use error::SetupError;
pub use spec::{Spec, Stdio};
