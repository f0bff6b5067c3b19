//! `Context` and several `State<T>` extractors, with destructuring patterns; the state types
//! are the registration's requirements, in order.

use std::any::TypeId;
use std::sync::Arc;

use opsc_events::handler::HandlerRegistration;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetCreated {
    pub asset_id: u64,
}

#[derive(Clone)]
pub struct Db;

#[derive(Clone)]
pub struct Search {
    pub index: Arc<str>,
}

#[handler(stream = "assets")]
async fn index_asset(
    event: AssetCreated,
    ctx: Context,
    State(db): State<Db>,
    State(Search { index }): State<Search>,
    mut counter: State<Arc<std::sync::atomic::AtomicU64>>,
) -> Result<(), HandlerError> {
    let _ = (event.asset_id, ctx.attempt(), db, index);
    counter.0 = Arc::clone(&counter.0);
    Ok(())
}

#[handler(stream = "assets")]
async fn context_only(_: AssetCreated, ctx: Context) {
    let _ = ctx.event_id();
}

fn registration(name: &str) -> &'static HandlerRegistration {
    opsc_events::__private::inventory::iter::<HandlerRegistration>
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("`{name}` is registered"))
}

fn main() {
    let mut requirements = Vec::new();
    (registration("index_asset").requirements)(&mut requirements);
    let ids: Vec<TypeId> = requirements.iter().map(|r| r.type_id).collect();
    assert_eq!(
        ids,
        [
            TypeId::of::<Db>(),
            TypeId::of::<Search>(),
            TypeId::of::<Arc<std::sync::atomic::AtomicU64>>(),
        ]
    );
    assert!(requirements[0].type_name.ends_with("::Db"));

    let mut none = Vec::new();
    (registration("context_only").requirements)(&mut none);
    assert!(none.is_empty(), "`Context` needs no state");
}
