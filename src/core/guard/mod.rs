//! The repository guard behind `imgguard check`: finds the commands that create
//! `<none>:<none>` images in scripts, Makefiles, CI files, justfiles and Dockerfiles.
//!
//! Everything in this module and its parsers is pure: the caller hands over a path and the text
//! and gets [`Finding`]s back. No file is opened here, no git, no clock, no Docker daemon; the
//! walking, the git index and pre-push ranges live in `crate::walk`, the printing in [`report`]
//! and the orchestration in `commands::check`. The rules are registered in [`rules`].
//!
//! Every file kind is read as its own tool reads it and reduced to shell [`Snippet`]s whose bytes
//! map back into the original file; [`shell::Analyzer`] finds the rule matches in them.

mod checks;
pub mod compose;
mod dockerfile;
pub mod fix;
mod jenkins;
mod just;
mod make;

pub mod report;
pub mod rules;
pub mod shell;
pub mod snippet;
mod yaml;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub use compose::ComposeBuild;
pub use rules::{Autofix, CheckSettings, RuleId, Rules, Severity, RULES};
pub use snippet::{LineIndex, Snippet};

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which rule.
    pub rule: RuleId,
    /// Its severity after the configuration.
    pub severity: Severity,
    /// The file, relative to the scanned root.
    pub path: PathBuf,
    /// 1-based line of the finding.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// 1-based line where the command ends (after continuations).
    pub end_line: usize,
    /// What was found.
    pub message: String,
    /// What to do instead.
    pub fix: String,
    /// The source line, for people.
    pub excerpt: String,
    /// The edits that fix it automatically (empty when there is no safe one).
    pub edits: Vec<Edit>,
}

/// A replacement of bytes of the original file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The bytes replaced (offsets into the original file).
    pub range: std::ops::Range<usize>,
    /// What replaces them.
    pub replacement: String,
    /// What the bytes are expected to be (an edit whose bytes differ is dropped).
    pub original: String,
    /// 1-based line where the replaced bytes start.
    pub start_line: usize,
    /// 1-based column (characters) where they start.
    pub start_column: usize,
    /// 1-based line where they end.
    pub end_line: usize,
    /// 1-based column just past them.
    pub end_column: usize,
}

/// What can make a scan fail (they exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// An inline `imgguard ignore=` names a rule that does not exist.
    #[error(
        "{}:{line}: unknown rule `{id}` in `imgguard ignore=` (known: {known})",
        path.display(),
        known = rules::known_ids()
    )]
    UnknownIgnoredRule {
        /// The file.
        path: PathBuf,
        /// The line of the comment.
        line: usize,
        /// What was written.
        id: String,
    },
}

/// The kinds of file the guard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `*.sh`, `*.bash`, or a file whose shebang names sh or bash.
    Shell,
    /// `Makefile`, `GNUmakefile`, `*.mk`: recipes.
    Makefile,
    /// `Jenkinsfile`: the bodies of `sh` steps.
    Jenkinsfile,
    /// `.github/workflows/*.y*ml`, `action.y*ml`: `run:` values.
    GithubWorkflow,
    /// `.gitlab-ci.yml`: `script`, `before_script`, `after_script`.
    GitlabCi,
    /// `justfile`: recipe bodies.
    Justfile,
    /// `Taskfile.yml`: `cmds:`.
    Taskfile,
    /// `.circleci/config.yml`: `run:` steps.
    CircleCi,
    /// `azure-pipelines.yml`: `script:`/`bash:` steps and `Docker@2` build tasks.
    AzurePipelines,
    /// `.buildkite/*.yml`: `command:`/`commands:`.
    Buildkite,
    /// `Dockerfile`, `Containerfile`: `RUN` instructions.
    Dockerfile,
}

