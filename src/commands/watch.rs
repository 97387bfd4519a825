//! `imgguard watch`: follows the daemon's event stream and records every tag move as it
//! happens, so that every `<none>` image made while it runs is explained, even one made by plain
//! `docker build`, `docker tag`, `docker load` or `docker rmi -f`.
//!
//! Connect → seed the map of tags (the ledger's state, one image list, one container list) →
//! replay what happened since the last event handled (`since=` the cursor the ledger keeps) →
//! reconcile the map with the list (tags that moved while nobody watched) → follow live. Each
//! event waits out the grace period, and any `imgguard build` run in progress on its tags (the
//! build records its own moves, `[ref:intent-first]`); then the pure core
//! ([`crate::core::watch`]) says what it means, and the ready events are recorded with the
//! cursor in one transaction (duplicates skipped by the ledger). With `--remove-superseded` the
//! images plain docker superseded go through the one removal path ([`apply`]). A lost
//! connection: back off, say so, resume. SIGTERM/SIGINT: the transaction under way ends, exit 0.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::Format;
use crate::core::dangling::LabelFilter;
use crate::core::event::{self, Event, EventKind, Intent, ReasonKind};
use crate::core::image::{EngineIdentity, ImageId, ImageInfo};
use crate::core::policy::{self, Candidate, Rules};
use crate::core::watch::{covered, DaemonEvent, Subject, Watch};
use crate::engine::{Engine, EngineError};
use crate::error::{Error, Outcome};
use crate::flow::{apply, observe, record::Record};
use crate::host;
use crate::ledger::Ledger;
use crate::settings::WatchSettings;
use crate::ui;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How far before the cursor a replay starts (ns).
const REPLAY_MARGIN_NS: i64 = 5_000_000_000;

/// How many times (50 ms apart) Podman's image is looked at again after its `build` event, until
/// the build has tagged it.
const BUILD_TAG_TRIES: u32 = 20;

/// How often held events are looked at.
const TICK: Duration = Duration::from_millis(200);

/// Runs the command.
pub fn run(s: &WatchSettings) -> Result<Outcome, Error> {
    host::runtime()?.block_on(watch(s))
}

