//! The fleet ledger: the same event model as [`super::sqlite`], in a PostgreSQL database that many
//! hosts and daemons share. Every event keeps its engine's identity and the host that wrote it,
//! so one database holds many daemons without mixing their image IDs.
//!
//! Client, and why: `postgres`, the synchronous face of `tokio-postgres` (same maintainers), so
//! that the [`super::Ledger`] trait stays synchronous. That client runs its own small runtime and
//! panics when called from inside another one, and imgguard's commands run inside a tokio
//! runtime; so every call is made on a scoped thread of its own when the calling thread is inside
//! a runtime (`off_runtime`; tens of microseconds, next to a network round trip). TLS is
//! rustls (ring, already in the tree through bollard) verifying the server against the system's
//! root certificates (`rustls-native-certs`); `sslmode` in the URL decides whether TLS is tried
//! (`prefer`, the default), required (`require`) or off (`disable`).
//!
//! Schema: versioned in `schema_version`, migrated forward under an advisory lock (several
//! processes may open a new database at once); a newer schema is a clear error. Writers never
//! lose or duplicate an event: each has a unique `uid` (`ON CONFLICT DO NOTHING`), and a tag's
//! current state (`tag_state`) moves only to a pointer event observed later
//! (`[ref:observed-order]`), whatever the commit order of concurrent writers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use postgres::{Client, Row, Transaction};

use super::sqlite::{Imported, LedgerError, Source, Stats};
use crate::core::event::{
    ArchiveFacts, BuildFacts, Event, EventKind, Outcome, Reason, ReasonKind, Recorded,
};
use crate::core::image::EngineIdentity;

/// The SQL condition that an event moves a tag's pointer (as in the SQLite backend).
const POINTER_SQL: &str = "kind IN ('build', 'load', 'tag', 'untag', 'moved-outside') \
     AND (outcome IS NULL OR outcome <> 'not-in-daemon')";

/// Forward migrations; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE engines (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    host       TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE TABLE events (
    seq               BIGSERIAL PRIMARY KEY,
    uid               TEXT NOT NULL,
    engine            TEXT NOT NULL,
    host              TEXT NOT NULL,
    at                BIGINT NOT NULL,
    kind              TEXT NOT NULL,
    tag               TEXT,
    image_id          TEXT,
    previous_id       TEXT,
    outcome           TEXT,
    reason            TEXT,
    git_commit        TEXT,
    git_dirty         BOOLEAN,
    dockerfile_sha256 TEXT,
    build_arg_names   TEXT,
    archive_path      TEXT,
    archive_sha256    TEXT,
    archive_size      BIGINT,
    imgguard_version  TEXT NOT NULL,
    reason_kind       TEXT
);
CREATE UNIQUE INDEX events_by_uid ON events (uid);
CREATE INDEX events_by_tag ON events (tag, engine, seq);
CREATE INDEX events_by_image ON events (image_id, engine, seq);
CREATE INDEX events_by_at ON events (at);
CREATE INDEX events_by_reason ON events (engine, reason_kind);
CREATE INDEX events_by_archive ON events (archive_sha256) WHERE archive_sha256 IS NOT NULL;
CREATE INDEX events_interrupted ON events (engine)
    WHERE kind = 'intent' AND outcome = 'interrupted';
CREATE TABLE tag_state (
    engine   TEXT NOT NULL,
    tag      TEXT NOT NULL,
    image_id TEXT,
    seq      BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (engine, tag)
);
CREATE TABLE endpoints (
    endpoint   TEXT PRIMARY KEY,
    stamp      TEXT NOT NULL,
    engine     TEXT NOT NULL,
    name       TEXT NOT NULL,
    checked_at BIGINT NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
",
    // The size of the image an event decided about (its fate), for `imgguard fleet`'s bytes.
    r"
ALTER TABLE events ADD COLUMN image_size BIGINT;
",
];

/// The advisory lock key that serialises migrations (any constant; "imgguard" in ASCII).
const MIGRATION_LOCK: i64 = 0x696D_6767_7561_7264;

/// Events sent to the server per statement (arrays of this many rows).
const BATCH: usize = 2000;

/// The columns every query reads, in [`read_row`]'s order.
const COLUMNS: &str =
    "seq, engine, at, kind, tag, image_id, previous_id, outcome, reason, git_commit,
    git_dirty, dockerfile_sha256, build_arg_names, archive_path, archive_sha256, archive_size,
    imgguard_version, reason_kind, image_size";

/// An open fleet ledger: one session per process.
pub struct Store {
    client: Mutex<Option<Client>>,
    /// The URL without its password, for messages.
    shown: String,
    /// The host this process runs on, recorded with each event.
    host: String,
    /// The local SQLite ledger beside which the prune lock lives (a prune is per host).
    local: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.shown)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Runs `f` where the synchronous client may block: on this thread when it is outside any tokio
/// runtime, else on a scoped thread of its own.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
}

