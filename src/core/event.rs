//! The ledger's event model and what follows from it. Pure: no database, no clock.
//!
//! The ledger is an append-only log of events. Past events are never rewritten; the state of a tag
//! (which image it points at, what became of the images it pointed at before) is derived from the
//! events here, so a crash or two processes writing at once can lose nothing that was committed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::core::policy::{Decided, Verdict};

/// An enum whose variants have stable names: stored in the ledger, part of JSON contracts.
macro_rules! named {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!(concat!("unknown ", stringify!($name), " `{}`"), other)),
                }
            }
        }
    };
}

named! {
    /// What happened. The names are stored in the database and are part of the JSON contract.
    pub enum EventKind {
        /// `imgguard build` pointed the tag at `image_id` (from `previous_id`).
        Build = "build",
        /// `imgguard load` pointed the tag at `image_id`.
        Load = "load",
        /// A tag was put on an image by imgguard.
        Tag = "tag",
        /// A tag was taken off (`previous_id` is the image it left).
        Untag = "untag",
        /// The daemon showed the tag somewhere the ledger did not expect: moved by plain docker.
        MovedOutside = "moved-outside",
        /// An image was saved to an archive.
        Save = "save",
        /// imgguard removed `image_id` (or found it gone).
        Removed = "removed",
        /// imgguard decided to keep `image_id` (the reason says why).
        Kept = "kept",
    }
}

impl EventKind {
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

named! {
    /// What came of an event, where that is more than its kind says.
    pub enum Outcome {
        /// The image was removed.
        Removed = "removed",
        /// The image was already gone when imgguard came to remove it.
        Gone = "gone",
        /// The image was kept.
        Kept = "kept",
        /// A build whose image never reached the daemon (a buildx container driver without
        /// `--load`, a push-only build): it does not move the tag in the daemon.
        NotInDaemon = "not-in-daemon",
        /// A load (or save) of an image whose archive carries no name: `<none>:<none>`.
        Nameless = "nameless",
    }
}

named! {
    /// The kind of a reason, in a column of its own so that the ledger can be queried by it.
    pub enum ReasonKind {
        /// Removed: a tag moved to another image.
        Superseded = "superseded",
        /// Removed by `imgguard prune`.
        Pruned = "pruned",
        /// Removed or untagged by `imgguard rmi`.
        Rmi = "rmi",
        /// Someone else removed it first.
        AlreadyGone = "already-gone",
        /// A tag was found on another image than the ledger expected.
        MovedOutside = "moved-outside",
        /// A tag the ledger tracked was found nowhere.
        RemovedOutside = "removed-outside",
        /// A concurrent build moved the tag while this one ran.
        MovedByAnotherBuild = "moved-by-another-build",
        /// `save` saw a tag the ledger did not know.
        TaggedOutside = "tagged-outside",
        /// The built image is not in the daemon.
        NotInDaemon = "not-in-daemon",
        /// Kept: removal turned off.
        KeepPrevious = "keep-previous",
        /// Kept: a protect pattern.
        Protected = "protected",
        /// Kept: containers use it.
        InUse = "in-use",
        /// Kept: it still has tags.
        StillTagged = "still-tagged",
        /// Kept: tagged between the plan and the removal.
        TaggedMeanwhile = "tagged-meanwhile",
        /// Kept: the daemon refused.
        DaemonRefused = "daemon-refused",
        /// Kept: child images.
        HasChildren = "has-children",
        /// Kept: unknown to the ledger.
        Unknown = "unknown",
        /// Kept: younger than the minimum age.
        TooYoung = "too-young",
        /// Kept for rollback.
        Rollback = "rollback",
        /// Written before reasons had kinds.
        Other = "other",
    }
}

/// Why, in words, and of which kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The kind, to query by.
    pub kind: ReasonKind,
    /// The words, as printed.
    pub text: String,
}

impl Reason {
    /// A reason of `kind` in these words.
    pub fn new(kind: ReasonKind, text: impl Into<String>) -> Reason {
        Reason { kind, text: text.into() }
    }
}

/// What a build knew about its inputs. Build-arg values and secrets never get here: only names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFacts {
    /// HEAD of the build context's repository.
    pub git_commit: Option<String>,
    /// Whether that working tree differed from HEAD.
    pub git_dirty: Option<bool>,
    /// sha256 of the Dockerfile.
    pub dockerfile_sha256: Option<String>,
    /// Names of the build args given (never their values).
    pub build_arg_names: Vec<String>,
}

/// The archive a save wrote or a load read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveFacts {
    /// Its absolute path (none for standard input or output).
    pub path: Option<String>,
    /// Its sha256.
    pub sha256: Option<String>,
    /// Its size in bytes.
    pub size: Option<i64>,
}

