//! What a finished load did to the tags its archive carries: the ledger events, the tags put in
//! place (which may have left other images dangling), and the tags someone else moved while the
//! load ran. Pure: handed where each tag pointed before and after the load.

use crate::core::archive::ArchiveImage;
use crate::core::event::{self, ArchiveFacts, Event, EventKind, ReasonKind, Recorded};
use crate::core::image::ImageId;
use crate::core::policy::Candidate;

/// One tag the load (or `--restore-tags`, `--tag`) put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The tag.
    pub tag: String,
    /// The image it is on now.
    pub id: ImageId,
    /// The image it was on before (`None`: a new tag).
    pub before: Option<ImageId>,
    /// `load`, or `tag` for a name imgguard put on afterwards.
    pub kind: EventKind,
    /// How, in words: `loaded`, `restored from the ledger`, `tagged (--tag)`.
    pub how: &'static str,
}

/// A tag that points elsewhere after the load than the archive put it: moved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedMeanwhile {
    /// The tag.
    pub tag: String,
    /// Where it is now.
    pub now: Option<ImageId>,
    /// Where the archive put it.
    pub loaded: ImageId,
}

/// What the load did to the archive's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedTags {
    /// Moves made outside imgguard before the load, and one `load` event per tag placed.
    pub events: Vec<Event>,
    /// The tags placed.
    pub placed: Vec<Placed>,
    /// Tags moved again by someone else while the load ran: nothing is decided on them.
    pub moved_meanwhile: Vec<MovedMeanwhile>,
}

/// Works out what loading `images` did to `tags` (before → after), given what the ledger knew.
#[allow(clippy::too_many_arguments)]
pub fn loaded_tags(
    engine: &str,
    now_ms: i64,
    images: &[ArchiveImage],
    tags: &[String],
    before: &[Option<ImageId>],
    after: &[Option<ImageId>],
    known: &[Recorded],
    archive: &ArchiveFacts,
) -> LoadedTags {
    let mut out = LoadedTags::default();
    for ((tag, before), after) in tags.iter().zip(before).zip(after) {
        let Some(img) = images.iter().find(|i| i.tags.contains(tag)) else { continue };
        if after.as_ref() != Some(&img.id) {
            out.moved_meanwhile.push(MovedMeanwhile {
                tag: tag.clone(),
                now: after.clone(),
                loaded: img.id.clone(),
            });
            continue;
        }
        let before_str = before.as_ref().map(ImageId::as_str);
        out.events.extend(event::unexpected_moves(
            known,
            engine,
            &[(tag.as_str(), before_str)],
            now_ms,
            ReasonKind::MovedOutside,
            false,
        ));
        out.events.push(Event::archive(
            engine,
            now_ms,
            EventKind::Load,
            Some(tag),
            img.id.as_str(),
            before_str,
            archive,
        ));
        out.placed.push(Placed {
            tag: tag.clone(),
            id: img.id.clone(),
            before: before.clone(),
            kind: EventKind::Load,
            how: "loaded",
        });
    }
    out
}

/// The images whose tags the load (or a naming after it) took: candidates for removal.
pub fn candidates(placed: &[Placed]) -> Vec<Candidate> {
    placed
        .iter()
        .filter_map(|p| {
            let b = p.before.as_ref()?;
            (*b != p.id).then(|| Candidate {
                image: b.clone(),
                left_by: vec![(p.tag.clone(), p.id.clone())],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{ev, id};

    fn image(i: &str, tags: &[&str]) -> ArchiveImage {
        ArchiveImage { id: id(i), tags: tags.iter().map(|t| (*t).to_string()).collect() }
    }

    #[test]
    fn a_load_that_takes_a_tag_makes_the_old_image_a_candidate() {
        let tags = vec!["a:1".to_string()];
        let out = loaded_tags(
            "E",
            5,
            &[image("L", &["a:1"])],
            &tags,
            &[Some(id("O"))],
            &[Some(id("L"))],
            &[],
            &ArchiveFacts::default(),
        );
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].kind, EventKind::Load);
        let c = candidates(&out.placed);
        assert_eq!(c, [Candidate { image: id("O"), left_by: vec![("a:1".into(), id("L"))] }]);
    }

    #[test]
    fn a_tag_moved_meanwhile_is_left_alone() {
        let tags = vec!["a:1".to_string()];
        let known = [ev(1, EventKind::Build, Some("a:1"), Some("sha256:O"))];
        let out = loaded_tags(
            "E",
            5,
            &[image("L", &["a:1"])],
            &tags,
            &[Some(id("O"))],
            &[Some(id("X"))],
            &known,
            &ArchiveFacts::default(),
        );
        assert!(out.placed.is_empty() && out.events.is_empty());
        assert_eq!(out.moved_meanwhile[0].now, Some(id("X")));
    }
}
