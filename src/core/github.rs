//! What `imgguard build` tells GitHub Actions: the step outputs (`$GITHUB_OUTPUT`), the job
//! summary (`$GITHUB_STEP_SUMMARY`) and `::notice`/`::warning` annotations for kept images.
//!
//! Pure formatting: it is handed the result of a build and returns text. It reads no environment
//! and opens no file; `commands/build.rs` decides where the text goes. Every value is escaped for
//! the format it lands in, so no tag, reason or daemon message can add an output, break the
//! table or end an annotation early.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

pub use crate::core::build::TagChange;
use crate::core::image::ImageId;
use crate::core::policy::{Decision, Verdict};

/// A finished, successful build as GitHub is told about it.
#[derive(Debug, Clone, Copy)]
pub struct BuildResult<'a> {
    /// The image ID (`sha256:…` of the image config) docker built: never a registry digest.
    pub image_id: &'a ImageId,
    /// Each tag, in the order given.
    pub tags: &'a [TagChange],
    /// What became of every image the build superseded.
    pub decisions: &'a [Decision],
    /// False when the built image never reached the daemon (buildx without `--load`).
    pub in_daemon: bool,
}

/// The step outputs, in `$GITHUB_OUTPUT` syntax: `image-id`, `previous-image-ids` (a JSON object,
/// tag → the ID it pointed at before, `null` for a new tag), `removed-image-ids` and
/// `kept-image-ids` (JSON arrays).
pub fn outputs(result: &BuildResult<'_>) -> String {
    let previous = previous_ids(result);
    let (removed, kept) = fates(result.decisions);
    let mut out = String::new();
    out.push_str(&output("image-id", result.image_id.as_str()));
    out.push_str(&output("previous-image-ids", &json(&previous)));
    out.push_str(&output("removed-image-ids", &json(&ids(&removed))));
    out.push_str(&output("kept-image-ids", &json(&ids(&kept))));
    out
}

/// The same facts as the step outputs, as one JSON document (`imgguard build --report FILE`):
/// `image_id`, `in_daemon`, `previous_image_ids` (tag → ID or `null`), `removed_image_ids`,
/// `kept_image_ids`, `kept` (each with `image_id`, `reason` and `reason_kind`) and `tags` (each
/// with `tag`, `before`, `after`).
pub fn report(result: &BuildResult<'_>) -> serde_json::Value {
    let previous = previous_ids(result);
    let (removed, kept) = fates(result.decisions);
    let reasons: Vec<serde_json::Value> = result
        .decisions
        .iter()
        .filter_map(|d| match &d.verdict {
            Verdict::Keep(k) => Some(serde_json::json!({
                "image_id": d.candidate.image.as_str(),
                "reason": k.to_string(),
                "reason_kind": k.kind().as_str(),
            })),
            _ => None,
        })
        .collect();
    let tags: Vec<serde_json::Value> = result
        .tags
        .iter()
        .map(|t| {
            serde_json::json!({
                "tag": t.tag,
                "before": t.before.as_ref().map(ImageId::as_str),
                "after": t.after.as_ref().map(ImageId::as_str),
            })
        })
        .collect();
    serde_json::json!({
        "image_id": result.image_id.as_str(),
        "in_daemon": result.in_daemon,
        "previous_image_ids": previous,
        "removed_image_ids": ids(&removed),
        "kept_image_ids": ids(&kept),
        "kept": reasons,
        "tags": tags,
    })
}

/// The job summary: a heading and one table row per tag (previous → new, and what became of the
/// previous image), plus a row for an image that another build superseded while ours ran.
pub fn summary(result: &BuildResult<'_>) -> String {
    let new = result.image_id;
    let mut s = String::from("### imgguard build\n\n");
    if !result.in_daemon {
        let _ = writeln!(
            s,
            "Built {} but it is not in the daemon (buildx without `--load`, or push-only): \
             nothing removed.\n",
            code(new.as_str())
        );
    }
    s.push_str("| Tag | Previous → new | Previous image |\n| --- | --- | --- |\n");
    for t in result.tags {
        let (change, fate) = match &t.before {
            None => (format!("(new) → {}", code(new.short())), "–".to_string()),
            Some(b) if b == new => (format!("{} (unchanged)", code(b.short())), "–".to_string()),
            Some(b) => (
                format!("{} → {}", code(b.short()), code(new.short())),
                fate_cell(result.decisions, b),
            ),
        };
        let _ = writeln!(s, "| {} | {change} | {fate} |", code(&t.tag));
        if let Some(a) = t.after.as_ref().filter(|a| *a != new) {
            let _ = writeln!(
                s,
                "| {} | {} → {} (another build, meanwhile) | {} |",
                code(&t.tag),
                code(new.short()),
                code(a.short()),
                fate_cell(result.decisions, new)
            );
        }
    }
    s.push('\n');
    s
}