/// The connection settings of `url`, with the password from `PGPASSWORD` or the password file
/// (`PGPASSFILE`, else `~/.pgpass`) when the URL has none; `env` looks up a variable.
pub fn config(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<postgres::Config, String> {
    let mut config: postgres::Config =
        url.parse().map_err(|e| format!("not a PostgreSQL URL ({e})"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("imgguard");
    }
    if config.get_user().is_none() {
        if let Some(user) = env("PGUSER").or_else(|| env("USER")) {
            config.user(&user);
        }
    }
    if config.get_password().is_none() {
        if let Some(password) = env("PGPASSWORD") {
            config.password(password);
        } else if let Some(password) = passfile_password(&config, env) {
            config.password(password);
        }
    }
    Ok(config)
}

/// The password for `config` in the password file, if there is one that matches.
fn passfile_password(
    config: &postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(_)) | None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    passfile_lookup(&text, [&host, &port, db, user])
}

/// The password of the first line of a `.pgpass` text (`host:port:db:user:password`, `*` a
/// wildcard, `\` escapes) that matches `wanted`.
pub(crate) fn passfile_lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut fields = Vec::with_capacity(5);
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() == 5 && fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return fields.pop();
        }
    }
    None
}

/// The URL as shown in messages: without a password.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, tail) = rest.split_once('@').map_or(("", rest), |(a, t)| (a, t));
    let user = auth.split(':').next().unwrap_or_default();
    if auth.is_empty() {
        format!("{scheme}://{tail}")
    } else {
        format!("{scheme}://{user}@{tail}")
    }
}

/// Whether `url` carries a password (`postgres://user:secret@host/db` or `password=` in its
/// query).
pub fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = rest.split_once('@').map_or("", |(a, _)| a);
    auth.contains(':')
        || rest
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("password=")))
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The name of the host this process runs on.
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

impl Store {
    /// Connects to the database at `url` (password sources as [`config`]) and migrates it;
    /// `local` is the local ledger's path (the prune lock lives beside it).
    pub fn open(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
        local: &Path,
    ) -> Result<Store, LedgerError> {
        let shown = shown_url(url);
        let err = |message: String| LedgerError::Db { path: PathBuf::from(&shown), message };
        let config = config(url, env).map_err(err)?;
        let tls = tls().map_err(err)?;
        let client = off_runtime(move || config.connect(tls)).map_err(|e| err(pg_line(&e)))?;
        let store = Store {
            client: Mutex::new(Some(client)),
            shown: shown.clone(),
            host: hostname(),
            local: local.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// A new event ID (32 hex digits, as the server's): this host, process, time and position.
    fn new_uid(&self, i: usize) -> String {
        use sha2::{Digest, Sha256};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!("{}:{}:{nanos}:{i}", self.host, std::process::id());
        hex::encode(&Sha256::digest(seed.as_bytes())[..16])
    }

    /// Whether the session to the database is lost (the server stopped or the network broke).
    fn gone(&self) -> bool {
        let guard = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.as_ref().is_none_or(Client::is_closed)
    }

    /// The URL, without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn err(&self, e: &Fail) -> LedgerError {
        LedgerError::Db { path: PathBuf::from(&self.shown), message: fail_line(e) }
    }

    /// Runs `f` with the session, off any tokio runtime.
    fn with<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, Fail> + Send,
    ) -> Result<T, LedgerError> {
        let mut guard = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let client = guard.as_mut().expect("the session lives as long as the store");
        off_runtime(|| f(client)).map_err(|e| self.err(&e))
    }

