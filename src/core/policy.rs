//! What may be removed, and why not: a pure function of a snapshot of the daemon and the rules.
//! It never acts, never reads the clock and never talks to the daemon; `commands/` gathers the
//! snapshot, applies the plan and records it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::core::image::{ContainerInfo, ImageId, ImageInfo};

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

/// Why an image is kept.
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
    /// The daemon refused the removal, in its own words (child images, …).
    Daemon(String),
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
            KeepReason::Daemon(msg) => write!(f, "the daemon refused: {msg}"),
        }
    }
}

/// The decision for one candidate.
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
            Decision { candidate, verdict }
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
    let users: BTreeSet<(String, String)> = snapshot
        .containers
        .iter()
        .filter(|k| k.image_id == c.image)
        .map(|k| (k.name.clone(), k.state.clone()))
        .collect();
    if !users.is_empty() {
        return Verdict::Keep(KeepReason::InUse(users.into_iter().collect()));
    }
    if !info.repo_tags.is_empty() {
        return Verdict::Keep(KeepReason::StillTagged(info.repo_tags.clone()));
    }
    Verdict::Remove
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

/// Glob match of a reference against a pattern: `*` any run of characters, `?` one.
pub fn matches_pattern(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ImageId {
        ImageId::new(format!("sha256:{s}"))
    }

    fn image(s: &str, tags: &[&str]) -> (ImageId, Option<ImageInfo>) {
        (
            id(s),
            Some(ImageInfo {
                id: id(s),
                repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
                created: None,
                size: Some(1),
            }),
        )
    }

    fn container(name: &str, img: &str, state: &str) -> ContainerInfo {
        ContainerInfo {
            id: format!("c-{name}"),
            name: name.into(),
            image_id: id(img),
            state: state.into(),
        }
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
}
