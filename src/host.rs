//! The process's surroundings, read in one place: environment variables, the clock, the async
//! runtime, the ledger's opening, and phase tracing (`IMGGUARD_TRACE`). The pure core never
//! comes here; the flow and the commands read the clock once and pass `now` in.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::ledger::{self, Access, Ledger};

/// A single-threaded runtime: imgguard's concurrency is a handful of API calls in flight at once,
/// and a current-thread runtime starts in microseconds.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))
}

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the process for [`trace`].
pub(crate) fn start_clock() {
    STARTED.get_or_init(Instant::now);
}

/// With `IMGGUARD_TRACE` set, prints how long imgguard has run when it reaches `phase`: how the
/// benchmark attributes imgguard's own time.
pub(crate) fn trace(phase: &str) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| env_var("IMGGUARD_TRACE").is_some()) {
        let ms = STARTED.get().map_or(0.0, |s| s.elapsed().as_secs_f64() * 1000.0);
        eprintln!("imgguard-trace: {ms:8.2} ms  {phase}");
    }
}

/// Looks up an environment variable, treating an empty value as unset.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

static FLEET: OnceLock<Option<String>> = OnceLock::new();

/// Chooses the ledger for this process: the fleet ledger whose URL is in `IMGGUARD_LEDGER`
/// (`sqlite` for the local one), else in the configuration (`ledger.url`, or the variable named
/// by `ledger.url_env`), else the local SQLite ledger.
pub(crate) fn select_ledger(config: &crate::config::Config) -> Result<(), Error> {
    let bad = |message: String| Error::Config {
        path: config.path.clone().unwrap_or_else(|| crate::config::FILE_NAME.into()),
        message,
    };
    let postgres = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
    let url = match env_var("IMGGUARD_LEDGER") {
        Some(v) if v == "sqlite" => None,
        Some(v) if postgres(&v) => Some(v),
        Some(v) => {
            return Err(Error::Usage(format!(
                "IMGGUARD_LEDGER: `{}` is neither `sqlite` nor a postgres:// URL",
                ledger::postgres::shown_url(&v)
            )))
        }
        None => match (&config.file.ledger.url, &config.file.ledger.url_env) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(var)) => {
                let url =
                    env_var(var).ok_or_else(|| bad(format!("ledger.url_env: {var} is not set")))?;
                if !postgres(&url) {
                    return Err(bad(format!("ledger.url_env: {var} is not a postgres:// URL")));
                }
                Some(url)
            }
            (None, None) => None,
        },
    };
    if let Some(u) = &url {
        ledger::postgres::config(u, &env_var).map_err(|e| {
            Error::Usage(format!("fleet ledger {}: {e}", ledger::postgres::shown_url(u)))
        })?;
    }
    let _ = FLEET.set(url);
    Ok(())
}

/// The fleet ledger's URL, if one is configured.
pub(crate) fn fleet_url() -> Option<&'static str> {
    FLEET.get().and_then(Option::as_deref)
}

fn open_ledger(access: Access) -> Result<Option<Box<dyn Ledger>>, Error> {
    Ok(match fleet_url() {
        Some(url) => ledger::spool::open(url, &env_var, access)?,
        None => ledger::open(&env_var, access)?,
    })
}

/// Opens the ledger, creating it if needed (commands that record).
pub(crate) fn ledger() -> Result<Box<dyn Ledger>, Error> {
    open_ledger(Access::Create)?
        .ok_or_else(|| Error::Other("the ledger could not be created".into()))
}

/// Opens the ledger only if it exists (reading commands create nothing).
pub(crate) fn existing_ledger() -> Result<Option<Box<dyn Ledger>>, Error> {
    open_ledger(Access::Existing)
}

