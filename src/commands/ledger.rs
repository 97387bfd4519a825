//! `imgguard ledger stats|compact|export|import`: looking after the ledger itself. `stats` and
//! `export` only read (and create no ledger); `compact` asks the daemon which images it has, so
//! that the evidence for them stays, then vacuums; `import` appends an export's events in one
//! transaction, all or nothing, skipping those already there.

use std::io::{BufRead, BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::cli::Format;
use crate::error::{Error, Outcome};
use crate::flow::observe;
use crate::host::{self, rfc3339};
use crate::ledger::{jsonl, Stats};
use crate::settings::LedgerSettings;
use crate::ui;

/// Runs the command.
pub fn run(s: &LedgerSettings) -> Result<Outcome, Error> {
    match s {
        LedgerSettings::Stats { format } => stats(*format),
        LedgerSettings::Compact { older_than_ms } => compact(*older_than_ms),
        LedgerSettings::Export => export(),
        LedgerSettings::Import { file } => import(file.as_deref()),
        LedgerSettings::Sync => sync(),
    }
}

/// `ledger sync`: the spool's unsent events to the fleet ledger, which must answer.
fn sync() -> Result<Outcome, Error> {
    let Some(url) = host::fleet_url() else {
        return Err(Error::Usage(
            "ledger sync: no fleet ledger is configured (set IMGGUARD_LEDGER=postgres://… or \
             `ledger:` in .imgguard.yml)"
                .into(),
        ));
    };
    let (sent, pending) = crate::ledger::spool::sync_now(url, &host::env_var)?;
    let shown = crate::ledger::postgres::shown_url(url);
    ui::say(format!(
        "sent {sent} event{} of {pending} unsent in the local spool to {shown}",
        if sent == 1 { "" } else { "s" }
    ))?;
    Ok(Outcome::Ok)
}

/// The JSON contract of `ledger stats --format json`.
#[derive(Serialize)]
struct JsonStats {
    path: String,
    events: i64,
    tags: i64,
    engines: i64,
    size_bytes: u64,
    oldest_event: Option<String>,
}

fn stats(format: Format) -> Result<Outcome, Error> {
    let mut path = crate::ledger::location(&host::env_var)?.display().to_string();
    let st = match host::existing_ledger()? {
        Some(l) => {
            path = l.location();
            l.stats()?
        }
        None => Stats { events: 0, tags: 0, engines: 0, size_bytes: 0, oldest_ms: None },
    };
    let oldest = st.oldest_ms.map(rfc3339);
    match format {
        Format::Json => ui::json(&JsonStats {
            path,
            events: st.events,
            tags: st.tags,
            engines: st.engines,
            size_bytes: st.size_bytes,
            oldest_event: oldest,
        })?,
        Format::Human => {
            ui::say(format!("ledger        {path}"))?;
            ui::say(format!("events        {}", st.events))?;
            ui::say(format!("tags          {}", st.tags))?;
            ui::say(format!("engines       {}", st.engines))?;
            ui::say(format!("size on disk  {}", ui::size(st.size_bytes)))?;
            ui::say(format!("oldest event  {}", oldest.as_deref().unwrap_or("none")))?;
        }
    }
    Ok(Outcome::Ok)
}

fn compact(older_than_ms: i64) -> Result<Outcome, Error> {
    let Some(mut ledger) = host::existing_ledger()? else {
        ui::note("no ledger yet: nothing to compact");
        return Ok(Outcome::Ok);
    };
    let (identity, images) = host::runtime()?.block_on(async {
        let engine = observe::connect().await?;
        let (identity, images) = tokio::join!(engine.identity(), engine.images());
        Ok::<_, Error>((identity?, images?))
    })?;
    let before = ledger.stats()?;
    let now = host::now_ms();
    let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    let dropped = ledger.compact(&identity.id, now - older_than_ms, &ids, now)?;
    ledger.vacuum()?;
    let after = ledger.stats()?;
    ui::note(format!(
        "dropped {dropped} events recorded before {} on engine {}; kept every tag's current \
         state and the evidence for the daemon's {} images; {} events left, {} → {}",
        rfc3339(now - older_than_ms),
        identity.id,
        images.len(),
        after.events,
        ui::size(before.size_bytes),
        ui::size(after.size_bytes)
    ));
    Ok(Outcome::Ok)
}

fn export() -> Result<Outcome, Error> {
    let Some(ledger) = host::existing_ledger()? else { return Ok(Outcome::Ok) };
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = None;
    ledger.export(&mut |id, event| {
        let line = jsonl::to_line(id, event);
        match writeln!(out, "{line}") {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(Error::io("stdout", e));
    }
    out.flush().map_err(|e| Error::io("stdout", e))?;
    Ok(Outcome::Ok)
}

fn import(file: Option<&Path>) -> Result<Outcome, Error> {
    let name = file.map_or_else(|| "-".to_string(), |p| p.display().to_string());
    let reader: Box<dyn BufRead> = match file {
        Some(p) => {
            Box::new(std::io::BufReader::new(std::fs::File::open(p).map_err(|e| Error::io(p, e))?))
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let mut lines = BoundedLines { reader, number: 0, buf: Vec::new() };
    let mut ledger = host::ledger()?;
    let imported = ledger.import(&mut || loop {
        let n = lines.number + 1;
        let at = |m: String| format!("{name}:{n}: {m}");
        let Some(line) = lines.next_line().map_err(at)? else { return Ok(None) };
        if line.trim().is_empty() {
            continue;
        }
        return jsonl::parse_line(line).map(Some).map_err(at);
    })?;
    ui::note(format!(
        "imported {} events from {name} ({} already in the ledger)",
        imported.added, imported.skipped
    ));
    Ok(Outcome::Ok)
}

/// Lines of at most [`jsonl::MAX_LINE`] bytes, counted from 1.
struct BoundedLines {
    reader: Box<dyn BufRead>,
    number: usize,
    buf: Vec<u8>,
}

impl BoundedLines {
    fn next_line(&mut self) -> Result<Option<&str>, String> {
        self.buf.clear();
        let limit = u64::try_from(jsonl::MAX_LINE).unwrap_or(u64::MAX) + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| format!("cannot read: {e}"))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.len() > jsonl::MAX_LINE {
            return Err(format!("line longer than {} bytes", jsonl::MAX_LINE));
        }
        let text = std::str::from_utf8(&self.buf).map_err(|_| "not UTF-8".to_string())?;
        Ok(Some(text.trim_end_matches(['\n', '\r'])))
    }
}
