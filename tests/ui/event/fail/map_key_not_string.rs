use std::collections::HashMap;

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetsCounted {
    pub per_rack: HashMap<u32, u64>,
}

fn main() {}
