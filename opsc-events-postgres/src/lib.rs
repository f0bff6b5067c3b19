//! Transactional outbox and idempotent inbox on PostgreSQL for `opsc-events`.
//!
//! A service that writes to its own database and publishes events loses or invents events at
//! the seam: commit then publish, and a crash in between loses the event; publish then commit,
//! and a rollback leaves an event about nothing. And a redelivered event applies its effects
//! twice. This crate closes both seams:
//!
//! - **Outbox.** [`Outbox::stage`] writes the encoded event into the `opsc_outbox` table in the
//!   caller's transaction: the event exists exactly when the transaction commits. A [`Relay`]
//!   (started by the runtime: [`RuntimeBuilderExt::outbox`]) publishes committed rows to Redis in
//!   commit order per stream, woken by `LISTEN/NOTIFY`, and deletes sent rows after a retention.
//!   Several relays in several processes are safe together.
//! - **Inbox.** [`InboxExt::inbox`] gives a handler a transaction that records `(group, event
//!   id)` with its writes, or `None` for an event the group already applied: effects exactly
//!   once per group.
//!
//! Tables are created by [`migrate`] (or from [`MIGRATIONS`] by the service's own tool).
//! `docs/DESIGN.md` § Outbox and inbox explains the choices; `examples/outbox.rs` runs both.

mod entry;
mod error;
mod inbox;
mod migrate;
mod outbox;
mod relay;
mod runtime_ext;
mod status;

pub use error::{Error, Result};
pub use inbox::{Inbox, InboxExt, purge_inbox};
pub use migrate::{MIGRATIONS, migrate};
pub use outbox::Outbox;
pub use relay::{CHANNEL, Relay, RelayConfig, purge_sent};
pub use runtime_ext::RuntimeBuilderExt;
pub use status::{StreamBacklog, render as render_status, status};
