//! The ledger's storage, behind one trait: the append-only event log and the queries the
//! commands make of it. The event model and everything derived from it (lineages, where a tag
//! points, causes) is pure and lives in [`crate::core::event`]; a backend only stores and finds
//! events.
//!
//! Open it through [`open`]: SQLite ([`sqlite`]) by default, or the fleet ledger on PostgreSQL
//! ([`postgres`]) with the local SQLite ledger as its spool ([`spool`]) when a database URL is
//! configured. A new backend implements [`Ledger`] and is chosen in [`open`].

#[cfg(test)]
mod conformance;
pub mod jsonl;
pub mod postgres;
pub mod spool;
pub mod sqlite;

use std::path::PathBuf;

pub use sqlite::{Imported, LedgerError, Source, Stats};

use crate::core::event::{Event, Recorded};
pub use crate::core::fleet::FleetRow;
use crate::core::image::EngineIdentity;

/// What a command needs of the ledger. Every write is one transaction
/// (`[ref:one-transaction-per-command]`): a command collects its events and appends them once.
pub trait Ledger: Send {
    /// Appends all of one command's events, and what is known of the engine, in one transaction.
    fn append(&mut self, engine: &EngineIdentity, events: &[Event]) -> Result<(), LedgerError>;

    /// `imgguard watch`'s batch: appends the `events` not already recorded, and moves `engine`'s
    /// watch cursor (the time, in nanoseconds, of the last daemon event handled) forward to
    /// `cursor_ns` (`0`: leaves it), in one transaction. Already recorded: a tag move whose tag the current state
    /// ([`Ledger::tracked_tags`]) has there already (recorded by the imgguard command that made
    /// it, or by an earlier watch), a removal of the same image recorded in the last ten
    /// minutes, or for other events the same kind, image, time and words. A check per event
    /// that does not grow with the ledger. Returns the events appended.
    fn append_watched(
        &mut self,
        engine: &EngineIdentity,
        events: &[Event],
        cursor_ns: i64,
    ) -> Result<Vec<Event>, LedgerError>;

    /// Where `imgguard watch` stopped on `engine`: the time (ns) of the last daemon event it
    /// handled, if it ever ran.
    fn watch_cursor(&self, engine: &str) -> Result<Option<i64>, LedgerError>;

    /// The events that concern `tags` (their pointer moves, and the fates of the images they
    /// pointed at), on `engine` or on every engine.
    fn tag_events(&self, engine: Option<&str>, tags: &[&str])
        -> Result<Vec<Recorded>, LedgerError>;

    /// The event that says where each of `tags` points on `engine` now (the one
    /// [`crate::core::event::current`] picks from the tag's whole history), in log order: what
    /// a build, save or load compares the daemon with. One index lookup per tag, however long
    /// the tag's history (a tag rebuilt 300 times a day has 100,000 events after a year).
    fn tag_heads(&self, engine: &str, tags: &[&str]) -> Result<Vec<Recorded>, LedgerError>;

    /// Every event, of `engine` or of all engines, in log order. Grows with the ledger: only
    /// for reports of everything (`history` without a tag) and for tests.
    fn all_events(&self, engine: Option<&str>) -> Result<Vec<Recorded>, LedgerError>;

