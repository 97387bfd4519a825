//! The ledger's database: an embedded SQLite file, appended to in one transaction per command.
//!
//! Settings, and why: WAL so readers never block the writer and a crash never leaves half a
//! record; `synchronous=NORMAL` (durable across process crashes; a power loss may drop the last
//! commit, which loses a record of something the daemon still shows); `BEGIN IMMEDIATE` plus a
//! busy timeout so that several imgguard processes at once queue for the write lock instead of
//! failing; the file is created with mode 0600 (it names images and paths); the schema carries a
//! version (`PRAGMA user_version`) and migrates forward, and a newer schema is a clear error.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::core::event::{
    ArchiveFacts, BuildFacts, Event, EventKind, Outcome, Reason, ReasonKind, Recorded,
};
use crate::core::image::EngineIdentity;

/// The SQL condition that an event moves a tag's pointer: [`Event::is_pointer`] (a unit test
/// keeps the two in step).
macro_rules! pointer_sql {
    () => {
        "kind IN ('build', 'load', 'tag', 'untag', 'moved-outside') \
         AND (outcome IS NULL OR outcome <> 'not-in-daemon')"
    };
}
/// Forward migrations; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE engines (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    first_seen INTEGER NOT NULL
);
CREATE TABLE events (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    engine            TEXT NOT NULL,
    at                INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    tag               TEXT,
    image_id          TEXT,
    previous_id       TEXT,
    outcome           TEXT,
    reason            TEXT,
    git_commit        TEXT,
    git_dirty         INTEGER,
    dockerfile_sha256 TEXT,
    build_arg_names   TEXT,
    archive_path      TEXT,
    archive_sha256    TEXT,
    archive_size      INTEGER,
    imgguard_version  TEXT NOT NULL
);
CREATE INDEX events_by_tag ON events (engine, tag, seq);
CREATE INDEX events_by_image ON events (engine, image_id);
",
    r"
ALTER TABLE events ADD COLUMN reason_kind TEXT;
UPDATE events SET reason_kind = 'other' WHERE reason IS NOT NULL;
CREATE INDEX events_by_reason ON events (engine, reason_kind);
",
    concat!(
        r"
ALTER TABLE events ADD COLUMN uid TEXT;
UPDATE events SET uid = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX events_by_uid ON events (uid);
DROP INDEX events_by_tag;
CREATE INDEX events_by_tag ON events (tag, engine, seq);
DROP INDEX events_by_image;
CREATE INDEX events_by_image ON events (image_id, engine, seq);
CREATE INDEX events_by_at ON events (at);
CREATE TABLE tag_state (
    engine   TEXT NOT NULL,
    tag      TEXT NOT NULL,
    image_id TEXT,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (engine, tag)
) WITHOUT ROWID;
INSERT INTO tag_state (engine, tag, image_id, seq)
    SELECT engine, tag, image_id, max(seq) FROM events
    WHERE tag IS NOT NULL AND ",
        pointer_sql!(),
        r"
    GROUP BY engine, tag;
CREATE TABLE endpoints (
    endpoint   TEXT PRIMARY KEY,
    stamp      TEXT NOT NULL,
    engine     TEXT NOT NULL,
    name       TEXT NOT NULL,
    checked_at INTEGER NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"
    ),
    // `[ref:observed-order]`: a tag's current state is its pointer event observed last (time,
    // then log position), not the one committed last; and explain finds interrupted build runs
    // through a partial index instead of scanning every run's intent.
    concat!(
        r"
ALTER TABLE tag_state ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
DELETE FROM tag_state;
INSERT INTO tag_state (engine, tag, image_id, seq, at)
    SELECT engine, tag, image_id, seq, at FROM (
        SELECT engine, tag, image_id, seq, at, row_number() OVER
            (PARTITION BY engine, tag ORDER BY at DESC, seq DESC) AS newest
        FROM events WHERE tag IS NOT NULL AND ",
        pointer_sql!(),
        r"
    ) WHERE newest = 1;
CREATE INDEX events_interrupted ON events (engine)
    WHERE kind = 'intent' AND outcome = 'interrupted';
"
    ),
    // `load --restore-tags` asks which images an archive held, by the archive's sha256, on
    // every engine (the fleet ledger's cross-host names): by index, not by reading the log.
    r"
CREATE INDEX events_by_archive ON events (archive_sha256) WHERE archive_sha256 IS NOT NULL;
",
    // The size of the image an event decided about (its fate), for `imgguard fleet`'s bytes.
    r"
ALTER TABLE events ADD COLUMN image_size INTEGER;
",
];

/// Events in one write past which the writer checkpoints the WAL (see `Store::checkpoint_after`).
const LARGE_WRITE: usize = 1000;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the ledger database, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database could not be opened, read or written.
    #[error("ledger {}: {message}", path.display())]
    Db { path: PathBuf, message: String },
    /// The database was written by a newer imgguard.
    #[error(
        "ledger {}: schema version {found} is newer than this imgguard knows ({known}); \
         upgrade imgguard",
        path.display()
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    /// Input to import was refused (the message names the file and line).
    #[error("{0}")]
    Rejected(String),
    /// No place for the ledger could be worked out.
    #[error("cannot locate the ledger: set IMGGUARD_HOME or HOME")]
    NoHome,
}

/// Where the ledger lives: `$IMGGUARD_HOME/ledger.db`, else
/// `$XDG_DATA_HOME/imgguard/ledger.db`, else `~/.local/share/imgguard/ledger.db`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, LedgerError> {
    if let Some(home) = env("IMGGUARD_HOME") {
        return Ok(PathBuf::from(home).join("ledger.db"));
    }
    if let Some(data) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("imgguard").join("ledger.db"));
    }
    let home = env("HOME").ok_or(LedgerError::NoHome)?;
    Ok(PathBuf::from(home).join(".local/share/imgguard/ledger.db"))
}

