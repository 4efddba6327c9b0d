//! Everything `cordon run` refuses in the policy before it starts anything, in one call that
//! `cordon policy check` makes too: a file one accepts the other accepts, and every refusal
//! names the entry's `file:line:col`.

use std::path::PathBuf;

use crate::effective::Effective;
use crate::error::PolicyError;
use crate::fsrules::AskPaths;
use crate::resolve::{resolve, Inputs};
use crate::tier::Origin;

/// A policy ready to enforce.
#[derive(Debug)]
pub struct Compiled {
    /// The merged tiers.
    pub effective: Effective,
    /// Canonical writable roots: the workspace first, then each `allow_write` path.
    pub writable: Vec<PathBuf>,
    /// The asked-about paths (`ask_read`, `ask_write`, strict mode).
    pub asks: AskPaths,
}

/// Merges the tiers ([`resolve`], which also refuses a hidden workspace), then checks what
/// only the merged policy and the machine can tell: the workspace is not asked about, and
/// every `allow_write` path exists and may be writable.
pub fn compile(inputs: &Inputs) -> Result<Compiled, PolicyError> {
    let eff = resolve(inputs)?;
    // `resolve` checked the workspace (neither `$HOME` nor hidden).
    let ws = eff.workspace.clone();
    let mut writable = vec![ws.clone()];
    for p in eff.allow_write_paths() {
        let origin = eff
            .allow_write
            .iter()
            .find(|r| r.value == p)
            .map(|r| r.origin.clone())
            .unwrap_or_else(|| Origin::bare(crate::tier::Tier::Cli));
        let c = p
            .canonicalize()
            .map_err(|e| origin.error(format!("allow_write `{}`: {e}", p.display())))?;
        eff.check_workspace(&c).map_err(|e| {
            origin.error(format!(
                "allow_write `{}` cannot be writable: {}",
                p.display(),
                e.message
            ))
        })?;
        if !writable.contains(&c) {
            writable.push(c);
        }
    }
    let asks = AskPaths::from_policy(&eff, &ws)?;
    Ok(Compiled {
        effective: eff,
        writable,
        asks,
    })
}

#[cfg(test)]
mod tests;
