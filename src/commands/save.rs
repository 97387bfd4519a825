//! `imgguard save [-o FILE] [--allow-id] IMAGE…`: `docker save` that refuses to write an archive
//! without names (it would load as `<none>:<none>`), streams in constant memory, checks the
//! finished archive before it is put in place, and records each save in the ledger.
//!
//! Flow: classify the operands (pure) → ask the daemon and the ledger what each names →
//! plan (pure: refuse, or what the archive must hold) → stream the export to a temporary file
//! beside the target (a writer thread: large writes; a checker thread: sha256 and the tar check as
//! the bytes pass)
//! → check → fsync → rename into place (mode 0600) → record in one transaction.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::cli::Format;
use crate::core::archive::{self, scan::Scanner, Expected};
use crate::core::event::{self, ArchiveFacts, ReasonKind};
use crate::core::image::ImageId;
use crate::core::naming::{self, Operand, Resolution, Resolved, SavePlan};
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::flow::{observe, record::Record};
use crate::host;
use crate::ledger::Ledger;
use crate::settings::SaveSettings;
use crate::transfer::{write_all_vectored, BigWrites, DirectFile, Hashing};
use crate::ui::{self, Progress};

/// Runs the command.
pub fn run(s: &SaveSettings) -> Result<Outcome, Error> {
    host::runtime()?.block_on(save(s))
}

async fn save(s: &SaveSettings) -> Result<Outcome, Error> {
    let engine = observe::connect().await?;
    let identity = engine.identity().await?;
    // An existing ledger only: a save that fails (a missing image) creates nothing.
    let existing = host::existing_ledger()?;
    // 1. What each operand names; 2. refuse, or know what the archive must hold.
    let mut resolved = Vec::with_capacity(s.operands.len());
    for (input, op) in &s.operands {
        resolved.push(resolve(&engine, existing.as_deref(), &identity.id, input, op).await?);
    }
    let plan = naming::plan_save(&resolved, s.allow_id);
    let output = s.output.as_deref();
    if !plan.refused.is_empty() {
        let shown = output.map(|p| p.to_string_lossy().into_owned());
        for line in naming::refusal_lines(&resolved, &plan, shown.as_deref()) {
            ui::note(line);
        }
        if s.format == Format::Json {
            let refused: Vec<&str> =
                plan.refused.iter().map(|&i| resolved[i].operand.as_str()).collect();
            ui::json(&serde_json::json!({
                "saved": false,
                "refused": refused,
                "suggestion": naming::suggest(&resolved, shown.as_deref()),
            }))?;
        }
        return Ok(Outcome::Refused);
    }
    explain_plan(&resolved, &plan);
    // 3. Stream, check, put in place.
    let shown = output.map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
    let written = transfer(&engine, &plan, output, &shown).await?;
    let mut ledger = match existing {
        Some(l) => l,
        None => host::ledger()?,
    };
    // 4. Record: tags the daemon shows where the ledger did not expect them were moved outside
    //    imgguard; then one save event per tag, one per nameless image.
    let now = host::now_ms();
    let seen = naming::seen_tags(&resolved, &plan);
    let tags: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    let known = ledger.tag_heads(&identity.id, &tags)?;
    let observed: Vec<(&str, Option<&str>)> =
        seen.iter().map(|(t, id)| (t.as_str(), Some(id.as_str()))).collect();
    let facts = ArchiveFacts {
        path: output.map(absolute).map(|p| p.to_string_lossy().into_owned()),
        sha256: Some(written.sha256.clone()),
        size: i64::try_from(written.size).ok(),
    };
    let mut record = Record::new(&identity, now);
    record.extend(event::unexpected_moves(
        &known,
        &identity.id,
        &observed,
        now,
        ReasonKind::TaggedOutside,
        true,
    ));
    record.extend(naming::save_events(&identity.id, now, &plan, &facts));
    record.commit(ledger.as_mut())?;
    ui::note(format!(
        "saved {} to {shown}: {}, sha256 {}",
        naming::saved_summary(&plan),
        ui::size(written.size),
        written.sha256
    ));
    if s.format == Format::Json {
        ui::json(&json_report(&plan, &facts, &written))?;
    }
    Ok(Outcome::Ok)
}

