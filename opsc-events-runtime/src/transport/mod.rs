//! Transports: where entries are appended, read, acknowledged and reclaimed.
//!
//! [`Broker`] is the one interface the publisher and the consumer loops use; a transport knows
//! streams, groups and entries, never handlers. Redis implements it; the embedded in-memory
//! broker joins behind the same trait.

pub(crate) mod redis;

use std::future::Future;
use std::time::Duration;

use crate::envelope::EncodedEvent;
use crate::error::Result;
use crate::handler::Start;
use crate::message_id::MessageId;

/// Field name/value pairs of one entry, in wire order.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An entry as read; `fields` is `None` when the entry was deleted while pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) id: MessageId,
    pub(crate) fields: Option<Fields>,
}

/// An entry delivered to a consumer, with how many times it has been delivered to the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) id: MessageId,
    /// `None` when the entry was deleted from the stream while pending.
    pub(crate) fields: Option<Fields>,
    pub(crate) delivery_count: u32,
}

/// The result of one reclaim step.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claimed {
    /// Where the next step starts; `0-0` when the scan is complete.
    pub(crate) next: MessageId,
    pub(crate) entries: Vec<Delivery>,
    /// Pending entries that no longer exist in the stream (removed from the pending list).
    pub(crate) deleted: Vec<MessageId>,
}

/// Streams, groups and entries. Implementations must never block one caller behind another's
/// blocking read: blocking reads go through a [`Broker::Reader`] of their own.
pub(crate) trait Broker: Clone + Send + Sync + 'static {
    /// A connection dedicated to one consumer loop's blocking reads.
    type Reader: Send + 'static;

    /// Appends one entry to the stream at `key`.
    fn append(
        &self,
        key: &str,
        entry: &EncodedEvent,
    ) -> impl Future<Output = Result<MessageId>> + Send;

    /// Appends entries in one round trip, in order.
    fn append_all(
        &self,
        key: &str,
        entries: &[EncodedEvent],
    ) -> impl Future<Output = Result<Vec<MessageId>>> + Send;

    /// Creates the group (and the stream) if missing.
    fn ensure_group(
        &self,
        key: &str,
        group: &str,
        start: Start,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Opens a dedicated reader.
    fn reader(&self) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// Reads up to `count` never-delivered entries for `consumer`, waiting up to `block`.
    fn read_new(
        &self,
        reader: &mut Self::Reader,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Reads up to `count` of `consumer`'s own pending entries after `after` (used when a
    /// consumer restarts under the same name).
    fn read_own_pending(
        &self,
        reader: &mut Self::Reader,
        key: &str,
        group: &str,
        consumer: &str,
        after: MessageId,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Acknowledges entries.
    fn ack(
        &self,
        key: &str,
        group: &str,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Claims for `consumer` up to `count` entries idle at least `min_idle`, scanning from
    /// `cursor`.
    fn claim(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: MessageId,
        count: usize,
    ) -> impl Future<Output = Result<Claimed>> + Send;

    /// Removes consumers of the group, other than `keep`, that own no pending entry and have
    /// been idle at least `min_idle`; returns their names. Must be atomic per consumer: a
    /// consumer that owns entries is never removed.
    fn remove_idle_consumers(
        &self,
        key: &str,
        group: &str,
        keep: &str,
        min_idle: Duration,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// The transport a runtime was built with.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Redis(redis::RedisTransport),
}

impl Transport {
    /// Appends one entry to the stream at `key`.
    pub(crate) async fn append(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        match self {
            Transport::Redis(r) => Broker::append(r, key, entry).await,
        }
    }

    /// Appends entries to the stream at `key` in one round trip, in order.
    pub(crate) async fn append_all(
        &self,
        key: &str,
        entries: &[EncodedEvent],
    ) -> Result<Vec<MessageId>> {
        match self {
            Transport::Redis(r) => Broker::append_all(r, key, entries).await,
        }
    }
}
