//! Mismatches between the producers and the consumers recorded in the schema registry.

use std::fmt;

use super::entry::{RegistryEntry, Role};

/// A producer and a consumer of the same event type that do not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// A consumer handles a fingerprint no producer writes, while producers of the event exist:
    /// a producer writes the consumer's version with another fingerprint (the payload changed
    /// without a version bump, on one side), or nothing any producer writes can be read by it.
    ConsumerUnmatched {
        /// The event type name.
        event: String,
        /// The consumer's service and group.
        consumer: String,
        /// The version it handles.
        version: u16,
        /// Its fingerprint.
        fingerprint: u64,
    },
    /// A producer writes a `(version, fingerprint)` some consumer cannot read, neither directly
    /// nor by upcasting: those messages will be dead-lettered as `schema_mismatch`.
    ProducerUnread {
        /// The event type name.
        event: String,
        /// The producer's service.
        producer: String,
        /// The version it writes.
        version: u16,
        /// Its fingerprint.
        fingerprint: u64,
        /// The consumers (service and group) that cannot read it.
        consumers: Vec<String>,
    },
}

impl Mismatch {
    /// The event type name.
    pub fn event(&self) -> &str {
        match self {
            Mismatch::ConsumerUnmatched { event, .. } | Mismatch::ProducerUnread { event, .. } => {
                event
            }
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::ConsumerUnmatched {
                event,
                consumer,
                version,
                fingerprint,
            } => write!(
                f,
                "`{event}`: consumer {consumer} handles v{version} {fingerprint:016x}, which no \
                 producer writes"
            ),
            Mismatch::ProducerUnread {
                event,
                producer,
                version,
                fingerprint,
                consumers,
            } => write!(
                f,
                "`{event}`: producer {producer} writes v{version} {fingerprint:016x}, which {} \
                 cannot read (neither directly nor by upcasting)",
                consumers.join(", ")
            ),
        }
    }
}

fn consumer_name(e: &RegistryEntry) -> String {
    match &e.handler {
        Some(h) => format!("{}/{}", e.service, h.group),
        None => e.service.clone(),
    }
}

/// Every mismatch in `entries`, by event name, consumers first.
///
/// An event with no producer, or no consumer, recorded has no mismatch: the registry cannot
/// tell a service that has not started yet from one that does not exist.
pub fn mismatches(entries: &[RegistryEntry]) -> Vec<Mismatch> {
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let of = |role| {
            let mut v: Vec<&RegistryEntry> = entries
                .iter()
                .filter(|e| e.name == name && e.role == role)
                .collect();
            v.sort_by_key(|e| (e.version, e.fingerprint, e.service.clone(), e.field()));
            v
        };
        let (producers, consumers) = (of(Role::Producer), of(Role::Consumer));
        if producers.is_empty() || consumers.is_empty() {
            continue;
        }
        for c in &consumers {
            let same_version = |p: &&&RegistryEntry| p.version == c.version;
            let written = producers
                .iter()
                .filter(same_version)
                .any(|p| p.fingerprint == c.fingerprint);
            let drifted = producers.iter().filter(same_version).any(|_| !written);
            let reads_any = producers
                .iter()
                .any(|p| c.can_read(p.version, p.fingerprint));
            if drifted || !reads_any {
                out.push(Mismatch::ConsumerUnmatched {
                    event: name.to_owned(),
                    consumer: consumer_name(c),
                    version: c.version,
                    fingerprint: c.fingerprint,
                });
            }
        }
        let mut reported = std::collections::BTreeSet::new();
        for p in &producers {
            if !reported.insert((p.service.as_str(), p.version, p.fingerprint)) {
                continue;
            }
            let unread: Vec<String> = consumers
                .iter()
                .filter(|c| !c.can_read(p.version, p.fingerprint))
                .map(|c| consumer_name(c))
                .collect();
            if !unread.is_empty() {
                out.push(Mismatch::ProducerUnread {
                    event: name.to_owned(),
                    producer: p.service.clone(),
                    version: p.version,
                    fingerprint: p.fingerprint,
                    consumers: unread,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::entry::{HandlerPolicy, Readable};

    fn producer(service: &str, version: u16, fp: u64) -> RegistryEntry {
        RegistryEntry {
            service: service.into(),
            role: Role::Producer,
            stream: "assets".into(),
            name: "asset_created".into(),
            version,
            fingerprint: fp,
            shape: serde_json::json!({"type": "unit"}),
            reads: Vec::new(),
            handler: None,
            last_seen_ms: 0,
        }
    }

    fn consumer(service: &str, reads: &[(u16, u64)]) -> RegistryEntry {
        let (version, fp) = reads[0];
        RegistryEntry {
            role: Role::Consumer,
            reads: reads
                .iter()
                .map(|&(version, fingerprint)| Readable {
                    version,
                    fingerprint,
                })
                .collect(),
            handler: Some(HandlerPolicy {
                handler: "h".into(),
                group: format!("{service}.h"),
                retries: 3,
                dead_letter: true,
                concurrency: 1,
                timeout_ms: 30_000,
            }),
            ..producer(service, version, fp)
        }
    }

    #[test]
    fn matching_fingerprints_are_no_mismatch() {
        let all = [producer("api", 1, 0xa), consumer("inventory", &[(1, 0xa)])];
        assert_eq!(mismatches(&all), []);
    }

    #[test]
    fn a_fingerprint_changed_without_a_version_bump_is_flagged_on_both_sides() {
        let all = [producer("api", 1, 0xb), consumer("inventory", &[(1, 0xa)])];
        let found = mismatches(&all);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            matches!(&found[0], Mismatch::ConsumerUnmatched { consumer, .. } if consumer == "inventory/inventory.h")
        );
        assert!(
            matches!(&found[1], Mismatch::ProducerUnread { producer, consumers, .. }
            if producer == "api" && consumers == &["inventory/inventory.h".to_owned()])
        );
    }

    #[test]
    fn an_older_version_read_by_upcasting_is_no_producer_mismatch() {
        let all = [
            producer("api", 1, 0xa),
            producer("api2", 2, 0xb),
            consumer("inventory", &[(2, 0xb), (1, 0xa)]),
        ];
        assert_eq!(mismatches(&all), []);
    }

    #[test]
    fn a_newer_version_no_consumer_reads_is_flagged() {
        let all = [producer("api", 2, 0xb), consumer("inventory", &[(1, 0xa)])];
        let found = mismatches(&all);
        assert!(
            found
                .iter()
                .any(|m| matches!(m, Mismatch::ProducerUnread { version: 2, .. })),
            "{found:?}"
        );
    }

    #[test]
    fn an_event_without_producers_is_not_flagged() {
        assert_eq!(mismatches(&[consumer("inventory", &[(1, 0xa)])]), []);
    }
}
