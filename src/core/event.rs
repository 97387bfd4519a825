//! The ledger's event model and what follows from it. Pure: no database, no clock.
//!
//! The ledger is an append-only log of events. Past events are never rewritten; the state of a tag
//! (which image it points at, what became of the images it pointed at before) is derived from the
//! events here, so a crash or two processes writing at once can lose nothing that was committed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::core::image::ImageId;
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
        /// `imgguard build` is about to run docker for `tag` (which points at `previous_id`);
        /// the reason names the run. Its end (outcome `finished` or `interrupted`, no tag) is a
        /// second `intent` event of the same run.
        Intent = "intent",
        /// `imgguard watch` saw a container created from `image_id` (outcome `removed`: saw it
        /// removed); the reason names the container.
        Container = "container",
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
        /// A build run ended and imgguard saw it end.
        Finished = "finished",
        /// A build run was interrupted: imgguard was signalled, or killed (found by the next
        /// command).
        Interrupted = "interrupted",
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
        /// Kept for now, and removed by the next build or prune: the parent (build cache) of an
        /// image imgguard removed, once the removal grace period has passed; or an image whose
        /// removal would have raced another imgguard build (`previous_id` then empty).
        Deferred = "deferred",
        /// A build run's intent (the reason's words name the run).
        Intent = "intent",
        /// Recorded by a later command: the build's imgguard was interrupted.
        Interrupted = "interrupted",
        /// `imgguard watch` saw a tag taken off an image a container used (`docker rmi -f`).
        ForceUntagged = "force-untagged",
        /// `imgguard watch` saw an image deleted, or a container come or go.
        Watched = "watched",
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
    /// The image's size in bytes, where the event knows it (the fate of an image: removed,
    /// kept): what `imgguard fleet` adds up for the `<none>` images the ledger knows.
    pub image_size: Option<i64>,
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
            image_size: None,
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
        e.image_size = d.size();
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

    /// `parent` lost its child `child` to an imgguard removal: its own removal is deferred
    /// until the grace period has passed (`[ref:removal-grace]`), and the next build or prune
    /// carries it out.
    pub fn deferred_parent(engine: &str, at_ms: i64, parent: &str, child: &str) -> Event {
        let short = ImageId::new(child);
        let mut e = Event::new(engine, at_ms, EventKind::Kept)
            .about(None, Some(parent), Some(child))
            .because(
                ReasonKind::Deferred,
                format!("build cache of removed {}: removal deferred", short.short()),
            );
        e.outcome = Some(Outcome::Kept);
        e
    }

    /// `imgguard build` run `run` is about to build `tag`, which points at `before`.
    pub fn intent(engine: &str, at_ms: i64, run: &str, tag: &str, before: Option<&str>) -> Event {
        Event::new(engine, at_ms, EventKind::Intent)
            .about(Some(tag), None, before)
            .because(ReasonKind::Intent, run)
    }

    /// Build run `run` ended: `finished`, or `interrupted`.
    pub fn intent_end(engine: &str, at_ms: i64, run: &str, outcome: Outcome) -> Event {
        let mut e = Event::new(engine, at_ms, EventKind::Intent).because(ReasonKind::Intent, run);
        e.outcome = Some(outcome);
        e
    }

    /// A later command found `tag` on `image` (from `previous`), built by an interrupted
    /// `imgguard build` run whose docker finished in the daemon.
    pub fn interrupted_build(
        engine: &str,
        at_ms: i64,
        tag: &str,
        image: &str,
        previous: Option<&str>,
    ) -> Event {
        Event::build(engine, at_ms, tag, image, previous, &BuildFacts::default()).because(
            ReasonKind::Interrupted,
            "built while imgguard was interrupted; recorded by the next command",
        )
    }

    /// `imgguard watch` saw `tag` move to `now` (`None`: taken off) from `before` in the
    /// daemon's event stream; `holder` names a container that used `before` when its last tag
    /// was taken off (`docker rmi -f`: force-untagged).
    pub fn watched_move(
        engine: &str,
        at_ms: i64,
        tag: &str,
        now: Option<&str>,
        before: Option<&str>,
        holder: Option<&str>,
    ) -> Event {
        let (why, text) = match (now, holder) {
            (Some(_), _) => {
                (ReasonKind::MovedOutside, "moved outside imgguard (seen by watch)".into())
            }
            (None, Some(c)) => (
                ReasonKind::ForceUntagged,
                format!("removed outside imgguard while container {c} used it (seen by watch)"),
            ),
            (None, None) => {
                (ReasonKind::RemovedOutside, "removed outside imgguard (seen by watch)".to_string())
            }
        };
        Event::new(engine, at_ms, EventKind::MovedOutside)
            .about(Some(tag), now, before)
            .because(why, text)
    }

    /// `imgguard watch` found `tag` on `image` in the daemon's list when it started, and the
    /// ledger had never seen it: recorded when the tag first moves, so that the image it leaves
    /// is explained.
    pub fn watched_seen(engine: &str, at_ms: i64, tag: &str, image: &str) -> Event {
        Event::new(engine, at_ms, EventKind::MovedOutside)
            .about(Some(tag), Some(image), None)
            .because(
                ReasonKind::TaggedOutside,
                "tagged outside imgguard before watch started (seen by watch)",
            )
    }

    /// `imgguard watch` saw `image` deleted.
    pub fn watched_delete(engine: &str, at_ms: i64, image: &str) -> Event {
        let mut e = Event::new(engine, at_ms, EventKind::Removed)
            .about(None, Some(image), None)
            .because(ReasonKind::Watched, "deleted outside imgguard (seen by watch)");
        e.outcome = Some(Outcome::Removed);
        e
    }

    /// `imgguard watch` saw `image` loaded from an archive without a name.
    pub fn watched_nameless_load(engine: &str, at_ms: i64, image: &str) -> Event {
        let mut e = Event::new(engine, at_ms, EventKind::Load)
            .about(None, Some(image), None)
            .because(ReasonKind::Watched, "loaded without a name outside imgguard (seen by watch)");
        e.outcome = Some(Outcome::Nameless);
        e
    }

    /// `imgguard watch` saw container `name` created from `image` (`removed`: removed).
    pub fn watched_container(
        engine: &str,
        at_ms: i64,
        image: &str,
        name: &str,
        removed: bool,
    ) -> Event {
        let what = if removed { "removed" } else { "created from it" };
        let mut e = Event::new(engine, at_ms, EventKind::Container)
            .about(None, Some(image), None)
            .because(ReasonKind::Watched, format!("container {name} {what}"));
        e.outcome = removed.then_some(Outcome::Removed);
        e
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

/// One `imgguard build` run as its intent events tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The run's name (`build pid 4242 at 1767000000000`).
    pub run: String,
    /// The process that ran it.
    pub pid: u32,
    /// When it started (ms since the epoch).
    pub start_ms: i64,
    /// Each tag with where it pointed before.
    pub tags: Vec<(String, Option<String>)>,
    /// How and when it ended, if the ledger knows.
    pub end: Option<(Outcome, i64)>,
}

