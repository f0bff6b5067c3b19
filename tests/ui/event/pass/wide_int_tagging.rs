//! 128-bit integers decode in externally and adjacently tagged enums and anywhere outside an
//! internally tagged one.
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize)]
pub enum External {
    Big(u128),
    Small { n: i128 },
}

#[derive(EventSchema, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
pub enum Adjacent {
    Big(u128),
    Small { n: i128 },
}

#[derive(EventSchema, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum InternalWithoutWide {
    A { n: u64 },
    B,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "ledger")]
pub struct Booked {
    pub total: u128,
    pub external: External,
    pub adjacent: Adjacent,
    pub internal: InternalWithoutWide,
}

fn main() {}
