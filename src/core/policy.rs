//! What may be removed, and why not: pure functions of the facts the daemon gave and the rules.
//! Nothing here acts, reads the clock or talks to the daemon; `crate::flow` gathers the facts,
//! carries out the verdicts and records them.
//!
//! One vocabulary for every command: a [`Verdict`] is remove, keep (with a [`KeepReason`]) or
//! gone; `build`, `load`, `prune`, `rmi` and `watch` all speak it, and the ledger stores the
//! reason's [`KeepReason::kind`] in a column of its own.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::core::event::ReasonKind;
use crate::core::image::{ContainerInfo, ImageId, ImageInfo};

/// `[ref:removal-grace]` How long an image that just became unreachable (its tag moved, or its
/// last child was removed) is left before imgguard removes it: a `docker create` that resolved
/// the tag, or a legacy build that picked the image as its cache, a moment earlier still reaches
/// it within this time and then holds it (a container, a child image), which the daemon's own
/// conflict check sees.
pub const REMOVAL_GRACE_MS: i64 = 2_000;

/// An image that a tag just moved away from, so that it may have become dangling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The image the tag left.
    pub image: ImageId,
    /// The tags that left it, each with the image it moved to.
    pub left_by: Vec<(String, ImageId)>,
}

/// The facts a decision needs, gathered in as few calls as possible.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Each candidate's inspect result (`None`: the daemon no longer has it).
    pub images: HashMap<ImageId, Option<ImageInfo>>,
    /// Every container, running or stopped.
    pub containers: Vec<ContainerInfo>,
}

/// The settings that steer removal.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Remove nothing (`--keep-previous` or the config).
    pub keep_previous: bool,
    /// Reference patterns never removed (`*`, `?` wildcards).
    pub protect: Vec<String>,
}

/// Why an image is kept. One type for every command: the words are the same wherever they are
/// printed, and [`KeepReason::kind`] is what the ledger stores to query by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// Removal is turned off.
    KeepPrevious,
    /// A protect pattern matches one of the tags it carried.
    Protected { pattern: String, tag: String },
    /// Containers (running or not) were created from it: `(name, state)`.
    InUse(Vec<(String, String)>),
    /// It still carries these tags.
    StillTagged(Vec<String>),
    /// It was tagged between the plan and the removal.
    TaggedMeanwhile(Vec<String>),
    /// The daemon refused the removal, in its own words (child images, …).
    Daemon(String),
    /// Other images are built on it.
    HasChildren,
    /// The ledger cannot explain it and `--unknown` was not given.
    Unknown,
    /// It became dangling less than `--min-age` ago.
    TooYoung { age_ms: i64, min_ms: i64 },
    /// One of the `--keep N` most recent images of a tag.
    Rollback { tag: String, keep: usize },
    /// Another imgguard build was running (`[ref:build-lock]`): the removal is deferred to the
    /// next build or prune.
    BuildRunning,
}

impl KeepReason {
    /// The kind of the reason, stored in the ledger's `reason_kind` column.
    pub fn kind(&self) -> ReasonKind {
        match self {
            KeepReason::KeepPrevious => ReasonKind::KeepPrevious,
            KeepReason::Protected { .. } => ReasonKind::Protected,
            KeepReason::InUse(_) => ReasonKind::InUse,
            KeepReason::StillTagged(_) => ReasonKind::StillTagged,
            KeepReason::TaggedMeanwhile(_) => ReasonKind::TaggedMeanwhile,
            KeepReason::Daemon(_) => ReasonKind::DaemonRefused,
            KeepReason::HasChildren => ReasonKind::HasChildren,
            KeepReason::Unknown => ReasonKind::Unknown,
            KeepReason::TooYoung { .. } => ReasonKind::TooYoung,
            KeepReason::Rollback { .. } => ReasonKind::Rollback,
            KeepReason::BuildRunning => ReasonKind::Deferred,
        }
    }

