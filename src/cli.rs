//! Raw command-line arguments (clap derive). No I/O and no validation beyond clap's own:
//! [`crate::config`] turns these into checked settings.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Docker hosts free of unexplained `<none>:<none>` images, without deleting one that is
/// still needed.
#[derive(Debug, Parser)]
#[command(name = "imgguard", version, about, max_term_width = 100)]
pub struct Cli {
    /// Read settings from this file instead of `.imgguard.yml` at the repository root.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// When to colour output (`NO_COLOR` set turns `auto` off; `always` wins over it).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run `docker build`, record which image each tag pointed to, and remove the image the
    /// rebuild left dangling (never forced).
    ///
    /// imgguard's own options come first; everything from the first docker option on is passed
    /// to `docker build` untouched, e.g. `imgguard build --keep-previous -t app:v1 .`
    Build(BuildArgs),
    /// Show the lineage of image IDs each tag pointed to, newest first.
    History(HistoryArgs),
    /// Say why each `<none>` image exists, with the ledger's evidence.
    Explain(ExplainArgs),
    /// Remove dangling images that nothing needs (never forced); prints the plan first.
    Prune(PruneArgs),
    /// Remove images or tags safely: refuses rather than leave a `<none>` image in use behind.
    Rmi(RmiArgs),
    /// Scan the repository for docker commands that create `<none>:<none>` images (ID-only saves,
    /// forced removals, plain rebuilds of a tag, blanket prunes; the rules: docs/check.md). Needs
    /// no Docker daemon. Exit 0 clean, 1 findings at or above --fail-on, 2 error.
    Check(CheckArgs),
    /// Install imgguard's git hooks.
    Hook(HookArgs),
    /// Save images to a tar archive, as `docker save`, refusing to save an image by ID only
    /// (the archive would load as `<none>:<none>`).
    Save(SaveArgs),
    /// Load images from a tar archive, as `docker load`; say what was loaded, give back names
    /// the archive lacks, and clean up the image a load took a tag from (never forced).
    Load(LoadArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `imgguard completions bash > /etc/bash_completion.d/imgguard`.
    Completions(CompletionsArgs),
    /// Print the manual page imgguard(1), or write one page per command into a directory.
    Man(ManArgs),
    /// Follow the daemon's events and record every tag move as it happens (plain `docker build`,
    /// `docker tag`, `docker load`, `docker rmi -f` too), so that every `<none>` image made while
    /// it runs is explained. Runs until SIGTERM or SIGINT (exit 0); one line per recorded event.
    Watch(WatchArgs),
    /// Look after the ledger: `stats`, `compact --older-than 180d`, `export` (JSON Lines),
    /// `import FILE|-` and `sync` (send the local spool to the fleet ledger).
    Ledger(LedgerArgs),
    /// One row per engine the ledger knows (every runner of a fleet ledger): host, last seen,
    /// `<none>` images known to the ledger and their bytes, how many unexplained, removed and
    /// kept in the last 7 days.
    Fleet(FleetArgs),
}

/// `imgguard fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `imgguard man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write imgguard.1 and imgguard-COMMAND.1 for every command into this directory (created
    /// if missing) instead of printing imgguard(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `imgguard ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub action: LedgerAction,
}

/// `imgguard ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Events, tags, engines, size on disk and the oldest event.
    Stats {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Drop history older than DURATION (e.g. 180d), but never a tag's current state nor the
    /// evidence for an image the daemon still has (asks the daemon); then give the space back.
    Compact {
        /// How old an event must be to go (90s, 30m, 12h, 180d).
        #[arg(long, value_name = "DURATION", required = true)]
        older_than: String,
    },
    /// Write the whole log to standard output as JSON Lines, one event per line, oldest first.
    Export,
    /// Append the events of an export (FILE, or `-` for standard input), all or nothing;
    /// events already in the ledger (same `id`) are skipped, so importing twice adds nothing.
    Import {
        /// The export to read, or `-`.
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
    },
    /// Send the events the local spool holds and the fleet ledger lacks, in order, exactly
    /// once (needs a fleet ledger: IMGGUARD_LEDGER or `ledger:` in .imgguard.yml).
    Sync,
}

/// `imgguard build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Record the lineage but remove nothing.
    #[arg(long)]
    pub keep_previous: bool,

    /// Also write what happened as one JSON document to FILE (the same facts as the GitHub
    /// Action's outputs); docker's own output is untouched.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Arguments for `docker build`, passed through as they are.
    #[arg(
        value_name = "DOCKER BUILD ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
    )]
    pub docker_args: Vec<OsString>,
}

