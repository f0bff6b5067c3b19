//! Typed, reliable events between services over Redis Streams.
//!
//! Service developers describe events with `#[derive(Event)]`; the payload's schema and its
//! fingerprint are computed at compile time, and every published entry carries them so that a
//! consumer never silently misreads an event written with another schema.
//!
//! ```
//! use opsc_events::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
//! #[event(stream = "assets", name = "asset_created", version = 1)]
//! pub struct AssetCreated {
//!     pub asset_id: u64,
//!     pub hostname: String,
//!     #[serde(default)]
//!     pub tags: Vec<String>,
//! }
//!
//! assert_eq!(AssetCreated::STREAM, "assets");
//! assert_eq!(AssetCreated::schema().fingerprint, AssetCreated::FINGERPRINT);
//!
//! // The wire envelope, without Redis: encode to stream entry fields and decode back.
//! let event = AssetCreated { asset_id: 7, hostname: "db-1".into(), tags: vec![] };
//! let entry = envelope::encode(&event, &Metadata::new("inventory")).unwrap();
//! let fields = entry.fields().map(|(name, value)| (name.as_bytes(), value));
//! let decoded: AssetCreated = envelope::decode_event(&Envelope::from_fields(fields).unwrap()).unwrap();
//! assert_eq!(decoded, event);
//! ```
//!
//! Publishing goes through a [`Runtime`](prelude::Runtime):
//!
//! ```no_run
//! # use opsc_events::prelude::*;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Event, Serialize, Deserialize)]
//! # #[event(stream = "assets")]
//! # pub struct AssetCreated { pub asset_id: u64 }
//! # async fn demo() -> opsc_events::Result<()> {
//! let rt = Runtime::builder()
//!     .service("inventory")
//!     .redis("redis://127.0.0.1:6379")
//!     .no_handlers()
//!     .build()
//!     .await?;
//! let id = rt.publisher().publish(&AssetCreated { asset_id: 7 }).await?;
//! println!("published as {id}");
//! # Ok(()) }
//! ```
//!
//! Older versions of an event are upcast: a v2 type with `upcast_from = V1` decodes v1 entries
//! through `From<V1>`.
//!
//! ```
//! use opsc_events::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Event, Serialize, Deserialize)]
//! #[event(stream = "assets", name = "asset_created", version = 1)]
//! struct AssetCreatedV1 { asset_id: u64 }
//!
//! #[derive(Event, Serialize, Deserialize, Debug, PartialEq)]
//! #[event(stream = "assets", version = 2, upcast_from = AssetCreatedV1)]
//! struct AssetCreated { asset_id: u64, hostname: Option<String> }
//!
//! impl From<AssetCreatedV1> for AssetCreated {
//!     fn from(v1: AssetCreatedV1) -> Self {
//!         AssetCreated { asset_id: v1.asset_id, hostname: None }
//!     }
//! }
//!
//! let entry = envelope::encode(&AssetCreatedV1 { asset_id: 3 }, &Metadata::new("old")).unwrap();
//! let env = Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap();
//! let upcast: AssetCreated = envelope::decode_event(&env).unwrap();
//! assert_eq!(upcast, AssetCreated { asset_id: 3, hostname: None });
//! ```
//!
//! A batch handler takes up to `batch` events per call and settles each message on its own:
//! the ones its [`BatchError`] names retry (or are dead-lettered) alone, the others are
//! acknowledged (README, "Batch handlers"). (A crate of its own: merged with the other
//! examples, its handler would be linked into theirs.)
//!
//! ```standalone_crate
//! use std::sync::{Arc, Mutex};
//!
//! use opsc_events::prelude::*;
//! use opsc_events::testing::TestRuntime;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Event, Serialize, Deserialize, Debug, Clone)]
//! #[event(stream = "assets")]
//! struct AssetCreated { asset_id: u64 }
//!
//! #[derive(Clone, Default)]
//! struct Index(Arc<Mutex<Vec<u64>>>);
//!
//! #[handler(stream = "assets", batch = 100, linger = "20ms")]
//! async fn index_assets(
//!     events: Vec<AssetCreated>,
//!     ctx: BatchContext,
//!     State(index): State<Index>,
//! ) -> Result<(), BatchError> {
//!     let mut failed = BatchError::new();
//!     for (i, event) in events.iter().enumerate() {
//!         if event.asset_id == 0 {
//!             let why = format!("asset 0 does not exist (entry {})", ctx[i].message_id());
//!             failed.fail(i, HandlerError::permanent(why));
//!         } else {
//!             index.0.lock().unwrap().push(event.asset_id);
//!         }
//!     }
//!     failed.into_result()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> opsc_events::Result<()> {
//! let index = Index::default();
//! let t = TestRuntime::start(TestRuntime::builder().state(index.clone())).await?;
//! let assets: Vec<AssetCreated> = [7, 0, 8].map(|asset_id| AssetCreated { asset_id }).into();
//! t.publisher().publish_all(&assets).await?;
//! t.wait_idle().await?;
//!
//! assert_eq!(*index.0.lock().unwrap(), vec![7, 8]);
//! assert_eq!(t.handled("index_assets").len(), 2);
//! assert_eq!(t.dead_letters("assets").await?[0].reason, DeadLetterReason::Permanent);
//! t.stop().await
//! # }
//! ```

