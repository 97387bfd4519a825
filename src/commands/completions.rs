//! `imgguard completions SHELL` and `imgguard man [--dir DIR]`: shell completion scripts
//! (clap_complete) and manual pages (clap_mangen), both made from the same clap definition as
//! the parser, so they cannot drift from it. Neither reads configuration or asks a daemon.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Error, Outcome};

/// Writes the completion script for the shell to stdout.
pub fn completions(args: &CompletionsArgs) -> Result<Outcome, Error> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "imgguard", &mut out);
    write_stdout(&out)
}

/// Writes `imgguard(1)` to stdout, or with `--dir` one page per command into that directory
/// (`imgguard.1`, `imgguard-build.1`, …), each written whole to a temporary file, then renamed.
pub fn man(args: &ManArgs) -> Result<Outcome, Error> {
    let mut cmd = Cli::command();
    // Built, each subcommand knows its full name (`imgguard prune`) for its synopsis.
    cmd.build();
    let Some(dir) = &args.dir else {
        let mut out = Vec::new();
        render(&cmd, &mut out).map_err(|e| Error::io("(stdout)", e))?;
        return write_stdout(&out);
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    write_page(&cmd, "imgguard", dir)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("imgguard-{}", sub.get_name());
        // The page's title and synopsis name the full command (`imgguard-build`).
        let sub = sub.clone().display_name(name.clone());
        write_page(&sub, &name, dir)?;
    }
    Ok(Outcome::Ok)
}

fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let title = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    clap_mangen::Man::new(cmd.clone())
        .title(title)
        .source(format!("imgguard {}", env!("CARGO_PKG_VERSION")))
        .render(out)
}

fn write_page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<(), Error> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    render(cmd, &mut page).map_err(|e| Error::io(&path, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(&page).map_err(|e| Error::io(&path, e))?;
    tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<Outcome, Error> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(|e| Error::io("(stdout)", e))?;
    Ok(Outcome::Ok)
}
