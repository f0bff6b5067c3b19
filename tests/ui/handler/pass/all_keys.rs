//! Every key given: each value lands in the registration.

use std::time::Duration;

use opsc_events::handler::{Backoff, HandlerConfig, HandlerRegistration, Start};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(
    stream = "assets",
    group = "inventory.indexer",
    retries = 5,
    backoff = "exponential(200ms, 30s)",
    dead_letter = false,
    concurrency = 8,
    timeout = "10s",
    claim_after = "45s",
    start = "earliest"
)]
async fn index_asset(event: AssetCreated) {
    let _ = event;
}

fn main() {
    let regs: Vec<&HandlerRegistration> =
        opsc_events::__private::inventory::iter::<HandlerRegistration>
            .into_iter()
            .collect();
    assert_eq!(regs.len(), 1);
    let reg = regs[0];
    assert_eq!(reg.name, "index_asset");
    assert_eq!(reg.path(), format!("{}::index_asset", module_path!()));
    assert_eq!(reg.stream, "assets");
    assert_eq!(reg.group, Some("inventory.indexer"));
    assert_eq!(
        reg.config,
        HandlerConfig {
            retries: 5,
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(30),
            },
            dead_letter: false,
            concurrency: 8,
            timeout: Duration::from_secs(10),
            claim_after: Duration::from_secs(45),
            start: Start::Earliest,
        }
    );
    assert_eq!(reg.event.type_name, "AssetCreated");
    assert_eq!(reg.event.stream, AssetCreated::STREAM);
    assert_eq!(reg.event.name, "asset_created");
    assert_eq!(reg.event.version, 1);
    assert_eq!(reg.event.fingerprint, AssetCreated::FINGERPRINT);
    let mut requirements = Vec::new();
    (reg.requirements)(&mut requirements);
    assert!(requirements.is_empty());
}