/// Milliseconds since the Unix epoch, read once per command and passed to the pure core.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether process `pid` is a running imgguard (a zombie, another program that got the number,
/// or no process at all: not).
pub(crate) fn imgguard_alive(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline.split(|b| *b == 0).next().is_some_and(|argv0| {
            std::path::Path::new(std::ffi::OsStr::from_bytes(argv0))
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"imgguard"))
        }),
        // No /proc (not Linux): ask the kernel whether the process exists.
        Err(_) if !std::path::Path::new("/proc/self").exists() => {
            rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
                .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
        }
        Err(_) => false,
    }
}

/// The prefix of the temporary directory a build's image-ID file lives in:
/// `imgguard-build.<pid>.` in the system's temporary directory.
pub(crate) fn build_dir_prefix() -> String {
    format!("{BUILD_DIR}{}.", std::process::id())
}

const BUILD_DIR: &str = "imgguard-build.";

/// The directory builds' image-ID files live in: `imgguard-<uid>` in the system's temporary
/// directory, made (mode 0700) by the first build and kept for every later one, so that a build
/// creates and removes a file, not a directory too: on this ext4 (mounted with `discard`) the
/// `rmdir` alone took 0.1-0.15 ms of the build's critical path (`bench/build-overhead-ab.sh`:
/// -0.4 ms in each order). `None` when that path is not a directory owned by this user that nobody else can
/// enter (someone else made it, or it is a symlink): the build then makes a directory of its
/// own (`imgguard-build.<pid>.*`), as it always did. In a sticky `/tmp`, nobody but its owner
/// can rename or replace the directory once it is checked.
pub(crate) fn build_file_dir() -> Option<PathBuf> {
    private_dir(&std::env::temp_dir(), true)
}

/// `imgguard-<uid>` in `base`, made if missing and `create`; `None` unless it is a directory
/// (not a symlink) of this user's with mode 0700: all access for this user, none for anyone
/// else.
fn private_dir(base: &Path, create: bool) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::getuid().as_raw();
    let dir = base.join(format!("imgguard-{uid}"));
    // Already there (the usual case), or made now: the checks below decide either way.
    if create {
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    }
    let m = std::fs::symlink_metadata(&dir).ok()?;
    (m.is_dir() && m.uid() == uid && m.mode() & 0o777 == 0o700).then_some(dir)
}

/// The prefix of a build's image-ID file in [`build_file_dir`]: `iid.<pid>.`.
pub(crate) fn build_file_prefix() -> String {
    format!("{BUILD_FILE}{}.", std::process::id())
}

const BUILD_FILE: &str = "iid.";