    /// The fates of every image whose removal was ever deferred on `engine` (see
    /// [`crate::core::event::pending_removals`]).
    fn deferred(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// The intent events of the build runs on `engine` that have not ended (see
    /// [`crate::core::event::intents`]).
    fn open_intents(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// The intent events of the build runs on `engine` that ended interrupted: what `explain`
    /// needs to call an image `interrupted-build`.
    fn interrupted_runs(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// Where each tag of `engine` ever moved points now, as the ledger believes (`None`: the tag
    /// was removed), sorted by tag: the ledger's current state, kept up to date in the
    /// transaction that appends the events, so that nothing recomputes it from the log.
    /// The same answer as [`crate::core::dangling::current_state`] over the whole log.
    fn tracked_tags(&self, engine: &str) -> Result<Vec<(String, Option<String>)>, LedgerError>;

    /// The events `explain` needs about `image_ids` on `engine`, in log order: every event
    /// naming one of the images, and for each time a tag pointed at one, the next pointer event
    /// of that tag that left it. [`crate::core::dangling::explain`] gives the same answer for
    /// these images over this as over the whole log.
    fn evidence(&self, engine: &str, image_ids: &[&str]) -> Result<Vec<Recorded>, LedgerError>;

    /// Counts and size, for `imgguard ledger stats`.
    fn stats(&self) -> Result<Stats, LedgerError>;

    /// Every event with its unique ID, in log order, streamed; stops when `visit` returns
    /// `false`.
    fn export(&self, visit: &mut dyn FnMut(&str, &Event) -> bool) -> Result<(), LedgerError>;

    /// Appends the events `next` yields, in one transaction (all or nothing); an event whose ID
    /// is already in the ledger is skipped, so importing twice adds nothing.
    fn import(&mut self, next: &mut Source<'_>) -> Result<Imported, LedgerError>;

    /// Drops the events of `engine` recorded before `before_ms`, but never the current state of
    /// a tag nor the [`Ledger::evidence`] for an image in `daemon_images` (every image the
    /// daemon has); returns how many were dropped and records `now_ms` as the last compaction.
    fn compact(
        &mut self,
        engine: &str,
        before_ms: i64,
        daemon_images: &[&str],
        now_ms: i64,
    ) -> Result<i64, LedgerError>;

    /// Gives the space of dropped events back to the file system.
    fn vacuum(&mut self) -> Result<(), LedgerError>;

    /// When the ledger was last compacted (ms since the epoch), if ever.
    fn compacted_at(&self) -> Result<Option<i64>, LedgerError>;

    /// The engine identity last learnt at `endpoint`, if it was learnt under the same `stamp`
    /// (what says the daemon behind the endpoint is the same one) less than `max_age_ms` ago.
    fn cached_engine(
        &self,
        endpoint: &str,
        stamp: &str,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Result<Option<EngineIdentity>, LedgerError>;

    /// Remembers the identity learnt at its endpoint under `stamp`.
    fn remember_engine(
        &mut self,
        identity: &EngineIdentity,
        stamp: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError>;

    /// Every event of `engine` that names `image_id`.
    fn image_events(&self, engine: &str, image_id: &str) -> Result<Vec<Recorded>, LedgerError>;

    /// The name recorded for an engine, if any.
    fn engine_name(&self, id: &str) -> Result<Option<String>, LedgerError>;

    /// Takes the prune lock: one `imgguard prune` at a time per ledger. `None` when another
    /// process holds it; the lock is released when the returned value is dropped.
    fn prune_lock(&self) -> Result<Option<PruneLock>, LedgerError>;

    /// Where the ledger is, for messages.
    fn location(&self) -> String;

    /// Ends the ledger as the process is about to end. The default closes it; a backend whose
    /// committed work needs no close may leave that to the process's exit.
    fn end_with_process(self: Box<Self>) {}

    /// From now on this process's commits are on someone's critical path (a build's end, after
    /// docker has finished): a backend leaves to a later commit the housekeeping a commit may
    /// do (SQLite's WAL checkpoint: writing pages back and two fsyncs, 1-2.5 ms). The default
    /// does nothing.
    fn defer_housekeeping(&mut self) {}

    /// Every event, on any engine, that names `image_id`, or that names an image an archive
    /// with `archive_sha256` held (what `load --restore-tags` asks of another host's saves). By
    /// index: a load never reads the whole log.
    fn fleet_image_events(
        &self,
        image_id: &str,
        archive_sha256: Option<&str>,
    ) -> Result<Vec<Recorded>, LedgerError>;

    /// One row per engine the ledger knows, for `imgguard fleet`; removals and keeps counted
    /// from `since_ms`.
    fn fleet(&self, since_ms: i64) -> Result<Vec<FleetRow>, LedgerError>;

    /// Each engine the ledger knows: its ID, its name, and the host that recorded it last.
    fn engine_hosts(&self) -> Result<Vec<(String, String, String)>, LedgerError>;
}

/// The counts of one engine's fleet row in SQL that SQLite and PostgreSQL both read (`$1` the
/// engine, `$2` the start of the window), aggregated in the database: the same answer as
/// [`crate::core::fleet::row`] over the engine's events (the conformance suite checks it).
/// Columns: nameless, nameless_bytes, unexplained, removed_recently, kept_recently.
pub(crate) const FLEET_SQL: &str = "
WITH ev AS (SELECT image_id, previous_id, kind, tag, outcome, at, seq,
                coalesce(image_size, archive_size) AS size
            FROM events WHERE engine = $1),
known AS (
    SELECT id, max(sz) AS sz, max(tagged) AS tagged FROM (
        SELECT image_id AS id, coalesce(size, 0) AS sz,
            CASE WHEN tag IS NOT NULL AND kind IN ('build', 'load', 'tag', 'untag', 'moved-outside')
                AND coalesce(outcome, '') <> 'not-in-daemon' THEN 1 ELSE 0 END AS tagged
        FROM ev WHERE image_id IS NOT NULL
        UNION ALL
        SELECT previous_id, 0,
            CASE WHEN tag IS NOT NULL AND kind IN ('build', 'load', 'tag', 'untag', 'moved-outside')
                AND coalesce(outcome, '') <> 'not-in-daemon' THEN 1 ELSE 0 END
        FROM ev WHERE previous_id IS NOT NULL) k
    GROUP BY id),
fate AS (
    SELECT id, kind FROM (
        SELECT image_id AS id, kind,
            row_number() OVER (PARTITION BY image_id ORDER BY at DESC, seq DESC) AS n
        FROM ev WHERE kind IN ('removed', 'kept') AND image_id IS NOT NULL) f
    WHERE n = 1),
nameless AS (
    SELECT k.sz, k.tagged, f.kind FROM known k LEFT JOIN fate f ON f.id = k.id
    WHERE k.id NOT IN (SELECT image_id FROM tag_state WHERE engine = $1 AND image_id IS NOT NULL)
        AND coalesce(f.kind, '') <> 'removed')
SELECT count(*), CAST(coalesce(sum(sz), 0) AS BIGINT),
    CAST(coalesce(sum(CASE WHEN tagged = 0 AND coalesce(kind, '') <> 'kept' THEN 1 ELSE 0 END), 0)
        AS BIGINT),
    (SELECT count(*) FROM events WHERE at >= $2 AND engine = $1 AND kind = 'removed'),
    (SELECT count(*) FROM events WHERE at >= $2 AND engine = $1 AND kind = 'kept')
FROM nameless
";

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
