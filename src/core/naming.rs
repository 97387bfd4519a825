//! Which `save` operands would write an archive without a name, and the command that would not.
//! Pure: the daemon's and the ledger's facts about each operand are gathered by
//! `commands/save.rs` and handed in.
//!
//! `docker save <ID>` (full or short hex, `sha256:…`) and `docker save name@sha256:…` write
//! `"RepoTags": null`; `docker load` of such an archive gives `<none>:<none>` (moby PR #40910).

use std::collections::BTreeMap;

use crate::core::archive::Expected;
use crate::core::event::{ArchiveFacts, Event, EventKind};
use crate::core::image::ImageId;
use crate::core::reference::{Reference, ReferenceError, Tag};

/// How a `save` operand names its image, before asking the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// `name:tag`: saved under that tag.
    Tagged(Tag),
    /// A bare name: every tag of that repository, as docker does, or (when no repository has
    /// that name and it is hex) a short image ID.
    NameOnly(String),
    /// A full image ID.
    Id(String),
    /// `name@sha256:…`: the archive carries no tag for it.
    Digest(String),
}

/// Classifies an operand as docker's `ParseIDOrReference` would.
pub fn classify(input: &str) -> Result<Operand, ReferenceError> {
    Ok(match Reference::parse(input)? {
        Reference::Id(id) => Operand::Id(id),
        Reference::Named { digest: Some(_), .. } => Operand::Digest(input.to_string()),
        Reference::Named { name, tag: Some(tag), digest: None } => {
            Operand::Tagged(Tag::from_normalised(format!("{name}:{tag}")))
        }
        Reference::Named { name, tag: None, digest: None } => Operand::NameOnly(name),
    })
}

/// Whether a bare name could also be a short image ID.
pub fn could_be_short_id(name: &str) -> bool {
    !name.is_empty() && name.len() < 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the daemon and the ledger say about one operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It names its image by tag (one tag, or every tag of a repository).
    Named(Vec<(String, ImageId)>),
    /// It names its image only by ID or digest.
    ByIdOnly {
        /// The image.
        id: ImageId,
        /// The tags that point at it now (daemon).
        tags_now: Vec<String>,
        /// The tags that pointed at it (ledger) and no longer do, with where each points now.
        tags_before: Vec<(String, Option<ImageId>)>,
    },
}

/// One operand, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// As the user wrote it.
    pub operand: String,
    /// What it stands for.
    pub resolution: Resolution,
}

/// What a save will do, or why it will not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavePlan {
    /// Each image and the tags it must carry in the archive.
    pub expected: Vec<Expected>,
    /// The images saved without a name (allowed by `--allow-id`).
    pub nameless: Vec<ImageId>,
    /// Operands refused (by index into the resolved list). Empty when the save may go ahead.
    pub refused: Vec<usize>,
}

/// Decides: without `allow_id` every by-ID operand is refused; with it, saved without a name.
pub fn plan_save(resolved: &[Resolved], allow_id: bool) -> SavePlan {
    let mut by_id: BTreeMap<ImageId, Vec<String>> = BTreeMap::new();
    let mut plan = SavePlan::default();
    for (i, r) in resolved.iter().enumerate() {
        match &r.resolution {
            Resolution::Named(tags) => {
                for (tag, id) in tags {
                    let e = by_id.entry(id.clone()).or_default();
                    if !e.contains(tag) {
                        e.push(tag.clone());
                    }
                }
            }
            Resolution::ByIdOnly { id, .. } if allow_id => {
                by_id.entry(id.clone()).or_default();
                if !plan.nameless.contains(id) {
                    plan.nameless.push(id.clone());
                }
            }
            Resolution::ByIdOnly { .. } => plan.refused.push(i),
        }
    }
    // An image also saved by one of its tags is not nameless in the archive.
    plan.nameless.retain(|id| by_id.get(id).is_none_or(Vec::is_empty));
    plan.expected = by_id.into_iter().map(|(id, tags)| Expected { id, tags }).collect();
    plan
}

