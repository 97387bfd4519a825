//! `imgguard check`: orchestration only. Loads the settings, gets the text to scan (working
//! tree, index or pushed commits, via [`crate::walk`]), scans, prints in the chosen format and
//! turns the result into an outcome: findings at or above `--fail-on` refuse (exit 1), errors
//! exit 2. Never talks to a Docker daemon.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use crate::cli::{CheckArgs, CheckFormat, FailOn};
use crate::config::Config;
use crate::core::guard::{report, Rules, Severity};
use crate::error::{Error, Outcome};
use crate::walk::{self as repo, Exclude, RepoError, Scanned};

/// Runs `imgguard check`.
pub fn run(args: &CheckArgs, config_path: Option<&Path>) -> Result<Outcome, Error> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let config = Config::load(config_path, &cwd)?;
    let rules = Rules::from_settings(&config.file.check).map_err(|e| Error::Config {
        path: config.path.clone().unwrap_or_else(|| PathBuf::from(crate::config::FILE_NAME)),
        message: format!("check.rules: {e}"),
    })?;
    // Exclude patterns are relative to the directory of the configuration file.
    let exclude_root = config
        .path
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| crate::git::repo_root(&cwd).unwrap_or_else(|| cwd.clone()), absolute);
    let exclude = Exclude::new(&exclude_root, &config.file.check.exclude).map_err(to_error)?;

    let (scanned, root) = if args.pre_push || args.staged {
        let (repository, root) = repo::open(&cwd).map_err(to_error)?;
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
        let root =
            if display_root.as_os_str().is_empty() { cwd.clone() } else { absolute(&display_root) };
        (repo::scan_paths(&targets, &display_root, &exclude, &rules).map_err(to_error)?, root)
    };
    tell_unread(&scanned, args.verbose);
    print(args.format, &scanned, &root, &cwd)?;
    let threshold = match args.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Note => Severity::Note,
    };
    if scanned.findings.iter().any(|f| f.severity >= threshold) {
        Ok(Outcome::Refused)
    } else {
        Ok(Outcome::Ok)
    }
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

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Colour only on a terminal, and never when NO_COLOR is set to anything non-empty.
fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn print(format: CheckFormat, scanned: &Scanned, root: &Path, cwd: &Path) -> Result<(), Error> {
    let findings = &scanned.findings;
    let text = match format {
        CheckFormat::Human => report::human(findings, use_color()),
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
