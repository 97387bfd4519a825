//! Shell analysis: finds the docker commands that create `<none>` images in shell text, with
//! quoting, continuations, lists, pipes, command substitutions, `sh -c` bodies, heredocs fed to a
//! shell (also over ssh), `xargs`, awk `system()`, wrappers (`sudo`, `retry`, functions that run
//! `"$@"`), variables judged by where they were assigned (also through `awk`/`cut`/`read`
//! columns), and repair around lines the grammar rejects. Each engine command line is judged by
//! every check of the rule registry. Pure: it is given a [`Snippet`] and returns hits at
//! offsets of the original file; it never opens the files a script sources, it only names them.
//!
//! The parser is tree-sitter-bash; why, and what else was weighed:
//! `docs/decisions/0001-shell-parser.md`.

use std::collections::HashMap;

use std::ops::Range;

use tree_sitter::{Node, Parser, Tree};

use super::checks::{id_like, is_short_cluster_with, Call};
use super::rules::{RuleId, RULES};
use super::snippet::Snippet;
use super::Edit;
use crate::core::reference::Reference;

/// One rule match, at byte offsets of the ORIGINAL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Which rule.
    pub rule: RuleId,
    /// Where the finding points (the offending operand or the command word).
    pub start: usize,
    /// Where the whole command ends.
    pub end: usize,
    /// What was found, in the file's own words.
    pub message: String,
    /// The edits that fix it (empty when the rule has no fix for this spelling).
    pub edits: Vec<Edit>,
    /// The function the command runs through when it is defined in another file: the hit
    /// stands only if that file shows the function runs its arguments.
    pub via: Option<String>,
}

/// A `docker compose build` command, at offsets of the ORIGINAL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeCall {
    /// Where the command word starts.
    pub start: usize,
    /// Where the command ends.
    pub end: usize,
    /// `docker compose` or `docker-compose`.
    pub command: String,
    /// The `-f` files.
    pub files: Vec<String>,
    /// The services named.
    pub services: Vec<String>,
}

/// What a word, variable or command output holds, judged by where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prov {
    /// Nothing known.
    Unknown,
    /// Image names (`name:tag`, `--format '{{.Repository}}:{{.Tag}}'`).
    Name,
    /// Image IDs or digest-only references (`docker images -q`); `dangling` when filtered to
    /// `dangling=true` or `<none>` rows.
    Ids { dangling: bool },
    /// A table of whitespace-separated columns, the `id`-th (1-based) holding image IDs: what
    /// `docker images` prints (repository, tag, ID, …), or `--format '{{.Repository}} {{.ID}}'`.
    Table { id: usize, dangling: bool },
}

impl Prov {
    pub(crate) fn is_ids(self) -> bool {
        matches!(self, Prov::Ids { .. })
    }

    pub(crate) fn is_dangling(self) -> bool {
        matches!(self, Prov::Ids { dangling: true } | Prov::Table { dangling: true, .. })
    }
}

/// A word of a command: its literal value when fully static, and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Word<'t> {
    pub(crate) node: Node<'t>,
    pub(crate) lit: Option<String>,
    pub(crate) prov: Prov,
}

/// The most nesting followed into `sh -c` bodies and heredocs.
const MAX_DEPTH: usize = 8;

/// One way of blanking lines, weighed.
struct Attempt {
    key: (usize, usize),
    picked: Vec<usize>,
    snippet: Snippet,
    tree: Tree,
}

/// The most parses spent repairing one snippet's tree.
const MAX_REPAIR_PARSES: usize = 64;

/// The most suspect lines tried in one repair step (singles, then pairs).
const MAX_SUSPECTS: usize = 8;

/// The longest snippet for which pairs of lines are tried.
const MAX_PAIRED_LEN: usize = 32 * 1024;

/// The most lines of damaged regions parsed on their own in one repair step.
const MAX_LINES_WEIGHED: usize = 400;

/// Node kinds that are whole statements: inside an ERROR node they are intact, and the line
/// to blame is elsewhere.
const STATEMENTS: &[&str] = &[
    "command",
    "pipeline",
    "list",
    "if_statement",
    "for_statement",
    "c_style_for_statement",
    "while_statement",
    "case_statement",
    "function_definition",
    "compound_statement",
    "subshell",
    "redirected_statement",
    "variable_assignment",
    "variable_assignments",
    "declaration_command",
    "unset_command",
    "negated_command",
    "test_command",
    "comment",
];

/// How much of a tree is damaged: the bytes under ERROR nodes, plus one for each MISSING
/// token (a missing `)` or `fi` swallows nothing by itself).
fn damage(node: Node<'_>) -> usize {
    if node.is_error() {
        return node.byte_range().len().max(1);
    }
    if node.is_missing() {
        return 1;
    }
    if !node.has_error() {
        return 0;
    }
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
    children.into_iter().map(damage).sum()
}

/// Snippet offsets of the lines to suspect, most likely first (inside each ERROR node, its
/// tokens that are not whole statements, then its start; for a MISSING token, the start of
/// the statement it belongs to, then its own place), and the damaged regions (ERROR nodes,
/// statements with a MISSING token).
fn suspects(root: Node<'_>) -> (Vec<usize>, Vec<Range<usize>>) {
    let mut out = Vec::new();
    let mut regions = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.is_missing() {
            let mut owner = node.parent().unwrap_or(node);
            while let Some(parent) = owner.parent() {
                if STATEMENTS.contains(&owner.kind()) || parent.parent().is_none() {
                    break;
                }
                owner = parent;
            }
            out.push(owner.start_byte());
            out.push(node.start_byte());
            regions.push(owner.byte_range());
            continue;
        }
        if !node.has_error() && !node.is_error() {
            continue;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        if node.is_error() {
            out.extend(
                children.iter().filter(|c| !STATEMENTS.contains(&c.kind())).map(Node::start_byte),
            );
            out.push(node.start_byte());
            regions.push(node.byte_range());
            // The statement the error sits in may have opened it (`x=(` swallowing the next
            // line): its first line is a suspect too.
            let mut top = node;
            while let Some(parent) = top.parent().filter(|p| p.parent().is_some()) {
                top = parent;
            }
            if top.id() != node.id() {
                out.push(top.start_byte());
            }
        }
        stack.extend(children.into_iter().rev());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|at| seen.insert(*at));
    (out, regions)
}

/// The byte range of the line holding `at`, without its line break.
fn line_around(text: &str, at: usize) -> Range<usize> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    start..end
}

