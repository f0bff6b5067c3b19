//! A `crate` value that is not a path is reported on the value.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets", crate = "my events")]
async fn on_created(event: AssetCreated) {
    let _ = event;
}

fn main() {}
