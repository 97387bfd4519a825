//! The ledger's event model and what follows from it. Pure: no database, no clock.
//!
//! The ledger is an append-only log of events. Past events are never rewritten; the state of a tag
//! (which image it points at, what became of the images it pointed at before) is derived from the
//! events here, so a crash or two processes writing at once can lose nothing that was committed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What happened. The names are stored in the database and are part of the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `imgguard build` pointed the tag at `image_id` (from `previous_id`).
    Build,
    /// `imgguard load` pointed the tag at `image_id`.
    Load,
    /// A tag was put on an image by imgguard.
    Tag,
    /// A tag was taken off (`image_id` is the image it left).
    Untag,
    /// The daemon showed the tag somewhere the ledger did not expect: moved by plain docker.
    MovedOutside,
    /// An image was saved to an archive.
    Save,
    /// imgguard removed `image_id`.
    Removed,
    /// imgguard decided to keep `image_id` (reason says why).
    Kept,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Build => "build",
            EventKind::Load => "load",
            EventKind::Tag => "tag",
            EventKind::Untag => "untag",
            EventKind::MovedOutside => "moved-outside",
            EventKind::Save => "save",
            EventKind::Removed => "removed",
            EventKind::Kept => "kept",
        }
    }

    /// Whether this kind moves a tag's pointer.
    pub fn moves_tag(self) -> bool {
        matches!(
            self,
            EventKind::Build
                | EventKind::Load
                | EventKind::Tag
                | EventKind::Untag
                | EventKind::MovedOutside
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "build" => EventKind::Build,
            "load" => EventKind::Load,
            "tag" => EventKind::Tag,
            "untag" => EventKind::Untag,
            "moved-outside" => EventKind::MovedOutside,
            "save" => EventKind::Save,
            "removed" => EventKind::Removed,
            "kept" => EventKind::Kept,
            other => return Err(format!("unknown event kind `{other}`")),
        })
    }
}

/// The outcome recorded for a build whose image never reached the daemon (a buildx container
/// driver without `--load`, a push-only build): it does not move the tag in the daemon.
pub const OUTCOME_NOT_IN_DAEMON: &str = "not-in-daemon";

/// The outcome recorded for a load (or save) of an image whose archive carries no name: the
/// image arrives as `<none>:<none>`.
pub const OUTCOME_NAMELESS: &str = "nameless";

/// One event, as appended. Build-arg values and secrets never get here: only names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The daemon's identity (`docker info` ID).
    pub engine: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened.
    pub kind: Option<EventKind>,
    /// The tag concerned (familiar form).
    pub tag: Option<String>,
    /// The image concerned.
    pub image_id: Option<String>,
    /// For tag moves: where the tag pointed before.
    pub previous_id: Option<String>,
    /// A short outcome word (`removed`, `kept`, `gone`, `not-in-daemon`, …).
    pub outcome: Option<String>,
    /// Why, in words.
    pub reason: Option<String>,
    /// HEAD of the build context's repository.
    pub git_commit: Option<String>,
    /// Whether that working tree differed from HEAD.
    pub git_dirty: Option<bool>,
    /// sha256 of the Dockerfile.
    pub dockerfile_sha256: Option<String>,
    /// Names of the build args given (never their values).
    pub build_arg_names: Vec<String>,
    /// Archive path for save/load.
    pub archive_path: Option<String>,
    /// Archive sha256 for save/load.
    pub archive_sha256: Option<String>,
    /// Archive size in bytes for save/load.
    pub archive_size: Option<i64>,
    /// The imgguard version that wrote the event.
    pub imgguard_version: String,
}

impl Event {
    /// A new event of `kind` on `engine` at `at_ms`, written by this imgguard version.
    pub fn new(engine: &str, at_ms: i64, kind: EventKind) -> Event {
        Event {
            engine: engine.to_string(),
            at_ms,
            kind: Some(kind),
            imgguard_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Event::default()
        }
    }

    /// The kind; events read from a store always have one.
    pub fn kind(&self) -> EventKind {
        // Invariant: Event::new and the store's reader always set a kind.
        self.kind.expect("event without kind")
    }

    fn is_pointer(&self) -> bool {
        self.kind().moves_tag() && self.outcome.as_deref() != Some(OUTCOME_NOT_IN_DAEMON)
    }
}

/// An event with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Position in the log; later events have larger numbers.
    pub seq: i64,
    /// The event.
    pub event: Event,
}

/// What a lineage entry's image is now, as far as the ledger knows. The lowercase names are
/// part of the JSON contract of `history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// The tag points here.
    Current,
    /// The tag moved on; nothing was done with the image (yet).
    Superseded,
    /// imgguard removed it.
    Removed,
    /// imgguard kept it, for the recorded reason.
    Kept,
}