/// Workflow commands for the images kept: `::warning` when something still holds the image (a
/// container, another tag, the daemon's refusal), `::notice` when the rules chose to keep it
/// (`keep-previous`, a protect pattern). One line each.
pub fn annotations(decisions: &[Decision]) -> Vec<String> {
    decisions
        .iter()
        .filter_map(|d| {
            let Verdict::Keep(reason) = &d.verdict else { return None };
            let level = if reason.by_rule() { "notice" } else { "warning" };
            let tags: Vec<&str> = d.candidate.left_by.iter().map(|(t, _)| t.as_str()).collect();
            let message = format!(
                "kept {} (previously {}): {reason}",
                d.candidate.image.as_str(),
                tags.join(", ")
            );
            Some(format!(
                "::{level} title={}::{}",
                escape_property("imgguard kept an image"),
                escape_data(&message)
            ))
        })
        .collect()
}

/// One `$GITHUB_OUTPUT` entry. A value on one line is `name=value`; anything else uses the
/// heredoc form with a delimiter derived from the value's hash, checked not to occur in it, so
/// no value can end its own entry and start another.
pub fn output(name: &str, value: &str) -> String {
    if !value.contains(['\n', '\r']) {
        return format!("{name}={value}\n");
    }
    let digest = hex::encode(Sha256::digest(value.as_bytes()));
    let mut delimiter = format!("ghadelimiter_{digest}");
    while value.lines().any(|l| l == delimiter) {
        // Unreachable in practice (a value containing its own hash); stay correct anyway.
        delimiter.push('_');
    }
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Escapes an annotation's message (`%`, CR, LF), as the runner's toolkit does.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes an annotation's property value: the message escapes plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Each tag → the image it pointed at before the build (`None`: a new tag).
fn previous_ids<'a>(result: &BuildResult<'a>) -> BTreeMap<&'a str, Option<&'a str>> {
    result.tags.iter().map(|t| (t.tag.as_str(), t.before.as_ref().map(ImageId::as_str))).collect()
}

/// The removed and the kept images, each once, in decision order. An image that was already
/// gone (someone else removed it) is in neither.
fn fates(decisions: &[Decision]) -> (Vec<&ImageId>, Vec<&ImageId>) {
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for d in decisions {
        let list = match d.verdict {
            Verdict::Remove => &mut removed,
            Verdict::Keep(_) => &mut kept,
            Verdict::Gone => continue,
        };
        if !list.contains(&&d.candidate.image) {
            list.push(&d.candidate.image);
        }
    }
    (removed, kept)
}

fn ids<'a>(list: &[&'a ImageId]) -> Vec<&'a str> {
    list.iter().map(|i| i.as_str()).collect()
}

/// Compact JSON: always one line (serde_json escapes control characters inside strings).
fn json<T: serde::Serialize>(value: &T) -> String {
    // Maps with string keys and strings cannot fail to serialise.
    serde_json::to_string(value).expect("string maps and lists serialise")
}

fn fate_cell(decisions: &[Decision], id: &ImageId) -> String {
    match decisions.iter().find(|d| d.candidate.image == *id).map(|d| &d.verdict) {
        Some(Verdict::Remove) => "removed".into(),
        Some(Verdict::Gone) => "already gone".into(),
        Some(Verdict::Keep(reason)) => format!("kept: {}", cell(&reason.to_string())),
        None => "–".into(),
    }
}

