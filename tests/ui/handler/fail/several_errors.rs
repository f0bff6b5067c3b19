use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(
    strem = "assets",
    retries = 101,
    retries = 3,
    timeout = "10",
    claim_after = "5s",
    backoff = "fixed(1s)",
    backoff = "none",
    dead_letter = "no"
)]
fn on_created(event: &AssetCreated, name: String) {
    let _ = (event, name);
}

fn main() {}
