//! Reading the standard policy locations into [`Inputs`], and one file for `policy check`.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::compile::{compile, Compiled};
use crate::error::PolicyError;
use crate::layer::CliLayer;
use crate::resolve::Inputs;
use crate::trust::TrustStore;

/// The managed policy file.
pub const MANAGED_POLICY: &str = "/etc/cordon/policy.toml";
/// The project policy file name, at the workspace root.
pub const PROJECT_POLICY: &str = ".cordon.toml";

/// Where the policy files are. [`Locations::standard`] gives the real ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// Managed policy (must be owned by root and not writable by group or others).
    pub managed: PathBuf,
    /// User policy.
    pub user: PathBuf,
    /// Project policy.
    pub project: PathBuf,
}

impl Locations {
    /// `/etc/cordon/policy.toml`, `${XDG_CONFIG_HOME:-~/.config}/cordon/policy.toml`,
    /// `<workspace>/.cordon.toml`. `xdg_config_home` is used only if absolute (as the XDG
    /// spec says).
    pub fn standard(home: &Path, xdg_config_home: Option<&Path>, workspace: &Path) -> Self {
        let config = match xdg_config_home {
            Some(x) if x.is_absolute() => x.to_path_buf(),
            _ => home.join(".config"),
        };
        Locations {
            managed: PathBuf::from(MANAGED_POLICY),
            user: config.join("cordon").join("policy.toml"),
            project: workspace.join(PROJECT_POLICY),
        }
    }
}

/// Reads the policy files into [`Inputs`]. Missing managed, user and project files are fine;
/// a missing `-p` file is an error (it was asked for). The project is trusted when `trust`
/// holds its exact content.
pub fn load_inputs(
    home: &Path,
    workspace: &Path,
    locations: &Locations,
    extra: &[PathBuf],
    cli: CliLayer,
    trust: Option<&TrustStore>,
) -> Result<Inputs, PolicyError> {
    let managed = read_optional(&locations.managed)?;
    if managed.is_some() {
        check_managed_owner(&locations.managed)?;
    }
    let mut user: Vec<(PathBuf, String)> = read_optional(&locations.user)?
        .map(|t| (locations.user.clone(), t))
        .into_iter()
        .collect();
    for p in extra {
        user.push((p.clone(), read_required(p)?));
    }
    let project = read_optional(&locations.project)?.map(|t| (locations.project.clone(), t));
    let project_trusted = match (&project, trust) {
        (Some((path, text)), Some(store)) => store.is_trusted(path, text),
        _ => false,
    };
    Ok(Inputs {
        home: home.to_path_buf(),
        workspace: workspace.to_path_buf(),
        managed: managed.map(|t| (locations.managed.clone(), t)),
        user,
        project,
        project_trusted,
        cli,
        profiles: Vec::new(),
    })
}

/// What `cordon policy check FILE` compiles: `file` alone, read as `cordon run -p FILE` reads
/// it (or, named [`PROJECT_POLICY`], as the project file), through the same [`compile`] as
/// every run.
pub fn check_file(file: &Path, home: &Path, workspace: &Path) -> Result<Compiled, PolicyError> {
    let text = read_required(file)?;
    let mut inputs = Inputs::new(home, workspace);
    if file.file_name().is_some_and(|n| n == PROJECT_POLICY) {
        inputs.project = Some((file.to_path_buf(), text));
    } else {
        inputs.user.push((file.to_path_buf(), text));
    }
    compile(&inputs)
}

fn read_optional(path: &Path) -> Result<Option<String>, PolicyError> {
    match fs::read(path) {
        Ok(bytes) => decode(path, bytes).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PolicyError::in_file(path, format!("cannot read: {e}"))),
    }
}

fn read_required(path: &Path) -> Result<String, PolicyError> {
    let bytes =
        fs::read(path).map_err(|e| PolicyError::in_file(path, format!("cannot read: {e}")))?;
    decode(path, bytes)
}

fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, PolicyError> {
    String::from_utf8(bytes).map_err(|e| {
        let text = String::from_utf8_lossy(e.as_bytes());
        let (line, col) = crate::location::line_col(&text, e.utf8_error().valid_up_to());
        PolicyError::at(path, line, col, "file is not valid UTF-8")
    })
}

/// A managed policy anyone but root could edit would not be managed.
fn check_managed_owner(path: &Path) -> Result<(), PolicyError> {
    let meta =
        fs::metadata(path).map_err(|e| PolicyError::in_file(path, format!("cannot stat: {e}")))?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(PolicyError::in_file(
            path,
            "managed policy must be owned by root and not writable by group or others (fix: chown root: FILE && chmod 644 FILE)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_files_are_tolerated_but_named_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let locs = Locations {
            managed: dir.path().join("none-managed.toml"),
            user: dir.path().join("none-user.toml"),
            project: dir.path().join("ws/.cordon.toml"),
        };
        let inputs = load_inputs(
            dir.path(),
            &dir.path().join("ws"),
            &locs,
            &[],
            CliLayer::default(),
            None,
        )
        .unwrap();
        assert!(inputs.managed.is_none() && inputs.user.is_empty() && inputs.project.is_none());
        let e = load_inputs(
            dir.path(),
            &dir.path().join("ws"),
            &locs,
            &[dir.path().join("missing.toml")],
            CliLayer::default(),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing.toml: cannot read"), "{e}");
    }

    #[test]
    fn project_trust_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        fs::create_dir(&ws).unwrap();
        let locs = Locations::standard(dir.path(), None, &ws);
        fs::write(&locs.project, "[filesystem]\nallow_write = [\"/data\"]\n").unwrap();
        let mut store = TrustStore::default();
        store
            .trust(&locs.project, "[filesystem]\nallow_write = [\"/data\"]\n")
            .unwrap();
        let i = load_inputs(
            dir.path(),
            &ws,
            &locs,
            &[],
            CliLayer::default(),
            Some(&store),
        )
        .unwrap();
        assert!(i.project_trusted);
        fs::write(&locs.project, "[filesystem]\nallow_write = [\"/other\"]\n").unwrap();
        let i = load_inputs(
            dir.path(),
            &ws,
            &locs,
            &[],
            CliLayer::default(),
            Some(&store),
        )
        .unwrap();
        assert!(!i.project_trusted);
    }

    #[test]
    fn managed_file_must_be_root_owned_and_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let managed = dir.path().join("managed.toml");
        fs::write(&managed, "").unwrap();
        fs::set_permissions(&managed, fs::Permissions::from_mode(0o666)).unwrap();
        let locs = Locations {
            managed: managed.clone(),
            user: dir.path().join("u.toml"),
            project: dir.path().join("p.toml"),
        };
        let e = load_inputs(
            dir.path(),
            dir.path(),
            &locs,
            &[],
            CliLayer::default(),
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("managed policy must be owned by root"),
            "{e}"
        );
        fs::set_permissions(&managed, fs::Permissions::from_mode(0o644)).unwrap();
        let r = load_inputs(
            dir.path(),
            dir.path(),
            &locs,
            &[],
            CliLayer::default(),
            None,
        );
        // The file is ours: root-owned exactly when the test runs as root.
        let owner = fs::metadata(&managed).unwrap().uid();
        assert_eq!(r.is_ok(), owner == 0, "{r:?}");
    }

    #[test]
    fn invalid_utf8_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.toml");
        fs::write(&p, b"a = 1\nb = \"\xff\"\n").unwrap();
        let e = read_required(&p).unwrap_err();
        assert!(
            e.to_string().ends_with(":2:6: file is not valid UTF-8"),
            "{e}"
        );
    }
}
