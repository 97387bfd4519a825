//! `imgguard build`: `docker build` with the lineage recorded and the image the rebuild left
//! dangling removed (never forced), or kept with the reason said.
//!
//! Flow: observe each tag → run `docker build --iidfile` (argv passed through, stdio inherited;
//! the engine identity, git state and Dockerfile hash are gathered while it runs) → observe the
//! new ID and the tags again → plan (pure) → remove, each removal checked once more just before
//! → record everything in one ledger transaction → one line per tag.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use futures_util::future::join_all;
use sha2::{Digest, Sha256};

use super::trace;
use crate::cli;
use crate::config::Config;
use crate::core::build_args::{self, BuildArgs};
use crate::core::event::{self as ledger, Event, EventKind, OUTCOME_NOT_IN_DAEMON};
use crate::core::github::BuildResult;
use crate::core::policy::{self, Candidate, Decision, KeepReason, Rules, Snapshot, Verdict};
use crate::core::reference::Tag;
use crate::engine::{Engine, ImageId, ImageInfo, Removal};
use crate::error::{Error, Outcome};
use crate::git::{self, GitState};
use crate::ledger::sqlite::{self as store, Store};

/// Runs the command.
pub fn run(args: &cli::BuildArgs, config: &Config, cwd: &Path) -> Result<Outcome, Error> {
    // Everything that can be wrong with the input is found before docker runs.
    let parsed = build_args::parse(&args.docker_args).map_err(|e| Error::Usage(e.to_string()))?;
    let rules = Rules {
        keep_previous: args.keep_previous || config.file.keep_previous,
        protect: config.file.protect.clone(),
    };
    super::runtime()?.block_on(build(&args.docker_args, &parsed, &rules, cwd))
}

/// What became of one tag (shared with the GitHub report).
use crate::core::github::TagChange as TagReport;

