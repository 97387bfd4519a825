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

use super::build::{apply, fate_event, snapshot};
use super::transfer::{self, CHUNK};

/// Size of each piece of the upload: 256 KiB, few enough in flight to keep memory flat.
const UPLOAD_CHUNK: usize = 256 << 10;
use crate::cli::LoadArgs;
use crate::config::Config;
use crate::core::archive::{self, ArchiveImage};
use crate::core::event::{self as ledger, Event, EventKind, OUTCOME_NAMELESS};
use crate::core::policy::{self, Candidate, Decision, Rules};
use crate::core::reference::Tag;
use crate::engine::ImageId;
use crate::error::{Error, Outcome};

/// Runs the command.
pub fn run(args: &LoadArgs, config: &Config) -> Result<Outcome, Error> {
    let extra: Vec<Tag> = args
        .tags
        .iter()
        .map(|t| Tag::parse(t))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let source = Source::open(args.input.as_deref())?;
    let mut file = source.file()?;
    let images = transfer::read_manifest(&mut file, &source.shown)?;
    if !extra.is_empty() && images.len() != 1 {
        return Err(Error::Usage(format!(
            "--tag names one image, and {} holds {}",
            source.shown.display(),
            images.len()
        )));
    }
    let rules =
        Rules { keep_previous: config.file.keep_previous, protect: config.file.protect.clone() };
    super::runtime()?.block_on(load(args, &extra, &source, file, &images, &rules))
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

/// One tag the load (or `--restore-tags`, `--tag`) put in place.
struct Placed {
    tag: String,
    id: ImageId,
    before: Option<ImageId>,
    kind: EventKind,
    how: &'static str,
}

async fn load(
    args: &LoadArgs,
    extra: &[Tag],
    source: &Source,
    file: File,
    images: &[ArchiveImage],
    rules: &Rules,
) -> Result<Outcome, Error> {
    let engine = super::connect().await?;
    let identity = engine.identity().await?;
    let mut store = super::open_ledger()?;

    // 1. Where the archive's tags point now.
    let tags = archive::all_tags(images);
    let mut before = Vec::with_capacity(tags.len());
    for t in &tags {
        before.push(engine.inspect(t).await?.map(|i| i.id));
    }

    // 2. Stream the file to the daemon.
    let size = file.metadata().map_err(|e| Error::io(&source.shown, e))?.len();
    let bar = transfer::progress(size, &format!("loading {}", source.shown.display()));
    if bar.is_hidden() {
        note(&format!("loading {} ({})", source.shown.display(), transfer::human_size(size)));
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
    let said = archive::parse_load_messages(messages.iter().map(String::as_str));

    // 3. What the load did to each tag.
    let now = super::now_ms();
    let known =
        store.events(Some(&identity.id), &tags.iter().map(String::as_str).collect::<Vec<_>>())?;
    let mut events = Vec::new();
    let mut placed: Vec<Placed> = Vec::new();
    let archive_event = |kind: EventKind| {
        let mut e = Event::new(&identity.id, now, kind);
        e.archive_path.clone_from(&source.recorded);
        e.archive_sha256 = Some(sha256.clone());
        e.archive_size = i64::try_from(archive_size).ok();
        e
    };
    let mut after = Vec::with_capacity(tags.len());
    for t in &tags {
        after.push(engine.inspect(t).await?.map(|i| i.id));
    }
    for ((tag, before), after) in tags.iter().zip(&before).zip(&after) {
        let Some(img) = images.iter().find(|i| i.tags.contains(tag)) else { continue };
        if after.as_ref() != Some(&img.id) {
            // Moved again by someone else while the load ran: decide nothing on stale facts.
            note(&format!(
                "{tag} is on {} after the load, not on {}: moved meanwhile, nothing removed",
                after.as_ref().map_or("nothing", ImageId::short),
                img.id.short()
            ));
            continue;
        }
        if let Some(recorded) = ledger::current(&known, &identity.id, tag) {
            if before.as_ref().map(ImageId::as_str) != Some(recorded) {
                let mut m = Event::new(&identity.id, now, EventKind::MovedOutside);
                m.tag = Some(tag.clone());
                m.image_id = before.as_ref().map(ToString::to_string);
                m.previous_id = Some(recorded.to_string());
                m.reason = Some("moved outside imgguard".into());
                events.push(m);
            }
        }
        let mut e = archive_event(EventKind::Load);
        e.tag = Some(tag.clone());
        e.image_id = Some(img.id.to_string());
        e.previous_id = before.as_ref().map(ToString::to_string);
        events.push(e);
        placed.push(Placed {
            tag: tag.clone(),
            id: img.id.clone(),
            before: before.clone(),
            kind: EventKind::Load,
            how: "loaded",
        });
    }

    // 4. Images without a name: say so, and name them if asked.
    let mut hints = Vec::new();
    for id in archive::nameless(images) {
        let mut e = archive_event(EventKind::Load);
        e.image_id = Some(id.to_string());
        e.outcome = Some(OUTCOME_NAMELESS.into());
        events.push(e);
        note(&format!(
            "warning: {} has no name in {}: it is <none>:<none> now",
            id.short(),
            source.shown.display()
        ));
        let history = store.image_events(&identity.id, id.as_str())?;
        let mut free = Vec::new();
        let mut elsewhere = Vec::new();
        for tag in ledger::tags_of_image(&history, &identity.id, id.as_str()) {
            match engine.inspect(&tag).await?.map(|i| i.id) {
                None => free.push(tag),
                Some(other) if other == *id => {}
                Some(other) => elsewhere.push((tag, other)),
            }
        }
        for (tag, other) in &elsewhere {
            note(&format!(
                "  the ledger knows it as {tag}, which is on {} now: not moved",
                other.short()
            ));
        }
        if args.restore_tags {
            for tag in free {
                engine.tag(id, &tag).await?;
                placed.push(Placed {
                    tag,
                    id: id.clone(),
                    before: None,
                    kind: EventKind::Tag,
                    how: "restored from the ledger",
                });
            }
        } else if !free.is_empty() {
            note(&format!("  the ledger knows it as {}", free.join(", ")));
            hints.push(format!(
                "`imgguard load{} --restore-tags` puts {} back",
                source.recorded.as_ref().map_or(String::new(), |_| format!(
                    " -i {}",
                    crate::core::naming::quote(&source.shown.to_string_lossy())
                )),
                if free.len() == 1 { "it" } else { "them" }
            ));
        } else if extra.is_empty() && elsewhere.is_empty() {
            hints.push("the ledger knows no tag for it: name it with `--tag NAME:TAG`".into());
        }
    }
    for tag in extra {
        let id = &images[0].id;
        let before = engine.inspect(tag.as_str()).await?.map(|i| i.id);
        engine.tag(id, tag.as_str()).await?;
        placed.push(Placed {
            tag: tag.as_str().to_string(),
            id: id.clone(),
            before,
            kind: EventKind::Tag,
            how: "tagged (--tag)",
        });
    }
    for p in placed.iter().filter(|p| p.kind == EventKind::Tag) {
        let mut e = Event::new(&identity.id, now, EventKind::Tag);
        e.tag = Some(p.tag.clone());
        e.image_id = Some(p.id.to_string());
        e.previous_id = p.before.as_ref().map(ToString::to_string);
        events.push(e);
    }

    // 5. The images whose tags the load took: the build's removal policy, never forced.
    let candidates: Vec<Candidate> = placed
        .iter()
        .filter_map(|p| {
            let b = p.before.as_ref()?;
            (*b != p.id).then(|| Candidate {
                image: b.clone(),
                left_by: vec![(p.tag.clone(), p.id.clone())],
            })
        })
        .collect();
    let decisions = if candidates.is_empty() {
        Vec::new()
    } else {
        let snap = snapshot(&engine, &candidates).await?;
        apply(&engine, policy::plan(&candidates, &snap, rules)).await?
    };
    for d in &decisions {
        events.push(fate_event(&identity.id, now, d));
    }
    store.append(Some((&identity.id, &identity.name, &engine.endpoint().host)), &events)?;

    print_placed(&placed, &decisions, &said);
    for h in hints {
        note(&h);
    }
    note(&format!(
        "loaded {} image{} from {}: {}, sha256 {}",
        images.len(),
        if images.len() == 1 { "" } else { "s" },
        source.shown.display(),
        transfer::human_size(archive_size),
        sha256
    ));
    Ok(Outcome::Ok)
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

fn print_placed(placed: &[Placed], decisions: &[Decision], said: &archive::LoadMessages) {
    let fate = |id: &ImageId| super::build::fate_text(decisions, id);
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
        note(&line);
    }
}

fn note(msg: &str) {
    let _ = writeln!(io::stderr(), "imgguard: {msg}");
}
