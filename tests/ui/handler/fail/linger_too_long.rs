use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

// The defaults give a read-ahead window of (60s - 30s) / 2 = 15s.
#[handler(stream = "assets", batch = 100, linger = "20s")]
async fn index(events: Vec<AssetCreated>) {
    let _ = events.len();
}

fn main() {}