/// The name of a build run: the process and the start time.
pub fn run_name(pid: u32, start_ms: i64) -> String {
    format!("build pid {pid} at {start_ms}")
}

/// The build runs of `engine` in the log, oldest first.
pub fn intents(events: &[Recorded], engine: &str) -> Vec<Intent> {
    let mut runs: Vec<Intent> = Vec::new();
    let mut sorted: Vec<&Recorded> = events
        .iter()
        .filter(|r| r.event.engine == engine && r.event.kind == EventKind::Intent)
        .collect();
    sorted.sort_by_key(|r| r.seq);
    for r in sorted {
        let Some(run) = r.event.reason_text() else { continue };
        let i = match runs.iter().position(|i| i.run == run) {
            Some(i) => i,
            None => {
                let mut words = run.split_whitespace().skip(2);
                let pid = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let start_ms = words.nth(1).and_then(|t| t.parse().ok()).unwrap_or(r.event.at_ms);
                runs.push(Intent { run: run.to_string(), pid, start_ms, tags: vec![], end: None });
                runs.len() - 1
            }
        };
        match (r.event.outcome, r.event.tag.as_deref()) {
            // The first end counts (a killed run may be found by several commands at once).
            (Some(o), _) if runs[i].end.is_none() => runs[i].end = Some((o, r.event.at_ms)),
            (None, Some(tag)) => runs[i].tags.push((tag.to_string(), r.event.previous_id.clone())),
            _ => {}
        }
    }
    runs
}

