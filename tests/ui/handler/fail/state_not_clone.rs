use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

pub struct Db;

#[handler(stream = "assets")]
async fn on_created(event: AssetCreated, State(db): State<Db>) {
    let _ = (event, db);
}

fn main() {}