/// Scans shell snippets, keeping variables assigned in earlier snippets of the same scope.
pub struct Analyzer {
    parser: Parser,
    vars: HashMap<String, Prov>,
    /// Shell functions defined so far: whether each runs its arguments (`"$@"`), like `retry`.
    functions: HashMap<String, bool>,
    hits: Vec<Hit>,
    composes: Vec<ComposeCall>,
    /// Files the shell sources (`. lib.sh`), as written or relative to the script (`./…`).
    sources: Vec<String>,
    depth: usize,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    /// A fresh analyzer with no variables known.
    pub fn new() -> Analyzer {
        let mut parser = Parser::new();
        // The grammar is compiled into the binary against the same tree-sitter ABI: a mismatch
        // is a build defect, not an input problem.
        parser
            .set_language(&tree_sitter_bash::LANGUAGE.into())
            .expect("tree-sitter-bash matches the tree-sitter ABI");
        Analyzer {
            parser,
            vars: HashMap::new(),
            functions: HashMap::new(),
            hits: Vec::new(),
            composes: Vec::new(),
            sources: Vec::new(),
            depth: 0,
        }
    }

    /// Forgets the shell variables (a new shell: another CI step, another `RUN`). Variables of
    /// the enclosing file format (`__make_*`, `__just_*`, `__groovy_*`: Make, just and Groovy
    /// variables assigned from commands) outlive a shell and are kept.
    pub fn reset_scope(&mut self) {
        self.vars.retain(|name, _| name.starts_with("__"));
    }

    /// Analyzes one snippet; variables it assigns stay known for the next one.
    ///
    /// A line the grammar rejects can make tree-sitter wrap many intact commands around it in
    /// one ERROR node. So when the tree has errors, the line that causes them is found (the
    /// first token of an ERROR node that is not a whole statement, or the statement that lacks
    /// a MISSING token), blanked out with spaces (byte offsets stay), and the snippet parsed
    /// again, up to `MAX_REPAIRS` times; the repaired tree is walked, and every blanked line
    /// is then analyzed on its own, so a command on it is still judged.
    pub fn analyze(&mut self, snippet: &Snippet) {
        if snippet.is_empty() || self.depth > MAX_DEPTH {
            return;
        }
        let Some(tree) = self.parser.parse(snippet.text(), None) else { return };
        // Functions are also taken from the damaged tree: a repair may blank a definition's
        // first line, and its callers still run through it.
        self.define_functions(&Cx { snip: snippet, src: snippet.text() }, tree.root_node());
        let (repaired, tree, mut blanked) = if tree.root_node().has_error() {
            self.repair(snippet, tree)
        } else {
            (snippet.clone(), tree, Vec::new())
        };
        let cx = Cx { snip: &repaired, src: repaired.text() };
        self.define_functions(&cx, tree.root_node());
        self.walk(&cx, tree.root_node(), Prov::Unknown);
        blanked.sort_by_key(|r| r.start);
        for line in blanked {
            // On its own, without a second repair: what tree-sitter recovers of it is judged.
            let alone = snippet.slice(line);
            if let Some(tree) = self.parser.parse(alone.text(), None) {
                let cx = Cx { snip: &alone, src: alone.text() };
                self.walk(&cx, tree.root_node(), Prov::Unknown);
            }
        }
    }

    /// Blanks out the lines that make `tree` an error, a step at a time: of the lines the
    /// errors point at, the one (or else the two) whose blanking leaves the least damage. Two
    /// lines are tried when no single one repairs the tree: blaming a loop's own header for a
    /// stray `while` in its body would lose what the loop assigns. Returns the repaired
    /// snippet, its tree and the lines blanked.
    fn repair(&mut self, snippet: &Snippet, mut tree: Tree) -> (Snippet, Tree, Vec<Range<usize>>) {
        let mut repaired = snippet.clone();
        let mut blanked: Vec<Range<usize>> = Vec::new();
        let mut parses = 0;
        while tree.root_node().has_error() && parses < MAX_REPAIR_PARSES {
            let before = damage(tree.root_node());
            let (sound, lines) = self.suspect_lines(&repaired, &tree, &blanked);
            let mut tries: Vec<Vec<usize>> = (0..lines.len()).map(|i| vec![i]).collect();
            // Pairs cost up to 28 parses of the whole snippet: only for snippets of script size.
            if repaired.text().len() <= MAX_PAIRED_LEN {
                for i in 0..lines.len() {
                    tries.extend((i + 1..lines.len()).map(|j| vec![i, j]));
                }
            }
            let mut best: Option<Attempt> = None;
            for (n, picked) in tries.into_iter().enumerate() {
                let repaired_by_one = best.as_ref().is_some_and(|b| b.key.0 == 0);
                if parses >= MAX_REPAIR_PARSES || (n == lines.len() && repaired_by_one) {
                    break;
                }
                let mut candidate = repaired.clone();
                for &i in &picked {
                    candidate = candidate.blanked(lines[i].clone());
                }
                parses += 1;
                let Some(next) = self.parser.parse(candidate.text(), None) else { break };
                // Less damage first; then fewer blanked lines that parse on their own.
                let key = (damage(next.root_node()), picked.iter().filter(|&&i| sound[i]).count());
                if best.as_ref().is_none_or(|b| key < b.key) {
                    best = Some(Attempt { key, picked, snippet: candidate, tree: next });
                }
                if key == (0, 0) {
                    break;
                }
            }
            let Some(best) = best.filter(|b| b.key.0 < before) else { break };
            blanked.extend(best.picked.iter().map(|&i| lines[i].clone()));
            repaired = best.snippet;
            tree = best.tree;
        }
        (repaired, tree, blanked)
    }

    /// The lines to try blanking, with whether each parses on its own: the lines the error
    /// tokens point at, then every line of the damaged regions; those the grammar rejects on
    /// their own come first.
    fn suspect_lines(
        &mut self,
        repaired: &Snippet,
        tree: &Tree,
        blanked: &[Range<usize>],
    ) -> (Vec<bool>, Vec<Range<usize>>) {
        let (mut starts, regions) = suspects(tree.root_node());
        let text = repaired.text();
        for region in regions {
            let mut at = region.start;
            while at < region.end && starts.len() < MAX_LINES_WEIGHED {
                starts.push(at);
                at = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
            }
        }
        let mut seen: Vec<Range<usize>> = Vec::new();
        let mut weighed: Vec<(bool, Range<usize>)> = Vec::new();
        for at in starts {
            let line = line_around(text, at);
            if line.is_empty() || blanked.contains(&line) || seen.contains(&line) {
                continue;
            }
            seen.push(line.clone());
            let alone = self.parser.parse(&text[line.clone()], None);
            weighed.push((alone.is_some_and(|t| !t.root_node().has_error()), line));
        }
        weighed.sort_by_key(|(sound, _)| *sound);
        weighed.truncate(MAX_SUSPECTS);
        weighed.into_iter().unzip()
    }

