//! Turns `data/protected.toml` into a static table at build time, so cordon does not parse
//! TOML for its built-in protected paths on every start (it was most of start-up's own work).
//! The file stays the single, documented source; a malformed one fails the build.

use serde::Deserialize;
use std::fmt::Write as _;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    #[serde(default)]
    group: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    docs: Vec<String>,
    #[serde(default)]
    anywhere: Vec<Spanned<String>>,
    #[serde(default)]
    home: Vec<Spanned<String>>,
    in_dependency_trees: Option<bool>,
    #[allow(dead_code)]
    dependency_trees_why: Option<String>,
}

fn main() {
    println!("cargo:rerun-if-changed=data/protected.toml");
    let text = std::fs::read_to_string("data/protected.toml").expect("read data/protected.toml");
    let raw: RawData = toml::from_str(&text).expect("data/protected.toml must be valid");
    let line = |offset: usize| {
        text[..offset.min(text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    };
    let mut out = String::from(
        "pub(crate) static BUILTIN_PROTECT: &[(&str, bool, &str, usize, bool)] = &[\n",
    );
    for g in &raw.group {
        // Which `anywhere` rules hold inside dependency trees is a decision per group, and
        // must be written down with its reason.
        let in_deps = match (&g.in_dependency_trees, &g.dependency_trees_why) {
            (Some(d), Some(why)) if !why.is_empty() => *d,
            _ if g.anywhere.is_empty() => true,
            _ => panic!(
                "data/protected.toml: group {:?} has anywhere rules but no in_dependency_trees and dependency_trees_why",
                g.name
            ),
        };
        for (home, list) in [(false, &g.anywhere), (true, &g.home)] {
            for e in list {
                let _ = writeln!(
                    out,
                    "    ({:?}, {home}, {:?}, {}, {in_deps}),",
                    g.name,
                    e.get_ref(),
                    line(e.span().start)
                );
            }
        }
    }
    out.push_str("];\n");
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("protected.rs");
    std::fs::write(dest, out).expect("write the generated table");
}