    /// Whether the rules kept it (a setting said so) rather than something holding it.
    pub fn by_rule(&self) -> bool {
        matches!(
            self,
            KeepReason::KeepPrevious
                | KeepReason::Protected { .. }
                | KeepReason::Unknown
                | KeepReason::TooYoung { .. }
                | KeepReason::Rollback { .. }
        )
    }

    /// `InUse` from containers, sorted and without duplicates.
    pub fn in_use<'a>(containers: impl IntoIterator<Item = &'a ContainerInfo>) -> KeepReason {
        let users: BTreeSet<(String, String)> =
            containers.into_iter().map(|k| (k.name.clone(), k.state.clone())).collect();
        KeepReason::InUse(users.into_iter().collect())
    }
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::KeepPrevious => f.write_str("removal turned off (keep-previous)"),
            KeepReason::Protected { pattern, tag } => {
                write!(f, "protected: {tag} matches pattern `{pattern}`")
            }
            KeepReason::InUse(users) => {
                let list: Vec<String> =
                    users.iter().map(|(name, state)| format!("{name} ({state})")).collect();
                let noun = if users.len() == 1 { "container" } else { "containers" };
                write!(f, "used by {noun} {}", list.join(", "))
            }
            KeepReason::StillTagged(tags) => write!(f, "still tagged {}", tags.join(", ")),
            KeepReason::TaggedMeanwhile(tags) => {
                write!(f, "tagged meanwhile as {}", tags.join(", "))
            }
            KeepReason::Daemon(msg) => write!(f, "the daemon refused: {msg}"),
            KeepReason::HasChildren => f.write_str("has child images"),
            KeepReason::Unknown => {
                f.write_str("unknown to imgguard (`prune --unknown` removes it)")
            }
            KeepReason::TooYoung { age_ms, min_ms } => write!(
                f,
                "younger than --min-age {} (dangling for {})",
                format_duration(*min_ms),
                format_duration(*age_ms)
            ),
            KeepReason::Rollback { tag, keep } => {
                write!(f, "kept for rollback: one of the {keep} most recent images of {tag}")
            }
            KeepReason::BuildRunning => f.write_str(
                "an imgguard build is running: removal deferred to the next build or prune",
            ),
        }
    }
}

/// A duration for people, to the minute (to the second under a minute): `1h 5m`, `40s`.
pub fn format_duration(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    let shown = if secs >= 60 { secs - secs % 60 } else { secs };
    humantime::format_duration(std::time::Duration::from_secs(shown)).to_string()
}

/// Parses a duration as people write it (`90s`, `30m`, `1h`, `2d`, `1w`, `1h 30m`; a bare `0`)
/// into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let d = humantime::parse_duration(s)
        .map_err(|_| format!("invalid duration `{s}` (use e.g. 90s, 30m, 1h, 2d)"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("duration `{s}` is too long"))
}

/// What is to become (or became) of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing holds it: remove (never forced).
    Remove,
    /// Keep it, for this reason.
    Keep(KeepReason),
    /// The daemon no longer has it.
    Gone,
}

/// A candidate and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The candidate.
    pub candidate: Candidate,
    /// What to do with it.
    pub verdict: Verdict,
    /// Its size in bytes, as the daemon reported it when the decision was made.
    pub size: Option<i64>,
}

/// Anything that carries a verdict about one image: the one removal path
/// (`crate::flow::apply`) takes any of them, so build, load and prune remove the same way.
pub trait Decided {
    /// The image concerned.
    fn image(&self) -> &ImageId;
    /// What is to become of it.
    fn verdict(&self) -> &Verdict;
    /// Replaces the verdict with what really happened.
    fn set_verdict(&mut self, verdict: Verdict);
    /// The tag it is known by, for the ledger.
    fn tag(&self) -> Option<&str>;
    /// Why it was removed, when it was (`superseded: app:v1 → sha256:…`).
    fn removal_reason(&self) -> String;
    /// Its size in bytes, when known: recorded with its fate, so that the fleet ledger can say
    /// how many bytes the `<none>` images it keeps hold.
    fn size(&self) -> Option<i64> {
        None
    }
}