async fn build(
    raw: &[OsString],
    parsed: &BuildArgs,
    rules: &Rules,
    cwd: &Path,
) -> Result<Outcome, Error> {
    trace("args and config read");
    let tags: Vec<&str> = parsed.tags.iter().map(Tag::as_str).collect();
    // 1. Where each tag points now (404 = nowhere). An existing ledger is opened meanwhile; a new
    //    one only once the daemon has answered, so that a failed call creates nothing.
    let ledger_path = store::default_path(&super::env_var)?;
    let existing = ledger_path.exists().then(|| {
        let path = ledger_path.clone();
        blocking(move || Store::open(&path))
    });
    let (opened, observed) = tokio::join!(
        async {
            match existing {
                Some(open) => Some(open.await),
                None => None,
            }
        },
        async {
            let engine = super::connect().await?;
            trace("connected");
            let before = inspect_all(&engine, tags.iter().copied()).await?;
            trace("tags inspected before");
            Ok::<_, Error>((engine, before))
        }
    );
    let (engine, before) = observed?;
    let store = match opened {
        Some(store) => store?,
        None => Store::open(&ledger_path)?,
    };
    trace("ledger open");

    // 2. docker build, with the facts that do not depend on it gathered meanwhile.
    let iid = IidFile::new(parsed.iidfile.as_deref())?;
    let context_dir = local_context(parsed.context.as_deref(), cwd);
    let dockerfile = dockerfile_path(parsed, context_dir.as_deref(), cwd);
    let mut cmd = tokio::process::Command::new("docker");
    cmd.arg("build");
    if parsed.iidfile.is_none() {
        cmd.arg("--iidfile").arg(iid.path());
    }
    cmd.args(raw).stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    for (name, value) in engine.endpoint().child_env() {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let mut child =
        cmd.spawn().map_err(|e| Error::Spawn { program: "docker".into(), source: e })?;
    trace("docker build started");
    let git_dir = context_dir.clone().unwrap_or_else(|| cwd.to_path_buf());
    let owned_tags: Vec<String> = tags.iter().map(|t| (*t).to_string()).collect();
    let (status, identity, git_state, dockerfile_sha) = tokio::join!(
        async {
            let s = child.wait().await;
            trace("docker build ended");
            s
        },
        async {
            // The ledger's view of these tags is read while docker works.
            let identity = engine.identity().await?;
            trace("engine identity read");
            let (id, wanted) = (identity.id.clone(), owned_tags);
            let (store, known) = blocking(move || {
                let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
                let known = store.events(Some(&id), &refs);
                (store, known)
            })
            .await;
            trace("ledger read");
            Ok::<_, Error>((identity, store, known?))
        },
        blocking(move || {
            let g = git::state(&git_dir);
            trace("git state read");
            g
        }),
        blocking(move || dockerfile.and_then(|p| sha256_file(&p))),
    );
    let status = status.map_err(|e| Error::Spawn { program: "docker".into(), source: e })?;
    if !status.success() {
        // A failed build changes nothing: no ledger entry, nothing removed.
        return Ok(Outcome::Child(exit_code(status)));
    }
    let (identity, mut store, known) = identity?;
    let now = super::now_ms();

    // 3. The new ID, and where the tags point after the build.
    let new_id = iid.read()?;
    let Some(new_id) = new_id else {
        note("docker wrote no image ID (an --output that exports files?): nothing recorded");
        return Ok(Outcome::Child(0));
    };
    let after = inspect_all(&engine, tags.iter().copied()).await?;
    // A tag that points at the new ID proves the daemon has it; else ask for the ID itself.
    let in_daemon = after.iter().flatten().any(|i| i.id == new_id)
        || engine.inspect(new_id.as_str()).await?.is_some();
    trace("new image and tags inspected after");

    let base = |kind: EventKind| {
        let mut e = Event::new(&identity.id, now, kind);
        e.git_commit = git_state.as_ref().map(|g: &GitState| g.commit.clone());
        e.git_dirty = git_state.as_ref().map(|g| g.dirty);
        e.dockerfile_sha256.clone_from(&dockerfile_sha);
        e.build_arg_names.clone_from(&parsed.build_arg_names);
        e
    };
    let mut events = Vec::new();

    if !in_daemon {
        // buildx with a container driver and no --load, or a push-only build.
        for tag in &tags {
            let mut e = base(EventKind::Build);
            e.tag = Some((*tag).to_string());
            e.image_id = Some(new_id.to_string());
            e.outcome = Some(OUTCOME_NOT_IN_DAEMON.into());
            e.reason = Some("the built image is not in the daemon".into());
            events.push(e);
        }
        store.append(Some((&identity.id, &identity.name, &engine.endpoint().host)), &events)?;
        note(&format!(
            "{} is not in the daemon (buildx without --load, or push-only): nothing to remove",
            new_id.short()
        ));
        let reports: Vec<TagReport> = tags
            .iter()
            .zip(&before)
            .map(|(tag, b)| TagReport {
                tag: (*tag).to_string(),
                before: b.as_ref().map(|i| i.id.clone()),
                after: None,
            })
            .collect();
        super::github::publish(&BuildResult {
            image_id: &new_id,
            tags: &reports,
            decisions: &[],
            in_daemon: false,
        })?;
        return Ok(Outcome::Child(0));
    }

    let mut reports = Vec::new();
    let mut candidates = Vec::new();
    for ((tag, before), after) in tags.iter().zip(&before).zip(&after) {
        let before_id = before.as_ref().map(|i| i.id.clone());
        let after_id = after.as_ref().map(|i| i.id.clone());
        // Reconcile: a tag the ledger tracks but finds elsewhere was moved by plain docker.
        if let Some(recorded) = ledger::current(&known, &identity.id, tag) {
            if before_id.as_ref().map(ImageId::as_str) != Some(recorded) {
                let mut e = Event::new(&identity.id, now, EventKind::MovedOutside);
                e.tag = Some((*tag).to_string());
                e.image_id = before_id.as_ref().map(ToString::to_string);
                e.previous_id = Some(recorded.to_string());
                e.reason = Some("moved outside imgguard".into());
                events.push(e);
            }
        }
        let mut e = base(EventKind::Build);
        e.tag = Some((*tag).to_string());
        e.image_id = Some(new_id.to_string());
        e.previous_id = before_id.as_ref().map(ToString::to_string);
        events.push(e);
        if let Some(prev) = &before_id {
            if *prev != new_id {
                candidates.push(Candidate {
                    image: prev.clone(),
                    left_by: vec![((*tag).to_string(), new_id.clone())],
                });
            }
        }
        // Another build moved the tag on while ours ran: our image is superseded already.
        if let Some(other) = after_id.as_ref().filter(|a| **a != new_id) {
            let mut e = Event::new(&identity.id, now, EventKind::MovedOutside);
            e.tag = Some((*tag).to_string());
            e.image_id = Some(other.to_string());
            e.previous_id = Some(new_id.to_string());
            e.reason = Some("moved by another build while this one ran".into());
            events.push(e);
            candidates.push(Candidate {
                image: new_id.clone(),
                left_by: vec![((*tag).to_string(), other.clone())],
            });
        }
        reports.push(TagReport { tag: (*tag).to_string(), before: before_id, after: after_id });
    }

    // 4. Plan on a fresh look, apply, record.
    let decisions = if candidates.is_empty() {
        Vec::new()
    } else {
        let snapshot = snapshot(&engine, &candidates).await?;
        let plan = policy::plan(&candidates, &snapshot, rules);
        apply(&engine, plan).await?
    };
    trace("plan applied");
    for d in &decisions {
        events.push(fate_event(&identity.id, now, d));
    }
    store.append(Some((&identity.id, &identity.name, &engine.endpoint().host)), &events)?;
    trace("ledger written");
    print_reports(&reports, &new_id, &decisions);
    super::github::publish(&BuildResult {
        image_id: &new_id,
        tags: &reports,
        decisions: &decisions,
        in_daemon: true,
    })?;
    Ok(Outcome::Child(0))
}

async fn inspect_all<'a>(
    engine: &Engine,
    refs: impl Iterator<Item = &'a str>,
) -> Result<Vec<Option<ImageInfo>>, Error> {
    join_all(refs.map(|r| engine.inspect(r)))
        .await
        .into_iter()
        .map(|r| r.map_err(Error::from))
        .collect()
}

