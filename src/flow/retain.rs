//! Retention: `ledger.retention` in the configuration, applied at most once a day by the commands
//! that list the daemon's images anyway (`explain`, `prune`), so that it costs one small read on
//! other days and never a daemon call of its own.

use crate::core::image::ListedImage;
use crate::error::Error;
use crate::ledger::Ledger;

/// How often retention runs at most.
pub const EVERY_MS: i64 = 24 * 3_600_000;

/// Drops the engine's history older than `retention_ms` if the ledger was not compacted in the
/// last day; keeps every tag's current state and the evidence for every image in `images` (the
/// daemon's). No vacuum: the space is reused by later events. Returns the events dropped.
pub fn apply_if_due(
    ledger: &mut dyn Ledger,
    retention_ms: Option<i64>,
    engine: &str,
    images: &[ListedImage],
    now_ms: i64,
) -> Result<i64, Error> {
    let Some(retention) = retention_ms else { return Ok(0) };
    if ledger.compacted_at()?.is_some_and(|at| now_ms - at < EVERY_MS && at <= now_ms) {
        return Ok(0);
    }
    let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    Ok(ledger.compact(engine, now_ms - retention, &ids, now_ms)?)
}