/// The kind of file `path` is by its name alone; `None` when only its content (a shebang) can
/// tell, or when it is not a kind the guard reads.
pub fn kind_by_name(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let parent = path.parent().and_then(Path::file_name).and_then(|p| p.to_str());
    let in_workflows = {
        let grand = path.parent().and_then(Path::parent).and_then(Path::file_name);
        parent == Some("workflows") && grand.and_then(|g| g.to_str()) == Some(".github")
    };
    let yaml = matches!(ext, "yml" | "yaml");
    let kind = match name {
        "Makefile" | "makefile" | "GNUmakefile" => FileKind::Makefile,
        "Jenkinsfile" => FileKind::Jenkinsfile,
        ".gitlab-ci.yml" | ".gitlab-ci.yaml" => FileKind::GitlabCi,
        "justfile" | "Justfile" | ".justfile" => FileKind::Justfile,
        "Dockerfile" | "Containerfile" => FileKind::Dockerfile,
        "action.yml" | "action.yaml" => FileKind::GithubWorkflow,
        _ if in_workflows && yaml => FileKind::GithubWorkflow,
        _ if yaml && parent == Some(".circleci") && name.starts_with("config.") => {
            FileKind::CircleCi
        }
        _ if yaml && parent == Some(".buildkite") => FileKind::Buildkite,
        "buildkite.yml" | "buildkite.yaml" => FileKind::Buildkite,
        _ if yaml && (name.contains("azure-pipelines") || parent == Some(".azure-pipelines")) => {
            FileKind::AzurePipelines
        }
        _ if yaml && matches!(name.split('.').next(), Some("Taskfile" | "taskfile")) => {
            FileKind::Taskfile
        }
        _ if name.ends_with(".gitlab-ci.yml") => FileKind::GitlabCi,
        _ if name.starts_with("Jenkinsfile.") || ext == "jenkinsfile" => FileKind::Jenkinsfile,
        _ if name.starts_with("Dockerfile.") || name.starts_with("Containerfile.") => {
            FileKind::Dockerfile
        }
        _ if ext == "dockerfile" || ext == "Dockerfile" || ext == "containerfile" => {
            FileKind::Dockerfile
        }
        _ => match ext {
            "sh" | "bash" => FileKind::Shell,
            "mk" => FileKind::Makefile,
            "just" => FileKind::Justfile,
            _ => return None,
        },
    };
    Some(kind)
}

/// Whether a file with this name may still be shell by its shebang (it has no extension).
pub fn may_have_shebang(path: &Path) -> bool {
    path.extension().is_none()
}

/// The kind of `path` with content `text`: by name, else by an sh/bash shebang.
pub fn kind_of(path: &Path, text: &str) -> Option<FileKind> {
    kind_by_name(path).or_else(|| is_shell_shebang(text).then_some(FileKind::Shell))
}

/// `#!/bin/sh`, `#!/usr/bin/env bash`, `#!/bin/bash -e`, `#!/usr/bin/env -S bash -x`.
pub fn is_shell_shebang(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("#!") else { return false };
    let line = rest.lines().next().unwrap_or("");
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else { return false };
    let program = if first.ends_with("/env") {
        words.find(|w| !w.starts_with('-')).unwrap_or("")
    } else {
        first
    };
    matches!(program.rsplit('/').next(), Some("sh" | "bash" | "dash" | "ash" | "ksh"))
}

/// The text of a file's bytes. Bytes that are not UTF-8 (a Latin-1 comment) each become one
/// `?`, so byte offsets and columns of the rest stay those of the file and edits apply to the
/// original bytes; the second value says whether anything was replaced. Such a file is scanned,
/// never skipped: one odd byte must not turn the guard off for it.
pub fn decode(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (std::borrow::Cow::Borrowed(text), false);
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    (std::borrow::Cow::Owned(out), true)
}

/// Scans one file. `path` is how the file is reported (relative to the scanned root) and
/// decides its kind together with its shebang; files of other kinds yield nothing.
pub fn scan(path: &Path, text: &str, rules: &Rules) -> Result<Vec<Finding>, GuardError> {
    match kind_of(path, text) {
        Some(kind) => scan_as(kind, path, text, rules),
        None => Ok(Vec::new()),
    }
}