/// What a later command records for build runs that never ended and whose process is gone
/// (`dead`): a tag that moved from where the run found it while the ledger still has it there
/// was moved by that run's docker (a `build` event, not a move outside imgguard); then the run
/// is `interrupted`. `daemon` says where each tag points now (tags not asked about are skipped).
pub fn settle_interrupted<S: std::hash::BuildHasher>(
    dead: &[&Intent],
    known: &[Recorded],
    engine: &str,
    daemon: &HashMap<String, Option<String>, S>,
    now_ms: i64,
) -> Vec<Event> {
    let mut out = Vec::new();
    for run in dead {
        for (tag, before) in &run.tags {
            let Some(now) = daemon.get(tag) else { continue };
            let recorded = current(known, engine, tag);
            if let Some(now) = now.as_deref() {
                if Some(now) != before.as_deref() && recorded == before.as_deref() {
                    out.push(Event::interrupted_build(engine, now_ms, tag, now, before.as_deref()));
                }
            }
        }
        out.push(Event::intent_end(engine, now_ms, &run.run, Outcome::Interrupted));
    }
    out
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

/// Where the ledger believes `tag` points on `engine` now: the image of the pointer event
/// observed last (`None` when it never saw the tag, or saw it removed).
pub fn current<'a>(events: &'a [Recorded], engine: &str, tag: &str) -> Option<&'a str> {
    events
        .iter()
        .filter(|r| {
            r.event.engine == engine && r.event.tag.as_deref() == Some(tag) && r.event.is_pointer()
        })
        .max_by_key(|r| pointer_order(r))
        .and_then(|r| r.event.image_id.as_deref())
}

/// The order in which pointer events tell where a tag points: `[tag:observed-order]` by the
/// time the daemon was observed (`at_ms`), then by log position. Two builds of one tag may
/// commit in the other order than the daemon moved the tag; each observed the tag after its own
/// build, so the later observation is the daemon's later state.
pub fn pointer_order(r: &Recorded) -> (i64, i64) {
    (r.event.at_ms, r.seq)
}

/// The images whose removal is deferred (`[ref:removal-grace]`, `[ref:build-lock]`): the last
/// fate of each is a `deferred` keep. Each with the time it was deferred and, for build cache,
/// the child that was removed.
pub fn pending_removals(events: &[Recorded], engine: &str) -> Vec<Pending> {
    let mut last: BTreeMap<&str, &Recorded> = BTreeMap::new();
    for r in events.iter().filter(|r| r.event.engine == engine) {
        let e = &r.event;
        if !matches!(e.kind, EventKind::Removed | EventKind::Kept) {
            continue;
        }
        if let Some(id) = e.image_id.as_deref() {
            if last.get(id).is_none_or(|l| l.seq < r.seq) {
                last.insert(id, r);
            }
        }
    }
    last.into_iter()
        .filter(|(_, r)| r.event.reason.as_ref().is_some_and(|x| x.kind == ReasonKind::Deferred))
        .map(|(id, r)| {
            (ImageId::new(id), r.event.at_ms, r.event.previous_id.as_deref().map(ImageId::new))
        })
        .collect()
}

