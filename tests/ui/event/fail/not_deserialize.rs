use opsc_events::prelude::*;
use serde::Serialize;

#[derive(Event, Serialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

fn main() {}
