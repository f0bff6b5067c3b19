//! Small helpers with no better home.

use std::hash::{BuildHasher, Hasher};

/// A random `u64` from the standard library's randomly keyed hasher (enough for jitter and
/// name suffixes; not for cryptography).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Lets a repeated log line through at most once per `period`, counting what it held back: for
/// failures that stop progress and repeat every loop (a reclaim or lease that keeps failing),
/// logged at warn without flooding the log.
#[derive(Debug)]
pub(crate) struct RateLimit {
    period: std::time::Duration,
    last: Option<std::time::Instant>,
    held: u64,
}

impl RateLimit {
    pub(crate) fn new(period: std::time::Duration) -> Self {
        RateLimit {
            period,
            last: None,
            held: 0,
        }
    }

    /// `Some(lines held back since the last one let through)` when this one may be logged.
    pub(crate) fn check(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.period)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// The host name, for consumer names: at most 32 of `A-Z a-z 0-9 _ . -` (anything else becomes
/// `-`; it may come from `$HOSTNAME`, which is anything); `host` when it cannot be read.
pub(crate) fn hostname() -> String {
    let raw = raw_hostname();
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    if clean.is_empty() {
        "host".to_owned()
    } else {
        clean
    }
}

fn raw_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_name_is_clean_and_short() {
        let h = super::hostname();
        assert!(!h.is_empty() && h.len() <= 32, "{h}");
        assert!(
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "{h}"
        );
    }
}
