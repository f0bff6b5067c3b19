//! Event ids: UUIDv7, monotonic within the process, without a system call per id.
//!
//! `Uuid::now_v7` reads the operating system's random source for every id (a `getrandom` system
//! call, about 0.45 µs: more than encoding the whole envelope). This generator has the same
//! layout and guarantees — 48-bit millisecond timestamp, a 42-bit counter reseeded at random
//! every millisecond (so ids of one process sort in creation order), random low bits — and
//! draws its random bits from a per-thread generator seeded once from the standard library's
//! randomly keyed hasher. Event ids are deduplication keys, not secrets.

use std::cell::Cell;
use std::sync::Mutex;

use uuid::Uuid;

use super::now_ms;

/// The counter is reseeded with 41 random bits each millisecond; the 42nd bit leaves room to
/// count at least 2^41 ids within one millisecond before the timestamp is bumped.
const RESEED_MASK: u64 = (1 << 41) - 1;
const MAX_COUNTER: u64 = (1 << 42) - 1;

/// The last `(millisecond, counter)` handed out.
static LAST: Mutex<(u64, u64)> = Mutex::new((0, 0));

thread_local! {
    static RNG: Cell<u64> = Cell::new(crate::util::random_u64());
}

/// wyrand: a small, fast, statistically good generator.
fn random() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A new UUIDv7 event id.
pub(crate) fn new_event_id() -> Uuid {
    let now = now_ms();
    let (ms, counter) = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if now > last.0 {
            *last = (now, random() & RESEED_MASK);
        } else if last.1 < MAX_COUNTER {
            last.1 += 1;
        } else {
            // The counter is exhausted within this millisecond: borrow the next one.
            *last = (last.0 + 1, random() & RESEED_MASK);
        }
        *last
    };
    // 12 bits of `rand_a` and the top 30 bits of `rand_b` hold the counter; the rest is random.
    let low = random();
    let mut bytes = [0u8; 10];
    bytes[0] = (counter >> 38) as u8 & 0x0f;
    bytes[1] = (counter >> 30) as u8;
    // `rand_b` starts with the two variant bits, which the builder overwrites: shift the counter
    // below them.
    let b = ((counter & ((1 << 30) - 1)) << 32) | (low & 0xffff_ffff);
    bytes[2..10].copy_from_slice(&b.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_distinct_and_increasing() {
        let ids: Vec<Uuid> = (0..10_000).map(|_| new_event_id()).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} is not below {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn ids_carry_the_current_millisecond() {
        let before = now_ms();
        let id = new_event_id();
        let after = now_ms();
        let (secs, nanos) = id
            .get_timestamp()
            .expect("a v7 id has a timestamp")
            .to_unix();
        let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!(
            (before..=after + 1).contains(&ms),
            "{ms} not in {before}..={after}"
        );
    }
}