impl EntryState {
    /// The contract name: `current`, `superseded`, `removed`, `kept`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Current => "current",
            EntryState::Superseded => "superseded",
            EntryState::Removed => "removed",
            EntryState::Kept => "kept",
        }
    }
}

/// One image ID a tag pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The image.
    pub image_id: String,
    /// When the tag was seen pointing here (ms since the epoch).
    pub at_ms: i64,
    /// Which kind of event moved the tag here.
    pub event: EventKind,
    /// What the image is now.
    pub state: EntryState,
    /// Why it was kept (or how it left), if known.
    pub reason: Option<String>,
    /// The git commit it was built from.
    pub git_commit: Option<String>,
}

/// The lineage of one tag on one engine, newest entry first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// The tag.
    pub tag: String,
    /// The engine identity.
    pub engine: String,
    /// The image IDs it pointed at, newest first.
    pub entries: Vec<Entry>,
}

/// Where the ledger believes `tag` points on `engine` now: the newest pointer event's image
/// (`None` when it never saw the tag, or saw it removed).
pub fn current<'a>(events: &'a [Recorded], engine: &str, tag: &str) -> Option<&'a str> {
    events
        .iter()
        .filter(|r| {
            r.event.engine == engine && r.event.tag.as_deref() == Some(tag) && r.event.is_pointer()
        })
        .max_by_key(|r| r.seq)
        .and_then(|r| r.event.image_id.as_deref())
}

