//! Path spelling rules shared by files and flags: `~` expansion and lexical normalisation.
//!
//! Policy paths are compared lexically; symlinks are resolved only where the policy is compiled
//! for a run (`compile`, `fsrules`), so the one thing this module guarantees is that no `..`
//! ever survives.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Expands `~` / `~/...` against `home` and normalises. Relative paths are refused (a policy
/// path that silently depended on the current directory would mean different things in
/// different places), as are empty strings, NUL bytes, `~user` and `..` components.
pub fn expand_path(raw: &OsStr, home: &Path) -> Result<PathBuf, String> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() {
        return Err("empty path".into());
    }
    if bytes.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    let joined = if bytes == b"~" {
        home.to_path_buf()
    } else if let Some(rest) = bytes.strip_prefix(b"~/") {
        home.join(OsStr::from_bytes(rest))
    } else if bytes.first() == Some(&b'~') {
        return Err("`~user` paths are not supported; write the path in full".into());
    } else if bytes.first() == Some(&b'/') {
        PathBuf::from(raw)
    } else {
        return Err("relative path; write it absolute or starting with `~/`".into());
    };
    normalize(&joined)
}

/// Lexical normalisation of an absolute path: drops `.` and repeated or trailing slashes,
/// refuses `..` (it cannot be resolved without the file system, and hostile spelling is
/// exactly where `..` hides).
pub fn normalize(path: &Path) -> Result<PathBuf, String> {
    if path.as_os_str().as_bytes().contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains a `..` component".into()),
            Component::Normal(c) => out.push(c),
            Component::Prefix(_) => return Err("unsupported path prefix".into()),
        }
    }
    if !out.is_absolute() {
        return Err("path is not absolute".into());
    }
    Ok(out)
}

/// Why `path` may not be made writable, if it may not: `/`, `$HOME` itself or any ancestor
/// of `$HOME` (a writable home is a persistence free-for-all: shell start-up files, PATH).
pub fn writable_root_problem(path: &Path, home: &Path) -> Option<&'static str> {
    if path == Path::new("/") {
        Some("is the root directory")
    } else if path == home {
        Some("is $HOME itself")
    } else if home.starts_with(path) {
        Some("is an ancestor of $HOME")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(s: &str) -> Result<PathBuf, String> {
        expand_path(OsStr::new(s), Path::new("/home/u"))
    }

    #[test]
    fn expansion_and_normalisation() {
        assert_eq!(ex("~").unwrap(), PathBuf::from("/home/u"));
        assert_eq!(ex("~/a//b/./c/").unwrap(), PathBuf::from("/home/u/a/b/c"));
        assert_eq!(ex("/x/y").unwrap(), PathBuf::from("/x/y"));
        assert_eq!(ex("//").unwrap(), PathBuf::from("/"));
    }

    #[test]
    fn bad_spellings_are_refused() {
        for bad in ["", "rel/x", "./x", "~root/x", "/a/../b", "~/..", "/a\0b"] {
            assert!(ex(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn writable_roots() {
        let home = Path::new("/home/u");
        assert!(writable_root_problem(Path::new("/"), home).is_some());
        assert!(writable_root_problem(Path::new("/home"), home).is_some());
        assert!(writable_root_problem(Path::new("/home/u"), home).is_some());
        assert!(writable_root_problem(Path::new("/home/u/src"), home).is_none());
        assert!(writable_root_problem(Path::new("/home/uu"), home).is_none());
        assert!(writable_root_problem(Path::new("/data"), home).is_none());
    }
}
