//! `imgguard rmi REF…`: removal that never leaves a `<none>` image in use behind. Observe (every
//! reference must exist; one container list) → for each: apply (looked at once more, refused if
//! a container uses the image and this is its last name, else removed without force; a tag of an
//! image that keeps other tags is only untagged, as docker does) → record → report. There is no
//! force option; a refusal exits 1.

use crate::cli::Format;
use crate::core::event::Event;
use crate::core::image::{ImageInfo, Removal};
use crate::core::policy::KeepReason;
use crate::core::reference::Tag;
use crate::engine::Engine;
use crate::error::{Error, Outcome};
use crate::flow::apply::{self, RmiResult};
use crate::flow::{observe, record::Record};
use crate::host;
use crate::settings::{RmiRef, RmiSettings};
use crate::ui;

/// How long a removal waits for running imgguard builds to end (`[ref:build-lock]`) before it
/// is refused: someone asked for it now, but a build on a busy runner takes seconds.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the command.
pub fn run(s: &RmiSettings) -> Result<Outcome, Error> {
    host::runtime()?.block_on(rmi(s))
}

async fn rmi(s: &RmiSettings) -> Result<Outcome, Error> {
    let engine = observe::connect().await?;
    let (identity, containers) = tokio::join!(engine.identity(), engine.containers());
    let (identity, containers) = (identity?, containers?);
    let mut targets: Vec<(RmiRef, ImageInfo)> = Vec::with_capacity(s.refs.len());
    for r in &s.refs {
        targets.push(resolve(&engine, r).await?);
    }
    // Opened only once every reference is known to exist: a refused call creates nothing.
    let mut ledger = host::ledger()?;
    let mut record = Record::new(&identity, host::now_ms());
    let mut refused = false;
    let mut json = Vec::new();
    for (r, info) in &targets {
        let result =
            apply::remove_reference(&engine, &r.text, r.by_tag, info, &containers, PATIENCE)
                .await?;
        if s.format == Format::Json {
            json.push(json_result(r, info, &result));
        }
        refused |= report(&mut record, r, info, result, s.format == Format::Human)?;
    }
    record.commit(ledger.as_mut())?;
    if s.format == Format::Json {
        ui::json(&json)?;
    }
    Ok(if refused { Outcome::Refused } else { Outcome::Ok })
}

/// One reference's result in `--format json`: `reference`, `image_id`, `action` (`untagged`,
/// `removed`, `refused`, `daemon-refused`, `gone`), `untagged`, `deleted`, `reason`.
fn json_result(r: &RmiRef, info: &ImageInfo, result: &RmiResult) -> serde_json::Value {
    let (action, untagged, deleted, reason) = match result {
        RmiResult::Refused(k) => ("refused", &[][..], &[][..], Some(k.to_string())),
        RmiResult::Done(Removal::Removed { untagged, deleted }, _) => {
            let action = if deleted.is_empty() { "untagged" } else { "removed" };
            (action, &untagged[..], &deleted[..], None)
        }
        RmiResult::Done(Removal::Conflict(msg), _) => {
            ("daemon-refused", &[][..], &[][..], Some(msg.clone()))
        }
        RmiResult::Done(Removal::Gone, _) => ("gone", &[][..], &[][..], None),
    };
    serde_json::json!({
        "reference": r.text,
        "image_id": info.id.as_str(),
        "action": action,
        "untagged": untagged,
        "deleted": deleted,
        "reason": reason,
    })
}

/// The image a reference names. A bare hex name that is no tag is read as a short image ID, as
/// docker does.
async fn resolve(engine: &Engine, r: &RmiRef) -> Result<(RmiRef, ImageInfo), Error> {
    if let Some(info) = engine.inspect(&r.text).await? {
        return Ok((r.clone(), info));
    }
    if let Some(short) = &r.short_id {
        if let Some(info) = engine.inspect(short).await? {
            let hex = info.id.as_str().trim_start_matches("sha256:");
            if hex.starts_with(short.as_str()) {
                let by_id = RmiRef { text: info.id.to_string(), by_tag: false, short_id: None };
                return Ok((by_id, info));
            }
        }
    }
    Err(Error::Usage(format!("no such image: {}", r.text)))
}

/// Says (on stdout only for people) and records what became of one reference; true when it was
/// refused.
fn report(
    record: &mut Record,
    r: &RmiRef,
    info: &ImageInfo,
    result: RmiResult,
    human: bool,
) -> Result<bool, Error> {
    let say = |line: String| if human { ui::say(line) } else { Ok(()) };
    let (engine, now) = (record.engine().to_string(), record.now());
    match result {
        RmiResult::Refused(KeepReason::BuildRunning) => {
            ui::note(format!(
                "not removing {} now: an imgguard build is still running after {} s (a removal \
                 could break its cache lookup); try again",
                r.text,
                PATIENCE.as_secs()
            ));
            Ok(true)
        }
        RmiResult::Refused(reason) => {
            ui::note(format!(
                "refusing to remove {}: {} {reason}; removing it would leave a <none> image \
                 behind (stop and remove the container first)",
                r.text,
                info.id.short()
            ));
            Ok(true)
        }
        RmiResult::Done(Removal::Removed { untagged, deleted }, orphan) => {
            for t in &untagged {
                say(format!("untagged {t}"))?;
                let tag = Tag::parse(t).map_or_else(|_| t.clone(), |t| t.to_string());
                record.push(Event::untag(&engine, now, &tag, info.id.as_str()));
            }
            for d in &deleted {
                say(format!("removed {d}"))?;
                record.push(Event::removed_by_rmi(&engine, now, d, &r.text));
            }
            // Its build cache goes later, once no build can be about to use it.
            if let Some(o) = orphan {
                record.push(Event::deferred_parent(
                    &engine,
                    now,
                    o.parent.as_str(),
                    o.child.as_str(),
                ));
            }
            Ok(false)
        }
        RmiResult::Done(Removal::Conflict(msg), _) => {
            ui::note(format!("the daemon refused to remove {}: {msg}", r.text));
            Ok(true)
        }
        RmiResult::Done(Removal::Gone, _) => {
            say(format!("{}: already gone", r.text))?;
            Ok(false)
        }
    }
}
