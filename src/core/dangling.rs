//! Why each `<none>` image exists, and which of them `prune` may remove. Pure: it is handed the
//! daemon's image and container lists, the ledger's events and the time, and does no I/O.
//!
//! Causes (the `cause` field of `explain --format json`):
//! - `superseded`: a tag the ledger saw on the image moved to another image (by an imgguard build
//!   or load, or outside imgguard: a plain `docker build`);
//! - `loaded-nameless`: it came from an archive without names (`docker save <ID>`);
//! - `force-untagged`: the ledger last saw tag X on it, X points nowhere now, and a container still
//!   uses it (`docker rmi -f` on an image in use);
//! - `build-cache`: the legacy builder's cache parent of an image imgguard removed; its removal
//!   was deferred (`[ref:removal-grace]`) and the next build or prune carries it out;
//! - `interrupted-build`: the ledger never saw it, and it was made while an `imgguard build` run
//!   that was interrupted (signalled, or killed and found so by a later command) ran: docker
//!   leaves such images when its build is cut short;
//! - `unknown`: the ledger never saw it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::core::event::{intents, Event, EventKind, Intent, Outcome, ReasonKind, Recorded};
use crate::core::image::{ContainerInfo, ImageId, ListedImage};
use crate::core::policy::{matches_pattern, Decided, KeepReason, Verdict};

/// Why an image is dangling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// `tag` left it for `by` (`None`: the tag was removed) at `at_ms`, through `how`.
    Superseded { tag: String, by: Option<ImageId>, at_ms: i64, how: EventKind },
    /// Loaded from an archive without names.
    LoadedNameless { archive: Option<String>, at_ms: i64 },
    /// Its last tag was taken off while a container used it.
    ForceUntagged { tag: String, at_ms: i64 },
    /// The cache parent of `child`, which imgguard removed at `at_ms`; its removal is deferred.
    BuildCache { child: ImageId, at_ms: i64 },
    /// Made (at `at_ms`) during a build run of `tags` that was interrupted.
    InterruptedBuild { tags: Vec<String>, at_ms: i64 },
    /// The ledger never saw it.
    Unknown,
}

impl Cause {
    /// The contract name.
    pub fn name(&self) -> &'static str {
        match self {
            Cause::Superseded { .. } => "superseded",
            Cause::LoadedNameless { .. } => "loaded-nameless",
            Cause::ForceUntagged { .. } => "force-untagged",
            Cause::BuildCache { .. } => "build-cache",
            Cause::InterruptedBuild { .. } => "interrupted-build",
            Cause::Unknown => "unknown",
        }
    }

    /// When it became dangling, if the ledger knows.
    pub fn since_ms(&self) -> Option<i64> {
        match self {
            Cause::Superseded { at_ms, .. }
            | Cause::LoadedNameless { at_ms, .. }
            | Cause::ForceUntagged { at_ms, .. }
            | Cause::BuildCache { at_ms, .. }
            | Cause::InterruptedBuild { at_ms, .. } => Some(*at_ms),
            Cause::Unknown => None,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Superseded { tag, by: Some(by), how, .. } => {
                let who = match how {
                    EventKind::MovedOutside => "outside imgguard",
                    EventKind::Load => "by imgguard load",
                    EventKind::Tag => "by imgguard tag",
                    _ => "by imgguard build",
                };
                write!(f, "{tag} moved to {} {who}", by.short())
            }
            Cause::Superseded { tag, by: None, .. } => write!(f, "{tag} was removed"),
            Cause::LoadedNameless { archive: Some(a), .. } => {
                write!(f, "loaded without a name from {a}")
            }
            Cause::LoadedNameless { archive: None, .. } => {
                f.write_str("loaded without a name from an archive")
            }
            Cause::ForceUntagged { tag, .. } => {
                write!(f, "{tag} was force-removed while a container used it")
            }
            Cause::BuildCache { child, .. } => {
                write!(
                    f,
                    "build cache of {}, removed by imgguard (removal deferred)",
                    child.short()
                )
            }
            Cause::InterruptedBuild { tags, .. } => {
                write!(f, "left by an interrupted imgguard build of {}", tags.join(", "))
            }
            Cause::Unknown => f.write_str("never seen by imgguard"),
        }
    }
}