/// `imgguard history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this tag (normalised as docker does: `app` is `app:latest`).
    pub tag: Option<String>,

    /// Each engine's lineage of the tag, labelled by the host that recorded it (a fleet
    /// ledger holds many runners).
    #[arg(long)]
    pub all_engines: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Only images carrying this label (`KEY` or `KEY=VALUE`; repeat to require several).
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Print the plan and change nothing (neither images nor the ledger).
    #[arg(long)]
    pub dry_run: bool,

    /// Keep the N most recent superseded images of each tag, for rollback.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep: usize,

    /// Spare images that became dangling less than this long ago (90s, 30m, 1h, 2d, 0).
    #[arg(long, value_name = "DURATION", default_value = crate::settings::DEFAULT_MIN_AGE)]
    pub min_age: String,

    /// Also remove dangling images the ledger cannot explain.
    #[arg(long)]
    pub unknown: bool,

    /// Only images carrying this label (`KEY` or `KEY=VALUE`; repeat to require several).
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove: `name:tag` or an image ID. There is no force option, by design.
    #[arg(required = true, value_name = "REF")]
    pub refs: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of standard output; `.tar.gz` or `.tgz` writes gzip.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Save images named only by ID or digest anyway: the archive then has no name for them.
    #[arg(long)]
    pub allow_id: bool,

    /// Images: `NAME:TAG`, or a bare `NAME` for every tag of that repository.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Output format (`json` needs `-o`: without it the archive is what goes to stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file (plain or gzip) instead of standard input.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Also give the loaded image this name (the archive must hold one image); repeatable.
    #[arg(long = "tag", value_name = "NAME:TAG")]
    pub tags: Vec<String>,

    /// For an image without a name in the archive, put back the tags the ledger knows for it
    /// (those that point at no other image now).
    #[arg(long)]
    pub restore_tags: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `imgguard watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Also remove the images plain docker superseded (a tag moved off them), by the same rules
    /// as `imgguard build`: never forced; kept, with the reason, while a container, tag, child or
    /// protect pattern holds them.
    #[arg(long)]
    pub remove_superseded: bool,

    /// How long each event waits before it is recorded (and a superseded image before it is
    /// removed): the imgguard command that made the move records it first, and a build that
    /// still uses a superseded parent is not broken (5s, 30s, 1m).
    #[arg(long, value_name = "DURATION", default_value = crate::settings::DEFAULT_WATCH_GRACE)]
    pub grace: String,

    /// Only images carrying this label (`KEY` or `KEY=VALUE`; repeat to require several): on a
    /// shared daemon, record (and remove) only your own.
    #[arg(long, value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,

    /// Output format: one line, or one JSON object, per recorded event.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Output formats shared by the reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// A stable JSON contract for scripts.
    Json,
}

/// `imgguard check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories to scan (default: the current directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,

    /// Exit 1 when a finding has at least this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,

    /// Scan the files staged in the git index, at their staged content.
    #[arg(long, conflicts_with_all = ["pre_push", "paths"])]
    pub staged: bool,

    /// Scan what is being pushed: read git's pre-push lines on stdin and scan the files the
    /// pushed commits change, at their pushed content.
    #[arg(long, conflicts_with = "paths")]
    pub pre_push: bool,

    /// With --pre-push: the remote's name (git's first hook argument), to compare a new branch
    /// with what that remote already has.
    #[arg(long, requires = "pre_push", value_name = "NAME")]
    pub remote: Option<String>,

    /// Also list the files not read (FIFOs, devices, symbolic links, files over 16 MiB, binary
    /// blobs) and those read with bytes that are not UTF-8 replaced. A file named on the
    /// command line that is not read is always reported.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Rewrite the files: apply the safe fixes (a bare --fix: IG002, drop -f/--force), or
    /// those of the rules listed (--fix=IG002,IG003; IG003's fix runs `imgguard build`, so it
    /// is applied only when named). Fixed findings are not reported.
    #[arg(
        long,
        value_name = "RULES",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        conflicts_with_all = ["staged", "pre_push"]
    )]
    pub fix: Option<String>,

    /// Print the fixes (those of --fix, default: the safe ones) as a unified diff on stdout
    /// instead of writing them; exit 1 when there is something to fix.
    #[arg(long, conflicts_with_all = ["staged", "pre_push"])]
    pub diff: bool,
}

/// Output formats of `imgguard check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// `path:line:col: error[IG001] message`, the source line and a fix hint.
    Human,
    /// An array of `{rule, severity, path, line, column, end_line, message, fix}`.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
    /// GitHub workflow annotations (`::error file=…`).
    Github,
}

/// The lowest severity that makes `imgguard check` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Only errors.
    Error,
    /// Warnings and errors.
    Warning,
    /// Any finding.
    Note,
}

/// `imgguard hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: HookAction,
}

/// `imgguard hook` actions.
#[derive(Debug, Subcommand)]
pub enum HookAction {
    /// Install the pre-push hook into the repository's hooks directory (honours
    /// core.hooksPath). An existing pre-push hook is kept and run first, unless --replace.
    Install {
        /// Overwrite an existing pre-push hook instead of chaining it.
        #[arg(long)]
        replace: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn build_passes_docker_flags_through() {
        let cli = Cli::try_parse_from([
            "imgguard",
            "build",
            "--keep-previous",
            "-t",
            "app:v1",
            "--build-arg",
            "X=1",
            ".",
        ])
        .unwrap();
        let Command::Build(args) = cli.command else { panic!("not build") };
        assert!(args.keep_previous);
        assert_eq!(args.docker_args, ["-t", "app:v1", "--build-arg", "X=1", "."]);
        let cli =
            Cli::try_parse_from(["imgguard", "build", "--report", "r.json", "-t", "a:1", "."])
                .unwrap();
        let Command::Build(args) = cli.command else { panic!("not build") };
        assert_eq!(args.report.as_deref(), Some(std::path::Path::new("r.json")));
        assert_eq!(args.docker_args, ["-t", "a:1", "."]);
    }
}
