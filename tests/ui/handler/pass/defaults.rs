//! Only `stream` given: the defaults of the spec, including `claim_after` =
//! max(2 × timeout, 60s). Handlers returning `()`, with and without `-> ()`.

use std::time::Duration;

use opsc_events::handler::{HandlerConfig, HandlerRegistration};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[handler(stream = "assets")]
async fn plain(event: AssetCreated) {
    let _ = event;
}

#[handler(stream = "assets", timeout = "10s")]
async fn short_timeout(event: AssetCreated) -> () {
    let _ = event;
}

#[handler(stream = "assets", timeout = "45s")]
async fn long_timeout(event: AssetCreated) {
    let _ = event;
}

fn registration(name: &str) -> &'static HandlerRegistration {
    opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("`{name}` is registered"))
}

fn main() {
    let plain = registration("plain");
    assert_eq!(plain.config, HandlerConfig::DEFAULT);
    assert_eq!(plain.config.retries, 3);
    assert_eq!(plain.config.timeout, Duration::from_secs(30));
    assert_eq!(plain.config.claim_after, Duration::from_secs(60));
    assert_eq!(plain.group, None);

    // 2 × 10s is below 60s.
    let short = registration("short_timeout").config;
    assert_eq!(short.timeout, Duration::from_secs(10));
    assert_eq!(short.claim_after, Duration::from_secs(60));

    // 2 × 45s is above 60s.
    let long = registration("long_timeout").config;
    assert_eq!(long.timeout, Duration::from_secs(45));
    assert_eq!(long.claim_after, Duration::from_secs(90));
    assert_eq!(
        long.claim_after,
        HandlerConfig::default_claim_after(long.timeout)
    );
}
