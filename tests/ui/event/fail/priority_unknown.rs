use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", priority = "urgent")]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {}