    /// Notes every function the snippet defines, and whether it runs its arguments: a body
    /// with a command `"$@"` (or `exec "$@"`, `eval "$@"`, `sudo "$@"`, …), as retry and
    /// logging wrappers have. Done before the walk, so a call above the definition counts too.
    fn define_functions(&mut self, cx: &Cx<'_>, root: Node<'_>) {
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            let mut cursor = node.walk();
            if node.kind() == "function_definition" {
                if let (Some(name), Some(body)) =
                    (node.child_by_field_name("name"), node.child_by_field_name("body"))
                {
                    let runs_args = self.runs_arguments(cx, body);
                    self.functions.insert(cx.text(name).to_string(), runs_args);
                }
            }
            stack.extend(node.named_children(&mut cursor));
        }
    }

    fn runs_arguments(&self, cx: &Cx<'_>, body: Node<'_>) -> bool {
        let is_all_args = |w: &Word<'_>| {
            matches!(cx.text(w.node).trim_matches('"'), "$@" | "${@}" | "$*" | "${*}")
        };
        let mut stack = vec![body];
        while let Some(node) = stack.pop() {
            if node.kind() == "command" {
                let words = self.words(cx, node);
                let first_dynamic = words.iter().position(|w| {
                    !w.lit.as_deref().is_some_and(|l| {
                        l.starts_with('-')
                            || matches!(
                                l,
                                "exec"
                                    | "eval"
                                    | "command"
                                    | "sudo"
                                    | "doas"
                                    | "nice"
                                    | "nohup"
                                    | "time"
                                    | "timeout"
                                    | "env"
                                    | "builtin"
                            )
                    })
                });
                if first_dynamic.is_some_and(|i| is_all_args(&words[i])) {
                    return true;
                }
            }
            let mut cursor = node.walk();
            stack.extend(node.named_children(&mut cursor));
        }
        false
    }

    /// The hits found so far.
    pub fn into_hits(self) -> Vec<Hit> {
        self.hits
    }

    /// The hits, the `docker compose build` commands and the sourced files found so far.
    pub fn into_parts(self) -> (Vec<Hit>, Vec<ComposeCall>, Vec<String>) {
        (self.hits, self.composes, self.sources)
    }

    /// The functions that run their arguments, of all defined so far.
    pub fn wrapper_functions(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.functions.iter().filter(|(_, runs)| **runs).map(|(n, _)| n.clone()).collect();
        out.sort();
        out
    }

    fn nested(&mut self, snippet: &Snippet) {
        self.depth += 1;
        self.analyze(snippet);
        self.depth -= 1;
    }

    fn walk(&mut self, cx: &Cx<'_>, node: Node<'_>, input: Prov) {
        match node.kind() {
            "comment" => {}
            "pipeline" => {
                let mut input = Prov::Unknown;
                let mut cursor = node.walk();
                for stage in node.named_children(&mut cursor) {
                    self.walk(cx, stage, input);
                    input = self.output(cx, stage, input);
                }
            }
            "command" => {
                self.check_command(cx, node, input);
                self.walk_children(cx, node);
            }
            "variable_assignment" => {
                self.walk_children(cx, node);
                if let (Some(name), Some(value)) =
                    (node.child_by_field_name("name"), node.child_by_field_name("value"))
                {
                    let prov = self.word(cx, value).prov;
                    self.vars.insert(cx.text(name).to_string(), prov);
                }
            }
            "for_statement" => {
                let mut cursor = node.walk();
                let values: Vec<Node<'_>> =
                    node.children_by_field_name("value", &mut cursor).collect();
                let mut prov = Prov::Unknown;
                for value in &values {
                    self.walk(cx, *value, Prov::Unknown);
                    prov = merge(prov, self.word(cx, *value).prov);
                }
                if let Some(var) = node.child_by_field_name("variable") {
                    self.vars.insert(cx.text(var).to_string(), prov);
                }
                if let Some(body) = node.child_by_field_name("body") {
                    self.walk(cx, body, Prov::Unknown);
                }
            }
            "while_statement" => {
                if input != Prov::Unknown {
                    if let Some(condition) = node.child_by_field_name("condition") {
                        self.assign_read(cx, condition, input);
                    }
                }
                self.walk_children(cx, node);
            }
            "redirected_statement" => {
                self.feed_heredoc(cx, node);
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    self.walk(cx, child, input);
                }
            }
            _ => self.walk_children(cx, node),
        }
    }

    fn walk_children(&mut self, cx: &Cx<'_>, node: Node<'_>) {
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            self.walk(cx, child, Prov::Unknown);
        }
    }

    /// `… | while read a b c; do …`: the variables get what the previous stage prints (for the
    /// `docker images` table, the third column is the ID).
    fn assign_read(&mut self, cx: &Cx<'_>, condition: Node<'_>, input: Prov) {
        let mut stack = vec![condition];
        while let Some(n) = stack.pop() {
            if n.kind() == "command" {
                let words = self.words(cx, n);
                if words.first().and_then(|w| w.lit.as_deref()) == Some("read") {
                    let names: Vec<String> = words[1..]
                        .iter()
                        .filter_map(|w| w.lit.clone())
                        .filter(|l| !l.starts_with('-'))
                        .collect();
                    for (i, name) in names.into_iter().enumerate() {
                        let prov = match input {
                            Prov::Table { id, dangling } if i + 1 == id => Prov::Ids { dangling },
                            Prov::Table { .. } if i < 2 => Prov::Name,
                            Prov::Table { .. } => Prov::Unknown,
                            other => other,
                        };
                        self.vars.insert(name, prov);
                    }
                }
                continue;
            }
            let mut cursor = n.walk();
            stack.extend(n.named_children(&mut cursor));
        }
    }

    /// `sh <<EOF … EOF`, `bash -s <<'EOF'`: a heredoc fed to a shell is shell. Other heredocs
    /// (`cat <<EOF`) are text and never flagged.
    fn feed_heredoc(&mut self, cx: &Cx<'_>, node: Node<'_>) {
        let Some(body) = node.child_by_field_name("body") else { return };
        if body.kind() != "command" {
            return;
        }
        let words = self.words(cx, body);
        let Some(Stripped { program, rest, .. }) = strip_wrappers(cx, &words, &self.functions)
        else {
            return;
        };
        // `ssh host`, `ssh host bash -s`, `ssh host sudo sh`: the remote side reads a script.
        let remote_shell = program == "ssh"
            && match ssh_command(rest) {
                None => true,
                Some(remote) => strip_wrappers(cx, remote, &self.functions).is_some_and(|r| {
                    is_shell(&r.program) && !r.rest.iter().any(|w| is_c_flag(w.lit.as_deref()))
                }),
            };
        if !(is_shell(&program) || remote_shell) || rest.iter().any(|w| is_c_flag(w.lit.as_deref()))
        {
            return;
        }
        let mut cursor = node.walk();
        for redirect in node.named_children(&mut cursor) {
            if redirect.kind() != "heredoc_redirect" {
                continue;
            }
            let mut inner = redirect.walk();
            let mut quoted = false;
            for part in redirect.named_children(&mut inner) {
                match part.kind() {
                    "heredoc_start" => quoted = cx.text(part).contains(['\'', '"', '\\']),
                    "heredoc_body" if quoted => self.nested(&cx.snip.slice(part.byte_range())),
                    // Unquoted: the local shell removes `\` before `$`, `` ` `` and `\`, so
                    // what the reading shell sees is the body unescaped.
                    "heredoc_body" => self.nested(&unescape_heredoc(cx, part.byte_range())),
                    _ => {}
                }
            }
        }
    }

    /// The words of a simple command (name first), evaluated.
    fn words<'t>(&self, cx: &Cx<'_>, node: Node<'t>) -> Vec<Word<'t>> {
        let mut out = Vec::new();
        if let Some(name) = node.child_by_field_name("name") {
            let inner = name.named_child(0).unwrap_or(name);
            out.push(self.word(cx, inner));
        }
        let mut cursor = node.walk();
        for arg in node.children_by_field_name("argument", &mut cursor) {
            out.push(self.word(cx, arg));
        }
        out
    }

    /// Evaluates one word node: its static value if it has one, and what it holds.
    fn word<'t>(&self, cx: &Cx<'_>, node: Node<'t>) -> Word<'t> {
        let text = cx.text(node);
        match node.kind() {
            "word" | "number" => {
                Word { node, lit: Some(unescape_word(text)), prov: literal_prov(text) }
            }
            "raw_string" => {
                let lit = text.trim_start_matches('\'').trim_end_matches('\'').to_string();
                let prov = literal_prov(&lit);
                Word { node, lit: Some(lit), prov }
            }
            "string" | "concatenation" | "translated_string" => {
                let mut lit = Some(String::new());
                let mut prov = Prov::Unknown;
                let mut cursor = node.walk();
                let mut last = node.start_byte() + usize::from(node.kind() == "string");
                for part in node.named_children(&mut cursor) {
                    let w = self.word(cx, part);
                    if let (Some(acc), Some(l)) = (lit.as_mut(), w.lit.as_ref()) {
                        // Text between parts is literal (tree-sitter leaves plain string bits
                        // out of the named children in some versions).
                        if node.kind() == "concatenation" && part.start_byte() > last {
                            acc.push_str(&cx.src[last..part.start_byte()]);
                        }
                        acc.push_str(l);
                    } else {
                        lit = None;
                    }
                    last = part.end_byte();
                    prov = merge(prov, w.prov);
                }
                if node.kind() == "string" && node.named_child_count() == 0 {
                    lit = Some(text.trim_matches('"').to_string());
                }
                if let Some(l) = &lit {
                    prov = literal_prov(l);
                } else if prov == Prov::Unknown && text.contains(':') {
                    // `"$name:$tag"`, `app:$TAG`: a name.
                    prov = Prov::Name;
                }
                Word { node, lit, prov }
            }
            "string_content" => {
                Word { node, lit: Some(unescape_dquoted(text)), prov: Prov::Unknown }
            }
            "simple_expansion" | "expansion" => {
                let prov = variable_name(cx, node)
                    .and_then(|name| self.vars.get(name).copied())
                    .unwrap_or(Prov::Unknown);
                Word { node, lit: None, prov }
            }
            "command_substitution" => {
                let mut prov = Prov::Unknown;
                let mut cursor = node.walk();
                for stmt in node.named_children(&mut cursor) {
                    prov = self.output(cx, stmt, Prov::Unknown);
                }
                Word { node, lit: None, prov }
            }
            _ => Word { node, lit: None, prov: Prov::Unknown },
        }
    }

    /// What a statement prints, given what it reads.
    fn output(&self, cx: &Cx<'_>, node: Node<'_>, input: Prov) -> Prov {
        match node.kind() {
            "pipeline" => {
                let mut prov = Prov::Unknown;
                let mut cursor = node.walk();
                for stage in node.named_children(&mut cursor) {
                    prov = self.output(cx, stage, prov);
                }
                prov
            }
            "command" => self.command_output(cx, node, input),
            "list" | "subshell" | "compound_statement" | "redirected_statement" => {
                let mut prov = Prov::Unknown;
                let mut cursor = node.walk();
                for child in node.named_children(&mut cursor) {
                    if child.kind() != "comment" && !child.kind().ends_with("redirect") {
                        prov = merge(prov, self.output(cx, child, input));
                    }
                }
                prov
            }
            _ => Prov::Unknown,
        }
    }

    fn command_output(&self, cx: &Cx<'_>, node: Node<'_>, input: Prov) -> Prov {
        let words = self.words(cx, node);
        let Some(stripped) = strip_wrappers(cx, &words, &self.functions) else {
            return Prov::Unknown;
        };
        let rest = stripped.rest;
        if is_engine(&stripped.program) {
            return listing_output(&docker_command(rest));
        }
        let lits: Vec<&str> = rest.iter().filter_map(|w| w.lit.as_deref()).collect();
        match stripped.program.as_str() {
            "grep" | "egrep" | "fgrep" => {
                let inverted =
                    lits.iter().any(|l| is_short_cluster_with(l, 'v') || *l == "--invert-match");
                let none = lits.iter().any(|l| l.contains("<none>"));
                match input {
                    Prov::Table { id, .. } if none && !inverted => {
                        Prov::Table { id, dangling: true }
                    }
                    other => other,
                }
            }
            "awk" | "gawk" | "mawk" | "nawk" => {
                let program = lits.iter().find(|l| l.contains("print")).copied().unwrap_or("");
                match input {
                    Prov::Table { id, dangling } if prints_field(program, id) => {
                        Prov::Ids { dangling }
                    }
                    Prov::Table { .. } if program.contains("$1") => Prov::Name,
                    Prov::Ids { .. } => input,
                    _ => Prov::Unknown,
                }
            }
            "cut" => match input {
                Prov::Table { id, dangling } if cut_field(&lits) == Some(id) => {
                    Prov::Ids { dangling }
                }
                Prov::Table { .. } => Prov::Unknown,
                other => other,
            },
            "head" | "tail" | "sort" | "uniq" | "sed" | "tr" | "cat" | "tee" => input,
            "echo" | "printf" => rest.iter().fold(Prov::Unknown, |acc, w| merge(acc, w.prov)),
            _ => Prov::Unknown,
        }
    }

    /// Checks one simple command against the rules.
    fn check_command(&mut self, cx: &Cx<'_>, node: Node<'_>, input: Prov) {
        let words = self.words(cx, node);
        let Some(stripped) = strip_wrappers(cx, &words, &self.functions) else { return };
        let program = stripped.program.as_str();
        if is_shell(program) {
            self.shell_c(cx, stripped.rest);
            return;
        }
        if program == "ssh" {
            // `ssh host 'docker rmi -f x'`: the remote command is shell on the host.
            match ssh_command(stripped.rest) {
                Some([one]) if matches!(one.node.kind(), "raw_string" | "string") => {
                    let sub = quoted_body(cx, one.node);
                    self.nested(&sub);
                }
                Some(words) => {
                    let (first, last) = (&words[0], &words[words.len() - 1]);
                    let sub = cx.snip.slice(first.node.start_byte()..last.node.end_byte());
                    self.nested(&sub);
                }
                None => {}
            }
            return;
        }
        if matches!(program, "awk" | "gawk" | "mawk" | "nawk") {
            self.awk_system(cx, stripped.rest);
            return;
        }
        if program == "docker-compose" {
            self.compose_build(cx, node, &words[stripped.engine_at], stripped.rest, program);
            return;
        }
        if matches!(program, "source" | ".") {
            if let Some(file) = stripped.rest.first().and_then(|w| sourced_path(cx, w)) {
                self.sources.push(file);
            }
            return;
        }
        if !is_engine(program) {
            // `lib_retry docker rmi -f x`, with `lib_retry` from another file: judged as if it
            // ran its arguments, and kept only if the sourced file shows that it does.
            if self.functions.contains_key(program) {
                return;
            }
            let mut k = stripped.engine_at + 1;
            while words
                .get(k)
                .and_then(|w| w.lit.as_deref())
                .is_some_and(|l| l.starts_with('-') || l.bytes().all(|b| b.is_ascii_digit()))
            {
                k += 1;
            }
            if words.get(k).and_then(|w| w.lit.as_deref()).is_some_and(is_engine) {
                if let Some(inner) = strip_wrappers(cx, &words[k..], &self.functions) {
                    let inner = Stripped { engine_at: inner.engine_at + k, ..inner };
                    self.judge_engine(cx, node, &words, &inner, input, Some(program));
                }
            }
            return;
        }
        self.judge_engine(cx, node, &words, &stripped, input, None);
    }

    /// Runs every registered check on one engine command line.
    fn judge_engine(
        &mut self,
        cx: &Cx<'_>,
        node: Node<'_>,
        words: &[Word<'_>],
        stripped: &Stripped<'_, '_>,
        input: Prov,
        via: Option<&str>,
    ) {
        let program = stripped.program.as_str();
        let engine = &words[stripped.engine_at];
        let cmd = docker_command(stripped.rest);
        if cmd.sub == ["compose"] {
            if via.is_none() {
                self.compose_build(cx, node, engine, cmd.args, "docker compose");
            }
            return;
        }
        let at = cx.origin(engine.node.start_byte());
        let end = cx.origin(node.end_byte().saturating_sub(1)) + 1;
        let call = Call {
            cx,
            program,
            engine,
            sub: &cmd.sub,
            sub_end: cmd.sub_end.unwrap_or(engine.node.end_byte()),
            globals: cmd.globals,
            args: cmd.args,
            stdin: if stripped.xargs { Some(input) } else { None },
        };
        for rule in RULES {
            if let Some(verdict) = (rule.check)(&call) {
                self.hits.push(Hit {
                    rule: rule.id,
                    start: verdict.at.unwrap_or(at),
                    end,
                    message: verdict.message,
                    edits: verdict.edits,
                    via: via.map(str::to_string),
                });
            }
        }
    }

    /// `docker compose [-f F] build [SERVICE…]`: noted for [`super::compose::resolve`].
    fn compose_build(
        &mut self,
        cx: &Cx<'_>,
        node: Node<'_>,
        engine: &Word<'_>,
        args: &[Word<'_>],
        command: &str,
    ) {
        const GLOBAL_WITH_VALUE: &[&str] = &[
            "-f",
            "--file",
            "-p",
            "--project-name",
            "--project-directory",
            "--env-file",
            "--profile",
            "--ansi",
            "--progress",
            "--parallel",
        ];
        const BUILD_WITH_VALUE: &[&str] =
            &["--build-arg", "--ssh", "--builder", "-m", "--memory", "--progress"];
        let lits: Vec<Option<&str>> = args.iter().map(|w| w.lit.as_deref()).collect();
        let mut files = Vec::new();
        let mut i = 0;
        while let Some(Some(l)) = lits.get(i) {
            if !l.starts_with('-') {
                break;
            }
            if matches!(*l, "-f" | "--file") {
                files.extend(lits.get(i + 1).copied().flatten().map(str::to_string));
            } else if let Some(f) = l.strip_prefix("--file=") {
                files.push(f.to_string());
            }
            i += if GLOBAL_WITH_VALUE.contains(l) { 2 } else { 1 };
        }
        if lits.get(i).copied().flatten() != Some("build") {
            return;
        }
        let mut services = Vec::new();
        let mut j = i + 1;
        while let Some(w) = lits.get(j) {
            match w {
                Some(l) if l.starts_with('-') => {
                    j += if BUILD_WITH_VALUE.contains(l) { 2 } else { 1 };
                    continue;
                }
                Some(l) => services.push((*l).to_string()),
                // A service named by a variable: which one is unknown, so none is assumed.
                None => return,
            }
            j += 1;
        }
        self.composes.push(ComposeCall {
            start: cx.origin(engine.node.start_byte()),
            end: cx.origin(node.end_byte().saturating_sub(1)) + 1,
            command: command.to_string(),
            files,
            services,
        });
    }

    /// `sh -c 'body'`, `bash -ec "body"`: the body is shell.
    fn shell_c(&mut self, cx: &Cx<'_>, rest: &[Word<'_>]) {
        let Some(i) = rest.iter().position(|w| is_c_flag(w.lit.as_deref())) else { return };
        let Some(body) = rest.get(i + 1) else { return };
        let sub = quoted_body(cx, body.node);
        self.nested(&sub);
    }

    /// `awk '{ system("docker rmi -f " $3) }'`: the string literals of a `system()` call are
    /// shell; non-literal parts stand for unknown words.
    fn awk_system(&mut self, cx: &Cx<'_>, rest: &[Word<'_>]) {
        for w in rest {
            if !matches!(w.node.kind(), "raw_string" | "string") {
                continue;
            }
            let program = quoted_body(cx, w.node);
            let text = program.text().to_string();
            let mut from = 0;
            while let Some(found) = text[from..].find("system(") {
                let open = from + found + "system(".len();
                let sub = awk_call_body(&program, &text, open);
                from = open;
                self.nested(&sub);
            }
        }
    }
}

