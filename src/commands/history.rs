//! `imgguard history [TAG] [--format json]`: every tag's lineage of image IDs, newest first. Reads
//! the ledger only: it needs no daemon, and creates no ledger where there is none.

use std::io::Write;

use serde::Serialize;

use crate::cli::{Format, HistoryArgs};
use crate::core::event::{self as ledger, Entry, EntryState, Lineage};
use crate::core::reference::Tag;
use crate::error::{Error, Outcome};

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
pub fn run(args: &HistoryArgs) -> Result<Outcome, Error> {
    let tag =
        args.tag.as_deref().map(Tag::parse).transpose().map_err(|e| Error::Usage(e.to_string()))?;
    let lineages = match super::open_existing_ledger()? {
        None => Vec::new(),
        Some(store) => {
            let tags: Vec<&str> = tag.iter().map(Tag::as_str).collect();
            let events = store.events(None, &tags)?;
            let mut all = ledger::lineages(&events);
            if let Some(t) = &tag {
                all.retain(|l| l.tag == t.as_str());
            }
            all
        }
    };
    let mut out = std::io::stdout().lock();
    let result = match args.format {
        Format::Json => write_json(&mut out, &lineages),
        Format::Human => write_human(&mut out, &lineages, tag.as_ref()),
    };
    match result {
        Ok(()) => Ok(Outcome::Ok),
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Ok),
        Err(e) => Err(Error::io("stdout", e)),
    }
}

fn write_json(out: &mut impl Write, lineages: &[Lineage]) -> std::io::Result<()> {
    let json: Vec<JsonLineage<'_>> = lineages
        .iter()
        .map(|l| JsonLineage {
            tag: &l.tag,
            engine: &l.engine,
            entries: l
                .entries
                .iter()
                .map(|e: &Entry| JsonEntry {
                    image_id: &e.image_id,
                    recorded_at: super::rfc3339(e.at_ms),
                    event: e.event.as_str(),
                    state: e.state,
                    reason: e.reason.as_deref(),
                    git_commit: e.git_commit.as_deref(),
                })
                .collect(),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
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
            let state = e.state.as_str();
            write!(
                out,
                "  {:<19}  {:<10}  {}  {}",
                crate::engine::ImageId::new(e.image_id.clone()).short(),
                state,
                super::rfc3339(e.at_ms),
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
