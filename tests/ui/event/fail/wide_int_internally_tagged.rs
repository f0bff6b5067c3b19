use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(EventSchema, Serialize, Deserialize)]
pub struct Amount {
    pub cents: Option<u128>,
}

#[derive(EventSchema, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Payment {
    Card { amount: Amount },
    Cash,
}

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "payments")]
pub struct PaymentMade {
    pub id: u64,
    pub payment: Payment,
}

fn main() {}
