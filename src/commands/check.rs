//! `imgguard check`: orchestration only. Loads the settings, gets the text to scan (working
//! tree, index or pushed commits, via [`crate::walk`]), scans, applies or diffs the fixes
//! (`--fix`, `--diff`), prints in the chosen format and turns the result into an outcome:
//! findings at or above `--fail-on` refuse (exit 1), errors exit 2. Never talks to a Docker
//! daemon.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use crate::bounded_read::{read_regular, ReadError, SOURCE_LIMIT};
use crate::cli::{CheckArgs, CheckFormat, ColorChoice, FailOn};
use crate::config::Config;
use crate::core::guard::rules::UnknownRule;
use crate::core::guard::{fix, report, Autofix, Edit, RuleId, Rules, Severity};
use crate::error::{Error, Outcome};
use crate::walk::{self as repo, Exclude, RepoError, Scanned};

/// Runs `imgguard check`.
pub fn run(
    args: &CheckArgs,
    config_path: Option<&Path>,
    color: ColorChoice,
) -> Result<Outcome, Error> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let config = Config::load(config_path, &cwd)?;
    let (scanned, root) = scan(args, &config, &cwd)?;
    tell_unread(&scanned, args.verbose);
    let mut scanned = scanned;
    let threshold = match args.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Note => Severity::Note,
    };
    if args.fix.is_some() || args.diff {
        let selected = fixable(args.fix.as_deref().unwrap_or(""))?;
        let fixed = fix_files(&mut scanned, &selected, &root, args.diff)?;
        if args.diff {
            write_stdout(&fixed.diff)?;
            let _ = writeln!(
                std::io::stderr(),
                "imgguard: {} to fix in {} (--diff: nothing written)",
                plural(fixed.findings, "finding"),
                plural(fixed.files, "file")
            );
            let remaining = scanned.findings.iter().any(|f| f.severity >= threshold);
            return Ok(if fixed.findings > 0 || remaining {
                Outcome::Refused
            } else {
                Outcome::Ok
            });
        }
        let _ = writeln!(
            std::io::stderr(),
            "imgguard: fixed {} in {}",
            plural(fixed.findings, "finding"),
            plural(fixed.files, "file")
        );
    }
    print(args.format, color, &scanned, &root, &cwd)?;
    if scanned.findings.iter().any(|f| f.severity >= threshold) {
        Ok(Outcome::Refused)
    } else {
        Ok(Outcome::Ok)
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The rules `--fix[=RULES]` applies: the ones fixed by default for a bare `--fix`, else
/// those named (each must have a fix).
fn fixable(list: &str) -> Result<Vec<RuleId>, Error> {
    if list.trim().is_empty() {
        return Ok(RuleId::ALL
            .iter()
            .copied()
            .filter(|r| r.info().autofix == Autofix::Default)
            .collect());
    }
    let mut out = Vec::new();
    for id in list.split(',') {
        let rule: RuleId =
            id.parse().map_err(|e: UnknownRule| Error::Usage(format!("--fix: {e}")))?;
        if rule.info().autofix == Autofix::None {
            return Err(Error::Usage(format!(
                "--fix: {rule} has no automatic fix (its message says what to do)"
            )));
        }
        out.push(rule);
    }
    Ok(out)
}

/// What `--fix`/`--diff` did.
#[derive(Default)]
struct Fixed {
    findings: usize,
    files: usize,
    diff: String,
}

/// Applies the edits of the findings of `selected` rules to their files under `root` (or
/// only diffs them), and drops the findings fixed from `scanned`. A file is rewritten through
/// a temporary file in its directory and a rename, with its permissions kept; a symbolic link
/// is not rewritten (that would replace the link by a file).
fn fix_files(
    scanned: &mut Scanned,
    selected: &[RuleId],
    root: &Path,
    diff_only: bool,
) -> Result<Fixed, Error> {
    let mut by_file: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, f) in scanned.findings.iter().enumerate() {
        if selected.contains(&f.rule) && !f.edits.is_empty() {
            by_file.entry(f.path.clone()).or_default().push(i);
        }
    }
    let mut fixed = Fixed::default();
    let mut done = vec![false; scanned.findings.len()];
    for (path, indices) in by_file {
        let full = root.join(&path);
        if full.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = writeln!(
                std::io::stderr(),
                "imgguard: warning: not fixing {}: it is a symbolic link",
                path.display()
            );
            continue;
        }
        let bytes = read_regular(&full, SOURCE_LIMIT).map_err(|e| match e {
            ReadError::Io(e) => Error::io(&full, e),
            other => Error::Other(format!("{}: {other}", full.display())),
        })?;
        let edits: Vec<&Edit> =
            indices.iter().flat_map(|&i| scanned.findings[i].edits.iter()).collect();
        let (new, applied) = fix::apply(&bytes, &edits);
        let mut k = 0;
        let mut any = false;
        for &i in &indices {
            let n = scanned.findings[i].edits.len();
            if applied[k..k + n].iter().all(|a| *a) {
                done[i] = true;
                fixed.findings += 1;
                any = true;
            }
            k += n;
        }
        if !any {
            continue;
        }
        fixed.files += 1;
        let shown = path.to_string_lossy().replace('\\', "/");
        if diff_only {
            fixed.diff.push_str(&fix::unified_diff(&shown, &bytes, &new));
        } else {
            write_atomically(&full, &new)?;
        }
    }
    let mut i = 0;
    scanned.findings.retain(|_| {
        i += 1;
        !done[i - 1]
    });
    Ok(fixed)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |e| Error::io(path, e);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let permissions = std::fs::metadata(path).map_err(io)?.permissions();
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(io)?;
    std::fs::set_permissions(tmp.path(), permissions).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Says on stderr what was not read (always for a file named on the command line, else with
/// `--verbose`) and, with `--verbose`, what was read with bytes replaced.
fn tell_unread(scanned: &Scanned, verbose: bool) {
    let mut err = std::io::stderr().lock();
    for s in &scanned.skipped {
        if s.explicit {
            let _ = writeln!(err, "imgguard: warning: skipped {}: {}", s.path.display(), s.reason);
        } else if verbose {
            let _ = writeln!(err, "imgguard: skipped {}: {}", s.path.display(), s.reason);
        }
    }
    if verbose {
        for path in &scanned.lossy {
            let _ = writeln!(
                err,
                "imgguard: {}: not valid UTF-8; scanned with each odd byte read as `?`",
                path.display()
            );
        }
    }
}

fn to_error(e: RepoError) -> Error {
    match e {
        RepoError::Io { path, source } => Error::Io { path, source },
        other => Error::Other(other.to_string()),
    }
}

/// Scans what `args` names (the working tree, the index or the pushed commits) with the
/// configuration's rules and exclusions; the findings and the root paths are reported against.
fn scan(args: &CheckArgs, config: &Config, cwd: &Path) -> Result<(Scanned, PathBuf), Error> {
    let rules = Rules::from_settings(&config.file.check).map_err(|e| Error::Config {
        path: config.path.clone().unwrap_or_else(|| PathBuf::from(crate::config::FILE_NAME)),
        message: format!("check.rules: {e}"),
    })?;
    // Exclude patterns are relative to the directory of the configuration file.
    let exclude_root = config
        .path
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| crate::git::repo_root(cwd).unwrap_or_else(|| cwd.to_path_buf()), absolute);
    let exclude = Exclude::new(&exclude_root, &config.file.check.exclude).map_err(to_error)?;
    Ok(if args.pre_push || args.staged {
        let (repository, root) = repo::open(cwd).map_err(to_error)?;
        let blobs = if args.pre_push {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).map_err(|e| Error::io("<stdin>", e))?;
            repo::pre_push(&repository, &input, args.remote.as_deref()).map_err(to_error)?
        } else {
            repo::staged(&repository).map_err(to_error)?
        };
        let exclude = Exclude::new(&root, &config.file.check.exclude).map_err(to_error)?;
        (repo::scan_blobs(&blobs, &root, &exclude, &rules).map_err(to_error)?, root)
    } else {
        let targets =
            if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
        // Paths are reported relative to the one directory scanned, else as given.
        let display_root = match targets.as_slice() {
            [one] if one.is_dir() => one.clone(),
            _ => PathBuf::new(),
        };
        let root = if display_root.as_os_str().is_empty() {
            cwd.to_path_buf()
        } else {
            absolute(&display_root)
        };
        (repo::scan_paths(&targets, &display_root, &exclude, &rules).map_err(to_error)?, root)
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `--color`: `auto` colours only on a terminal, and never when NO_COLOR is set to anything
/// non-empty; `always` and `never` say it outright.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

fn print(
    format: CheckFormat,
    color: ColorChoice,
    scanned: &Scanned,
    root: &Path,
    cwd: &Path,
) -> Result<(), Error> {
    let findings = &scanned.findings;
    let text = match format {
        CheckFormat::Human => report::human(findings, use_color(color)),
        CheckFormat::Json => report::json(findings),
        // GitHub resolves `file=` against the workspace, the directory a workflow step runs in,
        // not against the directory scanned (`imgguard check scripts/`).
        CheckFormat::Github => {
            let from_cwd: Vec<_> = findings
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    let full = root.join(&f.path);
                    if let Ok(rel) = full.strip_prefix(cwd) {
                        f.path = rel.to_path_buf();
                    }
                    f
                })
                .collect();
            report::github(&from_cwd)
        }
        CheckFormat::Sarif => {
            let mut uri = format!("file://{}", root.to_string_lossy().replace('\\', "/"));
            if !uri.ends_with('/') {
                uri.push('/');
            }
            report::sarif(findings, Some(&uri.replace(' ', "%20")))
        }
    };
    write_stdout(&text)?;
    if format == CheckFormat::Human {
        let _ = writeln!(std::io::stderr(), "{}", report::summary(findings, scanned.files));
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`imgguard check | head`) is not an error.
fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}
