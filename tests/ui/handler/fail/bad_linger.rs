use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", batch = 100, linger = "soon")]
async fn index(events: Vec<AssetCreated>) {
    let _ = events.len();
}

fn main() {}