/// The snippet a node belongs to.
pub(crate) struct Cx<'s> {
    pub(crate) snip: &'s Snippet,
    pub(crate) src: &'s str,
}

impl Cx<'_> {
    pub(crate) fn text(&self, node: Node<'_>) -> &str {
        &self.src[node.byte_range()]
    }

    pub(crate) fn origin(&self, at: usize) -> usize {
        self.snip.origin(at)
    }
}

/// A command with its wrappers (`sudo`, `env`, `xargs`, absolute paths) taken off.
struct Stripped<'w, 't> {
    program: String,
    engine_at: usize,
    rest: &'w [Word<'t>],
    xargs: bool,
}

/// Commands that run their arguments after a count or options: `retry 3 docker build …`.
const RETRY_WRAPPERS: &[&str] = &["retry", "travis_retry", "with_retry", "with-retry", "retry-cmd"];

fn strip_wrappers<'w, 't>(
    cx: &Cx<'_>,
    words: &'w [Word<'t>],
    functions: &HashMap<String, bool>,
) -> Option<Stripped<'w, 't>> {
    let mut i = 0;
    let mut xargs = false;
    loop {
        let word = words.get(i)?;
        let Some(lit) = word.lit.as_deref().or_else(|| engine_after_expansion(cx, word)) else {
            // `$SUDO docker …`, `$cmd docker build …`: an expansion in command position
            // followed by a literal program runs that program (or a wrapper of it).
            if matches!(word.node.kind(), "simple_expansion" | "expansion")
                && words.get(i + 1).is_some_and(|w| w.lit.is_some())
            {
                i += 1;
                continue;
            }
            return None;
        };
        let program = lit.rsplit('/').next().unwrap_or(lit);
        let runs_args = RETRY_WRAPPERS.contains(&program)
            || (functions.get(program) == Some(&true) && program != "docker");
        let with_value: &[&str] = match program {
            "sudo" | "doas" => &["-u", "-g", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "-h"],
            "env" => &["-u", "-C", "-S", "--unset", "--chdir"],
            "nice" => &["-n", "--adjustment"],
            "timeout" => &["-s", "-k", "--signal", "--kill-after"],
            "xargs" => &["-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a", "--delimiter"],
            "exec" => &["-a"],
            "command" => {
                if words
                    .get(i + 1)
                    .and_then(|w| w.lit.as_deref())
                    .is_some_and(|l| l.starts_with('-') && (l.contains('v') || l.contains('V')))
                {
                    // `command -v docker` looks docker up; it does not run it.
                    return None;
                }
                &[]
            }
            "nohup" | "time" | "builtin" | "stdbuf" | "ionice" | "chronic" => &[],
            _ if runs_args => &[],
            _ => {
                return Some(Stripped {
                    program: program.to_string(),
                    engine_at: i,
                    rest: &words[i + 1..],
                    xargs,
                })
            }
        };
        xargs |= program == "xargs";
        i += 1;
        // Options of the wrapper, `VAR=value` for env, timeout's duration (any word), a retry
        // wrapper's counts and delays.
        let mut took_duration = false;
        while let Some(w) = words.get(i) {
            if program == "timeout"
                && !took_duration
                && w.lit.as_deref().is_none_or(|l| !l.starts_with('-'))
            {
                took_duration = true;
                i += 1;
                continue;
            }
            let Some(l) = w.lit.as_deref() else { break };
            if l == "--" {
                i += 1;
                break;
            }
            if l.starts_with('-') && l.len() > 1 {
                i += if with_value.contains(&l) { 2 } else { 1 };
            } else if (program == "env" && l.contains('='))
                || (runs_args && l.trim_end_matches(['s', 'm']).bytes().all(|b| b.is_ascii_digit()))
            {
                i += 1;
            } else {
                break;
            }
        }
    }
}

