//! Image archives (`docker save` output): what their `manifest.json` says, whether a saved
//! archive holds what was asked for, and what the daemon's `load` messages mean. Pure: the bytes
//! are handed in by `commands/`, which owns every file and the daemon.
//!
//! A `docker save <ID>` archive carries `"RepoTags": null` and loads as `<none>:<none>`; upstream
//! calls that expected and will not change it (moby PR #40910), so imgguard checks names itself.

pub mod scan;

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

use crate::core::image::ImageId;
use crate::core::reference::Tag;

/// One image in an archive: its config ID and the names it will load with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The image ID (`sha256:` + the config's digest).
    pub id: ImageId,
    /// Its tags in familiar form; empty for an image saved by ID.
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
}

/// Why a `manifest.json` makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a docker image archive: manifest.json {0}")]
pub struct ManifestError(String);

/// Reads `manifest.json`: one entry per image, `Config` naming the config blob
/// (`<hex>.json` in the classic layout, `blobs/sha256/<hex>` in the OCI layout of Docker 25+).
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ArchiveImage>, ManifestError> {
    let raw: Vec<RawEntry> =
        serde_json::from_slice(bytes).map_err(|e| ManifestError(format!("is not valid: {e}")))?;
    if raw.is_empty() {
        return Err(ManifestError("lists no image".into()));
    }
    raw.into_iter()
        .map(|e| {
            let file = e.config.rsplit('/').next().unwrap_or(&e.config);
            let hex = file.strip_suffix(".json").unwrap_or(file);
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ManifestError(format!("names an unexpected config `{}`", e.config)));
            }
            let tags = e
                .repo_tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| Tag::parse(&t).map(|t| t.as_str().to_string()).unwrap_or(t))
                .collect();
            Ok(ArchiveImage { id: ImageId::new(format!("sha256:{hex}")), tags })
        })
        .collect()
}

#[derive(Deserialize)]
struct RawFiles {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

/// The first file `manifest.json` names (a config, then the layers) that is not among the
/// archive's `members`: the daemon would fail on it halfway through the load.
pub fn missing_member(
    manifest: &[u8],
    members: &std::collections::BTreeSet<String>,
) -> Option<String> {
    let raw: Vec<RawFiles> = serde_json::from_slice(manifest).ok()?;
    raw.into_iter().find_map(|e| {
        let clean = |p: &str| p.trim_start_matches("./").to_string();
        if !members.contains(&clean(&e.config)) {
            return Some(format!("names config `{}`, which is not in the archive", e.config));
        }
        e.layers
            .unwrap_or_default()
            .into_iter()
            .find(|l| !members.contains(&clean(l)))
            .map(|l| format!("names layer `{l}`, which is not in the archive"))
    })
}

/// What a save was asked for: each image, and the tags it must carry in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The image.
    pub id: ImageId,
    /// The tags it must carry (empty: saved by ID, knowingly).
    pub tags: Vec<String>,
}

/// A finished archive that does not hold what was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// An image asked for is not in the archive.
    MissingImage(ImageId),
    /// A tag asked for is not on its image in the archive.
    MissingTag { tag: String, id: ImageId },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::MissingImage(id) => write!(f, "{} is not in the archive", id.short()),
            Mismatch::MissingTag { tag, id } => {
                write!(f, "{tag} is not on {} in the archive", id.short())
            }
        }
    }
}

/// Checks a finished archive against what was asked for; every image and tag must be there.
pub fn check_saved(expected: &[Expected], archive: &[ArchiveImage]) -> Result<(), Mismatch> {
    for e in expected {
        let Some(img) = archive.iter().find(|a| a.id == e.id) else {
            return Err(Mismatch::MissingImage(e.id.clone()));
        };
        if let Some(tag) = e.tags.iter().find(|t| !img.tags.contains(t)) {
            return Err(Mismatch::MissingTag { tag: tag.clone(), id: e.id.clone() });
        }
    }
    Ok(())
}

/// The images of an archive that have no name (they load as `<none>:<none>`).
pub fn nameless(archive: &[ArchiveImage]) -> Vec<&ImageId> {
    archive.iter().filter(|a| a.tags.is_empty()).map(|a| &a.id).collect()
}

/// What the daemon said while loading, read from its message lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadMessages {
    /// `Loaded image: app:v1`.
    pub loaded_tags: Vec<String>,
    /// `Loaded image ID: sha256:…`.
    pub loaded_ids: Vec<String>,
    /// `The image app:v1 already exists, renaming the old one with ID sha256:… to empty string`:
    /// `(tag, old ID)`.
    pub renamed: Vec<(String, String)>,
}

