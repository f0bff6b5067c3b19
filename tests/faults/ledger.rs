//! The ledger: what was published, which group handled what how many times (and in which worker
//! process), which faults were injected, and — compared with the dead-letter stream — the verdict
//! for every published entry and every group: handled, dead-lettered, both, or missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;

use opsc_events::prelude::*;

use crate::work::{Handled, Job, fate};

/// Instance number of handlers running inside the test process.
pub const IN_PROCESS: u32 = 0;

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// `kill -9` by the harness.
    Killed,
    /// Exited on its own (a `crash` job aborted it, or it could not start).
    Exited,
}

/// A raw entry written with `XADD` (not through the publisher): poison.
#[derive(Debug, Clone)]
pub struct Injected {
    pub id: MessageId,
    pub what: &'static str,
    /// The reason every group must dead-letter it with; empty when no group may (an event
    /// type the groups do not handle is acknowledged and skipped).
    pub reason: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Handling {
    instance: u32,
    attempt: u32,
    delivery_count: u32,
}

#[derive(Default)]
struct Inner {
    /// Every job handed to the publisher: seq → fate.
    fates: BTreeMap<u64, u8>,
    /// Entries the publisher acknowledged: message id → seq.
    acked: HashMap<MessageId, u64>,
    /// group → message id → (seq, handlings).
    handled: HashMap<String, HashMap<MessageId, (u64, Vec<Handling>)>>,
    injected: Vec<Injected>,
    deaths: HashMap<u32, Death>,
    ready: BTreeSet<u32>,
    faults: BTreeMap<String, u64>,
    unparsed: Vec<String>,
}

/// Shared by the feeder, the worker output readers and the verifier.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking reader thread must not hide the ledger from the verdict.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A job is about to be published (perhaps several times, until acknowledged).
    pub fn planned(&self, job: &Job) {
        self.lock().fates.insert(job.seq, job.fate);
    }

    /// The publisher acknowledged `seq` as entry `id`.
    pub fn published(&self, seq: u64, id: MessageId) {
        self.lock().acked.insert(id, seq);
    }

    /// A raw poison entry was written.
    pub fn injected(&self, entry: Injected) {
        self.lock().injected.push(entry);
    }

    /// Counts one injected fault (or other event worth reporting) under `what`.
    pub fn fault(&self, what: &str) {
        self.faults(what, 1);
    }

    /// Counts `n` under `what`.
    pub fn faults(&self, what: &str, n: u64) {
        *self.lock().faults.entry(what.to_owned()).or_default() += n;
    }

    pub fn fault_count(&self, what: &str) -> u64 {
        self.lock().faults.get(what).copied().unwrap_or(0)
    }

    /// Worker `instance` ended.
    pub fn died(&self, instance: u32, how: Death) {
        self.lock().deaths.entry(instance).or_insert(how);
    }

    /// How many worker processes have said `ready`.
    pub fn ready_count(&self) -> usize {
        self.lock().ready.len()
    }

    /// A successful handling.
    pub fn handled(&self, instance: u32, h: &Handled) {
        let mut inner = self.lock();
        let per_group = inner.handled.entry(h.group.clone()).or_default();
        let slot = per_group
            .entry(h.message_id)
            .or_insert_with(|| (h.seq, Vec::new()));
        slot.1.push(Handling {
            instance,
            attempt: h.attempt,
            delivery_count: h.delivery_count,
        });
    }

    /// One line printed by worker `instance`.
    pub fn line(&self, instance: u32, line: &str) {
        if let Some(h) = Handled::parse(line) {
            self.handled(instance, &h);
        } else if line.starts_with("ready ") {
            self.lock().ready.insert(instance);
        } else if line != "bye" {
            let mut inner = self.lock();
            if inner.unparsed.len() < 20 {
                inner.unparsed.push(format!("worker {instance}: {line}"));
            }
        }
    }

    /// Distinct entries `group` handled so far.
    pub fn handled_entries(&self, group: &str) -> usize {
        self.lock().handled.get(group).map_or(0, HashMap::len)
    }