/// The file a `source`/`.` command reads: a literal path, or the literal tail after the
/// script's own directory (`"$(dirname "$0")/lib.sh"`, `${BASH_SOURCE%/*}/lib.sh`,
/// `"$DIR/lib.sh"`), given as `./lib.sh` (relative to the script).
fn sourced_path(cx: &Cx<'_>, word: &Word<'_>) -> Option<String> {
    if let Some(lit) = &word.lit {
        return Some(lit.clone());
    }
    let text = cx.text(word.node).replace('"', "");
    let rest = text.strip_prefix('$')?;
    // The end of the leading expansion: `$(…)`, `${…}` or `$NAME`.
    let end = match rest.chars().next()? {
        open @ ('(' | '{') => {
            let close = if open == '(' { ')' } else { '}' };
            let mut depth = 0;
            rest.char_indices().find_map(|(i, c)| {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                None
            })?
        }
        _ => rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len()),
    };
    let tail = rest[end..].strip_prefix('/')?;
    (!tail.is_empty() && !tail.contains('$')).then(|| format!("./{tail}"))
}

/// `$(E)docker` in Make, `${prefix}docker`: expansions then a literal engine name.
fn engine_after_expansion<'w>(cx: &Cx<'_>, word: &'w Word<'_>) -> Option<&'w str> {
    if word.node.kind() != "concatenation" {
        return None;
    }
    let last = word.node.named_child(word.node.named_child_count().checked_sub(1)?)?;
    let tail = cx.text(last);
    let engine = ["docker", "podman"].into_iter().find(|e| *e == tail)?;
    let mut cursor = word.node.walk();
    let all_expansions = word
        .node
        .named_children(&mut cursor)
        .filter(|c| c.id() != last.id())
        .all(|c| matches!(c.kind(), "simple_expansion" | "expansion" | "command_substitution"));
    all_expansions.then_some(engine)
}

