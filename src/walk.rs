//! Where the text to scan comes from: the working tree (a parallel walk honouring .gitignore,
//! with the `ignore` crate), the git index (`--staged`) or the commits being pushed
//! (`--pre-push`, read as git2 blobs, never from the working tree). This is the guard's I/O
//! edge; the scanning itself is [`crate::core::guard::scan`], called from the walker's threads.
//!
//! Files are read through [`crate::bounded_read`]: a FIFO, a device, a symbolic link or a file
//! over 16 MiB is skipped, never waited on, and every skipped file is listed in [`Scanned`] with
//! its reason, so the command can say what it did not look at. Text that is not UTF-8 is scanned
//! with the odd bytes replaced ([`crate::core::guard::decode`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use git2::{Oid, Repository};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{WalkBuilder, WalkState};

use crate::bounded_read::{self, ReadError, SOURCE_LIMIT};
use crate::core::guard::{
    compose, decode, kind_by_name, kind_of, may_have_shebang, ComposeBuild, Finding, GuardError,
    Rules,
};

/// What can go wrong reading the sources (all exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A path given on the command line or met in the walk could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A walk error (permissions, loops).
    #[error("{0}")]
    Walk(String),
    /// A git operation failed.
    #[error("git: {0}")]
    Git(String),
    /// An exclude pattern is not a valid glob.
    #[error("check.exclude: invalid pattern: {0}")]
    Pattern(String),
    /// The scan itself refused the input (an unknown rule in an inline ignore).
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// A line of git's pre-push input is not `<local ref> <sha> <remote ref> <sha>`.
    #[error("pre-push input line {line}: expected `<local ref> <local sha> <remote ref> <remote sha>`, got `{text}`")]
    PrePushLine {
        /// 1-based line.
        line: usize,
        /// What was read.
        text: String,
    },
}

impl From<git2::Error> for RepoError {
    fn from(e: git2::Error) -> Self {
        RepoError::Git(e.message().to_string())
    }
}

/// Paths excluded by `check.exclude` (gitignore syntax, relative to `root`).
#[derive(Debug, Clone)]
pub struct Exclude {
    matcher: Gitignore,
}

impl Exclude {
    /// Builds the matcher; patterns are relative to `root` (the repository root).
    pub fn new(root: &Path, patterns: &[String]) -> Result<Exclude, RepoError> {
        let mut builder = GitignoreBuilder::new(root);
        for p in patterns {
            builder.add_line(None, p).map_err(|e| RepoError::Pattern(e.to_string()))?;
        }
        let matcher = builder.build().map_err(|e| RepoError::Pattern(e.to_string()))?;
        Ok(Exclude { matcher })
    }

    /// Whether there are no patterns (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// Whether `path` (absolute, or relative to the root) is excluded.
    pub fn excludes(&self, path: &Path, is_dir: bool) -> bool {
        if self.matcher.is_empty() {
            return false;
        }
        let path = if path.is_absolute() {
            path.strip_prefix(self.matcher.path()).unwrap_or(path)
        } else {
            path
        };
        self.matcher.matched_path_or_any_parents(path, is_dir).is_ignore()
    }
}

/// The findings, how many files of a known kind were scanned, and what was not looked at.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Every finding, sorted by path, line and column.
    pub findings: Vec<Finding>,
    /// Files of a kind the guard reads.
    pub files: usize,
    /// Files that may be of a kind the guard reads but were not read, sorted by path.
    pub skipped: Vec<Skipped>,
    /// Files scanned with bytes that are not UTF-8 replaced, sorted.
    pub lossy: Vec<PathBuf>,
}

/// A file the guard did not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path as reported.
    pub path: PathBuf,
    /// Why, as a phrase after the path (`is a FIFO, not a regular file`).
    pub reason: String,
    /// Whether the file was named on the command line (then the user is always told).
    pub explicit: bool,
}

/// What reading and scanning one file came to.
enum FileScan {
    /// Not a kind the guard reads.
    NotOurs,
    /// Not read, with the reason.
    Skipped(String),
    /// Scanned; `lossy` when bytes that are not UTF-8 were replaced.
    Scanned { scan: crate::core::guard::Scan, lossy: bool },
}

