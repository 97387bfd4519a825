//! The process's surroundings, read in one place: environment variables, the clock, the async
//! runtime, the ledger's opening, and phase tracing (`IMGGUARD_TRACE`). The pure core never
//! comes here; the flow and the commands read the clock once and pass `now` in.

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

/// Opens the ledger, creating it if needed (commands that record).
pub(crate) fn ledger() -> Result<Box<dyn Ledger>, Error> {
    ledger::open(&env_var, Access::Create)?
        .ok_or_else(|| Error::Other("the ledger could not be created".into()))
}

/// Opens the ledger only if it exists (reading commands create nothing).
pub(crate) fn existing_ledger() -> Result<Option<Box<dyn Ledger>>, Error> {
    Ok(ledger::open(&env_var, Access::Existing)?)
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
        assert_eq!(crate::host::rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
