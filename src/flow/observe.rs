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

/// Resolves the endpoint as the docker CLI would and connects to it, with the handshake the
/// cache remembers for it (no `/_ping` when the daemon's stamp is unchanged).
pub async fn connect() -> Result<Engine, Error> {
    let endpoint = endpoint::resolve_from_env()?;
    let remembered = crate::host::remembered_handshakes();
    Ok(Engine::connect_remembering(endpoint, &remembered, now_ms()).await?)
}

/// Remembers the handshake connecting learnt, if it made one, for the next command. Called by
/// commands that record, once their ledger exists (a command that creates nothing keeps to that).
pub fn remember_handshake(engine: &Engine) {
    if let Some(h) = engine.fresh_handshake() {
        crate::host::remember_handshake(h);
    }
}

/// How long a remembered engine identity is trusted, even under the same stamp.
pub const IDENTITY_TTL_MS: i64 = 3_600_000;

/// Who the daemon is, without a `docker info` when the ledger remembers it: the identity learnt
/// at this endpoint is reused while the daemon's stamp ([`Engine::stamp`]: the socket and the
/// PID answering on it) is unchanged and for at most [`IDENTITY_TTL_MS`]; otherwise it is asked
/// and remembered. `docker info` costs 10-20 ms of the daemon's CPU on Docker 20.10, which a
/// build running meanwhile on a small machine pays for (README, design notes).
pub async fn identity(
    engine: &Engine,
    ledger: &mut dyn Ledger,
    now: i64,
) -> Result<EngineIdentity, Error> {
    let endpoint = &engine.endpoint().host;
    let Some(stamp) = engine.stamp() else { return Ok(engine.identity().await?) };
    if let Some(known) = ledger.cached_engine(endpoint, stamp, now, IDENTITY_TTL_MS)? {
        return Ok(known);
    }
    let identity = engine.identity().await?;
    ledger.remember_engine(&identity, stamp, now)?;
    Ok(identity)
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
    /// The ledger's evidence about the daemon's untagged images ([`Ledger::evidence`]), with
    /// `moves` appended.
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
    let now = now_ms();
    // The identity a build remembered for this endpoint, if the daemon is the same one.
    let cached = match (ledger, engine.stamp()) {
        (Some(l), Some(stamp)) => {
            l.cached_engine(&engine.endpoint().host, stamp, now, IDENTITY_TTL_MS)?
        }
        _ => None,
    };
    let identity = async {
        match cached {
            Some(known) => Ok(known),
            None => engine.identity().await,
        }
    };
    let (identity, images, containers) =
        tokio::join!(identity, engine.images(), engine.containers());
    let (identity, images, containers) = (identity?, images?, containers?);
    trace("daemon listed");
    // Only what the daemon has: each tracked tag's current state (one indexed scan of the
    // engine's tags, not of the log) and the evidence for the untagged images.
    let (current, mut events) = match ledger {
        Some(l) => {
            let untagged: Vec<&str> =
                images.iter().filter(|i| i.repo_tags.is_empty()).map(|i| i.id.as_str()).collect();
            (l.tracked_tags(&identity.id)?, l.evidence(&identity.id, &untagged)?)
        }
        None => (Vec::new(), Vec::new()),
    };
    trace("ledger read");
    let mut moves = match ledger {
        // Build runs whose imgguard was killed: what their docker did is a build
        // (`[ref:intent-first]`); and the interrupted runs explain what they left.
        Some(l) => {
            events.extend(l.interrupted_runs(&identity.id)?);
            let open = l.open_intents(&identity.id)?;
            let settled = settle_dead_runs(l, &open, &identity.id, &images, now)?;
            events.extend(open);
            settled
        }
        None => Vec::new(),
    };
    // The settled runs' builds move tags: the current state follows them.
    let mut current = current;
    for e in moves.iter().filter(|e| e.is_pointer()) {
        if let Some(tag) = e.tag.as_deref() {
            match current.binary_search_by(|(t, _)| t.as_str().cmp(tag)) {
                Ok(i) => current[i].1.clone_from(&e.image_id),
                Err(i) => current.insert(i, (tag.to_string(), e.image_id.clone())),
            }
        }
    }
    events.sort_by_key(|r| r.seq);
    events.dedup_by_key(|r| r.seq);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(moves.iter().cloned().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    let outside = dangling::reconcile_current(&current, &identity.id, &images, now);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(outside.iter().cloned().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    moves.extend(outside);
    Ok(Survey { engine, identity, images, containers, events, moves, now })
}

/// The events that end the build runs that never ended and whose imgguard is gone: read only
/// the open runs and the events of their tags.
fn settle_dead_runs(
    ledger: &dyn Ledger,
    open: &[Recorded],
    engine: &str,
    images: &[ListedImage],
    now: i64,
) -> Result<Vec<Event>, Error> {
    let runs = event::intents(open, engine);
    let dead: Vec<&event::Intent> =
        runs.iter().filter(|r| r.end.is_none() && !imgguard_alive(r.pid)).collect();
    if dead.is_empty() {
        return Ok(Vec::new());
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
    let tags: Vec<&str> = daemon.keys().map(String::as_str).collect();
    let mut known = ledger.tag_heads(engine, &tags)?;
    known.extend(open.iter().cloned());
    known.sort_by_key(|r| r.seq);
    known.dedup_by_key(|r| r.seq);
    Ok(event::settle_interrupted(&dead, &known, engine, &daemon, now))
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