/// One dangling image with its cause and everything that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// The image as the daemon lists it.
    pub image: ListedImage,
    /// Why it is dangling.
    pub cause: Cause,
    /// Tags the ledger saw on it, newest first.
    pub former_tags: Vec<String>,
    /// Containers created from it.
    pub containers: Vec<ContainerInfo>,
    /// Whether other images are built on it (docker's `dangling=true` hides such images).
    pub has_children: bool,
}

/// Compares where the ledger believes each tracked tag points with the daemon's tags, and returns
/// a `moved-outside` event for each move imgguard did not make. Derives the tags' current state
/// from the whole log: [`reconcile_current`] is the same over a ledger's current-state table.
pub fn reconcile(
    events: &[Recorded],
    engine: &str,
    images: &[ListedImage],
    now_ms: i64,
) -> Vec<Event> {
    reconcile_current(&current_state(events, engine), engine, images, now_ms)
}

/// Where the log says each tag of `engine` points now (`None`: removed), by tag: the pointer
/// event of each tag ever moved that comes last in `[ref:observed-order]`.
pub fn current_state(events: &[Recorded], engine: &str) -> Vec<(String, Option<String>)> {
    let mut current: BTreeMap<&str, ((i64, i64), Option<&str>)> = BTreeMap::new();
    for r in events.iter().filter(|r| r.event.engine == engine && is_pointer(&r.event)) {
        if let Some(tag) = r.event.tag.as_deref() {
            let order = crate::core::event::pointer_order(r);
            let slot = current.entry(tag).or_insert((order, r.event.image_id.as_deref()));
            if order >= slot.0 {
                *slot = (order, r.event.image_id.as_deref());
            }
        }
    }
    current
        .into_iter()
        .map(|(tag, (_, image))| (tag.to_string(), image.map(str::to_string)))
        .collect()
}

/// [`reconcile`] over the current state of each tracked tag (`(tag, image it points at)`, as a
/// ledger keeps it), so that no command reads the whole log to find the tags that moved.
pub fn reconcile_current(
    current: &[(String, Option<String>)],
    engine: &str,
    images: &[ListedImage],
    now_ms: i64,
) -> Vec<Event> {
    let daemon: HashMap<&str, &ImageId> =
        images.iter().flat_map(|i| i.repo_tags.iter().map(move |t| (t.as_str(), &i.id))).collect();
    current
        .iter()
        .filter_map(|(tag, recorded)| {
            let now = daemon.get(tag.as_str()).map(|id| id.as_str());
            let recorded = recorded.as_deref();
            (now != recorded).then(|| {
                Event::moved_outside(engine, now_ms, tag, now, recorded, ReasonKind::MovedOutside)
            })
        })
        .collect()
}

fn is_pointer(e: &Event) -> bool {
    e.is_pointer()
}