pub use opsc_events_derive::{Event, EventSchema, handler};
pub use opsc_events_runtime::{
    BatchContext, BatchError, ConfigError, DeadLetter, DeadLetterFilter, DeadLetterReason,
    DeadLetters, DecodeError, EncodeError, Envelope, Error, GroupInfo, Headers, MemoryBroker,
    MessageId, Metadata, Priority, PublishOptions, Publisher, Result, Runtime, RuntimeBuilder,
    Schema, StreamInfo, StreamLimits, TrimReport, WireFormat, dead_letter, delayed, envelope,
    error, info, keys, metrics_stream, priority, schema, trim,
};

/// Unit-testing handlers on the embedded broker, with no Redis: start a [`testing::TestRuntime`],
/// publish, wait until idle (bounded), then check your handler's effects, what became of each
/// delivery and the dead letters.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use opsc_events::prelude::*;
/// use opsc_events::testing::TestRuntime;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// #[event(stream = "assets")]
/// struct AssetCreated { asset_id: u64 }
///
/// #[derive(Clone, Default)]
/// struct Index(Arc<Mutex<Vec<u64>>>);
///
/// #[handler(stream = "assets")]
/// async fn index_asset(event: AssetCreated, State(index): State<Index>) -> Result<(), HandlerError> {
///     if event.asset_id == 0 {
///         return Err(HandlerError::permanent("asset 0 does not exist"));
///     }
///     index.0.lock().unwrap().push(event.asset_id);
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> opsc_events::Result<()> {
/// let index = Index::default();
/// let t = TestRuntime::start(TestRuntime::builder().state(index.clone())).await?;
/// t.publish(&AssetCreated { asset_id: 7 }).await?;
/// t.publish(&AssetCreated { asset_id: 0 }).await?;
/// t.wait_idle().await?;
///
/// assert_eq!(*index.0.lock().unwrap(), vec![7]);
/// assert_eq!(t.handled("index_asset").len(), 1);
/// let letters = t.dead_letters("assets").await?;
/// assert_eq!(letters[0].reason, DeadLetterReason::Permanent);
/// t.stop().await
/// # }
/// ```
///
/// Backoffs, retry schedules, handler timeouts and delayed events run on tokio's clock, so under
/// paused time (`#[tokio::test(start_paused = true)]`, tokio's `test-util` feature) a test of a
/// 30 s backoff takes milliseconds and still sees every attempt at its time:
///
/// ```standalone_crate
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// use opsc_events::prelude::*;
/// use opsc_events::testing::TestRuntime;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Event, Serialize, Deserialize, Debug, Clone)]
/// #[event(stream = "invoices")]
/// struct InvoiceDue { invoice: u64 }
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// #[handler(stream = "invoices", retries = 1, backoff = "fixed(30s)")]
/// async fn charge(_event: InvoiceDue) -> Result<(), HandlerError> {
///     if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
///         return Err(HandlerError::retryable("payment gateway busy"));
///     }
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> opsc_events::Result<()> {
/// // In a test: #[tokio::test(start_paused = true)]
/// let started = tokio::time::Instant::now();
/// let t = TestRuntime::start(TestRuntime::builder()).await?;
/// t.publish(&InvoiceDue { invoice: 7 }).await?;
/// t.wait_idle().await?;
/// assert_eq!(CALLS.load(Ordering::SeqCst), 2);
/// assert!(started.elapsed() >= Duration::from_secs(30)); // on tokio's clock, not the wall's
/// t.stop().await
/// # }
/// ```
pub mod testing {
    pub use opsc_events_runtime::testing::*;
}

/// What becomes of each delivery: see `RuntimeBuilder::observer`.
pub mod observe {
    pub use opsc_events_runtime::observe::*;
}

/// Least privilege: the Redis ACL rules of a service; see `Runtime::acl_rules`.
pub mod acl {
    pub use opsc_events_runtime::acl::*;
}

/// Schema contracts between services: the schema registry and its mismatches
/// (see `docs/CONTRACTS.md`).
pub mod contracts {
    pub use opsc_events_runtime::contracts::*;
}

/// Health checks for liveness and readiness probes: see `Runtime::health`.
pub mod health {
    pub use opsc_events_runtime::health::*;
}

/// Handler types: policies, registrations, extractors.
pub mod handler {
    pub use opsc_events_runtime::handler::*;
}

/// The event trait (also the derive macro of the same name, re-exported at the crate root).
pub mod event {
    pub use opsc_events_runtime::event::{Event, NoUpcast, UpcastChain, UpcastVia, known_versions};
}

/// Everything a service or handler author needs: `use opsc_events::prelude::*;`.
pub mod prelude {
    pub use opsc_events_derive::{Event, EventSchema, handler};
    pub use opsc_events_runtime::envelope;
    pub use opsc_events_runtime::event::Event;
    pub use opsc_events_runtime::handler::{
        BatchContext, BatchError, Context, HandlerError, HandlerInfo, State,
    };
    pub use opsc_events_runtime::schema::EventSchema;
    pub use opsc_events_runtime::{
        DeadLetter, DeadLetterFilter, DeadLetterReason, Envelope, Headers, MemoryBroker, MessageId,
        Metadata, Priority, PublishOptions, Publisher, Runtime, Schema, StreamLimits,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use opsc_events_runtime::private::*;
}
