//! `imgguard watch`: the daemon's event stream read as ledger events. Pure: the command hands
//! it the daemon's events (and, for the events that need it, the image's tags as inspected when
//! the event arrived), the lists it made and the build runs in progress; it keeps a map of where
//! each tag points and says what to record.
//!
//! Why a map: on Docker 20.10 an image `untag` event carries the image ID in its `name`
//! attribute, not the tag that was removed, a rebuild shows only as a `tag` event of the new ID,
//! and a `load` shows as one `load` event of the image ID whatever names the archive gave it.
//! So where a tag pointed before, and which tags an image lost, come from the map (seeded by one
//! image list, and moved by every event handled).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::core::dangling::{has_labels, labels_match, LabelFilter};
use crate::core::event::{Event, Intent};
use crate::core::image::{ContainerInfo, ImageId, ListedImage};

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An image.
    Image,
    /// A container.
    Container,
    /// Anything else (networks, volumes, …): ignored.
    Other,
}

/// One event of the daemon's stream, in imgguard's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonEvent {
    /// When it happened, in nanoseconds since the epoch (`timeNano`).
    pub time_nano: i64,
    /// What it is about.
    pub subject: Subject,
    /// `tag`, `untag`, `delete`, `load`, `create`, `destroy`, …
    pub action: String,
    /// The actor: the image ID, or the container ID.
    pub id: String,
    /// The `name` attribute: the tag of a `tag` event (an ID for `untag`), a container's name.
    pub name: Option<String>,
    /// A container's `image` attribute: the reference it was created from.
    pub image: Option<String>,
    /// The other attributes: the image's labels (a container's, for a container event; none
    /// on Docker 20.10's `delete`).
    pub labels: BTreeMap<String, String>,
    /// For the events that need it ([`DaemonEvent::needs_tags`]): the image's tags when the
    /// event arrived (`None`: the image was gone by then).
    pub tags_now: Option<Vec<String>>,
}

impl DaemonEvent {
    /// Whether the image's tags must be looked up when the event arrives: an `untag` does not
    /// say which tag went, a `load` does not say which names the archive gave.
    pub fn needs_tags(&self) -> bool {
        self.subject == Subject::Image && matches!(self.action.as_str(), "untag" | "load" | "build")
    }

    /// Milliseconds since the epoch, as the ledger keeps time.
    pub fn at_ms(&self) -> i64 {
        self.time_nano.div_euclid(1_000_000)
    }
}

/// What `watch` knows of the daemon: where each tag points, the tags of each image, and which
/// containers hold which image.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    engine: String,
    tags: HashMap<String, ImageId>,
    images: HashMap<ImageId, BTreeSet<String>>,
    containers: HashMap<String, (String, ImageId)>,
    /// Tags seeded from the daemon's list that the ledger never tracked, not moved since.
    untracked: BTreeSet<String>,
    /// `--label`: only events about images carrying these labels are recorded.
    labels: Vec<LabelFilter>,
    /// The images known to carry them.
    labelled: HashSet<ImageId>,
}

impl Watch {
    /// A map for `engine` seeded from the ledger's current state (`tracked`, which a resumed
    /// stream starts from) and, for the tags the ledger never tracked, from the daemon's list.
    pub fn new(
        engine: &str,
        tracked: &[(String, Option<String>)],
        images: &[ListedImage],
        containers: &[ContainerInfo],
    ) -> Watch {
        let mut w = Watch { engine: engine.to_string(), ..Watch::default() };
        for (tag, image) in tracked {
            if let Some(id) = image {
                w.point(tag, Some(ImageId::new(id.clone())));
            }
        }
        let tracked: BTreeSet<&str> = tracked.iter().map(|(t, _)| t.as_str()).collect();
        for image in images {
            for tag in image.repo_tags.iter().filter(|t| !tracked.contains(t.as_str())) {
                w.point(tag, Some(image.id.clone()));
                w.untracked.insert(tag.clone());
            }
        }
        w.set_containers(containers);
        w
    }

    /// Records only what concerns images carrying `labels` (the map still follows every tag).
    #[must_use]
    pub fn only_labelled(mut self, labels: &[LabelFilter], images: &[ListedImage]) -> Watch {
        self.labels = labels.to_vec();
        self.labelled =
            images.iter().filter(|i| has_labels(i, labels)).map(|i| i.id.clone()).collect();
        self
    }

