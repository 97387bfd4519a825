//! Makefile recipes as the shell sees them. Pure.
//!
//! Make expands `$` first: `$$` is a shell `$`, `$(shell cmd)` runs `cmd`, and every other
//! `$(VAR)`, `${VAR}` or `$@` is a Make variable, which becomes an unknown shell word here (a
//! Make variable is never judged as an image ID on its own). Variables assigned from
//! `$(shell …)` or with `!=` are tracked: the assignment is analyzed as a shell assignment to
//! `__make_NAME`, and `$(NAME)` in a recipe reads that shell variable. Recipe lines keep their
//! `\` continuations, which the shell joins as Make hands them over.

use super::snippet::Snippet;

/// One snippet: the tracked variable assignments and every recipe line, each on its own line.
pub(super) fn snippets(text: &str) -> Vec<Snippet> {
    let mut out = Snippet::new();
    let mut in_rule = false;
    let mut continuing = false;
    let mut in_define = false;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        if in_define {
            in_define = !line.trim_start().starts_with("endef");
            continue;
        }
        if continuing || (in_rule && line.starts_with('\t')) {
            let (body, at) = if continuing {
                (line, start)
            } else {
                let rest = &line[1..];
                let prefix = rest.len() - rest.trim_start_matches(['@', '-', '+', ' ', '\t']).len();
                (&rest[prefix..], start + 1 + prefix)
            };
            translate(&mut out, body, at);
            out.push_synthetic("\n", start + line.len());
            continuing = line.ends_with('\\');
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        if first == "define" {
            in_define = true;
            in_rule = false;
            continue;
        }
        if matches!(first, "ifeq" | "ifneq" | "ifdef" | "ifndef" | "else" | "endif") {
            continue;
        }
        if let Some((name, op, value, value_at)) = assignment(line) {
            in_rule = false;
            let shell = op == "!=" || value.contains("$(shell");
            if shell {
                let var = format!("__make_{}=\"", sanitize(name));
                out.push_synthetic(&var, start);
                if op == "!=" {
                    out.push_synthetic("$(", start + value_at);
                    translate(&mut out, value, start + value_at);
                    out.push_synthetic(")", start + line.len());
                } else {
                    translate(&mut out, value, start + value_at);
                }
                out.push_synthetic("\"\n", start + line.len());
            }
            continue;
        }
        if let Some(colon) = rule_colon(line) {
            in_rule = true;
            // `target: prerequisites ; recipe`
            if let Some(semi) = line[colon..].find(';') {
                let at = colon + semi + 1;
                translate(&mut out, &line[at..], start + at);
                out.push_synthetic("\n", start + line.len());
            }
            continue;
        }
        in_rule = false;
    }
    if out.is_empty() {
        Vec::new()
    } else {
        vec![out]
    }
}

/// `NAME = value`, `NAME := value`, `NAME != cmd`, with `export`/`override` before it.
fn assignment(line: &str) -> Option<(&str, &str, &str, usize)> {
    let mut rest = line.trim_start();
    for prefix in ["export ", "override ", "private "] {
        rest = rest.strip_prefix(prefix).map_or(rest, str::trim_start);
    }
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let after = rest[name_len..].trim_start();
    let op = [":::=", "::=", ":=", "?=", "+=", "!=", "="]
        .into_iter()
        .find(|op| after.starts_with(op))?;
    let value = after[op.len()..].trim_start();
    let value_at = line.len() - value.len();
    Some((name, op, value, value_at))
}

/// The colon of a rule line (`target: prerequisites`), not of `:=`.
fn rule_colon(line: &str) -> Option<usize> {
    let at = line.find(':')?;
    (!line[at + 1..].starts_with('=')).then_some(at)
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Appends `s` (at original offset `at`) with Make's `$` expansions turned into shell.
fn translate(out: &mut Snippet, s: &str, at: usize) {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut from = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        out.push_source(&s[from..i], at + from);
        match bytes[i + 1] {
            b'$' => {
                out.push_synthetic("$", at + i);
                i += 2;
            }
            open @ (b'(' | b'{') => {
                let close = if open == b'(' { b')' } else { b'}' };
                let mut depth = 0;
                let mut end = i + 1;
                while end < bytes.len() {
                    if bytes[end] == open {
                        depth += 1;
                    } else if bytes[end] == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    end += 1;
                }
                let inner = &s[i + 2..end.min(s.len())];
                if let Some(cmd) = inner.strip_prefix("shell ") {
                    let cmd_at = i + 2 + "shell ".len();
                    out.push_synthetic("$(", at + i);
                    translate(out, cmd, at + cmd_at);
                    out.push_synthetic(")", at + end.min(s.len()).saturating_sub(1));
                } else if inner.contains([' ', ':', ',']) {
                    out.push_synthetic("${__make}", at + i);
                } else {
                    out.push_synthetic(&format!("${{__make_{}}}", sanitize(inner)), at + i);
                }
                i = (end + 1).min(bytes.len());
            }
            _ => {
                out.push_synthetic("${__make}", at + i);
                i += 2;
            }
        }
        from = i;
    }
    out.push_source(&s[from.min(s.len())..], at + from.min(s.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(make: &str) -> String {
        snippets(make).first().map(|s| s.text().to_string()).unwrap_or_default()
    }

    #[test]
    fn recipes_with_make_dollars() {
        assert_eq!(
            text("all:\n\t@docker save $$(docker images -q) $(IMG)\n"),
            "docker save $(docker images -q) ${__make_IMG}\n"
        );
    }

    #[test]
    fn shell_assignments_are_tracked() {
        assert_eq!(
            text("IDS := $(shell docker images -q)\n"),
            "__make_IDS=\"$(docker images -q)\"\n"
        );
        assert_eq!(text("IDS != docker images -q\n"), "__make_IDS=\"$(docker images -q)\"\n");
    }

    #[test]
    fn tab_lines_outside_rules_are_not_recipes() {
        assert_eq!(text("X = 1\n\tdocker rmi -f x\n"), "");
        assert_eq!(text("define T\n\tdocker rmi -f x\nendef\n"), "");
    }

    #[test]
    fn positions_map_back() {
        let make = "a:\n\tdocker rmi -f $$x\n";
        let s = &snippets(make)[0];
        assert_eq!(s.origin(0), 4);
        let dollar = s.text().find('$').unwrap();
        assert_eq!(s.origin(dollar), make.find("$$x").unwrap());
    }
}
