//! A `crate` value that is not a string, or not a path, is reported on the value; the
//! `event_schema` attribute takes no other key.

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets", crate = opsc_events)]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[derive(EventSchema, Serialize, Deserialize)]
#[event_schema(crate = "not a path", stream = "assets")]
pub struct Tags {
    pub names: Vec<String>,
}

fn main() {}