/// `save --format json` after a save: `saved`, `archive`, `sha256`, `size`, `images` (each
/// `image_id` and `tags`).
fn json_report(plan: &SavePlan, facts: &ArchiveFacts, written: &Written) -> serde_json::Value {
    let images: Vec<serde_json::Value> = plan
        .expected
        .iter()
        .map(|e| serde_json::json!({ "image_id": e.id.as_str(), "tags": e.tags }))
        .collect();
    serde_json::json!({
        "saved": true,
        "archive": facts.path,
        "sha256": written.sha256,
        "size": written.size,
        "images": images,
    })
}

/// Says what a bare repository name expands to, and warns about images saved without a name.
fn explain_plan(resolved: &[Resolved], plan: &SavePlan) {
    for r in resolved {
        if let Resolution::Named(tags) = &r.resolution {
            if !tags.iter().any(|(t, _)| *t == r.operand) {
                let list: Vec<&str> = tags.iter().map(|(t, _)| t.as_str()).collect();
                ui::note(format!(
                    "{}: every tag of the repository: {}",
                    r.operand,
                    list.join(", ")
                ));
            }
        }
    }
    for id in &plan.nameless {
        ui::note(format!(
            "warning: {} is saved by ID (--allow-id): the archive has no name for it, and \
             `docker load` will give <none>:<none> (`imgguard load --restore-tags` gives back the \
             tags the ledger knows)",
            id.short()
        ));
    }
}

/// Streams the archive to `output` (a temporary file renamed into place) or to stdout, with
/// progress on a terminal and one plain line elsewhere.
async fn transfer(
    engine: &Engine,
    plan: &SavePlan,
    output: Option<&Path>,
    shown: &str,
) -> Result<Written, Error> {
    let names: Vec<String> = plan
        .expected
        .iter()
        .flat_map(|e| if e.tags.is_empty() { vec![e.id.to_string()] } else { e.tags.clone() })
        .collect();
    let mut total = 0u64;
    for e in &plan.expected {
        if let Some(info) = engine.inspect(e.id.as_str()).await? {
            total += info.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        }
    }
    // The temporary file beside the target, before anything is said: an unwritable directory
    // is one line.
    let temp = output.map(temp_beside).transpose()?;
    let bar = ui::progress(&Progress::Bytes { total, what: &format!("saving to {shown}") });
    if bar.is_hidden() {
        ui::note(format!("saving {} (about {}) to {shown}", names.join(", "), ui::size(total)));
    }
    let written = match (output, temp) {
        (Some(path), Some(temp)) => {
            save_to_file(engine, &names, &plan.expected, temp, path, &bar).await?
        }
        _ => save_to_stdout(engine, &names, &plan.expected, &bar).await?,
    };
    bar.finish_and_clear();
    Ok(written)
}

/// Asks the daemon (and, for an ID, the ledger) what one operand names.
async fn resolve(
    engine: &Engine,
    ledger: Option<&dyn Ledger>,
    engine_id: &str,
    input: &str,
    op: &Operand,
) -> Result<Resolved, Error> {
    let missing = || Error::Other(format!("no such image: {input}"));
    let by_id = |id: ImageId, tags_now: Vec<String>| async move {
        let mut before = Vec::new();
        let events = match ledger {
            Some(l) => l.image_events(engine_id, id.as_str())?,
            None => Vec::new(),
        };
        for tag in event::tags_of_image(&events, engine_id, id.as_str()) {
            if tags_now.contains(&tag) {
                continue;
            }
            let now = engine.inspect(&tag).await?.map(|i| i.id);
            before.push((tag, now));
        }
        Ok::<_, Error>(Resolution::ByIdOnly { id, tags_now, tags_before: before })
    };
    let resolution = match op {
        Operand::Tagged(tag) => {
            let info = engine.inspect(tag.as_str()).await?.ok_or_else(missing)?;
            Resolution::Named(vec![(tag.as_str().to_string(), info.id)])
        }
        Operand::NameOnly(name) => {
            let tags = engine.repository_tags(name).await?;
            if tags.is_empty() {
                // No repository of that name: docker then reads it as a short image ID.
                let info = engine.inspect(name).await?.ok_or_else(missing)?;
                by_id(info.id, info.repo_tags).await?
            } else {
                Resolution::Named(tags)
            }
        }
        Operand::Id(_) | Operand::Digest(_) => {
            let info = engine.inspect(input).await?.ok_or_else(missing)?;
            by_id(info.id, info.repo_tags).await?
        }
    };
    Ok(Resolved { operand: input.to_string(), resolution })
}

