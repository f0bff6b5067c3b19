use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Owner {
    Team(String),
    Person { name: String },
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
    pub owner: Owner,
}

fn main() {}
