//! What a finished build did, tag by tag: the ledger events it makes and the images it may have
//! left dangling. Pure: handed where each tag pointed before and after the build, and what the
//! ledger knew.

use crate::core::event::{BuildFacts, Event, ReasonKind, Recorded};
use crate::core::image::ImageId;
use crate::core::policy::Candidate;

/// One tag of a build: where it pointed before, and after (when another build moved it on while
/// ours ran, `after` differs from the built image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// The normalised tag (`app:v1`).
    pub tag: String,
    /// The image it pointed at before the build (`None`: a new tag).
    pub before: Option<ImageId>,
    /// The image it points at after the build.
    pub after: Option<ImageId>,
}

/// The events a build appends and the images it may have left dangling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOutcome {
    /// Moves made outside imgguard before the build, then one `build` event per tag, then moves
    /// made by other builds while this one ran.
    pub events: Vec<Event>,
    /// Images a tag left: the previous image, or ours when another build took the tag.
    pub candidates: Vec<Candidate>,
}

/// Works out what a build of `new_id` did to `tags`, given what the ledger `known` of them.
pub fn outcome(
    engine: &str,
    now_ms: i64,
    new_id: &ImageId,
    tags: &[TagChange],
    known: &[Recorded],
    facts: &BuildFacts,
) -> BuildOutcome {
    let mut out = BuildOutcome::default();
    let observed: Vec<(&str, Option<&str>)> =
        tags.iter().map(|t| (t.tag.as_str(), t.before.as_ref().map(ImageId::as_str))).collect();
    out.events.extend(crate::core::event::unexpected_moves(
        known,
        engine,
        &observed,
        now_ms,
        ReasonKind::MovedOutside,
        false,
    ));
    for t in tags {
        let before = t.before.as_ref();
        out.events.push(Event::build(
            engine,
            now_ms,
            &t.tag,
            new_id.as_str(),
            before.map(ImageId::as_str),
            facts,
        ));
        if let Some(prev) = before.filter(|p| *p != new_id) {
            out.candidates.push(Candidate {
                image: prev.clone(),
                left_by: vec![(t.tag.clone(), new_id.clone())],
            });
        }
        // Another build moved the tag on while ours ran: our image is superseded already.
        if let Some(other) = t.after.as_ref().filter(|a| *a != new_id) {
            out.events.push(Event::moved_outside(
                engine,
                now_ms,
                &t.tag,
                Some(other.as_str()),
                Some(new_id.as_str()),
                ReasonKind::MovedByAnotherBuild,
            ));
            out.candidates.push(Candidate {
                image: new_id.clone(),
                left_by: vec![(t.tag.clone(), other.clone())],
            });
        }
    }
    out
}

/// The events of a build whose image never reached the daemon (buildx without `--load`, a
/// push-only build): recorded, but no tag moved and nothing may be removed.
pub fn not_in_daemon(
    engine: &str,
    now_ms: i64,
    new_id: &ImageId,
    tags: &[TagChange],
    facts: &BuildFacts,
) -> Vec<Event> {
    tags.iter()
        .map(|t| Event::build_not_in_daemon(engine, now_ms, &t.tag, new_id.as_str(), facts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::EventKind;
    use crate::core::fixtures::{ev, id};

    fn change(tag: &str, before: Option<&str>, after: Option<&str>) -> TagChange {
        TagChange { tag: tag.into(), before: before.map(id), after: after.map(id) }
    }

    #[test]
    fn a_rebuild_supersedes_the_previous_image() {
        let out = outcome(
            "E",
            9,
            &id("B"),
            &[change("x:v1", Some("A"), Some("B"))],
            &[],
            &BuildFacts::default(),
        );
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].kind, EventKind::Build);
        assert_eq!(out.events[0].previous_id.as_deref(), Some("sha256:A"));
        assert_eq!(
            out.candidates,
            [Candidate { image: id("A"), left_by: vec![("x:v1".into(), id("B"))] }]
        );
    }

    #[test]
    fn a_cache_hit_leaves_nothing_to_remove() {
        let out = outcome(
            "E",
            9,
            &id("A"),
            &[change("x:v1", Some("A"), Some("A"))],
            &[],
            &BuildFacts::default(),
        );
        assert!(out.candidates.is_empty());
    }

    #[test]
    fn a_move_by_plain_docker_before_the_build_is_recorded_first() {
        let known = [ev(1, EventKind::Build, Some("x:v1"), Some("sha256:A"))];
        let out = outcome(
            "E",
            9,
            &id("C"),
            &[change("x:v1", Some("B"), Some("C"))],
            &known,
            &BuildFacts::default(),
        );
        let kinds: Vec<EventKind> = out.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::MovedOutside, EventKind::Build]);
        assert_eq!(out.events[0].image_id.as_deref(), Some("sha256:B"));
        assert_eq!(out.events[0].previous_id.as_deref(), Some("sha256:A"));
    }

    #[test]
    fn a_concurrent_build_that_took_the_tag_makes_ours_a_candidate() {
        let out = outcome(
            "E",
            9,
            &id("B"),
            &[change("x:v1", Some("A"), Some("C"))],
            &[],
            &BuildFacts::default(),
        );
        let images: Vec<&ImageId> = out.candidates.iter().map(|c| &c.image).collect();
        assert_eq!(images, [&id("A"), &id("B")]);
        assert_eq!(out.events[1].reason.as_ref().unwrap().kind, ReasonKind::MovedByAnotherBuild);
    }
}
