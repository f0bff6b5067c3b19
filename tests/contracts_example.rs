//! The opsconductor example keeps its committed `examples/opsconductor/events.lock`: the check CI
//! runs on every service (docs/CONTRACTS.md § In CI). Regenerate the lock after an intended
//! change with `OPSC_UPDATE_LOCK=1 cargo test --test contracts_example`.

// The example's modules, linked as they are in its binary (its `main` is not needed).
#[allow(dead_code)] // the example's constructors and helpers are used by its `main` only
#[path = "../examples/opsconductor/events.rs"]
mod events;
#[allow(dead_code)] // as above
#[path = "../examples/opsconductor/services.rs"]
mod services;

use opsc_events::contracts::{Lock, check_lock};

const LOCK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/opsconductor/events.lock"
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
