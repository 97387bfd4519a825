//! The check function of each rule: given one docker (or podman) command line, already parsed
//! and with its words judged by [`super::shell`], say whether it breaks the rule, where, why,
//! and (for the rules that have one) the edit that fixes it. The registry in [`super::rules`]
//! names one of these per rule; the shell analysis calls every registered check on every
//! engine command. Pure.

use std::ops::Range;

use super::shell::{Cx, Prov, Word};
use super::Edit;
use crate::core::reference::Reference;

/// One engine command line as a check sees it.
pub(crate) struct Call<'a, 't> {
    pub(crate) cx: &'a Cx<'a>,
    /// `docker`, `podman`, `nvidia-docker`.
    pub(crate) program: &'a str,
    /// The engine word as written (`docker`, `/usr/bin/docker`).
    pub(crate) engine: &'a Word<'t>,
    /// The subcommand words (`["rmi"]`, `["image", "rm"]`).
    pub(crate) sub: &'a [&'a str],
    /// Snippet offset just past the last subcommand word.
    pub(crate) sub_end: usize,
    /// Whether global options stand between the engine and the subcommand.
    pub(crate) globals: bool,
    /// The words after the subcommand.
    pub(crate) args: &'a [Word<'t>],
    /// What `xargs` feeds the command, when it runs through xargs.
    pub(crate) stdin: Option<Prov>,
}

/// What a check found in one command.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Where the finding points (original offset); the engine word when `None`.
    pub(crate) at: Option<usize>,
    /// What was found, in the file's own words.
    pub(crate) message: String,
    /// The edit that fixes it, if the rule has one and it applies to this spelling.
    pub(crate) edits: Vec<Edit>,
}

impl Verdict {
    fn new(at: Option<usize>, message: String) -> Verdict {
        Verdict { at, message, edits: Vec::new() }
    }
}

/// The signature every registered check has.
pub(crate) type CheckFn = for<'a, 't> fn(&Call<'a, 't>) -> Option<Verdict>;

impl Call<'_, '_> {
    /// An edit replacing the snippet bytes `range` (which must be copied verbatim from the
    /// file; [`super::scan_as`] drops an edit whose original bytes differ).
    fn edit(&self, range: Range<usize>, replacement: &str) -> Edit {
        let start = self.cx.origin(range.start);
        let end = if range.is_empty() { start } else { self.cx.origin(range.end - 1) + 1 };
        Edit {
            range: start..end,
            replacement: replacement.to_string(),
            original: self.cx.src[range].to_string(),
            start_line: 0,
            start_column: 0,
            end_line: 0,
            end_column: 0,
        }
    }
}

/// IG001: `docker save` of an image ID, a digest-only reference or IDs from a listing.
pub(crate) fn id_only_save(call: &Call<'_, '_>) -> Option<Verdict> {
    if !matches!(call.sub, ["save"] | ["image", "save"]) {
        return None;
    }
    let program = call.program;
    let why = "the archive keeps no name:tag, so it loads back as <none>:<none>";
    for w in operands(call.args, &["-o", "--output", "--platform"]) {
        if let Some(lit) = &w.lit {
            if let Some(kind) = id_like(lit) {
                let at = Some(call.cx.origin(w.node.start_byte()));
                return Some(Verdict::new(
                    at,
                    format!("`{program} save` by {kind} `{lit}`: {why}"),
                ));
            }
        } else if w.prov.is_ids() {
            let at = Some(call.cx.origin(w.node.start_byte()));
            let expr = shorten(call.cx.text(w.node));
            return Some(Verdict::new(
                at,
                format!("`{program} save` of image IDs from `{expr}`: {why}"),
            ));
        }
    }
    if call.stdin.is_some_and(Prov::is_ids) {
        return Some(Verdict::new(
            None,
            format!("`{program} save` of image IDs piped in through xargs: {why}"),
        ));
    }
    None
}

/// IG002: forced image removal. The fix drops `-f`/`--force`.
pub(crate) fn forced_removal(call: &Call<'_, '_>) -> Option<Verdict> {
    if !matches!(call.sub, ["rmi"] | ["image", "rm" | "remove" | "rmi"]) {
        return None;
    }
    let is_force = |l: &str| l == "--force" || l == "--force=true" || is_short_cluster_with(l, 'f');
    let forced: Vec<&Word<'_>> =
        call.args.iter().filter(|w| w.lit.as_deref().is_some_and(is_force)).collect();
    if forced.is_empty() {
        return None;
    }
    let ops = operands(call.args, &["--platform"]);
    let dangling_only = if ops.is_empty() {
        call.stdin.is_some_and(Prov::is_dangling)
    } else {
        ops.iter().all(|w| w.prov.is_dangling())
    };
    if dangling_only {
        return None;
    }
    let (program, verb) = (call.program, call.sub.join(" "));
    let mut verdict = Verdict::new(
        None,
        format!(
            "forced image removal `{program} {verb} -f`: it untags images that containers still \
             use, leaving them as <none>:<none>"
        ),
    );
    // Only a flag that is a word of its own is dropped (rmi has no other short option that
    // could share a cluster with -f).
    if forced.iter().all(|w| matches!(w.lit.as_deref(), Some("-f" | "--force" | "--force=true"))) {
        verdict.edits = forced.iter().map(|w| call.edit(word_with_space(call.cx, w), "")).collect();
    }
    Some(verdict)
}