/// Scans `targets` (files or directories) in parallel. Findings name paths relative to
/// `display_root` when they are inside it.
pub fn scan_paths(
    targets: &[PathBuf],
    display_root: &Path,
    exclude: &Exclude,
    rules: &Rules,
) -> Result<Scanned, RepoError> {
    let findings = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let skipped = Mutex::new(Vec::new());
    let lossy = Mutex::new(Vec::new());
    let composes = Mutex::new(Vec::new());
    let wrapped = Mutex::new(Vec::new());
    let files = AtomicUsize::new(0);
    let record = |display: PathBuf, result: FileScan, explicit: bool| match result {
        FileScan::NotOurs => {}
        FileScan::Skipped(reason) => {
            lock(&skipped).push(Skipped { path: display, reason, explicit });
        }
        FileScan::Scanned { scan, lossy: odd } => {
            files.fetch_add(1, Ordering::Relaxed);
            if odd {
                lock(&lossy).push(display);
            }
            if !scan.findings.is_empty() {
                lock(&findings).extend(scan.findings);
            }
            if !scan.compose_builds.is_empty() {
                lock(&composes).extend(scan.compose_builds);
            }
            if !scan.wrapped.is_empty() {
                lock(&wrapped).push((scan.wrapped, scan.sources));
            }
        }
    };
    let mut dirs = Vec::new();
    for target in targets {
        let meta = std::fs::metadata(target)
            .map_err(|source| RepoError::Io { path: target.clone(), source })?;
        if meta.is_dir() {
            dirs.push(target.clone());
        } else {
            // A file named on the command line (pre-commit passes them) is read whatever
            // .gitignore says, but still by kind.
            let display = display_path(target, display_root);
            if exclude.excludes(&absolute(target), false) {
                continue;
            }
            record(display.clone(), scan_file(target, &display, rules)?, true);
        }
    }
    if let Some((first, rest)) = dirs.split_first() {
        let mut builder = WalkBuilder::new(first);
        for dir in rest {
            builder.add(dir);
        }
        // Hidden files matter (.github/workflows, .gitlab-ci.yml); .git itself does not.
        builder.hidden(false).filter_entry(|e| e.file_name() != ".git");
        builder.build_parallel().run(|| {
            Box::new(|entry| {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        lock(&errors).push(RepoError::Walk(e.to_string()));
                        return WalkState::Continue;
                    }
                };
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                if !exclude.is_empty() && exclude.excludes(&absolute(entry.path()), is_dir) {
                    return if is_dir { WalkState::Skip } else { WalkState::Continue };
                }
                let display = display_path(entry.path(), display_root);
                match entry.file_type() {
                    Some(t) if t.is_file() => match scan_file(entry.path(), &display, rules) {
                        Ok(result) => record(display, result, false),
                        Err(e) => lock(&errors).push(e),
                    },
                    // A symbolic link is not followed (its target, when inside the tree, is
                    // scanned where it lives); a FIFO or device is never opened.
                    Some(t) if !t.is_dir() && may_be_ours(entry.path()) => {
                        let reason = match entry.path().symlink_metadata() {
                            Ok(meta) if t.is_symlink() => {
                                format!("is {} (not followed)", bounded_read::kind_of(&meta))
                            }
                            Ok(meta) => {
                                format!("is {}, not a regular file", bounded_read::kind_of(&meta))
                            }
                            Err(e) => e.to_string(),
                        };
                        record(display, FileScan::Skipped(reason), false);
                    }
                    _ => {}
                }
                WalkState::Continue
            })
        });
    }
    if let Some(e) =
        errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).into_iter().next()
    {
        return Err(e);
    }
    let mut findings = findings.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let composes = composes.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    findings.extend(resolve_composes(&composes, display_root, rules));
    for (found, sources) in wrapped.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        findings.extend(resolve_wrapped(found, &sources, display_root));
    }
    sort(&mut findings);
    let mut skipped = skipped.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let mut lossy = lossy.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    lossy.sort();
    Ok(Scanned { findings, files: files.into_inner(), skipped, lossy })
}

/// Whether a file with this name could be one the guard reads (by name, or by a shebang).
fn may_be_ours(path: &Path) -> bool {
    kind_by_name(path).is_some() || may_have_shebang(path)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sorts findings by path, line, column and rule.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.path, a.line, a.column, a.rule).cmp(&(&b.path, b.line, b.column, b.rule))
    });
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn display_path(path: &Path, root: &Path) -> PathBuf {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.strip_prefix(".").unwrap_or(rel).to_path_buf()
}

