//! GitHub workflow `run:` values and GitLab CI `script` / `before_script` / `after_script`
//! entries, cut out of the YAML with their exact source positions. Pure.
//!
//! YAML crate choice: **saphyr-parser**, the maintained YAML 1.2 successor of yaml-rust (same
//! authors as yaml-rust2, which it supersedes), because its event stream carries a span (line,
//! column, character index) for every scalar. serde_yaml/serde_norway have no positions at all;
//! marked-yaml only marks node starts and builds a whole tree. From a scalar's span this module
//! re-reads the ORIGINAL lines (block scalars, folded plain scalars, quoted scalars) and builds a
//! [`Snippet`] whose bytes map back to the file, so a finding on the third line of a `run: |`
//! block is reported on that line and column. Anchors are followed: `script: *setup` scans the
//! anchored entries (reported where they are written).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::replace_templates;
use super::snippet::{LineIndex, Snippet};

/// The `run:` scalars of a GitHub workflow or composite action, `${{ … }}` made unknown words.
pub(super) fn github_runs(text: &str) -> Vec<Snippet> {
    scripts(text, &["run"])
        .into_iter()
        .map(|s| replace_templates(&s, "${{", "}}", "${__expr}"))
        .collect()
}

/// The `script`, `before_script` and `after_script` entries of a GitLab CI file.
pub(super) fn gitlab_scripts(text: &str) -> Vec<Snippet> {
    scripts(text, &["script", "before_script", "after_script"])
}

/// The `cmds:` entries of a Taskfile (strings, or `cmd:` of a map), `{{ … }}` made unknown.
pub(super) fn taskfile_cmds(text: &str) -> Vec<Snippet> {
    scripts(text, &["cmds", "cmd"])
        .into_iter()
        .map(|s| replace_templates(&s, "{{", "}}", "${__task}"))
        .collect()
}

/// The `run:` steps of a CircleCI config (a string, or `command:` of a map), `<< … >>`
/// parameters made unknown.
pub(super) fn circleci_runs(text: &str) -> Vec<Snippet> {
    scripts(text, &["run", "command"])
        .into_iter()
        .map(|s| replace_templates(&s, "<<", ">>", "${__circle}"))
        .collect()
}

/// Azure Pipelines `script:` and `bash:` steps (`${{ … }}` made unknown; `$(var)` macros are
/// left to the shell, where they read as a command's output, never as image IDs), and each
/// `Docker@N` task with `command: build` and a `repository`, as the `docker build -t` it runs
/// (reported at its `command:` value).
pub(super) fn azure_scripts(text: &str) -> Vec<Snippet> {
    let mut out: Vec<Snippet> = scripts(text, &["script", "bash"])
        .into_iter()
        .map(|s| replace_templates(&s, "${{", "}}", "${__expr}"))
        .collect();
    out.extend(docker_tasks(text));
    out
}

/// Buildkite `command:` / `commands:` of each step.
pub(super) fn buildkite_commands(text: &str) -> Vec<Snippet> {
    scripts(text, &["command", "commands"])
}

/// A YAML document as a small tree with the position of every scalar.
enum Tree {
    Map(Vec<(String, Tree)>),
    Seq(Vec<Tree>),
    Scalar(String, usize),
}

/// The documents of `text` as [`Tree`]s; what follows a syntax error is dropped.
fn trees(text: &str) -> Vec<Tree> {
    let index = LineIndex::new(text);
    let mut stack: Vec<(Tree, Option<String>)> = Vec::new();
    let mut done = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let node = match event {
            Event::MappingStart(..) => {
                stack.push((Tree::Map(Vec::new()), None));
                continue;
            }
            Event::SequenceStart(..) => {
                stack.push((Tree::Seq(Vec::new()), None));
                continue;
            }
            Event::Scalar(value, ..) => {
                let at = index.offset(span.start.line(), span.start.col());
                Tree::Scalar(value.into_owned(), at)
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some((node, _)) => node,
                None => continue,
            },
            Event::Alias(_) => Tree::Scalar(String::new(), 0),
            _ => continue,
        };
        match stack.last_mut() {
            Some((Tree::Seq(items), _)) => items.push(node),
            Some((Tree::Map(entries), key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(if let Tree::Scalar(k, _) = node { k } else { String::new() }),
            },
            _ => done.push(node),
        }
    }
    done
}

