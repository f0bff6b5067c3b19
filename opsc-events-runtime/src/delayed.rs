//! Delayed events: encoded and scheduled now, moved into their stream when due.
//!
//! [`Publisher::publish_after`](crate::Publisher::publish_after) and
//! [`publish_at`](crate::Publisher::publish_at) encode the event at once (its event id, time
//! stamp and metadata are fixed then) and put it in the stream's schedule — a sorted set of due
//! times, `<prefix>:{<stream>}:delayed`, and the packed fields, `…:delayed:data`, under the
//! stream's hash tag. Due times come from the server's clock (`now + delay`, computed in the
//! script). Each runtime that handles a stream runs a mover for it; the one that holds the
//! stream's lease (`…:delayed:lease`, renewed every tick) moves what is due: one script takes up
//! to [`MOVE_BATCH`] due events, appends each to the stream and removes it from the schedule, so
//! an event is never in both places nor in neither, and a crash or a Redis restart between
//! ticks cannot move it twice. Every consumer group of the stream then sees it like any event.
//! A tick costs `O(log n + moved)` whatever the schedule's size.
//!
//! A scheduled event can be cancelled with [`Publisher::cancel`](crate::Publisher::cancel) until it
//! is moved; listing and cancelling by operators go through [`Runtime::delayed`](crate::Runtime::delayed)
//! and `opsc delayed`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::info::Entry;
use crate::keys::Keys;
use crate::message_id::MessageId;
use crate::transport::{Broker, Fields, Transport, with_broker};

/// The longest delay `publish_after` accepts: 400 days.
pub const MAX_DELAY: Duration = Duration::from_secs(400 * 24 * 3600);

/// The most due events one tick moves (then the next tick follows at once).
pub const MOVE_BATCH: usize = 500;

/// How often a mover looks for events due, at most: publishes from other processes are seen
/// within this (publishes from this process wake it at once).
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// How long a mover's lease lasts unless renewed: a runtime that dies holding it delays the
/// stream's due events by at most this.
pub(crate) const LEASE: Duration = Duration::from_secs(2);

/// A scheduled event, as returned by `publish_after`; give it to `cancel` to call it off.
/// Displays (and parses) as `<stream>/<event id>`.
///
/// ```
/// use opsc_events_runtime::delayed::Delayed;
///
/// let d: Delayed = "assets/0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61".parse().unwrap();
/// assert_eq!(d.stream(), "assets");
/// assert_eq!(d.to_string(), "assets/0191c6d2-7b0e-7f3a-8c1e-5b8f2a9d4e61");
/// assert!("assets".parse::<Delayed>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delayed {
    stream: String,
    event_id: Uuid,
    due_ms: Option<u64>,
}

impl Delayed {
    pub(crate) fn new(stream: &str, event_id: Uuid, due_ms: u64) -> Self {
        Delayed {
            stream: stream.to_owned(),
            event_id,
            due_ms: Some(due_ms),
        }
    }

    /// The stream it will be appended to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The event's id (fixed when it was scheduled; its handlers see this id).
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    /// When it is due, by the server's clock (unknown for a handle parsed from text).
    pub fn due(&self) -> Option<SystemTime> {
        self.due_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }
}

impl fmt::Display for Delayed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stream, self.event_id)
    }
}

/// Text that is not `<stream>/<event id>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not <stream>/<event id>")]
pub struct ParseDelayedError(String);

impl std::str::FromStr for Delayed {
    type Err = ParseDelayedError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || ParseDelayedError(s.chars().take(200).collect());
        let (stream, id) = s.rsplit_once('/').ok_or_else(bad)?;
        crate::keys::STREAM_NAME.check(stream).map_err(|_| bad())?;
        let event_id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Delayed {
            stream: stream.to_owned(),
            event_id,
            due_ms: None,
        })
    }
}

