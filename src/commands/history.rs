//! `imgguard history [TAG] [--format json]`: every tag's lineage of image IDs, newest first. Reads
//! the ledger only: it needs no daemon, and creates no ledger where there is none.

use std::io::Write;

use serde::Serialize;

use crate::cli::Format;
use crate::core::event::{self, Entry, EntryState, Lineage};
use crate::core::image::ImageId;
use crate::core::reference::Tag;
use crate::error::{Error, Outcome};
use crate::host::{self, rfc3339};
use crate::settings::HistorySettings;
use crate::ui;

#[derive(Serialize)]
struct JsonLineage<'a> {
    tag: &'a str,
    engine: &'a str,
    entries: Vec<JsonEntry<'a>>,
}

/// One entry of the JSON contract: `image_id, recorded_at, event, state, reason, git_commit`.
#[derive(Serialize)]
struct JsonEntry<'a> {
    image_id: &'a str,
    recorded_at: String,
    event: &'static str,
    state: EntryState,
    reason: Option<&'a str>,
    git_commit: Option<&'a str>,
}

/// Runs the command.
pub fn run(s: &HistorySettings) -> Result<Outcome, Error> {
    let lineages = match host::existing_ledger()? {
        None => Vec::new(),
        Some(ledger) => {
            let events = match &s.tag {
                Some(t) => ledger.tag_events(None, &[t.as_str()])?,
                None => ledger.all_events(None)?,
            };
            let mut all = event::lineages(&events);
            if let Some(t) = &s.tag {
                all.retain(|l| l.tag == t.as_str());
            }
            all
        }
    };
    match s.format {
        Format::Json => ui::json(&json(&lineages)),
        Format::Human => {
            let mut out = std::io::stdout().lock();
            write_human(&mut out, &lineages, s.tag.as_ref()).map_err(|e| Error::io("stdout", e))
        }
    }?;
    Ok(Outcome::Ok)
}

fn json(lineages: &[Lineage]) -> Vec<JsonLineage<'_>> {
    lineages
        .iter()
        .map(|l| JsonLineage {
            tag: &l.tag,
            engine: &l.engine,
            entries: l
                .entries
                .iter()
                .map(|e: &Entry| JsonEntry {
                    image_id: &e.image_id,
                    recorded_at: rfc3339(e.at_ms),
                    event: e.event.as_str(),
                    state: e.state,
                    reason: e.reason.as_deref(),
                    git_commit: e.git_commit.as_deref(),
                })
                .collect(),
        })
        .collect()
}

fn write_human(
    out: &mut impl Write,
    lineages: &[Lineage],
    tag: Option<&Tag>,
) -> std::io::Result<()> {
    if lineages.is_empty() {
        return match tag {
            Some(t) => writeln!(out, "no lineage recorded for {t}"),
            None => {
                writeln!(out, "no lineage recorded yet (build with `imgguard build -t NAME:TAG …`)")
            }
        };
    }
    for l in lineages {
        writeln!(out, "{}  (engine {})", l.tag, l.engine)?;
        for e in &l.entries {
            write!(
                out,
                "  {:<19}  {:<10}  {}  {}",
                ImageId::new(e.image_id.clone()).short(),
                e.state.as_str(),
                rfc3339(e.at_ms),
                e.event
            )?;
            if let Some(c) = &e.git_commit {
                write!(out, "  git {}", c.get(..12).unwrap_or(c))?;
            }
            if let Some(r) = &e.reason {
                write!(out, "  ({r})")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}