/// `- task: Docker@2 … inputs: { command: build, repository: R }` as `docker build -t R .`.
fn docker_tasks(text: &str) -> Vec<Snippet> {
    fn get<'t>(entries: &'t [(String, Tree)], key: &str) -> Option<&'t Tree> {
        entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    let mut out = Vec::new();
    let mut stack: Vec<&Tree> = Vec::new();
    let documents = trees(text);
    stack.extend(documents.iter());
    while let Some(node) = stack.pop() {
        match node {
            Tree::Map(entries) => {
                let task = match get(entries, "task") {
                    Some(Tree::Scalar(t, _)) => t.as_str(),
                    _ => "",
                };
                if task.starts_with("Docker@") {
                    if let Some(Tree::Map(inputs)) = get(entries, "inputs") {
                        let command = get(inputs, "command");
                        let repository = get(inputs, "repository");
                        if let (Some(Tree::Scalar(c, at)), Some(Tree::Scalar(r, _))) =
                            (command, repository)
                        {
                            if c == "build" && !r.is_empty() {
                                let mut s = Snippet::new();
                                s.push_synthetic("docker build -t ${__azure} .", *at);
                                out.push(s);
                            }
                        }
                    }
                }
                stack.extend(entries.iter().map(|(_, v)| v));
            }
            Tree::Seq(items) => stack.extend(items.iter()),
            Tree::Scalar(..) => {}
        }
    }
    out
}

#[derive(Debug)]
enum Frame {
    Map { key: Option<String>, expect_key: bool },
    Seq { target: bool, anchor: usize },
}

#[derive(Debug, Clone, Copy)]
struct Scalar {
    style: ScalarStyle,
    span: Span,
}

