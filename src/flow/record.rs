//! Record: what a command did becomes events, appended in one transaction at the end
//! (`[tag:one-transaction-per-command]`), so that a crash or a concurrent writer can lose nothing
//! that was committed and never sees half a command.

use crate::core::event::{Event, ReasonKind};
use crate::core::image::EngineIdentity;
use crate::core::policy::Decided;
use crate::error::Error;
use crate::flow::apply::Orphan;
use crate::ledger::Ledger;

/// The events of one command, on one engine, at one time.
pub struct Record {
    identity: EngineIdentity,
    now: i64,
    events: Vec<Event>,
}

impl Record {
    /// An empty record for `identity` at `now` (ms since the epoch).
    pub fn new(identity: &EngineIdentity, now: i64) -> Record {
        Record { identity: identity.clone(), now, events: Vec::new() }
    }

    /// The engine's ID, for the constructors of [`Event`].
    pub fn engine(&self) -> &str {
        &self.identity.id
    }

    /// The time of the command.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Adds events.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        self.events.extend(events);
    }

    /// Adds one event.
    pub fn push(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Adds what became of each decided image: removed (as `removed_as`), kept, or gone.
    pub fn fates<D: Decided>(&mut self, decisions: &[D], removed_as: ReasonKind) {
        for d in decisions {
            self.events.push(Event::fate(&self.identity.id, self.now, d, removed_as));
        }
    }

    /// Adds a `deferred` keep for each parent a removal left (`[ref:removal-grace]`): the next
    /// build or prune frees it.
    pub fn deferred(&mut self, orphans: &[Orphan]) {
        for o in orphans {
            self.events.push(Event::deferred_parent(
                &self.identity.id,
                self.now,
                o.parent.as_str(),
                o.child.as_str(),
            ));
        }
    }

    /// The events so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Whether there is anything to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends everything in one transaction `[ref:one-transaction-per-command]`.
    pub fn commit(self, ledger: &mut dyn Ledger) -> Result<(), Error> {
        if self.events.is_empty() {
            return Ok(());
        }
        ledger.append(&self.identity, &self.events)?;
        Ok(())
    }
}
