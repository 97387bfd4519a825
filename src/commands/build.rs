//! `imgguard build`: `docker build` with the lineage recorded and the image the rebuild left
//! dangling removed (never forced), or kept with the reason said.
//!
//! Observe each tag → run `docker build --iidfile` (argv passed through, stdio inherited; the
//! engine identity, the ledger's view of the tags, git state and the Dockerfile's hash are
//! gathered while it runs) → observe the new ID and the tags again → plan (pure) → apply → record
//! in one transaction → one line per tag on stderr (and GitHub's outputs inside a workflow).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use crate::core::build::{self, TagChange};
use crate::core::build_args::BuildArgs;
use crate::core::event::{self, BuildFacts, Event, Outcome as EventOutcome, ReasonKind, Recorded};
use crate::core::github::BuildResult;
use crate::core::image::{EngineIdentity, ImageId};
use crate::core::policy::{self, Decision};
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::flow::{apply, observe, record::Record};
use crate::host::{self, trace};
use crate::ledger::Ledger;
use crate::settings::BuildSettings;
use crate::ui::{self, github};

/// Runs the command.
pub fn run(settings: &BuildSettings, cwd: &Path) -> Result<Outcome, Error> {
    let runtime = host::runtime()?;
    let outcome = runtime.block_on(build(settings, cwd));
    // Its blocking threads (ledger open, git state, Dockerfile hash) are done: the process ends
    // without waiting for them to wind down.
    runtime.shutdown_background();
    trace("runtime shut down");
    outcome
}

async fn build(s: &BuildSettings, cwd: &Path) -> Result<Outcome, Error> {
    trace("args and config read");
    // Caught from the start: a SIGINT or SIGTERM that arrives before docker runs is passed on to
    // docker the moment it starts, so the run ends recorded rather than half-way.
    let signals = host::Signals::catch();
    let tags: Vec<String> = s.parsed.tags.iter().map(ToString::to_string).collect();
    // Before docker runs, so that a ledger that cannot be used stops the build (exit 2) before
    // it changes anything; a new one is made only once the daemon has answered.
    let existing = host::existing_ledger()?;
    trace("ledger open");
    let engine = observe::connect().await?;
    trace("connected");
    let mut started = Started::docker(&engine, &s.docker_args, &s.parsed, cwd)?;
    // `[ref:intent-first]` The tags are looked at and the intent recorded while docker starts.
    let mut run = match begin(engine, existing, &tags).await {
        Ok(run) => run,
        Err(e) => {
            let _ = wait_passing_signals(signals, &mut started.child).await;
            return Err(e);
        }
    };
    let built = while_docker(&run, signals, started, &s.parsed, &tags).await?;
    let Built { known, pending, dead, facts, iid, status, signalled } = built;
    if !status.success() {
        return ended_early(run, &tags, &facts, status, signalled).await;
    }
    let now = host::now_ms();
    let mut record = Record::new(&run.identity, now);
    record.push(Event::intent_end(&run.identity.id, now, &run.name, EventOutcome::Finished));
    let known = settle(&run, &tags, &dead, known, &mut record).await?;
    let Some(new_id) = iid.read()? else {
        record.commit(run.ledger.as_mut())?;
        ui::note("docker wrote no image ID (an --output that exports files?): nothing recorded");
        return Ok(Outcome::Child(0));
    };
    let (after, in_daemon) = look_after(&run, &tags, &new_id).await?;
    trace("new image and tags inspected after");
    let engine = &run.engine;
    let changes: Vec<TagChange> = tags
        .iter()
        .zip(run.before.clone())
        .zip(after)
        .map(|((tag, before), after)| TagChange { tag: tag.clone(), before, after })
        .collect();
    let id = run.identity.id.clone();
    if !in_daemon {
        record.extend(build::not_in_daemon(&id, now, &new_id, &changes, &facts));
        record.commit(run.ledger.as_mut())?;
        ui::note(format!(
            "{} is not in the daemon (buildx without --load, or push-only): nothing to remove",
            new_id.short()
        ));
        let changes: Vec<TagChange> =
            changes.into_iter().map(|c| TagChange { after: None, ..c }).collect();
        let result =
            BuildResult { image_id: &new_id, tags: &changes, decisions: &[], in_daemon: false };
        publish(s, &result)?;
        return Ok(Outcome::Child(0));
    }
    let planned = build::outcome(&id, now, &new_id, &changes, &known, &facts);
    record.extend(planned.events);
    let decisions = decide_and_apply(engine, &planned.candidates, &s.rules, &mut record).await?;
    trace("plan applied");
    free_deferred(engine, &pending, &mut record).await?;
    record.commit(run.ledger.as_mut())?;
    trace("ledger written");
    print_reports(&changes, &new_id, &decisions);
    let result =
        BuildResult { image_id: &new_id, tags: &changes, decisions: &decisions, in_daemon: true };
    publish(s, &result)?;
    run.ledger.end_with_process();
    Ok(Outcome::Child(0))
}