    /// The verdict for `groups`, given every dead letter of the stream.
    pub fn verdict(&self, groups: &[&str], letters: &[DeadLetter]) -> Verdict {
        let inner = self.lock();
        let injected: HashMap<MessageId, &Injected> =
            inner.injected.iter().map(|i| (i.id, i)).collect();
        let mut verdict = Verdict {
            published: inner.fates.len() as u64,
            acked: inner.acked.len() as u64,
            injected: inner.injected.len() as u64,
            faults: inner.faults.clone(),
            killed: inner
                .deaths
                .values()
                .filter(|d| **d == Death::Killed)
                .count() as u64,
            exited: inner
                .deaths
                .values()
                .filter(|d| **d == Death::Exited)
                .count() as u64,
            unparsed: inner.unparsed.clone(),
            groups: Vec::new(),
        };
        for group in groups {
            let mut g = GroupVerdict {
                group: (*group).to_owned(),
                ..GroupVerdict::default()
            };
            let empty = HashMap::new();
            let handled = inner.handled.get(*group).unwrap_or(&empty);
            // Dead letters of this group by original id.
            let mut dead: HashMap<MessageId, Vec<&DeadLetter>> = HashMap::new();
            for l in letters.iter().filter(|l| l.group == *group) {
                dead.entry(l.original_id).or_default().push(l);
            }
            for (id, ls) in &dead {
                *g.dead_by_reason
                    .entry(ls[0].reason.to_string())
                    .or_default() += 1;
                if ls.len() > 1 {
                    g.dead_twice += 1;
                    g.problems
                        .push(format!("{id} dead-lettered {} times", ls.len()));
                }
                if handled.contains_key(id) {
                    g.both += 1;
                    let seq = handled[id].0;
                    let f = inner.fates.get(&seq).copied().unwrap_or(fate::OK);
                    g.problems.push(format!(
                        "{id} (seq {seq}, {}) handled and also dead-lettered as {} after {} attempts",
                        fate::name(f),
                        ls[0].reason,
                        ls[0].attempts
                    ));
                }
                let l = ls[0];
                if let Some(inj) = injected.get(id) {
                    if !inj.reason.is_empty() && l.reason.as_str() == inj.reason {
                        g.poison_ok += 1;
                    } else {
                        g.wrong_reason += 1;
                        g.problems.push(format!(
                            "poison `{}` ({id}) dead-lettered as {}, expected {}: {}",
                            inj.what, l.reason, inj.reason, l.error
                        ));
                    }
                    continue;
                }
                let seq = inner
                    .acked
                    .get(id)
                    .copied()
                    .or_else(|| rmp_serde::from_slice::<Job>(&l.data).ok().map(|j| j.seq));
                let Some(seq) = seq else {
                    g.problems
                        .push(format!("dead letter for unknown entry {id}: {}", l.reason));
                    continue;
                };
                let f = inner.fates.get(&seq).copied().unwrap_or(fate::OK);
                match fate::expected_reason(f) {
                    Some(r) if r == l.reason.as_str() => {}
                    // Its last attempt was cut short by a dying process (or the process died
                    // before settling it): `crashed` is right, whatever the handler would
                    // have done.
                    Some(_) if l.reason.as_str() == "crashed" => g.crashed_instead += 1,
                    Some(r) => {
                        g.wrong_reason += 1;
                        g.problems.push(format!(
                            "{id} (seq {seq}, {}) dead-lettered as {}, expected {r}: {}",
                            fate::name(f),
                            l.reason,
                            l.error
                        ));
                    }
                    None => {
                        g.collateral += 1;
                        g.problems.push(format!(
                            "{id} (seq {seq}, {}) dead-lettered as {} after {} attempts: {}",
                            fate::name(f),
                            l.reason,
                            l.attempts,
                            l.error
                        ));
                    }
                }
            }
            for (id, (seq, calls)) in handled {
                g.calls += calls.len() as u64;
                if calls.iter().any(|c| c.attempt > 1 || c.delivery_count > 1) {
                    g.redelivered += 1;
                }
                let f = inner.fates.get(seq).copied().unwrap_or(fate::OK);
                if fate::expected_reason(f).is_some() {
                    g.problems.push(format!(
                        "{id} (seq {seq}, {}) was handled although it can never succeed",
                        fate::name(f)
                    ));
                    g.handled_failing += 1;
                }
                if calls.iter().any(|c| c.attempt > crate::work::MAX_ATTEMPTS) {
                    g.problems
                        .push(format!("{id} (seq {seq}) handled beyond the attempt limit"));
                }
                if calls.len() > 1 {
                    g.duplicates += calls.len() as u64 - 1;
                    // A duplicate is explained by the death of the process that handled it
                    // first (it died before its XACK): at most one handling may come from a
                    // process that is still alive or stopped cleanly.
                    let survivors = calls
                        .iter()
                        .filter(|c| {
                            c.instance == IN_PROCESS || !inner.deaths.contains_key(&c.instance)
                        })
                        .count() as u64;
                    g.unexplained += survivors.saturating_sub(1);
                }
                if !inner.acked.contains_key(id) {
                    g.unacked_handled += 1;
                }
            }
            for (id, seq) in &inner.acked {
                g.expected += 1;
                let h = handled.contains_key(id);
                let d = dead.contains_key(id);
                if h {
                    g.handled += 1;
                }
                if d {
                    g.dead += 1;
                }
                if !h && !d {
                    g.missing.push((*seq, *id));
                }
            }
            for inj in &inner.injected {
                if !inj.reason.is_empty() && !dead.contains_key(&inj.id) {
                    g.missing_poison.push(format!("{} ({})", inj.what, inj.id));
                }
            }
            g.missing.sort_unstable();
            verdict.groups.push(g);
        }
        verdict
    }
}

