//! Renders findings: human (with optional colour), JSON, SARIF 2.1.0 and GitHub workflow
//! annotations. Pure: the caller decides colour (terminal, NO_COLOR) and where text goes.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::rules::{RuleId, Severity, RULES};
use super::Finding;

/// A path as every format prints it: relative, `/`-separated.
fn slash_path(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// `path:line:col: error[IG001] message`, the source line with a caret, and the fix.
pub fn human(findings: &[Finding], color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    for f in findings {
        let sev_color = match f.severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Note => "1;36",
        };
        let _ = writeln!(
            out,
            "{}: {} {}",
            paint("1", &format!("{}:{}:{}", slash_path(&f.path), f.line, f.column)),
            paint(sev_color, &format!("{}[{}]", f.severity, f.rule)),
            f.message
        );
        let gutter = f.line.to_string().len();
        let _ = writeln!(out, "{:>gutter$} | {}", f.line, f.excerpt.trim_end());
        let caret_at: String = f
            .excerpt
            .chars()
            .take(f.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{:>gutter$} | {caret_at}{}", "", paint(sev_color, "^"));
        let _ = writeln!(out, "{:>gutter$} = {} {}", "", paint("1", "fix:"), f.fix);
        out.push('\n');
    }
    out
}

/// One summary line for stderr, e.g. `imgguard: 2 findings (1 error, 1 note) in 1 file`.
pub fn summary(findings: &[Finding], files_scanned: usize) -> String {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let files: std::collections::BTreeSet<_> = findings.iter().map(|f| &f.path).collect();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if findings.is_empty() {
        return format!("imgguard: no findings in {}", plural(files_scanned, "file"));
    }
    format!(
        "imgguard: {} ({}, {}, {}) in {} of {} scanned",
        plural(findings.len(), "finding"),
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        plural(count(Severity::Note), "note"),
        plural(files.len(), "file"),
        files_scanned
    )
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    severity: &'a str,
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    message: &'a str,
    fix: &'a str,
}

/// The JSON contract: an array of `{rule, severity, path, line, column, end_line, message, fix}`.
pub fn json(findings: &[Finding]) -> String {
    let items: Vec<JsonFinding<'_>> = findings
        .iter()
        .map(|f| JsonFinding {
            rule: f.rule.as_str(),
            severity: f.severity.as_str(),
            path: slash_path(&f.path),
            line: f.line,
            column: f.column,
            end_line: f.end_line,
            message: &f.message,
            fix: &f.fix,
        })
        .collect();
    // Serializing plain strings and numbers cannot fail.
    let mut s = serde_json::to_string_pretty(&items).expect("findings serialize");
    s.push('\n');
    s
}

/// GitHub workflow commands: `::error file=…,line=…,col=…,endLine=…,title=IG001::message`.
pub fn github(findings: &[Finding]) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for f in findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},endLine={},title={}::{}",
            prop(&slash_path(&f.path)),
            f.line,
            f.column,
            f.end_line,
            f.rule,
            data(&format!("{} (fix: {})", f.message, f.fix))
        );
    }
    out
}

/// The base every SARIF result URI is relative to.
pub const SRCROOT: &str = "%SRCROOT%";

