//! cordon's policy model: pure code, no I/O but reading (policy files, git configuration) and
//! looking at paths where a run's policy is compiled ([`compile`]: whether they exist, where
//! they lead).
//!
//! * [`parse_policy`] validates one TOML policy file (unknown keys and bad values are errors
//!   reported as `FILE:LINE:COL: message`).
//! * [`resolve`] merges the tiers (Managed, User + `-p` files + flags, Project, Builtin) into an
//!   [`Effective`] policy whose every rule carries its [`Origin`].
//! * [`ProtectSet`] matches protected configuration paths (built-in list in
//!   `data/protected.toml`); [`git_extra_protect`] finds the paths a git config adds.
//! * [`FileRules`] are the path guard's decisions (protections, exemptions, the
//!   bare-repository rule, asks), each refusal naming its rule.
//! * [`scrub_env`] builds the sandbox environment.
//! * [`content_hash`] and [`TrustStore`] bind project-file trust to exact content.
//!
//! Merge rules in short: lists are unioned; deny beats allow; a weaker tier can only tighten
//! what a stronger one set. `allow_read` re-opens a `deny_read` only from the same or a
//! stronger tier (a Managed deny is final; a Builtin one yields to User and Cli). Limits are
//! the minimum over Managed/User/Cli (the built-in default when none sets one), then the
//! project may lower them. An untrusted project only tightens; a trusted one may also
//! `allow_write`, `allow_read` and `network.allow`, never `[env]`, `[approval]` or `[secrets]`.
//!
//! In use (the same code runs as the unit test `crate_example_resolves_a_policy`; the crate
//! has no doc tests, see crates/test-summary):
//!
//! ```text
//! let mut inputs = Inputs::new("/home/u", "/home/u/src/app");
//! inputs.user.push((
//!     "/home/u/.config/cordon/policy.toml".into(),
//!     "[filesystem]\nallow_read = [\"~/.aws/config\"]\n".into(),
//! ));
//! let eff = resolve(&inputs)?;
//! assert!(eff.is_read_denied(Path::new("/home/u/.aws/credentials")));
//! assert!(!eff.is_read_denied(Path::new("/home/u/.aws/config")));
//! let protect = eff.protect_set()?;
//! assert!(protect.matches(Path::new("/home/u/src/app/.git/hooks/pre-commit")).is_some());
//! assert!(protect.is_ancestor(Path::new("/home/u/src/app/.git")));
//! ```

// Pure policy code: nothing here needs the syscall boundary.
#![forbid(unsafe_code)]
// Tests may unwrap: a panic there is a failed test, not hostile input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod ask;
mod compile;
mod decision;
mod duration;
mod effective;
mod env;
mod error;
mod export;
mod file;
mod fsrules;
mod glob;
pub mod host;
mod layer;
mod load;
mod location;
mod net;
mod paths;
mod profile;
mod protect;
mod render;
pub use render::quoted;
mod resolve;
mod secrets;
pub mod special;
mod tier;
mod trust;

pub use ask::{strict_data, FsMode, StrictData};
pub use compile::{compile, Compiled};
pub use decision::{Decision, Flood, Grant, OptionalHost, Outcome, Refusal};
pub use duration::parse_duration;
pub use effective::{check_workspace, Approval, Effective, Limits, Network};
pub use env::{looks_secret, scrub_env, scrub_env_refs, BASE_ALLOW};
pub use error::PolicyError;
pub use export::{Egress, Exported, Relocate};
pub use file::parse_policy;
pub use fsrules::{
    leads_to, makes_bare_repository, AskKind, AskPaths, AskRoot, AskRule, ExemptKind, Exemption,
    FileDecision, FileOp, FileRefusal, FileRules, Place, BUILTIN_REFUSALS, EXEMPTIONS,
};
pub use layer::{CliLayer, Layer, UnknownAction};
pub use load::{check_file, load_inputs, Locations, MANAGED_POLICY, PROJECT_POLICY};
pub use net::{CidrPattern, DomainPattern, OptionalDomain, Ports};
pub use paths::expand_path;
pub use profile::{
    builtin_profile, check_profile_name, parse_profile, profile_for_command, profile_suggestion,
    profiles_allowing, OwnConfig, OwnMatch, Profile, BUILTIN_PROFILES,
};
pub use protect::{
    builtin_protect_rules, git_extra_protect, git_pointed_rules, parse_gitdir_file, GitPathKind,
    GitPathRef, ProtectKind, ProtectRule, ProtectSet,
};
pub use resolve::{builtin_layer, resolve, Inputs};
pub use secrets::{Inject, RequestRule, RequestTable, SecretDef, SecretSource};
pub use tier::{Origin, Rule, Tier};
pub use trust::{content_hash, TrustStore};

#[cfg(test)]
mod crate_example {
    use super::{resolve, Inputs};
    use std::path::Path;

    #[test]
    fn crate_example_resolves_a_policy() {
        let mut inputs = Inputs::new("/home/u", "/home/u/src/app");
        inputs.user.push((
            "/home/u/.config/cordon/policy.toml".into(),
            "[filesystem]\nallow_read = [\"~/.aws/config\"]\n".into(),
        ));
        let eff = resolve(&inputs).unwrap();
        assert!(eff.is_read_denied(Path::new("/home/u/.aws/credentials")));
        assert!(!eff.is_read_denied(Path::new("/home/u/.aws/config")));
        let protect = eff.protect_set().unwrap();
        assert!(protect
            .matches(Path::new("/home/u/src/app/.git/hooks/pre-commit"))
            .is_some());
        assert!(protect.is_ancestor(Path::new("/home/u/src/app/.git")));
        assert!(!eff.render().is_empty());
    }
}
