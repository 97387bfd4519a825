//! justfile recipes as the shell sees them. Pure.
//!
//! Recipe lines are the indented lines after a recipe header; `@` and `-` prefixes are dropped,
//! `{{expr}}` interpolations become unknown shell words (`{{{{` is a literal `{{`), and a
//! variable assigned from a backtick (`ids := \`docker images -q\``) is tracked: `{{ids}}` in a
//! recipe reads it. A recipe whose shebang names another interpreter (python) is skipped.

use super::snippet::Snippet;

/// One snippet: the tracked assignments and every recipe line.
pub(super) fn snippets(text: &str) -> Vec<Snippet> {
    let mut out = Snippet::new();
    let mut in_recipe = false;
    let mut first_body_line = false;
    let mut skip_recipe = false;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        let indented = trimmed.len() < line.len();
        if indented && in_recipe {
            if first_body_line {
                first_body_line = false;
                if let Some(shebang) = trimmed.strip_prefix("#!") {
                    skip_recipe = !super::is_shell_shebang(&format!("#!{shebang}"));
                    continue;
                }
            }
            if skip_recipe {
                continue;
            }
            let lead = line.len() - trimmed.len();
            let body = trimmed.trim_start_matches(['@', '-']);
            let at = start + lead + (trimmed.len() - body.len());
            translate(&mut out, body, at);
            out.push_synthetic("\n", start + line.len());
            continue;
        }
        if indented || trimmed.starts_with('#') || trimmed.starts_with('[') {
            continue;
        }
        in_recipe = false;
        if let Some((name, value, value_at)) = assignment(line) {
            if let Some(cmd) = value.strip_prefix('`').and_then(|v| v.strip_suffix('`')) {
                out.push_synthetic(&format!("__just_{name}=\"$("), start);
                out.push_source(cmd, start + value_at + 1);
                out.push_synthetic(")\"\n", start + line.len());
            }
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        if matches!(first, "set" | "alias" | "import" | "mod" | "export") {
            continue;
        }
        if trimmed.contains(':') {
            in_recipe = true;
            first_body_line = true;
            skip_recipe = false;
        }
    }
    if out.is_empty() {
        Vec::new()
    } else {
        vec![out]
    }
}

/// `name := value` (with `export` before it).
fn assignment(line: &str) -> Option<(&str, &str, usize)> {
    let rest = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let (name, value) = rest.split_once(":=")?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    let value = value.trim();
    let value_at =
        line.len() - line[line.len() - rest.len()..].len() + rest.find(value).unwrap_or(0);
    Some((name, value, value_at))
}

/// Appends a recipe line with `{{…}}` made unknown words (tracked variables read).
fn translate(out: &mut Snippet, s: &str, at: usize) {
    let mut from = 0;
    while let Some(found) = s[from..].find("{{") {
        let open = from + found;
        if s[open..].starts_with("{{{{") {
            out.push_source(&s[from..open + 2], at + from);
            from = open + 4;
            continue;
        }
        let Some(len) = s[open + 2..].find("}}") else { break };
        let inner = s[open + 2..open + 2 + len].trim();
        out.push_source(&s[from..open], at + from);
        let word =
            if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                format!("${{__just_{inner}}}")
            } else {
                "${__just}".to_string()
            };
        out.push_synthetic(&word, at + open);
        from = open + 2 + len + 2;
    }
    out.push_source(&s[from..], at + from);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(j: &str) -> String {
        snippets(j).first().map(|s| s.text().to_string()).unwrap_or_default()
    }

    #[test]
    fn recipes_and_interpolation() {
        assert_eq!(
            text("img := \"app\"\nbuild tag:\n    @docker build -t {{img}}:{{tag}} .\n"),
            "docker build -t ${__just_img}:${__just_tag} .\n"
        );
    }

    #[test]
    fn backtick_assignments_are_tracked() {
        assert_eq!(
            text("ids := `docker images -q`\n"),
            "__just_ids=\"$(docker images -q))\"\n".replace("))", ")")
        );
    }

    #[test]
    fn python_recipes_are_skipped() {
        assert_eq!(text("a:\n    #!/usr/bin/env python3\n    print('docker rmi -f x')\n"), "");
    }
}
