//! Loads `data/protected.toml`, the built-in list of protected paths.

use std::path::{Path, PathBuf};

#[cfg(test)]
use serde::Deserialize;
#[cfg(test)]
use toml::Spanned;

use super::{ProtectKind, ProtectRule};
use crate::error::PolicyError;
#[cfg(test)]
use crate::location::line_col;
use crate::tier::{Origin, Tier};

#[cfg(test)]
const PROTECTED_TOML: &str = include_str!("../../data/protected.toml");
const PROTECTED_NAME: &str = "data/protected.toml";

#[cfg(test)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    #[serde(default)]
    group: Vec<RawGroup>,
}

#[cfg(test)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    docs: Vec<String>,
    #[serde(default)]
    anywhere: Vec<Spanned<String>>,
    #[serde(default)]
    home: Vec<Spanned<String>>,
    in_dependency_trees: Option<bool>,
    dependency_trees_why: Option<String>,
}

include!(concat!(env!("OUT_DIR"), "/protected.rs"));

/// The built-in protected paths, in file order, each with its group name as `why` and its
/// line in `data/protected.toml` as origin. The TOML is parsed at build time (`build.rs`);
/// the patterns are still validated here.
pub fn builtin_protect_rules() -> Result<Vec<ProtectRule>, PolicyError> {
    let file = Path::new(PROTECTED_NAME);
    BUILTIN_PROTECT
        .iter()
        .map(|(group, home, pattern, line, in_deps)| {
            let kind = if *home {
                ProtectKind::Home
            } else {
                ProtectKind::Anywhere
            };
            let origin = Origin {
                tier: Tier::Builtin,
                file: Some(PathBuf::from(file)),
                line: Some(*line),
                col: None,
                flag: None,
            };
            ProtectRule::new_builtin(kind, pattern, Some((*group).to_string()), origin)
                .map(|r| r.with_dependency_trees(*in_deps))
                .map_err(|e| PolicyError::at(file, *line, 1, e))
        })
        .collect()
}

/// Parses the data file at run time: the tests check it agrees with the build-time table.
#[cfg(test)]
pub(crate) fn builtin_protect_rules_from_toml() -> Result<Vec<ProtectRule>, PolicyError> {
    parse_protect_data(Path::new(PROTECTED_NAME), PROTECTED_TOML)
}

#[cfg(test)]
pub(crate) fn parse_protect_data(file: &Path, text: &str) -> Result<Vec<ProtectRule>, PolicyError> {
    let raw: RawData = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        PolicyError::at(file, line, col, e.message())
    })?;
    let lines = crate::location::LineIndex::new(text);
    let mut out = Vec::new();
    for group in raw.group {
        let in_deps = match (group.in_dependency_trees, &group.dependency_trees_why) {
            (Some(d), Some(why)) if !why.is_empty() => d,
            _ if group.anywhere.is_empty() => true,
            _ => {
                return Err(PolicyError::in_file(
                    file,
                    format!(
                    "group {:?}: anywhere rules need in_dependency_trees and dependency_trees_why",
                    group.name
                ),
                ))
            }
        };
        for (kind, list) in [
            (ProtectKind::Anywhere, &group.anywhere),
            (ProtectKind::Home, &group.home),
        ] {
            for entry in list {
                let line = lines.line(entry.span().start);
                let origin = Origin {
                    tier: Tier::Builtin,
                    file: Some(PathBuf::from(file)),
                    line: Some(line),
                    col: None,
                    flag: None,
                };
                let rule =
                    ProtectRule::new(kind, entry.get_ref(), Some(group.name.clone()), origin)
                        .map_err(|e| {
                            let (line, col) = line_col(text, entry.span().start);
                            PolicyError::at(file, line, col, e)
                        })?
                        .with_dependency_trees(in_deps);
                out.push(rule);
            }
        }
        // `docs` is for people reading the file; keeping it in the schema makes a missing
        // citation a review question rather than a parse error.
        let _ = group.docs;
    }
    Ok(out)
}

#[cfg(test)]
mod build_table_tests {
    #[test]
    fn every_builtin_pattern_is_valid() {
        for (group, home, pattern, line, _) in super::BUILTIN_PROTECT {
            let kind = if *home {
                super::ProtectKind::Home
            } else {
                super::ProtectKind::Anywhere
            };
            let origin = super::Origin::bare(super::Tier::Builtin);
            assert!(
                super::ProtectRule::new(kind, pattern, Some(group.to_string()), origin).is_ok(),
                "data/protected.toml:{line}: invalid pattern {pattern:?}"
            );
        }
    }

    #[test]
    fn build_time_table_matches_the_data_file() {
        let a = super::builtin_protect_rules().expect("table");
        let b = super::builtin_protect_rules_from_toml().expect("toml");
        assert_eq!(a, b);
        assert!(a.len() > 100);
    }
}
