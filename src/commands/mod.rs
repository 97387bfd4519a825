//! One module per command: observe → plan → apply → record, progress and output. The decisions
//! themselves live in the pure core ([`crate::core::policy`], [`crate::ledger`]).

/// `println!` that ignores a closed stdout (`imgguard prune | head`), where `println!` panics.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod build;
pub mod check;
pub mod explain;
mod github;
pub mod history;
pub mod hook;
pub mod load;
pub mod prune;
pub mod rmi;
pub mod save;
mod transfer;

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::engine::{endpoint, Engine};
use crate::error::Error;
use crate::ledger::sqlite::{self as store, Store};

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

/// A progress bar on stderr when it is a terminal (and not in CI); hidden otherwise, where the
/// commands' plain lines are the progress.
pub(crate) fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || env_var("CI").is_some() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Looks up an environment variable, treating an empty value as unset.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Resolves the endpoint as the docker CLI would and connects to it.
pub(crate) async fn connect() -> Result<Engine, Error> {
    let endpoint = endpoint::resolve_from_env()?;
    Ok(Engine::connect(endpoint).await?)
}

/// Opens (creating if needed) the ledger at its default place.
pub(crate) fn open_ledger() -> Result<Store, Error> {
    let path = store::default_path(&env_var)?;
    Ok(Store::open(&path)?)
}

/// Opens the ledger only if it exists (reading commands create nothing).
pub(crate) fn open_existing_ledger() -> Result<Option<Store>, Error> {
    let path = store::default_path(&env_var)?;
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(Store::open(&path)?))
}

/// Milliseconds since the Unix epoch, read once per command and passed to the pure core.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_utc_with_millis() {
        assert_eq!(super::rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
