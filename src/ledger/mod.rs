//! The ledger's storage: the append-only event log on disk. The event model and everything
//! derived from it (lineages, current tags) is pure and lives in [`crate::core::event`].

pub mod sqlite;
