//! `imgguard build`: `docker build` with the lineage recorded and the image the rebuild left
//! dangling removed (never forced), or kept with the reason said.
//!
//! Observe each tag → run `docker build --iidfile` (argv passed through, stdio inherited; the
//! engine identity, the ledger's view of the tags, git state and the Dockerfile's hash are
//! gathered while it runs) → observe the new ID and the tags again → plan (pure) → apply → record
//! in one transaction → one line per tag on stderr (and GitHub's outputs inside a workflow).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use crate::core::build::{self, TagChange};
use crate::core::build_args::BuildArgs;
use crate::core::event::{BuildFacts, ReasonKind, Recorded};
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
    host::runtime()?.block_on(build(settings, cwd))
}

async fn build(s: &BuildSettings, cwd: &Path) -> Result<Outcome, Error> {
    trace("args and config read");
    let tags: Vec<String> = s.parsed.tags.iter().map(ToString::to_string).collect();
    let (engine, before, ledger) = observe_before(&tags).await?;
    let built = run_docker(&engine, &s.docker_args, &s.parsed, cwd, ledger, &tags).await?;
    let Built { identity, mut ledger, known, facts, iid } = match built {
        Ok(built) => built,
        // A failed build changes nothing: no ledger entry, nothing removed.
        Err(code) => return Ok(Outcome::Child(code)),
    };
    let Some(new_id) = iid.read()? else {
        ui::note("docker wrote no image ID (an --output that exports files?): nothing recorded");
        return Ok(Outcome::Child(0));
    };
    let now = host::now_ms();
    let after = observe::image_ids(&engine, &tags).await?;
    // A tag that points at the new ID proves the daemon has it; else ask for the ID itself.
    let in_daemon = after.iter().flatten().any(|i| *i == new_id)
        || engine.inspect(new_id.as_str()).await?.is_some();
    trace("new image and tags inspected after");
    let changes: Vec<TagChange> = tags
        .iter()
        .zip(before)
        .zip(after)
        .map(|((tag, before), after)| TagChange { tag: tag.clone(), before, after })
        .collect();
    let mut record = Record::new(&identity, now);
    if !in_daemon {
        record.extend(build::not_in_daemon(&identity.id, now, &new_id, &changes, &facts));
        record.commit(ledger.as_mut())?;
        ui::note(format!(
            "{} is not in the daemon (buildx without --load, or push-only): nothing to remove",
            new_id.short()
        ));
        let changes: Vec<TagChange> =
            changes.into_iter().map(|c| TagChange { after: None, ..c }).collect();
        let result =
            BuildResult { image_id: &new_id, tags: &changes, decisions: &[], in_daemon: false };
        github::publish(&result)?;
        return Ok(Outcome::Child(0));
    }
    let planned = build::outcome(&identity.id, now, &new_id, &changes, &known, &facts);
    record.extend(planned.events);
    let decisions = decide_and_apply(&engine, &planned.candidates, &s.rules).await?;
    trace("plan applied");
    record.fates(&decisions, ReasonKind::Superseded);
    record.commit(ledger.as_mut())?;
    trace("ledger written");
    print_reports(&changes, &new_id, &decisions);
    let result =
        BuildResult { image_id: &new_id, tags: &changes, decisions: &decisions, in_daemon: true };
    github::publish(&result)?;
    Ok(Outcome::Child(0))
}

/// Plans on a fresh look at the candidates, then removes what may go.
async fn decide_and_apply(
    engine: &Engine,
    candidates: &[policy::Candidate],
    rules: &policy::Rules,
) -> Result<Vec<Decision>, Error> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let snapshot = observe::snapshot(engine, candidates).await?;
    let mut decisions = policy::plan(candidates, &snapshot, rules);
    apply::apply(engine, &mut decisions, |_| {}).await?;
    Ok(decisions)
}

/// Where each tag points before the build (404 = nowhere). An existing ledger is opened
/// meanwhile; a new one only once the daemon has answered, so that a failed call creates
/// nothing.
async fn observe_before(
    tags: &[String],
) -> Result<(Engine, Vec<Option<ImageId>>, Box<dyn Ledger>), Error> {
    let (existing, observed) = tokio::join!(blocking(host::existing_ledger), async {
        let engine = observe::connect().await?;
        trace("connected");
        let before = observe::image_ids(&engine, tags).await?;
        trace("tags inspected before");
        Ok::<_, Error>((engine, before))
    });
    let (engine, before) = observed?;
    let ledger = match existing? {
        Some(l) => l,
        None => host::ledger()?,
    };
    trace("ledger open");
    Ok((engine, before, ledger))
}

/// A build docker finished, with the facts gathered meanwhile.
struct Built {
    identity: EngineIdentity,
    ledger: Box<dyn Ledger>,
    known: Vec<Recorded>,
    facts: BuildFacts,
    iid: IidFile,
}

/// Runs `docker build` against the same endpoint, and meanwhile reads the engine identity
/// (remembered per endpoint: [`observe::identity`]), the ledger's view of the tags, the git state
/// and the Dockerfile's hash. `Err(code)`: docker failed with that exit code.
async fn run_docker(
    engine: &Engine,
    raw: &[OsString],
    parsed: &BuildArgs,
    cwd: &Path,
    ledger: Box<dyn Ledger>,
    tags: &[String],
) -> Result<Result<Built, i32>, Error> {
    let iid = IidFile::new(parsed.iidfile.as_deref())?;
    let context_dir = local_context(parsed.context.as_deref(), cwd);
    let dockerfile = dockerfile_path(parsed, context_dir.as_deref(), cwd);
    let mut child = docker_build(engine, raw, parsed.iidfile.is_none().then(|| iid.path()))?;
    trace("docker build started");
    let git_dir = context_dir.unwrap_or_else(|| cwd.to_path_buf());
    let wanted = tags.to_vec();
    let (status, ledger_read, git_state, dockerfile_sha) = tokio::join!(
        async {
            let s = child.wait().await;
            trace("docker build ended");
            s
        },
        async {
            let mut ledger = ledger;
            let identity = observe::identity(engine, ledger.as_mut(), host::now_ms()).await?;
            trace("engine identity read");
            let id = identity.id.clone();
            let (ledger, known) = blocking(move || {
                let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
                let known = ledger.tag_events(Some(&id), &refs);
                (ledger, known)
            })
            .await;
            trace("ledger read");
            Ok::<_, Error>((identity, ledger, known?))
        },
        blocking(move || crate::git::state(&git_dir)),
        blocking(move || dockerfile.and_then(|p| sha256_file(&p))),
    );
    let status = status.map_err(|e| Error::Spawn { program: "docker".into(), source: e })?;
    if !status.success() {
        return Ok(Err(exit_code(status)));
    }
    let (identity, ledger, known) = ledger_read?;
    let facts = BuildFacts {
        git_commit: git_state.as_ref().map(|g| g.commit.clone()),
        git_dirty: git_state.as_ref().map(|g| g.dirty),
        dockerfile_sha256: dockerfile_sha,
        build_arg_names: parsed.build_arg_names.clone(),
    };
    Ok(Ok(Built { identity, ledger, known, facts, iid }))
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