impl Decided for Decision {
    fn image(&self) -> &ImageId {
        &self.candidate.image
    }
    fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    fn set_verdict(&mut self, verdict: Verdict) {
        self.verdict = verdict;
    }
    fn tag(&self) -> Option<&str> {
        self.candidate.left_by.first().map(|(t, _)| t.as_str())
    }
    fn removal_reason(&self) -> String {
        let by: Vec<String> =
            self.candidate.left_by.iter().map(|(t, by)| format!("{t} → {}", by.short())).collect();
        format!("superseded: {}", by.join(", "))
    }
    fn size(&self) -> Option<i64> {
        self.size
    }
}

/// What the final look before a removal says: the image is gone, was tagged meanwhile, or may
/// still go. Pure, so that every caller re-checks the same way.
pub fn recheck(now: Option<&ImageInfo>) -> Option<Verdict> {
    match now {
        None => Some(Verdict::Gone),
        Some(info) if !info.repo_tags.is_empty() => {
            Some(Verdict::Keep(KeepReason::TaggedMeanwhile(info.repo_tags.clone())))
        }
        Some(_) => None,
    }
}

/// Decides, for each candidate, whether it may go. Candidates naming the same image are merged,
/// so an image left by several tags of one build is decided (and removed) once.
pub fn plan(candidates: &[Candidate], snapshot: &Snapshot, rules: &Rules) -> Vec<Decision> {
    let mut merged: Vec<Candidate> = Vec::new();
    for c in candidates {
        match merged.iter_mut().find(|m| m.image == c.image) {
            Some(m) => m.left_by.extend(c.left_by.iter().cloned()),
            None => merged.push(c.clone()),
        }
    }
    merged
        .into_iter()
        .map(|candidate| {
            let verdict = decide(&candidate, snapshot, rules);
            let size = snapshot.images.get(&candidate.image).and_then(|i| i.as_ref()?.size);
            Decision { candidate, verdict, size }
        })
        .collect()
}

fn decide(c: &Candidate, snapshot: &Snapshot, rules: &Rules) -> Verdict {
    let Some(Some(info)) = snapshot.images.get(&c.image) else {
        return Verdict::Gone;
    };
    if rules.keep_previous {
        return Verdict::Keep(KeepReason::KeepPrevious);
    }
    for (tag, _) in &c.left_by {
        if let Some(pattern) = rules.protect.iter().find(|p| matches_pattern(p, tag)) {
            return Verdict::Keep(KeepReason::Protected {
                pattern: pattern.clone(),
                tag: tag.clone(),
            });
        }
    }
    let users: Vec<&ContainerInfo> =
        snapshot.containers.iter().filter(|k| k.image_id == c.image).collect();
    if !users.is_empty() {
        return Verdict::Keep(KeepReason::in_use(users));
    }
    if !info.repo_tags.is_empty() {
        return Verdict::Keep(KeepReason::StillTagged(info.repo_tags.clone()));
    }
    Verdict::Remove
}

/// What became of `id` in words (`removed sha256:…`, `kept sha256:…: reason`), empty when the
/// decisions do not concern it: how build and load report each image they superseded.
pub fn fate_text(decisions: &[Decision], id: &ImageId) -> String {
    match decisions.iter().find(|d| d.candidate.image == *id).map(|d| &d.verdict) {
        Some(Verdict::Remove) => format!("removed {}", id.short()),
        Some(Verdict::Gone) => format!("{} already gone", id.short()),
        Some(Verdict::Keep(reason)) => format!("kept {}: {reason}", id.short()),
        None => String::new(),
    }
}