/// Where the tags point after docker, and whether the daemon has the new image.
async fn look_after(
    run: &Run,
    tags: &[String],
    new_id: &ImageId,
) -> Result<(Vec<Option<ImageId>>, bool), Error> {
    // `[tag:no-move-no-look]` Every tag pointed at the new image before the build (so the daemon
    // has it) and docker tagged it there again: no tag moved, nothing became dangling, and
    // there is nothing to ask the daemon (~0.7 ms after docker ends). A move by someone else
    // after docker's tagging is seen by the next command that looks, as it would be a moment
    // after this inspect.
    if !tags.is_empty() && run.before.iter().all(|b| b.as_ref() == Some(new_id)) {
        return Ok((run.before.clone(), true));
    }
    let after = observe::image_ids(&run.engine, tags).await?;
    // A tag that points at the new ID proves the daemon has it; else ask for the ID itself.
    let in_daemon = after.iter().flatten().any(|i| i == new_id)
        || run.engine.inspect(new_id.as_str()).await?.is_some();
    Ok((after, in_daemon))
}

/// Docker failed (perhaps because imgguard was signalled and passed the signal on): records
/// whatever did happen — a tag docker moved before it ended is a build — and ends the run (`interrupted`
/// when signalled). A plain failure on a fresh machine leaves no ledger behind. Exits with
/// docker's code.
async fn ended_early(
    mut run: Run,
    tags: &[String],
    facts: &BuildFacts,
    status: std::process::ExitStatus,
    signalled: bool,
) -> Result<Outcome, Error> {
    let code = exit_code(status);
    let now = host::now_ms();
    let id = run.identity.id.clone();
    let mut record = Record::new(&run.identity, now);
    let after = observe::image_ids(&run.engine, tags).await?;
    for ((tag, before), after) in tags.iter().zip(&run.before).zip(&after) {
        if let Some(a) = after.as_ref().filter(|a| Some(*a) != before.as_ref()) {
            let b = before.as_ref().map(ImageId::as_str);
            record.push(Event::build(&id, now, tag, a.as_str(), b, facts));
            ui::note(format!("{tag}  moved to {} before docker ended: recorded", a.short()));
        }
    }
    if record.is_empty() && !signalled && run.fresh {
        // A failed build changes nothing; on a fresh machine not even the ledger stays.
        host::discard_new_ledger(run.ledger, run.made_dir);
        return Ok(Outcome::Child(code));
    }
    let end = if signalled { EventOutcome::Interrupted } else { EventOutcome::Finished };
    record.push(Event::intent_end(&id, now, &run.name, end));
    record.commit(run.ledger.as_mut())?;
    Ok(Outcome::Child(code))
}

