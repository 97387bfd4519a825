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

    #[command(subcommand)]
    pub command: Command,
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
    /// Save images to a tar archive, as `docker save`, refusing to save an image by ID only
    /// (the archive would load as `<none>:<none>`).
    Save(SaveArgs),
    /// Load images from a tar archive, as `docker load`; say what was loaded, give back names
    /// the archive lacks, and clean up the image a load took a tag from (never forced).
    Load(LoadArgs),
}

/// `imgguard build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Record the lineage but remove nothing.
    #[arg(long)]
    pub keep_previous: bool,

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
}

/// Output formats shared by the reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// A stable JSON contract for scripts.
    Json,
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
    }
}
