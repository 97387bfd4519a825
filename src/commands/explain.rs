//! `imgguard explain`: every dangling image with its cause and what holds it. Three list calls
//! (images, containers, info) in parallel, whatever the number of images; the ledger learns the
//! tag moves it did not make (`moved-outside`) on the way.

use std::io::Write;

use serde::Serialize;

use crate::cli::{ExplainArgs, Format};
use crate::config::Config;
use crate::core::dangling::{self, Explained, PruneKeep, PruneRules};
use crate::core::event::{Event, Recorded};
use crate::engine::{ContainerInfo, Engine, EngineIdentity, ListedImage};
use crate::error::{Error, Outcome};
use crate::ledger::sqlite::Store;

/// What the daemon and the ledger say, reconciled.
pub(crate) struct Survey {
    pub(crate) engine: Engine,
    pub(crate) identity: EngineIdentity,
    pub(crate) images: Vec<ListedImage>,
    pub(crate) containers: Vec<ContainerInfo>,
    /// The ledger's events for this engine, with `moves` appended.
    pub(crate) events: Vec<Recorded>,
    /// Tag moves made outside imgguard, not yet recorded.
    pub(crate) moves: Vec<Event>,
    pub(crate) now: i64,
}

/// Observes the daemon (three calls at once) and reconciles the ledger's tags with it.
pub(crate) async fn survey(store: Option<&Store>) -> Result<Survey, Error> {
    let engine = super::connect().await?;
    let (identity, images, containers) =
        tokio::join!(engine.identity(), engine.images(), engine.containers());
    let (identity, images, containers) = (identity?, images?, containers?);
    super::trace("daemon listed");
    let mut events = match store {
        Some(s) => s.events(Some(&identity.id), &[])?,
        None => Vec::new(),
    };
    let now = super::now_ms();
    let moves = dangling::reconcile(&events, &identity.id, &images, now);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(moves.iter().cloned().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    Ok(Survey { engine, identity, images, containers, events, moves, now })
}

impl Survey {
    /// Every dangling image carrying `labels`, explained.
    pub(crate) fn explain(&self, labels: &[String]) -> Vec<Explained> {
        let mut all =
            dangling::explain(&self.images, &self.containers, &self.events, &self.identity.id);
        all.retain(|e| dangling::has_labels(&e.image, labels));
        all
    }

    /// Records the reconciliation's moves (one transaction).
    pub(crate) fn record_moves(&self, store: &mut Store, extra: &[Event]) -> Result<(), Error> {
        if self.moves.is_empty() && extra.is_empty() {
            return Ok(());
        }
        let all: Vec<Event> = self.moves.iter().chain(extra).cloned().collect();
        let host = &self.engine.endpoint().host;
        store.append(Some((&self.identity.id, &self.identity.name, host)), &all)?;
        Ok(())
    }
}

/// The JSON contract of `explain`.
#[derive(Serialize)]
pub(crate) struct JsonImage<'a> {
    pub(crate) image_id: &'a str,
    pub(crate) size: i64,
    pub(crate) created: String,
    pub(crate) cause: &'static str,
    pub(crate) detail: String,
    pub(crate) former_tags: &'a [String],
    pub(crate) containers: Vec<JsonContainer<'a>>,
    pub(crate) has_children: bool,
    pub(crate) removable: bool,
    pub(crate) reason: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct JsonContainer<'a> {
    id: &'a str,
    name: &'a str,
    state: &'a str,
}

pub(crate) fn json_image<'a>(e: &'a Explained, keep: Option<&PruneKeep>) -> JsonImage<'a> {
    JsonImage {
        image_id: e.image.id.as_str(),
        size: e.image.size,
        created: super::rfc3339(e.image.created_s.saturating_mul(1000)),
        cause: e.cause.name(),
        detail: e.cause.to_string(),
        former_tags: &e.former_tags,
        containers: e
            .containers
            .iter()
            .map(|c| JsonContainer { id: &c.id, name: &c.name, state: &c.state })
            .collect(),
        has_children: e.has_children,
        removable: keep.is_none(),
        reason: keep.map(ToString::to_string),
    }
}

/// The default prune rules, so that `removable` says what a plain `imgguard prune` would do.
pub(crate) fn default_rules(config: &Config) -> PruneRules {
    PruneRules {
        keep: 0,
        min_age_ms: 3_600_000,
        unknown: false,
        protect: config.file.protect.clone(),
    }
}

/// Runs the command.
pub fn run(args: &ExplainArgs, config: &Config) -> Result<Outcome, Error> {
    let mut store = super::open_existing_ledger()?;
    let survey = super::runtime()?.block_on(survey(store.as_ref()))?;
    if let Some(store) = store.as_mut() {
        survey.record_moves(store, &[])?;
    }
    let explained = survey.explain(&args.label);
    let plan = dangling::plan_prune(&explained, &default_rules(config), survey.now);
    let mut out = std::io::stdout().lock();
    let result = match args.format {
        Format::Json => {
            let json: Vec<JsonImage<'_>> =
                explained.iter().zip(&plan).map(|(e, k)| json_image(e, k.as_ref())).collect();
            serde_json::to_writer_pretty(&mut out, &json)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
        Format::Human => write_table(&mut out, &explained, &plan),
    };
    match result {
        Ok(()) => Ok(Outcome::Ok),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Ok),
        Err(e) => Err(Error::io("stdout", e)),
    }
}

fn write_table(
    out: &mut impl Write,
    explained: &[Explained],
    plan: &[Option<PruneKeep>],
) -> std::io::Result<()> {
    if explained.is_empty() {
        return writeln!(out, "no dangling images");
    }
    writeln!(
        out,
        "{:<19}  {:>9}  {:<16}  {:<15}  {:<24}  HELD BY / WHY",
        "IMAGE ID", "SIZE", "CREATED", "CAUSE", "FORMER TAGS"
    )?;
    for (e, keep) in explained.iter().zip(plan) {
        let created = super::rfc3339(e.image.created_s.saturating_mul(1000));
        let held = match keep {
            None => "nothing: removable".to_string(),
            Some(k) => k.to_string(),
        };
        let tags = if e.former_tags.is_empty() { "-".to_string() } else { e.former_tags.join(",") };
        writeln!(
            out,
            "{:<19}  {:>9}  {:<16}  {:<15}  {:<24}  {held}",
            e.image.id.short(),
            human_size(e.image.size),
            created.get(..16).unwrap_or(&created).replace('T', " "),
            e.cause.name(),
            tags
        )?;
        writeln!(out, "{:<19}  {}", "", e.cause)?;
    }
    Ok(())
}

/// Sizes as docker prints them (decimal units).
pub(crate) fn human_size(bytes: i64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let b = bytes as f64;
    if bytes < 1_000 {
        format!("{bytes}B")
    } else if bytes < 1_000_000 {
        format!("{:.1}kB", b / 1e3)
    } else if bytes < 1_000_000_000 {
        format!("{:.1}MB", b / 1e6)
    } else {
        format!("{:.2}GB", b / 1e9)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::human_size(2), "2B");
        assert_eq!(super::human_size(7_340_000), "7.3MB");
        assert_eq!(super::human_size(1_500), "1.5kB");
        assert_eq!(super::human_size(2_000_000_000), "2.00GB");
    }
}