/// Reads and scans one file when its name or shebang makes it a kind the guard reads.
fn scan_file(path: &Path, display: &Path, rules: &Rules) -> Result<FileScan, RepoError> {
    let io = |source| RepoError::Io { path: path.to_path_buf(), source };
    let named = kind_by_name(path).is_some();
    if !named && !may_have_shebang(path) {
        return Ok(FileScan::NotOurs);
    }
    let (mut file, meta) = match bounded_read::open_regular(path) {
        Ok(opened) => opened,
        Err(ReadError::Io(e)) => return Err(io(e)),
        Err(refused) => return Ok(FileScan::Skipped(refused.to_string())),
    };
    let mut bytes = Vec::new();
    if !named {
        // Only a shebang can make this file shell: look at two bytes before reading it all.
        let mut head = [0u8; 2];
        let n = file.read(&mut head).map_err(io)?;
        if n < 2 || &head != b"#!" {
            return Ok(FileScan::NotOurs);
        }
        bytes.extend_from_slice(&head);
    }
    let bytes = match bounded_read::read_rest(file, &meta, bytes, SOURCE_LIMIT) {
        Ok(bytes) => bytes,
        Err(ReadError::Io(e)) => return Err(io(e)),
        Err(refused) => return Ok(FileScan::Skipped(refused.to_string())),
    };
    let (text, lossy) = decode(&bytes);
    let Some(kind) = kind_of(display, &text).or_else(|| kind_of(path, &text)) else {
        return Ok(FileScan::NotOurs);
    };
    let scan = crate::core::guard::scan_detailed(kind, display, &text, rules)?;
    Ok(FileScan::Scanned { scan, lossy })
}

/// The findings of commands run through a function defined in a sourced file: each stands if
/// one of `sources` (read from under `base`: `./x` next to the file, else next to it or at
/// the root) defines that function to run its arguments.
fn resolve_wrapped(found: Vec<(String, Finding)>, sources: &[String], base: &Path) -> Vec<Finding> {
    let Some(script) = found.first().map(|(_, f)| f.path.clone()) else { return Vec::new() };
    let dir = script.parent().unwrap_or(Path::new(""));
    let mut wrappers = std::collections::HashSet::new();
    for source in sources {
        let candidates = match source.strip_prefix("./") {
            Some(rest) => vec![dir.join(rest)],
            None if Path::new(source).is_absolute() => continue,
            None => vec![dir.join(source), PathBuf::from(source)],
        };
        for candidate in candidates {
            if let Ok(bytes) = bounded_read::read_regular(&base.join(&candidate), SOURCE_LIMIT) {
                wrappers.extend(crate::core::guard::wrapper_functions(&decode(&bytes).0));
                break;
            }
        }
    }
    found.into_iter().filter(|(via, _)| wrappers.contains(via)).map(|(_, f)| f).collect()
}

/// The IG003 findings of `docker compose build` commands: each command's compose files are
/// looked up (paths relative to `base`, the directory reported paths are relative to), read
/// like any scanned file, and resolved. A compose file that cannot be read is passed over, as
/// compose would fail on it.
fn resolve_composes(builds: &[ComposeBuild], base: &Path, rules: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    for build in builds {
        let mut files = Vec::new();
        for candidate in compose::candidates(build) {
            let Ok(bytes) = bounded_read::read_regular(&base.join(&candidate), SOURCE_LIMIT) else {
                continue;
            };
            files.push((candidate, decode(&bytes).0.into_owned()));
            if build.files.is_empty() {
                // compose reads the first default file it finds, nearest first.
                break;
            }
        }
        out.extend(compose::resolve(build, &files, rules));
    }
    out
}

/// A file's content read from git: its text, or why it was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    /// The text; `lossy` when bytes that are not UTF-8 were replaced.
    Text {
        /// The content.
        text: String,
        /// Whether bytes were replaced.
        lossy: bool,
    },
    /// Not read (binary, too large), with the reason.
    Skipped(String),
}

/// Scans `(path, content)` pairs read from git (index or pushed blobs).
pub fn scan_blobs(
    blobs: &BTreeMap<PathBuf, Blob>,
    root: &Path,
    exclude: &Exclude,
    rules: &Rules,
) -> Result<Scanned, RepoError> {
    let mut scanned = Scanned::default();
    let mut composes = Vec::new();
    let mut wrapped = Vec::new();
    for (path, blob) in blobs {
        if exclude.excludes(path, false) {
            continue;
        }
        match blob {
            Blob::Skipped(reason) => scanned.skipped.push(Skipped {
                path: path.clone(),
                reason: reason.clone(),
                explicit: false,
            }),
            Blob::Text { text, lossy } => {
                let Some(kind) = kind_of(path, text) else { continue };
                scanned.files += 1;
                if *lossy {
                    scanned.lossy.push(path.clone());
                }
                let scan = crate::core::guard::scan_detailed(kind, path, text, rules)?;
                scanned.findings.extend(scan.findings);
                composes.extend(scan.compose_builds);
                if !scan.wrapped.is_empty() {
                    wrapped.push((scan.wrapped, scan.sources));
                }
            }
        }
    }
    for (found, sources) in wrapped {
        scanned.findings.extend(resolve_wrapped(found, &sources, root));
    }
    // The compose files are read from the working tree: the tag lives there whether or not
    // the push changes it.
    scanned.findings.extend(resolve_composes(&composes, root, rules));
    sort(&mut scanned.findings);
    Ok(scanned)
}

