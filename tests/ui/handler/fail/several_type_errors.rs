use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

pub struct Db;

#[handler(stream = "assets")]
async fn on_created(event: u64, name: String, State(db): State<Db>) -> u32 {
    let _ = (event, name, db);
    0
}

fn main() {}
