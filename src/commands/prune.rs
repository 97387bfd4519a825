//! `imgguard prune`: removes the dangling images nothing needs. The plan (pure,
//! [`crate::core::dangling::plan_prune`]) is printed first; `--dry-run` stops there and changes neither
//! images nor the ledger. Each removal looks at the image once more just before it and is never
//! forced; the daemon's refusal is reported as kept, in its words. One prune at a time per ledger.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::explain::{human_size, json_image, survey, JsonImage};
use crate::cli::{Format, PruneArgs};
use crate::config::Config;
use crate::core::dangling::{self, Explained, PruneKeep, PruneRules};
use crate::core::event::{Event, EventKind};
use crate::engine::{Engine, Removal};
use crate::error::{Error, Outcome};
use crate::ledger::sqlite::{self as store, Store};

/// What became of one planned removal.
enum Done {
    Removed,
    Gone,
    Kept(String),
}

#[derive(Serialize)]
struct JsonReport<'a> {
    dry_run: bool,
    reclaimed_bytes: i64,
    images: Vec<JsonPruned<'a>>,
}

#[derive(Serialize)]
struct JsonPruned<'a> {
    #[serde(flatten)]
    image: JsonImage<'a>,
    /// `remove` (dry run), `removed`, `gone`, or `kept`.
    action: &'static str,
}

/// Runs the command.
pub fn run(args: &PruneArgs, config: &Config) -> Result<Outcome, Error> {
    let min_age_ms = dangling::parse_duration(&args.min_age)
        .map_err(|e| Error::Usage(format!("--min-age: {e}")))?;
    let rules = PruneRules {
        keep: args.keep,
        min_age_ms,
        unknown: args.unknown,
        protect: config.file.protect.clone(),
    };
    let path = store::default_path(&super::env_var)?;
    let Some(_lock) = lock(&path)? else {
        eprintln!(
            "imgguard: another imgguard prune is running on this ledger ({}); try again later",
            path.display()
        );
        return Ok(Outcome::Refused);
    };
    // A dry run must change nothing, not even create the ledger.
    let mut store =
        if args.dry_run { super::open_existing_ledger()? } else { Some(Store::open(&path)?) };
    super::runtime()?.block_on(prune(args, &rules, store.as_mut()))
}

