use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {}
