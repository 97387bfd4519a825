//! `imgguard load [-i FILE] [--tag NAME:TAG]… [--restore-tags]`: `docker load` that knows what it
//! loads, says so, gives lost names back, and cleans up after a load that steals a tag.
//!
//! Flow: read the archive's `manifest.json` first (a plain archive header by header, seeking past
//! the layers; gzip decompressed through) → look at each tag it carries → stream the file to the
//! daemon in large chunks (a reader thread hashes as it goes) → look again → for an image with no
//! name: name it from the ledger (`--restore-tags`) or as told (`--tag`) → the images whose tags
//! the load took: the same removal policy as after a build, never forced → one transaction.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::cli::Format;
use crate::core::archive::{self, ArchiveImage, LoadMessages};
use crate::core::event::{self, ArchiveFacts, Event, EventKind, ReasonKind};
use crate::core::image::{EngineIdentity, ImageId};
use crate::core::load::{self, Placed};
use crate::core::naming;
use crate::core::policy::{self, Decision, Rules};
use crate::core::reference::Tag;
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::flow::{apply, observe, record::Record};
use crate::host;
use crate::ledger::Ledger;
use crate::settings::LoadSettings;
use crate::transfer::{self, CHUNK};
use crate::ui::{self, Progress};

/// Size of each piece of the upload: 256 KiB, few enough in flight to keep memory flat.
const UPLOAD_CHUNK: usize = 256 << 10;

/// Runs the command.
pub fn run(s: &LoadSettings) -> Result<Outcome, Error> {
    let source = Source::open(s.input.as_deref())?;
    let mut file = source.file()?;
    let images = transfer::read_manifest(&mut file, &source.shown)?;
    if !s.tags.is_empty() && images.len() != 1 {
        return Err(Error::Usage(format!(
            "--tag names one image, and {} holds {}",
            source.shown.display(),
            images.len()
        )));
    }
    host::runtime()?.block_on(load(s, &source, file, &images))
}

/// Where the archive comes from.
struct Source {
    /// The path to report (`stdin` for standard input).
    shown: PathBuf,
    /// The path to record in the ledger (none for standard input).
    recorded: Option<String>,
    /// The file to read, or a copy of a piped standard input.
    file: File,
    _spool: Option<tempfile::NamedTempFile>,
}

impl Source {
    fn open(input: Option<&Path>) -> Result<Source, Error> {
        if let Some(path) = input {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let meta = file.metadata().map_err(|e| Error::io(path, e))?;
            if meta.is_dir() {
                return Err(Error::Other(format!("{}: is a directory", path.display())));
            }
            let recorded = std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .to_string_lossy()
                .into_owned();
            return Ok(Source {
                shown: path.to_path_buf(),
                recorded: Some(recorded),
                file,
                _spool: None,
            });
        }
        let stdin = io::stdin();
        if stdin.is_terminal() {
            // docker's words.
            return Err(Error::Usage("requested load from stdin, but stdin is empty".into()));
        }
        let shown = PathBuf::from("stdin");
        let fd = stdin.as_fd().try_clone_to_owned().map_err(|e| Error::io("stdin", e))?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| Error::io("stdin", e))?;
        if meta.is_file() {
            // `< archive.tar`: a file already, readable twice.
            return Ok(Source { shown, recorded: None, file, _spool: None });
        }
        // A pipe can be read once; the manifest comes last in the archive and must be read
        // first, so the stream is copied to a temporary file (constant memory, disk space of
        // one archive).
        let mut spool = tempfile::Builder::new()
            .prefix("imgguard-load-")
            .tempfile()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut reader = file;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("stdin", e)),
            };
            spool.write_all(&buf[..n]).map_err(|e| Error::io(spool.path(), e))?;
        }
        let file = spool.reopen().map_err(|e| Error::io(spool.path(), e))?;
        Ok(Source { shown, recorded: None, file, _spool: Some(spool) })
    }

    fn file(&self) -> Result<File, Error> {
        self.file.try_clone().map_err(|e| Error::io(&self.shown, e))
    }
}

