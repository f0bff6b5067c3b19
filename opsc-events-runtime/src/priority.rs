//! Priority lanes: four levels, each of a stream's levels other than `normal` stored in a stream
//! key of its own (a *lane*) under the stream's hash tag, and the weighting consumers use to
//! take work from them.
//!
//! `normal` is the stream key every consumer reads already: with no priority set anywhere,
//! nothing changes. A publisher writing to another lane first records the lane in the stream's
//! lane marker (`<prefix>:{<stream>}:lanes`, a set); consumers look at the marker when they
//! start and on a timer, and start reading a lane when it appears (see `docs/DESIGN.md`
//! § Priority lanes).

use std::fmt;
use std::str::FromStr;

/// How urgently an event should be handled. A closed set of four levels (it mirrors the
/// LOW..CRITICAL tags of the system this replaces and the wire names in `docs/WIRE.md`), so
/// it is not `#[non_exhaustive]`: a `match` over it may be exhaustive.
///
/// Set per type with `#[event(priority = "high")]` ([`Event::PRIORITY`](crate::Event::PRIORITY),
/// `Normal` by default) and per publish with
/// [`PublishOptions::priority`](crate::PublishOptions::priority). Every consumer group takes
/// higher levels first, weighted 8:4:2:1 (critical:high:normal:low) so that no level starves.
///
/// ```
/// use opsc_events_runtime::Priority;
///
/// assert_eq!("critical".parse::<Priority>(), Ok(Priority::Critical));
/// assert_eq!(Priority::Low.to_string(), "low");
/// assert!(Priority::High > Priority::Normal);
/// assert_eq!(Priority::default(), Priority::Normal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Handled when nothing more urgent waits (weight 1).
    Low,
    /// The default: the stream's own key (weight 2).
    #[default]
    Normal,
    /// Handled before normal and low (weight 4).
    High,
    /// Handled first (weight 8).
    Critical,
}

impl Priority {
    /// Every level, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// The wire name: `low`, `normal`, `high` or `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// The level's share when several levels wait: 1, 2, 4, 8 (low to critical).
    pub const fn weight(self) -> u32 {
        match self {
            Priority::Low => 1,
            Priority::Normal => 2,
            Priority::High => 4,
            Priority::Critical => 8,
        }
    }