/// The remote command words of `ssh [options] host command…`, if any.
fn ssh_command<'w, 't>(rest: &'w [Word<'t>]) -> Option<&'w [Word<'t>]> {
    const WITH_VALUE: &[&str] = &[
        "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-E", "-S", "-W", "-b", "-c", "-e",
        "-m", "-O", "-Q", "-w", "-B",
    ];
    let mut i = 0;
    while let Some(l) = rest.get(i).and_then(|w| w.lit.as_deref()) {
        if !l.starts_with('-') {
            break;
        }
        i += if WITH_VALUE.contains(&l) { 2 } else { 1 };
    }
    // rest[i] is the host.
    rest.get(i + 1..).filter(|words| !words.is_empty())
}

fn is_engine(program: &str) -> bool {
    matches!(program, "docker" | "podman" | "nvidia-docker")
}

fn is_shell(program: &str) -> bool {
    matches!(program, "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "busybox")
}

/// `-c`, `-ec`, `-xc`, `-lc`: the next word is the script.
fn is_c_flag(lit: Option<&str>) -> bool {
    lit.is_some_and(|l| {
        l.len() > 1
            && l.starts_with('-')
            && !l.starts_with("--")
            && l[1..].bytes().all(|b| b.is_ascii_alphabetic())
            && l.contains('c')
    })
}

/// A docker command line after the global options: the subcommand words and everything else.
struct DockerCommand<'w, 't> {
    sub: Vec<&'w str>,
    /// Snippet offset just past the last subcommand word.
    sub_end: Option<usize>,
    /// Whether global options come before the subcommand.
    globals: bool,
    args: &'w [Word<'t>],
}

