//! The one integration-test binary (autotests = false). Daemon tests run against the real Docker
//! engine: every image they make carries a `LABEL imgguard.test=<run>` and a unique name prefix,
//! and cleanup removes only what carries that label.

// Test helpers are `pub` across the modules of this one binary.
#![allow(unreachable_pub)]

mod support;

mod build;
mod cli;
mod save_load;
