use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

use std::rc::Rc;

async fn lookup(id: u64) -> u64 {
    id
}

#[handler(stream = "assets")]
async fn on_created(event: AssetCreated) {
    let cache = Rc::new(event.asset_id);
    lookup(*cache).await;
}

fn main() {}
