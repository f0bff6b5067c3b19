//! The console's memory of recent samples (stream length and total lag per stream), taken
//! each time the overview is asked for, for throughput and the small charts.

use std::collections::{BTreeMap, VecDeque};

/// Samples kept: at one a second, ten minutes.
const KEEP: usize = 600;
/// A sample closer than this to the one before the newest replaces the newest (many open pages
/// poll at once; the newest sample stays current, the older ones at least this far apart).
const MIN_GAP_MS: u64 = 1000;

/// One stream at one moment.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(super) struct Point {
    pub(super) at_ms: u64,
    pub(super) length: u64,
    /// The sum of the groups' lag (groups whose lag Redis cannot tell count 0).
    pub(super) lag: u64,
}

/// Samples per stream, oldest first.
#[derive(Debug, Default)]
pub(super) struct History {
    streams: BTreeMap<String, VecDeque<Point>>,
}

impl History {
    /// Records `p` for `stream` and returns the stream's samples.
    pub(super) fn record(&mut self, stream: &str, p: Point) -> Vec<Point> {
        let q = self.streams.entry(stream.to_owned()).or_default();
        let len = q.len();
        if len >= 2 && p.at_ms.saturating_sub(q[len - 2].at_ms) < MIN_GAP_MS {
            q.pop_back();
        }
        q.push_back(p);
        while q.len() > KEEP {
            q.pop_front();
        }
        q.iter().copied().collect()
    }

    /// Forgets streams not in `live` (deleted streams).
    pub(super) fn retain(&mut self, live: &[String]) {
        self.streams.retain(|s, _| live.contains(s));
    }
}

/// Entries per second over the last `window_ms` of `points` (by length growth; `None` with
/// fewer than two samples in the window, 0 when the stream was trimmed meanwhile).
pub(super) fn throughput(points: &[Point], window_ms: u64) -> Option<f64> {
    let last = points.last()?;
    let first = points
        .iter()
        .find(|p| last.at_ms.saturating_sub(p.at_ms) <= window_ms)?;
    let dt = last.at_ms.checked_sub(first.at_ms).filter(|d| *d > 0)?;
    let rate = last.length.saturating_sub(first.length) as f64 * 1000.0 / dt as f64;
    Some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(at_ms: u64, length: u64) -> Point {
        Point {
            at_ms,
            length,
            lag: 0,
        }
    }

    #[test]
    fn throughput_is_growth_over_the_window() {
        assert_eq!(throughput(&[p(0, 0)], 60_000), None);
        assert_eq!(throughput(&[p(0, 0), p(2000, 10)], 60_000), Some(5.0));
        // Only the window counts.
        assert_eq!(
            throughput(&[p(0, 0), p(100_000, 1000), p(102_000, 1010)], 60_000),
            Some(5.0)
        );
    }

    #[test]
    fn close_samples_replace_the_newest() {
        let mut h = History::default();
        h.record("a", p(0, 1));
        h.record("a", p(400, 2));
        let pts = h.record("a", p(800, 3));
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[1].length, 3);
    }
}
