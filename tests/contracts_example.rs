//! The opsconductor example keeps its committed `examples/opsconductor/events.lock`: the check CI
//! runs on every service (docs/CONTRACTS.md § In CI). Regenerate the lock after an intended
//! change with `OPSC_UPDATE_LOCK=1 cargo test --test contracts_example`.
//!
//! It also keeps its AsyncAPI document, `examples/opsconductor/asyncapi.json`: the one
//! `opsc asyncapi` writes once the four services have registered, valid against the official
//! AsyncAPI 3.0.0 schema. Rewrite it after an intended change with
//! `OPSC_BLESS=1 cargo test --test contracts_example` (docs/CONTRACTS.md § AsyncAPI).

// The example's modules, linked as they are in its binary (its `main` is not needed).
#[allow(dead_code)] // the example's constructors and helpers are used by its `main` only
#[path = "../examples/opsconductor/events.rs"]
mod events;
#[allow(dead_code)] // as above
#[path = "../examples/opsconductor/services.rs"]
mod services;

#[path = "common/asyncapi.rs"]
mod asyncapi_check;

use opsc_events::contracts::{Lock, check_lock, registry_asyncapi};
use opsc_events::prelude::*;

const LOCK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/opsconductor/events.lock"
);

const ASYNCAPI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/opsconductor/asyncapi.json"
);

#[test]
fn the_example_keeps_its_events_lock() {
    let current = Lock::linked();
    if std::env::var_os("OPSC_UPDATE_LOCK").is_some() {
        std::fs::write(LOCK, current.to_file_string()).expect("write the lock");
    }
    let text = std::fs::read_to_string(LOCK).expect("examples/opsconductor/events.lock");
    let locked = Lock::parse(&text).expect("a valid lock");
    let problems = check_lock(&locked, &current);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        locked, current,
        "the lock is out of date: regenerate it with OPSC_UPDATE_LOCK=1"
    );
    // The example publishes and handles something: the lock is not vacuous.
    assert!(current.events.iter().any(|e| e.published));
    assert!(current.events.iter().any(|e| e.handled));
}

/// The first lines where `want` and `got` differ, numbered, with a little context.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let Some(at) = (0..w.len().max(g.len())).find(|&i| w.get(i) != g.get(i)) else {
        return "(the same lines; a difference in line endings?)".to_owned();
    };
    let mut out = String::new();
    for i in at.saturating_sub(3)..(at + 8).min(w.len().max(g.len())) {
        match (w.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => out.push_str(&format!("  {:>5}   {a}\n", i + 1)),
            (a, b) => {
                if let Some(a) = a {
                    out.push_str(&format!("  {:>5} - {a}\n", i + 1));
                }
                if let Some(b) = b {
                    out.push_str(&format!("  {:>5} + {b}\n", i + 1));
                }
            }
        }
    }
    out
}

/// The four services register on one embedded broker, as `main` starts them; the document of
/// the registry is then the committed one.
#[tokio::test]
async fn the_example_keeps_its_asyncapi_document() {
    let broker = MemoryBroker::new();
    let console = services::Console {
        notifications: tokio::sync::watch::Sender::new(0),
        audited: tokio::sync::watch::Sender::new(0),
    };
    let directory = services::Directory::default();
    let mut runtimes = Vec::new();
    for name in ["identity", "assets", "automation", "communication"] {
        let rt = services::runtime(name, &console, &directory)
            .memory_with(broker.clone())
            .build()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every consumer reads what some service publishes.
        assert_eq!(rt.schema_mismatches(), [], "{name}");
        runtimes.push(rt);
    }
    let (mut entries, bad) = runtimes[0].schema_registry().await.expect("registry");
    assert!(bad.is_empty(), "{bad:?}");
    // Handler paths start with the crate: this test's, where the example binary has its own.
    for e in &mut entries {
        if let Some(h) = &mut e.handler {
            h.handler = h
                .handler
                .replacen("contracts_example::", "opsconductor::", 1);
        }
    }
    let doc = registry_asyncapi(&entries, services::PREFIX);
    asyncapi_check::assert_valid("the example's AsyncAPI document", &doc);
    let text = serde_json::to_string_pretty(&doc).expect("JSON") + "\n";

    if std::env::var_os("OPSC_BLESS").is_some() {
        std::fs::write(ASYNCAPI, &text).expect("write examples/opsconductor/asyncapi.json");
    }
    let committed = std::fs::read_to_string(ASYNCAPI).unwrap_or_default();
    assert!(
        committed == text,
        "examples/opsconductor/asyncapi.json is not the example's AsyncAPI document; if the change \
         is intended, rewrite it with `OPSC_BLESS=1 cargo test --test contracts_example` and \
         review the diff. First difference (- committed, + generated):\n{}",
        first_difference(&committed, &text)
    );
    // Deterministic: a second rendering of the same registry is the same text.
    let again = serde_json::to_string_pretty(&registry_asyncapi(&entries, services::PREFIX))
        .expect("JSON")
        + "\n";
    assert_eq!(again, text);
}
