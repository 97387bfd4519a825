//! The top-level error and the one place where outcomes become exit codes.
//!
//! Exit codes are a contract (scripts and hooks key on them): 0 ok, 1 refused or findings,
//! 2 error. `build` passes docker's own exit code through as [`Outcome::Child`].

use std::path::PathBuf;

use crate::engine::EngineError;
use crate::ledger::LedgerError;

/// What a command that did not fail ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Ok,
    /// Something was refused or found (a guard finding, a save by ID): exit 1.
    Refused,
    /// A child process (`docker build`) decided the exit code.
    Child(i32),
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn code(&self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Refused => 1,
            Outcome::Child(code) => *code,
        }
    }
}

/// Every error a command can end with; all of them exit 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments name something invalid.
    #[error("{0}")]
    Usage(String),
    /// The configuration file is wrong.
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// Talking to the Docker engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A child process could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Every error exits 2, so an error blocks a hook (fail closed).
    pub fn code(&self) -> i32 {
        2
    }

    /// Whether this is a write to a closed pipe (`imgguard explain | head`): not an error for
    /// the user, so `run` exits 0 quietly.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
