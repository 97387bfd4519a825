//! `imgguard prune`: removes the dangling images nothing needs. Take the prune lock (one prune
//! per ledger) → observe (the survey) → plan (pure, [`crate::core::dangling::plan_prune`]),
//! printed first; `--dry-run` stops there and changes neither images nor the ledger → apply (the
//! one removal path: re-checked, never forced; the daemon's refusal is reported as kept) →
//! record in one transaction (then the ledger's retention, at most once a day) → report.

use serde::Serialize;

use crate::cli::Format;
use crate::core::dangling::{self, PruneDecision};
use crate::core::event::ReasonKind;
use crate::core::policy::Verdict;
use crate::error::{Error, Outcome};
use crate::flow::observe::{self, Survey};
use crate::flow::{apply, record::Record, retain};
use crate::host;
use crate::ledger::Ledger;
use crate::settings::PruneSettings;
use crate::ui::{self, explained, Progress};

#[derive(Serialize)]
struct JsonReport<'a> {
    dry_run: bool,
    reclaimed_bytes: i64,
    images: Vec<JsonPruned<'a>>,
}

#[derive(Serialize)]
struct JsonPruned<'a> {
    #[serde(flatten)]
    image: explained::JsonImage<'a>,
    /// `remove` (dry run), `removed`, `gone`, or `kept`.
    action: &'static str,
}

/// How long prune waits in all for running imgguard builds to end (`[ref:build-lock]`); what
/// they still hold up then is deferred to the next build or prune.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the command.
pub fn run(s: &PruneSettings) -> Result<Outcome, Error> {
    if !s.dry_run {
        host::clean_stale_build_dirs();
    }
    // Nothing is created before the daemon has answered (a dry run creates nothing at all).
    let mut ledger = host::existing_ledger()?;
    let lock = match ledger.as_deref() {
        Some(l) => l.prune_lock()?,
        None => crate::ledger::prune_lock_without_ledger(&host::env_var)?,
    };
    let Some(lock) = lock else {
        let place = match ledger.as_deref() {
            Some(l) => l.location(),
            None => crate::ledger::location(&host::env_var)?.display().to_string(),
        };
        ui::note(format!(
            "another imgguard prune is running on this ledger ({place}); try again later"
        ));
        return Ok(Outcome::Refused);
    };
    let outcome = host::runtime()?.block_on(prune(s, ledger.take()));
    drop(lock);
    outcome
}

async fn prune(s: &PruneSettings, ledger: Option<Box<dyn Ledger>>) -> Result<Outcome, Error> {
    let survey = observe::survey(ledger.as_deref()).await?;
    let mut plan = dangling::plan_prune(survey.explain(&s.labels), &s.rules, survey.now);
    let human = s.format == Format::Human;
    if human {
        print_plan(&plan, s.dry_run)?;
    }
    if s.dry_run {
        if !human {
            print_json(&plan, true)?;
        }
        return Ok(Outcome::Ok);
    }
    let mut record = Record::new(&survey.identity, survey.now);
    record.extend(survey.moves.iter().cloned());
    let until = std::time::Instant::now() + PATIENCE;
    let (attempted, orphans) = remove(&survey, &mut plan, human).await?;
    record.fates(&attempted, ReasonKind::Pruned);
    let freed = free_chain(&survey, orphans, s.rules.min_age_ms, until, &mut record, human).await?;
    // Created now if this is the first prune: the daemon has answered.
    let mut ledger = match ledger {
        Some(l) => l,
        None => host::ledger()?,
    };
    record.commit(ledger.as_mut())?;
    retain::apply_if_due(
        ledger.as_mut(),
        s.retention_ms,
        &survey.identity.id,
        &survey.images,
        survey.now,
    )?;
    if human {
        let removed: Vec<&PruneDecision> =
            plan.iter().filter(|d| d.verdict == Verdict::Remove).collect();
        let reclaimed: i64 = removed.iter().map(|d| d.explained.image.size).sum();
        let count = removed.len() + freed;
        ui::say(format!("reclaimed {} ({count} images)", ui::size_i64(reclaimed)))?;
    } else {
        print_json(&plan, false)?;
    }
    Ok(Outcome::Ok)
}