/// Explains every dangling image: untagged and without children (what `docker images -f
/// dangling=true` lists), plus untagged images with children that the ledger knows.
/// `events` must already include the reconciliation's events.
pub fn explain(
    images: &[ListedImage],
    containers: &[ContainerInfo],
    events: &[Recorded],
    engine: &str,
) -> Vec<Explained> {
    let parents: HashSet<&ImageId> = images.iter().filter_map(|i| i.parent.as_ref()).collect();
    let mut sorted: Vec<&Recorded> = events.iter().filter(|r| r.event.engine == engine).collect();
    sorted.sort_by_key(|r| r.seq);

    // Per tag, the pointer events in order; per image, the nameless loads.
    let mut by_tag: HashMap<&str, Vec<&Recorded>> = HashMap::new();
    let mut nameless: HashMap<&str, &Recorded> = HashMap::new();
    let interrupted: Vec<Intent> = intents(events, engine)
        .into_iter()
        .filter(|i| matches!(i.end, Some((Outcome::Interrupted, _))))
        .collect();
    // Every image whose removal was ever deferred, with its latest deferral: one that is
    // dangling now is build cache whatever came after (a refusal because it had children then,
    // recorded after a later deferral by a concurrent command, must not make it unknown).
    // A deferral that names no child (a removal that would have raced a build) says nothing
    // about why the image is dangling.
    let mut deferred: HashMap<ImageId, (i64, ImageId)> = HashMap::new();
    for r in &sorted {
        let e = &r.event;
        if e.reason.as_ref().is_some_and(|x| x.kind == ReasonKind::Deferred) {
            if let (Some(id), Some(child)) = (e.image_id.as_deref(), e.previous_id.as_deref()) {
                deferred.insert(ImageId::new(id), (e.at_ms, ImageId::new(child)));
            }
        }
    }
    for r in &sorted {
        let e = &r.event;
        if is_pointer(e) {
            if let Some(tag) = e.tag.as_deref() {
                by_tag.entry(tag).or_default().push(r);
            }
        }
        if e.kind == EventKind::Load && e.outcome == Some(Outcome::Nameless) {
            if let Some(id) = e.image_id.as_deref() {
                nameless.insert(id, r);
            }
        }
    }
    // Each tag's moves in the order the daemon was observed (`[ref:observed-order]`): two
    // builds of one tag may commit in the other order.
    for list in by_tag.values_mut() {
        list.sort_by_key(|r| crate::core::event::pointer_order(r));
    }

    let mut out: Vec<Explained> = images
        .iter()
        .filter(|i| i.repo_tags.is_empty())
        .filter_map(|image| {
            let id = image.id.as_str();
            let users: Vec<ContainerInfo> =
                containers.iter().filter(|c| c.image_id == image.id).cloned().collect();
            // Each time a tag left this image: (order, tag, where to, when, how).
            let mut left: Vec<Left<'_>> = Vec::new();
            let mut former: Vec<(i64, &str)> = Vec::new();
            for (tag, list) in &by_tag {
                for (k, r) in list.iter().enumerate() {
                    if r.event.image_id.as_deref() != Some(id) {
                        continue;
                    }
                    former.push((r.seq, tag));
                    if let Some(next) =
                        list[k + 1..].iter().find(|n| n.event.image_id.as_deref() != Some(id))
                    {
                        left.push((
                            crate::core::event::pointer_order(next),
                            tag,
                            next.event.image_id.as_deref(),
                            next.event.at_ms,
                            next.event.kind,
                        ));
                    }
                }
            }
            let last_left = left.iter().max_by_key(|l| l.0);
            let last_named = former.iter().map(|f| f.0).max();
            let load = nameless.get(id);
            let cause = match (last_left, load) {
                // Loaded nameless after any tag was last put on it: this copy of the image came
                // from the archive, whatever happened to its tags before (even if the ledger only
                // noticed later that they are gone).
                (_, Some(n)) if last_named.is_none_or(|named| n.seq > named) => nameless_cause(n),
                (None, Some(n)) => nameless_cause(n),
                (Some(&(_, tag, None, at_ms, _)), _) if !users.is_empty() => {
                    Cause::ForceUntagged { tag: tag.to_string(), at_ms }
                }
                (Some(&(_, tag, by, at_ms, how)), _) => {
                    Cause::Superseded { tag: tag.to_string(), by: by.map(ImageId::new), at_ms, how }
                }
                (None, None) => match deferred.get(&image.id) {
                    Some((at_ms, child)) => {
                        Cause::BuildCache { child: child.clone(), at_ms: *at_ms }
                    }
                    // Intermediates with children stay hidden, as unknown ones do.
                    None if parents.contains(&image.id) => Cause::Unknown,
                    None => interrupted_cause(&interrupted, image),
                },
            };
            let has_children = parents.contains(&image.id);
            if has_children && matches!(cause, Cause::Unknown | Cause::BuildCache { .. }) {
                // An intermediate layer of some build: docker hides it, and so do we (build cache
                // comes back when its last child goes).
                return None;
            }
            former.sort_by_key(|f| std::cmp::Reverse(f.0));
            let mut former_tags: Vec<String> = Vec::new();
            for (_, t) in former {
                if !former_tags.iter().any(|x| x == t) {
                    former_tags.push(t.to_string());
                }
            }
            Some(Explained {
                image: image.clone(),
                cause,
                former_tags,
                containers: users,
                has_children,
            })
        })
        .collect();
    out.sort_by(|a, b| b.image.created_s.cmp(&a.image.created_s).then(a.image.id.cmp(&b.image.id)));
    out
}

/// `interrupted-build` when the image was made while an interrupted run ran (docker's creation
/// time is in whole seconds: a second of slack before the start), else `unknown`.
fn interrupted_cause(runs: &[Intent], image: &ListedImage) -> Cause {
    let made_ms = image.created_s.saturating_mul(1000);
    runs.iter()
        .rev()
        .find(|r| {
            let end = r.end.map_or(i64::MAX, |(_, at)| at);
            made_ms >= r.start_ms - 1000 && made_ms <= end
        })
        // Its age counts from its creation: on a shared daemon another build's fresh
        // intermediate can fall in the window too, and `--min-age` (and the removal grace) must
        // give that build time to build on it.
        .map_or(Cause::Unknown, |r| Cause::InterruptedBuild {
            tags: r.tags.iter().map(|(t, _)| t.clone()).collect(),
            at_ms: made_ms.max(r.start_ms),
        })
}

