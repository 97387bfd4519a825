//! What `imgguard fleet` says of one engine, derived from its events alone (pure: the ledger
//! hands over the events, the command prints).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::core::event::{EventKind, Recorded};

/// One engine's row of `imgguard fleet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetRow {
    /// The engine's identity (`docker info` ID).
    pub engine: String,
    /// The daemon's name for itself.
    pub name: String,
    /// The host whose imgguard recorded it last.
    pub host: String,
    /// Its newest event (ms since the epoch).
    #[serde(skip)]
    pub last_seen_ms: Option<i64>,
    /// `<none>` images known to the ledger: images the ledger saw on this engine that no tag
    /// points at now and that were not removed.
    pub nameless: u64,
    /// Their bytes, where the ledger knows them (the size recorded with the image's fate, else
    /// the size of the archive it was loaded from, else unknown).
    pub nameless_bytes: u64,
    /// Of those, the ones the ledger cannot explain: never tagged, never kept for a reason.
    pub unexplained: u64,
    /// Images removed since the window's start.
    pub removed_recently: u64,
    /// Images kept (with a reason) since the window's start.
    pub kept_recently: u64,
}

impl FleetRow {
    /// A row from the five counts a backend's `FLEET_SQL` gives, in its column order: nameless,
    /// nameless bytes, unexplained, removed and kept since the window's start.
    pub fn counted(
        engine: String,
        name: String,
        host: String,
        last_seen_ms: Option<i64>,
        counts: [i64; 5],
    ) -> FleetRow {
        let n = |i: usize| u64::try_from(counts[i]).unwrap_or(0);
        FleetRow {
            engine,
            name,
            host,
            last_seen_ms,
            nameless: n(0),
            nameless_bytes: n(1),
            unexplained: n(2),
            removed_recently: n(3),
            kept_recently: n(4),
        }
    }
}

/// The row of `engine` from its events (any order; at least the pointer events, `removed` and
/// `kept` events, and nameless loads), counting removals and keeps at or after `since_ms`.
pub fn row(engine: &str, events: &[Recorded], since_ms: i64) -> FleetRow {
    let mut sorted: Vec<&Recorded> = events.iter().filter(|r| r.event.engine == engine).collect();
    sorted.sort_by_key(|r| (r.event.at_ms, r.seq));
    let mut current: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut fate: BTreeMap<&str, EventKind> = BTreeMap::new();
    let mut tagged: BTreeSet<&str> = BTreeSet::new();
    let mut known: BTreeMap<&str, i64> = BTreeMap::new();
    let mut out = FleetRow { engine: engine.to_string(), ..FleetRow::default() };
    for r in &sorted {
        let e = &r.event;
        out.last_seen_ms = Some(out.last_seen_ms.map_or(e.at_ms, |m| m.max(e.at_ms)));
        let size = e.image_size.or_else(|| e.archive.as_ref().and_then(|a| a.size)).unwrap_or(0);
        for id in [e.image_id.as_deref(), e.previous_id.as_deref()].into_iter().flatten() {
            let slot = known.entry(id).or_insert(0);
            *slot = (*slot).max(size);
        }
        if let (Some(tag), true) = (e.tag.as_deref(), e.is_pointer()) {
            current.insert(tag, e.image_id.as_deref());
            tagged.extend(e.image_id.as_deref());
            tagged.extend(e.previous_id.as_deref());
        }
        if let (Some(id), EventKind::Removed | EventKind::Kept) = (e.image_id.as_deref(), e.kind) {
            fate.insert(id, e.kind);
            if e.at_ms >= since_ms {
                if e.kind == EventKind::Removed {
                    out.removed_recently += 1;
                } else {
                    out.kept_recently += 1;
                }
            }
        }
    }
    let pointed: BTreeSet<&str> = current.values().flatten().copied().collect();
    for (id, size) in known {
        if pointed.contains(id) || fate.get(id) == Some(&EventKind::Removed) {
            continue;
        }
        out.nameless += 1;
        out.nameless_bytes += u64::try_from(size).unwrap_or(0);
        if !tagged.contains(id) && fate.get(id) != Some(&EventKind::Kept) {
            out.unexplained += 1;
        }
    }
    out
}

