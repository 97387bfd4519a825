//! What imgguard asks of git (git2, no network features): the repository root, and the commit and
//! dirty flag of a build context. Reading a local repository needs neither OpenSSL nor libssh2,
//! so git2 is built without its default features.

use std::path::{Path, PathBuf};

/// The working-tree root of the repository containing `dir`, if any.
pub fn repo_root(dir: &Path) -> Option<PathBuf> {
    let repo = git2::Repository::discover(dir).ok()?;
    repo.workdir().map(Path::to_path_buf)
}

/// The commit checked out in the repository containing `dir`, and whether the working tree
/// differs from it (untracked files count: they can end up in a build context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// Full hex of HEAD's commit.
    pub commit: String,
    /// Whether anything tracked or untracked (and not ignored) differs from HEAD.
    pub dirty: bool,
}

/// Looks up HEAD and the dirty flag; `None` outside a repository or on an unborn branch.
pub fn state(dir: &Path) -> Option<GitState> {
    let repo = git2::Repository::discover(dir).ok()?;
    let commit = repo.head().ok()?.peel_to_commit().ok()?.id().to_string();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).include_ignored(false).exclude_submodules(true);
    let dirty = repo.statuses(Some(&mut opts)).is_ok_and(|s| !s.is_empty());
    Some(GitState { commit, dirty })
}
