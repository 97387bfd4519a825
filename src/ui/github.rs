//! Hands a build's result to GitHub Actions when imgguard runs inside a workflow step: appends
//! the step outputs to `$GITHUB_OUTPUT` and the job summary to `$GITHUB_STEP_SUMMARY` when those
//! are set, and prints `::notice`/`::warning` lines for kept images to stderr (the runner reads
//! workflow commands from both streams; stdout stays docker's, so `build -q` prints only the ID).
//!
//! The text comes from the pure [`crate::core::github`]; this file only decides where it goes.

use std::io::Write;
use std::path::PathBuf;

use crate::core::github::{self, BuildResult};
use crate::error::Error;
use crate::host::env_var;

/// Publishes `result` to the files the runner named; does nothing outside GitHub Actions.
pub(crate) fn publish(result: &BuildResult<'_>) -> Result<(), Error> {
    let in_actions = env_var("GITHUB_ACTIONS").is_some_and(|v| v == "true");
    if in_actions {
        let mut err = std::io::stderr().lock();
        for line in github::annotations(result.decisions) {
            let _ = writeln!(err, "{line}");
        }
    }
    if let Some(path) = env_var("GITHUB_OUTPUT") {
        append(path, &github::outputs(result))?;
    }
    if let Some(path) = env_var("GITHUB_STEP_SUMMARY") {
        append(path, &github::summary(result))?;
    }
    Ok(())
}

/// Appends, as the runner expects: other steps' text in the same file stays.
fn append(path: String, text: &str) -> Result<(), Error> {
    let path = PathBuf::from(path);
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(path, e))
}