/// What was written: its size and sha256.
struct Written {
    size: u64,
    sha256: String,
}

/// A temporary file in the target's directory (so that the rename is atomic), created with
/// mode 0600, which the rename keeps.
fn temp_beside(target: &Path) -> Result<(tempfile::NamedTempFile, PathBuf), Error> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".imgguard-save-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| {
            // tempfile adds the random name it tried; the directory is what matters.
            let msg = e.to_string();
            let msg = msg.split(" at path ").next().unwrap_or(&msg).to_string();
            Error::Other(format!("cannot write to {}: {msg}", dir.display()))
        })?;
    Ok((temp, dir))
}

/// Streams the export to a temporary file beside `target`; checks, fsyncs and renames it into
/// place. On any failure the temporary file is removed and an existing target is untouched.
async fn save_to_file(
    engine: &Engine,
    names: &[String],
    expected: &[Expected],
    (temp, dir): (tempfile::NamedTempFile, PathBuf),
    target: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<Written, Error> {
    let file = temp.as_file().try_clone().map_err(|e| Error::io(temp.path(), e))?;
    let gzip = archive::wants_gzip(&target.to_string_lossy());
    let sink = Sink::File { file, gzip };
    let (written, manifest) = stream(engine, names, sink, bar).await.map_err(|e| match e {
        StreamError::Io(e) => Error::io(temp.path(), e),
        StreamError::Other(e) => e,
    })?;
    check(&manifest, expected)?;
    host::trace("save: archive written and checked");
    temp.as_file().sync_all().map_err(|e| Error::io(temp.path(), e))?;
    host::trace("save: archive fsynced");
    temp.persist(target).map_err(|e| Error::io(target, e.error))?;
    // The rename is durable once the directory is synced.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(written)
}

async fn save_to_stdout(
    engine: &Engine,
    names: &[String],
    expected: &[Expected],
    bar: &indicatif::ProgressBar,
) -> Result<Written, Error> {
    let (written, manifest) =
        stream(engine, names, Sink::Stdout, bar).await.map_err(|e| match e {
            StreamError::Io(e) => Error::io("stdout", e),
            StreamError::Other(e) => e,
        })?;
    check(&manifest, expected)?;
    Ok(written)
}

fn check(manifest: &[u8], expected: &[Expected]) -> Result<(), Error> {
    let bad = |m: String| Error::Other(format!("the daemon's archive is not usable: {m}"));
    let images = archive::parse_manifest(manifest).map_err(|e| bad(e.to_string()))?;
    archive::check_saved(expected, &images).map_err(|e| bad(e.to_string()))
}

enum Sink {
    File { file: File, gzip: bool },
    Stdout,
}

enum StreamError {
    Io(io::Error),
    Other(Error),
}

/// The export's chunks (hyper hands them over as the daemon sends them, ~32 KiB each), gathered
/// into batches of about [`BATCH`] bytes: the unit the receiving side hands to the writer and the
/// checker threads, shared between both without a copy.
type Batch = Arc<[Bytes]>;

/// Bytes per batch. Measured at 1 GiB with 64 KiB to 1 MiB batches and one to four queued: the
/// same time within the noise, peak RSS from 13.4 to 18.7 MiB; 128 KiB with two queued per
/// thread kept it at 14 MiB (the save before the checker thread: 13.9 MiB).
const BATCH: usize = 128 << 10;

/// Moves the daemon's export through two threads: the writer writes each batch (past the page
/// cache where it can, [`DirectFile`]; else one `writev` per batch), the checker hashes it and
/// checks the tar structure, so the network, the disk and the sha256 work at once and the sha256
/// is not in the writer's way (measured: the sha256 of 1 GiB costs ~0.45 s, which the writer
/// paid in turn before). The channels are bounded: memory stays constant whatever the image
/// size.
async fn stream(
    engine: &Engine,
    names: &[String],
    sink: Sink,
    bar: &indicatif::ProgressBar,
) -> Result<(Written, Vec<u8>), StreamError> {
    // A gzip archive's sha256 is that of the compressed bytes: its writer hashes what it writes.
    let hash_input = !matches!(sink, Sink::File { gzip: true, .. });
    let (to_writer, writer_rx) = mpsc::sync_channel::<Batch>(2);
    let (to_checker, checker_rx) = mpsc::sync_channel::<Batch>(2);
    let writer = std::thread::spawn(move || write_batches(&writer_rx, sink));
    let checker = std::thread::spawn(move || check_batches(&checker_rx, hash_input));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut export = engine.export(&refs);
    let mut failure = None;
    let mut batch = Vec::new();
    let mut batched = 0;
    // Ctrl-C ends the save like any other failure: the temporary file is removed on the way out.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let chunk = tokio::select! {
            c = export.next() => c,
            _ = &mut interrupted => {
                failure = Some(StreamError::Other(Error::Other("interrupted".into())));
                break;
            }
        };
        let last = match chunk {
            Some(Ok(bytes)) => {
                if batch.is_empty() && bar.position() == 0 {
                    host::trace("save: first byte of the export");
                }
                bar.inc(bytes.len() as u64);
                batched += bytes.len();
                batch.push(bytes);
                false
            }
            Some(Err(e)) => {
                failure = Some(StreamError::Other(e.into()));
                break;
            }
            None => {
                host::trace("save: last byte of the export");
                true
            }
        };
        if batched >= BATCH || batch.len() >= 1024 || (last && !batch.is_empty()) {
            let b: Batch = std::mem::take(&mut batch).into();
            batched = 0;
            // The writer stopped (a write failed): its error is the one to report.
            if to_writer.send(Arc::clone(&b)).is_err() || to_checker.send(b).is_err() {
                break;
            }
        }
        if last {
            break;
        }
    }
    drop((to_writer, to_checker));
    let written = writer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    let (hashed, manifest) = checker.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    if let Some(f) = failure {
        return Err(f);
    }
    let (sha256, size) = written.map_err(StreamError::Io)?.or(hashed).unwrap_or_default();
    let manifest = manifest.map_err(|scan| {
        StreamError::Other(Error::Other(format!("the daemon's archive is not usable: {scan}")))
    })?;
    Ok((Written { size, sha256 }, manifest))
}