/// Removes what killed builds left in the temporary directory: only imgguard's own image-ID
/// files in [`build_file_dir`] (`iid.<pid>.*`) and build directories (`imgguard-build.<pid>.*`,
/// owned by this user, holding nothing but the `iid` file), and only those whose imgguard is
/// gone. Best effort: a failure leaves it for later.
pub(crate) fn clean_stale_build_dirs() {
    use std::os::unix::fs::MetadataExt;
    // Looked for, not made: a cleanup creates nothing.
    if let Some(dir) = private_dir(&std::env::temp_dir(), false) {
        clean_stale_build_files(&dir);
    }
    let uid = rustix::process::getuid().as_raw();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let Some(pid) = run_pid(&entry.file_name(), BUILD_DIR) else { continue };
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if !ours || !gone(pid) {
            continue;
        }
        let Ok(inside) = std::fs::read_dir(&path) else { continue };
        let inside: Vec<_> = inside.flatten().collect();
        let only_iid = inside
            .iter()
            .all(|e| e.file_name() == "iid" && e.file_type().is_ok_and(|t| t.is_file()));
        if only_iid {
            for e in inside {
                let _ = std::fs::remove_file(e.path());
            }
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// The image-ID files in `dir` (ours, private) whose build is gone.
fn clean_stale_build_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Some(pid) = run_pid(&entry.file_name(), BUILD_FILE) else { continue };
        let file = entry.file_type().is_ok_and(|t| t.is_file());
        if file && gone(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The build's PID in a name `<prefix><pid>.…`.
fn run_pid(name: &std::ffi::OsStr, prefix: &str) -> Option<u32> {
    let rest = name.to_str()?.strip_prefix(prefix)?;
    rest.split('.').next()?.parse().ok()
}

/// Whether the build run by `pid` is over: not this process, and no imgguard runs as it.
fn gone(pid: u32) -> bool {
    pid != std::process::id() && !imgguard_alive(pid)
}

/// Removes a ledger this command created and that records nothing worth keeping (a build whose
/// docker failed on a fresh machine): the database, its WAL files, and its directory if this
/// command made that too.
pub(crate) fn discard_new_ledger(ledger: Box<dyn Ledger>, made_dir: bool) {
    drop(ledger);
    let Ok(path) = ledger::location(&env_var) else { return };
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    if made_dir {
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `[tag:build-lock]` The builds lock, `ledger.builds.lock` beside the local ledger: every
/// `imgguard build` holds it shared while its `docker build` runs, and every removal holds it
/// exclusively while it re-checks and deletes one image. The legacy builder's cache lookup lists
/// the children of the step's parent image and then reads each one; a child deleted in between
/// fails that build with `unable to find image "sha256:…"` (moby's `getLocalCachedImage`), and
/// no grace period or `noprune` can see such a lookup coming. So imgguard never deletes an image
/// while another imgguard build that shares its ledger runs: the removal is deferred instead.
/// Made only beside an existing local ledger (or in the fleet ledger's local directory): `None`
/// before the first command has recorded anything, or when the path is not a regular file (then
/// nothing is held and removals go on as before).
fn builds_lock() -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let db = ledger::location(&env_var).ok()?;
    let path = db.with_extension("builds.lock");
    // Beside a local ledger that exists (a first build that fails leaves nothing behind), or in
    // the fleet ledger's local directory.
    let fleet = fleet_url().is_some() && path.parent()?.is_dir();
    if !fleet && !db.is_file() {
        return None;
    }
    // Not through a symlink, and never blocking on a FIFO put in its place.
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(i32::try_from(flags.bits()).ok()?)
        .open(&path)
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// The builds lock held shared by a build while its docker runs (`[ref:build-lock]`); dropping
/// it releases it.
pub(crate) struct Building {
    _held: std::fs::File,
}

/// How long a build waits for a removal in progress to end before it runs unprotected: a
/// removal holds the lock for one image's re-check and delete (milliseconds; seconds for a
/// large image on a slow disk).
const BUILD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the builds lock shared for a build (`[ref:build-lock]`), waiting while a removal holds
/// it. `None` when there is no lock to take (see [`builds_lock`]) or a removal held it for
/// longer than [`BUILD_WAIT`]: the build is never held up for longer than that.
pub(crate) fn building() -> Option<Building> {
    let file = builds_lock()?;
    let give_up = Instant::now() + BUILD_WAIT;
    loop {
        match file.try_lock_shared() {
            Ok(()) => return Some(Building { _held: file }),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < give_up => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(_) => return None,
        }
    }
}

/// The builds lock as removals take it (`[ref:build-lock]`): opened once per command, taken
/// exclusively for each removal in turn.
pub(crate) struct RemovalLock(Option<std::fs::File>);

impl RemovalLock {
    /// Opens the lock (nothing to take where there is none: see [`builds_lock`]).
    pub(crate) fn open() -> RemovalLock {
        RemovalLock(builds_lock())
    }

    /// Takes the lock exclusively for one removal, waiting for running builds to end until
    /// `until` (an [`Instant`]; one in the past does not wait).
    pub(crate) async fn turn(&self, until: Instant) -> Turn<'_> {
        let Some(file) = &self.0 else { return Turn::Ours { _held: None } };
        loop {
            match file.try_lock() {
                Ok(()) => return Turn::Ours { _held: Some(Unlock(file)) },
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => return Turn::BuildRunning,
                // A file system without locks: as before there was a lock.
                Err(std::fs::TryLockError::Error(_)) => return Turn::Ours { _held: None },
            }
        }
    }
}

/// Whether a removal may go ahead now (`[ref:build-lock]`).
pub(crate) enum Turn<'a> {
    /// Yes: no imgguard build runs, and none starts until this is dropped (or there is no
    /// lock to take).
    Ours { _held: Option<Unlock<'a>> },
    /// No: an imgguard build is running; the removal is deferred.
    BuildRunning,
}

/// Releases the lock when dropped.
pub(crate) struct Unlock<'a>(&'a std::fs::File);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The handshake cache ([`crate::engine::handshake`]): `handshakes`, beside the local ledger.
fn handshake_cache() -> Option<std::path::PathBuf> {
    Some(ledger::location(&env_var).ok()?.parent()?.join("handshakes"))
}

/// The handshake cache's text: empty when there is none, or it is not a small regular UTF-8
/// file (it is only a cache: anything else is a miss, never an error).
pub(crate) fn remembered_handshakes() -> String {
    handshake_cache()
        .and_then(|p| crate::bounded_read::read_regular(&p, 64 * 1024).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// Remembers a handshake, best effort, in an existing directory only: the file is written whole
/// and renamed into place, so a reader never sees half of it. Two commands remembering at once
/// may lose one's entry, which costs only a `/_ping` later.
pub(crate) fn remember_handshake(h: &crate::engine::handshake::Handshake) {
    use std::io::Write as _;
    let Some(path) = handshake_cache() else { return };
    let Some(dir) = path.parent().filter(|d| d.is_dir()) else { return };
    let Some(text) = crate::engine::handshake::remember(&remembered_handshakes(), h) else {
        return;
    };
    let Ok(mut file) = tempfile::Builder::new().prefix(".handshakes").tempfile_in(dir) else {
        return;
    };
    if file.write_all(text.as_bytes()).is_ok() {
        let _ = file.persist(&path);
    }
}

/// RFC 3339 (UTC, milliseconds) for a time in ms since the epoch.
pub(crate) fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// SIGINT and SIGTERM, caught from when this is made: a command that must finish its
/// transaction (`watch`) or pass them on to a child (`build`) asks for them here.
pub struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts catching both (inside the runtime).
    pub fn catch() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next SIGINT or SIGTERM, as the signal to pass on.
    pub async fn next(&mut self) -> rustix::process::Signal {
        tokio::select! {
            Some(()) = recv(self.int.as_mut()) => rustix::process::Signal::INT,
            Some(()) = recv(self.term.as_mut()) => rustix::process::Signal::TERM,
        }
    }

    /// Sleeps for `d`; whether a signal came meanwhile.
    pub async fn during(&mut self, d: std::time::Duration) -> bool {
        tokio::select! {
            _ = self.next() => true,
            () = tokio::time::sleep(d) => false,
        }
    }
}

async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_build_file_dir_is_used_only_when_nobody_else_can_enter_it() {
        let base = tempfile::tempdir().unwrap();
        let uid = rustix::process::getuid().as_raw();
        let want = base.path().join(format!("imgguard-{uid}"));
        // A cleanup only looks: nothing made.
        assert_eq!(super::private_dir(base.path(), false), None);
        assert!(!want.exists());
        // Made private by the first build, then reused.
        assert_eq!(super::private_dir(base.path(), true), Some(want.clone()));
        let mode = std::fs::metadata(&want).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(super::private_dir(base.path(), true), Some(want.clone()));
        // Opened to others (by whoever made it): not used.
        std::fs::set_permissions(&want, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(super::private_dir(base.path(), true), None);
        // A symlink to a private directory: not used either.
        std::fs::remove_dir(&want).unwrap();
        let elsewhere = base.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &want).unwrap();
        assert_eq!(super::private_dir(base.path(), true), None);
        // A file in its place: not used.
        std::fs::remove_file(&want).unwrap();
        std::fs::write(&want, "").unwrap();
        assert_eq!(super::private_dir(base.path(), true), None);
    }

    #[test]
    fn rfc3339_is_utc_with_millis() {
        assert_eq!(crate::host::rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