    /// Runs `f` in a transaction, again when the server aborts it for a deadlock or a
    /// serialisation failure (concurrent writers).
    fn transaction<T: Send>(
        &self,
        f: impl Fn(&mut Transaction<'_>) -> Result<T, postgres::Error> + Send + Sync,
    ) -> Result<T, LedgerError> {
        self.with(|client| {
            let mut tries = 0;
            loop {
                let mut tx = client.transaction()?;
                match f(&mut tx).and_then(|t| tx.commit().map(|()| t)) {
                    Err(e) if tries < 5 && retryable(&e) => tries += 1,
                    other => return other.map_err(Fail::from),
                }
            }
        })
    }

    fn migrate(&self) -> Result<(), LedgerError> {
        let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        let found = self.with(|client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )?;
            let found: i32 =
                tx.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?.get(0);
            if found > known {
                return Ok(found);
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0))
            {
                tx.batch_execute(sql)?;
                let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
                tx.execute("DELETE FROM schema_version", &[])?;
                tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&v])?;
            }
            tx.commit()?;
            Ok(found)
        })?;
        if found > known {
            return Err(LedgerError::TooNew {
                path: PathBuf::from(&self.shown),
                found: i64::from(found),
                known: i64::from(known),
            });
        }
        Ok(())
    }

    /// Appends events (with their IDs, or new ones), skipping IDs already there, and moves the
    /// current state of their tags; `engine` is recorded (or its last sighting moved).
    fn insert(
        &self,
        engine: Option<&EngineIdentity>,
        events: &[(Option<String>, Event)],
    ) -> Result<u64, LedgerError> {
        let host = self.host.clone();
        self.transaction(|tx| insert_batch(tx, &host, engine, events))
    }

    fn query(&self, sql: &str, params: Vec<Param>) -> Result<Vec<Recorded>, LedgerError> {
        let sql = sql.to_string();
        self.with(move |c| {
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                params.iter().map(Param::as_sql).collect();
            c.query(&sql, &refs)?.iter().map(read_row).collect()
        })
    }

    /// The events that name `image_id` on any engine, or that record an archive with
    /// `archive_sha256`, with the pointer events of the images those archives held.
    fn fleet_image(
        &self,
        image_id: &str,
        archive_sha256: Option<&str>,
    ) -> Result<Vec<Recorded>, LedgerError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE image_id = $1 OR image_id IN
                    (SELECT image_id FROM events WHERE archive_sha256 = $2)
                 ORDER BY seq"
            ),
            vec![Param::Text(image_id.into()), Param::Opt(archive_sha256.map(String::from))],
        )
    }

    /// One row per engine, for `imgguard fleet`: see [`super::FleetRow`].
    fn fleet_rows(&self, since_ms: i64) -> Result<Vec<super::FleetRow>, LedgerError> {
        let engines = self.with(|c| {
            Ok(c.query(
                "SELECT id, name, host, last_seen FROM engines ORDER BY host, name, id",
                &[],
            )?)
        })?;
        let mut rows = Vec::new();
        for e in engines {
            let id: String = e.get(0);
            let engine = id.clone();
            let n =
                self.with(move |c| Ok(c.query_one(super::FLEET_SQL, &[&engine, &since_ms])?))?;
            let counts: [i64; 5] = std::array::from_fn(|i| n.get(i));
            rows.push(super::FleetRow::counted(id, e.get(1), e.get(2), Some(e.get(3)), counts));
        }
        Ok(rows)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The client's own runtime must not be dropped inside another runtime.
        if let Some(client) =
            self.client.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            off_runtime(move || drop(client));
        }
    }
}

/// A query parameter that can cross to the client's thread.
enum Param {
    Text(String),
    Opt(Option<String>),
    Texts(Vec<String>),
}

impl Param {
    fn as_sql(&self) -> &(dyn postgres::types::ToSql + Sync) {
        match self {
            Param::Text(t) => t,
            Param::Opt(t) => t,
            Param::Texts(t) => t,
        }
    }
}

fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// An error of a database call: the server's or the client's, or a row this imgguard cannot
/// read.
type Fail = Box<dyn std::error::Error + Send + Sync>;

fn fail_line(e: &Fail) -> String {
    match e.downcast_ref::<postgres::Error>() {
        Some(pg) => pg_line(pg),
        None => e.to_string(),
    }
}