async fn load(
    s: &LoadSettings,
    source: &Source,
    file: File,
    images: &[ArchiveImage],
) -> Result<Outcome, Error> {
    let engine = observe::connect().await?;
    let identity = engine.identity().await?;
    let mut ledger = host::ledger()?;
    // 1. Where the archive's tags point now; 2. stream the file to the daemon; 3. look again.
    let tags = archive::all_tags(images);
    let before = observe::image_ids(&engine, &tags).await?;
    let (facts, said) = upload(&engine, source, file).await?;
    let now = host::now_ms();
    let known =
        ledger.tag_heads(&identity.id, &tags.iter().map(String::as_str).collect::<Vec<_>>())?;
    let after = observe::image_ids(&engine, &tags).await?;
    let loaded =
        load::loaded_tags(&identity.id, now, images, &tags, &before, &after, &known, &facts);
    for m in &loaded.moved_meanwhile {
        ui::note(format!(
            "{} is on {} after the load, not on {}: moved meanwhile, nothing removed",
            m.tag,
            m.now.as_ref().map_or("nothing", ImageId::short),
            m.loaded.short()
        ));
    }
    let mut record = Record::new(&identity, now);
    record.extend(loaded.events);
    let mut placed = loaded.placed;
    // 4. Images without a name: say so, and name them if asked.
    let hints = name_nameless(
        &engine,
        ledger.as_ref(),
        &identity,
        s,
        source,
        images,
        &facts,
        &mut record,
        &mut placed,
    )
    .await?;
    for tag in &s.tags {
        placed.push(put_tag(&engine, &images[0].id, tag, "tagged (--tag)").await?);
    }
    for p in placed.iter().filter(|p| p.kind == EventKind::Tag) {
        let before = p.before.as_ref().map(ImageId::as_str);
        record.push(Event::tag(&identity.id, now, &p.tag, p.id.as_str(), before));
    }
    // 5. The images whose tags the load took: the build's removal policy, never forced.
    let (decisions, orphans) =
        decide_and_apply(&engine, &load::candidates(&placed), &s.rules, now).await?;
    record.fates(&decisions, ReasonKind::Superseded);
    record.deferred(&orphans);
    record.commit(ledger.as_mut())?;
    print_placed(&placed, &decisions, &said);
    for h in &hints {
        ui::note(h);
    }
    if s.format == Format::Json {
        ui::json(&json_report(images, &facts, &placed, &decisions, &hints))?;
    }
    ui::note(format!(
        "loaded {} image{} from {}: {}, sha256 {}",
        images.len(),
        if images.len() == 1 { "" } else { "s" },
        source.shown.display(),
        ui::size(u64::try_from(facts.size.unwrap_or(0)).unwrap_or(0)),
        facts.sha256.as_deref().unwrap_or("")
    ));
    Ok(Outcome::Ok)
}

/// `load --format json`: `archive`, `sha256`, `size`, `images` (each `image_id`, `tags`,
/// `nameless`), `placed` (each `tag`, `image_id`, `before`, `how`, `fate`), `hints`.
fn json_report(
    images: &[ArchiveImage],
    facts: &ArchiveFacts,
    placed: &[Placed],
    decisions: &[Decision],
    hints: &[String],
) -> serde_json::Value {
    let images: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            serde_json::json!({
                "image_id": i.id.as_str(),
                "tags": i.tags,
                "nameless": i.tags.is_empty(),
            })
        })
        .collect();
    let placed: Vec<serde_json::Value> = placed
        .iter()
        .map(|p| {
            let fate = p.before.as_ref().map(|b| policy::fate_text(decisions, b));
            serde_json::json!({
                "tag": p.tag,
                "image_id": p.id.as_str(),
                "before": p.before.as_ref().map(ImageId::as_str),
                "how": p.how,
                "fate": fate.filter(|f| !f.is_empty()),
            })
        })
        .collect();
    serde_json::json!({
        "archive": facts.path,
        "sha256": facts.sha256,
        "size": facts.size,
        "images": images,
        "placed": placed,
        "hints": hints,
    })
}

/// Plans on a fresh look at the candidates, then removes what may go, no sooner than the grace
/// period after the tags moved at `moved_ms` (`[ref:removal-grace]`).
async fn decide_and_apply(
    engine: &Engine,
    candidates: &[policy::Candidate],
    rules: &Rules,
    moved_ms: i64,
) -> Result<(Vec<Decision>, Vec<apply::Orphan>), Error> {
    if candidates.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let snapshot = observe::snapshot(engine, candidates).await?;
    let mut decisions = policy::plan(candidates, &snapshot, rules);
    let not_before = moved_ms.saturating_add(apply::REMOVAL_GRACE_MS);
    // No waiting for builds: a removal they hold up is deferred (`[ref:build-lock]`).
    let orphans =
        apply::apply(engine, &mut decisions, not_before, std::time::Duration::ZERO, |_| {}).await?;
    Ok((decisions, orphans))
}

/// Puts `tag` on `id`, remembering where it pointed before.
async fn put_tag(
    engine: &Engine,
    id: &ImageId,
    tag: &Tag,
    how: &'static str,
) -> Result<Placed, Error> {
    let before = engine.inspect(tag.as_str()).await?.map(|i| i.id);
    engine.tag(id, tag.as_str()).await?;
    Ok(Placed { tag: tag.as_str().to_string(), id: id.clone(), before, kind: EventKind::Tag, how })
}

