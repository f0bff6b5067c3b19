//! `#[handler]` writes no default of its own: a key left out takes the runtime's
//! `HandlerConfig::DEFAULT` (and `HandlerConfig::default_claim_after` of the timeout), as the
//! registration shows through `HandlerInfo`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsc_events::handler::{Backoff, HandlerConfig};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "defaults")]
pub struct Ping {
    pub n: u64,
}

#[handler(stream = "defaults")]
async fn no_keys(event: Ping) {
    let _ = event;
}

#[handler(stream = "defaults", timeout = "45s")]
async fn timeout_only(event: Ping) {
    let _ = event;
}

#[handler(stream = "defaults", claim_after = "31s")]
async fn claim_after_only(event: Ping) {
    let _ = event;
}

#[handler(stream = "defaults", backoff = "fixed(2s)", concurrency = 4)]
async fn some_keys(event: Ping) {
    let _ = event;
}

/// The config of every handler of this test binary, by name, as `.only` sees them.
async fn configs() -> Vec<(String, HandlerConfig)> {
    let found: Arc<Mutex<Vec<(String, HandlerConfig)>>> = Arc::default();
    let sink = found.clone();
    let rt = Runtime::builder()
        .service("defaults")
        .memory()
        .only(move |h| {
            sink.lock()
                .unwrap()
                .push((h.name().to_owned(), *h.config()));
            true
        })
        .build()
        .await
        .unwrap();
    drop(rt);
    let mut found = found.lock().unwrap().clone();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    found
}

fn config_of(configs: &[(String, HandlerConfig)], name: &str) -> HandlerConfig {
    configs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("`{name}` is registered"))
}

#[tokio::test]
async fn handler_without_keys_has_the_runtime_defaults() {
    let configs = configs().await;
    assert_eq!(config_of(&configs, "no_keys"), HandlerConfig::DEFAULT);
}

#[tokio::test]
async fn default_claim_after_follows_the_given_timeout() {
    let configs = configs().await;
    let c = config_of(&configs, "timeout_only");
    assert_eq!(c.timeout, Duration::from_secs(45));
    assert_eq!(
        c.claim_after,
        HandlerConfig::default_claim_after(Duration::from_secs(45))
    );
    assert_eq!(
        c,
        HandlerConfig {
            timeout: c.timeout,
            claim_after: c.claim_after,
            ..HandlerConfig::DEFAULT
        }
    );
}

#[tokio::test]
async fn given_claim_after_keeps_the_default_timeout() {
    let configs = configs().await;
    let c = config_of(&configs, "claim_after_only");
    assert_eq!(c.claim_after, Duration::from_secs(31));
    assert_eq!(c.timeout, HandlerConfig::DEFAULT.timeout);
}

#[tokio::test]
async fn keys_left_out_take_the_defaults_next_to_given_ones() {
    let configs = configs().await;
    assert_eq!(
        config_of(&configs, "some_keys"),
        HandlerConfig {
            backoff: Backoff::Fixed(Duration::from_secs(2)),
            concurrency: 4,
            ..HandlerConfig::DEFAULT
        }
    );
}
