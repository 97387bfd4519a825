//! Raw arguments ([`crate::cli`]) and the configuration file become checked settings, in one
//! step per command, before any command logic runs (ripgrep's low/high-level arguments,
//! docuum's `Settings`). Everything that can be wrong with the input is found here: one line
//! naming it, exit 2, nothing run and nothing written. Defaults are written once, here.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli;
use crate::config::Config;
use crate::core::build_args::{self, BuildArgs};
use crate::core::dangling::{LabelFilter, PruneRules};
use crate::core::naming::{self, Operand};
use crate::core::policy::{parse_duration, Rules};
use crate::core::reference::{Reference, Tag};
use crate::error::Error;

/// How long a dangling image is spared by default (`prune --min-age`, and what `explain` calls
/// removable).
pub const DEFAULT_MIN_AGE: &str = "1h";

/// How long `watch` lets each event wait by default: more than the removal grace
/// ([`crate::core::policy::REMOVAL_GRACE_MS`]) that an imgguard command waits before it records.
pub const DEFAULT_WATCH_GRACE: &str = "5s";

/// `imgguard watch`.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Remove superseded images, and by which rules (`None`: only record).
    pub remove: Option<Rules>,
    /// How long each event waits (ms).
    pub grace_ms: i64,
    /// Only images with these labels.
    pub labels: Vec<LabelFilter>,
    /// Output format.
    pub format: cli::Format,
}

impl WatchSettings {
    /// Checks the arguments.
    pub fn new(args: &cli::WatchArgs, config: &Config) -> Result<WatchSettings, Error> {
        let grace_ms = parse_duration(&args.grace).map_err(|e| usage(format!("--grace: {e}")))?;
        Ok(WatchSettings {
            remove: args.remove_superseded.then(|| rules(config, false)),
            grace_ms,
            labels: labels(&args.label)?,
            format: args.format,
        })
    }
}

fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

/// The removal rules of the configuration (`keep_previous`, `protect`), with `--keep-previous`.
fn rules(config: &Config, keep_previous: bool) -> Rules {
    Rules {
        keep_previous: keep_previous || config.file.keep_previous,
        protect: config.file.protect.clone(),
    }
}

/// The ledger's retention (`ledger.retention` in the configuration, checked when it was read).
fn retention(config: &Config) -> Option<i64> {
    config.file.ledger.retention.as_deref().and_then(|r| parse_duration(r).ok())
}

fn labels(raw: &[String]) -> Result<Vec<LabelFilter>, Error> {
    raw.iter().map(|l| LabelFilter::parse(l).map_err(|e| usage(format!("--label: {e}")))).collect()
}

/// `imgguard build`.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// docker's arguments, passed through untouched.
    pub docker_args: Vec<OsString>,
    /// What imgguard reads of them (tags, context, Dockerfile, build-arg names).
    pub parsed: BuildArgs,
    /// What may be removed.
    pub rules: Rules,
    /// Where to write the JSON report, if asked.
    pub report: Option<PathBuf>,
}

impl BuildSettings {
    /// Checks the arguments.
    pub fn new(args: &cli::BuildArgs, config: &Config) -> Result<BuildSettings, Error> {
        let parsed = build_args::parse(&args.docker_args).map_err(usage)?;
        if let Some(path) = args.report.as_deref() {
            writable_file("--report", path)?;
        }
        Ok(BuildSettings {
            docker_args: args.docker_args.clone(),
            parsed,
            rules: rules(config, args.keep_previous),
            report: args.report.clone(),
        })
    }
}