/// The facts the policy needs: each candidate inspected, and one list of all containers.
pub(crate) async fn snapshot(engine: &Engine, candidates: &[Candidate]) -> Result<Snapshot, Error> {
    let ids: Vec<&ImageId> = candidates.iter().map(|c| &c.image).collect();
    let (infos, containers) =
        tokio::join!(inspect_all(engine, ids.iter().map(|i| i.as_str())), engine.containers());
    let images: HashMap<ImageId, Option<ImageInfo>> =
        ids.into_iter().cloned().zip(infos?).collect();
    Ok(Snapshot { images, containers: containers? })
}

/// Carries out a plan: each removal looks once more just before it, and is never forced. A
/// refusal from the daemon is a "kept" with the daemon's words; a 404 means someone else removed
/// it first.
pub(crate) async fn apply(engine: &Engine, plan: Vec<Decision>) -> Result<Vec<Decision>, Error> {
    let mut out = Vec::with_capacity(plan.len());
    for mut d in plan {
        if d.verdict == Verdict::Remove {
            d.verdict = match engine.inspect(d.candidate.image.as_str()).await? {
                None => Verdict::Gone,
                Some(info) if !info.repo_tags.is_empty() => {
                    Verdict::Keep(KeepReason::StillTagged(info.repo_tags))
                }
                Some(_) => match engine.remove(&d.candidate.image).await? {
                    Removal::Removed { .. } => Verdict::Remove,
                    Removal::Conflict(msg) => Verdict::Keep(KeepReason::Daemon(msg)),
                    Removal::Gone => Verdict::Gone,
                },
            };
        }
        out.push(d);
    }
    Ok(out)
}

