//! Observe: the daemon's facts a decision needs, in as few calls as possible and in parallel —
//! where tags point, what holds an image (one container list), and the survey of dangling
//! images with the ledger reconciled against the daemon's tags.

use std::collections::HashMap;

use futures_util::future::join_all;

use crate::core::dangling::{self, Explained, LabelFilter};
use crate::core::event::{self, Event, Recorded};
use crate::core::image::{ContainerInfo, EngineIdentity, ImageId, ImageInfo, ListedImage};
use crate::core::policy::{Candidate, Snapshot};
use crate::engine::{endpoint, Engine};
use crate::error::Error;
use crate::host::{imgguard_alive, now_ms, trace};
use crate::ledger::Ledger;

/// Resolves the endpoint as the docker CLI would and connects to it.
pub async fn connect() -> Result<Engine, Error> {
    let endpoint = endpoint::resolve_from_env()?;
    Ok(Engine::connect(endpoint).await?)
}

/// Where each reference points now (`None`: nowhere), asked all at once.
pub async fn inspect_all<S: AsRef<str>>(
    engine: &Engine,
    refs: &[S],
) -> Result<Vec<Option<ImageInfo>>, Error> {
    join_all(refs.iter().map(|r| engine.inspect(r.as_ref())))
        .await
        .into_iter()
        .map(|r| r.map_err(Error::from))
        .collect()
}

/// The image IDs the references point at now.
pub async fn image_ids<S: AsRef<str>>(
    engine: &Engine,
    refs: &[S],
) -> Result<Vec<Option<ImageId>>, Error> {
    Ok(inspect_all(engine, refs).await?.into_iter().map(|i| i.map(|i| i.id)).collect())
}

/// The facts the removal policy needs: each candidate inspected, and one list of all
/// containers.
pub async fn snapshot(engine: &Engine, candidates: &[Candidate]) -> Result<Snapshot, Error> {
    let ids: Vec<&str> = candidates.iter().map(|c| c.image.as_str()).collect();
    let (infos, containers) = tokio::join!(inspect_all(engine, &ids), engine.containers());
    let images: HashMap<ImageId, Option<ImageInfo>> =
        candidates.iter().map(|c| c.image.clone()).zip(infos?).collect();
    Ok(Snapshot { images, containers: containers? })
}

/// What the daemon and the ledger say about dangling images, reconciled.
pub struct Survey {
    /// The connection.
    pub engine: Engine,
    /// Who the daemon is.
    pub identity: EngineIdentity,
    /// Every image (one list call).
    pub images: Vec<ListedImage>,
    /// Every container (one list call).
    pub containers: Vec<ContainerInfo>,
    /// The ledger's events for this engine, with `moves` appended.
    pub events: Vec<Recorded>,
    /// Tag moves not yet recorded: builds of runs whose imgguard was killed (and those runs'
    /// ends), then moves made outside imgguard.
    pub moves: Vec<Event>,
    /// When the survey was made (ms since the epoch).
    pub now: i64,
}

/// Observes the daemon (three calls at once) and reconciles the ledger's tags with it.
pub async fn survey(ledger: Option<&dyn Ledger>) -> Result<Survey, Error> {
    let engine = connect().await?;
    let (identity, images, containers) =
        tokio::join!(engine.identity(), engine.images(), engine.containers());
    let (identity, images, containers) = (identity?, images?, containers?);
    trace("daemon listed");
    let mut events = match ledger {
        Some(l) => l.all_events(Some(&identity.id))?,
        None => Vec::new(),
    };
    let now = now_ms();
    // Build runs whose imgguard was killed: what their docker did is a build (`[ref:intent-first]`).
    let mut moves = settle_dead_runs(&events, &identity.id, &images, now);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(moves.iter().cloned().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    let outside = dangling::reconcile(&events, &identity.id, &images, now);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(outside.iter().cloned().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    moves.extend(outside);
    Ok(Survey { engine, identity, images, containers, events, moves, now })
}

/// The events that end the build runs that never ended and whose imgguard is gone.
fn settle_dead_runs(
    events: &[Recorded],
    engine: &str,
    images: &[ListedImage],
    now: i64,
) -> Vec<Event> {
    let runs = event::intents(events, engine);
    let dead: Vec<&event::Intent> =
        runs.iter().filter(|r| r.end.is_none() && !imgguard_alive(r.pid)).collect();
    if dead.is_empty() {
        return Vec::new();
    }
    let mut daemon: HashMap<String, Option<String>> =
        dead.iter().flat_map(|r| r.tags.iter().map(|(t, _)| (t.clone(), None))).collect();
    for image in images {
        for tag in &image.repo_tags {
            if let Some(slot) = daemon.get_mut(tag) {
                *slot = Some(image.id.to_string());
            }
        }
    }
    event::settle_interrupted(&dead, events, engine, &daemon, now)
}

impl Survey {
    /// Every dangling image carrying `labels`, explained.
    pub fn explain(&self, labels: &[LabelFilter]) -> Vec<Explained> {
        let mut all =
            dangling::explain(&self.images, &self.containers, &self.events, &self.identity.id);
        all.retain(|e| dangling::has_labels(&e.image, labels));
        all
    }
}