/// One event, as appended. Made by the named constructors below, so that each kind carries the
/// fields it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The daemon's identity (`docker info` ID).
    pub engine: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened.
    pub kind: EventKind,
    /// The tag concerned (familiar form).
    pub tag: Option<String>,
    /// The image concerned.
    pub image_id: Option<String>,
    /// For tag moves: where the tag pointed before.
    pub previous_id: Option<String>,
    /// What came of it, where the kind does not say.
    pub outcome: Option<Outcome>,
    /// Why.
    pub reason: Option<Reason>,
    /// For builds: what the build knew of its inputs.
    pub build: Option<BuildFacts>,
    /// For saves and loads: the archive.
    pub archive: Option<ArchiveFacts>,
    /// The imgguard version that wrote the event.
    pub imgguard_version: String,
}

impl Event {
    /// A bare event of `kind` on `engine` at `at_ms`, written by this imgguard version.
    pub fn new(engine: &str, at_ms: i64, kind: EventKind) -> Event {
        Event {
            engine: engine.to_string(),
            at_ms,
            kind,
            tag: None,
            image_id: None,
            previous_id: None,
            outcome: None,
            reason: None,
            build: None,
            archive: None,
            imgguard_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn about(mut self, tag: Option<&str>, image: Option<&str>, previous: Option<&str>) -> Event {
        self.tag = tag.map(str::to_string);
        self.image_id = image.map(str::to_string);
        self.previous_id = previous.map(str::to_string);
        self
    }

    fn because(mut self, kind: ReasonKind, text: impl Into<String>) -> Event {
        self.reason = Some(Reason::new(kind, text));
        self
    }

    /// `imgguard build` pointed `tag` at `image` (from `previous`).
    pub fn build(
        engine: &str,
        at_ms: i64,
        tag: &str,
        image: &str,
        previous: Option<&str>,
        facts: &BuildFacts,
    ) -> Event {
        let mut e =
            Event::new(engine, at_ms, EventKind::Build).about(Some(tag), Some(image), previous);
        e.build = Some(facts.clone());
        e
    }

    /// A build of `tag` whose image `image` never reached the daemon: the tag did not move.
    pub fn build_not_in_daemon(
        engine: &str,
        at_ms: i64,
        tag: &str,
        image: &str,
        facts: &BuildFacts,
    ) -> Event {
        let mut e = Event::build(engine, at_ms, tag, image, None, facts)
            .because(ReasonKind::NotInDaemon, "the built image is not in the daemon");
        e.outcome = Some(Outcome::NotInDaemon);
        e
    }

    /// The daemon shows `tag` on `now` (nowhere: `None`) where the ledger had `recorded`.
    pub fn moved_outside(
        engine: &str,
        at_ms: i64,
        tag: &str,
        now: Option<&str>,
        recorded: Option<&str>,
        why: ReasonKind,
    ) -> Event {
        let text = match why {
            ReasonKind::MovedByAnotherBuild => "moved by another build while this one ran",
            ReasonKind::TaggedOutside => "tagged outside imgguard (seen by save)",
            _ if now.is_none() => "removed outside imgguard",
            _ => "moved outside imgguard",
        };
        let why = if now.is_none() && why == ReasonKind::MovedOutside {
            ReasonKind::RemovedOutside
        } else {
            why
        };
        Event::new(engine, at_ms, EventKind::MovedOutside)
            .about(Some(tag), now, recorded)
            .because(why, text)
    }

    /// What became of an image a plan decided about: removed, kept (why) or already gone.
    pub fn fate(engine: &str, at_ms: i64, d: &impl Decided, removed_as: ReasonKind) -> Event {
        let (kind, outcome, reason) = match d.verdict() {
            Verdict::Remove => {
                (EventKind::Removed, Outcome::Removed, Reason::new(removed_as, d.removal_reason()))
            }
            Verdict::Gone => (
                EventKind::Removed,
                Outcome::Gone,
                Reason::new(ReasonKind::AlreadyGone, "already removed by someone else"),
            ),
            Verdict::Keep(k) => {
                (EventKind::Kept, Outcome::Kept, Reason::new(k.kind(), k.to_string()))
            }
        };
        let mut e = Event::new(engine, at_ms, kind).about(d.tag(), Some(d.image().as_str()), None);
        e.outcome = Some(outcome);
        e.reason = Some(reason);
        e
    }

    /// A load (or `save`, with `kind`) of `image` under `tag` (`None`: nameless) from or to an
    /// archive.
    pub fn archive(
        engine: &str,
        at_ms: i64,
        kind: EventKind,
        tag: Option<&str>,
        image: &str,
        previous: Option<&str>,
        archive: &ArchiveFacts,
    ) -> Event {
        let mut e = Event::new(engine, at_ms, kind).about(tag, Some(image), previous);
        if tag.is_none() {
            e.outcome = Some(Outcome::Nameless);
        }
        e.archive = Some(archive.clone());
        e
    }

    /// imgguard put `tag` on `image` (from `previous`).
    pub fn tag(engine: &str, at_ms: i64, tag: &str, image: &str, previous: Option<&str>) -> Event {
        Event::new(engine, at_ms, EventKind::Tag).about(Some(tag), Some(image), previous)
    }

    /// `imgguard rmi` took `tag` off `image`.
    pub fn untag(engine: &str, at_ms: i64, tag: &str, image: &str) -> Event {
        Event::new(engine, at_ms, EventKind::Untag)
            .about(Some(tag), None, Some(image))
            .because(ReasonKind::Rmi, "imgguard rmi")
    }

    /// `imgguard rmi REF` removed `image`.
    pub fn removed_by_rmi(engine: &str, at_ms: i64, image: &str, reference: &str) -> Event {
        let mut e = Event::new(engine, at_ms, EventKind::Removed)
            .about(None, Some(image), None)
            .because(ReasonKind::Rmi, format!("imgguard rmi {reference}"));
        e.outcome = Some(Outcome::Removed);
        e
    }

    /// The reason's words, if any.
    pub fn reason_text(&self) -> Option<&str> {
        self.reason.as_ref().map(|r| r.text.as_str())
    }

    /// The git commit of a build event.
    pub fn git_commit(&self) -> Option<&str> {
        self.build.as_ref().and_then(|b| b.git_commit.as_deref())
    }

    /// The archive path of a save or load event.
    pub fn archive_path(&self) -> Option<&str> {
        self.archive.as_ref().and_then(|a| a.path.as_deref())
    }

    /// Whether this event says where a tag points (a move that reached the daemon).
    pub fn is_pointer(&self) -> bool {
        self.kind.moves_tag() && self.outcome != Some(Outcome::NotInDaemon)
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

/// Tag moves imgguard did not make: for each observed `(tag, where it points now)`, a
/// `moved-outside` event where the ledger believed otherwise. A tag the ledger never saw counts
/// only with `untracked` (what `save` sees is news to record; what a build finds is its own).
pub fn unexpected_moves(
    known: &[Recorded],
    engine: &str,
    observed: &[(&str, Option<&str>)],
    at_ms: i64,
    why: ReasonKind,
    untracked: bool,
) -> Vec<Event> {
    observed
        .iter()
        .filter_map(|&(tag, now)| {
            let recorded = current(known, engine, tag);
            if recorded.is_none() && !untracked {
                return None;
            }
            (recorded != now).then(|| Event::moved_outside(engine, at_ms, tag, now, recorded, why))
        })
        .collect()
}

/// Derives every tag's lineage from the log (any order in, sorted by tag then engine out).
pub fn lineages(events: &[Recorded]) -> Vec<Lineage> {
    let mut sorted: Vec<&Recorded> = events.iter().collect();
    sorted.sort_by_key(|r| r.seq);

    // The newest fate of each image: (seq, removed?, reason).
    let mut fates: HashMap<(&str, &str), (i64, EntryState, Option<&str>)> = HashMap::new();
    for r in &sorted {
        let e = &r.event;
        let state = match e.kind {
            EventKind::Removed => EntryState::Removed,
            EventKind::Kept => EntryState::Kept,
            _ => continue,
        };
        if let Some(id) = e.image_id.as_deref() {
            fates.insert((e.engine.as_str(), id), (r.seq, state, e.reason_text()));
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
                    event: e.kind,
                    state: EntryState::Superseded,
                    reason: None,
                    git_commit: e.git_commit().map(str::to_string),
                },
            )),
            // The tag was removed: the last entry is no longer current.
            None => entries.push((
                r.seq,
                Entry {
                    image_id: String::new(),
                    at_ms: e.at_ms,
                    event: e.kind,
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
    use crate::core::fixtures::ev;

    fn states(l: &Lineage) -> Vec<(&str, EntryState)> {
        l.entries.iter().map(|e| (e.image_id.as_str(), e.state)).collect()
    }

    #[test]
    fn rebuild_supersedes_and_removal_is_recorded() {
        let mut removed = ev(3, EventKind::Removed, Some("x:v1"), Some("A"));
        removed.event.reason = Some(Reason::new(ReasonKind::Superseded, "superseded by B"));
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
        kept.event.reason =
            Some(Reason::new(ReasonKind::InUse, "used by container web-1 (running)"));
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
        pushed.event.outcome = Some(Outcome::NotInDaemon);
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
        nameless.event.outcome = Some(Outcome::Nameless);
        let mut saved = ev(6, EventKind::Save, Some("z:v1"), Some("A"));
        saved.event.archive =
            Some(ArchiveFacts { path: Some("/a.tar".into()), ..ArchiveFacts::default() });
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