/// Reads the daemon's load messages (informational: imgguard decides from inspecting the tags
/// before and after, which does not depend on the daemon's wording).
pub fn parse_load_messages<'a>(lines: impl IntoIterator<Item = &'a str>) -> LoadMessages {
    let mut m = LoadMessages::default();
    for line in lines {
        let line = line.trim();
        if let Some(id) = line.strip_prefix("Loaded image ID: ") {
            m.loaded_ids.push(id.to_string());
        } else if let Some(tag) = line.strip_prefix("Loaded image: ") {
            m.loaded_tags.push(tag.to_string());
        } else if let Some(rest) = line.strip_prefix("The image ") {
            if let Some((tag, rest)) =
                rest.split_once(" already exists, renaming the old one with ID ")
            {
                let id = rest.split_whitespace().next().unwrap_or_default();
                m.renamed.push((tag.to_string(), id.to_string()));
            }
        }
    }
    m
}

/// Every tag in an archive, once.
pub fn all_tags(archive: &[ArchiveImage]) -> Vec<String> {
    let set: BTreeSet<&String> = archive.iter().flat_map(|a| &a.tags).collect();
    set.into_iter().cloned().collect()
}

/// Whether a path asks for gzip output: the extension decides (`.gz`, `.tgz`).
pub fn wants_gzip(path: &str) -> bool {
    std::path::Path::new(path)
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz") || ext.eq_ignore_ascii_case("tgz"))
}

/// Whether the first bytes of a file are gzip's magic number.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::id;

    const A: &str = "aa416b5c47216b392755ba2b4ad08f5531f3aa86c103744e261e49ce7a354021";
    const B: &str = "e4159797272a190d20856475858bab23d11e64d6bdd9a57ca8a85ad3c3a17087";

    #[test]
    fn classic_and_oci_layouts() {
        let m = format!(
            r#"[{{"Config":"{A}.json","RepoTags":["alpine1:v1.0","docker.io/library/x:y"],"Layers":[]}},
                {{"Config":"blobs/sha256/{B}","RepoTags":null,"Layers":[]}}]"#
        );
        let imgs = parse_manifest(m.as_bytes()).unwrap();
        assert_eq!(
            imgs,
            [
                ArchiveImage { id: id(A), tags: vec!["alpine1:v1.0".into(), "x:y".into()] },
                ArchiveImage { id: id(B), tags: vec![] },
            ]
        );
        assert_eq!(nameless(&imgs), [&id(B)]);
        assert_eq!(all_tags(&imgs), ["alpine1:v1.0", "x:y"]);
    }

    #[test]
    fn bad_manifests() {
        assert!(parse_manifest(b"{}").is_err());
        assert!(parse_manifest(b"[]").unwrap_err().to_string().contains("lists no image"));
        let members: std::collections::BTreeSet<String> =
            ["a.json".to_string(), "l/layer.tar".to_string()].into();
        let m = |s: &str| missing_member(s.as_bytes(), &members);
        assert_eq!(m(r#"[{"Config":"a.json","Layers":["l/layer.tar"]}]"#), None);
        assert_eq!(m(r#"[{"Config":"./a.json","Layers":null}]"#), None);
        assert_eq!(
            m(r#"[{"Config":"b.json","Layers":[]}]"#).as_deref(),
            Some("names config `b.json`, which is not in the archive")
        );
        assert_eq!(
            m(r#"[{"Config":"a.json","Layers":["x/layer.tar"]}]"#).as_deref(),
            Some("names layer `x/layer.tar`, which is not in the archive")
        );
        let e = parse_manifest(br#"[{"Config":"x.json"}]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a docker image archive: manifest.json names an unexpected config `x.json`"
        );
    }

    #[test]
    fn saved_archive_must_hold_what_was_asked() {
        let archive = vec![
            ArchiveImage { id: id(A), tags: vec!["app:v1".into(), "app:v2".into()] },
            ArchiveImage { id: id(B), tags: vec![] },
        ];
        let ok = [
            Expected { id: id(A), tags: vec!["app:v1".into()] },
            Expected { id: id(B), tags: vec![] },
        ];
        assert_eq!(check_saved(&ok, &archive), Ok(()));
        let missing_tag = [Expected { id: id(A), tags: vec!["app:v3".into()] }];
        assert_eq!(
            check_saved(&missing_tag, &archive).unwrap_err().to_string(),
            "app:v3 is not on sha256:aa416b5c4721 in the archive"
        );
        let missing = [Expected { id: ImageId::new("sha256:ff"), tags: vec![] }];
        assert!(matches!(check_saved(&missing, &archive), Err(Mismatch::MissingImage(_))));
    }

    #[test]
    fn load_messages() {
        let m = parse_load_messages([
            "The image app:v1 already exists, renaming the old one with ID sha256:aa to empty string\n",
            "Loaded image: app:v1\n",
            "Loaded image ID: sha256:bb\n",
        ]);
        assert_eq!(m.renamed, [("app:v1".to_string(), "sha256:aa".to_string())]);
        assert_eq!(m.loaded_tags, ["app:v1"]);
        assert_eq!(m.loaded_ids, ["sha256:bb"]);
    }

    #[test]
    fn gzip_by_extension_and_by_magic() {
        assert!(wants_gzip("a.tar.gz") && wants_gzip("A.TGZ") && !wants_gzip("a.tar"));
        assert!(is_gzip(&[0x1f, 0x8b, 8]) && !is_gzip(b"ustar"));
    }
}