/// Scans one file as `kind`. `docker compose build` commands need the compose files, which
/// only [`scan_detailed`] hands back; here they yield nothing.
pub fn scan_as(
    kind: FileKind,
    path: &Path,
    text: &str,
    rules: &Rules,
) -> Result<Vec<Finding>, GuardError> {
    Ok(scan_detailed(kind, path, text, rules)?.findings)
}

/// What scanning one file found: findings, and the `docker compose build` commands to
/// resolve against compose files ([`compose::resolve`]).
#[derive(Debug, Default)]
pub struct Scan {
    /// The findings, sorted by line and column.
    pub findings: Vec<Finding>,
    /// The compose builds (inline ignores already applied).
    pub compose_builds: Vec<ComposeBuild>,
    /// Findings of commands run through a function this file does not define, with its
    /// name: they stand if a file in [`Scan::sources`] defines it to run its arguments
    /// ([`wrapper_functions`]).
    pub wrapped: Vec<(String, Finding)>,
    /// The files the file sources (`. ./lib.sh`; `./` means relative to the file).
    pub sources: Vec<String>,
}

/// The shell functions `text` defines that run their arguments (`retry() { … "$@" … }`).
pub fn wrapper_functions(text: &str) -> Vec<String> {
    let mut analyzer = shell::Analyzer::new();
    analyzer.analyze(&Snippet::identity(text).without_comment_lines());
    analyzer.wrapper_functions()
}

/// Scans one file as `kind`, with its compose builds.
pub fn scan_detailed(
    kind: FileKind,
    path: &Path,
    text: &str,
    rules: &Rules,
) -> Result<Scan, GuardError> {
    let ignores = inline_ignores(path, text)?;
    let azure_task = kind == FileKind::AzurePipelines && text.contains("Docker@");
    if !may_match(text) && !azure_task {
        return Ok(Scan::default());
    }
    let snippets = match kind {
        FileKind::Shell => vec![Snippet::identity(text)],
        FileKind::Makefile => make::snippets(text),
        FileKind::Jenkinsfile => jenkins::snippets(text),
        FileKind::GithubWorkflow => yaml::github_runs(text),
        FileKind::GitlabCi => yaml::gitlab_scripts(text),
        FileKind::Justfile => just::snippets(text),
        FileKind::Taskfile => yaml::taskfile_cmds(text),
        FileKind::CircleCi => yaml::circleci_runs(text),
        FileKind::AzurePipelines => yaml::azure_scripts(text),
        FileKind::Buildkite => yaml::buildkite_commands(text),
        FileKind::Dockerfile => dockerfile::snippets(text),
    };
    // GitLab runs all script entries of a job in one shell, Buildkite a step's commands; a
    // GitHub step, a Jenkins `sh` step, a task command and a Dockerfile `RUN` each get a shell
    // of their own.
    let shared_shell = matches!(kind, FileKind::GitlabCi | FileKind::Buildkite);
    let mut analyzer = shell::Analyzer::new();
    for snippet in &snippets {
        if !shared_shell {
            analyzer.reset_scope();
        }
        analyzer.analyze(&snippet.without_comment_lines());
    }
    let index = LineIndex::new(text);
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    let ignored = |rule: RuleId, line: usize| {
        let on = |l: usize| ignores.get(&l).is_some_and(|set| set.contains(&rule));
        on(line) || (line > 1 && on(line - 1))
    };
    let (hits, composes, sources) = analyzer.into_parts();
    let mut wrapped = Vec::new();
    let mut compose_builds = Vec::new();
    for call in composes {
        let (line, column) = index.position(call.start);
        if ignored(RuleId::Ig003, line) || !seen.insert((RuleId::Ig003, line, column)) {
            continue;
        }
        compose_builds.push(ComposeBuild {
            path: path.to_path_buf(),
            line,
            column,
            end_line: index.position(call.end.saturating_sub(1).max(call.start)).0.max(line),
            excerpt: index.line(line).to_string(),
            command: call.command,
            files: call.files,
            services: call.services,
        });
    }
    seen.clear();
    for hit in hits {
        let Some(severity) = rules.severity(hit.rule) else { continue };
        let (line, column) = index.position(hit.start);
        let end_line = index.position(hit.end.saturating_sub(1).max(hit.start)).0;
        if ignored(hit.rule, line) {
            continue;
        }
        if !seen.insert((hit.rule, line, column)) {
            continue;
        }
        // An edit stands only where the snippet's bytes are the file's own (not inside an
        // unescaped or synthetic part).
        if hit.via.is_some() && sources.is_empty() {
            continue;
        }
        let mut edits = if hit.edits.iter().all(|e| text.get(e.range.clone()) == Some(&e.original))
        {
            hit.edits
        } else {
            Vec::new()
        };
        for e in &mut edits {
            (e.start_line, e.start_column) = index.position(e.range.start);
            (e.end_line, e.end_column) = index.position(e.range.end);
        }
        let finding = Finding {
            rule: hit.rule,
            severity,
            path: path.to_path_buf(),
            line,
            column,
            end_line: end_line.max(line),
            message: hit.message,
            fix: hit.rule.info().fix.to_string(),
            excerpt: index.line(line).to_string(),
            edits,
        };
        match hit.via {
            Some(via) => wrapped.push((via, finding)),
            None => findings.push(finding),
        }
    }
    findings.sort_by_key(|f| (f.line, f.column, f.rule));
    Ok(Scan { findings, compose_builds, wrapped, sources })
}

