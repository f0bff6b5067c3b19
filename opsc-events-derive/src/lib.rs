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
///
/// | key | type | default | checked at compile time |
/// |---|---|---|---|
/// | `stream` | string | required | 1–64 of `a-z 0-9 _ -`; equal to the event's `stream` |
/// | `group` | string | `<service>.<fn name>` | 1–128 of `A-Z a-z 0-9 _ - . :` |
/// | `retries` | integer | 3 | 0..=100 |
/// | `backoff` | string | `"exponential(100ms, 30s)"` | `none`, `fixed(D)`, `exponential(INITIAL, MAX)` with `INITIAL` ≤ `MAX` |
/// | `dead_letter` | bool | `true` | a bool, not a string |
/// | `concurrency` | integer | 1 | 1..=10 000; with `batch`, batch calls in flight |
/// | `timeout` | duration | `"30s"` | above zero; with `batch`, bounds the whole call |
/// | `claim_after` | duration | max(2 × `timeout`, 60 s) | above `timeout` |
/// | `start` | string | `"latest"` | `latest` or `earliest` |
/// | `batch` | integer | none (one event per call) | 1..=10 000; the first parameter must be `Vec<E>` (and a `Vec<E>` needs `batch`) |
/// | `linger` | duration | `"0ms"` (`BatchSpec::DEFAULT_LINGER`) | only with `batch`; below (`claim_after` − `timeout`) / 2 |
/// | `crate` | string | `"opsc_events"` | a path |
///
/// Durations are an integer and a unit: `250ms`, `10s`, `5m`, `1h`.
///
/// **Batch handlers.** With `batch = N` the handler takes `events: Vec<E>` and, after it,
/// `BatchContext` (the per-message contexts, `ctx[i]` for `events[i]`) and `State<T>`:
///
/// ```text
/// #[handler(stream = "assets", batch = 100, linger = "50ms")]
/// async fn index(events: Vec<AssetCreated>, ctx: BatchContext) -> Result<(), BatchError> {
///     let mut failed = BatchError::new();
///     // failed.fail(i, HandlerError::retryable(..)) for each event `i` that failed
///     failed.into_result()
/// }
/// ```
///
/// The runtime passes up to `batch` events read together, waiting at most `linger` after the
/// first for more, and settles each message on its own: the ones a `BatchError` names retry
/// (or are dead-lettered) alone, with their own attempt counts, the others are acknowledged
/// together. A plain error, a panic or a timeout fails every message of the call. An entry
/// that does not decode is dead-lettered alone and the others are handled. Retries, reclaimed
/// and resumed entries come back as a batch of one. See the README's "Batch handlers".
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}
