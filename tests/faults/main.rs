//! The fault-injection suite: every published event must end in exactly one of two places per
//! consumer group — handled and acknowledged, or in the dead-letter stream — under the faults
//! that break real systems (SPEC §11, docs/RELIABILITY.md).
//!
//! Consumers are `fault-worker` processes (tests/bin/fault_worker.rs) that report each success
//! on stdout before returning `Ok`; the harness keeps the ledger (published, handled per group
//! and process, dead-lettered) and checks it against Redis at the end. Each scenario runs briefly
//! here; `OPSC_SOAK_SECS=<n>` makes the `soak` test run the mixed fault schedule for `n` seconds:
//!
//! ```sh
//! OPSC_SOAK_SECS=600 cargo test --release --test faults soak -- --nocapture
//! ```

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod ledger;
mod work;

mod client_kill;
mod delayed;
mod handler_faults;
mod kill9;
mod lagging;
mod poison;
mod publisher;
mod redis_restart;
mod soak;
