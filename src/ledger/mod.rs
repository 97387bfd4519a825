//! The ledger's storage, behind one trait: the append-only event log and the queries the
//! commands make of it. The event model and everything derived from it (lineages, where a tag
//! points, causes) is pure and lives in [`crate::core::event`]; a backend only stores and finds
//! events.
//!
//! Open it through [`open`]; SQLite ([`sqlite`]) is the one backend today. A new backend
//! implements [`Ledger`] and is chosen in [`open`].

pub mod sqlite;

use std::path::PathBuf;

pub use sqlite::LedgerError;

use crate::core::event::{Event, Recorded};
use crate::core::image::EngineIdentity;

/// What a command needs of the ledger. Every write is one transaction
/// (`[ref:one-transaction-per-command]`): a command collects its events and appends them once.
pub trait Ledger: Send {
    /// Appends all of one command's events, and what is known of the engine, in one transaction.
    fn append(&mut self, engine: &EngineIdentity, events: &[Event]) -> Result<(), LedgerError>;

    /// The events that concern `tags` (their pointer moves, and the fates of the images they
    /// pointed at), on `engine` or on every engine.
    fn tag_events(&self, engine: Option<&str>, tags: &[&str])
        -> Result<Vec<Recorded>, LedgerError>;

    /// Every event, of `engine` or of all engines, in log order.
    fn all_events(&self, engine: Option<&str>) -> Result<Vec<Recorded>, LedgerError>;

    /// The fates of every image whose removal was ever deferred on `engine` (see
    /// [`crate::core::event::pending_parents`]).
    fn deferred(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// The intent events of the build runs on `engine` that have not ended (see
    /// [`crate::core::event::intents`]).
    fn open_intents(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// Every event of `engine` that names `image_id`.
    fn image_events(&self, engine: &str, image_id: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// The name recorded for an engine, if any.
    fn engine_name(&self, id: &str) -> Result<Option<String>, LedgerError>;

    /// Takes the prune lock: one `imgguard prune` at a time per ledger. `None` when another
    /// process holds it; the lock is released when the returned value is dropped.
    fn prune_lock(&self) -> Result<Option<PruneLock>, LedgerError>;

    /// Where the ledger is, for messages.
    fn location(&self) -> String;
}

/// A held prune lock; dropping it releases the lock.
pub struct PruneLock {
    _held: Box<dyn Send>,
}

impl PruneLock {
    /// Wraps whatever keeps the lock held (a locked file, a database session).
    pub fn new(held: impl Send + 'static) -> PruneLock {
        PruneLock { _held: Box::new(held) }
    }
}

/// Whether opening may create the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create it if it does not exist (commands that record).
    Create,
    /// Only an existing ledger (reading commands create nothing).
    Existing,
}

/// Where the ledger lives: `$IMGGUARD_HOME/ledger.db`, else `$XDG_DATA_HOME/imgguard/ledger.db`,
/// else `~/.local/share/imgguard/ledger.db`. `env` looks up an environment variable.
pub fn location(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, LedgerError> {
    sqlite::default_path(env)
}

/// Opens the ledger; `None` when `access` is [`Access::Existing`] and there is none yet.
pub fn open(
    env: &dyn Fn(&str) -> Option<String>,
    access: Access,
) -> Result<Option<Box<dyn Ledger>>, LedgerError> {
    let path = location(env)?;
    if let Some(dir) = path.parent().filter(|d| d.exists() && !d.is_dir()) {
        return Err(LedgerError::Db {
            path: path.clone(),
            message: format!("{} is not a directory (check IMGGUARD_HOME)", dir.display()),
        });
    }
    if access == Access::Existing && !path.exists() {
        return Ok(None);
    }
    Ok(Some(Box::new(sqlite::Store::open(&path)?)))
}

/// The prune lock when there is no ledger yet (a dry run creates nothing): honoured if another
/// process holds it, never created.
pub fn prune_lock_without_ledger(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PruneLock>, LedgerError> {
    sqlite::prune_lock(&location(env)?, false)
}