/// One group's accounting.
#[derive(Debug, Default, Clone)]
pub struct GroupVerdict {
    pub group: String,
    /// Acknowledged publishes the group had to settle.
    pub expected: u64,
    /// Of those, handled at least once.
    pub handled: u64,
    /// Of those, in the dead-letter stream.
    pub dead: u64,
    /// Successful handler calls in all (duplicates included).
    pub calls: u64,
    /// Entries handled on a later attempt or delivery (after a failure, a reclaim or a crash).
    pub redelivered: u64,
    /// Extra successful calls for an entry already handled.
    pub duplicates: u64,
    /// Duplicates not explained by the death of the process that handled the entry first.
    pub unexplained: u64,
    /// Entries handled that the publisher had reported as failed (they landed anyway).
    pub unacked_handled: u64,
    /// Entries both handled and dead-lettered.
    pub both: u64,
    /// Entries dead-lettered more than once.
    pub dead_twice: u64,
    /// Dead letters of jobs that should have succeeded.
    pub collateral: u64,
    /// Dead letters whose reason is neither the one the fate (or the poison) calls for nor
    /// `crashed`.
    pub wrong_reason: u64,
    /// Failing jobs dead-lettered as `crashed` (a process died during their last attempt).
    pub crashed_instead: u64,
    /// Failing jobs reported handled (impossible unless the harness is wrong).
    pub handled_failing: u64,
    /// Poison entries dead-lettered with the right reason.
    pub poison_ok: u64,
    pub dead_by_reason: BTreeMap<String, u64>,
    /// Acknowledged entries neither handled nor dead-lettered: (seq, id).
    pub missing: Vec<(u64, MessageId)>,
    pub missing_poison: Vec<String>,
    pub problems: Vec<String>,
}

/// The whole accounting of one scenario.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    /// Jobs handed to the publisher.
    pub published: u64,
    /// Entries the publisher acknowledged.
    pub acked: u64,
    /// Raw poison entries.
    pub injected: u64,
    pub faults: BTreeMap<String, u64>,
    /// Worker processes killed by the harness.
    pub killed: u64,
    /// Worker processes that exited on their own (crash jobs).
    pub exited: u64,
    pub unparsed: Vec<String>,
    pub groups: Vec<GroupVerdict>,
}

impl Verdict {
    pub fn missing(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.missing.len() + g.missing_poison.len())
            .sum()
    }

    pub fn group(&self, name: &str) -> &GroupVerdict {
        self.groups
            .iter()
            .find(|g| g.group == name)
            .unwrap_or_else(|| panic!("no group {name} in the verdict"))
    }

    /// The printed ledger.
    pub fn render(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "==== ledger: {title} ====");
        let _ = writeln!(
            s,
            "jobs published: {} (entries acknowledged: {}), poison entries: {}",
            self.published, self.acked, self.injected
        );
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            s,
            "faults: {}; worker processes killed: {}, exited on their own: {}",
            if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join(", ")
            },
            self.killed,
            self.exited
        );
        let _ = writeln!(
            s,
            "{:<16} {:>9} {:>9} {:>6} {:>7} {:>7} {:>5} {:>6} {:>5} {:>5} {:>6}  dead letters by reason",
            "group",
            "expected",
            "handled",
            "redel",
            "dead",
            "missing",
            "dups",
            "unexpl",
            "both",
            "coll",
            "wrong"
        );

        for g in &self.groups {
            let reasons: Vec<String> = g
                .dead_by_reason
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                s,
                "{:<16} {:>9} {:>9} {:>6} {:>7} {:>7} {:>5} {:>6} {:>5} {:>5} {:>6}  {}",
                g.group,
                g.expected,
                g.handled,
                g.redelivered,
                g.dead,
                g.missing.len() + g.missing_poison.len(),
                g.duplicates,
                g.unexplained,
                g.both,
                g.collateral,
                g.wrong_reason + g.handled_failing,
                reasons.join(", ")
            );
        }
        for g in &self.groups {
            for (seq, id) in g.missing.iter().take(10) {
                let _ = writeln!(s, "  MISSING in {}: seq {seq} entry {id}", g.group);
            }
            for p in &g.missing_poison {
                let _ = writeln!(s, "  MISSING poison dead letter in {}: {p}", g.group);
            }
            for p in g.problems.iter().take(10) {
                let _ = writeln!(s, "  {}: {p}", g.group);
            }
            if g.problems.len() > 10 {
                let _ = writeln!(s, "  {}: ... {} more", g.group, g.problems.len() - 10);
            }
        }
        for g in self.groups.iter().filter(|g| g.crashed_instead > 0) {
            let _ = writeln!(
                s,
                "  {}: {} failing jobs ended as `crashed` (a process died during their last attempt)",
                g.group, g.crashed_instead
            );
        }
        for u in &self.unparsed {
            let _ = writeln!(s, "  unparsed output: {u}");
        }
        s.push_str(LEGEND);
        s
    }
}

/// What the columns of [`Verdict::render`] mean.
const LEGEND: &str = "  (expected: acknowledged publishes; handled: of those, handled at least once; \
redel: handled on a later delivery or attempt; dead: in the dead-letter stream; dups: extra \
successful calls; unexpl: duplicates not explained by a dead process; both: handled and \
dead-lettered; coll: good jobs dead-lettered; wrong: wrong outcome)\n";
