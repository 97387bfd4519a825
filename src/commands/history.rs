//! `imgguard history [TAG] [--format json]`: every tag's lineage of image IDs, newest first. Reads
//! the ledger only: it needs no daemon, and creates no ledger where there is none.

use std::collections::BTreeMap;
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
    /// With `--all-engines`: the host that recorded the engine, and the engine's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_name: Option<&'a str>,
    entries: Vec<JsonEntry<'a>>,
}

/// Each engine's (name, host), for `--all-engines`.
type Hosts = BTreeMap<String, (String, String)>;

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
    let mut hosts = Hosts::new();
    let lineages = match host::existing_ledger()? {
        None => Vec::new(),
        Some(ledger) => {
            if s.all_engines {
                hosts = ledger.engine_hosts()?.into_iter().map(|(id, n, h)| (id, (n, h))).collect();
            }
            let events = match &s.tag {
                Some(t) => ledger.tag_events(None, &[t.as_str()])?,
                None => ledger.all_events(None)?,
            };
            let mut all = event::lineages(&events);
            if let Some(t) = &s.tag {
                all.retain(|l| l.tag == t.as_str());
            }
            if s.all_engines {
                // Grouped by host, then engine, each engine's lineage of the tag.
                all.sort_by(|a, b| {
                    let key = |l: &Lineage| {
                        (hosts.get(&l.engine).map(|h| h.1.clone()), l.engine.clone(), l.tag.clone())
                    };
                    key(a).cmp(&key(b))
                });
            }
            all
        }
    };
    match s.format {
        Format::Json => ui::json(&json(&lineages, s.all_engines.then_some(&hosts))),
        Format::Human => {
            let mut out = std::io::stdout().lock();
            write_human(&mut out, &lineages, s.tag.as_ref(), s.all_engines.then_some(&hosts))
                .map_err(|e| Error::io("stdout", e))
        }
    }?;
    Ok(Outcome::Ok)
}

fn json<'a>(lineages: &'a [Lineage], hosts: Option<&'a Hosts>) -> Vec<JsonLineage<'a>> {
    lineages
        .iter()
        .map(|l| JsonLineage {
            tag: &l.tag,
            engine: &l.engine,
            host: hosts.map(|h| h.get(&l.engine).map_or("", |e| e.1.as_str())),
            engine_name: hosts.map(|h| h.get(&l.engine).map_or("", |e| e.0.as_str())),
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
    hosts: Option<&Hosts>,
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
        match hosts.map(|h| h.get(&l.engine)) {
            Some(Some((name, host))) => {
                writeln!(out, "{}  (host {host}, engine {name} {})", l.tag, l.engine)?;
            }
            _ => writeln!(out, "{}  (engine {})", l.tag, l.engine)?,
        }
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