async fn watch(s: &WatchSettings) -> Result<Outcome, Error> {
    // Nothing is created before the daemon has answered.
    observe::connect().await?;
    let mut w = Watcher {
        grace: Duration::from_millis(u64::try_from(s.grace_ms).unwrap_or(0)),
        grace_ms: s.grace_ms,
        format: s.format,
        rules: s.remove.clone(),
        labels: s.labels.clone(),
        ledger: host::ledger()?,
        map: None,
        held: VecDeque::new(),
        cursor: None,
        floor: 0,
        seen: VecDeque::new(),
        seen_keys: HashSet::new(),
        pending: Vec::new(),
        signals: host::Signals::catch(),
    };
    let mut backoff = Duration::ZERO;
    let mut connected = false;
    loop {
        let started = Instant::now();
        match w.session(&mut connected).await {
            Ok(()) => return Ok(Outcome::Ok),
            // The daemon went away (stopped, restarted, the connection cut): resume.
            Err(e) if connected && lost(&e) => {
                if started.elapsed() > MAX_BACKOFF {
                    backoff = Duration::ZERO;
                }
                backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                ui::note(format!("{e}; reconnecting in {} s", backoff.as_secs()));
                if w.signals.during(backoff).await {
                    return Ok(Outcome::Ok);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether an error means the connection is gone (and a later one may work).
fn lost(e: &Error) -> bool {
    matches!(e, Error::Engine(EngineError::WentAway { .. } | EngineError::Unreachable { .. }))
}

/// What `watch` carries from one connection to the next.
struct Watcher {
    grace: Duration,
    grace_ms: i64,
    format: Format,
    /// The removal rules with `--remove-superseded`.
    rules: Option<Rules>,
    /// `--label`.
    labels: Vec<LabelFilter>,
    ledger: Box<dyn Ledger>,
    /// Where each tag points, as of the last event handled.
    map: Option<Watch>,
    /// Events received and not yet handled, each with when it arrived.
    held: VecDeque<(Instant, DaemonEvent)>,
    /// The time (ns) of the last event handled, as the ledger has it.
    cursor: Option<i64>,
    /// The cursor this process started from: events up to it were handled before.
    floor: i64,
    /// The events handled in the last [`REPLAY_MARGIN_NS`] before the cursor, so that a replay
    /// handles none twice.
    seen: VecDeque<(i64, String)>,
    /// The same, to look up.
    seen_keys: HashSet<String>,
    /// Superseded images to remove, each no sooner than its time (ms).
    pending: Vec<(i64, Candidate)>,
    signals: host::Signals,
}

/// One connection.
struct Live {
    engine: Engine,
    identity: EngineIdentity,
}

impl Watcher {
    /// Connects, catches up, and follows the stream until a signal (`Ok`) or an error.
    async fn session(&mut self, connected: &mut bool) -> Result<(), Error> {
        let engine = observe::connect().await?;
        let identity = observe::identity(&engine, self.ledger.as_mut(), host::now_ms()).await?;
        let list_ns = now_ns();
        let (images, containers) = tokio::join!(engine.images(), engine.containers());
        let (images, containers) = (images?, containers?);
        if self.map.as_ref().is_none_or(|m| m.engine() != identity.id) {
            let tracked = self.ledger.tracked_tags(&identity.id)?;
            self.map = Some(
                Watch::new(&identity.id, &tracked, &images, &containers)
                    .only_labelled(&self.labels, &images),
            );
            self.cursor = self.ledger.watch_cursor(&identity.id)?;
            self.floor = self.cursor.unwrap_or(0);
            self.seen.clear();
            self.seen_keys.clear();
        }
        let from = self.cursor.map_or_else(|| "now".to_string(), |c| host::rfc3339(c / 1_000_000));
        let again = if *connected { "reconnected: " } else { "" };
        ui::note(format!(
            "{again}watching {} (engine {}), from {from}{}",
            identity.endpoint,
            identity.name,
            if self.rules.is_some() { "; removing superseded images" } else { "" }
        ));
        *connected = true;
        let live = Live { engine, identity };
        // What was held is asked for again from the cursor.
        self.held.clear();
        if let Some(since) = self.cursor {
            // A little before the cursor: the daemon stamps events when they happen, and two at
            // once may arrive in the other order; the events handled since are known.
            let since = since.saturating_sub(REPLAY_MARGIN_NS).max(self.floor);
            self.replay(&live, since, list_ns).await?;
        }
        let open = self.open_runs(&live)?;
        let map = self.map.as_mut().expect("seeded above");
        let moved: Vec<Event> = map
            .reconcile(&images, &containers, host::now_ms())
            .into_iter()
            .filter(|e| !covered(&e.tag.iter().cloned().collect::<Vec<_>>(), &open))
            .collect();
        self.commit(&live, &moved, self.cursor.unwrap_or(0))?;
        self.follow(&live, list_ns).await
    }

    /// Handles the events from `since` to `until` (ns) that the daemon still has.
    async fn replay(&mut self, live: &Live, since: i64, until: i64) -> Result<(), Error> {
        let mut stream = live.engine.events(Some(since), Some(until));
        let ready = Instant::now().checked_sub(self.grace).unwrap_or_else(Instant::now);
        while let Some(ev) = stream.next().await {
            let ev = with_tags(&live.engine, ev?, !self.labels.is_empty()).await?;
            self.held.push_back((ready, ev));
        }
        self.flush(live, true)
    }

    /// Follows the live stream from `since` (ns).
    async fn follow(&mut self, live: &Live, since: i64) -> Result<(), Error> {
        let mut stream = live.engine.events(Some(since), None);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = self.signals.next() => return Ok(()),
                item = stream.next() => match item {
                    Some(ev) => {
                        let ev = with_tags(&live.engine, ev?, !self.labels.is_empty()).await?;
                        if ev.subject != Subject::Other {
                            self.held.push_back((Instant::now(), ev));
                        }
                    }
                    None => {
                        return Err(EngineError::WentAway {
                            what: "events".into(),
                            message: "the daemon closed the event stream".into(),
                        }
                        .into())
                    }
                },
                _ = tick.tick() => {
                    self.flush(live, false)?;
                    self.remove_due(live).await?;
                }
            }
        }
    }

    /// The build runs in progress on this engine whose imgguard is alive.
    fn open_runs(&self, live: &Live) -> Result<Vec<Intent>, Error> {
        let id = &live.identity.id;
        let open = self.ledger.open_intents(id)?;
        Ok(event::intents(&open, id)
            .into_iter()
            .filter(|r| r.end.is_none() && host::imgguard_alive(r.pid))
            .collect())
    }

    /// Handles the held events that are ready (all of them with `all`, else those older than the
    /// grace period), in order, up to the first one a build run in progress covers; records
    /// them in one transaction with the cursor.
    fn flush(&mut self, live: &Live, all: bool) -> Result<(), Error> {
        let now = Instant::now();
        let ready =
            self.held.iter().take_while(|(at, _)| all || now.duration_since(*at) >= self.grace);
        if ready.count() == 0 {
            return Ok(());
        }
        let open = self.open_runs(live)?;
        let map = self.map.as_mut().expect("seeded at connection");
        let mut events = Vec::new();
        let mut cursor = self.cursor;
        while let Some((at, ev)) = self.held.front() {
            if !(all || now.duration_since(*at) >= self.grace) || covered(&map.tags_of(ev), &open) {
                break;
            }
            let (_, ev) = self.held.pop_front().expect("looked at");
            let key = format!("{} {} {} {:?}", ev.time_nano, ev.action, ev.id, ev.name);
            if ev.time_nano <= self.floor || !self.seen_keys.insert(key.clone()) {
                continue;
            }
            events.extend(map.handle(&ev));
            cursor = cursor.max(Some(ev.time_nano));
            self.seen.push_back((ev.time_nano, key));
        }
        if let Some(c) = cursor {
            while self.seen.front().is_some_and(|(t, _)| *t < c - REPLAY_MARGIN_NS) {
                if let Some((_, key)) = self.seen.pop_front() {
                    self.seen_keys.remove(&key);
                }
            }
        }
        match cursor {
            Some(c) if cursor != self.cursor || !events.is_empty() => self.commit(live, &events, c),
            _ => Ok(()),
        }
    }

    /// Records `events` (those not already there) and the cursor in one transaction, reports
    /// them, and queues the images they superseded for removal.
    fn commit(&mut self, live: &Live, events: &[Event], cursor: i64) -> Result<(), Error> {
        if events.is_empty() && self.cursor.is_none_or(|c| c >= cursor) {
            return Ok(());
        }
        let added = self.ledger.append_watched(&live.identity, events, cursor)?;
        self.cursor = self.cursor.max(Some(cursor)).filter(|c| *c > 0);
        for e in &added {
            self.report(e)?;
            let superseded = (e.kind == EventKind::MovedOutside)
                .then(|| Some((e.tag.clone()?, e.image_id.clone()?, e.previous_id.clone()?)))
                .flatten();
            if let (Some((tag, now, before)), Some(_)) = (superseded, &self.rules) {
                let ready = e.at_ms.saturating_add(self.grace_ms.max(apply::REMOVAL_GRACE_MS));
                let left_by = vec![(tag, ImageId::new(now))];
                self.pending.push((ready, Candidate { image: ImageId::new(before), left_by }));
            }
        }
        Ok(())
    }

    /// `--remove-superseded`: the queued images whose time has come, decided as a build decides
    /// (re-checked, never forced) and recorded in one transaction.
    async fn remove_due(&mut self, live: &Live) -> Result<(), Error> {
        let Some(rules) = &self.rules else { return Ok(()) };
        let now = host::now_ms();
        // Taken off the queue only once recorded: a lost connection leaves them for the next.
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending.iter().cloned().partition(|(at, _)| *at <= now);
        if due.is_empty() {
            return Ok(());
        }
        let candidates: Vec<Candidate> = due.into_iter().map(|(_, c)| c).collect();
        let snapshot = observe::snapshot(&live.engine, &candidates).await?;
        let mut decisions = policy::plan(&candidates, &snapshot, rules);
        // No waiting for builds: a removal they hold up is deferred (`[ref:build-lock]`).
        let no_wait = std::time::Duration::ZERO;
        let orphans = apply::apply(&live.engine, &mut decisions, now, no_wait, |_| {}).await?;
        let mut record = Record::new(&live.identity, now);
        record.fates(&decisions, ReasonKind::Superseded);
        record.deferred(&orphans);
        let events = record.events().to_vec();
        record.commit(self.ledger.as_mut())?;
        self.pending = later;
        events.iter().try_for_each(|e| self.report(e))
    }

    /// One line (or JSON object) for one recorded event.
    fn report(&self, e: &Event) -> Result<(), Error> {
        let line = JsonEvent {
            at: host::rfc3339(e.at_ms),
            at_ms: e.at_ms,
            kind: e.kind.as_str(),
            tag: e.tag.as_deref(),
            image_id: e.image_id.as_deref(),
            previous_id: e.previous_id.as_deref(),
            outcome: e.outcome.map(event::Outcome::as_str),
            reason_kind: e.reason.as_ref().map(|r| r.kind.as_str()),
            reason: e.reason_text(),
        };
        if self.format == Format::Json {
            return ui::json_line(&line);
        }
        let short =
            |id: Option<&str>| id.map_or("-".to_string(), |i| ImageId::new(i).short().into());
        ui::say(format!(
            "{}  {:<13}  {}  {} <- {}  {}",
            line.at,
            line.kind,
            line.tag.unwrap_or("-"),
            short(line.image_id),
            short(line.previous_id),
            line.reason.unwrap_or_default()
        ))
    }
}

/// One recorded event, as `--format json` prints it (one object a line).
#[derive(Serialize)]
struct JsonEvent<'a> {
    /// RFC 3339, UTC.
    at: String,
    at_ms: i64,
    kind: &'a str,
    tag: Option<&'a str>,
    image_id: Option<&'a str>,
    previous_id: Option<&'a str>,
    outcome: Option<&'a str>,
    reason_kind: Option<&'a str>,
    reason: Option<&'a str>,
}

/// The event, with the image's tags looked up now when it needs them, and its labels when
/// `--label` needs them and the event does not carry them (Podman's events carry none).
async fn with_tags(
    engine: &Engine,
    mut ev: DaemonEvent,
    labels: bool,
) -> Result<DaemonEvent, Error> {
    let unlabelled = labels
        && ev.subject == Subject::Image
        && ev.labels.is_empty()
        && matches!(ev.action.as_str(), "tag" | "untag" | "load" | "build");
    if ev.needs_tags() || unlabelled {
        let mut info = look(engine, &ev.id).await?;
        // Podman sends a build's event a moment before it tags the image.
        for _ in 0..BUILD_TAG_TRIES {
            if ev.action != "build" || info.as_ref().is_none_or(|i| !i.repo_tags.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            info = look(engine, &ev.id).await?;
        }
        if ev.needs_tags() {
            ev.tags_now = info.as_ref().map(|i| i.repo_tags.clone());
        }
        if let Some(info) = info.filter(|_| ev.labels.is_empty()) {
            ev.labels = info.labels;
        }
    }
    Ok(ev)
}

/// The image by its full ID (Podman refuses a bare 64-hex name); `None` when it is gone, or
/// going (Podman answers an image removed meanwhile with an error).
async fn look(engine: &Engine, id: &str) -> Result<Option<ImageInfo>, Error> {
    match engine.inspect(ImageId::new(id).as_str()).await {
        Ok(info) => Ok(info),
        Err(EngineError::Api { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn now_ns() -> i64 {
    host::now_ms().saturating_mul(1_000_000)
}
