//! Procedural macros of opsc-events. Use them through the `opsc-events` crate; the generated
//! code names only `::opsc_events::__private` (or `<path>::__private` with `crate = "path"`).
//!
//! Each macro parses, validates (collecting every error of the item) and expands; the modules
//! follow those steps.

mod case;
mod ctxt;
mod event;
mod handler;
mod krate;
mod serde_attr;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `Event` (and `EventSchema`) for a struct with named fields.
///
/// `#[event(stream = "assets", name = "asset_created", version = 1, upcast_from = OlderType)]`:
/// `stream` is required, the others default to the type name in snake_case, 1, and none.
/// `crate = "path"` names the facade for a crate that renames or re-exports `opsc_events`.
/// Values may come from `macro_rules!` fragments (`literal`, `expr`, `tt`).
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::expand_event(&input).into()
}

/// Derives `EventSchema` for a struct or enum used inside an event.
///
/// `#[event_schema(crate = "path")]` names the facade for a crate that renames or re-exports
/// `opsc_events`.
#[proc_macro_derive(EventSchema, attributes(event_schema))]
pub fn derive_event_schema(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::expand_schema(&input).into()
}

/// Registers an `async fn` as a handler of the event type of its first parameter.
///
/// `#[handler(stream = "assets", retries = 5, backoff = "exponential(200ms, 30s)",
/// concurrency = 8, timeout = "10s")]`; every key is checked at compile time, including that
/// `stream` is the event's stream and that `claim_after` is above `timeout`. Keys left out take
/// the runtime's defaults (`HandlerConfig::DEFAULT`); `crate = "path"` names the facade for a
/// crate that renames or re-exports `opsc_events`.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}