/// Opens the repository containing `dir`; its working-tree root.
pub fn open(dir: &Path) -> Result<(Repository, PathBuf), RepoError> {
    let repo = Repository::discover(dir)
        .map_err(|_| RepoError::Git(format!("{} is not inside a git repository", dir.display())))?;
    let root = repo.workdir().map_or_else(|| repo.path().to_path_buf(), Path::to_path_buf);
    Ok((repo, root))
}

/// The staged content of every file the index adds or changes compared with HEAD.
pub fn staged(repo: &Repository) -> Result<BTreeMap<PathBuf, Blob>, RepoError> {
    let head = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let index = repo.index()?;
    let diff = repo.diff_tree_to_index(head.as_ref(), Some(&index), None)?;
    let mut out = BTreeMap::new();
    for delta in diff.deltas() {
        let new = delta.new_file();
        if new.id().is_zero() {
            continue;
        }
        if let Some(path) = new.path() {
            if let Some(blob) = blob_text(repo, path, new.id()) {
                out.insert(path.to_path_buf(), blob);
            }
        }
    }
    Ok(out)
}

/// The content of blob `id` at `path`; `None` when it cannot be a kind the guard reads.
fn blob_text(repo: &Repository, path: &Path, id: Oid) -> Option<Blob> {
    let blob = repo.find_blob(id).ok()?;
    let content = blob.content();
    if !may_be_ours(path) || (kind_by_name(path).is_none() && !content.starts_with(b"#!")) {
        return None;
    }
    if content.len() as u64 > SOURCE_LIMIT {
        return Some(Blob::Skipped(ReadError::TooLarge { limit: SOURCE_LIMIT }.to_string()));
    }
    if content.contains(&0) {
        return Some(Blob::Skipped("is binary (it has NUL bytes)".into()));
    }
    let (text, lossy) = decode(content);
    Some(Blob::Text { text: text.into_owned(), lossy })
}

fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// The files changed by the pushed commits, at their pushed content. `input` is what git gives
/// the pre-push hook on stdin (`<local ref> <local sha> <remote ref> <remote sha>` lines);
/// `remote` its first argument (the remote's name, or its URL when pushing to a URL).
///
/// A deleted ref (local sha all zeros) scans nothing. An update whose old remote commit is
/// known locally is one tree diff. A new branch (remote sha all zeros), or an old commit we do
/// not have, is compared with what the remote already has: the commits reachable from the
/// pushed one and from no remote-tracking ref of that remote (`git rev-list <sha> --not
/// --remotes=<remote>`), each diffed with its first parent.
pub fn pre_push(
    repo: &Repository,
    input: &str,
    remote: Option<&str>,
) -> Result<BTreeMap<PathBuf, Blob>, RepoError> {
    let mut out = BTreeMap::new();
    for (i, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = || RepoError::PrePushLine { line: i + 1, text: line.to_string() };
        let [_local_ref, local_sha, _remote_ref, remote_sha] = fields[..] else {
            return Err(bad());
        };
        if is_zero(local_sha) {
            continue;
        }
        let local = Oid::from_str(local_sha).map_err(|_| bad())?;
        let Ok(tip) = repo.find_object(local, None).and_then(|o| o.peel_to_commit()) else {
            // A tag of a tree or blob: no commit, nothing to scan.
            continue;
        };
        let tip_tree = tip.tree()?;
        let mut paths = Vec::new();
        let old = if is_zero(remote_sha) {
            None
        } else {
            Oid::from_str(remote_sha).ok().and_then(|o| repo.find_commit(o).ok())
        };
        if let Some(old) = old {
            changed_paths(repo, Some(&old.tree()?), &tip_tree, Path::new(""), &mut paths)?;
        } else {
            let mut walk = repo.revwalk()?;
            walk.push(tip.id())?;
            hide_remote(repo, &mut walk, remote)?;
            for id in walk {
                let commit = repo.find_commit(id?)?;
                let parent_tree = match commit.parent(0) {
                    Ok(p) => Some(p.tree()?),
                    Err(_) => None,
                };
                changed_paths(
                    repo,
                    parent_tree.as_ref(),
                    &commit.tree()?,
                    Path::new(""),
                    &mut paths,
                )?;
            }
        }
        for path in paths {
            if out.contains_key(&path) {
                continue;
            }
            // The pushed content is the tip's; a file deleted by then has nothing to scan.
            let Ok(entry) = tip_tree.get_path(&path) else { continue };
            if let Some(blob) = blob_text(repo, &path, entry.id()) {
                out.insert(path, blob);
            }
        }
    }
    Ok(out)
}