/// The sha256 and size of the stream (when the checker hashed it), and its `manifest.json`.
type Checked = (Option<(String, u64)>, Result<Vec<u8>, archive::scan::ScanError>);

/// The checker thread: the tar check of the whole stream, and its sha256 and size when the
/// archive is the stream as received (not gzip).
fn check_batches(rx: &mpsc::Receiver<Batch>, hash: bool) -> Checked {
    let mut scanner = Scanner::new();
    let mut scan_error = None;
    let mut hashing = Hashing::new(io::sink());
    for batch in rx {
        for b in batch.iter() {
            if scan_error.is_none() {
                if let Err(e) = scanner.feed(b) {
                    scan_error = Some(e);
                }
            }
            if hash {
                // A sink never fails.
                let _ = hashing.write_all(b);
            }
        }
    }
    let (_, sha, size) = hashing.finish();
    let manifest = match scan_error {
        Some(e) => Err(e),
        None => scanner.finish(),
    };
    (hash.then_some((sha, size)), manifest)
}

/// The writer thread. A gzip archive's sha256 and size are of what is written, so they come
/// from here.
fn write_batches(rx: &mpsc::Receiver<Batch>, sink: Sink) -> io::Result<Option<(String, u64)>> {
    match sink {
        Sink::File { file, gzip: false } => {
            let mut direct = DirectFile::new(file);
            if direct.is_direct() {
                for batch in rx {
                    for b in batch.iter() {
                        direct.write_all(b)?;
                    }
                }
                direct.finish()?;
                return Ok(None);
            }
            // Where the filesystem takes no O_DIRECT: through the page cache, with writeback
            // started as it goes.
            let mut file = direct.finish()?;
            let mut syncer = Syncer::start(&file)?;
            for batch in rx {
                write_all_vectored(&mut file, &batch)?;
                syncer.wrote(batch.iter().map(Bytes::len).sum());
            }
            syncer.stop();
            Ok(None)
        }
        Sink::File { file, gzip: true } => {
            let level = flate2::Compression::fast();
            let mut syncer = Syncer::start(&file)?;
            let mut w = flate2::write::GzEncoder::new(Hashing::new(BigWrites::new(file)), level);
            for batch in rx {
                for b in batch.iter() {
                    w.write_all(b)?;
                    syncer.wrote(b.len());
                }
            }
            syncer.stop();
            let mut h = w.finish()?;
            h.flush()?;
            let (inner, sha, size) = h.finish();
            inner.into_inner()?;
            Ok(Some((sha, size)))
        }
        Sink::Stdout => {
            let mut w = BigWrites::new(io::stdout().lock());
            for batch in rx {
                for b in batch.iter() {
                    w.write_all(b)?;
                }
            }
            drop(w.into_inner()?);
            Ok(None)
        }
    }
}