/// A file imgguard is to write: missing, or a regular file (never a directory, a device, a FIFO
/// or a socket, which a rename would replace).
fn writable_file(what: &str, path: &std::path::Path) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(usage(format!("{what} {}: is a directory", path.display()))),
        Ok(m) if !m.is_file() => Err(usage(format!(
            "{what} {}: is not a regular file (a device, FIFO or socket)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// `imgguard history`.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    /// Only this tag.
    pub tag: Option<Tag>,
    /// Label each lineage with its engine's host.
    pub all_engines: bool,
    /// Output format.
    pub format: cli::Format,
}

impl HistorySettings {
    /// Checks the arguments.
    pub fn new(args: &cli::HistoryArgs) -> Result<HistorySettings, Error> {
        let tag = args.tag.as_deref().map(Tag::parse).transpose().map_err(usage)?;
        Ok(HistorySettings { tag, all_engines: args.all_engines, format: args.format })
    }
}

/// `imgguard explain`.
#[derive(Debug, Clone)]
pub struct ExplainSettings {
    /// Only images with these labels.
    pub labels: Vec<LabelFilter>,
    /// Output format.
    pub format: cli::Format,
    /// The rules of a plain `imgguard prune`, so that `removable` says what it would do.
    pub rules: PruneRules,
    /// Drop ledger history older than this (ms), at most once a day.
    pub retention_ms: Option<i64>,
}

impl ExplainSettings {
    /// Checks the arguments.
    pub fn new(args: &cli::ExplainArgs, config: &Config) -> Result<ExplainSettings, Error> {
        let min_age_ms = parse_duration(DEFAULT_MIN_AGE).map_err(usage)?;
        let rules = PruneRules {
            keep: 0,
            min_age_ms,
            unknown: false,
            protect: config.file.protect.clone(),
        };
        Ok(ExplainSettings {
            labels: labels(&args.label)?,
            format: args.format,
            rules,
            retention_ms: retention(config),
        })
    }
}

/// `imgguard prune`.
#[derive(Debug, Clone)]
pub struct PruneSettings {
    /// What may be removed.
    pub rules: PruneRules,
    /// Only images with these labels.
    pub labels: Vec<LabelFilter>,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Output format.
    pub format: cli::Format,
    /// Drop ledger history older than this (ms), at most once a day (not in a dry run).
    pub retention_ms: Option<i64>,
}

impl PruneSettings {
    /// Checks the arguments.
    pub fn new(args: &cli::PruneArgs, config: &Config) -> Result<PruneSettings, Error> {
        let min_age_ms =
            parse_duration(&args.min_age).map_err(|e| usage(format!("--min-age: {e}")))?;
        Ok(PruneSettings {
            rules: PruneRules {
                keep: args.keep,
                min_age_ms,
                unknown: args.unknown,
                protect: config.file.protect.clone(),
            },
            labels: labels(&args.label)?,
            dry_run: args.dry_run,
            format: args.format,
            retention_ms: retention(config),
        })
    }
}

/// One operand of `imgguard rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmiRef {
    /// As the daemon is to be asked: a normalised tag, an ID, or `name@digest`.
    pub text: String,
    /// Whether it names a tag (removing it may only untag).
    pub by_tag: bool,
    /// A bare hex name: docker reads it as a short image ID when no such tag exists.
    pub short_id: Option<String>,
}

/// `imgguard rmi`.
#[derive(Debug, Clone)]
pub struct RmiSettings {
    /// The references, in order.
    pub refs: Vec<RmiRef>,
    /// Output format.
    pub format: cli::Format,
}

impl RmiSettings {
    /// Checks the arguments: every reference before anything is removed.
    pub fn new(args: &cli::RmiArgs) -> Result<RmiSettings, Error> {
        let mut refs = Vec::with_capacity(args.refs.len());
        for r in &args.refs {
            let parsed = Reference::parse(r).map_err(usage)?;
            refs.push(match parsed {
                Reference::Id(id) => RmiRef { text: id, by_tag: false, short_id: None },
                Reference::Named { digest: Some(_), .. } => {
                    RmiRef { text: r.clone(), by_tag: false, short_id: None }
                }
                Reference::Named { tag, .. } => {
                    let short = tag.is_none()
                        && r.len() >= 4
                        && r.len() <= 64
                        && r.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
                    RmiRef {
                        text: Tag::parse(r).map_err(usage)?.to_string(),
                        by_tag: true,
                        short_id: short.then(|| r.clone()),
                    }
                }
            });
        }
        Ok(RmiSettings { refs, format: args.format })
    }
}

/// `imgguard save`.
#[derive(Debug, Clone)]
pub struct SaveSettings {
    /// The archive to write; standard output when `None`.
    pub output: Option<PathBuf>,
    /// Save images named only by ID anyway.
    pub allow_id: bool,
    /// The operands as given, classified.
    pub operands: Vec<(String, Operand)>,
    /// Output format.
    pub format: cli::Format,
}

impl SaveSettings {
    /// Checks the arguments. The target must be missing or a regular file: a directory, a
    /// device (`-o /dev/null` as root would replace the device node), a FIFO or a socket is
    /// refused, as docker refuses a character device; standard output is the way to stream.
    pub fn new(args: &cli::SaveArgs) -> Result<SaveSettings, Error> {
        if let Some(path) = args.output.as_deref() {
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {
                    return Err(usage(format!("{}: is a directory", path.display())));
                }
                Ok(m) if !m.is_file() => {
                    return Err(usage(format!(
                        "{}: is not a regular file (a device, FIFO or socket); write to a file, \
                         or to standard output to stream",
                        path.display()
                    )));
                }
                _ => {}
            }
        }
        if args.output.is_none() && args.format == cli::Format::Json {
            return Err(usage(
                "--format json needs -o FILE: without it the archive itself goes to stdout",
            ));
        }
        if args.output.is_none() && std::io::stdout().is_terminal() {
            return Err(usage(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            ));
        }
        let operands = args
            .images
            .iter()
            .map(|i| naming::classify(i).map(|o| (i.clone(), o)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(usage)?;
        Ok(SaveSettings {
            output: args.output.clone(),
            allow_id: args.allow_id,
            operands,
            format: args.format,
        })
    }
}

/// `imgguard load`.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// The archive; standard input when `None`.
    pub input: Option<PathBuf>,
    /// Names to give the loaded image.
    pub tags: Vec<Tag>,
    /// Give nameless images the tags the ledger knows.
    pub restore_tags: bool,
    /// What may be removed when the load takes a tag from another image.
    pub rules: Rules,
    /// Output format.
    pub format: cli::Format,
}

impl LoadSettings {
    /// Checks the arguments.
    pub fn new(args: &cli::LoadArgs, config: &Config) -> Result<LoadSettings, Error> {
        let tags =
            args.tags.iter().map(|t| Tag::parse(t)).collect::<Result<_, _>>().map_err(usage)?;
        Ok(LoadSettings {
            input: args.input.clone(),
            tags,
            restore_tags: args.restore_tags,
            rules: rules(config, false),
            format: args.format,
        })
    }
}

/// `imgguard ledger`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerSettings {
    /// `stats`.
    Stats {
        /// Output format.
        format: cli::Format,
    },
    /// `compact --older-than`.
    Compact {
        /// How old (ms) an event must be to go.
        older_than_ms: i64,
    },
    /// `export`.
    Export,
    /// `import FILE|-`.
    Import {
        /// The file; standard input when `None`.
        file: Option<PathBuf>,
    },
    /// `sync`.
    Sync,
}

