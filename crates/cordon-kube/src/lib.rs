//! cordon on Kubernetes: renders a cordon policy as kubernetes-sigs/agent-sandbox objects
//! ([`render`]) and validates manifests offline against the Kubernetes and CRD schemas
//! ([`check`]). Pure: no cluster, no network; the binary reads files and the clock.

// Tests may unwrap: a panic there is a failed test, not hostile input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod check;
mod crd;
pub mod render;

pub use render::{render, render_claim, Mode, Options, Policy, Rendered, Seccomp};