/// Takes the prune lock beside the ledger; `None` when another prune holds it.
fn lock(ledger: &std::path::Path) -> Result<Option<File>, Error> {
    let path: PathBuf = ledger.with_extension("prune.lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

async fn prune(
    args: &PruneArgs,
    rules: &PruneRules,
    store: Option<&mut Store>,
) -> Result<Outcome, Error> {
    let survey = survey(store.as_deref()).await?;
    let explained = survey.explain(&args.label);
    let plan = dangling::plan_prune(&explained, rules, survey.now);
    let human = args.format == Format::Human;
    if human {
        print_plan(&explained, &plan, args.dry_run);
    }
    if args.dry_run {
        if !human {
            print_json(&explained, &plan, &[], true)?;
        }
        return Ok(Outcome::Ok);
    }

    let mut done: Vec<Option<Done>> = Vec::with_capacity(plan.len());
    let mut events = Vec::new();
    let bar = super::progress_bar(plan.iter().filter(|k| k.is_none()).count() as u64, "removing");
    for (e, keep) in explained.iter().zip(&plan) {
        if keep.is_some() {
            done.push(None);
            continue;
        }
        let outcome = remove_one(&survey.engine, e).await?;
        bar.inc(1);
        let mut ev = Event::new(
            &survey.identity.id,
            survey.now,
            if matches!(outcome, Done::Kept(_)) { EventKind::Kept } else { EventKind::Removed },
        );
        ev.image_id = Some(e.image.id.to_string());
        ev.tag = e.former_tags.first().cloned();
        let (word, reason) = match &outcome {
            Done::Removed => ("removed", format!("pruned: {}", e.cause)),
            Done::Gone => ("gone", "already removed by someone else".to_string()),
            Done::Kept(why) => ("kept", why.clone()),
        };
        ev.outcome = Some(word.into());
        ev.reason = Some(reason);
        events.push(ev);
        if human {
            bar.suspend(|| match &outcome {
                Done::Removed => say!("removed {}", e.image.id.short()),
                Done::Gone => say!("{} was already gone", e.image.id.short()),
                Done::Kept(why) => say!("kept {}: {why}", e.image.id.short()),
            });
        }
        done.push(Some(outcome));
    }
    bar.finish_and_clear();
    if let Some(store) = store {
        survey.record_moves(store, &events)?;
    }
    let reclaimed: i64 = explained
        .iter()
        .zip(&done)
        .filter(|(_, d)| matches!(d, Some(Done::Removed)))
        .map(|(e, _)| e.image.size)
        .sum();
    let removed = done.iter().filter(|d| matches!(d, Some(Done::Removed))).count();
    if human {
        say!("reclaimed {} ({removed} images)", human_size(reclaimed));
    } else {
        print_json(&explained, &plan, &done, false)?;
    }
    Ok(Outcome::Ok)
}

/// Looks once more, then removes without force.
async fn remove_one(engine: &Engine, e: &Explained) -> Result<Done, Error> {
    match engine.inspect(e.image.id.as_str()).await? {
        None => return Ok(Done::Gone),
        Some(info) if !info.repo_tags.is_empty() => {
            return Ok(Done::Kept(format!("tagged meanwhile as {}", info.repo_tags.join(", "))));
        }
        Some(_) => {}
    }
    Ok(match engine.remove(&e.image.id).await? {
        Removal::Removed { .. } => Done::Removed,
        Removal::Gone => Done::Gone,
        Removal::Conflict(msg) => Done::Kept(format!("the daemon refused: {msg}")),
    })
}

fn print_plan(explained: &[Explained], plan: &[Option<PruneKeep>], dry_run: bool) {
    let mut out = std::io::stdout().lock();
    let reclaimable: i64 =
        explained.iter().zip(plan).filter(|(_, k)| k.is_none()).map(|(e, _)| e.image.size).sum();
    let n = plan.iter().filter(|k| k.is_none()).count();
    let _ = writeln!(
        out,
        "{} {n} of {} dangling images, {}:",
        if dry_run { "would remove" } else { "removing" },
        explained.len(),
        human_size(reclaimable)
    );
    for (e, keep) in explained.iter().zip(plan) {
        let verdict = match keep {
            None => "remove".to_string(),
            Some(k) => format!("keep: {k}"),
        };
        let _ = writeln!(
            out,
            "  {:<19}  {:>9}  {:<15}  {verdict}",
            e.image.id.short(),
            human_size(e.image.size),
            e.cause.name()
        );
    }
}

fn print_json(
    explained: &[Explained],
    plan: &[Option<PruneKeep>],
    done: &[Option<Done>],
    dry_run: bool,
) -> Result<(), Error> {
    let mut reclaimed = 0;
    let images = explained
        .iter()
        .zip(plan)
        .enumerate()
        .map(|(i, (e, keep))| {
            let mut image = json_image(e, keep.as_ref());
            let action = match done.get(i) {
                _ if dry_run && keep.is_none() => {
                    reclaimed += e.image.size;
                    "remove"
                }
                Some(Some(Done::Removed)) => {
                    reclaimed += e.image.size;
                    "removed"
                }
                Some(Some(Done::Gone)) => "gone",
                Some(Some(Done::Kept(why))) => {
                    image.removable = false;
                    image.reason = Some(why.clone());
                    "kept"
                }
                _ => "kept",
            };
            JsonPruned { image, action }
        })
        .collect();
    let report = JsonReport { dry_run, reclaimed_bytes: reclaimed, images };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &report)
        .map_err(|e| Error::Other(format!("cannot write JSON: {e}")))?;
    let _ = writeln!(out);
    Ok(())
}
