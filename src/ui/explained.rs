//! How dangling images are shown, by `explain` and `prune` alike: the JSON contract of one image
//! and the human table.

use std::io::Write;

use serde::Serialize;

use crate::core::dangling::{Explained, PruneDecision};
use crate::host::rfc3339;
use crate::ui::size_i64;

/// The JSON contract of one explained image.
#[derive(Serialize)]
pub(crate) struct JsonImage<'a> {
    pub(crate) image_id: &'a str,
    pub(crate) size: i64,
    pub(crate) created: String,
    pub(crate) cause: &'static str,
    pub(crate) detail: String,
    pub(crate) former_tags: &'a [String],
    pub(crate) containers: Vec<JsonContainer<'a>>,
    pub(crate) has_children: bool,
    pub(crate) removable: bool,
    pub(crate) reason: Option<String>,
}

/// A container that holds an image.
#[derive(Serialize)]
pub(crate) struct JsonContainer<'a> {
    id: &'a str,
    name: &'a str,
    state: &'a str,
}

/// One decided image as JSON: `removable`/`reason` say what the decision is.
pub(crate) fn json_image(d: &PruneDecision) -> JsonImage<'_> {
    let e: &Explained = &d.explained;
    let keep = d.keep();
    JsonImage {
        image_id: e.image.id.as_str(),
        size: e.image.size,
        created: rfc3339(e.image.created_s.saturating_mul(1000)),
        cause: e.cause.name(),
        detail: e.cause.to_string(),
        former_tags: &e.former_tags,
        containers: e
            .containers
            .iter()
            .map(|c| JsonContainer { id: &c.id, name: &c.name, state: &c.state })
            .collect(),
        has_children: e.has_children,
        removable: keep.is_none(),
        reason: keep.map(ToString::to_string),
    }
}

/// The table of `explain`: one image per two lines, with what holds it.
pub(crate) fn write_table(out: &mut impl Write, plan: &[PruneDecision]) -> std::io::Result<()> {
    if plan.is_empty() {
        return writeln!(out, "no dangling images");
    }
    writeln!(
        out,
        "{:<19}  {:>10}  {:<16}  {:<15}  {:<24}  HELD BY / WHY",
        "IMAGE ID", "SIZE", "CREATED", "CAUSE", "FORMER TAGS"
    )?;
    for d in plan {
        let e = &d.explained;
        let created = rfc3339(e.image.created_s.saturating_mul(1000));
        let held = match d.keep() {
            None => "nothing: removable".to_string(),
            Some(k) => k.to_string(),
        };
        let tags = if e.former_tags.is_empty() { "-".to_string() } else { e.former_tags.join(",") };
        writeln!(
            out,
            "{:<19}  {:>10}  {:<16}  {:<15}  {:<24}  {held}",
            e.image.id.short(),
            size_i64(e.image.size),
            created.get(..16).unwrap_or(&created).replace('T', " "),
            e.cause.name(),
            tags
        )?;
        writeln!(out, "{:<19}  {}", "", e.cause)?;
    }
    Ok(())
}