/// The message for a refused save: why, per refused operand, and the fix as a ready command
/// where one exists. One string per line.
pub fn refusal_lines(resolved: &[Resolved], plan: &SavePlan, output: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    for &i in &plan.refused {
        let r = &resolved[i];
        let Resolution::ByIdOnly { id, tags_now, tags_before } = &r.resolution else { continue };
        let what = if r.operand.contains('@') { "by digest" } else { "by ID" };
        lines.push(format!(
            "refusing to save `{}` {what}: the archive would carry no name (\"RepoTags\": null) \
             and `docker load` would give <none>:<none> ({})",
            r.operand,
            id.short()
        ));
        if !tags_now.is_empty() {
            lines.push(format!("  tagged now: {}", tags_now.join(", ")));
        }
        if !tags_before.is_empty() {
            let before: Vec<String> = tags_before
                .iter()
                .map(|(t, now)| match now {
                    Some(other) => format!("{t} (now on {})", other.short()),
                    None => format!("{t} (now untagged)"),
                })
                .collect();
            lines.push(format!("  tagged before (ledger): {}", before.join(", ")));
        }
        if tags_now.is_empty() && tags_before.is_empty() {
            lines.push("  no tag points at it now and the ledger knows none".into());
        }
    }
    match suggest(resolved, output) {
        Some(cmd) => {
            lines.push("save it by name instead:".into());
            lines.push(format!("  {cmd}"));
        }
        None => {
            lines.push("tag it first (`docker tag ID NAME:TAG`) and save it by that name".into());
        }
    }
    lines.push("or pass --allow-id to save it anyway, knowing the archive has no name".into());
    lines
}

/// The save command that keeps every name: each by-ID operand replaced by the tags on its image
/// now, or by a tag the ledger knows that is free now (tagged first). `None` when an operand has
/// neither.
pub fn suggest(resolved: &[Resolved], output: Option<&str>) -> Option<String> {
    let mut tag_first: Vec<String> = Vec::new();
    let mut operands: Vec<String> = Vec::new();
    for r in resolved {
        match &r.resolution {
            Resolution::Named(_) => operands.push(r.operand.clone()),
            Resolution::ByIdOnly { tags_now, .. } if !tags_now.is_empty() => {
                operands.extend(tags_now.iter().cloned());
            }
            Resolution::ByIdOnly { id, tags_before, .. } => {
                let free: Vec<&String> =
                    tags_before.iter().filter(|(_, now)| now.is_none()).map(|(t, _)| t).collect();
                let first = free.first()?;
                tag_first.push(format!("docker tag {} {}", id.as_str(), quote(first)));
                operands.push((*first).clone());
            }
        }
    }
    operands.dedup();
    let mut cmd = String::from("imgguard save");
    if let Some(o) = output {
        cmd.push_str(" -o ");
        cmd.push_str(&quote(o));
    }
    for op in &operands {
        cmd.push(' ');
        cmd.push_str(&quote(op));
    }
    if output.is_none() {
        cmd.push_str(" > ARCHIVE.tar");
    }
    tag_first.push(cmd);
    Some(tag_first.join(" && "))
}

/// The tags a save saw on each image: those it saved, and for an image saved by ID (allowed)
/// the tags it has in the daemon, so that a later nameless load can name them
/// (`load --restore-tags`) even when plain docker tagged the image.
pub fn seen_tags(resolved: &[Resolved], plan: &SavePlan) -> Vec<(String, ImageId)> {
    let mut seen: Vec<(String, ImageId)> = Vec::new();
    for e in &plan.expected {
        seen.extend(e.tags.iter().map(|t| (t.clone(), e.id.clone())));
    }
    for r in resolved {
        if let Resolution::ByIdOnly { id, tags_now, .. } = &r.resolution {
            if plan.nameless.contains(id) {
                seen.extend(tags_now.iter().map(|t| (t.clone(), id.clone())));
            }
        }
    }
    seen.dedup();
    seen
}

/// The ledger events of a finished save: one per tag saved, one per image saved without a name.
pub fn save_events(
    engine: &str,
    now_ms: i64,
    plan: &SavePlan,
    archive: &ArchiveFacts,
) -> Vec<Event> {
    let mut events = Vec::new();
    for e in &plan.expected {
        let tags: Vec<Option<&str>> = if e.tags.is_empty() {
            vec![None]
        } else {
            e.tags.iter().map(|t| Some(t.as_str())).collect()
        };
        for tag in tags {
            events.push(Event::archive(
                engine,
                now_ms,
                EventKind::Save,
                tag,
                e.id.as_str(),
                None,
                archive,
            ));
        }
    }
    events
}

