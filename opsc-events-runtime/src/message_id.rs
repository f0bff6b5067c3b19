//! Stream entry ids.

use std::fmt;
use std::str::FromStr;

/// The id Redis gives a stream entry: milliseconds and a sequence number, shown as `ms-seq`.
///
/// ```
/// use opsc_events_runtime::MessageId;
///
/// let id: MessageId = "1700000000000-3".parse().unwrap();
/// assert_eq!(id.ms(), 1_700_000_000_000);
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!(id < "1700000000001-0".parse().unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MessageId {
    ms: u64,
    seq: u64,
}

impl MessageId {
    /// The smallest id, `0-0`.
    pub const MIN: MessageId = MessageId { ms: 0, seq: 0 };

    /// An id from its two parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        MessageId { ms, seq }
    }

    /// Milliseconds since the epoch at which the entry was added.
    pub const fn ms(&self) -> u64 {
        self.ms
    }

    /// The sequence number within that millisecond.
    pub const fn seq(&self) -> u64 {
        self.seq
    }

    /// Parses the bytes Redis returns.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ParseMessageIdError> {
        std::str::from_utf8(b)
            .map_err(|_| ParseMessageIdError(String::from_utf8_lossy(b).into_owned()))?
            .parse()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A string that is not a stream entry id (`<ms>-<seq>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a stream entry id (expected `<ms>-<seq>`)")]
pub struct ParseMessageIdError(String);

impl FromStr for MessageId {
    type Err = ParseMessageIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMessageIdError(s.to_owned());
        let (ms, seq) = s.split_once('-').ok_or_else(err)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(err());
        }
        Ok(MessageId {
            ms: ms.parse().map_err(|_| err())?,
            seq: seq.parse().map_err(|_| err())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-b",
            "1-2-3",
            "+1-2",
            "99999999999999999999-0",
        ] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn orders_by_ms_then_seq() {
        let a = MessageId::new(5, 9);
        let b = MessageId::new(6, 0);
        assert!(a < b);
        assert!(MessageId::new(6, 1) > b);
    }
}
