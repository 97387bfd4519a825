//! One module per command. Each reads as its doc comment: observe, act, plan, apply, record,
//! report — the steps are [`crate::flow`]'s, the decisions [`crate::core`]'s, the words
//! `crate::ui`'s. No command imports another.

pub mod build;
pub mod check;
pub mod completions;
pub mod explain;
pub mod fleet;
pub mod history;
pub mod hook;
pub mod ledger;
pub mod load;
pub mod prune;
pub mod rmi;
pub mod save;
pub mod watch;