/// One scheduled event, as listed by [`Runtime::delayed`](crate::Runtime::delayed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelayedEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// When it is due, in milliseconds since the epoch by the server's clock.
    pub due_ms: u64,
    /// Its fields as they will be appended (`Entry::envelope` decodes them; the entry id is
    /// `0-0` until it is moved).
    pub entry: Entry,
}

impl DelayedEvent {
    /// When it is due.
    pub fn due(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.due_ms)
    }
}

/// Which scheduled events [`Runtime::delayed`](crate::Runtime::delayed) lists: the soonest
/// due first, from `after_ms` on, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelayedFilter {
    /// Only events due at or after this time (ms since the epoch); paging: pass the last
    /// listed `due_ms`.
    pub after_ms: Option<u64>,
    /// Only events due before this time (ms since the epoch).
    pub before_ms: Option<u64>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
}

impl DelayedFilter {
    /// Every scheduled event, soonest first, 100 at most.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n`.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Due at or after `ms`.
    pub fn after_ms(mut self, ms: u64) -> Self {
        self.after_ms = Some(ms);
        self
    }

    /// Due before `ms`.
    pub fn before_ms(mut self, ms: u64) -> Self {
        self.before_ms = Some(ms);
        self
    }
}

/// What one move tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Moved {
    /// Events appended to the stream.
    pub(crate) moved: usize,
    /// Scheduled events whose data was unreadable, removed from the schedule (logged).
    pub(crate) dropped: usize,
    /// Milliseconds until the next event is due, if any is scheduled.
    pub(crate) next_in_ms: Option<u64>,
    /// Another runtime holds the lease.
    pub(crate) elsewhere: bool,
}

/// Checks a delay against [`MAX_DELAY`] and returns it in milliseconds.
pub(crate) fn delay_ms(delay: Duration) -> Result<u64> {
    if delay > MAX_DELAY {
        return Err(Error::DelayTooLong {
            delay,
            max: MAX_DELAY,
        });
    }
    Ok(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
}

/// The delay until `at` by this host's clock (zero if it has passed): `publish_at` turns its
/// time into a delay here, and the server adds it to its own clock.
pub(crate) fn delay_until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

/// Packs fields as the schedule keeps them: a MessagePack array of names and values, written
/// as `str` (any bytes: Redis's `cmsgpack`, which the move script unpacks them with, reads
/// `str` as a binary-safe Lua string but not the `bin` types).
pub(crate) fn pack(
    fields: impl ExactSizeIterator<Item = (impl AsRef<[u8]>, impl AsRef<[u8]>)>,
) -> Vec<u8> {
    let n = fields.len();
    let mut out = Vec::with_capacity(16 + n * 32);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut out, u32::try_from(n * 2).unwrap_or(u32::MAX));
    for (k, v) in fields {
        for bytes in [k.as_ref(), v.as_ref()] {
            let _ = rmp::encode::write_str_len(
                &mut out,
                u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            );
            out.extend_from_slice(bytes);
        }
    }
    out
}

/// Unpacks what [`pack`] wrote (or `None` for anything else).
pub(crate) fn unpack(mut data: &[u8]) -> Option<Fields> {
    let len = rmp::decode::read_array_len(&mut data).ok()? as usize;
    if !len.is_multiple_of(2) {
        return None;
    }
    // The length comes from the data: each name and value takes at least a byte, so the
    // bytes left bound what is worth reserving (a forged length must not allocate gigabytes).
    let mut fields = Vec::with_capacity((len / 2).min(data.len() / 2));
    for _ in 0..len / 2 {
        let k = read_bytes(&mut data)?;
        let v = read_bytes(&mut data)?;
        fields.push((k, v));
    }
    data.is_empty().then_some(fields)
}