    /// Whether an event of the ledger is about an image `--label` asks for.
    fn wanted(&self, e: &Event) -> bool {
        self.labels.is_empty()
            || [&e.image_id, &e.previous_id]
                .into_iter()
                .flatten()
                .any(|id| self.labelled.contains(&ImageId::new(id.clone())))
    }

    /// The engine the map is of.
    pub fn engine(&self) -> &str {
        &self.engine
    }

    /// How many tags the map holds.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether the map holds no tag.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Where `tag` points, as the map knows.
    pub fn points_at(&self, tag: &str) -> Option<&ImageId> {
        self.tags.get(tag)
    }

    fn set_containers(&mut self, containers: &[ContainerInfo]) {
        self.containers = containers
            .iter()
            .map(|c| (c.id.clone(), (c.name.clone(), c.image_id.clone())))
            .collect();
    }

    /// Moves `tag` to `to` (`None`: off), keeping both directions of the map; returns where it
    /// pointed before.
    fn point(&mut self, tag: &str, to: Option<ImageId>) -> Option<ImageId> {
        let before = match &to {
            Some(id) => self.tags.insert(tag.to_string(), id.clone()),
            None => self.tags.remove(tag),
        };
        if let Some(b) = &before {
            if let Some(set) = self.images.get_mut(b) {
                set.remove(tag);
                if set.is_empty() {
                    self.images.remove(b);
                }
            }
        }
        if let Some(id) = to {
            self.images.entry(id).or_default().insert(tag.to_string());
        }
        before
    }

    /// Moves `tag` to `to` (`None`: off) at `at` and says so. A tag the ledger never tracked (seen
    /// in the list when the map was seeded) is first recorded where the list saw it, so that
    /// the image it leaves has its evidence. The last tag off an image a container holds is
    /// force-untagged.
    fn moved(&mut self, tag: &str, to: Option<&ImageId>, at: i64) -> Vec<Event> {
        let before = self.point(tag, to.cloned());
        let mut out = Vec::new();
        if let (true, Some(b)) = (self.untracked.remove(tag), &before) {
            out.push(Event::watched_seen(&self.engine, at, tag, b.as_str()));
        }
        let holder = match (&to, &before) {
            (None, Some(b)) if !self.images.contains_key(b) => self.holder(b),
            _ => None,
        };
        out.push(Event::watched_move(
            &self.engine,
            at,
            tag,
            to.map(ImageId::as_str),
            before.as_ref().map(ImageId::as_str),
            holder,
        ));
        out
    }

    /// A container that holds `image`, by name.
    fn holder(&self, image: &ImageId) -> Option<&str> {
        let mut names: Vec<&str> =
            self.containers.values().filter(|(_, i)| i == image).map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.first().copied()
    }

    /// After the stream was lost (or at start): compares the map with the daemon's list and
    /// returns a move for every tag that differs (moved while nobody watched), at `now_ms`;
    /// the map then is the list.
    pub fn reconcile(
        &mut self,
        images: &[ListedImage],
        containers: &[ContainerInfo],
        now_ms: i64,
    ) -> Vec<Event> {
        self.set_containers(containers);
        let daemon: HashMap<&str, &ImageId> = images
            .iter()
            .flat_map(|i| i.repo_tags.iter().map(move |t| (t.as_str(), &i.id)))
            .collect();
        let mut all: BTreeSet<String> = self.tags.keys().cloned().collect();
        all.extend(daemon.keys().map(|t| (*t).to_string()));
        let mut out = Vec::new();
        for tag in all {
            let now = daemon.get(tag.as_str()).map(|i| (*i).clone());
            if self.tags.get(&tag) == now.as_ref() {
                continue;
            }
            out.extend(self.moved(&tag, now.as_ref(), now_ms));
        }
        for i in images.iter().filter(|i| !self.labels.is_empty() && has_labels(i, &self.labels)) {
            self.labelled.insert(i.id.clone());
        }
        out.retain(|e| self.wanted(e));
        out
    }

    /// The tags an event concerns, for [`covered`]: the tag a `tag` event puts on, the tags an
    /// image carried or carries now for the others.
    pub fn tags_of(&self, ev: &DaemonEvent) -> Vec<String> {
        if ev.subject != Subject::Image {
            return Vec::new();
        }
        let mut tags: BTreeSet<String> = BTreeSet::new();
        if ev.action == "tag" {
            tags.extend(ev.name.clone());
        }
        if let Some(known) = self.images.get(&ImageId::new(ev.id.clone())) {
            tags.extend(known.iter().cloned());
        }
        tags.extend(ev.tags_now.iter().flatten().cloned());
        tags.into_iter().collect()
    }