/// The paths of blobs added or changed from `old` to `new`. Subtrees with the same ID are
/// skipped without being read, so a one-file push costs a few tree reads however large the
/// repository is (libgit2's tree diff reads both whole trees).
fn changed_paths(
    repo: &Repository,
    old: Option<&git2::Tree<'_>>,
    new: &git2::Tree<'_>,
    prefix: &Path,
    out: &mut Vec<PathBuf>,
) -> Result<(), git2::Error> {
    for entry in new {
        // A name that is not UTF-8 cannot be one of the file kinds the guard reads.
        let Some(name) = entry.name() else { continue };
        let before = old.and_then(|t| t.get_name(name));
        if before.as_ref().is_some_and(|b| b.id() == entry.id()) {
            continue;
        }
        let path = prefix.join(name);
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let subtree = repo.find_tree(entry.id())?;
                let old_subtree = match &before {
                    Some(b) if b.kind() == Some(git2::ObjectType::Tree) => {
                        Some(repo.find_tree(b.id())?)
                    }
                    _ => None,
                };
                changed_paths(repo, old_subtree.as_ref(), &subtree, &path, out)?;
            }
            Some(git2::ObjectType::Blob) => out.push(path),
            // Submodules (commits) and anything else: no text of ours.
            _ => {}
        }
    }
    Ok(())
}

/// Hides what the remote already has: its remote-tracking refs, or every remote's when the
/// remote is given as a URL or has none.
fn hide_remote(
    repo: &Repository,
    walk: &mut git2::Revwalk<'_>,
    remote: Option<&str>,
) -> Result<(), RepoError> {
    if let Some(name) = remote.filter(|n| !n.is_empty() && !n.contains(['/', ':', '*'])) {
        let glob = format!("refs/remotes/{name}/*");
        if repo.references_glob(&glob)?.next().is_some() {
            walk.hide_glob(&glob)?;
            return Ok(());
        }
    }
    walk.hide_glob("refs/remotes/*")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_shas() {
        assert!(is_zero("0000000000000000000000000000000000000000"));
        assert!(!is_zero("0000000000000000000000000000000000000001"));
        assert!(!is_zero(""));
    }

    /// A tree of `(path, content)` files, built in `repo`'s object database.
    fn tree<'r>(repo: &'r Repository, files: &[(&str, &str)]) -> git2::Tree<'r> {
        let mut index = git2::Index::new().unwrap();
        for (path, content) in files {
            let id = repo.blob(content.as_bytes()).unwrap();
            let mut entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100_644,
                uid: 0,
                gid: 0,
                file_size: 0,
                id,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            entry.flags = u16::try_from(path.len()).unwrap();
            index.add(&entry).unwrap();
        }
        let id = index.write_tree_to(repo).unwrap();
        repo.find_tree(id).unwrap()
    }

    #[test]
    fn changed_paths_skips_identical_subtrees() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let old = tree(&repo, &[("a/b/c.sh", "1"), ("a/d.sh", "same"), ("x.sh", "gone")]);
        let new = tree(&repo, &[("a/b/c.sh", "2"), ("a/d.sh", "same"), ("y/z.sh", "new")]);
        let mut paths = Vec::new();
        changed_paths(&repo, Some(&old), &new, Path::new(""), &mut paths).unwrap();
        assert_eq!(paths, [PathBuf::from("a/b/c.sh"), PathBuf::from("y/z.sh")]);
        let mut all = Vec::new();
        changed_paths(&repo, None, &new, Path::new(""), &mut all).unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn exclude_patterns_are_gitignore_style() {
        let root = Path::new("/r");
        let ex = Exclude::new(root, &["vendor/".into(), "legacy/*.sh".into()]).unwrap();
        assert!(ex.excludes(Path::new("/r/vendor/a/b.sh"), false));
        assert!(ex.excludes(Path::new("legacy/x.sh"), false));
        assert!(!ex.excludes(Path::new("/r/src/x.sh"), false));
    }
}