/// An open ledger: one connection per process.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating with mode 0600 if needed) and migrates the ledger at `path`.
    pub fn open(path: &Path) -> Result<Store, LedgerError> {
        let db = |message: String| LedgerError::Db { path: path.to_path_buf(), message };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| db(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        // Create the file ourselves so that it is never, even briefly, readable by others;
        // SQLite gives the -wal and -shm files the same mode.
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| db(format!("cannot open: {e}")))?;
        let conn = Connection::open(path).map_err(|e| db(one_line(&e)))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| db(one_line(&e)))?;
        check_is_ours(&conn).map_err(db)?;
        // A newer schema is refused before anything is changed (not even the journal mode).
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| db(one_line(&e)))?;
        if version > known {
            return Err(LedgerError::TooNew { path: path.to_path_buf(), found: version, known });
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| db(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| db(e.to_string()))?;
        // The last connection to close would otherwise checkpoint the WAL into the database and
        // fsync it: 5-10 ms at the end of every command. Instead a commit checkpoints once the
        // WAL passes 64 pages (every second or third build: a build writes ~30), which also keeps
        // small the WAL that the next process must read when it opens the ledger (measured:
        // bench/build-overhead.sh). A build checkpoints only in its commit beside docker
        // (`defer_housekeeping`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| db(e.to_string()))?;
        conn.pragma_update(None, "wal_autocheckpoint", 64).map_err(|e| db(e.to_string()))?;
        let mut store = Store { conn, path: path.to_path_buf() };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: &rusqlite::Error) -> LedgerError {
        LedgerError::Db { path: self.path.clone(), message: one_line(e) }
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(&e))?;
        if version == known {
            return Ok(());
        }
        if version > known {
            return Err(LedgerError::TooNew { path: self.path.clone(), found: version, known });
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| LedgerError::Db { path: path.clone(), message: one_line(&e) })?;
        // Another process may have migrated while we waited for the lock: read again.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| LedgerError::Db { path: path.clone(), message: one_line(&e) })?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            tx.execute_batch(sql).map_err(|e| LedgerError::Db {
                path: path.clone(),
                message: format!("migration {}: {e}", i + 1),
            })?;
            tx.pragma_update(None, "user_version", i + 1)
                .map_err(|e| LedgerError::Db { path: path.clone(), message: one_line(&e) })?;
        }
        tx.commit().map_err(|e| LedgerError::Db { path, message: one_line(&e) })
    }

    /// Appends all of one command's events (and the engine's name) in one transaction, and
    /// moves each tag's current state (`tag_state`) in the same transaction.
    pub fn append(&mut self, engine: &EngineIdentity, events: &[Event]) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let db = |e: rusqlite::Error| LedgerError::Db { path: path.clone(), message: one_line(&e) };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        upsert_engine(&tx, engine, events.first().map_or(0, |e| e.at_ms)).map_err(db)?;
        for e in events {
            insert_event(&tx, None, e).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        self.checkpoint_after(events.len());
        Ok(())
    }

    /// After a large write (the first `explain` on a host whose imported ledger names thousands
    /// of tags it lacks records them all), the WAL is as large as what was written, and every
    /// later reader wades through it until a checkpoint (measured with a million events:
    /// `history` 4 ms → 23 ms, the next build's first commit 140 ms): the writer that made it
    /// checkpoints it at once, best effort (a reader may hold it back; it is done later then).
    fn checkpoint_after(&self, written: usize) {
        if written > LARGE_WRITE {
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }

    /// `imgguard watch`'s batch (see [`super::Ledger::append_watched`]): the events not yet
    /// recorded and the engine's watch cursor, in one transaction. Each duplicate check is an
    /// index lookup (`tag_state` for tag moves, the image's events for the rest): the cost of an
    /// event does not grow with the ledger.
    pub fn append_watched(
        &mut self,
        engine: &EngineIdentity,
        events: &[Event],
        cursor_ns: i64,
    ) -> Result<Vec<Event>, LedgerError> {
        let path = self.path.clone();
        let db = |e: rusqlite::Error| LedgerError::Db { path: path.clone(), message: one_line(&e) };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        upsert_engine(&tx, engine, events.first().map_or(0, |e| e.at_ms)).map_err(db)?;
        let mut added = Vec::new();
        for e in events {
            if !already_recorded(&tx, e).map_err(db)? && insert_event(&tx, None, e).map_err(db)? {
                added.push(e.clone());
            }
        }
        if cursor_ns > 0 {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            )
            .and_then(|mut s| s.execute(params![watch_key(&engine.id), cursor_ns]))
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(added)
    }

    /// The time (ns) of the last event `imgguard watch` handled on `engine`.
    pub fn watch_cursor(&self, engine: &str) -> Result<Option<i64>, LedgerError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [watch_key(engine)], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// The events that concern `tags` on `engine` (or every engine): their own events, and the
    /// fates (removed, kept) of every image they pointed at. Index lookups per tag and per image,
    /// whatever the size of the log.
    pub fn events(
        &self,
        engine: Option<&str>,
        tags: &[&str],
    ) -> Result<Vec<Recorded>, LedgerError> {
        let own = format!(
            "SELECT {COLUMNS} FROM events WHERE tag = ?1 AND (?2 IS NULL OR engine = ?2)
             ORDER BY seq"
        );
        let fates = format!(
            "SELECT {COLUMNS} FROM events WHERE kind IN ('removed', 'kept')
                AND (?2 IS NULL OR engine = ?2) AND image_id IN
                    (SELECT image_id FROM events WHERE tag = ?1 AND (?2 IS NULL OR engine = ?2))"
        );
        let mut own = self.conn.prepare_cached(&own).map_err(|e| self.err(&e))?;
        let mut fates = self.conn.prepare_cached(&fates).map_err(|e| self.err(&e))?;
        let mut found: BTreeMap<i64, Recorded> = BTreeMap::new();
        for tag in tags {
            for stmt in [&mut own, &mut fates] {
                for r in stmt.query_map(params![tag, engine], read_row).map_err(|e| self.err(&e))? {
                    let r = r.map_err(|e| self.err(&e))?;
                    found.insert(r.seq, r);
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// Each tag's current pointer event (`tag_state`), in log order.
    pub fn heads(&self, engine: &str, tags: &[&str]) -> Result<Vec<Recorded>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE seq =
                (SELECT seq FROM tag_state WHERE engine = ?1 AND tag = ?2)"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let mut found = Vec::with_capacity(tags.len());
        for tag in tags {
            let head = stmt.query_row(params![engine, tag], read_row).optional();
            found.extend(head.map_err(|e| self.err(&e))?);
        }
        found.sort_by_key(|r| r.seq);
        found.dedup_by_key(|r| r.seq);
        Ok(found)
    }

    /// Every event, of `engine` or of all engines, in log order.
    pub fn all(&self, engine: Option<&str>) -> Result<Vec<Recorded>, LedgerError> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE (?1 IS NULL OR engine = ?1) ORDER BY seq");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt.query_map(params![engine], read_row).map_err(|e| self.err(&e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(&e))
    }

    /// Every event of `engine` that names `image_id` (uses the `(image_id, engine)` index).
    pub fn image_events(&self, engine: &str, image_id: &str) -> Result<Vec<Recorded>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE image_id = ?2 AND engine = ?1 ORDER BY seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt.query_map(params![engine, image_id], read_row).map_err(|e| self.err(&e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(&e))
    }

    /// Every event on any engine that names `image_id`, or an image an archive with
    /// `archive_sha256` held: two index lookups (`events_by_image`, `events_by_archive`).
    pub fn fleet_image_events(
        &self,
        image_id: &str,
        archive_sha256: Option<&str>,
    ) -> Result<Vec<Recorded>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE image_id = ?1 OR image_id IN
                (SELECT image_id FROM events WHERE archive_sha256 = ?2)
             ORDER BY seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![image_id, archive_sha256], read_row)
            .map_err(|e| self.err(&e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(&e))
    }

    /// The name recorded for an engine, if any.
    pub fn engine_name(&self, id: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row("SELECT name FROM engines WHERE id = ?1", params![id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// The fates (`removed`, `kept`) of every image whose removal was ever deferred on `engine`
    /// (uses the `(engine, reason_kind)` and `(engine, image_id)` indexes).
    pub fn deferred(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.events_where(
            "engine = ?1 AND kind IN ('removed', 'kept')
               AND image_id IN
                 (SELECT image_id FROM events WHERE engine = ?1 AND reason_kind = 'deferred')
             ORDER BY seq",
            engine,
        )
    }

    /// The intent events of every build run on `engine` that has not ended (uses the
    /// `(engine, reason_kind)` index).
    pub fn open_intents(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.events_where(
            "engine = ?1 AND reason_kind = 'intent'
               AND reason IN (SELECT reason FROM events WHERE engine = ?1
                 AND reason_kind = 'intent' GROUP BY reason HAVING count(outcome) = 0)
             ORDER BY seq",
            engine,
        )
    }

    /// The intent events of every build run on `engine` that ended interrupted (through the
    /// partial index `events_interrupted`).
    pub fn interrupted_runs(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.events_where(
            "engine = ?1 AND reason_kind = 'intent'
               AND reason IN (SELECT reason FROM events WHERE engine = ?1 AND kind = 'intent'
                 AND outcome = 'interrupted')
             ORDER BY seq",
            engine,
        )
    }

    /// The events of `engine` that match `condition` (SQL over `events`, `?1` the engine).
    fn events_where(&self, condition: &str, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE {condition}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt.query_map(params![engine], read_row).map_err(|e| self.err(&e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(&e))
    }

    /// Number of events in the log (for checks and tests).
    pub fn count(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(&e))
    }

    /// Where each tag of `engine` points now (`tag_state`), sorted by tag.
    pub fn tracked_tags(&self, engine: &str) -> Result<Vec<(String, Option<String>)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tag, image_id FROM tag_state WHERE engine = ?1 ORDER BY tag")
            .map_err(|e| self.err(&e))?;
        let rows = stmt.query_map(params![engine], |r| Ok((r.get(0)?, r.get(1)?)));
        rows.and_then(Iterator::collect).map_err(|e| self.err(&e))
    }

    /// What `explain` needs about `image_ids` on `engine`, by index (see the private `evidence` function).
    pub fn evidence(&self, engine: &str, image_ids: &[&str]) -> Result<Vec<Recorded>, LedgerError> {
        Ok(evidence(&self.conn, engine, image_ids)
            .map_err(|e| self.err(&e))?
            .into_values()
            .collect())
    }

    /// Counts and sizes for `imgguard ledger stats`.
    pub fn stats(&self) -> Result<Stats, LedgerError> {
        let one = |sql: &str| -> Result<i64, LedgerError> {
            self.conn.query_row(sql, [], |r| r.get(0)).map_err(|e| self.err(&e))
        };
        let oldest: Option<i64> = self
            .conn
            .query_row("SELECT min(at) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(&e))?;
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        Ok(Stats {
            events: one("SELECT count(*) FROM events")?,
            tags: one("SELECT count(*) FROM tag_state")?,
            engines: one("SELECT count(DISTINCT engine) FROM events")?,
            size_bytes: size(&self.path) + size(Path::new(&wal)),
            oldest_ms: oldest,
        })
    }

    /// Visits every event with its unique ID, in log order, one row at a time; stops early when
    /// `visit` returns `false`.
    pub fn export(&self, visit: &mut dyn FnMut(&str, &Event) -> bool) -> Result<(), LedgerError> {
        let sql = format!("SELECT {COLUMNS}, uid FROM events ORDER BY seq");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(&e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(&e))? {
            let r = read_row(row).map_err(|e| self.err(&e))?;
            let uid: String = row.get(19).map_err(|e| self.err(&e))?;
            if !visit(&uid, &r.event) {
                break;
            }
        }
        Ok(())
    }

    /// Appends the events `next` yields (with their unique IDs), in one transaction: an event
    /// whose ID is already in the ledger is skipped; an error from `next` rolls everything back.
    pub fn import(&mut self, next: &mut Source<'_>) -> Result<Imported, LedgerError> {
        let path = self.path.clone();
        let db = |e: rusqlite::Error| LedgerError::Db { path: path.clone(), message: one_line(&e) };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let mut counts = Imported::default();
        while let Some((uid, event)) = next().map_err(LedgerError::Rejected)? {
            tx.prepare_cached(
                "INSERT INTO engines (id, name, endpoint, first_seen) VALUES (?1, '', '', ?2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![event.engine, event.at_ms]))
            .map_err(db)?;
            if insert_event(&tx, Some(&uid), &event).map_err(db)? {
                counts.added += 1;
            } else {
                counts.skipped += 1;
            }
        }
        tx.commit().map_err(db)?;
        // A large import leaves a WAL as large as what it wrote, which every later reader would
        // wade through until a checkpoint (a million events: 4 ms → 120 ms for `history`):
        // checkpoint it now, best effort (another reader may hold it back; it is done later).
        self.checkpoint_after(usize::try_from(counts.added).unwrap_or(usize::MAX));
        Ok(counts)
    }

    /// Drops the events of `engine` older than `before_ms`, except each tag's current state and
    /// the evidence for every image in `daemon_images`; records when it ran.
    pub fn compact(
        &mut self,
        engine: &str,
        before_ms: i64,
        daemon_images: &[&str],
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        let path = self.path.clone();
        let db = |e: rusqlite::Error| LedgerError::Db { path: path.clone(), message: one_line(&e) };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS keep_seq (seq INTEGER PRIMARY KEY);
             DELETE FROM temp.keep_seq;
             INSERT OR IGNORE INTO temp.keep_seq SELECT seq FROM tag_state;",
        )
        .map_err(db)?;
        {
            let mut keep =
                tx.prepare_cached("INSERT OR IGNORE INTO temp.keep_seq VALUES (?1)").map_err(db)?;
            for seq in evidence(&tx, engine, daemon_images).map_err(db)?.keys() {
                keep.execute(params![seq]).map_err(db)?;
            }
        }
        let dropped = tx
            .execute(
                "DELETE FROM events WHERE engine = ?1 AND at < ?2
                    AND seq NOT IN (SELECT seq FROM temp.keep_seq)",
                params![engine, before_ms],
            )
            .map_err(db)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('compacted_at', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![now_ms],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(i64::try_from(dropped).unwrap_or(i64::MAX))
    }

    /// Gives the space of dropped events back to the file system (`VACUUM`, then the WAL
    /// truncated).
    pub fn vacuum(&mut self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| self.err(&e))
    }

    /// When the ledger was last compacted (ms since the epoch), if ever.
    pub fn compacted_at(&self) -> Result<Option<i64>, LedgerError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'compacted_at'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// The identity remembered for `endpoint`, if it was learnt under the same `stamp` less than
    /// `max_age_ms` before `now_ms`.
    pub fn cached_engine(
        &self,
        endpoint: &str,
        stamp: &str,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Result<Option<EngineIdentity>, LedgerError> {
        self.conn
            .prepare_cached(
                "SELECT engine, name FROM endpoints
                 WHERE endpoint = ?1 AND stamp = ?2 AND checked_at > ?3 AND checked_at <= ?4",
            )
            .and_then(|mut s| {
                s.query_row(params![endpoint, stamp, now_ms - max_age_ms, now_ms], |r| {
                    Ok(EngineIdentity {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        endpoint: endpoint.to_string(),
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(&e))
    }

    /// Remembers the identity learnt at `identity.endpoint` under `stamp` at `now_ms`.
    pub fn remember_engine(
        &mut self,
        identity: &EngineIdentity,
        stamp: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO endpoints (endpoint, stamp, engine, name, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (endpoint) DO UPDATE SET stamp = excluded.stamp,
                    engine = excluded.engine, name = excluded.name,
                    checked_at = excluded.checked_at",
            )
            .and_then(|mut s| {
                s.execute(params![identity.endpoint, stamp, identity.id, identity.name, now_ms])
            })
            .map(drop)
            .map_err(|e| self.err(&e))
    }
}

impl Store {
    /// Visits the events after log position `after_seq`, in log order, with their positions and
    /// unique IDs; stops when `visit` returns `false` (the spool's unsent events).
    pub fn export_after(
        &self,
        after_seq: i64,
        visit: &mut dyn FnMut(i64, &str, &Event) -> bool,
    ) -> Result<(), LedgerError> {
        let sql = format!("SELECT {COLUMNS}, uid FROM events WHERE seq > ?1 ORDER BY seq");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let mut rows = stmt.query(params![after_seq]).map_err(|e| self.err(&e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(&e))? {
            let r = read_row(row).map_err(|e| self.err(&e))?;
            let uid: String = row.get(19).map_err(|e| self.err(&e))?;
            if !visit(r.seq, &uid, &r.event) {
                break;
            }
        }
        Ok(())
    }

    /// The number stored under `key` in `meta` (the spool's marks), if any.
    pub fn spool_mark(&self, key: &str) -> Result<Option<i64>, LedgerError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(&e))
    }

    /// Stores `value` under `key` in `meta`, never moving it back (two processes may send the
    /// spool at once).
    pub fn set_spool_mark(&mut self, key: &str, value: i64) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                params![key, value],
            )
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// The fleet rows of this ledger, counted in the database ([`super::FLEET_SQL`]).
    fn fleet_rows(&self, since_ms: i64) -> Result<Vec<super::FleetRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, name, (SELECT max(at) FROM events WHERE engine = id) FROM engines
                 ORDER BY name, id",
            )
            .map_err(|e| self.err(&e))?;
        let engines: Vec<(String, String, Option<i64>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(|e| self.err(&e))?;
        let sql = super::FLEET_SQL.replace("$1", "?1").replace("$2", "?2");
        let mut counts = self.conn.prepare_cached(&sql).map_err(|e| self.err(&e))?;
        let host = super::postgres::hostname();
        let mut rows = Vec::new();
        for (id, name, last_seen_ms) in engines.into_iter().filter(|e| e.2.is_some()) {
            let n: [i64; 5] = counts
                .query_row(params![id, since_ms], |r| {
                    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
                })
                .map_err(|e| self.err(&e))?;
            rows.push(super::FleetRow::counted(id, name, host.clone(), last_seen_ms, n));
        }
        Ok(rows)
    }
}

/// Where an import's events come from: the next event with its unique ID, `None` at the end, or
/// a one-line error naming the bad input (which rolls the import back).
pub type Source<'a> = dyn FnMut() -> Result<Option<(String, Event)>, String> + 'a;

/// What `imgguard ledger stats` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Events in the log.
    pub events: i64,
    /// Tags with a current state.
    pub tags: i64,
    /// Engines with events.
    pub engines: i64,
    /// The database and its WAL, in bytes.
    pub size_bytes: u64,
    /// The oldest event's time (ms since the epoch).
    pub oldest_ms: Option<i64>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Events appended.
    pub added: u64,
    /// Events already in the ledger (same ID), skipped.
    pub skipped: u64,
}

/// Inserts one event (with `uid`, or a new random one) and moves its tag's current state;
/// The `meta` key of an engine's watch cursor.
fn watch_key(engine: &str) -> String {
    format!("watch_cursor:{engine}")
}

/// Whether the ledger already has what `e` says (`[ref:watch-duplicate]`): for a tag move,
/// [`crate::core::watch::move_recorded`] over the tag's current state and last moves; a removal
/// of the image recorded lately; or the same event (kind, image, time, words) for the rest.
/// Index lookups: the cost does not grow with the ledger.
fn already_recorded(conn: &Connection, e: &Event) -> rusqlite::Result<bool> {
    use crate::core::watch::{move_recorded, removal_window_start, RECENT_MOVES};
    if let (Some(tag), true) = (e.tag.as_deref(), e.is_pointer()) {
        let now: Option<Option<String>> = conn
            .prepare_cached("SELECT image_id FROM tag_state WHERE engine = ?1 AND tag = ?2")?
            .query_row(params![e.engine, tag], |r| r.get(0))
            .optional()?;
        let recent: Vec<(Option<String>, i64)> = conn
            .prepare_cached(concat!(
                "SELECT image_id, at FROM events WHERE tag = ?1 AND engine = ?2 AND ",
                pointer_sql!(),
                " ORDER BY seq DESC LIMIT ?3"
            ))?
            .query_map(params![tag, e.engine, RECENT_MOVES], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        return Ok(move_recorded(e, now.as_ref().map(Option::as_deref), &recent));
    }
    let Some(image) = e.image_id.as_deref() else { return Ok(false) };
    if e.kind == EventKind::Removed {
        return conn
            .prepare_cached(
                "SELECT 1 FROM events WHERE image_id = ?1 AND engine = ?2 AND kind = 'removed'
                    AND at >= ?3 LIMIT 1",
            )?
            .exists(params![image, e.engine, removal_window_start(e)]);
    }
    conn.prepare_cached(
        "SELECT 1 FROM events WHERE image_id = ?1 AND engine = ?2 AND kind = ?3 AND at = ?4
            AND reason IS ?5 LIMIT 1",
    )?
    .exists(params![image, e.engine, e.kind.as_str(), e.at_ms, e.reason_text()])
}

/// Records `engine` (first seen at `at`), or what is new about it.
fn upsert_engine(conn: &Connection, engine: &EngineIdentity, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO engines (id, name, endpoint, first_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, endpoint = excluded.endpoint",
    )?
    .execute(params![engine.id, engine.name, engine.endpoint, at])
    .map(drop)
}

/// `false` when an event with that ID is already there.
fn insert_event(conn: &Connection, uid: Option<&str>, e: &Event) -> rusqlite::Result<bool> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (engine, at, kind, tag, image_id, previous_id, outcome,
            reason, git_commit, git_dirty, dockerfile_sha256, build_arg_names,
            archive_path, archive_sha256, archive_size, imgguard_version, reason_kind, uid,
            image_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
            ?17, coalesce(?18, lower(hex(randomblob(16)))), ?19)
         ON CONFLICT (uid) DO NOTHING",
    )?;
    let b = e.build.as_ref();
    let a = e.archive.as_ref();
    let names = b
        .filter(|b| !b.build_arg_names.is_empty())
        .map(|b| serde_json::to_string(&b.build_arg_names).unwrap_or_default());
    let added = insert.execute(params![
        e.engine,
        e.at_ms,
        e.kind.as_str(),
        e.tag,
        e.image_id,
        e.previous_id,
        e.outcome.map(Outcome::as_str),
        e.reason.as_ref().map(|r| r.text.as_str()),
        b.and_then(|b| b.git_commit.as_deref()),
        b.and_then(|b| b.git_dirty),
        b.and_then(|b| b.dockerfile_sha256.as_deref()),
        names,
        a.and_then(|a| a.path.as_deref()),
        a.and_then(|a| a.sha256.as_deref()),
        a.and_then(|a| a.size),
        e.imgguard_version,
        e.reason.as_ref().map(|r| r.kind.as_str()),
        uid,
        e.image_size,
    ])?;
    if added == 0 {
        return Ok(false);
    }
    if let (Some(tag), true) = (e.tag.as_deref(), e.is_pointer()) {
        conn.prepare_cached(
            "INSERT INTO tag_state (engine, tag, image_id, seq, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (engine, tag) DO UPDATE SET image_id = excluded.image_id,
                seq = excluded.seq, at = excluded.at
             WHERE (excluded.at, excluded.seq) > (tag_state.at, tag_state.seq)",
        )?
        .execute(params![e.engine, tag, e.image_id, conn.last_insert_rowid(), e.at_ms])?;
    }
    Ok(true)
}

/// What `explain` needs about `image_ids` on `engine`, by seq: every event naming one of the
/// images, and, for each time a tag pointed at one, the next pointer event of that tag that left
/// it (to another image, or none). Fed to [`crate::core::dangling::explain`] it gives the same
/// answer for those images as the whole log: each tag's events are a subsequence of its log that
/// keeps, after each pointer at the image, the first pointer elsewhere.
fn evidence(
    conn: &Connection,
    engine: &str,
    image_ids: &[&str],
) -> rusqlite::Result<BTreeMap<i64, Recorded>> {
    let mut naming = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE image_id = ?1 AND engine = ?2 ORDER BY seq"
    ))?;
    let mut left = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events
         WHERE tag = ?1 AND engine = ?2 AND (at > ?5 OR at = ?5 AND seq > ?3)
            AND (image_id IS NULL OR image_id <> ?4) AND {}
         ORDER BY at, seq LIMIT 1",
        pointer_sql!()
    ))?;
    let mut out = BTreeMap::new();
    for id in image_ids {
        let rows: Vec<Recorded> =
            naming.query_map(params![id, engine], read_row)?.collect::<Result<_, _>>()?;
        crate::core::event::evidence_walk(rows, &mut out, |tag, r| {
            left.query_row(params![tag, engine, r.seq, id, r.event.at_ms], read_row).optional()
        })?;
    }
    Ok(out)
}

/// The columns every query reads, in [`read_row`]'s order.
const COLUMNS: &str =
    "seq, engine, at, kind, tag, image_id, previous_id, outcome, reason, git_commit,
    git_dirty, dockerfile_sha256, build_arg_names, archive_path, archive_sha256, archive_size,
    imgguard_version, reason_kind, image_size";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Recorded> {
    fn parsed<T: std::str::FromStr<Err = String>>(
        r: &rusqlite::Row<'_>,
        i: usize,
    ) -> rusqlite::Result<Option<T>> {
        let text: Option<String> = r.get(i)?;
        text.map(|t| t.parse::<T>())
            .transpose()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into()))
    }
    let kind = parsed(r, 3)?.ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(3, Type::Null, "no kind".into())
    })?;
    let names: Option<String> = r.get(12)?;
    let reason: Option<String> = r.get(8)?;
    let reason_kind: Option<ReasonKind> = parsed(r, 17)?;
    let build = BuildFacts {
        git_commit: r.get(9)?,
        git_dirty: r.get(10)?,
        dockerfile_sha256: r.get(11)?,
        build_arg_names: names.and_then(|n| serde_json::from_str(&n).ok()).unwrap_or_default(),
    };
    let archive = ArchiveFacts { path: r.get(13)?, sha256: r.get(14)?, size: r.get(15)? };
    let mut event = Event::new(&r.get::<_, String>(1)?, r.get(2)?, kind);
    event.tag = r.get(4)?;
    event.image_id = r.get(5)?;
    event.previous_id = r.get(6)?;
    event.outcome = parsed(r, 7)?;
    event.reason =
        reason.map(|text| Reason { kind: reason_kind.unwrap_or(ReasonKind::Other), text });
    event.build = (build != BuildFacts::default()).then_some(build);
    event.archive = (archive != ArchiveFacts::default()).then_some(archive);
    event.imgguard_version = r.get(16)?;
    event.image_size = r.get(18)?;
    Ok(Recorded { seq: r.get(0)?, event })
}