/// A tag leaving an image: (its order, the tag, where it went, when, how).
type Left<'a> = ((i64, i64), &'a str, Option<&'a str>, i64, EventKind);

fn nameless_cause(r: &Recorded) -> Cause {
    Cause::LoadedNameless {
        archive: r.event.archive_path().map(str::to_string),
        at_ms: r.event.at_ms,
    }
}

/// A label filter: `KEY` (the label is there) or `KEY=VALUE` (it has that value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    /// The label's key, never empty.
    pub key: String,
    /// The value it must have, if one was given.
    pub value: Option<String>,
}

impl LabelFilter {
    /// Parses `KEY` or `KEY=VALUE`; a filter without a key is an error.
    pub fn parse(text: &str) -> Result<LabelFilter, String> {
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (text, None),
        };
        if key.trim().is_empty() {
            return Err(format!("label filter `{text}` has no key (use KEY or KEY=VALUE)"));
        }
        Ok(LabelFilter { key: key.to_string(), value })
    }
}

/// Whether an image carries every label asked for.
pub fn has_labels(image: &ListedImage, wanted: &[LabelFilter]) -> bool {
    labels_match(&image.labels, wanted)
}

/// Whether `labels` hold every label asked for.
pub fn labels_match(labels: &BTreeMap<String, String>, wanted: &[LabelFilter]) -> bool {
    wanted.iter().all(|w| match &w.value {
        Some(v) => labels.get(&w.key).is_some_and(|x| x == v),
        None => labels.contains_key(&w.key),
    })
}

/// What `prune` may remove.
#[derive(Debug, Clone, Default)]
pub struct PruneRules {
    /// Keep this many of the most recent superseded images of each tag (rollback).
    pub keep: usize,
    /// Spare images that became dangling (or, if the ledger does not know when, were created)
    /// less than this long ago.
    pub min_age_ms: i64,
    /// Also remove images the ledger cannot explain.
    pub unknown: bool,
    /// Reference patterns never removed.
    pub protect: Vec<String>,
}

/// The verdict on one dangling image, carrying the image itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneDecision {
    /// The image, its cause and what holds it.
    pub explained: Explained,
    /// Remove, keep (why), or gone.
    pub verdict: Verdict,
}

impl PruneDecision {
    /// Why it is kept, if it is.
    pub fn keep(&self) -> Option<&KeepReason> {
        match &self.verdict {
            Verdict::Keep(k) => Some(k),
            _ => None,
        }
    }
}

impl Decided for PruneDecision {
    fn image(&self) -> &ImageId {
        &self.explained.image.id
    }
    fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    fn set_verdict(&mut self, verdict: Verdict) {
        self.verdict = verdict;
    }
    fn tag(&self) -> Option<&str> {
        self.explained.former_tags.first().map(String::as_str)
    }
    fn size(&self) -> Option<i64> {
        Some(self.explained.image.size)
    }
    fn removal_reason(&self) -> String {
        format!("pruned: {}", self.explained.cause)
    }
}

/// Decides, for each explained image (same order), whether `prune` removes it.
pub fn plan_prune(
    explained: Vec<Explained>,
    rules: &PruneRules,
    now_ms: i64,
) -> Vec<PruneDecision> {
    // Rollback: per tag, the newest `keep` superseded images stay.
    let mut rollback: HashSet<ImageId> = HashSet::new();
    if rules.keep > 0 {
        let mut per_tag: HashMap<&str, Vec<(i64, &ImageId)>> = HashMap::new();
        for e in &explained {
            if let Cause::Superseded { tag, at_ms, .. } = &e.cause {
                per_tag.entry(tag).or_default().push((*at_ms, &e.image.id));
            }
        }
        for list in per_tag.values_mut() {
            list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            rollback.extend(list.iter().take(rules.keep).map(|(_, id)| (*id).clone()));
        }
    }
    explained
        .into_iter()
        .map(|explained| {
            let verdict = match prune_keep(&explained, rules, now_ms, &rollback) {
                Some(keep) => Verdict::Keep(keep),
                None => Verdict::Remove,
            };
            PruneDecision { explained, verdict }
        })
        .collect()
}

