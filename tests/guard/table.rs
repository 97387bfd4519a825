//! The rule table's cases as data: the `flags!`/`passes!` invocations of `tests/guard.rs` whose
//! text is a plain string literal, read from the source (so other tests, such as the recovery
//! fuzz, run over every case the table has, including ones added later).

use std::path::Path;

/// `(test name, path, text)` of every table case whose path is a shell script.
pub(super) fn shell_cases() -> Vec<(String, String, String)> {
    let sources = [include_str!("../guard.rs"), include_str!("shapes.rs")];
    let mut out = Vec::new();
    for (source, mac) in sources.iter().flat_map(|s| [(s, "flags!("), (s, "passes!(")]) {
        let mut rest = *source;
        while let Some(at) = rest.find(mac) {
            rest = &rest[at + mac.len()..];
            if let Some((name, path, text)) = case(rest) {
                if Path::new(&path).extension().is_some_and(|e| e == "sh") {
                    out.push((name, path, text));
                }
            }
        }
    }
    out
}

/// `name, "path", "text"` at the start of `s`.
fn case(s: &str) -> Option<(String, String, String)> {
    let s = s.trim_start();
    let comma = s.find(',')?;
    let name = s[..comma].trim().to_string();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let (path, s) = literal(s[comma + 1..].trim_start())?;
    let s = s.trim_start().strip_prefix(',')?.trim_start();
    let (text, _) = literal(s)?;
    Some((name, path, text))
}

/// A Rust string literal at the start of `s`, unescaped, and what follows it.
fn literal(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    '\\' | '"' | '\'' => out.push(e),
                    '\n' => {
                        // A continuation: the line break and the next line's indentation go.
                        let rest = &body[i + 2..];
                        let skip = rest.len() - rest.trim_start().len();
                        for _ in 0..skip {
                            chars.next();
                        }
                    }
                    _ => return None,
                }
            }
            _ => out.push(c),
        }
    }
    None
}
