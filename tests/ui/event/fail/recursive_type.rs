use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize)]
pub struct Location {
    pub name: String,
    pub children: Vec<Location>,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct SiteCreated {
    pub root: Location,
}

fn main() {}