fn prune_keep(
    e: &Explained,
    rules: &PruneRules,
    now_ms: i64,
    rollback: &HashSet<ImageId>,
) -> Option<KeepReason> {
    if !e.containers.is_empty() {
        return Some(KeepReason::in_use(&e.containers));
    }
    if e.has_children {
        return Some(KeepReason::HasChildren);
    }
    for tag in &e.former_tags {
        if let Some(p) = rules.protect.iter().find(|p| matches_pattern(p, tag)) {
            return Some(KeepReason::Protected { pattern: p.clone(), tag: tag.clone() });
        }
    }
    if e.cause == Cause::Unknown && !rules.unknown {
        return Some(KeepReason::Unknown);
    }
    let since = e.cause.since_ms().unwrap_or(e.image.created_s.saturating_mul(1000));
    let age_ms = now_ms.saturating_sub(since);
    if age_ms < rules.min_age_ms {
        return Some(KeepReason::TooYoung { age_ms, min_ms: rules.min_age_ms });
    }
    if rollback.contains(&e.image.id) {
        if let Cause::Superseded { tag, .. } = &e.cause {
            return Some(KeepReason::Rollback { tag: tag.clone(), keep: rules.keep });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{container as running_container, ev as event, id, listed, HOUR};

    const E: &str = "E";

    fn img(s: &str, tags: &[&str], created_s: i64) -> ListedImage {
        listed(s, tags, created_s)
    }

    /// An event about `sha256:{image}`.
    fn ev(seq: i64, kind: EventKind, tag: Option<&str>, image: Option<&str>) -> Recorded {
        event(seq, kind, tag, image.map(|i| format!("sha256:{i}")).as_deref())
    }

    /// A running container of `sha256:{image}`.
    fn container(name: &str, image: &str) -> ContainerInfo {
        running_container(name, image, "running")
    }

    fn with_seq(mut events: Vec<Event>, from: i64) -> Vec<Recorded> {
        events
            .drain(..)
            .enumerate()
            .map(|(i, event)| Recorded { seq: from + i64::try_from(i).unwrap(), event })
            .collect()
    }

    #[test]
    fn plain_docker_rebuild_is_superseded_outside() {
        // imgguard built x:v1 as A; then plain `docker build -t x:v1` moved it to B.
        let mut log = vec![ev(1, EventKind::Build, Some("x:v1"), Some("A"))];
        let images = vec![img("A", &[], 1), img("B", &["x:v1"], 2)];
        let moves = reconcile(&log, E, &images, 5 * HOUR);
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].kind, EventKind::MovedOutside);
        log.extend(with_seq(moves, 2));
        let out = explain(&images, &[], &log, E);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].cause.name(), "superseded");
        assert_eq!(out[0].cause.to_string(), "x:v1 moved to sha256:B outside imgguard");
        assert_eq!(out[0].former_tags, ["x:v1"]);
        // Reconciling again finds nothing new.
        assert!(reconcile(&log, E, &images, 6 * HOUR).is_empty());
    }

    #[test]
    fn forced_untag_of_an_image_in_use() {
        let mut log = vec![ev(1, EventKind::Build, Some("y:v1"), Some("A"))];
        let images = vec![img("A", &[], 1)];
        log.extend(with_seq(reconcile(&log, E, &images, 2 * HOUR), 2));
        let users = [container("web", "A")];
        let out = explain(&images, &users, &log, E);
        assert_eq!(out[0].cause.name(), "force-untagged");
        assert_eq!(out[0].containers.len(), 1);
    }

    #[test]
    fn nameless_load_and_unknown() {
        let mut load = ev(1, EventKind::Load, None, Some("L"));
        load.event.outcome = Some(Outcome::Nameless);
        load.event.archive = Some(crate::core::event::ArchiveFacts {
            path: Some("/tmp/a.tar".into()),
            ..Default::default()
        });
        let images = vec![img("L", &[], 1), img("U", &[], 1), img("T", &["t:1"], 1)];
        let out = explain(&images, &[], &[load], E);
        let causes: Vec<(&str, &str)> =
            out.iter().map(|e| (e.image.id.as_str(), e.cause.name())).collect();
        assert_eq!(causes, [("sha256:L", "loaded-nameless"), ("sha256:U", "unknown")]);
    }

    #[test]
    fn a_nameless_load_after_the_tag_was_removed_outside_is_loaded_nameless() {
        // Built as x:v1, saved by ID and removed with plain docker, loaded back: the ledger only
        // notices afterwards that x:v1 is gone.
        let mut load = ev(2, EventKind::Load, None, Some("A"));
        load.event.outcome = Some(Outcome::Nameless);
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            load,
            ev(3, EventKind::MovedOutside, Some("x:v1"), None),
        ];
        let out = explain(&[img("A", &[], 1)], &[], &log, E);
        assert_eq!(out[0].cause.name(), "loaded-nameless");
        assert_eq!(out[0].former_tags, ["x:v1"]);
        // Tagged again after the load, then superseded: superseded.
        let mut log = log;
        log.push(ev(4, EventKind::Tag, Some("x:v2"), Some("A")));
        log.push(ev(5, EventKind::Build, Some("x:v2"), Some("B")));
        let out = explain(&[img("A", &[], 1)], &[], &log, E);
        assert_eq!(out[0].cause.name(), "superseded");
    }

    #[test]
    fn intermediate_images_are_hidden_unless_known() {
        let mut child = img("C", &["c:1"], 2);
        child.parent = Some(id("P"));
        let mut child2 = img("C2", &["c:2"], 2);
        child2.parent = Some(id("Q"));
        let images = vec![img("P", &[], 1), img("Q", &[], 1), child, child2];
        let log = vec![
            ev(1, EventKind::Build, Some("q:v1"), Some("Q")),
            ev(2, EventKind::MovedOutside, Some("q:v1"), None),
        ];
        let out = explain(&images, &[], &log, E);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].image.id, id("Q"));
        assert!(out[0].has_children);
    }

    fn explained(name: &str, tag: &str, left_at_h: i64) -> Explained {
        Explained {
            image: img(name, &[], 0),
            cause: Cause::Superseded {
                tag: tag.into(),
                by: Some(id("new")),
                at_ms: left_at_h * HOUR,
                how: EventKind::Build,
            },
            former_tags: vec![tag.into()],
            containers: vec![],
            has_children: false,
        }
    }

    #[test]
    fn prune_policy_keeps_each_reason() {
        let mut in_use = explained("inuse", "a:1", 1);
        in_use.containers = vec![container("web", "inuse")];
        let mut unknown = explained("unk", "u:1", 1);
        unknown.cause = Cause::Unknown;
        unknown.former_tags.clear();
        let list = vec![
            in_use,
            explained("prot", "db:1", 1),
            unknown,
            explained("young", "y:1", 100),
            explained("r1", "r:1", 10),
            explained("r2", "r:1", 11),
            explained("r0", "r:1", 9),
        ];
        let rules =
            PruneRules { keep: 2, min_age_ms: HOUR, unknown: false, protect: vec!["db:*".into()] };
        let plan = plan_prune(list.clone(), &rules, 100 * HOUR);
        let names: Vec<&str> = plan
            .iter()
            .map(|p| match p.keep() {
                None => "remove",
                Some(KeepReason::InUse(_)) => "in-use",
                Some(KeepReason::Protected { .. }) => "protected",
                Some(KeepReason::Unknown) => "unknown",
                Some(KeepReason::TooYoung { .. }) => "young",
                Some(KeepReason::Rollback { .. }) => "rollback",
                Some(_) => "other",
            })
            .collect();
        assert_eq!(
            names,
            ["in-use", "protected", "unknown", "young", "rollback", "rollback", "remove"]
        );
        let unknown_too = PruneRules { unknown: true, ..rules };
        let plan = plan_prune(list[2..3].to_vec(), &unknown_too, 100 * HOUR);
        assert_eq!(plan[0].verdict, Verdict::Remove);
        assert_eq!(plan[0].explained.image.id, id("unk"), "the decision carries its image");
    }

    #[test]
    fn a_build_that_committed_late_is_superseded_by_the_later_observation() {
        use crate::core::event::BuildFacts;
        // Build A saw x:v1 on Xa at 5 ms and committed after build B, which saw it on Xb at 9.
        let f = BuildFacts::default();
        let log = with_seq(
            vec![
                Event::build(E, 9, "x:v1", "sha256:Xb", None, &f),
                Event::build(E, 5, "x:v1", "sha256:Xa", None, &f),
            ],
            1,
        );
        let images = vec![img("Xa", &[], 1), img("Xb", &["x:v1"], 1)];
        assert!(reconcile(&log, E, &images, 10).is_empty(), "the ledger agrees with the daemon");
        let e = explain(&images, &[], &log, E);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].cause.name(), "superseded");
        assert_eq!(e[0].cause.to_string(), "x:v1 moved to sha256:Xb by imgguard build");
    }

    #[test]
    fn a_deferral_for_a_running_build_does_not_make_an_image_build_cache() {
        use crate::core::event::Reason;
        // Deferred because a build was running (`[ref:build-lock]`): no child is named.
        let busy = |image: &str, at_ms| {
            let mut e = Event::new(E, at_ms, EventKind::Kept);
            e.image_id = Some(image.into());
            e.reason = Some(Reason::new(ReasonKind::Deferred, "an imgguard build is running"));
            e
        };
        let log = with_seq(
            vec![
                Event::deferred_parent(E, 40, "sha256:P", "sha256:C"),
                busy("sha256:P", 60),
                busy("sha256:Q", 50),
            ],
            1,
        );
        let images = vec![img("P", &[], 1), img("Q", &[], 1)];
        let causes: Vec<(String, String)> = explain(&images, &[], &log, E)
            .iter()
            .map(|e| (e.image.id.to_string(), e.cause.to_string()))
            .collect();
        assert_eq!(
            causes,
            [
                (
                    "sha256:P".to_string(),
                    "build cache of sha256:C, removed by imgguard (removal deferred)".to_string()
                ),
                ("sha256:Q".to_string(), "never seen by imgguard".to_string()),
            ]
        );
    }

    #[test]
    fn images_made_during_an_interrupted_run_have_a_cause() {
        use crate::core::event::{run_name, Outcome as O};
        let run = run_name(7, 10_000);
        let log = with_seq(
            vec![
                Event::intent(E, 10_000, &run, "x:v1", None),
                Event::intent_end(E, 20_000, &run, O::Interrupted),
                Event::deferred_parent(E, 30_000, "sha256:P", "sha256:C"),
            ],
            1,
        );
        let images = vec![
            img("during", &[], 12),
            img("after", &[], 25),
            img("before", &[], 5),
            img("P", &[], 1),
        ];
        let causes: Vec<(String, &str)> = explain(&images, &[], &log, E)
            .iter()
            .map(|e| (e.image.id.to_string(), e.cause.name()))
            .collect();
        assert_eq!(
            causes,
            [
                ("sha256:after".to_string(), "unknown"),
                ("sha256:during".to_string(), "interrupted-build"),
                ("sha256:before".to_string(), "unknown"),
                ("sha256:P".to_string(), "build-cache"),
            ]
        );
        // A refusal recorded after a later deferral (two commands at once) keeps it build cache.
        let mut refused = Event::new(E, 40_000, EventKind::Kept);
        refused.image_id = Some("sha256:P".into());
        refused.reason =
            Some(crate::core::event::Reason::new(ReasonKind::DaemonRefused, "children"));
        let mut later = log.clone();
        later.extend(with_seq(vec![refused], 9));
        let p = explain(&images, &[], &later, E);
        assert_eq!(p.iter().find(|e| e.image.id == id("P")).unwrap().cause.name(), "build-cache");
        // prune removes both kinds as it does superseded ones.
        let plan = plan_prune(explain(&images, &[], &log, E), &PruneRules::default(), 100 * HOUR);
        let removed: Vec<&str> = plan
            .iter()
            .filter(|d| d.verdict == Verdict::Remove)
            .map(|d| d.explained.cause.name())
            .collect();
        assert_eq!(removed, ["interrupted-build", "build-cache"]);
    }

    #[test]
    fn label_filter() {
        let mut i = img("A", &[], 0);
        i.labels.insert("team".into(), "web".into());
        let f = |s: &[&str]| s.iter().map(|l| LabelFilter::parse(l).unwrap()).collect::<Vec<_>>();
        assert!(has_labels(&i, &[]));
        assert!(has_labels(&i, &f(&["team"])));
        assert!(has_labels(&i, &f(&["team=web"])));
        assert!(!has_labels(&i, &f(&["team=db"])));
        assert!(!has_labels(&i, &f(&["team=web", "x"])));
        assert!(LabelFilter::parse("").is_err());
        assert!(LabelFilter::parse("=v").is_err());
    }
}
