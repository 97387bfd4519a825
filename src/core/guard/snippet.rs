//! Shell text cut out of another file (a YAML block scalar, a Makefile recipe, a Jenkinsfile
//! string) together with a byte map back into the ORIGINAL file, so that every finding is
//! reported at the line and column a person sees in their editor. Pure.

/// Shell source plus, for each of its bytes, the byte offset in the original file it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snippet {
    text: String,
    map: Vec<usize>,
}

impl Snippet {
    /// An empty snippet.
    pub fn new() -> Snippet {
        Snippet::default()
    }

    /// A whole file that is shell as it stands (offsets map to themselves).
    pub fn identity(text: &str) -> Snippet {
        Snippet { text: text.to_string(), map: (0..text.len()).collect() }
    }

    /// Appends `s`, copied from the original file at byte `origin`.
    pub fn push_source(&mut self, s: &str, origin: usize) {
        self.text.push_str(s);
        self.map.extend(origin..origin + s.len());
    }

    /// Appends text that does not appear verbatim in the original (an unescaped character, a
    /// placeholder for a template expression); all its bytes map to `origin`.
    pub fn push_synthetic(&mut self, s: &str, origin: usize) {
        self.text.push_str(s);
        self.map.extend(std::iter::repeat_n(origin, s.len()));
    }

    /// The shell text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The original offset of snippet byte `at` (the end maps just past the last byte).
    pub fn origin(&self, at: usize) -> usize {
        match self.map.get(at) {
            Some(o) => *o,
            None => self.map.last().map_or(0, |o| o + 1),
        }
    }

    /// Appends the part `range` of `other`, keeping its map.
    pub fn extend_from(&mut self, other: &Snippet, range: std::ops::Range<usize>) {
        self.text.push_str(&other.text[range.clone()]);
        self.map.extend_from_slice(&other.map[range]);
    }

    /// This snippet without its full-line `#` comments (their line breaks stay). Nothing the
    /// rules look at lives on such a line: it is a comment to the shell, and also to the
    /// shell, awk or heredoc it may sit in. Parsing comments is most of the work in a
    /// well-commented file, so they are dropped before parsing.
    #[must_use]
    pub fn without_comment_lines(&self) -> Snippet {
        if !self.text.contains('#') {
            return self.clone();
        }
        let mut out = Snippet { text: String::with_capacity(self.text.len()), map: Vec::new() };
        out.map.reserve(self.text.len());
        let mut start = 0;
        for line in self.text.split_inclusive('\n') {
            let end = start + line.len();
            if line.trim_start().starts_with('#') {
                if line.ends_with('\n') {
                    out.extend_from(self, end - 1..end);
                }
            } else {
                out.extend_from(self, start..end);
            }
            start = end;
        }
        out
    }

    /// This snippet with the bytes of `range` replaced by spaces (line breaks kept): same
    /// length, same map, so everything else keeps its offsets.
    #[must_use]
    pub fn blanked(&self, range: std::ops::Range<usize>) -> Snippet {
        let mut bytes = self.text.clone().into_bytes();
        for b in &mut bytes[range] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        // Only whole characters were in the range or they became ASCII spaces: still UTF-8
        // when the range starts and ends on character boundaries, which callers ensure by
        // cutting at line breaks.
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Snippet { text, map: self.map.clone() }
    }

    /// A snippet of the part `range` of this one, keeping the map (for `sh -c '…'` bodies).
    #[must_use]
    pub fn slice(&self, range: std::ops::Range<usize>) -> Snippet {
        Snippet { text: self.text[range.clone()].to_string(), map: self.map[range].to_vec() }
    }
}

/// Turns byte offsets of one text into 1-based lines and columns (columns count characters).
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes the line starts of `text`.
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line and column of byte `offset`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }

    /// The text of 1-based `line`, without its line break.
    pub fn line(&self, line: usize) -> &'a str {
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else { return "" };
        let end = self.starts.get(line).map_or(self.text.len(), |e| e - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// The byte offset where 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.starts.get(line.wrapping_sub(1)).copied()
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The byte offset of 1-based `line` and 0-based character `col`.
    pub fn offset(&self, line: usize, col: usize) -> usize {
        let Some(start) = self.line_start(line) else { return self.text.len() };
        let rest = &self.text[start..];
        rest.char_indices().nth(col).map_or(self.text.len(), |(i, _)| start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let idx = LineIndex::new("ab\ncdé\nx");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(8), (3, 1));
        assert_eq!(idx.line(2), "cdé");
        assert_eq!(idx.offset(2, 2), 5);
    }

    #[test]
    fn comment_lines_are_dropped_with_the_map_kept() {
        let s = Snippet::identity("#!/bin/sh\n  # c\ndocker x # y\n");
        let t = s.without_comment_lines();
        assert_eq!(t.text(), "\n\ndocker x # y\n");
        assert_eq!(t.origin(2), 16);
    }

    #[test]
    fn snippet_maps_back() {
        let mut s = Snippet::new();
        s.push_source("docker", 10);
        s.push_synthetic(" X ", 40);
        s.push_source("ab", 50);
        assert_eq!(s.text(), "docker X ab");
        assert_eq!(s.origin(0), 10);
        assert_eq!(s.origin(7), 40);
        assert_eq!(s.origin(10), 51);
        assert_eq!(s.origin(11), 52);
        assert_eq!(s.slice(9..11).origin(0), 50);
    }
}