impl LedgerSettings {
    /// Checks the arguments.
    pub fn new(args: &cli::LedgerArgs) -> Result<LedgerSettings, Error> {
        Ok(match &args.action {
            cli::LedgerAction::Stats { format } => LedgerSettings::Stats { format: *format },
            cli::LedgerAction::Compact { older_than } => {
                let ms =
                    parse_duration(older_than).map_err(|e| usage(format!("--older-than: {e}")))?;
                if ms == 0 {
                    return Err(usage(
                        "--older-than: 0 would drop all history; give a duration such as 180d",
                    ));
                }
                LedgerSettings::Compact { older_than_ms: ms }
            }
            cli::LedgerAction::Export => LedgerSettings::Export,
            cli::LedgerAction::Import { file } => {
                LedgerSettings::Import { file: (file.as_os_str() != "-").then(|| file.clone()) }
            }
            cli::LedgerAction::Sync => LedgerSettings::Sync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_hex_operand_may_be_an_id() {
        let args = cli::RmiArgs {
            refs: vec!["3f2a9c1b".into(), "app".into(), "abc".into()],
            format: cli::Format::Human,
        };
        let s = RmiSettings::new(&args).unwrap();
        assert_eq!(s.refs[0].text, "3f2a9c1b:latest");
        assert_eq!(s.refs[0].short_id.as_deref(), Some("3f2a9c1b"));
        assert_eq!(s.refs[1].short_id, None);
        assert_eq!(s.refs[2].short_id, None, "too short to be read as an ID");
    }

    #[test]
    fn a_label_filter_needs_a_key() {
        let args = cli::PruneArgs {
            dry_run: false,
            keep: 0,
            min_age: DEFAULT_MIN_AGE.into(),
            unknown: false,
            label: vec![String::new()],
            format: cli::Format::Human,
        };
        let e = PruneSettings::new(&args, &Config::default()).unwrap_err().to_string();
        assert_eq!(e, "--label: label filter `` has no key (use KEY or KEY=VALUE)");
        let args = cli::ExplainArgs { label: vec!["=v".into()], format: cli::Format::Json };
        assert!(ExplainSettings::new(&args, &Config::default()).is_err());
    }

    #[test]
    fn min_age_is_checked_once() {
        let args = cli::PruneArgs {
            dry_run: false,
            keep: 0,
            min_age: "soon".into(),
            unknown: false,
            label: vec![],
            format: cli::Format::Human,
        };
        let e = PruneSettings::new(&args, &Config::default()).unwrap_err().to_string();
        assert!(e.starts_with("--min-age: invalid duration `soon`"), "{e}");
    }

    #[test]
    fn ledger_durations_are_checked() {
        let compact = |d: &str| cli::LedgerArgs {
            action: cli::LedgerAction::Compact { older_than: d.into() },
        };
        assert_eq!(
            LedgerSettings::new(&compact("180d")).unwrap(),
            LedgerSettings::Compact { older_than_ms: 180 * 24 * 3_600_000 }
        );
        let e = LedgerSettings::new(&compact("6 moons")).unwrap_err().to_string();
        assert!(e.starts_with("--older-than: invalid duration `6 moons`"), "{e}");
        assert!(LedgerSettings::new(&compact("0")).is_err());
        let stdin = cli::LedgerArgs { action: cli::LedgerAction::Import { file: "-".into() } };
        assert_eq!(LedgerSettings::new(&stdin).unwrap(), LedgerSettings::Import { file: None });
    }
}
