//! Applying the edits of findings to a file's bytes, and showing them as a unified diff. Pure:
//! the caller reads and writes the file.
//!
//! The diff is written here rather than taken from a diff crate: the changes are known
//! replacements at known offsets, so the hunks come straight from the edited lines, with no
//! sequence alignment to compute.

use std::fmt::Write as _;
use std::ops::Range;

use super::Edit;

/// `bytes` with `edits` applied, and for each edit (in the order given) whether it was.
/// Edits whose original bytes differ from the file's, or that overlap an earlier edit, are
/// left out. Nothing outside the replaced ranges changes.
pub fn apply(bytes: &[u8], edits: &[&Edit]) -> (Vec<u8>, Vec<bool>) {
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (edits[i].range.start, edits[i].range.end));
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    let mut applied = vec![false; edits.len()];
    for i in order {
        let edit = edits[i];
        let Range { start, end } = edit.range.clone();
        if start < at || bytes.get(start..end) != Some(edit.original.as_bytes()) {
            continue;
        }
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(edit.replacement.as_bytes());
        at = end;
        applied[i] = true;
    }
    out.extend_from_slice(&bytes[at..]);
    (out, applied)
}

/// A unified diff (`--- a/PATH`, `+++ b/PATH`, hunks with three lines of context) from `old`
/// to `new`, which differ only inside lines (no line is added or removed by an edit, but an
/// edit may join or split lines; the hunk then covers the lines around it).
pub fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> String {
    const CONTEXT: usize = 3;
    let old_text = String::from_utf8_lossy(old);
    let new_text = String::from_utf8_lossy(new);
    let olds: Vec<&str> = old_text.split_inclusive('\n').collect();
    let news: Vec<&str> = new_text.split_inclusive('\n').collect();
    // Common prefix and suffix per line; everything between is one change, grouped into hunks
    // by runs of equal lines (the lines of both sides pair up while their counts agree).
    let mut changes: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < olds.len() || j < news.len() {
        if i < olds.len() && j < news.len() && olds[i] == news[j] {
            i += 1;
            j += 1;
            continue;
        }
        // A changed run: until both sides meet on an equal line with equal remaining counts.
        let (si, sj) = (i, j);
        loop {
            i = (i + 1).min(olds.len());
            j = (j + 1).min(news.len());
            let rest_equal = olds.len() - i == news.len() - j;
            if (i == olds.len() && j == news.len())
                || (rest_equal && i < olds.len() && olds[i] == news[j])
            {
                break;
            }
        }
        changes.push((si..i, sj..j));
    }
    if changes.is_empty() {
        return String::new();
    }
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    let mut k = 0;
    while k < changes.len() {
        // Merge changes whose contexts touch.
        let mut last = k;
        while last + 1 < changes.len()
            && changes[last + 1].0.start <= changes[last].0.end + 2 * CONTEXT
        {
            last += 1;
        }
        let a_start = changes[k].0.start.saturating_sub(CONTEXT);
        let a_end = (changes[last].0.end + CONTEXT).min(olds.len());
        let b_start = (a_start + changes[k].1.start).saturating_sub(changes[k].0.start);
        let mut body = String::new();
        let (mut ai, mut b_len) = (a_start, 0);
        for (ra, rb) in &changes[k..=last] {
            for line in &olds[ai..ra.start] {
                push_line(&mut body, ' ', line);
                b_len += 1;
            }
            for line in &olds[ra.clone()] {
                push_line(&mut body, '-', line);
            }
            for line in &news[rb.clone()] {
                push_line(&mut body, '+', line);
                b_len += 1;
            }
            ai = ra.end;
        }
        for line in &olds[ai..a_end] {
            push_line(&mut body, ' ', line);
            b_len += 1;
        }
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            hunk_range(a_start, a_end - a_start),
            hunk_range(b_start, b_len)
        );
        out.push_str(&body);
        k = last + 1;
    }
    out
}

fn hunk_range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

fn push_line(out: &mut String, mark: char, line: &str) {
    out.push(mark);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(range: Range<usize>, original: &str, replacement: &str) -> Edit {
        Edit {
            range,
            replacement: replacement.into(),
            original: original.into(),
            start_line: 0,
            start_column: 0,
            end_line: 0,
            end_column: 0,
        }
    }

    #[test]
    fn edits_apply_and_stale_ones_are_dropped() {
        let text = b"docker rmi -f a\n";
        let good = edit(10..13, " -f", "");
        let stale = edit(0..6, "podman", "x");
        let (out, applied) = apply(text, &[&good, &stale]);
        assert_eq!((out.as_slice(), applied), (&b"docker rmi a\n"[..], vec![true, false]));
    }

    #[test]
    fn diff_has_context_and_counts() {
        let old = "1\n2\n3\n4\ndocker rmi -f a\n6\n7\n8\n9\n10\n11\n12\ndocker rmi -f b\n";
        let new = old.replace(" -f", "");
        let d = unified_diff("x.sh", old.as_bytes(), new.as_bytes());
        assert_eq!(
            d,
            "--- a/x.sh\n+++ b/x.sh\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-docker rmi -f a\n+docker rmi a\n 6\n 7\n 8\n@@ -10,4 +10,4 @@\n 10\n 11\n 12\n-docker rmi -f b\n+docker rmi b\n"
        );
        assert_eq!(unified_diff("x", b"a\n", b"a\n"), "");
    }
}
