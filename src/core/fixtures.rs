//! Test fixtures shared by the pure core's unit tests: image IDs, events, images, containers.

use std::collections::BTreeMap;

use crate::core::event::{Event, EventKind, Recorded};
use crate::core::image::{ContainerInfo, ImageId, ImageInfo, ListedImage};

/// One hour in milliseconds.
pub(crate) const HOUR: i64 = 3_600_000;

/// `sha256:{s}`.
pub(crate) fn id(s: &str) -> ImageId {
    ImageId::new(format!("sha256:{s}"))
}

/// An event of engine `E` at `seq` hours, with its place `seq` in the log; `image` as given.
pub(crate) fn ev(seq: i64, kind: EventKind, tag: Option<&str>, image: Option<&str>) -> Recorded {
    let mut event = Event::new("E", seq * HOUR, kind);
    event.tag = tag.map(str::to_string);
    event.image_id = image.map(str::to_string);
    Recorded { seq, event }
}

/// An image as inspect shows it.
pub(crate) fn info(s: &str, tags: &[&str]) -> ImageInfo {
    ImageInfo {
        id: id(s),
        repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
        created: None,
        size: Some(1),
        labels: std::collections::BTreeMap::new(),
    }
}

/// An image as the list shows it, 100 bytes, no parent.
pub(crate) fn listed(s: &str, tags: &[&str], created_s: i64) -> ListedImage {
    ListedImage {
        id: id(s),
        parent: None,
        repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
        created_s,
        size: 100,
        labels: BTreeMap::new(),
    }
}

/// A container named `name` created from image `image`, in `state`.
pub(crate) fn container(name: &str, image: &str, state: &str) -> ContainerInfo {
    ContainerInfo {
        id: format!("c-{name}"),
        name: name.into(),
        image_id: id(image),
        state: state.into(),
    }
}