/// A binary or text string.
fn read_bytes(data: &mut &[u8]) -> Option<Vec<u8>> {
    let marker = rmp::decode::read_marker(data).ok()?;
    let len = match marker {
        rmp::Marker::Bin8 | rmp::Marker::Str8 => usize::from(take::<1>(data)?[0]),
        rmp::Marker::Bin16 | rmp::Marker::Str16 => {
            usize::from(u16::from_be_bytes(take::<2>(data)?))
        }
        rmp::Marker::Bin32 | rmp::Marker::Str32 => {
            usize::try_from(u32::from_be_bytes(take::<4>(data)?)).ok()?
        }
        rmp::Marker::FixStr(n) => usize::from(n),
        _ => return None,
    };
    if data.len() < len {
        return None;
    }
    let (bytes, rest) = data.split_at(len);
    *data = rest;
    Some(bytes.to_vec())
}

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    if data.len() < N {
        return None;
    }
    let (head, rest) = data.split_at(N);
    *data = rest;
    head.try_into().ok()
}

/// The entry a listing shows for scheduled fields.
pub(crate) fn entry_of(fields: Fields) -> Entry {
    Entry {
        id: MessageId::MIN,
        fields: fields
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect(),
    }
}

/// Moves due events of `streams` into them until `stop`: one loop for all the runtime's
/// streams, woken by `wake` (a publish from this process) or every [`POLL`].
pub(crate) async fn run_mover(
    transport: Transport,
    keys: Keys,
    streams: Vec<String>,
    token: Arc<str>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut warn_every = crate::util::RateLimit::new(Duration::from_secs(60));
    let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
    let families: Vec<_> = streams.iter().map(|s| keys.stream(s)).collect();
    loop {
        crate::fault::hit("", "delayed").await;
        let mut wait = POLL;
        for family in &families {
            let result = with_broker!(&transport, b => {
                b.move_due(family, &token, lease_ms, MOVE_BATCH).await
            });
            match result {
                Ok(m) => {
                    if m.moved > 0 {
                        tracing::debug!(stream = %family.stream, moved = m.moved, "moved delayed events into the stream");
                        metrics::counter!("opsc_events_delayed_moved_total", "stream" => family.stream.clone())
                            .increment(m.moved as u64);
                    }
                    if m.dropped > 0 {
                        tracing::error!(stream = %family.stream, dropped = m.dropped, "scheduled events with unreadable data were removed from the schedule");
                    }
                    if m.moved >= MOVE_BATCH {
                        wait = Duration::ZERO;
                    } else if let Some(next) = m.next_in_ms
                        && !m.elsewhere
                    {
                        wait = wait.min(Duration::from_millis(next));
                    }
                }
                Err(e) => {
                    if let Some(held) = warn_every.check() {
                        tracing::warn!(stream = %family.stream, error = %e, repeated = held, "moving due delayed events failed; trying again");
                    }
                }
            }
        }
        if wait.is_zero() {
            tokio::task::yield_now().await;
            if stop.is_cancelled() {
                return;
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packed_fields_unpack_to_the_same_fields() {
        let fields: Fields = vec![
            (b"e:order_created:1".to_vec(), vec![0, 1, 2, 255]),
            (b"d".to_vec(), vec![0xc1; 70_000]),
            (Vec::new(), Vec::new()),
        ];
        let packed = pack(fields.iter().map(|(k, v)| (k, v)));
        assert_eq!(unpack(&packed), Some(fields));
    }

    #[test]
    fn a_delay_past_the_longest_is_refused() {
        assert!(delay_ms(MAX_DELAY).is_ok());
        assert!(matches!(
            delay_ms(MAX_DELAY + Duration::from_millis(1)),
            Err(Error::DelayTooLong { .. })
        ));
        assert_eq!(
            delay_until(SystemTime::now() - Duration::from_secs(5)),
            Duration::ZERO
        );
    }

    proptest! {
        #[test]
        fn any_bytes_unpack_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = unpack(&data);
        }

        #[test]
        fn any_fields_round_trip(fields in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..40), proptest::collection::vec(any::<u8>(), 0..300)),
            0..12,
        )) {
            let packed = pack(fields.iter().map(|(k, v)| (k, v)));
            prop_assert_eq!(unpack(&packed), Some(fields));
        }
    }
}
