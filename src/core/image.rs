//! The daemon's facts in imgguard's own words: image IDs, images, containers, the engine's
//! identity and what a removal did. Plain data, no I/O; the engine adapter fills them in.

use std::fmt;

/// An image ID, always in the full `sha256:<64 hex>` form the daemon reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageId(String);

impl ImageId {
    /// Wraps an ID as the daemon or the ledger reports it. A bare 64-hex ID (Podman's build
    /// writes its `--iidfile` so) gets the `sha256:` prefix, so one image has one spelling.
    pub fn new(id: impl Into<String>) -> ImageId {
        let id = id.into();
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return ImageId(format!("sha256:{id}"));
        }
        ImageId(id)
    }

    /// The full ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256:` and the first 12 hex characters, as people read IDs.
    pub fn short(&self) -> &str {
        let end = self.0.find(':').map_or(0, |i| i + 1) + 12;
        self.0.get(..end).unwrap_or(&self.0)
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the daemon says about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image ID.
    pub id: ImageId,
    /// Its tags in familiar form (`app:v1`), empty for a `<none>` image.
    pub repo_tags: Vec<String>,
    /// Creation time as the daemon reports it (RFC 3339).
    pub created: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One image as the image list shows it (one `list_images(all=true)` call lists them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedImage {
    /// The image ID.
    pub id: ImageId,
    /// The image it was built on, when the daemon records one (the legacy builder does).
    pub parent: Option<ImageId>,
    /// Its tags, empty for a `<none>` image.
    pub repo_tags: Vec<String>,
    /// Creation time, seconds since the epoch.
    pub created_s: i64,
    /// Size in bytes.
    pub size: i64,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One container, running or not, with the image it was created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Container ID.
    pub id: String,
    /// Its name without the leading `/`.
    pub name: String,
    /// The image ID it was created from.
    pub image_id: ImageId,
    /// `running`, `exited`, `created`, …
    pub state: String,
}

/// Who the daemon is: image IDs only mean something per daemon, so every ledger event carries
/// the engine's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineIdentity {
    /// `docker info` ID (or, where a daemon reports none, the endpoint).
    pub id: String,
    /// The daemon's host name.
    pub name: String,
    /// The endpoint it was reached at (`unix:///var/run/docker.sock`, `tcp://…`).
    pub endpoint: String,
}

/// What a removal request ended with, for an image ID or a tag. Conflicts are answers, not
/// errors: the daemon refused to remove an image that is still needed, which is exactly what
/// imgguard wants to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Done: the tags taken off and the image IDs deleted.
    Removed { untagged: Vec<String>, deleted: Vec<String> },
    /// The daemon refused (409): its own words.
    Conflict(String),
    /// Someone else removed it already.
    Gone,
}

#[cfg(test)]
mod tests {
    use super::ImageId;

    #[test]
    fn a_bare_id_gets_its_algorithm() {
        let hex = "5c1159e8554e6e69ebff0894992269cb6b879c5c6746ad7c4a6db6f971ca5fcc";
        assert_eq!(ImageId::new(hex).as_str(), format!("sha256:{hex}"));
        assert_eq!(ImageId::new(format!("sha256:{hex}")).as_str(), format!("sha256:{hex}"));
        // Anything else is kept as given (a short ID, a reference).
        assert_eq!(ImageId::new("5c1159e8554e").as_str(), "5c1159e8554e");
    }
}
