use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", linger = "50ms")]
async fn index(event: AssetCreated) {
    let _ = event.asset_id;
}

fn main() {}