/// Streams the archive to the daemon (a reader thread hashes as it goes); the archive's facts
/// and what the daemon said.
async fn upload(
    engine: &Engine,
    source: &Source,
    file: File,
) -> Result<(ArchiveFacts, LoadMessages), Error> {
    let size = file.metadata().map_err(|e| Error::io(&source.shown, e))?.len();
    let what = format!("loading {}", source.shown.display());
    let bar = ui::progress(&Progress::Bytes { total: size, what: &what });
    if bar.is_hidden() {
        ui::note(format!("loading {} ({})", source.shown.display(), ui::size(size)));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(4);
    let reader_bar = bar.clone();
    let reader = std::thread::spawn(move || read_all(file, &tx, &reader_bar));
    let body =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        );
    let messages = engine.import(body).await;
    let read = reader.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    bar.finish_and_clear();
    let (sha256, archive_size) = read.map_err(|e| Error::io(&source.shown, e))?;
    let messages = messages?;
    let facts = ArchiveFacts {
        path: source.recorded.clone(),
        sha256: Some(sha256),
        size: i64::try_from(archive_size).ok(),
    };
    Ok((facts, archive::parse_load_messages(messages.iter().map(String::as_str))))
}

/// Warns about each image the archive has no name for, records its nameless load, and names
/// it: with `--restore-tags` from the ledger (tags that point nowhere now), else says how.
#[allow(clippy::too_many_arguments)]
async fn name_nameless(
    engine: &Engine,
    ledger: &dyn Ledger,
    identity: &EngineIdentity,
    s: &LoadSettings,
    source: &Source,
    images: &[ArchiveImage],
    facts: &ArchiveFacts,
    record: &mut Record,
    placed: &mut Vec<Placed>,
) -> Result<Vec<String>, Error> {
    let mut hints = Vec::new();
    for id in archive::nameless(images) {
        record.push(Event::archive(
            &identity.id,
            record.now(),
            EventKind::Load,
            None,
            id.as_str(),
            None,
            facts,
        ));
        ui::note(format!(
            "warning: {} has no name in {}: it is <none>:<none> now",
            id.short(),
            source.shown.display()
        ));
        let mut free = Vec::new();
        let mut elsewhere = false;
        for tag in known_tags(ledger, &identity.id, id, facts)? {
            match engine.inspect(&tag).await?.map(|i| i.id) {
                None => free.push(tag),
                Some(other) if other == *id => {}
                Some(other) => {
                    elsewhere = true;
                    ui::note(format!(
                        "  the ledger knows it as {tag}, which is on {} now: not moved",
                        other.short()
                    ));
                }
            }
        }
        if s.restore_tags {
            for tag in free {
                let tag = Tag::from_normalised(tag);
                placed.push(put_tag(engine, id, &tag, "restored from the ledger").await?);
            }
        } else if !free.is_empty() {
            ui::note(format!("  the ledger knows it as {}", free.join(", ")));
            let input = source.recorded.as_ref().map_or(String::new(), |_| {
                format!(" -i {}", naming::quote(&source.shown.to_string_lossy()))
            });
            let it = if free.len() == 1 { "it" } else { "them" };
            hints.push(format!("`imgguard load{input} --restore-tags` puts {it} back"));
        } else if s.tags.is_empty() && !elsewhere {
            hints.push("the ledger knows no tag for it: name it with `--tag NAME:TAG`".into());
        }
    }
    Ok(hints)
}

/// The tags the ledger knows for `id`: recorded on this engine, else on other engines (another
/// runner of a fleet ledger) for the same image ID or for an image saved to the same archive.
fn known_tags(
    ledger: &dyn Ledger,
    engine: &str,
    id: &ImageId,
    facts: &ArchiveFacts,
) -> Result<Vec<String>, Error> {
    let history = ledger.image_events(engine, id.as_str())?;
    let tags = event::tags_of_image(&history, engine, id.as_str());
    if !tags.is_empty() {
        return Ok(tags);
    }
    let sha = facts.sha256.as_deref();
    let fleet = ledger.fleet_image_events(id.as_str(), sha)?;
    Ok(crate::core::fleet::tags_elsewhere(&fleet, engine, id.as_str(), sha))
}

/// Reads the file in [`UPLOAD_CHUNK`]s into the upload, hashing as it goes; stops when the upload
/// stops listening.
fn read_all(
    mut file: File,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    bar: &indicatif::ProgressBar,
) -> io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let mut n = 0;
        // Fill the chunk: every piece sent but the last is UPLOAD_CHUNK bytes.
        while n < UPLOAD_CHUNK {
            match file.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            }
        }
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        buf.truncate(n);
        hasher.update(&buf);
        size += n as u64;
        bar.inc(n as u64);
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            // The daemon stopped reading; the import reports why.
            return Ok((hex::encode(hasher.finalize()), size));
        }
    }
}

fn print_placed(placed: &[Placed], decisions: &[Decision], said: &LoadMessages) {
    let fate = |id: &ImageId| policy::fate_text(decisions, id);
    for p in placed {
        let line = match &p.before {
            None => format!("{}  (new) → {}  {}", p.tag, p.id.short(), p.how),
            Some(b) if *b == p.id => format!("{}  {}  unchanged", p.tag, b.short()),
            Some(b) => {
                let took = if said.renamed.iter().any(|(t, _)| *t == p.tag) {
                    " (the daemon untagged the old one)"
                } else {
                    ""
                };
                format!("{}  {} → {}  {}{took}  {}", p.tag, b.short(), p.id.short(), p.how, fate(b))
            }
        };
        ui::note(line);
    }
}