/// What `imgguard rmi` may do with one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RmiVerdict {
    /// The image keeps other tags: only this tag goes, as `docker rmi` does.
    Untag,
    /// Nothing uses the image: remove it (never forced; the daemon may still refuse).
    Remove,
    /// Containers use it: removing its last name would leave a `<none>` image behind, which is
    /// what `docker rmi -f` does. Refused.
    Refuse(KeepReason),
}

/// Decides `imgguard rmi` for one reference: `by_tag` when the reference is a tag (not an ID),
/// `tags` the image's tags, `users` the containers created from it as `(name, state)`.
pub fn rmi_verdict(by_tag: bool, tags: &[String], users: &[(String, String)]) -> RmiVerdict {
    if by_tag && tags.len() > 1 {
        return RmiVerdict::Untag;
    }
    if !users.is_empty() {
        return RmiVerdict::Refuse(KeepReason::InUse(users.to_vec()));
    }
    RmiVerdict::Remove
}

/// Glob match of a reference against a pattern: `*` any run of characters (`/` included), `?`
/// one. An invalid pattern matches nothing (the configuration is checked when it is read).
pub fn matches_pattern(pattern: &str, text: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(false)
        .build()
        .is_ok_and(|g| g.compile_matcher().is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{container, id, info};

    fn image(s: &str, tags: &[&str]) -> (ImageId, Option<ImageInfo>) {
        (id(s), Some(info(s, tags)))
    }

    fn rebuilt(old: &str, tag: &str) -> Candidate {
        Candidate { image: id(old), left_by: vec![(tag.into(), id("new"))] }
    }

    fn verdicts(snapshot: &Snapshot, rules: &Rules, cands: &[Candidate]) -> Vec<Verdict> {
        plan(cands, snapshot, rules).into_iter().map(|d| d.verdict).collect()
    }

    #[test]
    fn rebuild_leaves_old_id_dangling_and_removable() {
        let snap = Snapshot { images: [image("old", &[])].into(), containers: vec![] };
        assert_eq!(
            verdicts(&snap, &Rules::default(), &[rebuilt("old", "x:v1")]),
            [Verdict::Remove]
        );
    }

    #[test]
    fn stopped_and_running_containers_keep_it() {
        let snap = Snapshot {
            images: [image("old", &[])].into(),
            containers: vec![
                container("web-1", "old", "running"),
                container("job", "old", "exited"),
                container("other", "new", "running"),
            ],
        };
        let v = verdicts(&snap, &Rules::default(), &[rebuilt("old", "x:v1")]);
        let want = KeepReason::InUse(vec![
            ("job".into(), "exited".into()),
            ("web-1".into(), "running".into()),
        ]);
        assert_eq!(v, [Verdict::Keep(want.clone())]);
        assert_eq!(want.to_string(), "used by containers job (exited), web-1 (running)");
    }

    #[test]
    fn another_tag_keeps_it() {
        let snap = Snapshot { images: [image("old", &["x:stable"])].into(), containers: vec![] };
        let v = verdicts(&snap, &Rules::default(), &[rebuilt("old", "x:v1")]);
        assert_eq!(v, [Verdict::Keep(KeepReason::StillTagged(vec!["x:stable".into()]))]);
    }

    #[test]
    fn protect_pattern_keeps_it() {
        let snap = Snapshot { images: [image("old", &[])].into(), containers: vec![] };
        let rules = Rules { keep_previous: false, protect: vec!["db:*".into(), "x:v?".into()] };
        let v = verdicts(&snap, &rules, &[rebuilt("old", "x:v1")]);
        assert_eq!(
            v,
            [Verdict::Keep(KeepReason::Protected { pattern: "x:v?".into(), tag: "x:v1".into() })]
        );
    }

    #[test]
    fn keep_previous_keeps_everything() {
        let snap = Snapshot { images: [image("old", &[])].into(), containers: vec![] };
        let rules = Rules { keep_previous: true, protect: vec![] };
        let v = verdicts(&snap, &rules, &[rebuilt("old", "x:v1")]);
        assert_eq!(v, [Verdict::Keep(KeepReason::KeepPrevious)]);
    }

    #[test]
    fn gone_image_is_gone() {
        let snap = Snapshot { images: [(id("old"), None)].into(), containers: vec![] };
        assert_eq!(verdicts(&snap, &Rules::default(), &[rebuilt("old", "x:v1")]), [Verdict::Gone]);
    }

    #[test]
    fn two_tags_leaving_one_image_decide_once() {
        let snap = Snapshot { images: [image("old", &[])].into(), containers: vec![] };
        let plan =
            plan(&[rebuilt("old", "x:v1"), rebuilt("old", "x:latest")], &snap, &Rules::default());
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].candidate.left_by.len(), 2);
        assert_eq!(plan[0].verdict, Verdict::Remove);
    }

    #[test]
    fn rmi_decisions() {
        let tags = |t: &[&str]| t.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let web = vec![("web".to_string(), "running".to_string())];
        assert_eq!(rmi_verdict(true, &tags(&["a:1", "a:2"]), &web), RmiVerdict::Untag);
        assert_eq!(
            rmi_verdict(true, &tags(&["a:1"]), &web),
            RmiVerdict::Refuse(KeepReason::InUse(web.clone()))
        );
        assert_eq!(
            rmi_verdict(false, &tags(&["a:1", "a:2"]), &web),
            RmiVerdict::Refuse(KeepReason::InUse(web.clone()))
        );
        assert_eq!(rmi_verdict(true, &tags(&["a:1"]), &[]), RmiVerdict::Remove);
        assert_eq!(rmi_verdict(false, &[], &[]), RmiVerdict::Remove);
    }

    #[test]
    fn glob() {
        assert!(matches_pattern("*", "anything:v1"));
        assert!(matches_pattern("app:*", "app:v1"));
        assert!(matches_pattern("*:prod", "ghcr.io/o/app:prod"));
        assert!(matches_pattern("a*b*c", "aXXbYYc"));
        assert!(!matches_pattern("app:*", "apps:v1"));
        assert!(!matches_pattern("app:v?", "app:v10"));
        assert!(matches_pattern("app:v??", "app:v10"));
    }

    #[test]
    fn durations_as_people_write_them() {
        const HOUR: i64 = 3_600_000;
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("1h"), Ok(HOUR));
        assert_eq!(parse_duration("2d"), Ok(48 * HOUR));
        assert_eq!(parse_duration("1h 30m"), Ok(HOUR + 1_800_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(90_061_000), "1day 1h 1m");
        assert_eq!(format_duration(5 * 60_000 + 7_000), "5m");
        assert_eq!(format_duration(40_000), "40s");
        assert_eq!(format_duration(-5), "0s");
    }

    #[test]
    fn every_keep_reason_has_a_kind_and_words() {
        let all = [
            KeepReason::KeepPrevious,
            KeepReason::Protected { pattern: "a:*".into(), tag: "a:1".into() },
            KeepReason::InUse(vec![("web".into(), "running".into())]),
            KeepReason::StillTagged(vec!["a:2".into()]),
            KeepReason::TaggedMeanwhile(vec!["a:3".into()]),
            KeepReason::Daemon("conflict".into()),
            KeepReason::HasChildren,
            KeepReason::Unknown,
            KeepReason::TooYoung { age_ms: 60_000, min_ms: 3_600_000 },
            KeepReason::Rollback { tag: "a:1".into(), keep: 2 },
        ];
        let kinds: std::collections::HashSet<ReasonKind> =
            all.iter().map(KeepReason::kind).collect();
        assert_eq!(kinds.len(), all.len(), "one kind per reason");
        assert_eq!(all[4].to_string(), "tagged meanwhile as a:3");
        assert_eq!(all[8].to_string(), "younger than --min-age 1h (dangling for 1m)");
        assert!(all[0].by_rule() && !all[2].by_rule());
    }
}