/// Records what the build runs that were killed did (`[ref:intent-first]`): a tag their docker
/// moved is their build, not a move outside imgguard; then each is `interrupted`. Returns the
/// ledger's view of this build's tags with those events in it.
async fn settle(
    run: &Run,
    tags: &[String],
    dead: &[event::Intent],
    mut known: Vec<Recorded>,
    record: &mut Record,
) -> Result<Vec<Recorded>, Error> {
    if dead.is_empty() {
        return Ok(known);
    }
    // This build's own tags as they were before it; the others as they are now.
    let mut daemon: HashMap<String, Option<String>> = tags
        .iter()
        .zip(&run.before)
        .map(|(t, b)| (t.clone(), b.as_ref().map(ToString::to_string)))
        .collect();
    let others: Vec<&String> = dead
        .iter()
        .flat_map(|d| d.tags.iter().map(|(t, _)| t))
        .filter(|t| !daemon.contains_key(*t))
        .collect();
    let now_ids = observe::image_ids(&run.engine, &others).await?;
    daemon.extend(
        others.into_iter().cloned().zip(now_ids.into_iter().map(|i| i.map(|i| i.to_string()))),
    );
    let dead: Vec<&event::Intent> = dead.iter().collect();
    // Known runs of other tags matter too: read them.
    let ids: Vec<&str> = daemon.keys().map(String::as_str).collect();
    let all_known = run.ledger.tag_heads(&run.identity.id, &ids)?;
    let events =
        event::settle_interrupted(&dead, &all_known, &run.identity.id, &daemon, record.now());
    let next = known.iter().chain(&all_known).map(|r| r.seq).max().unwrap_or(0) + 1;
    known.extend(events.iter().cloned().zip(next..).map(|(event, seq)| Recorded { seq, event }));
    record.extend(events);
    Ok(known)
}

/// One build run: the connection, who the daemon is, where the tags pointed before, and the
/// ledger (with whether this run created it).
struct Run {
    engine: Engine,
    identity: EngineIdentity,
    before: Vec<Option<ImageId>>,
    ledger: Box<dyn Ledger>,
    /// The run's name in its intent events.
    name: String,
    /// When it started (ms since the epoch).
    start: i64,
    /// The ledger did not exist before this run.
    fresh: bool,
    /// Nor did its directory.
    made_dir: bool,
    /// The tags built.
    tags: Vec<String>,
}

impl Run {
    /// `[tag:intent-first]` Records, in a transaction of its own before docker can move a tag,
    /// what this run is about to do: each tag with where it points. A later command that finds
    /// the run never ended (imgguard killed) can tell what docker did meanwhile.
    ///
    /// The tags are inspected and the intent committed just after `docker build` is started,
    /// while the docker CLI loads, reaches the daemon and sends the context: both take ~1 ms,
    /// and the earliest a tag can move is an order of magnitude later (a fully cached build of
    /// a one-file context ends 40-50 ms after it is started on a 2-core machine, and the docker
    /// CLI alone needs over 10 ms to start). Done before docker was started, they were 1-1.5 ms
    /// of the time imgguard adds to every build. The trade-off: imgguard killed (SIGKILL) in
    /// that millisecond leaves a docker that builds with no intent recorded, and its move is
    /// later recorded as one made outside imgguard — as for a plain `docker build`.
    fn record_intent(&mut self) -> Result<(), Error> {
        let mut intent = Record::new(&self.identity, self.start);
        for (tag, before) in self.tags_before() {
            intent.push(Event::intent(
                &self.identity.id,
                self.start,
                &self.name,
                &tag,
                before.as_deref(),
            ));
        }
        intent.commit(self.ledger.as_mut())?;
        trace("intent recorded");
        Ok(())
    }

    fn tags_before(&self) -> Vec<(String, Option<String>)> {
        self.tags
            .iter()
            .cloned()
            .zip(self.before.iter().map(|b| b.as_ref().map(ToString::to_string)))
            .collect()
    }
}

/// Plans on a fresh look at the candidates, then removes what may go, no sooner than the grace
/// period after the tags moved (`[ref:removal-grace]`); records what became of each and the
/// Hands the result to GitHub (inside a workflow step) and to `--report FILE`.
fn publish(s: &BuildSettings, result: &BuildResult<'_>) -> Result<(), Error> {
    github::publish(result)?;
    if let Some(path) = s.report.as_deref() {
        ui::json_file(path, &crate::core::github::report(result))?;
    }
    Ok(())
}

