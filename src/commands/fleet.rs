//! `imgguard fleet [--format json]`: one row per engine the ledger knows — with a fleet ledger,
//! every runner that writes to it: host, last seen, the `<none>` images known to the ledger and
//! their bytes (where recorded), how many of them the ledger cannot explain, and how many images
//! were removed and kept in the last 7 days. Reads the ledger only: no daemon.

use serde::Serialize;

use crate::cli::Format;
use crate::error::{Error, Outcome};
use crate::host::{self, rfc3339};
use crate::ledger::FleetRow;
use crate::ui;

/// The window of "recently": 7 days.
const WINDOW_MS: i64 = 7 * 24 * 3_600_000;

/// One row of the JSON contract.
#[derive(Serialize)]
struct JsonRow<'a> {
    host: &'a str,
    engine: &'a str,
    name: &'a str,
    last_seen: Option<String>,
    nameless_images: u64,
    nameless_bytes: u64,
    unexplained: u64,
    removed_7d: u64,
    kept_7d: u64,
}

/// Runs the command.
pub fn run(format: Format) -> Result<Outcome, Error> {
    let rows = match host::existing_ledger()? {
        Some(ledger) => ledger.fleet(host::now_ms() - WINDOW_MS)?,
        None => Vec::new(),
    };
    match format {
        Format::Json => ui::json(&rows.iter().map(json_row).collect::<Vec<_>>())?,
        Format::Human => print(&rows)?,
    }
    Ok(Outcome::Ok)
}

fn json_row(r: &FleetRow) -> JsonRow<'_> {
    JsonRow {
        host: &r.host,
        engine: &r.engine,
        name: &r.name,
        last_seen: r.last_seen_ms.map(rfc3339),
        nameless_images: r.nameless,
        nameless_bytes: r.nameless_bytes,
        unexplained: r.unexplained,
        removed_7d: r.removed_recently,
        kept_7d: r.kept_recently,
    }
}

fn print(rows: &[FleetRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return ui::say("no engine recorded yet");
    }
    ui::say(format!(
        "{:<20}  {:<24}  {:<24}  {:>6}  {:>10}  {:>11}  {:>11}  {:>8}",
        "HOST", "ENGINE", "LAST SEEN", "<NONE>", "BYTES", "UNEXPLAINED", "REMOVED 7D", "KEPT 7D"
    ))?;
    for r in rows {
        let id: String = r.engine.chars().take(12).collect();
        let engine = if r.name.is_empty() { id } else { format!("{} ({id})", r.name) };
        ui::say(format!(
            "{:<20}  {:<24}  {:<24}  {:>6}  {:>10}  {:>11}  {:>11}  {:>8}",
            r.host,
            engine,
            r.last_seen_ms.map_or_else(|| "never".to_string(), rfc3339),
            r.nameless,
            ui::size(r.nameless_bytes),
            r.unexplained,
            r.removed_recently,
            r.kept_recently
        ))?;
    }
    Ok(())
}
