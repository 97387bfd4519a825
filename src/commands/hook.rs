//! `imgguard hook install`: writes `hooks/pre-push` (embedded in the binary) into the
//! repository's hooks directory, honouring `core.hooksPath`. An existing foreign pre-push hook
//! is kept as `pre-push.imgguard-chained` and run first by ours, unless `--replace`. Our own
//! hook (recognised by its marker line) is simply updated.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{HookAction, HookArgs};
use crate::error::{Error, Outcome};

/// The hook script, as committed under `hooks/pre-push`.
pub const PRE_PUSH: &str = include_str!("../../hooks/pre-push");

/// The line that marks a hook as imgguard's own.
const MARKER: &str = "# imgguard pre-push hook";

/// Where an existing hook is kept when ours is installed in front of it.
pub const CHAINED: &str = "pre-push.imgguard-chained";

/// Runs `imgguard hook …`.
pub fn run(args: &HookArgs) -> Result<Outcome, Error> {
    match args.action {
        HookAction::Install { replace } => {
            let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
            let dir = hooks_dir(&cwd)?;
            let message = install(&dir, replace)?;
            let _ = writeln!(std::io::stderr(), "imgguard: {message}");
            Ok(Outcome::Ok)
        }
    }
}

/// The hooks directory git runs hooks from: `core.hooksPath` (relative to the working tree)
/// or the common git directory's `hooks/` (shared by linked worktrees).
pub fn hooks_dir(cwd: &Path) -> Result<PathBuf, Error> {
    let repo = git2::Repository::discover(cwd)
        .map_err(|_| Error::Usage(format!("{} is not inside a git repository", cwd.display())))?;
    let git_err = |e: git2::Error| Error::Other(format!("git: {}", e.message()));
    let config = repo.config().map_err(git_err)?;
    match config.get_path("core.hooksPath") {
        Ok(path) if path.is_absolute() => Ok(path),
        Ok(path) => {
            let base = repo.workdir().unwrap_or_else(|| repo.path());
            Ok(base.join(path))
        }
        Err(_) => Ok(repo.commondir().join("hooks")),
    }
}

/// Installs the pre-push hook into `dir`; says what was done.
pub fn install(dir: &Path, replace: bool) -> Result<String, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let target = dir.join("pre-push");
    let mut note = String::new();
    match std::fs::read(&target) {
        Ok(existing) => {
            let ours = String::from_utf8_lossy(&existing).contains(MARKER);
            if !ours && !replace {
                let chained = dir.join(CHAINED);
                if chained.exists() {
                    return Err(Error::Usage(format!(
                        "{} exists and so does {}: remove one, or pass --replace to overwrite \
                         the pre-push hook",
                        target.display(),
                        chained.display()
                    )));
                }
                std::fs::rename(&target, &chained).map_err(|e| Error::io(&target, e))?;
                note = format!("; the previous hook is kept as {CHAINED} and runs first");
            } else if !ours {
                note = "; the previous hook was replaced".to_string();
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&target, e)),
    }
    // Write next to the target, then rename: a half-written hook must never run.
    let tmp = dir.join(".pre-push.imgguard-tmp");
    std::fs::write(&tmp, PRE_PUSH).map_err(|e| Error::io(&tmp, e))?;
    make_executable(&tmp)?;
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
    Ok(format!("installed the pre-push hook at {}{note}", target.display()))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(path, e))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_script_carries_the_marker() {
        assert!(PRE_PUSH.starts_with("#!/bin/sh\n"));
        assert!(PRE_PUSH.contains(MARKER));
        assert!(PRE_PUSH.contains("imgguard check --pre-push"));
    }

    #[test]
    fn install_chains_then_updates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
        let msg = install(dir.path(), false).unwrap();
        assert!(msg.contains(CHAINED), "{msg}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CHAINED)).unwrap(),
            "#!/bin/sh\nexit 0\n"
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("pre-push")).unwrap(), PRE_PUSH);
        // Installing again updates ours and leaves the chained hook alone.
        let msg = install(dir.path(), false).unwrap();
        assert!(!msg.contains(CHAINED), "{msg}");
        assert!(dir.path().join(CHAINED).exists());
    }

    #[test]
    fn replace_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
        install(dir.path(), true).unwrap();
        assert!(!dir.path().join(CHAINED).exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("pre-push")).unwrap(), PRE_PUSH);
    }
}