/// Every scalar that is (or is inside a sequence that is) the value of one of `keys`.
fn scripts(text: &str, keys: &[&str]) -> Vec<Snippet> {
    let index = LineIndex::new(text);
    let mut found: Vec<Scalar> = Vec::new();
    let mut anchors: HashMap<usize, Vec<Scalar>> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Scalars of the anchored sequences still open.
    let mut captures: Vec<(usize, Vec<Scalar>)> = Vec::new();
    for event in Parser::new_from_str(text) {
        // A syntax error ends the scan of this file with what was read so far: the CI system
        // rejects such a file anyway.
        let Ok((event, span)) = event else { break };
        // Whether the node this event starts is a script value.
        let target = match stack.last() {
            Some(Frame::Map { key: Some(k), expect_key: false }) => keys.contains(&k.as_str()),
            Some(Frame::Seq { target, .. }) => *target,
            _ => false,
        };
        let is_key = matches!(stack.last(), Some(Frame::Map { expect_key: true, .. }));
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                if is_key {
                    if let Some(Frame::Map { key, expect_key }) = stack.last_mut() {
                        *key = Some(value.into_owned());
                        *expect_key = false;
                    }
                    continue;
                }
                let scalar = Scalar { style, span };
                let reference_tag = tag.as_ref().is_some_and(|t| t.suffix == "reference");
                if target && !reference_tag {
                    found.push(scalar);
                }
                for (_, captured) in &mut captures {
                    captured.push(scalar);
                }
                if anchor > 0 {
                    anchors.insert(anchor, vec![scalar]);
                }
                value_done(&mut stack);
            }
            Event::Alias(id) => {
                if is_key {
                    if let Some(Frame::Map { key, expect_key }) = stack.last_mut() {
                        *key = None;
                        *expect_key = false;
                    }
                    continue;
                }
                if target {
                    found.extend(anchors.get(&id).into_iter().flatten().copied());
                }
                value_done(&mut stack);
            }
            Event::SequenceStart(anchor, tag) => {
                let reference_tag = tag.as_ref().is_some_and(|t| t.suffix == "reference");
                stack.push(Frame::Seq { target: target && !reference_tag, anchor });
                if anchor > 0 {
                    captures.push((anchor, Vec::new()));
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { anchor, .. }) = stack.pop() {
                    if anchor > 0 {
                        if let Some((id, scalars)) = captures.pop() {
                            anchors.insert(id, scalars);
                        }
                    }
                }
                value_done(&mut stack);
            }
            Event::MappingStart(..) => {
                stack.push(Frame::Map { key: None, expect_key: true });
            }
            Event::MappingEnd => {
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    found
        .into_iter()
        .filter(|s| seen.insert(s.span.start.index()))
        .map(|s| scalar_snippet(text, &index, s))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A value (or a complex key) is complete: its map expects the next key.
fn value_done(stack: &mut [Frame]) {
    if let Some(Frame::Map { expect_key, .. }) = stack.last_mut() {
        *expect_key = true;
    }
}

/// Rebuilds a scalar's value from the original lines, with the byte map.
fn scalar_snippet(text: &str, index: &LineIndex<'_>, scalar: Scalar) -> Snippet {
    let start = scalar.span.start;
    let end = scalar.span.end;
    match scalar.style {
        ScalarStyle::Literal | ScalarStyle::Folded => {
            block_snippet(text, index, start.line(), start.col(), scalar.style)
        }
        ScalarStyle::Plain => {
            let from = index.offset(start.line(), start.col());
            let to = index.offset(end.line(), end.col()).max(from);
            flow_snippet(text, from, to, Quote::None)
        }
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            let from = index.offset(start.line(), start.col()) + 1;
            let to = index.offset(end.line(), end.col()).saturating_sub(1).max(from);
            let quote = if scalar.style == ScalarStyle::SingleQuoted {
                Quote::Single
            } else {
                Quote::Double
            };
            flow_snippet(text, from, to, quote)
        }
    }
}

/// A `|` or `>` block: the content lines from `first_line` on, indented at least `indent`.
fn block_snippet(
    text: &str,
    index: &LineIndex<'_>,
    first_line: usize,
    indent: usize,
    style: ScalarStyle,
) -> Snippet {
    let mut out = Snippet::new();
    let mut previous_plain = false;
    for line in first_line..=index.len() {
        let content = index.line(line);
        let Some(line_start) = index.line_start(line) else { break };
        let blank = content.trim().is_empty();
        let leading = content.len() - content.trim_start_matches(' ').len();
        if !blank && leading < indent {
            break;
        }
        let body_start = line_start + indent.min(content.len());
        let body = &text[body_start..line_start + content.len()];
        let plain = !blank && !body.starts_with([' ', '\t']);
        if !out.is_empty() {
            // Folding joins two plain lines with a space; everything else keeps its break.
            if style == ScalarStyle::Folded && previous_plain && plain {
                out.push_synthetic(" ", body_start);
            } else {
                out.push_synthetic("\n", body_start.saturating_sub(1));
            }
        }
        out.push_source(body, body_start);
        previous_plain = plain;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// A flow scalar (plain or quoted) spanning `from..to`: lines folded as YAML folds them
/// (a line break is a space, an empty line a newline), quotes unescaped.
fn flow_snippet(text: &str, from: usize, to: usize, quote: Quote) -> Snippet {
    let mut out = Snippet::new();
    let region = &text[from..to];
    let mut offset = from;
    let mut pending_breaks = 0usize;
    let mut first = true;
    for raw in region.split('\n') {
        let line_start = offset;
        offset += raw.len() + 1;
        let trimmed_start = if first { raw } else { raw.trim_start() };
        let lead = raw.len() - trimmed_start.len();
        let body = trimmed_start.trim_end();
        if body.is_empty() && !first {
            pending_breaks += 1;
            continue;
        }
        let body_start = line_start + lead;
        if !first {
            if pending_breaks == 0 {
                out.push_synthetic(" ", body_start);
            } else {
                out.push_synthetic(&"\n".repeat(pending_breaks), body_start);
            }
        }
        pending_breaks = 0;
        first = false;
        push_unquoted(&mut out, body, body_start, quote);
    }
    out
}

fn push_unquoted(out: &mut Snippet, body: &str, at: usize, quote: Quote) {
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut from = 0;
    while i < bytes.len() {
        let replacement = match (quote, bytes[i], bytes.get(i + 1)) {
            (Quote::Single, b'\'', Some(b'\'')) => Some("'"),
            (Quote::Double, b'\\', Some(b'n')) => Some("\n"),
            (Quote::Double, b'\\', Some(b't')) => Some("\t"),
            // `\"`, `\\`: drop the backslash, keep the escaped byte as source.
            (Quote::Double, b'\\', Some(c)) if c.is_ascii() => None,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_source(&body[from..i], at + from);
        match replacement {
            Some(r) => {
                out.push_synthetic(r, at + i);
                from = i + 2;
            }
            None => from = i + 1,
        }
        i += 2;
    }
    out.push_source(&body[from..], at + from);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(snippets: &[Snippet]) -> Vec<String> {
        snippets.iter().map(|s| s.text().to_string()).collect()
    }

    #[test]
    fn literal_block_keeps_lines_and_positions() {
        let y = "jobs:\n  a:\n    steps:\n      - run: |\n          echo hi\n          docker x\n";
        let s = github_runs(y);
        assert_eq!(texts(&s), ["echo hi\ndocker x\n"]);
        let docker = s[0].text().find("docker").unwrap();
        assert_eq!(s[0].origin(docker), y.find("docker").unwrap());
    }

    #[test]
    fn plain_scalars_fold() {
        let y = "build:\n  script:\n    - docker build\n      -t x .\n    - echo 'a'\n";
        assert_eq!(texts(&gitlab_scripts(y)), ["docker build -t x .", "echo 'a'"]);
    }

    #[test]
    fn quoted_scalars_unescape() {
        let y = "a:\n  script: \"echo \\\"x\\\"\"\nb:\n  script: 'it''s'\n";
        assert_eq!(texts(&gitlab_scripts(y)), ["echo \"x\"", "it's"]);
    }

    #[test]
    fn folded_block_joins() {
        let y = "a:\n  script: >\n    docker build\n    -t x .\n\n    echo\n";
        assert_eq!(texts(&gitlab_scripts(y)), ["docker build -t x .\n\necho\n"]);
    }

    #[test]
    fn anchors_are_followed_once() {
        let y = ".s: &s\n  - docker one\nj:\n  script: *s\nk:\n  script:\n    - *s\n";
        assert_eq!(texts(&gitlab_scripts(y)), ["docker one"]);
    }

    #[test]
    fn azure_docker_task_is_a_build() {
        let y = "steps:\n- task: Docker@2\n  inputs:\n    command: build\n    repository: app\n";
        let s = azure_scripts(y);
        assert_eq!(texts(&s), ["docker build -t ${__azure} ."]);
        assert_eq!(s[0].origin(0), y.find("build").unwrap());
        let push = "steps:\n- task: Docker@2\n  inputs:\n    command: push\n    repository: app\n";
        assert!(azure_scripts(push).is_empty());
    }

    #[test]
    fn other_keys_are_not_scripts() {
        let y = "a:\n  name: docker rmi -f x\n  variables:\n    run: x\n";
        assert!(gitlab_scripts(y).is_empty());
    }
}