/// Frees the build cache the removals left, level by level (`[ref:removal-grace]`: each level
/// waits out the grace period first), when `--min-age` allows images that young; else it stays
/// recorded as deferred for a later prune. Returns how many were removed.
async fn free_chain(
    survey: &Survey,
    mut orphans: Vec<apply::Orphan>,
    min_age_ms: i64,
    until: std::time::Instant,
    record: &mut Record,
    human: bool,
) -> Result<usize, Error> {
    let mut removed = 0;
    // A chain is as long as a Dockerfile; the bound only guards against a cycle.
    for _ in 0..64 {
        if orphans.is_empty() {
            break;
        }
        record.deferred(&orphans);
        if min_age_ms > apply::REMOVAL_GRACE_MS {
            break;
        }
        let ripe = host::now_ms().saturating_add(apply::REMOVAL_GRACE_MS);
        let pending: Vec<_> = orphans
            .iter()
            .map(|o| (o.parent.clone(), ripe - apply::REMOVAL_GRACE_MS, Some(o.child.clone())))
            .collect();
        let (freed, next) =
            apply::free_parents(&survey.engine, &pending, ripe, left(until)).await?;
        for d in &freed {
            if d.verdict == Verdict::Remove {
                removed += 1;
                if human {
                    let child = d.child.as_ref().map_or("", |c| c.short());
                    ui::say(format!("removed {} (build cache of {child})", d.image.short()))?;
                }
            }
        }
        record.fates(&freed, ReasonKind::Pruned);
        orphans = next;
    }
    Ok(removed)
}

/// What is left of the wait for running builds (`[ref:build-lock]`) that ends at `until`.
fn left(until: std::time::Instant) -> std::time::Duration {
    until.saturating_duration_since(std::time::Instant::now())
}

/// Removes what the plan lets go, one by one, no sooner than the grace period after each became
/// dangling (`[ref:removal-grace]`), with progress on a terminal; returns the decisions it acted
/// on, with what became of each, and the parents the removals left.
async fn remove(
    survey: &Survey,
    plan: &mut [PruneDecision],
    human: bool,
) -> Result<(Vec<PruneDecision>, Vec<apply::Orphan>), Error> {
    let len = plan.iter().filter(|d| d.verdict == Verdict::Remove).count() as u64;
    let not_before = plan
        .iter()
        .filter(|d| d.verdict == Verdict::Remove)
        .map(|d| {
            let made = d.explained.image.created_s.saturating_mul(1000);
            d.explained.cause.since_ms().unwrap_or(made)
        })
        .max()
        .map_or(0, |since| since.saturating_add(apply::REMOVAL_GRACE_MS));
    let bar = ui::progress(&Progress::Items { len, what: "removing" });
    let mut lines = Vec::new();
    let mut attempted = Vec::new();
    let orphans = apply::apply(&survey.engine, plan, not_before, PATIENCE, |d| {
        bar.inc(1);
        attempted.push(d.clone());
        let id = d.explained.image.id.short();
        let line = match &d.verdict {
            Verdict::Remove => format!("removed {id}"),
            Verdict::Gone => format!("{id} was already gone"),
            Verdict::Keep(why) => format!("kept {id}: {why}"),
        };
        if human {
            bar.suspend(|| lines.push(ui::say(&line)));
        }
    })
    .await?;
    bar.finish_and_clear();
    lines.into_iter().collect::<Result<(), Error>>()?;
    Ok((attempted, orphans))
}

fn print_plan(plan: &[PruneDecision], dry_run: bool) -> Result<(), Error> {
    let going: Vec<&PruneDecision> = plan.iter().filter(|d| d.verdict == Verdict::Remove).collect();
    let reclaimable: i64 = going.iter().map(|d| d.explained.image.size).sum();
    ui::say(format!(
        "{} {} of {} dangling images, {}:",
        if dry_run { "would remove" } else { "removing" },
        going.len(),
        plan.len(),
        ui::size_i64(reclaimable)
    ))?;
    for d in plan {
        let verdict = match d.keep() {
            None => "remove".to_string(),
            Some(k) => format!("keep: {k}"),
        };
        ui::say(format!(
            "  {:<19}  {:>10}  {:<15}  {verdict}",
            d.explained.image.id.short(),
            ui::size_i64(d.explained.image.size),
            d.explained.cause.name()
        ))?;
    }
    Ok(())
}

fn print_json(plan: &[PruneDecision], dry_run: bool) -> Result<(), Error> {
    let mut reclaimed = 0;
    let images = plan
        .iter()
        .map(|d| {
            let action = match &d.verdict {
                Verdict::Remove if dry_run => "remove",
                Verdict::Remove => "removed",
                Verdict::Gone => "gone",
                Verdict::Keep(_) => "kept",
            };
            if matches!(action, "remove" | "removed") {
                reclaimed += d.explained.image.size;
            }
            JsonPruned { image: explained::json_image(d), action }
        })
        .collect();
    ui::json(&JsonReport { dry_run, reclaimed_bytes: reclaimed, images })
}