/// What a save put in the archive, for people: `app:v1, app:latest (sha256:…)`, `sha256:… (no
/// name)`.
pub fn saved_summary(plan: &SavePlan) -> String {
    let what: Vec<String> = plan
        .expected
        .iter()
        .map(|e| {
            if e.tags.is_empty() {
                format!("{} (no name)", e.id.short())
            } else {
                format!("{} ({})", e.tags.join(", "), e.id.short())
            }
        })
        .collect();
    what.join(", ")
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:@%+=,-".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e4159797272a190d20856475858bab23d11e64d6bdd9a57ca8a85ad3c3a17087";

    fn id() -> ImageId {
        ImageId::new(format!("sha256:{HEX}"))
    }

    fn by_id(op: &str, now: &[&str], before: &[(&str, Option<&str>)]) -> Resolved {
        Resolved {
            operand: op.into(),
            resolution: Resolution::ByIdOnly {
                id: id(),
                tags_now: now.iter().map(|t| (*t).to_string()).collect(),
                tags_before: before
                    .iter()
                    .map(|(t, n)| ((*t).to_string(), n.map(ImageId::new)))
                    .collect(),
            },
        }
    }

    fn named(op: &str, tags: &[&str], img: &str) -> Resolved {
        Resolved {
            operand: op.into(),
            resolution: Resolution::Named(
                tags.iter().map(|t| ((*t).to_string(), ImageId::new(img))).collect(),
            ),
        }
    }

    #[test]
    fn classifies_like_docker() {
        assert_eq!(classify(HEX).unwrap(), Operand::Id(format!("sha256:{HEX}")));
        assert_eq!(
            classify(&format!("sha256:{HEX}")).unwrap(),
            Operand::Id(format!("sha256:{HEX}"))
        );
        assert_eq!(classify("e4159797272a").unwrap(), Operand::NameOnly("e4159797272a".into()));
        assert!(could_be_short_id("e4159797272a") && !could_be_short_id("app"));
        assert_eq!(classify("app").unwrap(), Operand::NameOnly("app".into()));
        assert_eq!(
            classify("docker.io/library/app:v1").unwrap(),
            Operand::Tagged(Tag::from_normalised("app:v1"))
        );
        let d = format!("app@sha256:{HEX}");
        assert_eq!(classify(&d).unwrap(), Operand::Digest(d.clone()));
        assert!(classify("App").is_err());
    }

    #[test]
    fn a_save_by_id_is_refused_with_the_ready_command() {
        let r = [by_id("e4159797272a", &["alpine1:v1.0"], &[])];
        let plan = plan_save(&r, false);
        assert_eq!(plan.refused, [0]);
        let lines = refusal_lines(&r, &plan, Some("app.tar"));
        assert!(lines[0].starts_with("refusing to save `e4159797272a` by ID: the archive would"));
        assert!(lines[0].contains("<none>:<none>"));
        assert_eq!(lines[1], "  tagged now: alpine1:v1.0");
        assert_eq!(lines[2], "save it by name instead:");
        assert_eq!(lines[3], "  imgguard save -o app.tar alpine1:v1.0");
    }

    #[test]
    fn allow_id_saves_nameless() {
        let r = [by_id("e4159797272a", &["alpine1:v1.0"], &[])];
        let plan = plan_save(&r, true);
        assert!(plan.refused.is_empty());
        assert_eq!(plan.nameless, [id()]);
        assert_eq!(plan.expected, [Expected { id: id(), tags: vec![] }]);
    }

    #[test]
    fn by_id_and_by_tag_of_the_same_image_is_not_nameless() {
        let r = [by_id(HEX, &[], &[]), named("app:v1", &["app:v1"], &format!("sha256:{HEX}"))];
        let plan = plan_save(&r, true);
        assert!(plan.nameless.is_empty());
        assert_eq!(plan.expected, [Expected { id: id(), tags: vec!["app:v1".into()] }]);
    }

    #[test]
    fn ledger_tags_suggest_tagging_first_when_free() {
        let r = [
            named("web:v2", &["web:v2"], "sha256:1"),
            by_id(HEX, &[], &[("app:v1", None), ("app:v0", Some("sha256:ffffffffffffffff"))]),
        ];
        let plan = plan_save(&r, false);
        assert_eq!(plan.refused, [1]);
        let lines = refusal_lines(&r, &plan, None);
        assert_eq!(
            lines[1],
            "  tagged before (ledger): app:v1 (now untagged), app:v0 (now on sha256:ffffffffffff)"
        );
        assert_eq!(
            lines[3],
            format!(
                "  docker tag sha256:{HEX} app:v1 && imgguard save web:v2 app:v1 > ARCHIVE.tar"
            )
        );
    }

    #[test]
    fn no_name_anywhere_means_no_ready_command() {
        let r = [by_id(HEX, &[], &[("app:v0", Some("sha256:ff"))])];
        assert_eq!(suggest(&r, Some("a.tar")), None);
        let lines = refusal_lines(&r, &plan_save(&r, false), Some("a.tar"));
        assert!(lines.iter().any(|l| l.starts_with("tag it first")), "{lines:?}");
    }

    #[test]
    fn repository_save_lists_every_tag() {
        let r = [named("app", &["app:v1", "app:v2"], "sha256:1")];
        let plan = plan_save(&r, false);
        assert_eq!(plan.expected[0].tags, ["app:v1", "app:v2"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("app:v1"), "app:v1");
        assert_eq!(quote("my file.tar"), "'my file.tar'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
