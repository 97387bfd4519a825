//! `imgguard explain`: every dangling image with its cause and what holds it. Observe (three list
//! calls in parallel, whatever the number of images) → plan (what a plain `prune` would do) →
//! record the tag moves imgguard did not make (`moved-outside`); the ledger's retention, at most
//! once a day → report.

use crate::cli::Format;
use crate::core::dangling;
use crate::error::{Error, Outcome};
use crate::flow::observe;
use crate::flow::record::Record;
use crate::flow::retain;
use crate::host;
use crate::settings::ExplainSettings;
use crate::ui::{self, explained};

/// Runs the command.
pub fn run(s: &ExplainSettings) -> Result<Outcome, Error> {
    let mut ledger = host::existing_ledger()?;
    let survey = host::runtime()?.block_on(observe::survey(ledger.as_deref()))?;
    if let Some(ledger) = ledger.as_deref_mut() {
        let mut record = Record::new(&survey.identity, survey.now);
        record.extend(survey.moves.iter().cloned());
        record.commit(ledger)?;
        retain::apply_if_due(
            ledger,
            s.retention_ms,
            &survey.identity.id,
            &survey.images,
            survey.now,
        )?;
    }
    let plan = dangling::plan_prune(survey.explain(&s.labels), &s.rules, survey.now);
    match s.format {
        Format::Json => {
            let json: Vec<explained::JsonImage<'_>> =
                plan.iter().map(explained::json_image).collect();
            ui::json(&json)?;
        }
        Format::Human => {
            let mut out = std::io::stdout().lock();
            explained::write_table(&mut out, &plan).map_err(|e| Error::io("stdout", e))?;
        }
    }
    Ok(Outcome::Ok)
}
