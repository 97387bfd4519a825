//! What imgguard says, in one place: its own lines on stderr (`imgguard: …`), reports on stdout,
//! sizes, and progress. Progress bars are drawn only for a person at a terminal (stderr is a
//! terminal and `CI` is unset); elsewhere the commands' plain lines are the progress.
//!
//! A closed stdout (`imgguard explain | head`) is not handled here: writes fail with
//! `BrokenPipe`, the error travels up, and `crate::run` turns it into a quiet exit 0, once for
//! every command (as ripgrep does).

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::Error;

pub(crate) mod explained;
pub(crate) mod github;

/// One of imgguard's own lines on stderr: `imgguard: {msg}`.
pub(crate) fn note(msg: impl Display) {
    let _ = writeln!(std::io::stderr(), "imgguard: {msg}");
}

/// A line of the report on stdout. A failed write (a closed pipe) is an error for the caller to
/// pass up.
pub(crate) fn say(msg: impl Display) -> Result<(), Error> {
    writeln!(std::io::stdout(), "{msg}").map_err(|e| Error::io("stdout", e))
}

/// Writes `value` as pretty JSON and a newline on stdout: the commands' `--format json`.
pub(crate) fn json(value: &impl Serialize) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| Error::io("stdout", e))
}

/// Writes `value` as one line of compact JSON on stdout (a stream of objects, one a line).
pub(crate) fn json_line(value: &impl Serialize) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("stdout", e))
}

/// Writes `value` as pretty JSON to `path`: a temporary file beside it, renamed into place, so
/// a reader never sees half a document.
pub(crate) fn json_file(path: &std::path::Path, value: &impl Serialize) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".imgguard-report-")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    serde_json::to_writer_pretty(&mut temp, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(temp))
        .map_err(|e| Error::io(path, e))?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// A size for people, in binary units (`7.00 MiB`), the same in every command.
pub(crate) fn size(bytes: u64) -> String {
    BinaryBytes(bytes).to_string()
}

/// [`size`] of a size the daemon reports as signed.
pub(crate) fn size_i64(bytes: i64) -> String {
    size(u64::try_from(bytes).unwrap_or(0))
}

/// Whether a person watches: stderr is a terminal and this is not a CI job.
pub(crate) fn interactive() -> bool {
    std::io::stderr().is_terminal() && crate::host::env_var("CI").is_none()
}

/// What a progress bar counts.
pub(crate) enum Progress<'a> {
    /// Items (`removing [=====>    ] 3/10`).
    Items { len: u64, what: &'a str },
    /// Bytes of a transfer, against an expected total.
    Bytes { total: u64, what: &'a str },
}

/// A progress bar on stderr for a person at a terminal; hidden otherwise (then the caller prints
/// plain lines: `ProgressBar::is_hidden` tells it).
pub(crate) fn progress(kind: &Progress<'_>) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let (len, template, what) = match kind {
        Progress::Items { len, what } => {
            (*len, "imgguard: {msg} [{bar:30}] {pos}/{len} {elapsed}", what)
        }
        Progress::Bytes { total, what } => (
            *total,
            "imgguard: {msg} {wide_bar} {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec} {eta}",
            what,
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message((*what).to_string());
    bar
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_binary_everywhere() {
        assert_eq!(super::size(10), "10 B");
        assert_eq!(super::size(1536), "1.50 KiB");
        assert_eq!(super::size_i64(7_340_032), "7.00 MiB");
        assert_eq!(super::size_i64(-1), "0 B");
    }
}