/// Whether any rule can match: every rule needs an engine's name followed, within a few
/// hundred bytes (global options, a `\` continuation), by one of its subcommand words spelled
/// out: `save`; `rmi`, `rm`, `remove`; `build`, `buildx`; `prune`. Most files of a large tree
/// fail this cheap test and are never parsed.
fn may_match(text: &str) -> bool {
    const WINDOW: usize = 512;
    let bytes = text.as_bytes();
    ["docker", "podman"].iter().any(|engine| {
        text.match_indices(engine).any(|(at, _)| {
            let mut end = (at + WINDOW).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let window = &text[at + engine.len()..end];
            ["save", "rmi", "remove", "build", "prune"].iter().any(|w| window.contains(w))
                // `rm` as a word (`image rm`), not inside `--rm` or `--format`.
                || window.match_indices("rm").any(|(i, _)| {
                    let start = at + engine.len() + i;
                    bytes[start - 1].is_ascii_whitespace()
                        && bytes.get(start + 2).is_none_or(|b| !b.is_ascii_alphanumeric())
                })
        })
    })
}

/// The marker of an inline ignore, in any comment syntax (`#`, `//`).
const IGNORE_MARK: &str = "imgguard ignore=";

/// Lines carrying `imgguard ignore=IG001[,IG00N]`, with the rules each one silences. An
/// unknown ID is an error: a typo must not silently keep a finding (or hide one forever).
fn inline_ignores(path: &Path, text: &str) -> Result<HashMap<usize, Vec<RuleId>>, GuardError> {
    let mut out = HashMap::new();
    if !text.contains(IGNORE_MARK) {
        return Ok(out);
    }
    for (i, line) in text.lines().enumerate() {
        let Some(at) = line.find(IGNORE_MARK) else { continue };
        let list = line[at + IGNORE_MARK.len()..].split_whitespace().next().unwrap_or("");
        let mut ids = Vec::new();
        for id in list.split(',').filter(|s| !s.is_empty()) {
            let rule = id.parse::<RuleId>().map_err(|_| GuardError::UnknownIgnoredRule {
                path: path.to_path_buf(),
                line: i + 1,
                id: id.to_string(),
            })?;
            ids.push(rule);
        }
        if ids.is_empty() {
            return Err(GuardError::UnknownIgnoredRule {
                path: path.to_path_buf(),
                line: i + 1,
                id: String::new(),
            });
        }
        out.insert(i + 1, ids);
    }
    Ok(out)
}

