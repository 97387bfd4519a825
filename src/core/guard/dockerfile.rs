//! Dockerfile `RUN` instructions (shell form with continuations, exec form, heredocs) as shell.
//! Pure. The `# escape=` parser directive is honoured; comment lines inside a continued
//! instruction are dropped, as the Dockerfile parser drops them.

use super::snippet::Snippet;

/// One snippet per `RUN` instruction (each runs in a shell of its own).
pub(super) fn snippets(text: &str) -> Vec<Snippet> {
    let escape = escape_char(text);
    let mut out = Vec::new();
    let mut current: Option<Snippet> = None;
    let mut heredoc: Option<String> = None;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if let Some(delim) = &heredoc {
            if line.trim() == delim {
                heredoc = None;
                out.extend(current.take());
            } else if let Some(s) = current.as_mut() {
                s.push_source(line, start);
                s.push_synthetic("\n", start + line.len());
            }
            continue;
        }
        if let Some(s) = current.as_mut() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let continued = push_line(s, line, start, escape);
            if !continued {
                out.extend(current.take());
            }
            continue;
        }
        let trimmed = line.trim_start();
        let keyword_len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        if !trimmed[..keyword_len].eq_ignore_ascii_case("RUN") {
            continue;
        }
        let mut at = line.len() - trimmed.len() + keyword_len;
        // `--mount=…`, `--network=…` flags before the command.
        loop {
            let rest = &line[at..];
            let ws = rest.len() - rest.trim_start().len();
            at += ws;
            if line[at..].starts_with("--") {
                at += line[at..].find(char::is_whitespace).unwrap_or(line.len() - at);
            } else {
                break;
            }
        }
        let rest = &line[at..];
        let mut s = Snippet::new();
        if rest.starts_with('[') {
            exec_form(&mut s, rest, start + at);
            out.push(s);
        } else if let Some(h) = rest.strip_prefix("<<") {
            let delim: String = h
                .trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'')
                .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .next()
                .unwrap_or("")
                .to_string();
            heredoc = Some(delim);
            current = Some(s);
        } else if push_line(&mut s, rest, start + at, escape) {
            current = Some(s);
        } else {
            out.push(s);
        }
    }
    out.extend(current);
    out
}

/// Appends one line; returns whether it continues (ends with the escape character). The
/// escape becomes a shell `\` continuation so the byte map stays exact.
fn push_line(s: &mut Snippet, line: &str, at: usize, escape: char) -> bool {
    let body = line.trim_end();
    if let Some(without) = body.strip_suffix(escape) {
        s.push_source(without, at);
        s.push_synthetic("\\\n", at + without.len());
        true
    } else {
        s.push_source(line, at);
        s.push_synthetic("\n", at + line.len());
        false
    }
}

/// `RUN ["docker", "rmi", "-f", "x"]`: the elements become words.
fn exec_form(s: &mut Snippet, rest: &str, at: usize) {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(bytes.len());
            s.push_synthetic("'", at + i);
            s.push_source(&rest[start..end], at + start);
            s.push_synthetic("' ", at + end);
            i = end + 1;
        } else {
            i += 1;
        }
    }
    s.push_synthetic("\n", at + rest.len());
}

/// The `# escape=` directive at the top (only before the first instruction or comment).
fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else { break };
        let directive = directive.trim();
        if let Some(value) = directive.strip_prefix("escape=") {
            return value.trim().chars().next().unwrap_or('\\');
        }
        if !directive.contains('=') {
            break;
        }
    }
    '\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(d: &str) -> Vec<String> {
        snippets(d).iter().map(|s| s.text().to_string()).collect()
    }

    #[test]
    fn run_forms() {
        assert_eq!(texts("FROM x\nRUN a \\\n  # c\n  b\n"), ["a \\\n  b\n"]);
        assert_eq!(texts("RUN --mount=type=cache,target=/x echo\n"), ["echo\n"]);
        assert_eq!(texts("RUN [\"docker\", \"rmi\"]\n"), ["'docker' 'rmi' \n"]);
        assert_eq!(texts("RUN <<EOF\ndocker x\nEOF\nRUN y\n"), ["docker x\n", "y\n"]);
        assert_eq!(texts("# escape=`\nRUN a `\n  b\n"), ["a \\\n  b\n"]);
    }
}
