//! Jenkinsfile `sh` steps: `sh '…'`, `sh "…"`, `sh '''…'''`, `sh """…"""`, `sh(script: …)`.
//! Pure. A small Groovy lexer skips comments and every other string literal (never flagged,
//! e.g. `docker.build("x")` or `echo "docker rmi -f"`), and unescapes the step's body as Groovy
//! does: `\$` is a shell `$`, while `${expr}` / `$name` in a GString are Groovy interpolations
//! and become unknown shell words, except a Groovy variable assigned from a step's output
//! (`def ids = sh(returnStdout: true, script: 'docker images -q')`), which is tracked: `${ids}`
//! in a later step reads it.

use super::snippet::Snippet;

/// One snippet per `sh` step.
pub(super) fn snippets(text: &str) -> Vec<Snippet> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
        } else if let Some(lit) = literal_at(text, i) {
            i = lit.end;
        } else if is_ident_start(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let before = start.checked_sub(1).map(|p| bytes[p]);
            if &text[start..i] == "sh" && before != Some(b'.') {
                if let Some((snippet, end)) = sh_step(text, i) {
                    match assigned_name(text, start) {
                        Some(name) => {
                            let mut assignment = Snippet::new();
                            assignment.push_synthetic(&format!("__groovy_{name}=$("), start);
                            assignment.extend_from(&snippet, 0..snippet.text().len());
                            assignment.push_synthetic(")\n", end);
                            out.push(assignment);
                        }
                        None => out.push(snippet),
                    }
                    i = end;
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

/// `def name = sh(…)` or `name = sh …`: the Groovy variable the step's output goes to.
fn assigned_name(text: &str, sh_at: usize) -> Option<&str> {
    let before = text[..sh_at].trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?;
    if before.ends_with(['=', '!', '<', '>']) {
        return None;
    }
    let before = before.trim_end_matches([' ', '\t']);
    let start =
        before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
    let name = &before[start..];
    (!name.is_empty() && name.bytes().next().is_some_and(is_ident_start)).then_some(name)
}

/// A string literal: the delimiter, where its content is, and where it ends.
struct Literal {
    gstring: bool,
    content: std::ops::Range<usize>,
    end: usize,
}

fn literal_at(text: &str, i: usize) -> Option<Literal> {
    let rest = &text[i..];
    let delim = ["'''", "\"\"\"", "'", "\""].into_iter().find(|d| rest.starts_with(d))?;
    let bytes = text.as_bytes();
    let start = i + delim.len();
    let mut j = start;
    while j < bytes.len() {
        if bytes[j] == b'\\' {
            j += 2;
            continue;
        }
        if text[j..].starts_with(delim) {
            return Some(Literal {
                gstring: delim.starts_with('"'),
                content: start..j,
                end: j + delim.len(),
            });
        }
        if delim.len() == 1 && bytes[j] == b'\n' {
            break;
        }
        j += 1;
    }
    Some(Literal {
        gstring: delim.starts_with('"'),
        content: start..j.min(bytes.len()),
        end: j.min(bytes.len()),
    })
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn skip_space(text: &str, mut i: usize) -> usize {
    let bytes = text.as_bytes();
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// After the word `sh`: the script literal, directly or as `script:` among named arguments.
fn sh_step(text: &str, after: usize) -> Option<(Snippet, usize)> {
    let bytes = text.as_bytes();
    let mut i = skip_space(text, after);
    let parens = bytes.get(i) == Some(&b'(');
    if parens {
        i = skip_space(text, i + 1);
    }
    if let Some(lit) = literal_at(text, i) {
        return Some((body(text, &lit), lit.end));
    }
    // Named arguments: `sh script: '…'`, `sh(returnStdout: true, script: "…")`.
    loop {
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if start == i {
            return None;
        }
        let name = &text[start..i];
        i = skip_space(text, i);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(text, i + 1);
        if name == "script" {
            let lit = literal_at(text, i)?;
            return Some((body(text, &lit), lit.end));
        }
        // Skip the value up to the next top-level comma.
        while i < bytes.len() && !matches!(bytes[i], b',' | b')' | b'\n') {
            i = literal_at(text, i).map_or(i + 1, |l| l.end);
        }
        if bytes.get(i) != Some(&b',') {
            return None;
        }
        i = skip_space(text, i + 1);
    }
}

/// The literal's content as the shell receives it.
fn body(text: &str, lit: &Literal) -> Snippet {
    let mut out = Snippet::new();
    let bytes = text.as_bytes();
    let (start, end) = (lit.content.start, lit.content.end);
    let mut i = start;
    let mut from = start;
    while i < end {
        match bytes[i] {
            b'\\' if i + 1 < end => {
                out.push_source(&text[from..i], from);
                match bytes[i + 1] {
                    b'\n' => {}
                    b'n' => out.push_synthetic("\n", i),
                    b't' => out.push_synthetic("\t", i),
                    b'$' | b'\'' | b'"' | b'\\' => out.push_source(&text[i + 1..i + 2], i + 1),
                    _ => out.push_source(&text[i..i + 2], i),
                }
                i += 2;
                from = i;
            }
            b'$' if lit.gstring => {
                let interpolation_end = if bytes.get(i + 1) == Some(&b'{') {
                    text[i..end].find('}').map(|n| i + n + 1)
                } else if bytes.get(i + 1).is_some_and(|b| is_ident_start(*b)) {
                    let mut j = i + 1;
                    while j < end
                        && (is_ident(bytes[j])
                            || (bytes[j] == b'.' && j + 1 < end && is_ident_start(bytes[j + 1])))
                    {
                        j += 1;
                    }
                    Some(j)
                } else {
                    None
                };
                match interpolation_end {
                    Some(e) => {
                        out.push_source(&text[from..i], from);
                        let name = text[i + 1..e].trim_matches(|c| c == '{' || c == '}').trim();
                        if !name.is_empty() && name.bytes().all(is_ident) {
                            out.push_synthetic(&format!("${{__groovy_{name}}}"), i);
                        } else {
                            out.push_synthetic("${__groovy}", i);
                        }
                        i = e;
                        from = i;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out.push_source(&text[from..end], from);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(g: &str) -> Vec<String> {
        snippets(g).iter().map(|s| s.text().to_string()).collect()
    }

    #[test]
    fn sh_forms() {
        assert_eq!(
            texts("sh 'a'\nsh \"b\"\nsh '''c\nd'''\nsh(\"\"\"e\"\"\")"),
            ["a", "b", "c\nd", "e"]
        );
        assert_eq!(texts("sh(returnStdout: true, script: 'x y')"), ["x y"]);
        assert_eq!(texts("sh label: 'L', script: \"z\""), ["z"]);
    }

    #[test]
    fn groovy_escapes_and_interpolation() {
        assert_eq!(
            texts(r#"sh "docker save \$(x) ${env.IMG} $TAG""#),
            ["docker save $(x) ${__groovy} ${__groovy_TAG}"]
        );
        assert_eq!(texts(r"sh 'a \$b'"), ["a $b"]);
    }

    #[test]
    fn other_strings_and_comments_are_skipped() {
        assert!(texts(
            "// sh 'docker rmi -f x'\n/* sh 'y' */\necho 'sh \"z\"'\ndocker.build('x')\nx.sh 'q'"
        )
        .is_empty());
    }
}