#[derive(Serialize)]
struct SarifLog {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<SarifRun>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun {
    tool: SarifTool,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_uri_base_ids: Option<serde_json::Value>,
    column_kind: &'static str,
    results: Vec<SarifResult>,
}

#[derive(Serialize)]
struct SarifTool {
    driver: SarifDriver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDriver {
    name: &'static str,
    version: &'static str,
    information_uri: &'static str,
    rules: Vec<SarifRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRule {
    id: &'static str,
    name: &'static str,
    short_description: SarifText,
    full_description: SarifText,
    help: SarifText,
    default_configuration: SarifConfiguration,
}

#[derive(Serialize)]
struct SarifText {
    text: String,
}

#[derive(Serialize)]
struct SarifConfiguration {
    level: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: SarifText,
    locations: Vec<SarifLocation>,
    partial_fingerprints: serde_json::Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<SarifFix>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifFix {
    description: SarifText,
    artifact_changes: Vec<SarifChange>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifChange {
    artifact_location: SarifArtifact,
    replacements: Vec<SarifReplacement>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifReplacement {
    deleted_region: SarifDeleted,
    inserted_content: SarifText,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifDeleted {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: SarifPhysical,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    region: SarifRegion,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifArtifact {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    snippet: SarifText,
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// Percent-encodes what may not appear in a relative URI reference.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// SARIF 2.1.0 with every rule described, relative URIs against `%SRCROOT%`, and the root's
/// absolute `file://` URI (when known) as that base's original location.
pub fn sarif(findings: &[Finding], root_uri: Option<&str>) -> String {
    let rules = RULES
        .iter()
        .map(|r| SarifRule {
            id: r.id.as_str(),
            name: r.name,
            short_description: SarifText { text: r.summary.replace('`', "") },
            full_description: SarifText { text: format!("{}: {}", r.summary, r.why) },
            help: SarifText { text: format!("Fix: {}", r.fix) },
            default_configuration: SarifConfiguration { level: sarif_level(r.default_severity) },
        })
        .collect();
    let results = findings
        .iter()
        .map(|f| SarifResult {
            rule_id: f.rule.as_str(),
            rule_index: rule_index(f.rule),
            level: sarif_level(f.severity),
            message: SarifText { text: format!("{} (fix: {})", f.message, f.fix) },
            locations: vec![SarifLocation {
                physical_location: SarifPhysical {
                    artifact_location: SarifArtifact {
                        uri: uri_escape(&slash_path(&f.path)),
                        uri_base_id: SRCROOT,
                    },
                    region: SarifRegion {
                        start_line: f.line,
                        start_column: f.column,
                        end_line: f.end_line,
                        snippet: SarifText { text: f.excerpt.clone() },
                    },
                },
            }],
            partial_fingerprints: serde_json::json!({
                "imgguard/v1": format!("{}:{}:{}", f.rule, slash_path(&f.path), f.excerpt.trim()),
            }),
            fixes: sarif_fixes(f),
        })
        .collect();
    let log = SarifLog {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: vec![SarifRun {
            tool: SarifTool {
                driver: SarifDriver {
                    name: "imgguard",
                    version: env!("CARGO_PKG_VERSION"),
                    information_uri: "https://github.com/imgguard/imgguard",
                    rules,
                },
            },
            original_uri_base_ids: root_uri
                .map(|uri| serde_json::json!({ SRCROOT: { "uri": uri } })),
            column_kind: "unicodeCodePoints",
            results,
        }],
    };
    // Plain data: serialization cannot fail.
    let mut s = serde_json::to_string_pretty(&log).expect("SARIF serializes");
    s.push('\n');
    s
}

/// The finding's edits as one SARIF fix (none when it has no edits).
fn sarif_fixes(f: &Finding) -> Vec<SarifFix> {
    if f.edits.is_empty() {
        return Vec::new();
    }
    let replacements = f
        .edits
        .iter()
        .map(|e| SarifReplacement {
            deleted_region: SarifDeleted {
                start_line: e.start_line,
                start_column: e.start_column,
                end_line: e.end_line,
                end_column: e.end_column,
            },
            inserted_content: SarifText { text: e.replacement.clone() },
        })
        .collect();
    vec![SarifFix {
        description: SarifText { text: f.fix.clone() },
        artifact_changes: vec![SarifChange {
            artifact_location: SarifArtifact {
                uri: uri_escape(&slash_path(&f.path)),
                uri_base_id: SRCROOT,
            },
            replacements,
        }],
    }]
}

fn rule_index(rule: RuleId) -> usize {
    rule as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn finding() -> Finding {
        Finding {
            rule: RuleId::Ig001,
            severity: Severity::Error,
            path: PathBuf::from("./ci/a b.sh"),
            line: 3,
            column: 13,
            end_line: 4,
            message: "m, with: 100%".into(),
            fix: "f".into(),
            excerpt: "docker save x".into(),
            edits: Vec::new(),
        }
    }

    #[test]
    fn github_escapes() {
        assert_eq!(
            github(&[finding()]),
            "::error file=ci/a b.sh,line=3,col=13,endLine=4,title=IG001::m, with: 100%25 (fix: f)\n"
        );
    }

    #[test]
    fn json_has_exactly_the_contract_fields() {
        let v: serde_json::Value = serde_json::from_str(&json(&[finding()])).unwrap();
        let keys: Vec<&str> = v[0].as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = ["rule", "severity", "path", "line", "column", "end_line", "message", "fix"];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v[0]["path"], "ci/a b.sh");
    }

    #[test]
    fn sarif_uris_are_relative_and_escaped() {
        let v: serde_json::Value = serde_json::from_str(&sarif(&[finding()], None)).unwrap();
        let loc = &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "ci/a%20b.sh");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(loc["region"]["startLine"], 3);
    }

    #[test]
    fn human_has_location_source_and_fix() {
        let text = human(&[finding()], false);
        assert!(text.starts_with("ci/a b.sh:3:13: error[IG001] m, with: 100%\n"), "{text}");
        assert!(text.contains("3 | docker save x\n"), "{text}");
        assert!(text.contains("= fix: f"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(human(&[finding()], true).contains('\x1b'));
    }
}