/// Bytes between two writeback starts.
const SYNC_EVERY: usize = 32 << 20;

/// Starts the kernel's writeback of each 32 MiB written, in the background while the stream
/// still comes in, so that the fsync before the rename finds little left to write: the
/// durability the rename needs costs overlap, not a pause at the end (`docker save -o F && sync F`
/// writes the whole archive at the end).
///
/// `posix_fadvise(DONTNEED)` on a written range starts its writeback without waiting for it
/// (Linux: `WB_SYNC_NONE`) and lets the archive's pages leave the page cache once written, so a
/// large save does not push other processes' data out of memory. (`sync_file_range` would do the
/// first half too but has no safe wrapper; an `fdatasync` per step, tried before, waits for each
/// step and measured slower than docker's write-then-sync.) The calls run on a thread of their
/// own: the writer never waits for the disk.
struct Syncer {
    tx: Option<mpsc::SyncSender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
    since: usize,
}

impl Syncer {
    fn start(file: &File) -> io::Result<Syncer> {
        let f = file.try_clone()?;
        // One pending request at most: requests made while the thread is busy fold into the
        // next, which covers everything written since the last (the file's length, not the
        // bytes received, so that a gzip archive is covered alike).
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let handle = std::thread::spawn(move || {
            let mut done = 0;
            for () in rx {
                let Ok(end) = f.metadata().map(|m| m.len()) else { continue };
                if let Some(len) = std::num::NonZeroU64::new(end.saturating_sub(done)) {
                    let _ = rustix::fs::fadvise(&f, done, Some(len), rustix::fs::Advice::DontNeed);
                    done = end;
                }
            }
        });
        Ok(Syncer { tx: Some(tx), handle: Some(handle), since: 0 })
    }

    fn wrote(&mut self, n: usize) {
        self.since += n;
        if self.since >= SYNC_EVERY {
            self.since = 0;
            if let Some(tx) = &self.tx {
                let _ = tx.try_send(());
            }
        }
    }

    fn stop(mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
