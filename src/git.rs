//! What imgguard asks of git (git2, no network features): the repository root, and the commit and
//! dirty flag of a build context. Reading a local repository needs neither OpenSSL nor libssh2,
//! so git2 is built without its default features.

use std::path::{Path, PathBuf};

/// The working-tree root of the repository containing `dir`, if any.
pub fn repo_root(dir: &Path) -> Option<PathBuf> {
    let repo = git2::Repository::discover(dir).ok()?;
    repo.workdir().map(Path::to_path_buf)
}

/// The nearest directory from `dir` up that holds a `.git` (a repository's directory, or the
/// `gitdir:` file of a worktree or submodule): where a repository's `.imgguard.yml` is looked
/// for. Hand-written rather than [`repo_root`]: libgit2's discover initialises the library and
/// reads git's configuration to answer the same question, ~0.25 ms on every build's critical
/// path; this is a few `stat`s.
pub fn nearest_worktree(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            let git = d.join(".git");
            match std::fs::symlink_metadata(&git) {
                Ok(m) if m.is_dir() => git.join("HEAD").is_file(),
                Ok(m) => m.is_file(),
                Err(_) => false,
            }
        })
        .map(Path::to_path_buf)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_worktree_agrees_with_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        // Outside any repository (nothing above a fresh temporary directory is one).
        assert_eq!(nearest_worktree(&deep), None);
        assert_eq!(repo_root(&deep), None);
        let init = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(init.success());
        let canonical = |p: Option<PathBuf>| p.map(|p| p.canonicalize().unwrap());
        assert_eq!(canonical(nearest_worktree(&deep)), Some(root.canonicalize().unwrap()));
        assert_eq!(canonical(nearest_worktree(&deep)), canonical(repo_root(&deep)));
        // A worktree's or submodule's `.git` file marks its root too.
        let linked = deep.join("sub");
        std::fs::create_dir(&linked).unwrap();
        std::fs::write(linked.join(".git"), "gitdir: ../../../.git\n").unwrap();
        assert_eq!(
            nearest_worktree(&linked.join(".")).as_deref(),
            Some(linked.join(".").as_path())
        );
        // A `.git` directory that is no repository (no HEAD) is passed over.
        let stray = root.join("stray");
        std::fs::create_dir_all(stray.join(".git")).unwrap();
        assert_eq!(canonical(nearest_worktree(&stray)), Some(root.canonicalize().unwrap()));
    }
}