/// IG003: `docker build -t X` moves the tag. The fix (only on request) runs `imgguard build`.
pub(crate) fn plain_rebuild(call: &Call<'_, '_>) -> Option<Verdict> {
    let buildx = match call.sub {
        ["build"] | ["image" | "builder", "build"] => false,
        ["buildx", "build" | "b"] => true,
        _ => return None,
    };
    // A dynamic word is shown as written, unless it stands for a template expression.
    let lits: Vec<&str> = call
        .args
        .iter()
        .map(|w| match &w.lit {
            Some(l) => l.as_str(),
            None if call.cx.text(w.node).contains("${__") => "…",
            None => call.cx.text(w.node),
        })
        .collect();
    let mut tag = None;
    let mut loads = !buildx;
    for (i, l) in lits.iter().enumerate() {
        let value_after = || lits.get(i + 1).copied().unwrap_or("");
        if *l == "-t" || *l == "--tag" {
            tag.get_or_insert_with(|| value_after().to_string());
        } else if let Some(v) = l.strip_prefix("--tag=").or_else(|| l.strip_prefix("-t=")) {
            tag.get_or_insert_with(|| v.to_string());
        } else if let Some(v) = l.strip_prefix("-t").filter(|v| !v.is_empty()) {
            tag.get_or_insert_with(|| v.to_string());
        } else if *l == "--load" {
            loads = true;
        } else if *l == "-o" || *l == "--output" {
            loads |= value_after().contains("type=docker");
        } else if let Some(v) = l.strip_prefix("--output=") {
            loads |= v.contains("type=docker");
        }
    }
    let tag = tag?;
    if !loads {
        return None;
    }
    let (program, verb) = (call.program, call.sub.join(" "));
    let mut verdict = Verdict::new(
        None,
        format!(
            "`{program} {verb} -t {tag}` moves the tag; the image it pointed to is left as \
             <none>:<none>"
        ),
    );
    // `imgguard build` runs docker's classic build with the same arguments.
    if program == "docker" && !buildx && !call.globals {
        let start = call.engine.node.start_byte();
        verdict.edits = vec![call.edit(start..call.sub_end, "imgguard build")];
    }
    Some(verdict)
}

/// IG004: `docker system prune -a`, `docker image prune -a`.
pub(crate) fn blanket_prune(call: &Call<'_, '_>) -> Option<Verdict> {
    if !matches!(call.sub, ["system" | "image", "prune"]) {
        return None;
    }
    let mut all = false;
    let mut skip = false;
    for l in call.args.iter().filter_map(|w| w.lit.as_deref()) {
        if skip {
            skip = false;
            continue;
        }
        if l == "--filter" {
            skip = true;
        } else if l == "--all" || l == "--all=true" || is_short_cluster_with(l, 'a') {
            all = true;
        }
    }
    if !all {
        return None;
    }
    let (program, verb) = (call.program, call.sub.join(" "));
    Some(Verdict::new(
        None,
        format!(
            "blanket prune `{program} {verb} -a`: removes every image without a container, tagged \
             or not"
        ),
    ))
}

/// The snippet range of a word together with the blanks that separate it from the previous
/// word (or, first on its line, from the next), so that removing it leaves one separator.
fn word_with_space(cx: &Cx<'_>, w: &Word<'_>) -> Range<usize> {
    let bytes = cx.src.as_bytes();
    let (mut start, mut end) = (w.node.start_byte(), w.node.end_byte());
    let blank = |b: u8| b == b' ' || b == b'\t';
    while start > 0 && blank(bytes[start - 1]) {
        start -= 1;
    }
    if start == 0 || bytes[start - 1] == b'\n' {
        start = w.node.start_byte();
        while end < bytes.len() && blank(bytes[end]) {
            end += 1;
        }
    }
    start..end
}

/// Splits a command's arguments into options and operands; `with_value` lists the options
/// that take the next word as their value.
pub(crate) fn operands<'w, 't>(args: &'w [Word<'t>], with_value: &[&str]) -> Vec<&'w Word<'t>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while let Some(w) = args.get(i) {
        i += 1;
        match w.lit.as_deref() {
            Some("--") if !options_done => options_done = true,
            Some(l) if !options_done && l.starts_with('-') && l.len() > 1 => {
                if with_value.contains(&l) {
                    i += 1;
                }
            }
            _ => out.push(w),
        }
    }
    out
}

/// `-f`, `-af`, `-qf`: a short-option cluster containing `flag`.
pub(crate) fn is_short_cluster_with(l: &str, flag: char) -> bool {
    l.len() > 1
        && l.starts_with('-')
        && !l.starts_with("--")
        && l[1..].chars().all(|c| c.is_ascii_alphabetic())
        && l[1..].contains(flag)
}

/// Whether a literal operand names an image by ID or digest only; says which.
pub(crate) fn id_like(lit: &str) -> Option<&'static str> {
    match Reference::parse(lit) {
        Ok(Reference::Id(_)) => return Some("image ID"),
        Ok(Reference::Named { tag: None, digest: Some(_), .. }) => {
            return Some("digest-only reference")
        }
        _ => {}
    }
    // docker resolves a unique ID prefix (12 hex characters as `docker images` prints them).
    let hex = lit.strip_prefix("sha256:").unwrap_or(lit);
    let is_hex = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex.len() >= 12 && hex.len() <= 64 && is_hex && hex.bytes().any(|b| b.is_ascii_digit()))
        .then_some("image ID")
}

/// An expression on one line, cut to 60 characters.
pub(crate) fn shorten(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        let cut: String = one_line.chars().take(57).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_clusters() {
        assert!(is_short_cluster_with("-af", 'a'));
        assert!(!is_short_cluster_with("--all", 'a'));
    }

    #[test]
    fn id_like_literals() {
        assert_eq!(id_like("0123456789ab"), Some("image ID"));
        assert_eq!(id_like("app:1"), None);
        assert_eq!(id_like("deadbeefcafe"), None, "no digit: more likely a name");
        assert_eq!(
            id_like("app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            Some("digest-only reference")
        );
    }
}