/// Plans on a fresh look at the candidates, then removes what may go, no sooner than the grace
/// period after the tags moved (`[ref:removal-grace]`); records what became of each and the
/// parents left for later.
async fn decide_and_apply(
    engine: &Engine,
    candidates: &[policy::Candidate],
    rules: &policy::Rules,
    record: &mut Record,
) -> Result<Vec<Decision>, Error> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let snapshot = observe::snapshot(engine, candidates).await?;
    let mut decisions = policy::plan(candidates, &snapshot, rules);
    let not_before = record.now().saturating_add(apply::REMOVAL_GRACE_MS);
    // No waiting for other builds: a removal they hold up is deferred to a later command.
    let orphans = apply::apply(engine, &mut decisions, not_before, NO_WAIT, |_| {}).await?;
    record.fates(&decisions, ReasonKind::Superseded);
    record.deferred(&orphans);
    Ok(decisions)
}

/// A build waits for no other build to end before it removes (`[ref:build-lock]`).
const NO_WAIT: std::time::Duration = std::time::Duration::ZERO;

/// Frees the images earlier commands deferred whose grace period is over (`[ref:removal-grace]`),
/// recording what became of them and the parents they left in turn.
async fn free_deferred(
    engine: &Engine,
    pending: &[event::Pending],
    record: &mut Record,
) -> Result<(), Error> {
    if pending.is_empty() {
        return Ok(());
    }
    let (freed, orphans) = apply::free_parents(engine, pending, host::now_ms(), NO_WAIT).await?;
    record.fates(&freed, ReasonKind::Superseded);
    record.deferred(&orphans);
    Ok(())
}

/// Where each tag points before docker can move it (404 = nowhere), who the daemon is, and the
/// run's intent recorded (`[ref:intent-first]`), in the `existing` ledger or, once the daemon
/// has answered, a new one (so that a failed call creates nothing).
async fn begin(
    engine: Engine,
    existing: Option<Box<dyn Ledger>>,
    tags: &[String],
) -> Result<Run, Error> {
    let start = host::now_ms();
    let before = observe::image_ids(&engine, tags).await?;
    trace("tags inspected before");
    let (mut ledger, fresh, made_dir) = match existing {
        Some(l) => (l, false, false),
        None => {
            let place = crate::ledger::location(&host::env_var)?;
            let made_dir = place.parent().is_some_and(|d| !d.exists());
            (host::ledger()?, true, made_dir)
        }
    };
    // Remembered per endpoint: no `docker info` on the build's critical path once known.
    let identity = observe::identity(&engine, ledger.as_mut(), start).await?;
    trace("engine identity read");
    let name = event::run_name(std::process::id(), start);
    let tags = tags.to_vec();
    let mut run = Run { engine, identity, before, ledger, name, start, fresh, made_dir, tags };
    run.record_intent()?;
    // The intent's commit ran beside docker and checkpointed the WAL if that was due; the commit
    // after docker must not (it did in one build of two or three: +0.2 to +1.5 ms after docker).
    run.ledger.defer_housekeeping();
    // Not into a directory this run made: a failed first build leaves nothing behind.
    if !run.fresh {
        observe::remember_handshake(&run.engine);
    }
    Ok(run)
}

/// `docker build` started, with what is to be read while it runs.
struct Started {
    child: tokio::process::Child,
    /// The builds lock, held shared until docker ends (`[ref:build-lock]`).
    building: Option<host::Building>,
    iid: IidFile,
    /// The Dockerfile, when it is a local file.
    dockerfile: Option<PathBuf>,
    /// Where to read the git state: the local context, else the working directory.
    git_dir: PathBuf,
}

impl Started {
    fn docker(
        engine: &Engine,
        raw: &[OsString],
        parsed: &BuildArgs,
        cwd: &Path,
    ) -> Result<Started, Error> {
        let iid = IidFile::new(parsed.iidfile.as_deref())?;
        let context_dir = local_context(parsed.context.as_deref(), cwd);
        let dockerfile = dockerfile_path(parsed, context_dir.as_deref(), cwd);
        // Before docker starts, so that no imgguard removal runs during any of its cache
        // lookups.
        let building = host::building();
        let child = docker_build(engine, raw, parsed.iidfile.is_none().then(|| iid.path()))?;
        trace("docker build started");
        let git_dir = context_dir.unwrap_or_else(|| cwd.to_path_buf());
        Ok(Started { child, building, iid, dockerfile, git_dir })
    }
}

