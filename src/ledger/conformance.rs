//! Conformance tests for any [`Ledger`] backend: on randomised logs (a seeded generator, so a
//! failure names its seed), the bounded queries give the same answers as the pure whole-log
//! derivations of [`crate::core`] (`lineages`, `current`, `tags_of_image`, `dangling::explain`,
//! `reconcile`), export → import round-trips, import is idempotent, and `compact` keeps every
//! tag's current state and every answer about the daemon's images. A new backend runs
//! [`check_backend`] with its own constructor.

use std::collections::BTreeMap;

use crate::core::dangling;
use crate::core::event::{
    self, ArchiveFacts, Event, EventKind, Outcome, Reason, ReasonKind, Recorded,
};
use crate::core::image::{ContainerInfo, EngineIdentity, ImageId, ListedImage};
use crate::ledger::{jsonl, Ledger};

/// SplitMix64: a seeded generator in a few lines, so that the test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap_or(0)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len())]
    }
}

const ENGINES: [&str; 2] = ["E", "F"];
const TAGS: [&str; 5] = ["a:v1", "a:v2", "b:latest", "c:1", "d:x"];
const IMAGES: [&str; 8] = [
    "sha256:i0",
    "sha256:i1",
    "sha256:i2",
    "sha256:i3",
    "sha256:i4",
    "sha256:i5",
    "sha256:i6",
    "sha256:i7",
];

fn random_event(rng: &mut Rng, at_ms: i64) -> Event {
    let engine = if rng.chance(80) { ENGINES[0] } else { ENGINES[1] };
    let kinds = EventKind::ALL;
    let kind = kinds[rng.below(kinds.len())];
    let mut e = Event::new(engine, at_ms, kind);
    e.tag = (kind != EventKind::Removed || rng.chance(30)).then(|| rng.pick(&TAGS).to_string());
    e.image_id = Some(rng.pick(&IMAGES).to_string());
    match kind {
        EventKind::Untag => {
            e.previous_id = e.image_id.take();
        }
        EventKind::MovedOutside if rng.chance(30) => e.image_id = None,
        EventKind::Build if rng.chance(15) => e.outcome = Some(Outcome::NotInDaemon),
        EventKind::Load if rng.chance(30) => {
            e.tag = None;
            e.outcome = Some(Outcome::Nameless);
            e.archive =
                Some(ArchiveFacts { path: Some("/a.tar".into()), ..ArchiveFacts::default() });
        }
        EventKind::Removed | EventKind::Kept => {
            e.reason = Some(Reason::new(ReasonKind::Superseded, format!("why {at_ms}")));
        }
        _ => {}
    }
    e
}

/// A ledger filled with a random log of `n` events in random batches; returns the log as
/// appended. Some batches are committed after later ones were observed (two builds of one tag
/// finishing in the other order): their events carry earlier times than the log before them,
/// and `[ref:observed-order]` must still hold.
fn fill(ledger: &mut dyn Ledger, rng: &mut Rng, n: usize) -> Vec<Event> {
    let mut all = Vec::new();
    let mut at = 1_000_000;
    while all.len() < n {
        let late = rng.chance(15);
        let mut batch_at =
            if late { at - i64::try_from(rng.below(20_000)).unwrap_or(0) } else { at };
        let batch: Vec<Event> = (0..=rng.below(4))
            .map(|_| {
                batch_at += i64::try_from(rng.below(5_000)).unwrap_or(0);
                random_event(rng, batch_at)
            })
            .collect();
        if !late {
            at = batch_at;
        }
        for engine in ENGINES {
            let mine: Vec<Event> = batch.iter().filter(|e| e.engine == engine).cloned().collect();
            let id = EngineIdentity { id: engine.into(), name: "h".into(), endpoint: "u".into() };
            ledger.append(&id, &mine).unwrap();
            all.extend(mine);
        }
    }
    all
}