/// Replaces template expressions (`${{ … }}`, `{{ … }}`) by `placeholder`, an unknown shell
/// word, keeping the byte map.
pub(crate) fn replace_templates(
    snippet: &Snippet,
    open: &str,
    close: &str,
    placeholder: &str,
) -> Snippet {
    let text = snippet.text();
    if !text.contains(open) {
        return snippet.clone();
    }
    let mut out = Snippet::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(open) {
        let start = from + found;
        let Some(len) = text[start + open.len()..].find(close) else { break };
        let end = start + open.len() + len + close.len();
        out.extend_from(snippet, from..start);
        out.push_synthetic(placeholder, snippet.origin(start));
        from = end;
    }
    out.extend_from(snippet, from..text.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        let k = |p: &str| kind_by_name(Path::new(p));
        assert_eq!(k("a/b.sh"), Some(FileKind::Shell));
        assert_eq!(k("Makefile"), Some(FileKind::Makefile));
        assert_eq!(k("x/rules.mk"), Some(FileKind::Makefile));
        assert_eq!(k(".github/workflows/ci.yaml"), Some(FileKind::GithubWorkflow));
        assert_eq!(k("workflows/ci.yaml"), None);
        assert_eq!(k(".gitlab-ci.yml"), Some(FileKind::GitlabCi));
        assert_eq!(k("Dockerfile.dev"), Some(FileKind::Dockerfile));
        assert_eq!(k("justfile"), Some(FileKind::Justfile));
        assert_eq!(k("README.md"), None);
        assert_eq!(k("Taskfile.yml"), Some(FileKind::Taskfile));
        assert_eq!(k("sub/Taskfile.dist.yaml"), Some(FileKind::Taskfile));
        assert_eq!(k(".circleci/config.yml"), Some(FileKind::CircleCi));
        assert_eq!(k("azure-pipelines.yml"), Some(FileKind::AzurePipelines));
        assert_eq!(k("ci/release.azure-pipelines.yaml"), Some(FileKind::AzurePipelines));
        assert_eq!(k(".buildkite/pipeline.yml"), Some(FileKind::Buildkite));
        assert_eq!(k("docs/config.yml"), None);
    }

    #[test]
    fn decoding_keeps_byte_offsets() {
        let (text, lossy) = decode(b"# caf\xe9\ndocker rmi -f x\n");
        assert!(lossy);
        assert_eq!(text, "# caf?\ndocker rmi -f x\n");
        assert_eq!(decode(b"ok \xc3\xa9").0, "ok \u{e9}");
    }

    #[test]
    fn shebangs() {
        assert!(is_shell_shebang("#!/bin/sh\n"));
        assert!(is_shell_shebang("#!/usr/bin/env bash\n"));
        assert!(is_shell_shebang("#!/usr/bin/env -S bash -e\n"));
        assert!(!is_shell_shebang("#!/usr/bin/env python3\n"));
        assert!(!is_shell_shebang("echo\n"));
    }

    #[test]
    fn ignore_with_unknown_rule_is_an_error() {
        let e = inline_ignores(Path::new("a.sh"), "x # imgguard ignore=IG001,IG077\n").unwrap_err();
        assert!(e.to_string().contains("a.sh:1: unknown rule `IG077`"), "{e}");
    }

    #[test]
    fn prefilter_needs_a_subcommand_word_near_the_engine() {
        assert!(may_match("docker image \\\n  rm -f x"));
        assert!(may_match("sudo docker -H h system prune -a"));
        assert!(!may_match("docker run --rm app --format x"));
        assert!(!may_match(&format!("docker ps\n{}\n# save", "x".repeat(600))));
        assert!(!may_match("build save prune"));
    }

    #[test]
    fn templates_become_placeholders() {
        let s = Snippet::identity("a ${{ x }} b");
        let r = replace_templates(&s, "${{", "}}", "${__x}");
        assert_eq!(r.text(), "a ${__x} b");
        assert_eq!(r.origin(9), 11);
    }
}
