//! Why each `<none>` image exists, and which of them `prune` may remove. Pure: it is handed the
//! daemon's image and container lists, the ledger's events and the time, and does no I/O.
//!
//! Causes (the `cause` field of `explain --format json`):
//! - `superseded`: a tag the ledger saw on the image moved to another image (by an imgguard build
//!   or load, or outside imgguard: a plain `docker build`);
//! - `loaded-nameless`: it came from an archive without names (`docker save <ID>`);
//! - `force-untagged`: the ledger last saw tag X on it, X points nowhere now, and a container still
//!   uses it (`docker rmi -f` on an image in use);
//! - `unknown`: the ledger never saw it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::core::event::{Event, EventKind, Recorded, OUTCOME_NAMELESS, OUTCOME_NOT_IN_DAEMON};
use crate::core::image::{ContainerInfo, ImageId, ListedImage};
use crate::core::policy::matches_pattern;

/// Why an image is dangling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// `tag` left it for `by` (`None`: the tag was removed) at `at_ms`, through `how`.
    Superseded { tag: String, by: Option<ImageId>, at_ms: i64, how: EventKind },
    /// Loaded from an archive without names.
    LoadedNameless { archive: Option<String>, at_ms: i64 },
    /// Its last tag was taken off while a container used it.
    ForceUntagged { tag: String, at_ms: i64 },
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
            Cause::Unknown => "unknown",
        }
    }

    /// When it became dangling, if the ledger knows.
    pub fn since_ms(&self) -> Option<i64> {
        match self {
            Cause::Superseded { at_ms, .. }
            | Cause::LoadedNameless { at_ms, .. }
            | Cause::ForceUntagged { at_ms, .. } => Some(*at_ms),
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
/// a `moved-outside` event for each move imgguard did not make.
pub fn reconcile(
    events: &[Recorded],
    engine: &str,
    images: &[ListedImage],
    now_ms: i64,
) -> Vec<Event> {
    let daemon: HashMap<&str, &ImageId> =
        images.iter().flat_map(|i| i.repo_tags.iter().map(move |t| (t.as_str(), &i.id))).collect();
    let mut current: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut sorted: Vec<&Recorded> =
        events.iter().filter(|r| r.event.engine == engine && is_pointer(&r.event)).collect();
    sorted.sort_by_key(|r| r.seq);
    for r in sorted {
        if let Some(tag) = r.event.tag.as_deref() {
            current.insert(tag, r.event.image_id.as_deref());
        }
    }
    current
        .into_iter()
        .filter_map(|(tag, recorded)| {
            let now = daemon.get(tag).map(|id| id.as_str());
            (now != recorded).then(|| {
                let mut e = Event::new(engine, now_ms, EventKind::MovedOutside);
                e.tag = Some(tag.to_string());
                e.image_id = now.map(str::to_string);
                e.previous_id = recorded.map(str::to_string);
                e.reason = Some(match now {
                    Some(_) => "moved outside imgguard".to_string(),
                    None => "removed outside imgguard".to_string(),
                });
                e
            })
        })
        .collect()
}

fn is_pointer(e: &Event) -> bool {
    e.kind().moves_tag() && e.outcome.as_deref() != Some(OUTCOME_NOT_IN_DAEMON)
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
    for r in &sorted {
        let e = &r.event;
        if is_pointer(e) {
            if let Some(tag) = e.tag.as_deref() {
                by_tag.entry(tag).or_default().push(r);
            }
        }
        if e.kind() == EventKind::Load && e.outcome.as_deref() == Some(OUTCOME_NAMELESS) {
            if let Some(id) = e.image_id.as_deref() {
                nameless.insert(id, r);
            }
        }
    }

    let mut out: Vec<Explained> = images
        .iter()
        .filter(|i| i.repo_tags.is_empty())
        .filter_map(|image| {
            let id = image.id.as_str();
            let users: Vec<ContainerInfo> =
                containers.iter().filter(|c| c.image_id == image.id).cloned().collect();
            // Each time a tag left this image: (seq, tag, where to, when, how).
            let mut left: Vec<(i64, &str, Option<&str>, i64, EventKind)> = Vec::new();
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
                            next.seq,
                            tag,
                            next.event.image_id.as_deref(),
                            next.event.at_ms,
                            next.event.kind(),
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
                (None, None) => Cause::Unknown,
            };
            let has_children = parents.contains(&image.id);
            if has_children && cause == Cause::Unknown {
                // An intermediate layer of some build: docker hides it, and so do we.
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

fn nameless_cause(r: &Recorded) -> Cause {
    Cause::LoadedNameless { archive: r.event.archive_path.clone(), at_ms: r.event.at_ms }
}

/// Whether an image carries every label asked for (`KEY` or `KEY=VALUE`).
pub fn has_labels(image: &ListedImage, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => image.labels.get(k).is_some_and(|x| x == v),
        None => image.labels.contains_key(w),
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

/// Why prune keeps an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneKeep {
    /// Containers use it.
    InUse(Vec<(String, String)>),
    /// Other images are built on it.
    HasChildren,
    /// A protect pattern matches a tag it carried.
    Protected { pattern: String, tag: String },
    /// The ledger cannot explain it and `--unknown` was not given.
    Unknown,
    /// Younger than `--min-age`.
    TooYoung { age_ms: i64, min_ms: i64 },
    /// One of the `--keep N` most recent images of a tag.
    Rollback { tag: String, keep: usize },
}

impl fmt::Display for PruneKeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneKeep::InUse(users) => {
                let list: Vec<String> = users.iter().map(|(n, s)| format!("{n} ({s})")).collect();
                let noun = if users.len() == 1 { "container" } else { "containers" };
                write!(f, "used by {noun} {}", list.join(", "))
            }
            PruneKeep::HasChildren => f.write_str("has child images"),
            PruneKeep::Protected { pattern, tag } => {
                write!(f, "protected: {tag} matches pattern `{pattern}`")
            }
            PruneKeep::Unknown => f.write_str("unknown to imgguard (`prune --unknown` removes it)"),
            PruneKeep::TooYoung { age_ms, min_ms } => write!(
                f,
                "younger than --min-age {} (dangling for {})",
                format_duration(*min_ms),
                format_duration(*age_ms)
            ),
            PruneKeep::Rollback { tag, keep } => {
                write!(f, "kept for rollback: one of the {keep} most recent images of {tag}")
            }
        }
    }
}

/// For each explained image (same order), `None` to remove or the reason to keep it.
pub fn plan_prune(
    explained: &[Explained],
    rules: &PruneRules,
    now_ms: i64,
) -> Vec<Option<PruneKeep>> {
    // Rollback: per tag, the newest `keep` superseded images stay.
    let mut rollback: HashSet<&ImageId> = HashSet::new();
    if rules.keep > 0 {
        let mut per_tag: HashMap<&str, Vec<(i64, &ImageId)>> = HashMap::new();
        for e in explained {
            if let Cause::Superseded { tag, at_ms, .. } = &e.cause {
                per_tag.entry(tag).or_default().push((*at_ms, &e.image.id));
            }
        }
        for list in per_tag.values_mut() {
            list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            rollback.extend(list.iter().take(rules.keep).map(|(_, id)| *id));
        }
    }
    explained
        .iter()
        .map(|e| {
            if !e.containers.is_empty() {
                let mut users: Vec<(String, String)> =
                    e.containers.iter().map(|c| (c.name.clone(), c.state.clone())).collect();
                users.sort();
                return Some(PruneKeep::InUse(users));
            }
            if e.has_children {
                return Some(PruneKeep::HasChildren);
            }
            for tag in &e.former_tags {
                if let Some(p) = rules.protect.iter().find(|p| matches_pattern(p, tag)) {
                    return Some(PruneKeep::Protected { pattern: p.clone(), tag: tag.clone() });
                }
            }
            if e.cause == Cause::Unknown && !rules.unknown {
                return Some(PruneKeep::Unknown);
            }
            let since = e.cause.since_ms().unwrap_or(e.image.created_s.saturating_mul(1000));
            let age_ms = now_ms.saturating_sub(since);
            if age_ms < rules.min_age_ms {
                return Some(PruneKeep::TooYoung { age_ms, min_ms: rules.min_age_ms });
            }
            if rollback.contains(&e.image.id) {
                if let Cause::Superseded { tag, .. } = &e.cause {
                    return Some(PruneKeep::Rollback { tag: tag.clone(), keep: rules.keep });
                }
            }
            None
        })
        .collect()
}

/// Parses `90s`, `30m`, `1h`, `2d`, `1w`, or a bare number of seconds, into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 =
        num.parse().map_err(|_| format!("invalid duration `{s}` (use e.g. 90s, 30m, 1h, 2d)"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("invalid duration `{s}` (use e.g. 90s, 30m, 1h, 2d)")),
    };
    n.checked_mul(secs * 1000).ok_or_else(|| format!("duration `{s}` is too long"))
}

/// `3d4h`, `12m`, `40s` — the two largest units.
pub fn format_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "E";
    const HOUR: i64 = 3_600_000;

    fn id(s: &str) -> ImageId {
        ImageId::new(format!("sha256:{s}"))
    }

    fn img(s: &str, tags: &[&str], created_s: i64) -> ListedImage {
        ListedImage {
            id: id(s),
            parent: None,
            repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
            created_s,
            size: 100,
            labels: BTreeMap::new(),
        }
    }

    fn ev(seq: i64, kind: EventKind, tag: Option<&str>, image: Option<&str>) -> Recorded {
        let mut event = Event::new(E, seq * HOUR, kind);
        event.tag = tag.map(str::to_string);
        event.image_id = image.map(|s| format!("sha256:{s}"));
        Recorded { seq, event }
    }

    fn container(name: &str, image: &str) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            image_id: id(image),
            state: "running".into(),
        }
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
        assert_eq!(moves[0].kind(), EventKind::MovedOutside);
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
        load.event.outcome = Some(OUTCOME_NAMELESS.into());
        load.event.archive_path = Some("/tmp/a.tar".into());
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
        load.event.outcome = Some(OUTCOME_NAMELESS.into());
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
        let plan = plan_prune(&list, &rules, 100 * HOUR);
        let names: Vec<&str> = plan
            .iter()
            .map(|p| match p {
                None => "remove",
                Some(PruneKeep::InUse(_)) => "in-use",
                Some(PruneKeep::Protected { .. }) => "protected",
                Some(PruneKeep::Unknown) => "unknown",
                Some(PruneKeep::TooYoung { .. }) => "young",
                Some(PruneKeep::Rollback { .. }) => "rollback",
                Some(PruneKeep::HasChildren) => "children",
            })
            .collect();
        assert_eq!(
            names,
            ["in-use", "protected", "unknown", "young", "rollback", "rollback", "remove"]
        );
        let unknown_too = PruneRules { unknown: true, ..rules };
        assert_eq!(plan_prune(&list[2..3], &unknown_too, 100 * HOUR), [None]);
    }

    #[test]
    fn label_filter() {
        let mut i = img("A", &[], 0);
        i.labels.insert("team".into(), "web".into());
        assert!(has_labels(&i, &[]));
        assert!(has_labels(&i, &["team".into()]));
        assert!(has_labels(&i, &["team=web".into()]));
        assert!(!has_labels(&i, &["team=db".into()]));
        assert!(!has_labels(&i, &["team=web".into(), "x".into()]));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("1h"), Ok(HOUR));
        assert_eq!(parse_duration("2d"), Ok(48 * HOUR));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(90_061_000), "1d1h");
        assert_eq!(format_duration(5 * 60_000), "5m");
        assert_eq!(format_duration(HOUR + 60_000), "1h01m");
    }
}