fn pg_line(e: &postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Inserts `events` in batches of [`BATCH`] rows and moves `tag_state`: returns how many were
/// new.
fn insert_batch(
    tx: &mut Transaction<'_>,
    host: &str,
    engine: Option<&EngineIdentity>,
    events: &[(Option<String>, Event)],
) -> Result<u64, postgres::Error> {
    // Engines first, in a fixed order: every writer of an engine takes its row lock before any
    // tag of it, so that concurrent writers queue instead of deadlocking.
    let mut seen: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (_, e) in events {
        let span = seen.entry(&e.engine).or_insert((e.at_ms, e.at_ms));
        *span = (span.0.min(e.at_ms), span.1.max(e.at_ms));
    }
    if let Some(id) = engine {
        let at = events.first().map_or(0, |(_, e)| e.at_ms);
        let span = seen.get(id.id.as_str()).copied().unwrap_or((at, at));
        tx.execute(
            "INSERT INTO engines (id, name, endpoint, host, first_seen, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, endpoint = excluded.endpoint,
                host = excluded.host, last_seen = greatest(engines.last_seen, excluded.last_seen)",
            &[&id.id, &id.name, &id.endpoint, &host, &span.0, &span.1],
        )?;
    }
    for (id, (first, last)) in &seen {
        if engine.is_some_and(|e| e.id == *id) {
            continue;
        }
        tx.execute(
            "INSERT INTO engines (id, name, endpoint, host, first_seen, last_seen)
             VALUES ($1, '', '', $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET last_seen = greatest(engines.last_seen, $4)",
            &[id, &host, first, last],
        )?;
    }
    let insert = tx.prepare(
        "INSERT INTO events (uid, engine, host, at, kind, tag, image_id, previous_id, outcome,
            reason, git_commit, git_dirty, dockerfile_sha256, build_arg_names, archive_path,
            archive_sha256, archive_size, imgguard_version, reason_kind, image_size)
         SELECT coalesce(u, replace(gen_random_uuid()::text, '-', '')), en, $19, a, k, t, i, p,
            o, r, gc, gd, ds, bn, ap, ash, asz, v, rk, isz
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[],
            $13::text[], $14::text[], $15::text[], $16::bigint[], $17::text[], $18::text[],
            $20::bigint[])
            WITH ORDINALITY AS x(u, en, a, k, t, i, p, o, r, gc, gd, ds, bn, ap, ash, asz, v,
                rk, isz, n)
         ORDER BY n
         ON CONFLICT (uid) DO NOTHING
         RETURNING seq, engine, tag, image_id, at, kind, outcome",
    )?;
    let mut added = 0;
    let mut moves: BTreeMap<(String, String), (i64, i64, Option<String>)> = BTreeMap::new();
    for chunk in events.chunks(BATCH) {
        let cols = Columns::of(chunk);
        let rows = tx.query(
            &insert,
            &[
                &cols.uid,
                &cols.engine,
                &cols.at,
                &cols.kind,
                &cols.tag,
                &cols.image_id,
                &cols.previous_id,
                &cols.outcome,
                &cols.reason,
                &cols.git_commit,
                &cols.git_dirty,
                &cols.dockerfile_sha256,
                &cols.build_arg_names,
                &cols.archive_path,
                &cols.archive_sha256,
                &cols.archive_size,
                &cols.imgguard_version,
                &cols.reason_kind,
                &host,
                &cols.image_size,
            ],
        )?;
        added += rows.len() as u64;
        for r in rows {
            let kind: String = r.get(5);
            let outcome: Option<String> = r.get(6);
            let pointer = ["build", "load", "tag", "untag", "moved-outside"]
                .contains(&kind.as_str())
                && outcome.as_deref() != Some("not-in-daemon");
            let Some(tag) = r.get::<_, Option<String>>(2).filter(|_| pointer) else { continue };
            let (seq, at): (i64, i64) = (r.get(0), r.get(4));
            let slot = moves.entry((r.get(1), tag)).or_insert((i64::MIN, i64::MIN, None));
            if (at, seq) > (slot.0, slot.1) {
                *slot = (at, seq, r.get(3));
            }
        }
    }
    // Sorted by (engine, tag): concurrent writers take the rows in one order.
    let (mut engines, mut tags, mut images) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seqs, mut ats) = (Vec::new(), Vec::new());
    for ((engine, tag), (at, seq, image)) in moves {
        engines.push(engine);
        tags.push(tag);
        images.push(image);
        seqs.push(seq);
        ats.push(at);
    }
    if !engines.is_empty() {
        tx.execute(
            "INSERT INTO tag_state (engine, tag, image_id, seq, at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
             ON CONFLICT (engine, tag) DO UPDATE SET image_id = excluded.image_id,
                seq = excluded.seq, at = excluded.at
             WHERE (excluded.at, excluded.seq) > (tag_state.at, tag_state.seq)",
            &[&engines, &tags, &images, &seqs, &ats],
        )?;
    }
    Ok(added)
}

/// A batch of events, column by column (the arrays the insert unnests).
#[derive(Default)]
struct Columns {
    uid: Vec<Option<String>>,
    engine: Vec<String>,
    at: Vec<i64>,
    kind: Vec<&'static str>,
    tag: Vec<Option<String>>,
    image_id: Vec<Option<String>>,
    previous_id: Vec<Option<String>>,
    outcome: Vec<Option<&'static str>>,
    reason: Vec<Option<String>>,
    git_commit: Vec<Option<String>>,
    git_dirty: Vec<Option<bool>>,
    dockerfile_sha256: Vec<Option<String>>,
    build_arg_names: Vec<Option<String>>,
    archive_path: Vec<Option<String>>,
    archive_sha256: Vec<Option<String>>,
    archive_size: Vec<Option<i64>>,
    imgguard_version: Vec<String>,
    reason_kind: Vec<Option<&'static str>>,
    image_size: Vec<Option<i64>>,
}

impl Columns {
    fn of(events: &[(Option<String>, Event)]) -> Columns {
        let mut c = Columns::default();
        for (uid, e) in events {
            let b = e.build.clone().unwrap_or_default();
            let a = e.archive.clone().unwrap_or_default();
            c.uid.push(uid.clone());
            c.engine.push(e.engine.clone());
            c.at.push(e.at_ms);
            c.kind.push(e.kind.as_str());
            c.tag.push(e.tag.clone());
            c.image_id.push(e.image_id.clone());
            c.previous_id.push(e.previous_id.clone());
            c.outcome.push(e.outcome.map(Outcome::as_str));
            c.reason.push(e.reason.as_ref().map(|r| r.text.clone()));
            c.git_commit.push(b.git_commit);
            c.git_dirty.push(b.git_dirty);
            c.dockerfile_sha256.push(b.dockerfile_sha256);
            c.build_arg_names.push(
                (!b.build_arg_names.is_empty())
                    .then(|| serde_json::to_string(&b.build_arg_names).unwrap_or_default()),
            );
            c.archive_path.push(a.path);
            c.archive_sha256.push(a.sha256);
            c.archive_size.push(a.size);
            c.imgguard_version.push(e.imgguard_version.clone());
            c.reason_kind.push(e.reason.as_ref().map(|r| r.kind.as_str()));
            c.image_size.push(e.image_size);
        }
        c
    }
}

