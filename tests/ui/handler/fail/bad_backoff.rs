use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", backoff = "linear(1s)")]
async fn on_created(event: AssetCreated) {
    let _ = event;
}

fn main() {}