/// Global options that take a value (docker and podman).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "-H",
    "--host",
    "-c",
    "--context",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
    "--connection",
    "--url",
    "--identity",
    "--root",
    "--runroot",
    "--storage-driver",
    "--cgroup-manager",
    "--events-backend",
    "--runtime",
    "--tmpdir",
    "--module",
];

fn docker_command<'w, 't>(rest: &'w [Word<'t>]) -> DockerCommand<'w, 't> {
    let mut i = 0;
    while let Some(l) = rest.get(i).and_then(|w| w.lit.as_deref()) {
        if !l.starts_with('-') {
            break;
        }
        i += if GLOBAL_WITH_VALUE.contains(&l) { 2 } else { 1 };
    }
    let globals = i > 0;
    let mut sub = Vec::new();
    let mut sub_end = None;
    // Management commands have two words (`image rm`), the others one (`rmi`).
    while let Some(w) = rest.get(i) {
        let Some(l) = w.lit.as_deref() else { break };
        if l.starts_with('-') || sub.len() == 2 {
            break;
        }
        sub.push(l);
        sub_end = Some(w.node.end_byte());
        i += 1;
        if !matches!(l, "image" | "system" | "builder" | "buildx") {
            break;
        }
    }
    DockerCommand { sub, sub_end, globals, args: rest.get(i..).unwrap_or(&[]) }
}

/// What a docker listing prints: IDs, names or the table.
fn listing_output(cmd: &DockerCommand<'_, '_>) -> Prov {
    let lits: Vec<&str> = cmd.args.iter().filter_map(|w| w.lit.as_deref()).collect();
    let option_value = |names: &[&str]| -> Vec<String> {
        let mut values = Vec::new();
        for (i, l) in lits.iter().enumerate() {
            for name in names {
                if l == name {
                    if let Some(v) = lits.get(i + 1) {
                        values.push((*v).to_string());
                    }
                } else if let Some(v) = l.strip_prefix(&format!("{name}=")) {
                    values.push(v.to_string());
                } else if name.len() == 2 && l.starts_with(name) && !l.starts_with("--") {
                    values.push(l[2..].to_string());
                }
            }
        }
        values
    };
    // `-qf dangling=true`: a value after a cluster ending in f.
    let dangling = option_value(&["--filter", "-f"]).iter().any(|v| v.contains("dangling=true"))
        || lits
            .windows(2)
            .any(|p| is_short_cluster_with(p[0], 'f') && p[1].contains("dangling=true"));
    let quiet = lits.iter().any(|l| *l == "--quiet" || is_short_cluster_with(l, 'q'));
    let format = option_value(&["--format"]).join(" ");
    let ids_or_names = |format: &str| {
        let by_id = format.contains(".ID") || format.contains(".Id");
        if by_id || (format.contains(".Digest") && !format.contains(".Tag")) {
            Prov::Ids { dangling }
        } else if format.contains(".Repository") || format.contains(".Tag") {
            Prov::Name
        } else {
            Prov::Unknown
        }
    };
    match cmd.sub.as_slice() {
        ["images"] | ["image", "ls" | "list"] => {
            if quiet {
                Prov::Ids { dangling }
            } else if format.matches("{{").count() > 1 {
                // Several columns: the ID is the column its placeholder stands in (docker
                // turns a written `\t` into a tab).
                let columns: Vec<&str> = format
                    .split(|c: char| c.is_whitespace() || c == '\\')
                    .filter(|c| !c.is_empty() && *c != "t")
                    .collect();
                match columns.iter().position(|c| c.contains(".ID") || c.contains(".Id")) {
                    Some(at) => Prov::Table { id: at + 1, dangling },
                    None => ids_or_names(&format),
                }
            } else if !format.is_empty() {
                ids_or_names(&format)
            } else {
                Prov::Table { id: 3, dangling }
            }
        }
        ["history"] | ["image", "history"] if quiet => Prov::Ids { dangling: false },
        ["build"] | ["image" | "builder" | "buildx", "build"] if quiet => {
            Prov::Ids { dangling: false }
        }
        ["inspect"] | ["image", "inspect"] => {
            let format = option_value(&["--format", "-f"]).join(" ");
            ids_or_names(&format)
        }
        _ => Prov::Unknown,
    }
}

