//! The flow every command follows, as modules the commands share:
//!
//! ```text
//! observe (the daemon's facts) ─▶ act (docker build, save, load) ─▶ observe again
//!     ─▶ plan (pure, crate::core) ─▶ apply (re-check, remove, never forced) ─▶ record (one
//!        ledger transaction) ─▶ report (crate::ui)
//! ```
//!
//! [`observe`] gathers facts with as few daemon calls as possible; [`apply`] is the one removal
//! path; [`record`] turns what happened into one ledger transaction. A command under
//! `crate::commands` reads as that sequence and imports no other command.

pub mod apply;
pub mod observe;
pub mod record;
pub mod retain;
