//! The integration tests, one binary (each module used to be its own binary, re-linking
//! `common/` twenty times). Every test runs the real `cordon` as the unprivileged test user.
mod common;

mod agent_config;
mod agents_tui;
mod approvals;
mod cli;
mod file_approvals;
mod fs_write;
mod guard_holes;
mod kube_cli;
mod kube_pod;
mod landlock_tier;
mod mcp;
mod named;
mod net;
mod process;
mod profiles;
mod protect;
mod secrets;
mod secrets_door;
mod tools;
mod vm;
