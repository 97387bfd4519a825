//! Error recovery, fuzzed: every shell script of the rule table (`flags!` and `passes!` cases
//! in `tests/guard.rs`, read from the source so new cases join by themselves) gets lines that
//! tree-sitter-bash rejects inserted at random statement boundaries (seeded, deterministic),
//! and must give exactly the findings it gave before, at the shifted lines.

use std::path::Path;

use imgguard::core::guard::{scan, Rules};

/// Lines the grammar rejects (each makes the tree carry an ERROR or MISSING node). Not
/// `name() {`: with a later `}` that is a valid function around what follows.
const REJECTED: &[&str] = &[
    "fi",
    "done",
    ")",
    "esac",
    "}",
    "then",
    "echo ${x",
    "case $x in",
    "if then",
    "function {",
    "x=(",
    "[[ a == ( ]]",
    "echo `",
    "echo 'unterminated",
    "$((",
    "do",
    "echo \"oops",
    "((",
    "select",
    "echo $(",
    "elif",
    "while",
    ";;",
    "&&",
    "|",
    "x=$((1+)",
];

/// The lines of [`REJECTED`] that close a block.
const CLOSERS: &[&str] = &["fi", "done", ")", "esac", "}", ";;"];

/// Whether the blocks opened before 0-based line `at` are all closed (a rough count of
/// openers and closers, enough for the table's scripts).
fn top_level(text: &str, at: usize) -> bool {
    let mut depth = 0i32;
    for line in text.lines().take(at) {
        let t = line.trim();
        let opens =
            t.ends_with('{') || t.ends_with("then") || t.ends_with("do") || t.starts_with("case ");
        let closes = t.starts_with('}') || t == "fi" || t.starts_with("done") || t == "esac";
        depth += i32::from(opens) - i32::from(closes);
    }
    depth <= 0
}

/// Iterations per script.
const ROUNDS: u64 = 30;

type Found = Vec<(String, usize, usize)>;

fn found(path: &str, text: &str) -> Found {
    let findings = scan(Path::new(path), text, &Rules::default()).unwrap();
    findings.iter().map(|f| (f.rule.to_string(), f.line, f.column)).collect()
}

/// xorshift64*: a fixed sequence from a fixed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

/// `text` with `line` inserted before each 0-based line index in `at` (sorted).
fn insert(text: &str, at: &[usize], line: &str) -> String {
    let mut out = String::new();
    for (i, l) in text.split_inclusive('\n').enumerate() {
        for _ in at.iter().filter(|&&a| a == i) {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(l);
    }
    let end = text.split_inclusive('\n').count();
    for _ in at.iter().filter(|&&a| a == end) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The findings shifted down by the lines inserted before them.
fn shifted(before: &Found, at: &[usize]) -> Found {
    before
        .iter()
        .map(|(rule, line, col)| {
            let moved = at.iter().filter(|&&a| a < *line).count();
            (rule.clone(), line + moved, *col)
        })
        .collect()
}

/// Statement boundaries: places where a line that does nothing (`:`) changes no finding, and
/// not inside an open `$(`, `(` or backticks (where `x=(` could pair with the next `)`).
fn boundaries(path: &str, text: &str, before: &Found) -> Vec<usize> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    (0..=lines.len())
        .filter(|&i| {
            let after_open = i > 0 && lines[i - 1].trim_end().ends_with(['(', '`']);
            let before_close = lines.get(i).is_some_and(|l| l.trim_start().starts_with(')'));
            !after_open
                && !before_close
                && found(path, &insert(text, &[i], ":")) == shifted(before, &[i])
        })
        .collect()
}

#[test]
fn findings_survive_rejected_lines() {
    let cases = super::table::shell_cases();
    assert!(cases.len() >= 80, "only {} shell cases read from the table", cases.len());
    let mut rng = Rng(0x0bad_cafe_1234_5678);
    let mut iterations = 0;
    let mut failures = Vec::new();
    for (name, path, text) in &cases {
        let before = found(path, text);
        let points = boundaries(path, text, &before);
        for _ in 0..ROUNDS {
            let mut bad = REJECTED[rng.below(REJECTED.len())];
            // An opening quote pairs with one already in the script: that is no longer a line
            // the parser rejects, but a string the script's meaning changes with.
            while bad.contains(['\'', '"', '`']) && text.contains(['\'', '"', '`']) {
                bad = REJECTED[rng.below(REJECTED.len())];
            }
            // Twice the same opening quote would close itself: a second line is only inserted
            // for lines that cannot pair up.
            let count = if bad.contains(['\'', '"', '`']) { 1 } else { 1 + rng.below(2) };
            // A closer inside a block could close that block instead: which of two `}` is the
            // stray one is then a matter of taste. Closers go only between top-level statements.
            let closer = CLOSERS.contains(&bad);
            let usable: Vec<usize> =
                points.iter().copied().filter(|&p| !closer || top_level(text, p)).collect();
            if usable.is_empty() {
                continue;
            }
            let mut at: Vec<usize> = (0..count).map(|_| usable[rng.below(usable.len())]).collect();
            at.sort_unstable();
            let fuzzed = insert(text, &at, bad);
            let got = found(path, &fuzzed);
            iterations += 1;
            if got != shifted(&before, &at) {
                failures.push(format!(
                    "{name}: `{bad}` at {at:?}: want {:?}, got {got:?}\n{fuzzed}",
                    shifted(&before, &at)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {iterations} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("recovery fuzz: {iterations} iterations over {} scripts", cases.len());
}
