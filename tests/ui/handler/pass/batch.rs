//! Batch handlers: `Vec<E>` first, `BatchContext` and `State<T>` after, returning `()`,
//! `Result<(), BatchError>` or any handler error; their registration carries `batch` and
//! `linger` (left out: `BatchSpec::DEFAULT_LINGER`).

use std::any::TypeId;
use std::time::Duration;

use opsc_events::handler::{BatchSpec, HandlerRegistration};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[derive(Clone)]
pub struct Db;

#[handler(stream = "assets", batch = 100, linger = "50ms", concurrency = 4)]
async fn index(
    events: Vec<AssetCreated>,
    ctx: BatchContext,
    State(db): State<Db>,
) -> Result<(), BatchError> {
    let _ = db;
    let mut failed = BatchError::new();
    for (i, event) in events.iter().enumerate() {
        let _ = (ctx[i].message_id(), ctx[i].correlation_id());
        if event.asset_id == 0 {
            failed.fail(i, HandlerError::permanent("asset 0 does not exist"));
        }
    }
    failed.into_result()
}

#[handler(stream = "assets", batch = 10)]
async fn plain(events: Vec<AssetCreated>) {
    let _ = events.len();
}

#[handler(stream = "assets", batch = 10, linger = "0ms")]
async fn question_mark(events: Vec<AssetCreated>) -> Result<(), HandlerError> {
    let n: u64 = "12".parse::<u64>()?;
    let _ = (events.len(), n);
    Ok(())
}

#[handler(stream = "assets", batch = 10)]
async fn std_error(events: std::vec::Vec<AssetCreated>) -> Result<(), std::io::Error> {
    let _ = events.len();
    Ok(())
}

fn registration(name: &str) -> &'static HandlerRegistration {
    opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("`{name}` is registered"))
}

fn main() {
    let index = registration("index");
    let spec = index.batch.expect("a batch handler");
    assert_eq!((spec.size, spec.linger), (100, Duration::from_millis(50)));
    assert_eq!(index.config.concurrency, 4);
    let mut requirements = Vec::new();
    (index.requirements)(&mut requirements);
    assert_eq!(requirements.iter().map(|r| r.type_id).collect::<Vec<_>>(), [TypeId::of::<Db>()]);

    let plain = registration("plain").batch.expect("a batch handler");
    assert_eq!((plain.size, plain.linger), (10, BatchSpec::DEFAULT_LINGER));
    assert_eq!(registration("question_mark").batch.unwrap().linger, Duration::ZERO);
}
