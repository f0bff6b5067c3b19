//! The retry policy: how many attempts, how long to wait between them, and what a failure
//! leads to. Pure functions; the consumer loop applies them.

use std::time::Duration;

use crate::handler::{Backoff, HandlerConfig};

/// What to do with a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// No attempt left (or a permanent error): dead-letter it, or drop it when dead letters are
    /// off.
    GiveUp,
}

/// Attempts in all: the first try plus `retries`.
pub(crate) fn max_attempts(config: &HandlerConfig) -> u32 {
    config.retries.saturating_add(1)
}

/// The decision after attempt `attempt` (counting from 1) failed.
pub(crate) fn after_failure(config: &HandlerConfig, attempt: u32, retryable: bool) -> Next {
    if !retryable || attempt >= max_attempts(config) {
        Next::GiveUp
    } else {
        Next::RetryAfter(delay(config.backoff, attempt, crate::util::random_u64()))
    }
}

/// The wait after failed attempt `attempt`: `exponential` draws uniformly from
/// `0..=min(max, initial × 2^(attempt-1))` ("full jitter") using `random`.
pub(crate) fn delay(backoff: Backoff, attempt: u32, random: u64) -> Duration {
    match backoff {
        Backoff::None => Duration::ZERO,
        Backoff::Fixed(d) => d,
        Backoff::Exponential { initial, max } => {
            let factor = 1u32
                .checked_shl(attempt.saturating_sub(1).min(31))
                .unwrap_or(u32::MAX);
            let cap = initial.saturating_mul(factor).min(max);
            let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(random % (cap_ms.saturating_add(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(retries: u32, backoff: Backoff) -> HandlerConfig {
        HandlerConfig {
            retries,
            backoff,
            ..HandlerConfig::DEFAULT
        }
    }

    #[test]
    fn attempts_are_the_first_try_plus_retries() {
        let c = config(2, Backoff::None);
        assert_eq!(after_failure(&c, 1, true), Next::RetryAfter(Duration::ZERO));
        assert_eq!(after_failure(&c, 2, true), Next::RetryAfter(Duration::ZERO));
        assert_eq!(after_failure(&c, 3, true), Next::GiveUp);
        assert_eq!(
            after_failure(&config(0, Backoff::None), 1, true),
            Next::GiveUp
        );
    }

    #[test]
    fn permanent_errors_give_up_at_once() {
        assert_eq!(
            after_failure(&config(5, Backoff::None), 1, false),
            Next::GiveUp
        );
    }

    #[test]
    fn exponential_backoff_is_full_jitter_below_a_doubling_cap() {
        let b = Backoff::Exponential {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for (attempt, cap) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            // `random % (cap + 1)` reaches the cap exactly when `random == cap`.
            assert_eq!(delay(b, attempt, cap), Duration::from_millis(cap));
            assert_eq!(delay(b, attempt, 0), Duration::ZERO);
            for r in [1u64, 77, 12_345, u64::MAX] {
                assert!(delay(b, attempt, r) <= Duration::from_millis(cap));
            }
        }
    }

    #[test]
    fn fixed_backoff_is_fixed() {
        let b = Backoff::Fixed(Duration::from_secs(3));
        assert_eq!(delay(b, 1, 5), Duration::from_secs(3));
        assert_eq!(delay(b, 9, 0), Duration::from_secs(3));
    }
}
