//! Apply: the one removal path. Every command that removes an image (build, load, prune, rmi)
//! comes here, so that the rules below hold everywhere:
//!
//! - `[tag:never-forced]` A removal is never forced: the daemon's own conflict check is the last
//!   guard, and its refusal is reported as kept, in its words.
//! - `[tag:recheck-before-remove]` Just before each removal the image is looked at once more: a
//!   tag or container that appeared since the plan keeps it.
//! - Someone else removing the image first is not an error: it is gone.
//! - `[tag:removal-grace]` An image is removed no sooner than [`REMOVAL_GRACE_MS`] after it
//!   became unreachable by tag (a `docker create` that resolved the tag a moment earlier can
//!   still reach it), and only the image itself (`noprune`): an untagged parent — the legacy
//!   builder's cache, which a concurrent build may have just picked to build on — is recorded as
//!   deferred and freed by a later build or prune, once it has been childless for the grace
//!   period too. The README's design notes ("Removal under concurrency") say why.
//! - `[ref:build-lock]` No image is deleted while another imgguard build sharing the ledger
//!   runs: each removal waits for its turn (at most `patience`), else it is deferred — kept, with
//!   reason kind `deferred` — and the next build or prune carries it out.

use std::time::{Duration, Instant};

use crate::core::event::Pending;
use crate::core::image::{ContainerInfo, ImageId, ImageInfo, Removal};
use crate::core::policy::{self, Decided, KeepReason, RmiVerdict, Verdict};
use crate::engine::Engine;
use crate::error::Error;
use crate::host;

pub use crate::core::policy::REMOVAL_GRACE_MS;

/// An untagged parent left behind by a removal (`noprune`): to be recorded as deferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The parent image.
    pub parent: ImageId,
    /// The image removed.
    pub child: ImageId,
}

/// Carries out every `Remove` verdict, no sooner than `not_before_ms` (ms since the epoch),
/// replacing it with what really happened; `done` hears of each removal attempted. A removal
/// waits up to `patience` in all for running imgguard builds to end, else it is deferred
/// (`[ref:build-lock]`). Other verdicts are left as they are. Returns the untagged parents the
/// removals left behind.
pub async fn apply<D: Decided>(
    engine: &Engine,
    decisions: &mut [D],
    not_before_ms: i64,
    patience: Duration,
    mut done: impl FnMut(&D),
) -> Result<Vec<Orphan>, Error> {
    let mut orphans = Vec::new();
    if !decisions.iter().any(|d| *d.verdict() == Verdict::Remove) {
        return Ok(orphans);
    }
    wait_until(not_before_ms).await;
    let lock = host::RemovalLock::open();
    let until = Instant::now() + patience;
    // An image's parent never changes; the images about to go are dangling.
    let parents = engine.parents(true).await?;
    for d in decisions.iter_mut().filter(|d| *d.verdict() == Verdict::Remove) {
        let parent = parents.get(d.image()).cloned();
        let (verdict, orphan) = remove(engine, d.image(), parent, lock.turn(until).await).await?;
        d.set_verdict(verdict);
        orphans.extend(orphan);
        done(d);
    }
    Ok(orphans)
}

/// Sleeps until `at_ms` (ms since the epoch), at most [`REMOVAL_GRACE_MS`].
async fn wait_until(at_ms: i64) {
    let wait = at_ms.saturating_sub(host::now_ms()).clamp(0, REMOVAL_GRACE_MS);
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    }
}

/// A deferred parent and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentDecision {
    /// The parent.
    pub image: ImageId,
    /// The child imgguard removed, when it is build cache (else its removal would have raced a
    /// build).
    pub child: Option<ImageId>,
    /// Remove, kept (why), or gone.
    pub verdict: Verdict,
}

impl Decided for ParentDecision {
    fn image(&self) -> &ImageId {
        &self.image
    }
    fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    fn set_verdict(&mut self, verdict: Verdict) {
        self.verdict = verdict;
    }
    fn tag(&self) -> Option<&str> {
        None
    }
    fn removal_reason(&self) -> String {
        match &self.child {
            Some(child) => format!("build cache of removed {}", child.short()),
            None => "deferred while an imgguard build ran".to_string(),
        }
    }
}