/// Whether an awk program prints field `n` (`$3`, not `$30`).
fn prints_field(program: &str, n: usize) -> bool {
    let field = format!("${n}");
    program
        .match_indices(&field)
        .any(|(at, _)| !program[at + field.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The field `cut` selects (`-f3`, `-f 3`, `--fields=3`), when it is one field.
fn cut_field(lits: &[&str]) -> Option<usize> {
    lits.iter().enumerate().find_map(|(i, l)| {
        let value = if *l == "-f" || *l == "--fields" {
            lits.get(i + 1).copied()?
        } else {
            l.strip_prefix("--fields=").or_else(|| l.strip_prefix("-f"))?
        };
        value.parse().ok()
    })
}

/// What a static operand holds.
fn literal_prov(lit: &str) -> Prov {
    if id_like(lit).is_some() {
        Prov::Ids { dangling: false }
    } else if Reference::parse(lit).is_ok() {
        Prov::Name
    } else {
        Prov::Unknown
    }
}

fn merge(a: Prov, b: Prov) -> Prov {
    match (a, b) {
        (Prov::Ids { dangling: x }, Prov::Ids { dangling: y }) => Prov::Ids { dangling: x && y },
        (Prov::Unknown, _) | (_, Prov::Ids { .. }) => b,
        _ => a,
    }
}

fn variable_name<'s>(cx: &'s Cx<'_>, node: Node<'_>) -> Option<&'s str> {
    let mut cursor = node.walk();
    let name = node
        .named_children(&mut cursor)
        .find(|c| matches!(c.kind(), "variable_name" | "special_variable_name"));
    name.map(|n| cx.text(n))
}

/// A bare word with its backslash escapes removed.
fn unescape_word(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                if next != '\n' {
                    out.push(next);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The content of a double-quoted string: only `\"`, `\\`, `\$` and `` \` `` are escapes.
fn unescape_dquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The inside of a quoted word as a snippet of its own: `'…'` verbatim, `"…"` with its escapes
/// removed; the byte map keeps pointing into the original file.
fn quoted_body(cx: &Cx<'_>, node: Node<'_>) -> Snippet {
    let range = node.byte_range();
    let text = cx.text(node);
    let mut out = Snippet::new();
    match node.kind() {
        "raw_string" if text.len() >= 2 => out.extend_from(cx.snip, range.start + 1..range.end - 1),
        "string" if text.len() >= 2 => {
            let (start, end) = (range.start + 1, range.end - 1);
            let bytes = cx.src.as_bytes();
            let mut i = start;
            let mut from = start;
            while i < end {
                if bytes[i] == b'\\'
                    && i + 1 < end
                    && matches!(bytes[i + 1], b'"' | b'\\' | b'$' | b'`')
                {
                    out.extend_from(cx.snip, from..i);
                    from = i + 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            out.extend_from(cx.snip, from..end);
        }
        _ => out.extend_from(cx.snip, range),
    }
    out
}

/// An unquoted heredoc's body as the shell hands it on: `\$`, `` \` `` and `\\` lose their
/// backslash, `\` before a line break joins the lines; the map keeps pointing into the file.
fn unescape_heredoc(cx: &Cx<'_>, range: Range<usize>) -> Snippet {
    let bytes = cx.src.as_bytes();
    let mut out = Snippet::new();
    let (mut i, mut from) = (range.start, range.start);
    while i < range.end {
        if bytes[i] == b'\\'
            && i + 1 < range.end
            && matches!(bytes[i + 1], b'$' | b'`' | b'\\' | b'\n')
        {
            out.extend_from(cx.snip, from..i);
            from = if bytes[i + 1] == b'\n' { i + 2 } else { i + 1 };
            i += 2;
        } else {
            i += 1;
        }
    }
    out.extend_from(cx.snip, from..range.end);
    out
}

/// The string literals of an awk call starting after `system(` at `open`, joined; the other
/// parts of the concatenation become an unknown word.
fn awk_call_body(program: &Snippet, text: &str, open: usize) -> Snippet {
    let bytes = text.as_bytes();
    let mut out = Snippet::new();
    let mut i = open;
    let mut depth = 1;
    while i < bytes.len() && depth > 0 {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                out.extend_from(program, start..end);
                i += 1;
                continue;
            }
            b'(' => depth += 1,
            b')' => depth -= 1,
            b' ' | b'\t' => {}
            _ => {
                // A field or variable: stands for one unknown word.
                if !out.text().ends_with("${__awk}") {
                    out.push_synthetic("${__awk}", program.origin(i));
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_in(text: &str) -> Vec<(RuleId, usize)> {
        let mut a = Analyzer::new();
        a.analyze(&Snippet::identity(text));
        a.into_hits().into_iter().map(|h| (h.rule, h.start)).collect()
    }

    #[test]
    fn save_by_literal_id_points_at_the_operand() {
        let text = "docker save -o a.tar 0123456789ab\n";
        assert_eq!(rules_in(text), [(RuleId::Ig001, 21)]);
    }

    #[test]
    fn variables_are_judged_by_assignment() {
        assert_eq!(rules_in("ids=$(docker images -q)\ndocker save $ids\n").len(), 1);
        assert!(rules_in("ids=app:1\ndocker save $ids\n").is_empty());
    }

    #[test]
    fn c_flags() {
        assert!(is_c_flag(Some("-ec")));
        assert!(!is_c_flag(Some("--command")));
    }

    #[test]
    fn merge_prefers_ids() {
        assert_eq!(merge(Prov::Name, Prov::Ids { dangling: false }), Prov::Ids { dangling: false });
        assert_eq!(merge(Prov::Unknown, Prov::Name), Prov::Name);
    }

    #[test]
    fn a_rejected_line_hides_no_neighbour() {
        let text = "docker rmi -f a\ncase $x in\ndocker rmi -f b\nfor i in 1; do\n  docker rmi -f c\ndone\n";
        let starts: Vec<usize> = rules_in(text).into_iter().map(|(_, at)| at).collect();
        assert_eq!(starts, [0, 27, 60]);
    }
}
