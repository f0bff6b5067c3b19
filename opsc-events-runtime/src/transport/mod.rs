//! Transports: where entries are appended and read. Only Redis exists so far; the embedded
//! in-memory broker joins it behind the same interface.

pub(crate) mod redis;

use crate::envelope::EncodedEvent;
use crate::error::Result;
use crate::message_id::MessageId;

/// The transport a runtime was built with.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Redis(redis::RedisTransport),
}

impl Transport {
    /// Appends one entry to the stream at `key`.
    pub(crate) async fn append(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        match self {
            Transport::Redis(r) => r.append(key, entry).await,
        }
    }

    /// Appends entries to the stream at `key` in one round trip, in order.
    pub(crate) async fn append_all(&self, key: &str, entries: &[EncodedEvent]) -> Result<Vec<MessageId>> {
        match self {
            Transport::Redis(r) => r.append_all(key, entries).await,
        }
    }
}