/// Frees deferred images whose grace period is over (`pending`: image, deferred at, child),
/// each re-checked and removed without force like any other image; the daemon refuses one that
/// has children or containers (kept, in its words). Returns what became of each — leaving out
/// those deferred again because an imgguard build is running: they stay pending as recorded —
/// and the parents those removals left in turn.
pub async fn free_parents(
    engine: &Engine,
    pending: &[Pending],
    now_ms: i64,
    patience: Duration,
) -> Result<(Vec<ParentDecision>, Vec<Orphan>), Error> {
    let mut decisions: Vec<ParentDecision> = pending
        .iter()
        .filter(|(_, since, _)| since.saturating_add(REMOVAL_GRACE_MS) <= now_ms)
        .map(|(image, _, child)| ParentDecision {
            image: image.clone(),
            child: child.clone(),
            verdict: Verdict::Remove,
        })
        .collect();
    let orphans = apply(engine, &mut decisions, now_ms, patience, |_| {}).await?;
    decisions.retain(|d| d.verdict != Verdict::Keep(KeepReason::BuildRunning));
    Ok((decisions, orphans))
}

/// Re-checks one image, then removes it without force: `[ref:recheck-before-remove]`,
/// `[ref:never-forced]`. With it, its untagged parent when the removal left one.
async fn remove(
    engine: &Engine,
    id: &ImageId,
    parent: Option<ImageId>,
    turn: host::Turn<'_>,
) -> Result<(Verdict, Option<Orphan>), Error> {
    // Held to the end of this function: no imgguard build starts meanwhile.
    if matches!(turn, host::Turn::BuildRunning) {
        return Ok((Verdict::Keep(KeepReason::BuildRunning), None));
    }
    let now = engine.inspect(id.as_str()).await?;
    if let Some(verdict) = policy::recheck(now.as_ref()) {
        return Ok((verdict, None));
    }
    Ok(match engine.remove(id.as_str()).await? {
        Removal::Removed { deleted, .. } => {
            let orphan = match parent {
                Some(p) if deleted.iter().any(|d| d == id.as_str()) => {
                    untagged(engine, p, id).await?
                }
                _ => None,
            };
            (Verdict::Remove, orphan)
        }
        Removal::Conflict(msg) => (Verdict::Keep(KeepReason::Daemon(msg)), None),
        Removal::Gone => (Verdict::Gone, None),
    })
}

/// The parent as an orphan to defer, if it is untagged (a tagged base image is someone's).
async fn untagged(
    engine: &Engine,
    parent: ImageId,
    child: &ImageId,
) -> Result<Option<Orphan>, Error> {
    Ok(match engine.inspect(parent.as_str()).await? {
        Some(info) if info.repo_tags.is_empty() => Some(Orphan { parent, child: child.clone() }),
        _ => None,
    })
}

/// What `imgguard rmi` did with one reference.
#[derive(Debug)]
pub enum RmiResult {
    /// Refused: removing it would leave an image in use without a name.
    Refused(KeepReason),
    /// The daemon removed (or untagged) it, or refused; with the untagged parent it left.
    Done(Removal, Option<Orphan>),
}

/// `imgguard rmi` of one reference to `image`: waits up to `patience` for running imgguard
/// builds to end (`[ref:build-lock]`; refused if they do not), looks at the image's tags once
/// more, decides (pure [`policy::rmi_verdict`]), then removes the reference without force.
pub async fn remove_reference(
    engine: &Engine,
    reference: &str,
    by_tag: bool,
    image: &ImageInfo,
    containers: &[ContainerInfo],
    patience: Duration,
) -> Result<RmiResult, Error> {
    // Held to the end of this function: no imgguard build starts meanwhile.
    let lock = host::RemovalLock::open();
    let turn = lock.turn(Instant::now() + patience).await;
    if matches!(turn, host::Turn::BuildRunning) {
        return Ok(RmiResult::Refused(KeepReason::BuildRunning));
    }
    let Some(now) = engine.inspect(image.id.as_str()).await? else {
        return Ok(RmiResult::Done(Removal::Gone, None));
    };
    let users = KeepReason::in_use(containers.iter().filter(|c| c.image_id == image.id));
    let KeepReason::InUse(users) = users else { unreachable!("in_use makes InUse") };
    if let RmiVerdict::Refuse(reason) = policy::rmi_verdict(by_tag, &now.repo_tags, &users) {
        return Ok(RmiResult::Refused(reason));
    }
    let parent = if by_tag && now.repo_tags.len() > 1 {
        None
    } else {
        engine.parents(false).await?.remove(&now.id)
    };
    let removal = engine.remove(reference).await?;
    let orphan = match (&removal, parent) {
        (Removal::Removed { deleted, .. }, Some(p))
            if deleted.iter().any(|d| *d == now.id.as_str()) =>
        {
            untagged(engine, p, &now.id).await?
        }
        _ => None,
    };
    Ok(RmiResult::Done(removal, orphan))
}
