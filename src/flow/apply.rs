//! Apply: the one removal path. Every command that removes an image (build, load, prune, rmi)
//! comes here, so that the rules below hold everywhere:
//!
//! - `[tag:never-forced]` A removal is never forced: the daemon's own conflict check is the last
//!   guard, and its refusal is reported as kept, in its words.
//! - `[tag:recheck-before-remove]` Just before each removal the image is looked at once more: a
//!   tag or container that appeared since the plan keeps it.
//! - Someone else removing the image first is not an error: it is gone.

use crate::core::image::{ContainerInfo, ImageInfo, Removal};
use crate::core::policy::{self, Decided, KeepReason, RmiVerdict, Verdict};
use crate::engine::Engine;
use crate::error::Error;

/// Carries out every `Remove` verdict, replacing it with what really happened; `done` hears of
/// each removal attempted. Other verdicts are left as they are.
pub async fn apply<D: Decided>(
    engine: &Engine,
    decisions: &mut [D],
    mut done: impl FnMut(&D),
) -> Result<(), Error> {
    for d in decisions.iter_mut().filter(|d| *d.verdict() == Verdict::Remove) {
        let verdict = remove(engine, d.image().as_str()).await?;
        d.set_verdict(verdict);
        done(d);
    }
    Ok(())
}

/// Re-checks one image, then removes it without force: `[ref:recheck-before-remove]`,
/// `[ref:never-forced]`.
async fn remove(engine: &Engine, id: &str) -> Result<Verdict, Error> {
    let now = engine.inspect(id).await?;
    if let Some(verdict) = policy::recheck(now.as_ref()) {
        return Ok(verdict);
    }
    Ok(match engine.remove(id).await? {
        Removal::Removed { .. } => Verdict::Remove,
        Removal::Conflict(msg) => Verdict::Keep(KeepReason::Daemon(msg)),
        Removal::Gone => Verdict::Gone,
    })
}

/// What `imgguard rmi` did with one reference.
#[derive(Debug)]
pub enum RmiResult {
    /// Refused: removing it would leave an image in use without a name.
    Refused(KeepReason),
    /// The daemon removed (or untagged) it, or refused.
    Done(Removal),
}

/// `imgguard rmi` of one reference to `image`: looks at the image's tags once more, decides
/// (pure [`policy::rmi_verdict`]), then removes the reference without force.
pub async fn remove_reference(
    engine: &Engine,
    reference: &str,
    by_tag: bool,
    image: &ImageInfo,
    containers: &[ContainerInfo],
) -> Result<RmiResult, Error> {
    let Some(now) = engine.inspect(image.id.as_str()).await? else {
        return Ok(RmiResult::Done(Removal::Gone));
    };
    let users = KeepReason::in_use(containers.iter().filter(|c| c.image_id == image.id));
    let KeepReason::InUse(users) = users else { unreachable!("in_use makes InUse") };
    if let RmiVerdict::Refuse(reason) = policy::rmi_verdict(by_tag, &now.repo_tags, &users) {
        return Ok(RmiResult::Refused(reason));
    }
    Ok(RmiResult::Done(engine.remove(reference).await?))
}
