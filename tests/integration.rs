//! The one integration-test binary (autotests = false). Daemon tests run against the real Docker
//! engine: every image they make carries a `LABEL imgguard.test=<run>` and a unique name prefix,
//! and cleanup removes only what carries that label.

// Test helpers are `pub` across the modules of this one binary.
#![allow(unreachable_pub)]
// Short names (t, a, b, …) read best in tests.
#![allow(clippy::many_single_char_names)]

mod pg_cluster;
mod support;

mod action;
mod build;
mod cli;
mod concurrency;
mod dangling;
mod demo;
mod engines;
mod fleet;
mod formats;
mod guard;
mod habits;
mod hostile;
mod killed;
mod ledger;
mod purity;
mod save_load;
mod watch;
