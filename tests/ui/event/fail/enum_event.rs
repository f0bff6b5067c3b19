use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub enum AssetEvent {
    Created { asset_id: u64 },
    Deleted { asset_id: u64 },
}

fn main() {}