fn random_daemon(rng: &mut Rng) -> (Vec<ListedImage>, Vec<ContainerInfo>) {
    let mut tags: Vec<&str> = TAGS.to_vec();
    let present: Vec<&str> = IMAGES.iter().copied().filter(|_| rng.chance(70)).collect();
    let images: Vec<ListedImage> = present
        .into_iter()
        .map(|id| {
            let mut repo_tags = Vec::new();
            while !tags.is_empty() && rng.chance(25) {
                repo_tags.push(tags.remove(rng.below(tags.len())).to_string());
            }
            ListedImage {
                id: ImageId::new(id),
                parent: rng.chance(15).then(|| ImageId::new(rng.pick(&IMAGES))),
                repo_tags,
                created_s: i64::try_from(rng.below(1000)).unwrap_or(0),
                size: 10,
                labels: BTreeMap::new(),
            }
        })
        .collect();
    let containers = images
        .iter()
        .filter(|_| rng.chance(20))
        .map(|i| ContainerInfo {
            id: format!("c{}", i.id),
            name: "c".into(),
            image_id: i.id.clone(),
            state: "exited".into(),
        })
        .collect();
    (images, containers)
}

/// `explain` as the survey makes it: moves from the tracked tags, appended to the evidence.
fn explain_bounded(
    ledger: &dyn Ledger,
    engine: &str,
    images: &[ListedImage],
    containers: &[ContainerInfo],
) -> Vec<dangling::Explained> {
    let untagged: Vec<&str> =
        images.iter().filter(|i| i.repo_tags.is_empty()).map(|i| i.id.as_str()).collect();
    let current = ledger.tracked_tags(engine).unwrap();
    let mut events = ledger.evidence(engine, &untagged).unwrap();
    let moves = dangling::reconcile_current(&current, engine, images, 99);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(moves.into_iter().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    dangling::explain(images, containers, &events, engine)
}

/// `explain` as it was: the whole log of the engine, reconciled from the whole log.
fn explain_whole(
    all: &[Recorded],
    engine: &str,
    images: &[ListedImage],
    containers: &[ContainerInfo],
) -> Vec<dangling::Explained> {
    let mut events: Vec<Recorded> =
        all.iter().filter(|r| r.event.engine == engine).cloned().collect();
    let moves = dangling::reconcile(&events, engine, images, 99);
    let next = events.last().map_or(0, |r| r.seq) + 1;
    events.extend(moves.into_iter().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    dangling::explain(images, containers, &events, engine)
}

fn lineage_of(events: &[Recorded], tag: &str) -> Vec<event::Lineage> {
    event::lineages(events).into_iter().filter(|l| l.tag == tag).collect()
}

/// The bounded queries answer as the whole-log derivations do.
fn same_answers(ledger: &dyn Ledger, rng: &mut Rng, seed: u64) {
    let all = ledger.all_events(None).unwrap();
    for engine in ENGINES {
        assert_eq!(
            ledger.tracked_tags(engine).unwrap(),
            dangling::current_state(&all, engine),
            "seed {seed}: current state of {engine}"
        );
        for tag in TAGS {
            let tracked = ledger.tracked_tags(engine).unwrap();
            let state = tracked.iter().find(|(t, _)| t == tag).and_then(|(_, i)| i.as_deref());
            assert_eq!(state, event::current(&all, engine, tag), "seed {seed}: {engine} {tag}");
            let mine = ledger.tag_events(Some(engine), &[tag]).unwrap();
            assert_eq!(
                event::current(&mine, engine, tag),
                event::current(&all, engine, tag),
                "seed {seed}"
            );
            // The head alone gives the same answer, and is one event of that tag.
            let heads = ledger.tag_heads(engine, &[tag]).unwrap();
            assert_eq!(
                event::current(&heads, engine, tag),
                event::current(&all, engine, tag),
                "seed {seed}: head of {engine} {tag}"
            );
            assert!(heads.len() <= 1, "seed {seed}: {heads:?}");
            assert!(heads.iter().all(|r| r.event.tag.as_deref() == Some(tag)), "seed {seed}");
        }
        // Several tags at once: each one's head, in log order.
        let heads = ledger.tag_heads(engine, &TAGS).unwrap();
        assert!(heads.windows(2).all(|w| w[0].seq < w[1].seq), "seed {seed}: {heads:?}");
        for tag in TAGS {
            assert_eq!(
                event::current(&heads, engine, tag),
                event::current(&all, engine, tag),
                "seed {seed}: heads of {engine} at once, {tag}"
            );
        }
        for image in IMAGES {
            let evidence = ledger.evidence(engine, &[image]).unwrap();
            assert_eq!(
                event::tags_of_image(&evidence, engine, image),
                event::tags_of_image(&all, engine, image),
                "seed {seed}: tags of {image} on {engine}"
            );
        }
        for _ in 0..4 {
            let (images, containers) = random_daemon(rng);
            assert_eq!(
                explain_bounded(ledger, engine, &images, &containers),
                explain_whole(&all, engine, &images, &containers),
                "seed {seed}: explain on {engine} with {images:?}"
            );
        }
    }
    // The fleet counts the database aggregates are the pure row's.
    let since = all.get(all.len() / 2).map_or(0, |r| r.event.at_ms);
    let rows = ledger.fleet(since).unwrap();
    for engine in ENGINES {
        let pure = crate::core::fleet::row(engine, &all, since);
        let got = rows.iter().find(|r| r.engine == engine);
        match got {
            Some(r) => assert_eq!(
                (r.nameless, r.nameless_bytes, r.unexplained, r.removed_recently, r.kept_recently),
                (
                    pure.nameless,
                    pure.nameless_bytes,
                    pure.unexplained,
                    pure.removed_recently,
                    pure.kept_recently
                ),
                "seed {seed}: fleet row of {engine}"
            ),
            None => assert!(pure.last_seen_ms.is_none(), "seed {seed}: no fleet row for {engine}"),
        }
    }
    // `load --restore-tags` across engines: by index, the whole log's answer.
    let shas: Vec<Option<&str>> = std::iter::once(None)
        .chain(all.iter().filter_map(|r| r.event.archive.as_ref()?.sha256.as_deref()).map(Some))
        .collect();
    for image in IMAGES {
        for sha in &shas {
            let held: Vec<&str> = all
                .iter()
                .filter(|r| {
                    sha.is_some()
                        && r.event.archive.as_ref().and_then(|a| a.sha256.as_deref()) == *sha
                })
                .filter_map(|r| r.event.image_id.as_deref())
                .collect();
            let whole: Vec<&Recorded> = all
                .iter()
                .filter(|r| {
                    r.event.image_id.as_deref().is_some_and(|i| i == image || held.contains(&i))
                })
                .collect();
            let got = ledger.fleet_image_events(image, *sha).unwrap();
            assert_eq!(
                got.iter().collect::<Vec<_>>(),
                whole,
                "seed {seed}: fleet events of {image}, {sha:?}"
            );
        }
    }
    for tag in TAGS {
        let mine = ledger.tag_events(None, &[tag]).unwrap();
        assert_eq!(lineage_of(&mine, tag), lineage_of(&all, tag), "seed {seed}: history {tag}");
    }
}

fn export_lines(ledger: &dyn Ledger) -> Vec<String> {
    let mut lines = Vec::new();
    ledger
        .export(&mut |id, e| {
            lines.push(jsonl::to_line(id, e));
            true
        })
        .unwrap();
    lines
}

fn import_lines(ledger: &mut dyn Ledger, lines: &[String]) -> crate::ledger::Imported {
    let mut it = lines.iter();
    ledger.import(&mut || it.next().map(|l| jsonl::parse_line(l)).transpose()).unwrap()
}

/// Runs every check against ledgers made by `open` (each call a new, empty ledger).
pub(crate) fn check_backend(open: &dyn Fn() -> Box<dyn Ledger>) {
    let mut total_dropped = 0;
    for seed in 1..=40_u64 {
        let mut rng = Rng(seed);
        let mut ledger = open();
        let n = 20 + rng.below(120);
        let appended = fill(ledger.as_mut(), &mut rng, n);
        let all = ledger.all_events(None).unwrap();
        assert_eq!(all.iter().map(|r| r.event.clone()).collect::<Vec<_>>(), appended);
        same_answers(ledger.as_ref(), &mut rng, seed);

        // Export → import into an empty ledger → export: the same lines; twice adds nothing.
        let lines = export_lines(ledger.as_ref());
        assert_eq!(lines.len(), appended.len());
        let mut copy = open();
        let first = import_lines(copy.as_mut(), &lines);
        assert_eq!((first.added, first.skipped), (lines.len() as u64, 0));
        let again = import_lines(copy.as_mut(), &lines);
        assert_eq!((again.added, again.skipped), (0, lines.len() as u64), "seed {seed}");
        assert_eq!(export_lines(copy.as_ref()), lines, "seed {seed}: round trip");
        same_answers(copy.as_ref(), &mut rng, seed);

        // Compaction keeps every tag's current state and what explain says about the daemon's
        // images, for the engine compacted; other engines are untouched.
        let (images, containers) = random_daemon(&mut rng);
        let before: Vec<_> = ENGINES
            .iter()
            .map(|e| explain_bounded(ledger.as_ref(), e, &images, &containers))
            .collect();
        let states: Vec<_> = ENGINES.iter().map(|e| ledger.tracked_tags(e).unwrap()).collect();
        let tags_before: Vec<Vec<String>> =
            images.iter().map(|i| event::tags_of_image(&all, "E", i.id.as_str())).collect();
        let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
        let cutoff = all[all.len() / 2 + rng.below(all.len() / 2)].event.at_ms;
        let dropped = ledger.compact("E", cutoff, &ids, 5).unwrap();
        ledger.vacuum().unwrap();
        let left = ledger.all_events(None).unwrap();
        assert_eq!(left.len() + usize::try_from(dropped).unwrap(), all.len());
        assert_eq!(
            left.iter().filter(|r| r.event.engine == "F").count(),
            all.iter().filter(|r| r.event.engine == "F").count(),
            "seed {seed}: F untouched"
        );
        let after: Vec<_> = ENGINES
            .iter()
            .map(|e| explain_bounded(ledger.as_ref(), e, &images, &containers))
            .collect();
        assert_eq!(after, before, "seed {seed}: explain after compaction");
        let states_after: Vec<_> =
            ENGINES.iter().map(|e| ledger.tracked_tags(e).unwrap()).collect();
        assert_eq!(states_after, states, "seed {seed}: current states after compaction");
        assert_eq!(dangling::current_state(&left, "E"), states[0], "seed {seed}: log agrees");
        let tags_after: Vec<Vec<String>> =
            images.iter().map(|i| event::tags_of_image(&left, "E", i.id.as_str())).collect();
        assert_eq!(tags_after, tags_before, "seed {seed}: former tags after compaction");
        assert_eq!(ledger.compacted_at().unwrap(), Some(5));
        total_dropped += dropped;
    }
    assert!(total_dropped > 0, "compaction dropped nothing: the checks above prove nothing");
    watched(open);
}

/// `append_watched` and `watch_cursor`: the cursor moves with the batch, never back; an event
/// already recorded (by the command that made the move, or by an earlier watch) is not recorded
/// twice; and what watch appends gives the same answers as the whole-log derivations.
fn watched(open: &dyn Fn() -> Box<dyn Ledger>) {
    let id = EngineIdentity { id: "E".into(), name: "h".into(), endpoint: "u".into() };
    let mut l = open();
    assert_eq!(l.watch_cursor("E").unwrap(), None);
    // imgguard build recorded its own move; watch then sees the same move, and more.
    l.append(&id, &[Event::tag("E", 10, "a:v1", "sha256:i1", None)]).unwrap();
    let batch = vec![
        Event::watched_move("E", 11, "a:v1", Some("sha256:i1"), None, None),
        Event::watched_move("E", 12, "a:v1", Some("sha256:i2"), Some("sha256:i1"), None),
        Event::watched_container("E", 12, "sha256:i2", "web", false),
        Event::watched_seen("E", 13, "b:1", "sha256:i3"),
        Event::watched_move("E", 13, "b:1", None, Some("sha256:i3"), Some("web")),
        Event::watched_delete("E", 14, "sha256:i3"),
        Event::watched_nameless_load("E", 15, "sha256:i4"),
    ];
    let added = l.append_watched(&id, &batch, 15_000_000).unwrap();
    assert_eq!(added, batch[1..].to_vec(), "the build's own move is not recorded twice");
    assert_eq!(l.watch_cursor("E").unwrap(), Some(15_000_000));
    assert_eq!(l.watch_cursor("F").unwrap(), None);
    // A replay after a lost connection: nothing twice; the cursor never goes back.
    assert!(l.append_watched(&id, &batch[1..], 14_000_000).unwrap().is_empty());
    assert_eq!(l.watch_cursor("E").unwrap(), Some(15_000_000));
    // imgguard removed i2 and recorded it: watch's sight of the deletion is no news.
    l.append(&id, &[Event::removed_by_rmi("E", 20, "sha256:i2", "a:v1")]).unwrap();
    assert!(l
        .append_watched(&id, &[Event::watched_delete("E", 21, "sha256:i2")], 0)
        .unwrap()
        .is_empty());
    assert_eq!(l.watch_cursor("E").unwrap(), Some(15_000_000), "0 leaves the cursor");
    let all = l.all_events(Some("E")).unwrap();
    assert_eq!(all.iter().filter(|r| r.event.kind != EventKind::Intent).count(), 8);
    assert_eq!(l.tracked_tags("E").unwrap(), dangling::current_state(&all, "E"));
    let images = vec![ListedImage {
        id: ImageId::new("sha256:i3"),
        parent: None,
        repo_tags: vec![],
        created_s: 0,
        size: 0,
        labels: BTreeMap::new(),
    }];
    let web = ContainerInfo {
        id: "c".into(),
        name: "web".into(),
        image_id: ImageId::new("sha256:i3"),
        state: "running".into(),
    };
    let got = explain_bounded(l.as_ref(), "E", &images, std::slice::from_ref(&web));
    assert_eq!(got[0].cause.name(), "force-untagged");
    assert_eq!(got, explain_whole(&all, "E", &images, &[web]));
}

#[test]
fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    check_backend(&|| {
        n.set(n.get() + 1);
        let path = dir.path().join(format!("l{}.db", n.get()));
        Box::new(crate::ledger::sqlite::Store::open(&path).unwrap())
    });
}

#[path = "../../tests/pg_cluster.rs"]
mod pg_cluster;

/// The same checks on PostgreSQL: a throwaway cluster, one schema per ledger.
#[test]
fn postgres_conforms() {
    let cluster = pg_cluster::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    let no_env = |_: &str| None;
    check_backend(&|| {
        n.set(n.get() + 1);
        let schema = format!("s{}", n.get());
        cluster.sql(&format!("CREATE SCHEMA {schema}"));
        let url = format!("{}&options=-csearch_path%3D{schema}", cluster.url("postgres"));
        Box::new(
            crate::ledger::postgres::Store::open(&url, &no_env, &dir.path().join("l.db")).unwrap(),
        )
    });
}
