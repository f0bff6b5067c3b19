//! Events shared by the fault tests and the `fault-consumer` process they kill.

use serde::{Deserialize, Serialize};

use opsc_events::prelude::*;

/// One unit of work; `n` identifies it in the ledger.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "faults", name = "work_item")]
pub struct WorkItem {
    pub n: u64,
}

/// The consumer group both the child process and the test's runtime join (the child names it
/// in its `#[handler]` attribute, which takes a literal).
#[allow(dead_code)] // read by the tests only
pub const GROUP: &str = "fault.worker";