    /// 0 (low) to 3 (critical).
    pub(crate) const fn index(self) -> usize {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Critical => 3,
        }
    }

    /// The level named `s` on the wire, if it is one.
    pub const fn from_wire(s: &[u8]) -> Option<Priority> {
        match s {
            b"low" => Some(Priority::Low),
            b"normal" => Some(Priority::Normal),
            b"high" => Some(Priority::High),
            b"critical" => Some(Priority::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}`; expected one of `low`, `normal`, `high`, `critical`")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::from_wire(s.as_bytes()).ok_or_else(|| UnknownPriority(crate::keys::shorten(s)))
    }
}

/// A set of levels, as a bit mask (bit `index()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Lanes(pub(crate) u8);

impl Lanes {
    /// Only `normal`: lanes are not in use.
    pub(crate) const NORMAL: Lanes = Lanes(1 << 1);

    pub(crate) fn with(self, p: Priority) -> Lanes {
        Lanes(self.0 | 1 << p.index())
    }

    pub(crate) fn contains(self, p: Priority) -> bool {
        self.0 & (1 << p.index()) != 0
    }

    /// The levels other than `normal`, lowest first.
    pub(crate) fn extra(self) -> impl Iterator<Item = Priority> {
        Priority::ALL
            .into_iter()
            .filter(move |p| *p != Priority::Normal && self.contains(*p))
    }

    /// The set named by wire names; names of no level (another writer's) are ignored.
    pub(crate) fn from_names<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> Lanes {
        names
            .into_iter()
            .filter_map(Priority::from_wire)
            .fold(Lanes::NORMAL, Lanes::with)
    }
}

/// Smooth weighted round-robin over the levels that have work waiting: each pick adds every
/// waiting level's weight to its credit, takes the level with the most credit (the higher level
/// on a tie) and charges it the sum of the waiting levels' weights. Over any run of picks in
/// which the same levels wait, each gets a share proportional to its weight (8:4:2:1), spread
/// out rather than in bursts; a level waiting alone gets every pick. A level that stops waiting
/// loses its credit, so a level that appears starts even: a critical entry arriving while only
/// low entries wait is picked next.
#[derive(Debug, Default, Clone)]
pub(crate) struct Weighted {
    credit: [i64; 4],
}

impl Weighted {
    /// The next level to serve among those `waiting` (indexed by `Priority::index`).
    pub(crate) fn pick(&mut self, waiting: [bool; 4]) -> Option<Priority> {
        let mut total = 0i64;
        let mut best: Option<Priority> = None;
        for p in Priority::ALL {
            let i = p.index();
            if !waiting[i] {
                self.credit[i] = 0;
                continue;
            }
            let w = i64::from(p.weight());
            self.credit[i] += w;
            total += w;
            // `ALL` is lowest first: `>=` prefers the higher level on a tie.
            if best.is_none_or(|b| self.credit[i] >= self.credit[b.index()]) {
                best = Some(p);
            }
        }
        let best = best?;
        self.credit[best.index()] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(levels: &[Priority]) -> [bool; 4] {
        let mut w = [false; 4];
        for p in levels {
            w[p.index()] = true;
        }
        w
    }

    #[test]
    fn every_waiting_level_gets_its_weighted_share() {
        let mut s = Weighted::default();
        let all = waiting(&Priority::ALL);
        let mut got = [0u32; 4];
        for _ in 0..150 {
            got[s.pick(all).expect("levels wait").index()] += 1;
        }
        // 8:4:2:1 of 150.
        assert_eq!(got, [10, 20, 40, 80]);
    }

    #[test]
    fn a_low_level_is_served_within_one_round_under_continuous_critical_load() {
        let mut s = Weighted::default();
        let both = waiting(&[Priority::Low, Priority::Critical]);
        let picks: Vec<Priority> = (0..27).map(|_| s.pick(both).expect("wait")).collect();
        // Every run of 9 picks (weights 8 + 1) holds exactly one low.
        for round in picks.chunks(9) {
            assert_eq!(round.iter().filter(|p| **p == Priority::Low).count(), 1);
        }
    }

    #[test]
    fn a_level_that_appears_is_served_before_the_backlog_of_lower_ones() {
        let mut s = Weighted::default();
        let low = waiting(&[Priority::Low, Priority::Normal]);
        for _ in 0..1000 {
            s.pick(low);
        }
        let with_critical = waiting(&[Priority::Low, Priority::Normal, Priority::Critical]);
        assert_eq!(s.pick(with_critical), Some(Priority::Critical));
        let with_high = waiting(&[Priority::Low, Priority::High]);
        assert_eq!(s.pick(with_high), Some(Priority::High));
    }

    #[test]
    fn a_level_alone_gets_every_pick_and_none_waiting_gets_none() {
        let mut s = Weighted::default();
        for _ in 0..10 {
            assert_eq!(s.pick(waiting(&[Priority::Low])), Some(Priority::Low));
        }
        assert_eq!(s.pick([false; 4]), None);
    }

    #[test]
    fn lanes_parse_wire_names_and_ignore_others() {
        let l = Lanes::from_names([&b"high"[..], b"urgent", b"low"]);
        assert!(l.contains(Priority::Normal) && l.contains(Priority::High));
        assert_eq!(
            l.extra().collect::<Vec<_>>(),
            [Priority::Low, Priority::High]
        );
        assert_eq!(Lanes::from_names([]), Lanes::NORMAL);
        assert_eq!(Lanes::NORMAL.extra().count(), 0);
    }
}