/// Text for a table cell: no line breaks, no column breaks, no HTML.
fn cell(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

/// A code span that holds any text: the fence is longer than the longest backtick run inside.
fn code(s: &str) -> String {
    let s = cell(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::Candidate;
    use crate::core::policy::KeepReason;

    const OLD: &str = "sha256:aa416b5c47215b8d8b1c1c1d3e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f";
    const NEW: &str = "sha256:e4159797272a5b8d8b1c1c1d3e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f";
    const OTHER: &str = "sha256:0c0c0c0c0c0c5b8d8b1c1c1d3e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f";

    fn id(s: &str) -> ImageId {
        ImageId::new(s)
    }

    fn change(tag: &str, before: Option<&str>, after: &str) -> TagChange {
        TagChange { tag: tag.into(), before: before.map(id), after: Some(id(after)) }
    }

    fn decision(image: &str, tag: &str, verdict: Verdict) -> Decision {
        Decision {
            candidate: Candidate { image: id(image), left_by: vec![(tag.into(), id(NEW))] },
            verdict,
            size: None,
        }
    }

    /// Parses `$GITHUB_OUTPUT` text as the runner does (both forms), failing on anything else.
    fn parse_outputs(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if let Some((name, delim)) = line.split_once("<<") {
                let mut value = Vec::new();
                loop {
                    let l = lines.next().expect("unterminated heredoc");
                    if l == delim {
                        break;
                    }
                    value.push(l);
                }
                out.push((name.to_string(), value.join("\n")));
            } else {
                let (name, value) = line.split_once('=').expect("name=value");
                out.push((name.to_string(), value.to_string()));
            }
        }
        out
    }

    #[test]
    fn outputs_of_a_rebuild_that_removed_the_old_image() {
        let tags = [change("app:v1", Some(OLD), NEW), change("app:new", None, NEW)];
        let decisions = [decision(OLD, "app:v1", Verdict::Remove)];
        let r =
            BuildResult { image_id: &id(NEW), tags: &tags, decisions: &decisions, in_daemon: true };
        assert_eq!(
            outputs(&r),
            format!(
                "image-id={NEW}\n\
                 previous-image-ids={{\"app:new\":null,\"app:v1\":\"{OLD}\"}}\n\
                 removed-image-ids=[\"{OLD}\"]\n\
                 kept-image-ids=[]\n"
            )
        );
    }

    #[test]
    fn outputs_list_kept_images_once_and_skip_gone_ones() {
        let tags = [change("a:1", Some(OLD), NEW), change("b:1", Some(OTHER), NEW)];
        let kept = Verdict::Keep(KeepReason::InUse(vec![("web-1".into(), "running".into())]));
        let decisions = [
            decision(OLD, "a:1", kept.clone()),
            decision(OLD, "a:1", kept),
            decision(OTHER, "b:1", Verdict::Gone),
        ];
        let r =
            BuildResult { image_id: &id(NEW), tags: &tags, decisions: &decisions, in_daemon: true };
        let parsed = parse_outputs(&outputs(&r));
        assert_eq!(parsed[2], ("removed-image-ids".into(), "[]".into()));
        assert_eq!(parsed[3], ("kept-image-ids".into(), format!("[\"{OLD}\"]")));
    }

    #[test]
    fn a_multi_line_value_uses_a_delimiter_it_does_not_contain() {
        let evil = "x\nimage-id=sha256:evil\nghadelimiter_\n";
        let text = output("v", evil);
        assert!(text.starts_with("v<<ghadelimiter_"), "{text}");
        let parsed = parse_outputs(&text);
        assert_eq!(parsed, [("v".to_string(), evil.to_string())]);
    }

    #[test]
    fn json_values_stay_on_one_line_whatever_the_tag() {
        // Tags are validated references and cannot hold a newline; the JSON is safe even if
        // one did, because serde_json escapes control characters.
        let tags = [change("a\nimage-id=evil", Some(OLD), NEW)];
        let r = BuildResult { image_id: &id(NEW), tags: &tags, decisions: &[], in_daemon: true };
        let parsed = parse_outputs(&outputs(&r));
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed.iter().filter(|(n, _)| n == "image-id").count(), 1);
        let map: serde_json::Value = serde_json::from_str(&parsed[1].1).unwrap();
        assert_eq!(map["a\nimage-id=evil"], OLD);
    }

    #[test]
    fn summary_has_one_row_per_tag_with_the_fate_and_why() {
        let tags = [
            change("app:v1", Some(OLD), NEW),
            change("app:v2", Some(OTHER), NEW),
            change("app:new", None, NEW),
            change("app:same", Some(NEW), NEW),
        ];
        let decisions = [
            decision(OLD, "app:v1", Verdict::Remove),
            decision(
                OTHER,
                "app:v2",
                Verdict::Keep(KeepReason::InUse(vec![("web|1".into(), "exited".into())])),
            ),
        ];
        let r =
            BuildResult { image_id: &id(NEW), tags: &tags, decisions: &decisions, in_daemon: true };
        assert_eq!(
            summary(&r),
            "### imgguard build\n\n\
             | Tag | Previous → new | Previous image |\n\
             | --- | --- | --- |\n\
             | `app:v1` | `sha256:aa416b5c4721` → `sha256:e4159797272a` | removed |\n\
             | `app:v2` | `sha256:0c0c0c0c0c0c` → `sha256:e4159797272a` | kept: used by container web\\|1 (exited) |\n\
             | `app:new` | (new) → `sha256:e4159797272a` | – |\n\
             | `app:same` | `sha256:e4159797272a` (unchanged) | – |\n\n"
        );
    }

    #[test]
    fn summary_tells_of_a_tag_moved_on_by_another_build() {
        let tags = [change("app:v1", Some(OLD), OTHER)];
        let decisions =
            [decision(OLD, "app:v1", Verdict::Remove), decision(NEW, "app:v1", Verdict::Remove)];
        let r =
            BuildResult { image_id: &id(NEW), tags: &tags, decisions: &decisions, in_daemon: true };
        let s = summary(&r);
        assert!(
            s.contains(
                "| `app:v1` | `sha256:e4159797272a` → `sha256:0c0c0c0c0c0c` (another build, \
                 meanwhile) | removed |"
            ),
            "{s}"
        );
    }

    #[test]
    fn summary_says_when_the_image_is_not_in_the_daemon() {
        let tags = [change("app:v1", None, NEW)];
        let r = BuildResult { image_id: &id(NEW), tags: &tags, decisions: &[], in_daemon: false };
        assert!(summary(&r).contains("is not in the daemon"));
    }

    #[test]
    fn code_spans_and_cells_cannot_break_the_table() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(cell("a|b\nc<script>"), "a\\|b c&lt;script&gt;");
    }

    #[test]
    fn kept_images_are_warnings_or_notices_on_one_line() {
        let decisions = [
            decision(
                OLD,
                "app:v1",
                Verdict::Keep(KeepReason::Daemon("conflict:\nunable to delete 100%".into())),
            ),
            decision(OTHER, "app:v2", Verdict::Keep(KeepReason::KeepPrevious)),
            decision(NEW, "app:v3", Verdict::Remove),
        ];
        let a = annotations(&decisions);
        assert_eq!(
            a,
            [
                format!(
                    "::warning title=imgguard kept an image::kept {OLD} (previously app:v1): the \
                     daemon refused: conflict:%0Aunable to delete 100%25"
                ),
                format!(
                    "::notice title=imgguard kept an image::kept {OTHER} (previously app:v2): \
                     removal turned off (keep-previous)"
                ),
            ]
        );
        assert!(a.iter().all(|l| !l.contains('\n')));
    }

    #[test]
    fn property_escapes_colons_and_commas() {
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn the_report_carries_the_outputs_facts() {
        let tags = [change("app:v1", Some(OLD), NEW), change("app:new", None, NEW)];
        let kept = Verdict::Keep(KeepReason::InUse(vec![("web-1".into(), "running".into())]));
        let decisions = [decision(OLD, "app:v1", kept)];
        let result =
            BuildResult { image_id: &id(NEW), tags: &tags, decisions: &decisions, in_daemon: true };
        let r = report(&result);
        assert_eq!(r["image_id"], NEW);
        assert_eq!(r["previous_image_ids"]["app:v1"], OLD);
        assert!(r["previous_image_ids"]["app:new"].is_null());
        assert_eq!(r["kept_image_ids"], serde_json::json!([OLD]));
        assert_eq!(r["removed_image_ids"], serde_json::json!([]));
        assert_eq!(r["kept"][0]["reason_kind"], "in-use");
        assert_eq!(r["kept"][0]["reason"], "used by container web-1 (running)");
        assert_eq!(r["tags"][1]["before"], serde_json::Value::Null);
    }
}