/// What docker did, with the facts gathered meanwhile.
struct Built {
    known: Vec<Recorded>,
    /// Images whose removal earlier commands deferred.
    pending: Vec<event::Pending>,
    /// Build runs that never ended and whose imgguard is gone.
    dead: Vec<event::Intent>,
    facts: BuildFacts,
    iid: IidFile,
    status: std::process::ExitStatus,
    /// imgguard was sent SIGINT or SIGTERM (and passed it on to docker).
    signalled: bool,
}

/// Waits for `docker build` — passing SIGINT and SIGTERM on to it — and meanwhile reads the
/// ledger's view of the tags, the deferred removals, the runs that never ended, the git state and
/// the Dockerfile's hash, and removes what killed runs left in the temporary directory.
async fn while_docker(
    run: &Run,
    signals: host::Signals,
    started: Started,
    parsed: &BuildArgs,
    tags: &[String],
) -> Result<Built, Error> {
    let Started { mut child, building, iid, dockerfile, git_dir } = started;
    let id = run.identity.id.as_str();
    let ledger = run.ledger.as_ref();
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    // The ledger is read on this thread while docker runs: it is local and fast, and docker's
    // own start takes longer.
    let read = || -> Result<_, Error> {
        let known = ledger.tag_heads(id, &refs)?;
        let pending = event::pending_removals(&ledger.deferred(id)?, id);
        let open = ledger.open_intents(id)?;
        // When the read itself ended (beside docker), not when docker did.
        trace("ledger read done");
        Ok((known, pending, open))
    };
    let (ledger_read, (status, signalled), git_state, dockerfile_sha) = tokio::join!(
        async { read() },
        async {
            let s = wait_passing_signals(signals, &mut child).await;
            drop(building);
            trace("docker build ended");
            s
        },
        blocking(move || {
            // What killed runs left in the temporary directory: read off the critical path,
            // since that directory can be large on a busy runner.
            host::clean_stale_build_dirs();
            crate::git::state(&git_dir)
        }),
        blocking(move || dockerfile.and_then(|p| sha256_file(&p))),
    );
    let status = status.map_err(|e| Error::Spawn { program: "docker".into(), source: e })?;
    let (known, pending, open) = ledger_read?;
    trace("ledger read");
    let dead: Vec<event::Intent> = event::intents(&open, id)
        .into_iter()
        .filter(|i| i.run != run.name && !host::imgguard_alive(i.pid))
        .collect();
    let facts = BuildFacts {
        git_commit: git_state.as_ref().map(|g| g.commit.clone()),
        git_dirty: git_state.as_ref().map(|g| g.dirty),
        dockerfile_sha256: dockerfile_sha,
        build_arg_names: parsed.build_arg_names.clone(),
    };
    Ok(Built { known, pending, dead, facts, iid, status, signalled })
}

/// Waits for docker while SIGINT and SIGTERM are caught, so that imgguard outlives docker and
/// records what it did; each is passed on to docker (at a terminal, Ctrl-C reaches docker
/// directly too; a second SIGINT is harmless). Returns docker's status and whether a signal came.
async fn wait_passing_signals(
    mut signals: host::Signals,
    child: &mut tokio::process::Child,
) -> (std::io::Result<std::process::ExitStatus>, bool) {
    use rustix::process::{kill_process, Pid};
    let pid = child.id().and_then(|p| Pid::from_raw(i32::try_from(p).ok()?));
    let mut signalled = false;
    loop {
        let sig = tokio::select! {
            status = child.wait() => return (status, signalled),
            sig = signals.next() => sig,
        };
        signalled = true;
        if let Some(pid) = pid {
            let _ = kill_process(pid, sig);
        }
    }
}

