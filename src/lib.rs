//! imgguard: keeps Docker hosts free of unexplained `<none>:<none>` images without deleting one
//! that is still needed.
//!
//! `run()` parses the arguments, builds the configuration, dispatches to one command and maps
//! the result to an exit code in one place (0 ok, 1 refused or findings, 2 error; `build` passes
//! docker's own code through).

pub mod bounded_read;
pub mod cli;
pub mod commands;
pub mod config;
pub mod core;
pub mod engine;
pub mod error;
pub mod flow;
pub mod git;
pub mod host;
pub mod ledger;
pub mod settings;
pub mod transfer;
mod ui;
pub mod walk;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

pub use error::{Error, Outcome};

/// Runs imgguard with the process's arguments and returns its exit code.
pub fn run() -> ExitCode {
    host::start_clock();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version: clap prints them (exit 0); help for a bare `imgguard` (exit 2).
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        // A usage error: one line naming what is wrong, like every other bad input (exit 2).
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "imgguard: {}", usage_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    let code = match dispatch(&cli) {
        Ok(outcome) => outcome.code(),
        // A closed stdout ends the report, not the command's success (ripgrep does the same).
        Err(e) if e.is_broken_pipe() => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "imgguard: {e}");
            e.code()
        }
    };
    host::trace("exit");
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// clap's usage error on one line: its first line without `error: `, and where to look.
fn usage_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" names them on the next line.
    if line.ends_with(':') {
        if let Some(next) = lines.next().filter(|l| !l.starts_with("Usage:")) {
            line = format!("{line} {next}");
        }
    }
    let line: String = line.chars().take(300).collect();
    format!("{line} (see `imgguard --help`)")
}

fn dispatch(cli: &cli::Cli) -> Result<Outcome, Error> {
    use settings::{
        BuildSettings, ExplainSettings, HistorySettings, LedgerSettings, LoadSettings,
        PruneSettings, RmiSettings, SaveSettings, WatchSettings,
    };
    // Made from the command-line definition alone: no configuration, no daemon.
    match &cli.command {
        cli::Command::Completions(args) => return commands::completions::completions(args),
        cli::Command::Man(args) => return commands::completions::man(args),
        _ => {}
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let config = config::Config::load(cli.config.as_deref(), &cwd)?;
    host::select_ledger(&config)?;
    match &cli.command {
        cli::Command::Build(args) => {
            commands::build::run(&BuildSettings::new(args, &config)?, &cwd)
        }
        cli::Command::History(args) => commands::history::run(&HistorySettings::new(args)?),
        cli::Command::Explain(args) => {
            commands::explain::run(&ExplainSettings::new(args, &config)?)
        }
        cli::Command::Prune(args) => commands::prune::run(&PruneSettings::new(args, &config)?),
        cli::Command::Rmi(args) => commands::rmi::run(&RmiSettings::new(args)?),
        cli::Command::Check(args) => commands::check::run(args, cli.config.as_deref(), cli.color),
        cli::Command::Hook(args) => commands::hook::run(args),
        cli::Command::Save(args) => commands::save::run(&SaveSettings::new(args)?),
        cli::Command::Load(args) => commands::load::run(&LoadSettings::new(args, &config)?),
        cli::Command::Completions(_) | cli::Command::Man(_) => {
            unreachable!("answered before the configuration is read")
        }
        cli::Command::Ledger(args) => commands::ledger::run(&LedgerSettings::new(args)?),
        cli::Command::Fleet(args) => commands::fleet::run(args.format),
        cli::Command::Watch(args) => commands::watch::run(&WatchSettings::new(args, &config)?),
    }
}
