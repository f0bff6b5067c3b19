use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated(pub u64, pub String);

fn main() {}