/// Refuses a database that another program made, before anything in it is changed (not even the
/// journal mode): an imgguard ledger is empty or has imgguard's own tables.
fn check_is_ours(conn: &Connection) -> Result<(), String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .map_err(|e| one_line(&e))?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(|e| format!("not a readable SQLite database ({})", one_line(&e)))?;
    let ours = ["endpoints", "engines", "events", "meta", "sqlite_sequence", "tag_state"];
    let foreign: Vec<&str> =
        tables.iter().map(String::as_str).filter(|t| !ours.contains(t)).collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = foreign.iter().copied().take(3).collect();
    Err(format!(
        "not an imgguard ledger (it has other tables: {}{}); move it away or set IMGGUARD_HOME",
        shown.join(", "),
        if foreign.len() > 3 { ", …" } else { "" }
    ))
}

/// Takes the prune lock beside the ledger at `ledger` (a file `ledger.prune.lock`, mode 0600):
/// `None` when another process holds it. Without `create`, a missing lock file means nobody
/// holds it, and nothing is created.
pub(crate) fn prune_lock(
    ledger: &Path,
    create: bool,
) -> Result<Option<super::PruneLock>, LedgerError> {
    let path = ledger.with_extension("prune.lock");
    let err = |e: std::io::Error| LedgerError::Db {
        path: path.clone(),
        message: format!("cannot take the prune lock: {e}"),
    };
    let file =
        match OpenOptions::new().create(create).truncate(false).write(true).mode(0o600).open(&path)
        {
            Ok(f) => f,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(super::PruneLock::new(())));
            }
            Err(e) => return Err(err(e)),
        };
    match file.try_lock() {
        Ok(()) => Ok(Some(super::PruneLock::new(file))),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
    }
}