fn read_row(r: &Row) -> Result<Recorded, Fail> {
    let kind: String = r.try_get(3)?;
    let names: Option<String> = r.try_get(12)?;
    let reason: Option<String> = r.try_get(8)?;
    let reason_kind: Option<String> = r.try_get(17)?;
    let build = BuildFacts {
        git_commit: r.try_get(9)?,
        git_dirty: r.try_get(10)?,
        dockerfile_sha256: r.try_get(11)?,
        build_arg_names: names.and_then(|n| serde_json::from_str(&n).ok()).unwrap_or_default(),
    };
    let archive =
        ArchiveFacts { path: r.try_get(13)?, sha256: r.try_get(14)?, size: r.try_get(15)? };
    let engine: String = r.try_get(1)?;
    let mut event = Event::new(&engine, r.try_get(2)?, kind.parse()?);
    event.tag = r.try_get(4)?;
    event.image_id = r.try_get(5)?;
    event.previous_id = r.try_get(6)?;
    event.outcome = r.try_get::<_, Option<String>>(7)?.and_then(|o| o.parse().ok());
    event.reason = reason.map(|text| Reason {
        kind: reason_kind.and_then(|k| k.parse().ok()).unwrap_or(ReasonKind::Other),
        text,
    });
    event.build = (build != BuildFacts::default()).then_some(build);
    event.archive = (archive != ArchiveFacts::default()).then_some(archive);
    event.imgguard_version = r.try_get(16)?;
    event.image_size = r.try_get(18)?;
    Ok(Recorded { seq: r.try_get(0)?, event })
}

/// What `explain` needs about `image_ids` on `engine` (the same walk as the SQLite backend's).
fn evidence(
    c: &mut impl postgres::GenericClient,
    engine: &str,
    image_ids: &[String],
) -> Result<BTreeMap<i64, Recorded>, Fail> {
    let naming = c.prepare(&format!(
        "SELECT {COLUMNS} FROM events WHERE image_id = $1 AND engine = $2 ORDER BY seq"
    ))?;
    let left = c.prepare(&format!(
        "SELECT {COLUMNS} FROM events
         WHERE tag = $1 AND engine = $2 AND (at > $5 OR at = $5 AND seq > $3)
            AND (image_id IS NULL OR image_id <> $4) AND {POINTER_SQL}
         ORDER BY at, seq LIMIT 1"
    ))?;
    let mut out = BTreeMap::new();
    for id in image_ids {
        let rows: Vec<Recorded> =
            c.query(&naming, &[id, &engine])?.iter().map(read_row).collect::<Result<_, _>>()?;
        crate::core::event::evidence_walk(rows, &mut out, |tag, r| {
            c.query_opt(&left, &[&tag, &engine, &r.seq, id, &r.event.at_ms])?
                .map(|row| read_row(&row))
                .transpose()
        })?;
    }
    Ok(out)
}

/// Whether the ledger already has what a watched event `e` says: the same rule and lookups as the
/// SQLite backend's (`[ref:watch-duplicate]`), by index.
fn already_recorded(tx: &mut Transaction<'_>, e: &Event) -> Result<bool, postgres::Error> {
    use crate::core::watch::{move_recorded, removal_window_start, RECENT_MOVES};
    if let (Some(tag), true) = (e.tag.as_deref(), e.is_pointer()) {
        let now: Option<Option<String>> = tx
            .query_opt(
                "SELECT image_id FROM tag_state WHERE engine = $1 AND tag = $2",
                &[&e.engine, &tag],
            )?
            .map(|r| r.get(0));
        let sql = format!(
            "SELECT image_id, at FROM events WHERE tag = $1 AND engine = $2 AND {POINTER_SQL}
             ORDER BY seq DESC LIMIT $3"
        );
        let recent: Vec<(Option<String>, i64)> = tx
            .query(&sql, &[&tag, &e.engine, &RECENT_MOVES])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        return Ok(move_recorded(e, now.as_ref().map(Option::as_deref), &recent));
    }
    let Some(image) = e.image_id.as_deref() else { return Ok(false) };
    if e.kind == EventKind::Removed {
        return Ok(tx
            .query_opt(
                "SELECT 1 FROM events WHERE image_id = $1 AND engine = $2 AND kind = 'removed'
                    AND at >= $3 LIMIT 1",
                &[&image, &e.engine, &removal_window_start(e)],
            )?
            .is_some());
    }
    Ok(tx
        .query_opt(
            "SELECT 1 FROM events WHERE image_id = $1 AND engine = $2 AND kind = $3 AND at = $4
                AND reason IS NOT DISTINCT FROM $5 LIMIT 1",
            &[&image, &e.engine, &e.kind.as_str(), &e.at_ms, &e.reason_text()],
        )?
        .is_some())
}