    /// What one event means for the ledger (of the images `--label` asks for); moves the map.
    pub fn handle(&mut self, ev: &DaemonEvent) -> Vec<Event> {
        if !self.labels.is_empty()
            && ev.subject == Subject::Image
            && labels_match(&ev.labels, &self.labels)
        {
            self.labelled.insert(ImageId::new(ev.id.clone()));
        }
        let mut out = self.meaning(ev);
        out.retain(|e| self.wanted(e));
        out
    }

    fn meaning(&mut self, ev: &DaemonEvent) -> Vec<Event> {
        let at = ev.at_ms();
        let engine = self.engine.clone();
        match (ev.subject, ev.action.as_str()) {
            (Subject::Image, "tag") => {
                let (Some(tag), id) = (ev.name.as_deref(), ImageId::new(ev.id.clone())) else {
                    return Vec::new();
                };
                if self.tags.get(tag) == Some(&id) {
                    // A tag the ledger never tracked, seeded where the list saw it: the event
                    // (a replay of what happened before the list) is the news of it.
                    if !self.untracked.remove(tag) {
                        return Vec::new();
                    }
                    let event =
                        Event::watched_move(&self.engine, at, tag, Some(id.as_str()), None, None);
                    return vec![event];
                }
                self.moved(tag, Some(&id), at)
            }
            (Subject::Image, "untag") => self.untagged(ev, at),
            (Subject::Image, "load") => self.loaded(ev, at, true),
            // Podman: a build's new image, with no `tag` event for its tags.
            (Subject::Image, "build") => self.loaded(ev, at, false),
            (Subject::Image, "delete") => {
                let id = ImageId::new(ev.id.clone());
                let mut out = self.take_tags(&id, &[], at);
                out.push(Event::watched_delete(&engine, at, id.as_str()));
                out
            }
            (Subject::Container, "create") => self.container_created(ev, at),
            (Subject::Container, "destroy") => match self.containers.remove(&ev.id) {
                Some((name, image)) if self.images.contains_key(&image) => {
                    vec![Event::watched_container(&engine, at, image.as_str(), &name, true)]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// An `untag`: the tags the map had on the image that it no longer carries went.
    fn untagged(&mut self, ev: &DaemonEvent, at: i64) -> Vec<Event> {
        let id = ImageId::new(ev.id.clone());
        let still: Vec<String> = ev.tags_now.clone().unwrap_or_default();
        self.take_tags(&id, &still, at)
    }

    /// Takes every tag the map has on `id` off but those in `still`.
    fn take_tags(&mut self, id: &ImageId, still: &[String], at: i64) -> Vec<Event> {
        let gone: Vec<String> = self
            .images
            .get(id)
            .map(|set| set.iter().filter(|t| !still.contains(t)).cloned().collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for tag in gone {
            out.extend(self.moved(&tag, None, at));
        }
        out
    }

    /// A `load` (`nameless`: a load, not a Podman build): nameless when the image carries no
    /// tag, else each of its tags moved to it.
    fn loaded(&mut self, ev: &DaemonEvent, at: i64, nameless: bool) -> Vec<Event> {
        let id = ImageId::new(ev.id.clone());
        let engine = self.engine.clone();
        let Some(tags) = ev.tags_now.as_ref() else { return Vec::new() };
        if tags.is_empty() {
            return if nameless {
                vec![Event::watched_nameless_load(&engine, at, id.as_str())]
            } else {
                Vec::new()
            };
        }
        let mut out = Vec::new();
        for tag in tags {
            if self.tags.get(tag) != Some(&id) {
                out.extend(self.moved(tag, Some(&id), at));
            }
        }
        out
    }

    /// A container `create`: it holds its image from now on. Recorded when the image is one a
    /// tag of the map points at (a build's intermediate containers are not worth a record).
    fn container_created(&mut self, ev: &DaemonEvent, at: i64) -> Vec<Event> {
        let Some(reference) = ev.image.as_deref() else { return Vec::new() };
        let image = match self.tags.get(reference).or_else(|| self.tags.get(&latest(reference))) {
            Some(id) => id.clone(),
            None if reference.starts_with("sha256:") || is_hex_id(reference) => {
                ImageId::new(reference)
            }
            None => return Vec::new(),
        };
        let name = ev.name.clone().unwrap_or_else(|| ev.id.chars().take(12).collect());
        self.containers.insert(ev.id.clone(), (name.clone(), image.clone()));
        if self.images.contains_key(&image) {
            vec![Event::watched_container(&self.engine, at, image.as_str(), &name, false)]
        } else {
            Vec::new()
        }
    }
}

/// `ref` with `:latest` when it names no tag.
fn latest(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether an event belongs to a build run still in progress (`[ref:intent-first]`): it
/// concerns a tag one of the `open` runs is building. Such an event waits until the run has
/// ended and recorded its own moves; then it is handled (and what the build recorded is not
/// recorded twice).
pub fn covered(tags: &[String], open: &[Intent]) -> bool {
    open.iter()
        .filter(|i| i.end.is_none())
        .any(|i| i.tags.iter().any(|(t, _)| tags.iter().any(|x| x == t)))
}

/// How far back a removal already recorded makes a watched deletion of the same image a
/// duplicate: imgguard records its own removals once its command ends, seconds after the daemon
/// deleted the image.
pub const REMOVAL_DUPLICATE_MS: i64 = 600_000;

/// How long before the daemon's event a command may have stamped the same tag move (it reads
/// the clock once, when it starts).
pub const RECENT_MOVE_MS: i64 = 60_000;

/// How many of a tag's last moves a backend reads for [`move_recorded`].
pub const RECENT_MOVES: i64 = 8;

/// Whether a watched tag move `e` is in the ledger already: the tag's current state
/// (`current`: `None` when the ledger never tracked the tag) is there already, or one of the
/// tag's last moves (`recent`: image and time, any order) is the same move, recorded lately (by
/// the command that made it, after the daemon's event, or by an earlier watch) and not undone
/// before `e`'s time. Every backend asks this of what its indexes give (`[ref:watch-duplicate]`).
pub fn move_recorded(
    e: &Event,
    current: Option<Option<&str>>,
    recent: &[(Option<String>, i64)],
) -> bool {
    if current.is_some_and(|now| now == e.image_id.as_deref()) {
        return true;
    }
    let window = e.at_ms - RECENT_MOVE_MS..=e.at_ms + REMOVAL_DUPLICATE_MS;
    recent.iter().any(|(image, at)| {
        *image == e.image_id
            && window.contains(at)
            && !recent
                .iter()
                .any(|(other, later)| *other != e.image_id && *later > *at && *later <= e.at_ms)
    })
}

/// The earliest time a removal of the same image makes a watched removal `e` a duplicate.
pub fn removal_window_start(e: &Event) -> i64 {
    e.at_ms - REMOVAL_DUPLICATE_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{EventKind, ReasonKind};

    fn listed(id: &str, tags: &[&str]) -> ListedImage {
        ListedImage {
            id: ImageId::new(id),
            parent: None,
            repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
            created_s: 0,
            size: 0,
            labels: BTreeMap::new(),
        }
    }

    /// A map seeded from a ledger that tracks every tag of `images`.
    fn seeded(images: &[ListedImage], containers: &[ContainerInfo]) -> Watch {
        let tracked: Vec<(String, Option<String>)> = images
            .iter()
            .flat_map(|i| i.repo_tags.iter().map(|t| (t.clone(), Some(i.id.to_string()))))
            .collect();
        Watch::new("E", &tracked, images, containers)
    }

    #[test]
    fn a_tag_the_ledger_never_saw_is_first_recorded_where_the_list_saw_it() {
        let mut w = Watch::new("E", &[], &[listed("sha256:a", &["app:v1"])], &[]);
        let out = w.handle(&ev("tag", "sha256:b", Some("app:v1"), 5));
        assert_eq!(
            reasons(&out),
            [
                (Some("app:v1"), Some("sha256:a"), None, ReasonKind::TaggedOutside),
                (Some("app:v1"), Some("sha256:b"), Some("sha256:a"), ReasonKind::MovedOutside)
            ]
        );
        // Only once.
        assert_eq!(w.handle(&ev("tag", "sha256:c", Some("app:v1"), 6)).len(), 1);
        // A tag event of an untracked tag where the list saw it (a replay from before the list):
        // recorded, once.
        let mut w = Watch::new("E", &[], &[listed("sha256:a", &["new:v1"])], &[]);
        let out = w.handle(&ev("tag", "sha256:a", Some("new:v1"), 1));
        assert_eq!(
            reasons(&out),
            [(Some("new:v1"), Some("sha256:a"), None, ReasonKind::MovedOutside)]
        );
        assert!(w.handle(&ev("tag", "sha256:a", Some("new:v1"), 2)).is_empty());
    }

    fn ev(action: &str, id: &str, name: Option<&str>, t: i64) -> DaemonEvent {
        DaemonEvent {
            time_nano: t * 1_000_000,
            subject: Subject::Image,
            action: action.into(),
            id: id.into(),
            name: name.map(str::to_string),
            image: None,
            labels: BTreeMap::new(),
            tags_now: None,
        }
    }

    type Row<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, ReasonKind);

    fn reasons(events: &[Event]) -> Vec<Row<'_>> {
        events
            .iter()
            .map(|e| {
                (
                    e.tag.as_deref(),
                    e.image_id.as_deref(),
                    e.previous_id.as_deref(),
                    e.reason.as_ref().unwrap().kind,
                )
            })
            .collect()
    }

    #[test]
    fn a_rebuild_is_a_tag_event_of_the_new_id_and_moves_the_tag_from_the_old() {
        let mut w = seeded(&[listed("sha256:a", &["app:v1"])], &[]);
        let out = w.handle(&ev("tag", "sha256:b", Some("app:v1"), 5));
        assert_eq!(
            reasons(&out),
            [(Some("app:v1"), Some("sha256:b"), Some("sha256:a"), ReasonKind::MovedOutside)]
        );
        assert_eq!(out[0].kind, EventKind::MovedOutside);
        assert_eq!(out[0].at_ms, 5);
        // The same tag event again (a replay) changes nothing.
        assert!(w.handle(&ev("tag", "sha256:b", Some("app:v1"), 6)).is_empty());
    }

    #[test]
    fn an_untag_names_the_id_and_the_tags_now_say_which_tag_went() {
        let mut w = seeded(&[listed("sha256:a", &["app:v1", "app:v2"])], &[]);
        let mut e = ev("untag", "sha256:a", Some("sha256:a"), 7);
        e.tags_now = Some(vec!["app:v2".into()]);
        let out = w.handle(&e);
        assert_eq!(
            reasons(&out),
            [(Some("app:v1"), None, Some("sha256:a"), ReasonKind::RemovedOutside)]
        );
        assert_eq!(w.points_at("app:v2").map(ImageId::as_str), Some("sha256:a"));
        assert!(w.points_at("app:v1").is_none());
    }

    #[test]
    fn the_last_tag_off_an_image_a_container_holds_is_force_untagged() {
        let c = ContainerInfo {
            id: "c1".into(),
            name: "web".into(),
            image_id: ImageId::new("sha256:a"),
            state: "running".into(),
        };
        let mut w = seeded(&[listed("sha256:a", &["app:v1", "app:v2"])], &[c]);
        let mut e = ev("untag", "sha256:a", Some("sha256:a"), 7);
        e.tags_now = Some(vec![]);
        let out = w.handle(&e);
        let kinds: Vec<ReasonKind> = out.iter().map(|e| e.reason.as_ref().unwrap().kind).collect();
        // Only the last tag taken off leaves the image nameless while the container holds it.
        assert_eq!(kinds, [ReasonKind::RemovedOutside, ReasonKind::ForceUntagged]);
        assert!(out[1].reason_text().unwrap().contains("web"));
    }

    #[test]
    fn a_load_without_names_is_nameless_and_with_names_moves_them() {
        let mut w = seeded(&[listed("sha256:a", &["app:v1"])], &[]);
        let mut e = ev("load", "sha256:n", Some("sha256:n"), 3);
        e.tags_now = Some(vec![]);
        let out = w.handle(&e);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].kind, out[0].outcome), (EventKind::Load, Some(Outcome::Nameless)));
        let mut e = ev("load", "sha256:b", Some("sha256:b"), 4);
        e.tags_now = Some(vec!["app:v1".into()]);
        assert_eq!(
            reasons(&w.handle(&e)),
            [(Some("app:v1"), Some("sha256:b"), Some("sha256:a"), ReasonKind::MovedOutside)]
        );
        // Gone by the time it was inspected: nothing to say.
        let mut e = ev("load", "sha256:c", None, 5);
        e.tags_now = None;
        assert!(w.handle(&e).is_empty());
    }

    #[test]
    fn a_delete_is_recorded_and_takes_any_tag_left_in_the_map() {
        let mut w = seeded(&[listed("sha256:a", &["app:v1"])], &[]);
        let out = w.handle(&ev("delete", "sha256:a", Some("sha256:a"), 9));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].tag.as_deref(), Some("app:v1"));
        assert_eq!(
            (out[1].kind, out[1].image_id.as_deref()),
            (EventKind::Removed, Some("sha256:a"))
        );
    }

    #[test]
    fn containers_of_tagged_images_are_recorded_and_intermediates_are_not() {
        let mut w = seeded(&[listed("sha256:a", &["app:v1"])], &[]);
        let mut c = ev("create", "c1", Some("web"), 1);
        c.subject = Subject::Container;
        c.image = Some("app:v1".into());
        let out = w.handle(&c);
        assert_eq!(
            (out[0].kind, out[0].image_id.as_deref()),
            (EventKind::Container, Some("sha256:a"))
        );
        let mut tmp = ev("create", "c2", Some("tmp"), 2);
        tmp.subject = Subject::Container;
        tmp.image = Some("sha256:intermediate".into());
        assert!(w.handle(&tmp).is_empty());
        // The container holds the image: the forced untag says so.
        let mut u = ev("untag", "sha256:a", None, 3);
        u.tags_now = Some(vec![]);
        assert_eq!(w.handle(&u)[0].reason.as_ref().unwrap().kind, ReasonKind::ForceUntagged);
        let mut d = ev("destroy", "c1", Some("web"), 4);
        d.subject = Subject::Container;
        // The image has no tag any more: its container's end is not recorded.
        assert!(w.handle(&d).is_empty());
    }

    #[test]
    fn the_ledger_state_seeds_the_map_and_reconcile_records_what_moved_meanwhile() {
        let tracked = vec![("app:v1".to_string(), Some("sha256:a".to_string()))];
        let mut w = Watch::new("E", &tracked, &[listed("sha256:b", &["app:v1", "x:1"])], &[]);
        assert_eq!(w.points_at("app:v1").map(ImageId::as_str), Some("sha256:a"));
        assert_eq!(w.points_at("x:1").map(ImageId::as_str), Some("sha256:b"));
        let out = w.reconcile(&[listed("sha256:b", &["app:v1", "x:1"])], &[], 50);
        assert_eq!(
            reasons(&out),
            [(Some("app:v1"), Some("sha256:b"), Some("sha256:a"), ReasonKind::MovedOutside)]
        );
        assert!(w.reconcile(&[listed("sha256:b", &["app:v1", "x:1"])], &[], 51).is_empty());
    }

    #[test]
    fn with_a_label_filter_only_labelled_images_are_recorded() {
        let mut mine = listed("sha256:a", &["app:v1"]);
        mine.labels.insert("team".into(), "x".into());
        let images = [mine, listed("sha256:o", &["other:v1"])];
        let filter = [LabelFilter::parse("team=x").unwrap()];
        let mut w = seeded(&images, &[]).only_labelled(&filter, &images);
        // Another team's rebuild: followed, not recorded.
        assert!(w.handle(&ev("tag", "sha256:o2", Some("other:v1"), 1)).is_empty());
        assert_eq!(w.points_at("other:v1").map(ImageId::as_str), Some("sha256:o2"));
        // Ours: recorded, and so is a new labelled image's tag (its labels come with the event).
        assert_eq!(w.handle(&ev("tag", "sha256:o2", Some("app:v1"), 2)).len(), 1);
        let mut new = ev("tag", "sha256:n", Some("new:v1"), 3);
        new.labels.insert("team".into(), "x".into());
        assert_eq!(w.handle(&new).len(), 1);
        // A deletion carries no labels: recorded for an image known to be ours.
        assert_eq!(w.handle(&ev("delete", "sha256:a", None, 4)).len(), 1);
        assert!(w.handle(&ev("delete", "sha256:zz", None, 5)).is_empty());
    }

    #[test]
    fn an_open_build_run_covers_its_tags() {
        let run = Intent {
            run: "build pid 1 at 0".into(),
            pid: 1,
            start_ms: 0,
            tags: vec![("app:v1".into(), None)],
            end: None,
        };
        assert!(covered(&["app:v1".into()], std::slice::from_ref(&run)));
        assert!(!covered(&["app:v2".into()], std::slice::from_ref(&run)));
        let ended = Intent { end: Some((Outcome::Finished, 5)), ..run };
        assert!(!covered(&["app:v1".into()], &[ended]));
    }

    use crate::core::event::Outcome;
}