fn one_line(e: &rusqlite::Error) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl super::Ledger for Store {
    /// Left open: every commit is in the WAL, which the next opener reads, and with
    /// `NO_CKPT_ON_CLOSE` a close would not checkpoint it either. What a close does beyond that
    /// (finalize the statements, unmap the `-shm`, close three files) the exit does, and it
    /// costs ~0.2 ms at the end of every build. SQLite takes a process that ends with the
    /// database open as it takes a crash: safely.
    fn end_with_process(self: Box<Self>) {
        std::mem::forget(self);
    }

    fn defer_housekeeping(&mut self) {
        // This connection's commits no longer checkpoint; the next command's first commit that
        // finds the WAL past the threshold does. Best effort: the setting cannot fail on an open
        // connection, and if it did the commit would only be slower.
        let _ = self.conn.pragma_update(None, "wal_autocheckpoint", 0);
    }

    fn append(&mut self, engine: &EngineIdentity, events: &[Event]) -> Result<(), LedgerError> {
        Store::append(self, engine, events)
    }

    fn tag_events(
        &self,
        engine: Option<&str>,
        tags: &[&str],
    ) -> Result<Vec<Recorded>, LedgerError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        self.events(engine, tags)
    }

    fn tag_heads(&self, engine: &str, tags: &[&str]) -> Result<Vec<Recorded>, LedgerError> {
        self.heads(engine, tags)
    }

    fn all_events(&self, engine: Option<&str>) -> Result<Vec<Recorded>, LedgerError> {
        self.all(engine)
    }

    fn tracked_tags(&self, engine: &str) -> Result<Vec<(String, Option<String>)>, LedgerError> {
        Store::tracked_tags(self, engine)
    }

    fn evidence(&self, engine: &str, image_ids: &[&str]) -> Result<Vec<Recorded>, LedgerError> {
        Store::evidence(self, engine, image_ids)
    }

    fn stats(&self) -> Result<Stats, LedgerError> {
        Store::stats(self)
    }

    fn export(&self, visit: &mut dyn FnMut(&str, &Event) -> bool) -> Result<(), LedgerError> {
        Store::export(self, visit)
    }

    fn import(&mut self, next: &mut Source<'_>) -> Result<Imported, LedgerError> {
        Store::import(self, next)
    }

    fn compact(
        &mut self,
        engine: &str,
        before_ms: i64,
        daemon_images: &[&str],
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        Store::compact(self, engine, before_ms, daemon_images, now_ms)
    }

    fn vacuum(&mut self) -> Result<(), LedgerError> {
        Store::vacuum(self)
    }

    fn append_watched(
        &mut self,
        engine: &EngineIdentity,
        events: &[Event],
        cursor_ns: i64,
    ) -> Result<Vec<Event>, LedgerError> {
        Store::append_watched(self, engine, events, cursor_ns)
    }

    fn watch_cursor(&self, engine: &str) -> Result<Option<i64>, LedgerError> {
        Store::watch_cursor(self, engine)
    }

    fn compacted_at(&self) -> Result<Option<i64>, LedgerError> {
        Store::compacted_at(self)
    }

    fn cached_engine(
        &self,
        endpoint: &str,
        stamp: &str,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Result<Option<EngineIdentity>, LedgerError> {
        Store::cached_engine(self, endpoint, stamp, now_ms, max_age_ms)
    }

    fn remember_engine(
        &mut self,
        identity: &EngineIdentity,
        stamp: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        Store::remember_engine(self, identity, stamp, now_ms)
    }

    fn deferred(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        Store::deferred(self, engine)
    }

    fn open_intents(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        Store::open_intents(self, engine)
    }

    fn interrupted_runs(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        Store::interrupted_runs(self, engine)
    }

    fn image_events(&self, engine: &str, image_id: &str) -> Result<Vec<Recorded>, LedgerError> {
        Store::image_events(self, engine, image_id)
    }

    fn engine_name(&self, id: &str) -> Result<Option<String>, LedgerError> {
        Store::engine_name(self, id)
    }

    fn prune_lock(&self) -> Result<Option<super::PruneLock>, LedgerError> {
        prune_lock(&self.path, true)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn fleet(&self, since_ms: i64) -> Result<Vec<super::FleetRow>, LedgerError> {
        self.fleet_rows(since_ms)
    }

    fn fleet_image_events(
        &self,
        image_id: &str,
        archive_sha256: Option<&str>,
    ) -> Result<Vec<Recorded>, LedgerError> {
        Store::fleet_image_events(self, image_id, archive_sha256)
    }

    fn engine_hosts(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        // One host: this one.
        let host = super::postgres::hostname();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM engines ORDER BY id")
            .map_err(|e| self.err(&e))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, host.clone())));
        rows.and_then(Iterator::collect).map_err(|e| self.err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn engine() -> EngineIdentity {
        EngineIdentity { id: "E".into(), name: "host".into(), endpoint: "unix:///s".into() }
    }

    #[test]
    fn creates_private_file_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub/ledger.db");
        let mut store = Store::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let facts = BuildFacts {
            git_dirty: Some(true),
            build_arg_names: vec!["VERSION".into()],
            ..BuildFacts::default()
        };
        let mut e = Event::build("E", 5, "x:v1", "sha256:a", None, &facts);
        e.reason = Some(Reason::new(ReasonKind::InUse, "used by container web (running)"));
        store.append(&engine(), &[e.clone()]).unwrap();
        let got = store.events(Some("E"), &["x:v1"]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event, e);
        assert_eq!(store.engine_name("E").unwrap().as_deref(), Some("host"));
    }

    /// The frames the WAL beside `db` has room for: its high-water mark since it last restarted.
    fn wal_frames(db: &Path) -> u64 {
        let len = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
        len.saturating_sub(32) / (4096 + 24)
    }

    #[test]
    fn deferred_housekeeping_leaves_the_checkpoint_to_a_later_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let commits = |store: &mut Store| {
            for i in 0..80 {
                let e = Event::build(
                    "E",
                    i,
                    &format!("x{i}:v1"),
                    &format!("sha256:{i}"),
                    None,
                    &BuildFacts::default(),
                );
                store.append(&engine(), &[e]).unwrap();
            }
        };
        let (plain, deferred) = (tmp.path().join("a/ledger.db"), tmp.path().join("b/ledger.db"));
        commits(&mut Store::open(&plain).unwrap());
        let mut store = Store::open(&deferred).unwrap();
        super::super::Ledger::defer_housekeeping(&mut store);
        commits(&mut store);
        // Checkpointed past 64 frames, the WAL restarts: it never holds much more than that.
        // Deferred, every commit's frames are still in it.
        let (plain, deferred) = (wal_frames(&plain), wal_frames(&deferred));
        assert!(plain < 100, "plain WAL: {plain} frames");
        assert!(deferred > 3 * plain, "deferred WAL: {deferred} frames (plain: {plain})");
        // A later command's connection checkpoints as before: its first commit writes the
        // deferred pages back into the database file.
        drop(store);
        let path = tmp.path().join("b/ledger.db");
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let mut store = Store::open(&path).unwrap();
        let e = Event::build("E", 99, "y:v1", "sha256:y", None, &BuildFacts::default());
        store.append(&engine(), &[e]).unwrap();
        assert!(size() > before, "database file {before} -> {} bytes", size());
    }

    #[test]
    fn the_sql_pointer_condition_is_is_pointer() {
        let conn = Connection::open_in_memory().unwrap();
        for kind in EventKind::ALL {
            for outcome in [None, Some(Outcome::NotInDaemon), Some(Outcome::Nameless)] {
                let mut e = Event::new("E", 0, *kind);
                e.outcome = outcome;
                let sql =
                    format!("SELECT {} FROM (SELECT ?1 AS kind, ?2 AS outcome)", pointer_sql!());
                let got: bool = conn
                    .query_row(&sql, params![kind.as_str(), outcome.map(Outcome::as_str)], |r| {
                        r.get(0)
                    })
                    .unwrap();
                assert_eq!(got, e.is_pointer(), "{kind} {outcome:?}");
            }
        }
    }

    #[test]
    fn version_2_ledgers_migrate_with_ids_and_current_state() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ledger.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        for (seq, kind, image, outcome) in [
            (1, "build", "A", None),
            (2, "build", "B", None),
            (3, "build", "C", Some("not-in-daemon")),
            (4, "save", "D", None),
        ] {
            conn.execute(
                "INSERT INTO events (seq, engine, at, kind, tag, image_id, outcome,
                    imgguard_version) VALUES (?1, 'E', ?1, ?2, 'x:v1', ?3, ?4, '0')",
                params![seq, kind, image, outcome],
            )
            .unwrap();
        }
        drop(conn);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.tracked_tags("E").unwrap(), [("x:v1".to_string(), Some("B".to_string()))]);
        let mut ids = Vec::new();
        store
            .export(&mut |id, _| {
                ids.push(id.to_string());
                true
            })
            .unwrap();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "every old event got its own ID");
        assert!(ids.iter().all(|i| i.len() == 32));
    }

    #[test]
    fn the_engine_identity_is_cached_per_endpoint_and_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = Store::open(&tmp.path().join("l.db")).unwrap();
        assert_eq!(store.cached_engine("unix:///s", "st1", 100, 50).unwrap(), None);
        store.remember_engine(&engine(), "st1", 100).unwrap();
        let mut e = engine();
        e.endpoint = "unix:///s".into();
        assert_eq!(store.cached_engine("unix:///s", "st1", 120, 50).unwrap(), Some(e));
        assert_eq!(store.cached_engine("unix:///s", "st2", 120, 50).unwrap(), None, "restarted");
        assert_eq!(store.cached_engine("unix:///s", "st1", 151, 50).unwrap(), None, "too old");
        assert_eq!(store.cached_engine("unix:///t", "st1", 120, 50).unwrap(), None);
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ledger.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Store::open(&path).unwrap_err().to_string();
        assert!(e.contains("schema version 99 is newer"), "{e}");
    }

    #[test]
    fn tag_query_includes_fates_of_its_images() {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = Store::open(&tmp.path().join("l.db")).unwrap();
        let mut b = Event::new("E", 1, EventKind::Build);
        b.tag = Some("x:v1".into());
        b.image_id = Some("A".into());
        let mut other = b.clone();
        other.tag = Some("y:v1".into());
        other.image_id = Some("C".into());
        let mut removed = Event::new("E", 2, EventKind::Removed);
        removed.image_id = Some("A".into());
        store.append(&engine(), &[b, other, removed]).unwrap();
        let got = store.events(Some("E"), &["x:v1"]).unwrap();
        let kinds: Vec<_> = got.iter().map(|r| r.event.kind).collect();
        assert_eq!(kinds, [EventKind::Build, EventKind::Removed]);
    }

    #[test]
    fn a_foreign_database_is_refused_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ledger.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER, name TEXT);").unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let e = Store::open(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "ledger {}: not an imgguard ledger (it has other tables: customers); move it \
                 away or set IMGGUARD_HOME",
                path.display()
            )
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "not even the journal mode changed");
        assert!(!tmp.path().join("ledger.db-wal").exists());
    }

    #[test]
    fn the_prune_lock_is_private_and_exclusive() {
        use crate::ledger::Ledger;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("ledger.db")).unwrap();
        let held = store.prune_lock().unwrap();
        assert!(held.is_some());
        let other = Store::open(&tmp.path().join("ledger.db")).unwrap();
        assert!(other.prune_lock().unwrap().is_none(), "a second prune must wait");
        let mode = std::fs::metadata(tmp.path().join("ledger.prune.lock")).unwrap().permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
        drop(held);
        assert!(other.prune_lock().unwrap().is_some());
    }
}