impl super::Ledger for Store {
    /// When the database went away during the command (it answered at the start), the events
    /// go to the local spool instead, with one warning line: a build never fails, nor loses its
    /// record, because the fleet ledger is down.
    fn append(&mut self, engine: &EngineIdentity, events: &[Event]) -> Result<(), LedgerError> {
        // The IDs are made here, not by the server: should the commit have reached the database
        // just before the session broke, the spooled copies carry the same IDs and are not
        // taken twice when the spool is sent.
        let rows: Vec<(Option<String>, Event)> =
            events.iter().enumerate().map(|(i, e)| (Some(self.new_uid(i)), e.clone())).collect();
        match self.insert(Some(engine), &rows) {
            Ok(_) => Ok(()),
            Err(e) if self.gone() => {
                crate::ui::note(format!(
                    "warning: fleet ledger {} went away ({e}): recorded in the local spool {} \
                     (sent when it is back, or by `imgguard ledger sync`)",
                    self.shown,
                    self.local.display()
                ));
                let mut local = super::sqlite::Store::open(&self.local)?;
                let mut rows = rows.into_iter();
                local
                    .import(&mut || Ok(rows.next().map(|(uid, e)| (uid.unwrap_or_default(), e))))?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn append_watched(
        &mut self,
        engine: &EngineIdentity,
        events: &[Event],
        cursor_ns: i64,
    ) -> Result<Vec<Event>, LedgerError> {
        let host = self.host.clone();
        self.transaction(|tx| {
            // The engine's row lock first, as every writer takes it: the checks below see what
            // concurrent writers of this engine committed, and none commits meanwhile. Then each
            // event is checked against what is there, the earlier ones of this batch included.
            if let Some(first) = events.first() {
                let at = first.at_ms;
                tx.execute(
                    "INSERT INTO engines (id, name, endpoint, host, first_seen, last_seen)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT (id) DO UPDATE SET last_seen =
                        greatest(engines.last_seen, excluded.last_seen)",
                    &[&engine.id, &engine.name, &engine.endpoint, &host, &at],
                )?;
            }
            let mut added = Vec::new();
            for e in events {
                if !already_recorded(tx, e)?
                    && insert_batch(tx, &host, Some(engine), &[(None, e.clone())])? > 0
                {
                    added.push(e.clone());
                }
            }
            if cursor_ns > 0 {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key)
                     DO UPDATE SET value = greatest(meta.value, excluded.value)",
                    &[&format!("watch_cursor:{}", engine.id), &cursor_ns],
                )?;
            }
            Ok(added)
        })
    }

    fn watch_cursor(&self, engine: &str) -> Result<Option<i64>, LedgerError> {
        let key = format!("watch_cursor:{engine}");
        self.with(move |c| {
            Ok(c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| r.get(0)))
        })
    }