/// The tags other engines recorded for an image loaded nameless on `here`: the image by its ID,
/// or the images recorded with the archive `archive_sha256` (saved elsewhere by ID, the same
/// file loaded here), newest first, without repeats.
pub fn tags_elsewhere(
    events: &[Recorded],
    here: &str,
    image_id: &str,
    archive_sha256: Option<&str>,
) -> Vec<String> {
    let mut ids: Vec<(&str, &str)> = Vec::new();
    for r in events.iter().filter(|r| r.event.engine != here) {
        let e = &r.event;
        let Some(id) = e.image_id.as_deref() else { continue };
        let same_archive = archive_sha256
            .is_some_and(|s| e.archive.as_ref().and_then(|a| a.sha256.as_deref()) == Some(s));
        if (id == image_id || same_archive) && !ids.contains(&(e.engine.as_str(), id)) {
            ids.push((e.engine.as_str(), id));
        }
    }
    let mut out: Vec<String> = Vec::new();
    for (engine, id) in ids {
        for tag in crate::core::event::tags_of_image(events, engine, id) {
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{ArchiveFacts, Event, Outcome};

    fn rec(seq: i64, e: Event) -> Recorded {
        Recorded { seq, event: e }
    }

    #[test]
    fn counts_nameless_unexplained_and_recent_fates() {
        let mut build1 = Event::new("E", 10, EventKind::Build);
        build1.tag = Some("app:ci".into());
        build1.image_id = Some("A".into());
        let mut build2 = build1.clone();
        build2.at_ms = 20;
        build2.image_id = Some("B".into());
        build2.previous_id = Some("A".into());
        let mut load = Event::new("E", 30, EventKind::Load);
        load.image_id = Some("C".into());
        load.outcome = Some(Outcome::Nameless);
        load.archive = Some(ArchiveFacts { size: Some(500), ..ArchiveFacts::default() });
        let mut removed = Event::new("E", 40, EventKind::Removed);
        removed.image_id = Some("D".into());
        let mut old_kept = Event::new("E", 1, EventKind::Kept);
        old_kept.image_id = Some("A".into());
        let other = Event::new("F", 50, EventKind::Removed);
        let events = [
            rec(1, build1),
            rec(2, build2),
            rec(3, load),
            rec(4, removed),
            rec(5, old_kept),
            rec(6, other),
        ];
        let row = row("E", &events, 5);
        assert_eq!(row.last_seen_ms, Some(40));
        // A (superseded, kept long ago) and C (loaded without a name); B is app:ci, D removed.
        assert_eq!((row.nameless, row.nameless_bytes, row.unexplained), (2, 500, 1));
        assert_eq!((row.removed_recently, row.kept_recently), (1, 0));
    }

    #[test]
    fn tags_come_from_other_engines_by_id_or_archive() {
        let mut built = Event::new("A", 1, EventKind::Build);
        built.tag = Some("app:ci".into());
        built.image_id = Some("X".into());
        let mut saved = Event::new("A", 2, EventKind::Save);
        saved.image_id = Some("X".into());
        saved.archive = Some(ArchiveFacts { sha256: Some("s1".into()), ..ArchiveFacts::default() });
        let mut here = Event::new("B", 3, EventKind::Build);
        here.tag = Some("other:1".into());
        here.image_id = Some("Y".into());
        let events = [rec(1, built), rec(2, saved), rec(3, here)];
        assert_eq!(tags_elsewhere(&events, "B", "X", None), ["app:ci"]);
        assert_eq!(tags_elsewhere(&events, "B", "Z", Some("s1")), ["app:ci"], "by archive");
        assert!(tags_elsewhere(&events, "B", "Z", Some("s2")).is_empty());
        assert!(tags_elsewhere(&events, "B", "Y", None).is_empty(), "not from this engine");
    }
}
