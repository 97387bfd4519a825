//! The ledger's export format (`imgguard ledger export` / `import`): JSON Lines, one event per
//! line, in log order. A stable contract, documented in the README: fields are only ever added,
//! and a change that old readers could misread raises `schema`.

use serde::{Deserialize, Serialize};

use crate::core::event::{ArchiveFacts, BuildFacts, Event, EventKind, Outcome, Reason, ReasonKind};

/// The line schema this imgguard writes and reads; a line with a larger `schema` is refused.
pub const SCHEMA: u32 = 1;

/// The longest line read (a line is a few hundred bytes; this bounds what a bad file costs).
pub const MAX_LINE: usize = 1 << 20;

/// One line, field by field, in the order written.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    schema: u32,
    id: String,
    engine: String,
    at: String,
    kind: String,
    tag: Option<String>,
    image_id: Option<String>,
    previous_id: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    reason_kind: Option<String>,
    git_commit: Option<String>,
    git_dirty: Option<bool>,
    dockerfile_sha256: Option<String>,
    #[serde(default)]
    build_arg_names: Vec<String>,
    archive_path: Option<String>,
    archive_sha256: Option<String>,
    archive_size: Option<i64>,
    /// Added after schema 1's first lines: absent in older exports.
    #[serde(default)]
    image_size: Option<i64>,
    imgguard_version: String,
}

/// The line for an event with unique ID `id` (no newline).
pub fn to_line(id: &str, e: &Event) -> String {
    let b = e.build.clone().unwrap_or_default();
    let a = e.archive.clone().unwrap_or_default();
    let line = Line {
        schema: SCHEMA,
        id: id.to_string(),
        engine: e.engine.clone(),
        at: crate::host::rfc3339(e.at_ms),
        kind: e.kind.as_str().to_string(),
        tag: e.tag.clone(),
        image_id: e.image_id.clone(),
        previous_id: e.previous_id.clone(),
        outcome: e.outcome.map(|o| o.as_str().to_string()),
        reason: e.reason.as_ref().map(|r| r.text.clone()),
        reason_kind: e.reason.as_ref().map(|r| r.kind.as_str().to_string()),
        git_commit: b.git_commit,
        git_dirty: b.git_dirty,
        dockerfile_sha256: b.dockerfile_sha256,
        build_arg_names: b.build_arg_names,
        archive_path: a.path,
        archive_sha256: a.sha256,
        archive_size: a.size,
        image_size: e.image_size,
        imgguard_version: e.imgguard_version.clone(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Reads one line back into its ID and event; the error says what is wrong, in one line.
pub fn parse_line(text: &str) -> Result<(String, Event), String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object ({e})"))?;
    // The schema first: a newer line is refused as such, whatever else it holds.
    match value.get("schema").and_then(serde_json::Value::as_u64) {
        None => return Err("no `schema` field: not a line of `imgguard ledger export`".into()),
        Some(v) if v > u64::from(SCHEMA) => {
            return Err(format!(
                "schema {v} is newer than this imgguard reads ({SCHEMA}); upgrade imgguard"
            ));
        }
        Some(_) => {}
    }
    let line: Line = serde_json::from_value(value).map_err(|e| format!("bad event ({e})"))?;
    if line.id.is_empty()
        || line.id.len() > 128
        || !line.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("bad id `{}` (letters, digits, - and _, at most 128)", line.id));
    }
    let kind: EventKind = line.kind.parse()?;
    let at_ms = parse_rfc3339_ms(&line.at)?;
    let mut e = Event::new(&line.engine, at_ms, kind);
    e.tag = line.tag;
    e.image_id = line.image_id;
    e.previous_id = line.previous_id;
    e.outcome = line.outcome.map(|o| o.parse::<Outcome>()).transpose()?;
    let reason_kind = line.reason_kind.map(|k| k.parse::<ReasonKind>()).transpose()?;
    e.reason =
        line.reason.map(|text| Reason { kind: reason_kind.unwrap_or(ReasonKind::Other), text });
    let build = BuildFacts {
        git_commit: line.git_commit,
        git_dirty: line.git_dirty,
        dockerfile_sha256: line.dockerfile_sha256,
        build_arg_names: line.build_arg_names,
    };
    e.build = (build != BuildFacts::default()).then_some(build);
    let archive = ArchiveFacts {
        path: line.archive_path,
        sha256: line.archive_sha256,
        size: line.archive_size,
    };
    e.archive = (archive != ArchiveFacts::default()).then_some(archive);
    e.image_size = line.image_size;
    e.imgguard_version = line.imgguard_version;
    Ok((line.id, e))
}

/// RFC 3339 (any offset) to milliseconds since the epoch, UTC.
fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("bad time `{text}` ({e})"))?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| format!("time `{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips() {
        let facts = BuildFacts {
            git_commit: Some("abc".into()),
            git_dirty: Some(false),
            dockerfile_sha256: None,
            build_arg_names: vec!["V".into()],
        };
        let mut e = Event::build("E", 1_700_000_000_123, "x:v1", "sha256:a", None, &facts);
        e.reason = Some(Reason::new(ReasonKind::Superseded, "why"));
        let line = to_line("0123abcd", &e);
        assert!(line.starts_with(
            r#"{"schema":1,"id":"0123abcd","engine":"E","at":"2023-11-14T22:13:20.123Z","kind":"build","tag":"x:v1","image_id":"sha256:a","previous_id":null,"#
        ), "{line}");
        let (id, back) = parse_line(&line).unwrap();
        assert_eq!(id, "0123abcd");
        assert_eq!(back, e);
        assert_eq!(to_line(&id, &back), line);
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse_line("nope").unwrap_err().starts_with("not a JSON object"));
        assert!(parse_line("{}").unwrap_err().starts_with("no `schema` field"));
        let newer = r#"{"schema":2,"id":"a","kind":"teleport"}"#;
        assert_eq!(
            parse_line(newer).unwrap_err(),
            "schema 2 is newer than this imgguard reads (1); upgrade imgguard"
        );
        let e = Event::new("E", 0, EventKind::Removed);
        let line = to_line("a", &e).replace("\"removed\"", "\"teleported\"");
        assert_eq!(parse_line(&line).unwrap_err(), "unknown EventKind `teleported`");
        let line = to_line("a b", &e);
        assert!(parse_line(&line).unwrap_err().starts_with("bad id `a b`"));
        let line = to_line("a", &e).replace("1970-01-01T00:00:00.000Z", "yesterday");
        assert!(parse_line(&line).unwrap_err().starts_with("bad time `yesterday`"));
    }
}
