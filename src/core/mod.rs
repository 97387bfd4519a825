//! The pure core: every decision imgguard makes, as functions of facts it is handed.
//!
//! Nothing under this folder does I/O: no daemon, no files, no environment, no clock, no
//! processes. `.ci/run` enforces that over the whole folder. The commands gather facts
//! (`crate::flow::observe`), hand them here, and carry out what comes back
//! (`crate::flow::apply`, `crate::flow::record`), so everything interesting is unit-tested
//! without a daemon.

pub mod archive;
pub mod build;
pub mod build_args;
pub mod dangling;
pub mod event;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod fleet;
pub mod github;
pub mod guard;
pub mod image;
pub mod load;
pub mod naming;
pub mod policy;
pub mod reference;
pub mod watch;