/// The ledger event that records what became of a candidate.
pub(crate) fn fate_event(engine: &str, now: i64, d: &Decision) -> Event {
    let (kind, outcome, reason) = match &d.verdict {
        Verdict::Remove => {
            let by: Vec<String> =
                d.candidate.left_by.iter().map(|(t, by)| format!("{t} → {}", by.short())).collect();
            (EventKind::Removed, "removed", format!("superseded: {}", by.join(", ")))
        }
        Verdict::Gone => (EventKind::Removed, "gone", "already removed by someone else".into()),
        Verdict::Keep(reason) => (EventKind::Kept, "kept", reason.to_string()),
    };
    let mut e = Event::new(engine, now, kind);
    e.tag = d.candidate.left_by.first().map(|(t, _)| t.clone());
    e.image_id = Some(d.candidate.image.to_string());
    e.outcome = Some(outcome.into());
    e.reason = Some(reason);
    e
}

/// What became of `id` in words (`removed sha256:…`, `kept sha256:…: reason`), empty when the
/// plan did not concern it. Shared by every command that applies a removal plan.
pub(crate) fn fate_text(decisions: &[Decision], id: &ImageId) -> String {
    match decisions.iter().find(|d| d.candidate.image == *id).map(|d| &d.verdict) {
        Some(Verdict::Remove) => format!("removed {}", id.short()),
        Some(Verdict::Gone) => format!("{} already gone", id.short()),
        Some(Verdict::Keep(reason)) => format!("kept {}: {reason}", id.short()),
        None => String::new(),
    }
}

fn print_reports(reports: &[TagReport], new_id: &ImageId, decisions: &[Decision]) {
    let fate = |id: &ImageId| fate_text(decisions, id);
    let mut err = std::io::stderr().lock();
    for r in reports {
        let line = match &r.before {
            None => format!("{}  (new) → {}", r.tag, new_id.short()),
            Some(b) if b == new_id => format!("{}  {}  unchanged", r.tag, b.short()),
            Some(b) => format!("{}  {} → {}  {}", r.tag, b.short(), new_id.short(), fate(b)),
        };
        let _ = writeln!(err, "imgguard: {line}");
        if let Some(a) = r.after.as_ref().filter(|a| *a != new_id) {
            let _ = writeln!(
                err,
                "imgguard: {}  moved on to {} by another build meanwhile  {}",
                r.tag,
                a.short(),
                fate(new_id)
            );
        }
    }
}

fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "imgguard: {msg}");
}

/// The exit code docker ended with (128 + signal number when killed, as shells report it).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(1))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The build context as a local directory, when it is one (not `-`, not a URL).
fn local_context(context: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    let c = context?;
    if c == "-" || c.contains("://") || c.starts_with("git@") || c.starts_with("github.com/") {
        return None;
    }
    let p = cwd.join(c);
    p.is_dir().then_some(p)
}

/// The Dockerfile docker will read: `-f` relative to the working directory, else
/// `<context>/Dockerfile`; none for stdin.
fn dockerfile_path(parsed: &BuildArgs, context: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
    match parsed.dockerfile.as_deref() {
        Some("-") => None,
        Some(f) => Some(cwd.join(f)),
        None => context.map(|c| c.join("Dockerfile")),
    }
}

fn sha256_file(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(hex::encode(Sha256::digest(bytes)))
}

/// The file docker writes the new image ID to: ours (a temporary file, removed on drop) unless
/// the user asked for one.
struct IidFile {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl IidFile {
    fn new(user: Option<&str>) -> Result<IidFile, Error> {
        if let Some(p) = user {
            return Ok(IidFile { path: PathBuf::from(p), _temp: None });
        }
        let dir = tempfile::Builder::new()
            .prefix("imgguard-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        Ok(IidFile { path: dir.path().join("iid"), _temp: Some(dir) })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Option<ImageId>, Error> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(ImageId::new(s.trim()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }
}