/// The tags that pointed at `image_id` on `engine` at some time, most recent first (each once).
pub fn tags_of_image(events: &[Recorded], engine: &str, image_id: &str) -> Vec<String> {
    let mut hits: Vec<&Recorded> = events
        .iter()
        .filter(|r| {
            r.event.engine == engine
                && r.event.image_id.as_deref() == Some(image_id)
                && r.event.tag.is_some()
                && r.event.is_pointer()
        })
        .collect();
    hits.sort_by_key(|r| std::cmp::Reverse(r.seq));
    let mut out: Vec<String> = Vec::new();
    for r in hits {
        let tag = r.event.tag.clone().unwrap_or_default();
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// Derives every tag's lineage from the log (any order in, sorted by tag then engine out).
pub fn lineages(events: &[Recorded]) -> Vec<Lineage> {
    let mut sorted: Vec<&Recorded> = events.iter().collect();
    sorted.sort_by_key(|r| r.seq);

    // The newest fate of each image: (seq, removed?, reason).
    let mut fates: HashMap<(&str, &str), (i64, EntryState, Option<&str>)> = HashMap::new();
    for r in &sorted {
        let e = &r.event;
        let state = match e.kind() {
            EventKind::Removed => EntryState::Removed,
            EventKind::Kept => EntryState::Kept,
            _ => continue,
        };
        if let Some(id) = e.image_id.as_deref() {
            fates.insert((e.engine.as_str(), id), (r.seq, state, e.reason.as_deref()));
        }
    }

    let mut by_tag: BTreeMap<(&str, &str), Vec<(i64, Entry)>> = BTreeMap::new();
    for r in &sorted {
        let e = &r.event;
        let Some(tag) = e.tag.as_deref() else { continue };
        if !e.is_pointer() {
            continue;
        }
        let entries = by_tag.entry((tag, e.engine.as_str())).or_default();
        let last = entries.last().map(|(_, x)| x.image_id.as_str());
        match e.image_id.as_deref() {
            // A cache hit or a repeated observation: the tag did not move.
            Some(id) if last == Some(id) => {}
            Some(id) => entries.push((
                r.seq,
                Entry {
                    image_id: id.to_string(),
                    at_ms: e.at_ms,
                    event: e.kind(),
                    state: EntryState::Superseded,
                    reason: None,
                    git_commit: e.git_commit.clone(),
                },
            )),
            // The tag was removed: the last entry is no longer current.
            None => entries.push((
                r.seq,
                Entry {
                    image_id: String::new(),
                    at_ms: e.at_ms,
                    event: e.kind(),
                    state: EntryState::Superseded,
                    reason: None,
                    git_commit: None,
                },
            )),
        }
    }

    by_tag
        .into_iter()
        .map(|((tag, engine), entries)| {
            let n = entries.len();
            let mut out: Vec<Entry> = entries
                .into_iter()
                .enumerate()
                .filter_map(|(i, (seq, mut entry))| {
                    if entry.image_id.is_empty() {
                        return None; // a tag-removed marker, not an image
                    }
                    let is_last = i + 1 == n;
                    entry.state =
                        if is_last { EntryState::Current } else { EntryState::Superseded };
                    if let Some((fate_seq, state, reason)) = fates.get(&(engine, &*entry.image_id))
                    {
                        // A fate decided before the tag pointed here again does not apply.
                        if *fate_seq > seq {
                            entry.state = *state;
                            entry.reason = reason.map(str::to_string);
                        }
                    }
                    Some(entry)
                })
                .collect();
            out.reverse();
            Lineage { tag: tag.to_string(), engine: engine.to_string(), entries: out }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, kind: EventKind, tag: Option<&str>, id: Option<&str>) -> Recorded {
        let mut event = Event::new("E", seq * 1000, kind);
        event.tag = tag.map(str::to_string);
        event.image_id = id.map(str::to_string);
        Recorded { seq, event }
    }

    fn states(l: &Lineage) -> Vec<(&str, EntryState)> {
        l.entries.iter().map(|e| (e.image_id.as_str(), e.state)).collect()
    }

    #[test]
    fn rebuild_supersedes_and_removal_is_recorded() {
        let mut removed = ev(3, EventKind::Removed, Some("x:v1"), Some("A"));
        removed.event.reason = Some("superseded by B".into());
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            ev(2, EventKind::Build, Some("x:v1"), Some("B")),
            removed,
        ];
        let l = lineages(&log);
        assert_eq!(l.len(), 1);
        assert_eq!(states(&l[0]), [("B", EntryState::Current), ("A", EntryState::Removed)]);
        assert_eq!(current(&log, "E", "x:v1"), Some("B"));
    }

    #[test]
    fn cache_hit_adds_no_entry() {
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            ev(2, EventKind::Build, Some("x:v1"), Some("A")),
        ];
        assert_eq!(states(&lineages(&log)[0]), [("A", EntryState::Current)]);
    }

    #[test]
    fn kept_carries_its_reason() {
        let mut kept = ev(3, EventKind::Kept, Some("x:v1"), Some("A"));
        kept.event.reason = Some("used by container web-1 (running)".into());
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            ev(2, EventKind::Build, Some("x:v1"), Some("B")),
            kept,
        ];
        let l = lineages(&log);
        assert_eq!(l[0].entries[1].state, EntryState::Kept);
        assert_eq!(l[0].entries[1].reason.as_deref(), Some("used by container web-1 (running)"));
    }

    #[test]
    fn not_in_daemon_build_does_not_move_the_tag() {
        let mut pushed = ev(2, EventKind::Build, Some("x:v1"), Some("B"));
        pushed.event.outcome = Some(OUTCOME_NOT_IN_DAEMON.into());
        let log = vec![ev(1, EventKind::Build, Some("x:v1"), Some("A")), pushed];
        assert_eq!(current(&log, "E", "x:v1"), Some("A"));
        assert_eq!(states(&lineages(&log)[0]), [("A", EntryState::Current)]);
    }

    #[test]
    fn back_to_an_old_image_makes_it_current_again() {
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            ev(2, EventKind::Build, Some("x:v1"), Some("B")),
            ev(3, EventKind::Kept, Some("x:v1"), Some("A")),
            ev(4, EventKind::MovedOutside, Some("x:v1"), Some("A")),
        ];
        assert_eq!(
            states(&lineages(&log)[0]),
            [("A", EntryState::Current), ("B", EntryState::Superseded), ("A", EntryState::Kept)]
        );
    }

    #[test]
    fn untag_leaves_no_current_entry() {
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            ev(2, EventKind::Untag, Some("x:v1"), None),
        ];
        assert_eq!(current(&log, "E", "x:v1"), None);
        assert_eq!(states(&lineages(&log)[0]), [("A", EntryState::Superseded)]);
    }

    #[test]
    fn tags_that_pointed_at_an_image() {
        let mut nameless = ev(5, EventKind::Load, None, Some("A"));
        nameless.event.outcome = Some(OUTCOME_NAMELESS.into());
        let mut saved = ev(6, EventKind::Save, Some("z:v1"), Some("A"));
        saved.event.archive_path = Some("/a.tar".into());
        let log = vec![
            ev(1, EventKind::Build, Some("x:v1"), Some("A")),
            ev(2, EventKind::Build, Some("x:v1"), Some("B")),
            ev(3, EventKind::Tag, Some("y:v1"), Some("A")),
            ev(4, EventKind::Build, Some("x:v1"), Some("A")),
            nameless,
            saved,
        ];
        // A save is not a pointer move; a nameless load has no tag.
        assert_eq!(tags_of_image(&log, "E", "A"), ["x:v1", "y:v1"]);
        assert_eq!(tags_of_image(&log, "E", "B"), ["x:v1"]);
        assert!(tags_of_image(&log, "F", "A").is_empty());
    }

    #[test]
    fn engines_are_kept_apart() {
        let mut other = ev(2, EventKind::Build, Some("x:v1"), Some("Z"));
        other.event.engine = "F".into();
        let log = vec![ev(1, EventKind::Build, Some("x:v1"), Some("A")), other];
        assert_eq!(lineages(&log).len(), 2);
        assert_eq!(current(&log, "E", "x:v1"), Some("A"));
        assert_eq!(current(&log, "F", "x:v1"), Some("Z"));
    }
}