/// Starts `docker build` (argv only, stdio inherited) against the engine's endpoint.
fn docker_build(
    engine: &Engine,
    raw: &[OsString],
    iidfile: Option<&Path>,
) -> Result<tokio::process::Child, Error> {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.arg("build");
    if let Some(path) = iidfile {
        cmd.arg("--iidfile").arg(path);
    }
    cmd.args(raw).stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    for (name, value) in engine.endpoint().child_env() {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.spawn().map_err(|e| Error::Spawn { program: "docker".into(), source: e })
}

fn print_reports(changes: &[TagChange], new_id: &ImageId, decisions: &[Decision]) {
    let fate = |id: &ImageId| policy::fate_text(decisions, id);
    for r in changes {
        let line = match &r.before {
            None => format!("{}  (new) → {}", r.tag, new_id.short()),
            Some(b) if b == new_id => format!("{}  {}  unchanged", r.tag, b.short()),
            Some(b) => format!("{}  {} → {}  {}", r.tag, b.short(), new_id.short(), fate(b)),
        };
        ui::note(line);
        if let Some(a) = r.after.as_ref().filter(|a| *a != new_id) {
            ui::note(format!(
                "{}  moved on to {} by another build meanwhile  {}",
                r.tag,
                a.short(),
                fate(new_id)
            ));
        }
    }
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

/// The sha256 of the Dockerfile, read bounded (a regular file, at most 16 MiB): a FIFO, a
/// device or a link to `/dev/zero` in its place gives no hash rather than a hang.
fn sha256_file(path: &Path) -> Option<String> {
    let bytes = crate::bounded_read::read_regular(path, crate::bounded_read::SOURCE_LIMIT).ok()?;
    Some(hex::encode(Sha256::digest(bytes)))
}

/// The file docker writes the new image ID to: ours unless the user asked for one, removed on
/// drop. Ours is in a directory nobody else can enter, so that nobody else can put anything at
/// its path: the one kept for every build of this user (`host::build_file_dir`), else one made
/// for this build alone.
struct IidFile {
    path: PathBuf,
    ours: Ours,
}

/// What of an [`IidFile`] is ours to remove.
enum Ours {
    /// Nothing: the user's file.
    Nothing,
    /// The file, in the directory kept for every build.
    File,
    /// The file, and the directory made for it.
    FileAndDir(PathBuf),
}

impl IidFile {
    fn new(user: Option<&str>) -> Result<IidFile, Error> {
        if let Some(p) = user {
            return Ok(IidFile { path: PathBuf::from(p), ours: Ours::Nothing });
        }
        // Named after this process, so that a later run can tell a killed run's file or
        // directory (`host::clean_stale_build_dirs`).
        if let Some(dir) = host::build_file_dir() {
            // An empty file whose name nobody else has (docker replaces it).
            let file = tempfile::Builder::new()
                .prefix(&host::build_file_prefix())
                .tempfile_in(&dir)
                .map_err(|e| Error::io(&dir, e))?;
            let (_, path) = file.keep().map_err(|e| Error::io(&dir, e.error))?;
            return Ok(IidFile { path, ours: Ours::File });
        }
        let dir = tempfile::Builder::new()
            .prefix(&host::build_dir_prefix())
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?
            .keep();
        Ok(IidFile { path: dir.join("iid"), ours: Ours::FileAndDir(dir) })
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

impl Drop for IidFile {
    /// The file, then the directory made for it: one or two calls on the build's critical
    /// path, where `TempDir`'s removal of a whole tree takes five or more.
    fn drop(&mut self) {
        if matches!(self.ours, Ours::Nothing) {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        if let Ours::FileAndDir(dir) = &self.ours {
            if std::fs::remove_dir(dir).is_err() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dockerfile_that_is_no_regular_file_gives_no_hash_and_no_hang() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("Dockerfile");
        std::fs::write(&plain, "FROM scratch\n").unwrap();
        let want = hex::encode(Sha256::digest(b"FROM scratch\n"));
        assert_eq!(sha256_file(&plain), Some(want));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        assert_eq!(sha256_file(&fifo), None, "a FIFO with no writer is not waited on");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(sha256_file(&zero), None, "a device is not read");
    }
}