    fn tag_events(
        &self,
        engine: Option<&str>,
        tags: &[&str],
    ) -> Result<Vec<Recorded>, LedgerError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_string()).collect();
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE tag = ANY($1) AND ($2::text IS NULL OR engine = $2)
                 UNION
                 SELECT {COLUMNS} FROM events WHERE kind IN ('removed', 'kept')
                    AND ($2::text IS NULL OR engine = $2) AND image_id IN
                    (SELECT image_id FROM events WHERE tag = ANY($1)
                        AND ($2::text IS NULL OR engine = $2))
                 ORDER BY seq"
            ),
            vec![Param::Texts(tags), Param::Opt(engine.map(String::from))],
        )
    }

    fn tag_heads(&self, engine: &str, tags: &[&str]) -> Result<Vec<Recorded>, LedgerError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_string()).collect();
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE seq IN
                    (SELECT seq FROM tag_state WHERE engine = $1 AND tag = ANY($2))
                 ORDER BY seq"
            ),
            vec![Param::Text(engine.to_string()), Param::Texts(tags)],
        )
    }

    fn all_events(&self, engine: Option<&str>) -> Result<Vec<Recorded>, LedgerError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE ($1::text IS NULL OR engine = $1) ORDER BY seq"
            ),
            vec![Param::Opt(engine.map(String::from))],
        )
    }

    fn deferred(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE engine = $1 AND kind IN ('removed', 'kept')
                   AND image_id IN
                     (SELECT image_id FROM events WHERE engine = $1 AND reason_kind = 'deferred')
                 ORDER BY seq"
            ),
            vec![Param::Text(engine.into())],
        )
    }

    fn open_intents(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE engine = $1 AND reason_kind = 'intent'
                   AND reason IN (SELECT reason FROM events WHERE engine = $1
                     AND reason_kind = 'intent' GROUP BY reason HAVING count(outcome) = 0)
                 ORDER BY seq"
            ),
            vec![Param::Text(engine.into())],
        )
    }

    fn interrupted_runs(&self, engine: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE engine = $1 AND reason_kind = 'intent'
                   AND reason IN (SELECT reason FROM events WHERE engine = $1 AND kind = 'intent'
                     AND outcome = 'interrupted')
                 ORDER BY seq"
            ),
            vec![Param::Text(engine.into())],
        )
    }

    fn tracked_tags(&self, engine: &str) -> Result<Vec<(String, Option<String>)>, LedgerError> {
        let engine = engine.to_string();
        self.with(move |c| {
            let rows = c.query(
                "SELECT tag, image_id FROM tag_state WHERE engine = $1 ORDER BY tag COLLATE \"C\"",
                &[&engine],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn evidence(&self, engine: &str, image_ids: &[&str]) -> Result<Vec<Recorded>, LedgerError> {
        let engine = engine.to_string();
        let ids: Vec<String> = image_ids.iter().map(|i| (*i).to_string()).collect();
        self.with(move |c| Ok(evidence(c, &engine, &ids)?.into_values().collect()))
    }

    fn stats(&self) -> Result<Stats, LedgerError> {
        self.with(|c| {
            let r = c.query_one(
                "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM tag_state),
                    (SELECT count(DISTINCT engine) FROM events), (SELECT min(at) FROM events),
                    pg_total_relation_size('events') + pg_total_relation_size('tag_state')",
                &[],
            )?;
            Ok(Stats {
                events: r.get(0),
                tags: r.get(1),
                engines: r.get(2),
                oldest_ms: r.get(3),
                size_bytes: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
            })
        })
    }

    fn export(&self, visit: &mut dyn FnMut(&str, &Event) -> bool) -> Result<(), LedgerError> {
        let mut after = 0_i64;
        loop {
            let page = self.with(move |c| {
                c.query(
                    &format!(
                        "SELECT {COLUMNS}, uid FROM events WHERE seq > $1 ORDER BY seq LIMIT 10000"
                    ),
                    &[&after],
                )?
                .iter()
                .map(|row| Ok((read_row(row)?, row.try_get::<_, String>(19)?)))
                .collect::<Result<Vec<_>, Fail>>()
            })?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.0.seq;
            for (r, uid) in &page {
                if !visit(uid, &r.event) {
                    return Ok(());
                }
            }
        }
    }

    fn import(&mut self, next: &mut Source<'_>) -> Result<Imported, LedgerError> {
        let host = self.host.clone();
        let mut guard = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let client = guard.as_mut().expect("the session lives as long as the store");
        let (send, receive) = mpsc::sync_channel::<Option<Vec<(Option<String>, Event)>>>(2);
        let shown = self.shown.clone();
        let err = |e: &postgres::Error| LedgerError::Db {
            path: PathBuf::from(&shown),
            message: pg_line(e),
        };
        std::thread::scope(|s| {
            // The transaction lives on its own thread (outside any runtime); this thread reads
            // the input and hands it over in batches. `None` ends it: commit.
            let worker = s.spawn(move || -> Result<(u64, u64), postgres::Error> {
                let mut tx = client.transaction()?;
                let (mut added, mut total) = (0, 0);
                while let Ok(Some(batch)) = receive.recv() {
                    total += batch.len() as u64;
                    added += insert_batch(&mut tx, &host, None, &batch)?;
                }
                tx.commit()?;
                Ok((added, total))
            });
            let mut batch = Vec::with_capacity(BATCH);
            let mut failure = None;
            loop {
                match next() {
                    Ok(Some((uid, event))) => batch.push((Some(uid), event)),
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(LedgerError::Rejected(e));
                        break;
                    }
                }
                if batch.len() == BATCH
                    && send
                        .send(Some(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                        .is_err()
                {
                    break;
                }
            }
            if failure.is_none() {
                let _ = send.send(Some(batch));
                let _ = send.send(None);
            }
            // Without the final `None`, the worker sees the channel close and rolls back.
            drop(send);
            let done = worker.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            if let Some(f) = failure {
                return Err(f);
            }
            let (added, total) = done.map_err(|e| err(&e))?;
            Ok(Imported { added, skipped: total - added })
        })
    }

    fn compact(
        &mut self,
        engine: &str,
        before_ms: i64,
        daemon_images: &[&str],
        now_ms: i64,
    ) -> Result<i64, LedgerError> {
        let engine = engine.to_string();
        let ids: Vec<String> = daemon_images.iter().map(|i| (*i).to_string()).collect();
        // Per host: each runner compacts its own engines, on its own schedule.
        let key = format!("compacted_at:{}", self.host);
        self.with(move |c| {
            let mut tx = c.transaction()?;
            let keep: Vec<i64> = evidence(&mut tx, &engine, &ids)?.into_keys().collect();
            let dropped = tx.execute(
                "DELETE FROM events WHERE engine = $1 AND at < $2 AND NOT (seq = ANY($3))
                    AND seq NOT IN (SELECT seq FROM tag_state)",
                &[&engine, &before_ms, &keep],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &now_ms],
            )?;
            tx.commit()?;
            Ok(i64::try_from(dropped).unwrap_or(i64::MAX))
        })
    }

    fn vacuum(&mut self) -> Result<(), LedgerError> {
        // One statement each: several in one message would run as one transaction.
        self.with(|c| {
            c.batch_execute("VACUUM events")?;
            Ok(c.batch_execute("VACUUM tag_state")?)
        })
    }

    fn compacted_at(&self) -> Result<Option<i64>, LedgerError> {
        let key = format!("compacted_at:{}", self.host);
        self.with(move |c| {
            Ok(c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| r.get(0)))
        })
    }

    fn cached_engine(
        &self,
        endpoint: &str,
        stamp: &str,
        now_ms: i64,
        max_age_ms: i64,
    ) -> Result<Option<EngineIdentity>, LedgerError> {
        // An endpoint (`unix:///var/run/docker.sock`) names a different daemon on each host.
        let key = format!("{} {endpoint}", self.host);
        let (stamp, endpoint) = (stamp.to_string(), endpoint.to_string());
        self.with(move |c| {
            Ok(c.query_opt(
                "SELECT engine, name FROM endpoints
                 WHERE endpoint = $1 AND stamp = $2 AND checked_at > $3 AND checked_at <= $4",
                &[&key, &stamp, &(now_ms - max_age_ms), &now_ms],
            )?
            .map(|r| EngineIdentity { id: r.get(0), name: r.get(1), endpoint }))
        })
    }

    fn remember_engine(
        &mut self,
        identity: &EngineIdentity,
        stamp: &str,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        let key = format!("{} {}", self.host, identity.endpoint);
        let (stamp, id, name) = (stamp.to_string(), identity.id.clone(), identity.name.clone());
        self.with(move |c| {
            c.execute(
                "INSERT INTO endpoints (endpoint, stamp, engine, name, checked_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (endpoint) DO UPDATE SET stamp = excluded.stamp,
                    engine = excluded.engine, name = excluded.name,
                    checked_at = excluded.checked_at",
                &[&key, &stamp, &id, &name, &now_ms],
            )?;
            Ok(())
        })
    }

    fn image_events(&self, engine: &str, image_id: &str) -> Result<Vec<Recorded>, LedgerError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE image_id = $2 AND engine = $1 ORDER BY seq"
            ),
            vec![Param::Text(engine.into()), Param::Text(image_id.into())],
        )
    }

    fn engine_name(&self, id: &str) -> Result<Option<String>, LedgerError> {
        let id = id.to_string();
        self.with(move |c| {
            Ok(c.query_opt("SELECT name FROM engines WHERE id = $1", &[&id])?.map(|r| r.get(0)))
        })
    }

    fn prune_lock(&self) -> Result<Option<super::PruneLock>, LedgerError> {
        // A prune acts on this host's daemon: the lock is the local one.
        super::sqlite::prune_lock(&self.local, true)
    }

    fn location(&self) -> String {
        self.shown.clone()
    }

    fn fleet_image_events(
        &self,
        image_id: &str,
        archive_sha256: Option<&str>,
    ) -> Result<Vec<Recorded>, LedgerError> {
        self.fleet_image(image_id, archive_sha256)
    }

    fn fleet(&self, since_ms: i64) -> Result<Vec<super::FleetRow>, LedgerError> {
        self.fleet_rows(since_ms)
    }

    fn engine_hosts(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        self.with(|c| {
            Ok(c.query("SELECT id, name, host FROM engines ORDER BY id", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_password() {
        assert_eq!(shown_url("postgres://u:secret@db:5432/x"), "postgres://u@db:5432/x");
        assert_eq!(shown_url("postgres://db/x"), "postgres://db/x");
        assert!(has_password("postgres://u:secret@db/x"));
        assert!(has_password("postgres://u@db/x?sslmode=require&password=s"));
        assert!(!has_password("postgres://u@db/x?sslmode=require"));
        assert!(!has_password("postgres://db/x"));
    }

    #[test]
    fn the_password_file_is_read_like_libpq() {
        let text = "# comment\nother:5432:*:u:no\ndb:5432:*:u:p\\:w\n*:*:*:*:fallback\n";
        assert_eq!(passfile_lookup(text, ["db", "5432", "x", "u"]).as_deref(), Some("p:w"));
        assert_eq!(passfile_lookup(text, ["zz", "1", "x", "v"]).as_deref(), Some("fallback"));
        assert_eq!(passfile_lookup("db:5432:x:u:p\n", ["db", "5432", "y", "u"]), None);
    }
}