/// An image whose removal is deferred: the image, since when (ms since the epoch), and the child
/// whose removal left it (build cache), if that is why.
pub type Pending = (ImageId, i64, Option<ImageId>);

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
    // Tag moves in the order the daemon was observed (`[ref:observed-order]`).
    let mut moves = sorted.clone();
    moves.sort_by_key(|r| pointer_order(r));
    for r in &moves {
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
                        // A fate decided before the tag pointed here again does not apply, nor
                        // one that a concurrent command recorded about the image the tag points
                        // at now (a build that found it still tagged, say).
                        if *fate_seq > seq && !is_last {
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

/// The evidence `explain` needs about one image (`[ref:evidence-walk]`), the walk every ledger
/// backend shares: `rows` are the events naming the image (any order); `left(tag, move)` finds
/// the first pointer event of `tag` after `move` that leaves the image. Adds to `out` (by log
/// position) every row, and for each time a tag pointed at the image the event where it left,
/// looked up once per run of moves to it (a run of cache hits needs one look ahead, not one
/// each).
pub fn evidence_walk<E>(
    mut rows: Vec<Recorded>,
    out: &mut std::collections::BTreeMap<i64, Recorded>,
    mut left: impl FnMut(&str, &Recorded) -> Result<Option<Recorded>, E>,
) -> Result<(), E> {
    // Tag moves in the order the daemon was observed (`[ref:observed-order]`).
    rows.sort_by_key(pointer_order);
    // Per tag, up to where the tag is known to stay on this image.
    let mut covered: std::collections::HashMap<String, (i64, i64)> =
        std::collections::HashMap::new();
    for r in rows {
        if let (Some(tag), true) = (r.event.tag.as_deref(), r.event.is_pointer()) {
            if covered.get(tag).is_none_or(|&until| until < pointer_order(&r)) {
                let next = left(tag, &r)?;
                let until = next.as_ref().map_or((i64::MAX, i64::MAX), pointer_order);
                covered.insert(tag.to_string(), until);
                if let Some(n) = next {
                    out.insert(n.seq, n);
                }
            }
        }
        out.insert(r.seq, r);
    }
    Ok(())
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

    fn rec(seq: i64, event: Event) -> Recorded {
        Recorded { seq, event }
    }

    #[test]
    fn the_later_observation_wins_over_the_later_commit() {
        // Build 1 saw x:v1 on A at 5 ms, build 2 saw it on B at 9 ms, but build 2 committed first.
        let f = BuildFacts::default();
        let log = vec![
            rec(1, Event::build("E", 9, "x:v1", "B", None, &f)),
            rec(2, Event::build("E", 5, "x:v1", "A", None, &f)),
        ];
        assert_eq!(current(&log, "E", "x:v1"), Some("B"));
        assert_eq!(
            states(&lineages(&log)[0]),
            [("B", EntryState::Current), ("A", EntryState::Superseded)]
        );
    }

    #[test]
    fn deferred_parents_are_pending_until_their_fate() {
        let d = |seq, p: &str| rec(seq, Event::deferred_parent("E", seq * 10, p, "sha256:child"));
        let mut removed = ev(4, EventKind::Removed, None, Some("P"));
        removed.event.outcome = Some(Outcome::Removed);
        let log = vec![d(1, "P"), d(2, "Q"), d(3, "R"), removed, d(5, "R")];
        let pending: Vec<(String, i64)> = pending_removals(&log, "E")
            .into_iter()
            .map(|(id, at, child)| {
                assert_eq!(child.unwrap().as_str(), "sha256:child");
                (id.to_string(), at)
            })
            .collect();
        assert_eq!(pending, [("Q".to_string(), 20), ("R".to_string(), 50)]);
        assert!(pending_removals(&log, "other").is_empty());
    }

    #[test]
    fn a_removal_deferred_for_a_running_build_is_pending_without_a_child() {
        use crate::core::policy::{Candidate, Decision, KeepReason, Verdict};
        let candidate = Candidate {
            image: ImageId::new("sha256:old"),
            left_by: vec![("x:v1".into(), ImageId::new("sha256:new"))],
        };
        let kept =
            Decision { candidate, verdict: Verdict::Keep(KeepReason::BuildRunning), size: Some(1) };
        let e = Event::fate("E", 70, &kept, ReasonKind::Superseded);
        assert_eq!((e.kind, e.outcome), (EventKind::Kept, Some(Outcome::Kept)));
        assert_eq!(e.reason.as_ref().map(|r| r.kind), Some(ReasonKind::Deferred));
        assert_eq!(e.tag.as_deref(), Some("x:v1"));
        let mut log = vec![rec(1, e)];
        assert_eq!(pending_removals(&log, "E"), [(ImageId::new("sha256:old"), 70, None)]);
        // Removed by a later command: no longer pending.
        let mut removed = kept;
        removed.verdict = Verdict::Remove;
        log.push(rec(2, Event::fate("E", 90, &removed, ReasonKind::Superseded)));
        assert!(pending_removals(&log, "E").is_empty());
    }

    #[test]
    fn a_killed_run_is_settled_as_the_build_it_was() {
        let run = run_name(42, 1000);
        let f = BuildFacts::default();
        let log = vec![
            rec(1, Event::build("E", 500, "x:v1", "A", None, &f)),
            rec(2, Event::intent("E", 1000, &run, "x:v1", Some("A"))),
            rec(3, Event::intent("E", 1000, &run, "x:v2", None)),
        ];
        let runs = intents(&log, "E");
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].pid, runs[0].start_ms, runs[0].end), (42, 1000, None));
        // x:v1 moved to B (the killed run's docker finished); x:v2 never appeared.
        let daemon: HashMap<String, Option<String>> =
            [("x:v1".to_string(), Some("B".to_string())), ("x:v2".to_string(), None)].into();
        let events = settle_interrupted(&[&runs[0]], &log, "E", &daemon, 2000);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, EventKind::Build);
        assert_eq!(
            (events[0].image_id.as_deref(), events[0].previous_id.as_deref()),
            (Some("B"), Some("A"))
        );
        assert_eq!(events[0].reason.as_ref().map(|r| r.kind), Some(ReasonKind::Interrupted));
        assert_eq!(
            (events[1].kind, events[1].outcome),
            (EventKind::Intent, Some(Outcome::Interrupted))
        );
        // Ended: no longer open, and the first end counts.
        let mut log = log;
        log.push(rec(4, events[1].clone()));
        log.push(rec(5, Event::intent_end("E", 3000, &run, Outcome::Interrupted)));
        assert_eq!(intents(&log, "E")[0].end, Some((Outcome::Interrupted, 2000)));
        // A move the ledger already knows of (recorded elsewhere) is not claimed by the run.
        log.push(rec(6, Event::build("E", 1500, "x:v1", "B", Some("A"), &f)));
        let runs = intents(&log[..3], "E");
        assert_eq!(settle_interrupted(&[&runs[0]], &log, "E", &daemon, 2000).len(), 1);
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
