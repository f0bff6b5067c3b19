//! What a runtime records in the schema registry: one [`RegistryEntry`] per event type it
//! publishes and per handler, built from the `inventory` registrations of the binary.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::shape_json;
use crate::handler::HandlerRegistration;
use crate::schema::{Shape, fingerprint};

/// An event type linked into the binary, submitted to `inventory` by `#[derive(Event)]`.
///
/// Only the `EventSchema` side of the type is named, so that the registration never adds a
/// compile error to the ones the derive reports.
#[derive(Debug)]
pub struct EventRegistration {
    /// The Rust type name.
    pub type_name: &'static str,
    /// `module_path!()` where it is defined.
    pub module_path: &'static str,
    /// `Event::STREAM`.
    pub stream: &'static str,
    /// `Event::NAME`.
    pub name: &'static str,
    /// `Event::VERSION`.
    pub version: u16,
    /// The payload's shape (`EventSchema::SHAPE`).
    pub shape: fn() -> &'static Shape,
}

inventory::collect!(EventRegistration);

/// Every event type linked into the binary, sorted by stream, name, version and type path.
pub fn linked() -> Vec<&'static EventRegistration> {
    let mut all: Vec<_> = inventory::iter::<EventRegistration>.into_iter().collect();
    all.sort_by(|a, b| {
        (a.stream, a.name, a.version, a.module_path, a.type_name).cmp(&(
            b.stream,
            b.name,
            b.version,
            b.module_path,
            b.type_name,
        ))
    });
    all
}

/// Whether a service writes an event type or reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publishes the event type.
    Producer,
    /// Handles it.
    Consumer,
}

impl Role {
    /// `producer` or `consumer`, as in the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }
}

/// A `(version, fingerprint)` pair a consumer decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Readable {
    /// The version.
    pub version: u16,
    /// The fingerprint, 16 lowercase hex digits.
    #[serde(with = "hex")]
    pub fingerprint: u64,
}

/// The delivery policy of a consumer entry's handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerPolicy {
    /// The fn's full path.
    pub handler: String,
    /// Its consumer group.
    pub group: String,
    /// Attempts after the first failure.
    pub retries: u32,
    /// Whether a message is dead-lettered after the last attempt (else dropped).
    pub dead_letter: bool,
    /// Messages in flight per process.
    pub concurrency: u32,
    /// The per-attempt timeout in milliseconds.
    pub timeout_ms: u64,
}

/// One field of the schema registry hash: an event type as one service writes or reads it.
///
/// Serialized as the JSON value of the hash field (see `docs/CONTRACTS.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The service that recorded the entry.
    pub service: String,
    /// Whether it publishes or handles the event.
    pub role: Role,
    /// The event's stream.
    pub stream: String,
    /// The event type name.
    pub name: String,
    /// The version it writes (producer) or handles (consumer).
    pub version: u16,
    /// That version's fingerprint, 16 lowercase hex digits.
    #[serde(with = "hex")]
    pub fingerprint: u64,
    /// The payload's shape, as [`shape_json`] renders it.
    pub shape: serde_json::Value,
    /// Every `(version, fingerprint)` the consumer decodes, its own first, then the versions it
    /// upcasts from; empty for a producer.
    #[serde(default)]
    pub reads: Vec<Readable>,
    /// The handler's policy; `None` for a producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerPolicy>,
    /// When the service last recorded the entry (ms since the epoch).
    pub last_seen_ms: u64,
}

impl RegistryEntry {
    /// The hash field the entry is stored under:
    /// `producer|<service>|<name>|<version>|<fingerprint>` or
    /// `consumer|<service>|<group>|<name>|<version>|<fingerprint>`.
    pub fn field(&self) -> String {
        match &self.handler {
            Some(h) => format!(
                "consumer|{}|{}|{}|{}|{:016x}",
                self.service, h.group, self.name, self.version, self.fingerprint
            ),
            None => format!(
                "{}|{}|{}|{}|{:016x}",
                self.role.as_str(),
                self.service,
                self.name,
                self.version,
                self.fingerprint
            ),
        }
    }

    /// Whether a consumer entry decodes `(version, fingerprint)`.
    pub fn can_read(&self, version: u16, fingerprint: u64) -> bool {
        self.reads
            .iter()
            .any(|r| r.version == version && r.fingerprint == fingerprint)
    }
}

/// The entries of a runtime of `service`: a consumer entry per selected handler, and a producer
/// entry per linked event type that no linked handler reads (a type that is only handled, or
/// only upcast from, is not published by this binary), plus those declared with
/// `RuntimeBuilder::publishes`. The runtime's own `runtime_metrics` event counts as published
/// only when `metrics` is true.
pub(crate) fn entries(
    service: &str,
    handlers: &[(&'static HandlerRegistration, String)],
    declared: &[(&'static str, u16, u64)],
    metrics: bool,
    now_ms: u64,
) -> Vec<RegistryEntry> {
    let mut read: BTreeSet<(&str, u16, u64)> = BTreeSet::new();
    for reg in crate::registry::registered() {
        for (version, fp) in (reg.event.versions)() {
            read.insert((reg.event.name, version, fp));
        }
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for e in linked() {
        let shape = (e.shape)();
        let fp = fingerprint(shape);
        let own_event = e.module_path.starts_with("opsc_events_runtime");
        let published = if own_event {
            metrics
        } else {
            declared.contains(&(e.name, e.version, fp)) || !read.contains(&(e.name, e.version, fp))
        };
        if !published || !seen.insert((e.name, e.version, fp)) {
            continue;
        }
        out.push(RegistryEntry {
            service: service.to_owned(),
            role: Role::Producer,
            stream: e.stream.to_owned(),
            name: e.name.to_owned(),
            version: e.version,
            fingerprint: fp,
            shape: shape_json(shape),
            reads: Vec::new(),
            handler: None,
            last_seen_ms: now_ms,
        });
    }
    for (reg, group) in handlers {
        let ev = &reg.event;
        let schema = (ev.schema)();
        let c = &reg.config;
        out.push(RegistryEntry {
            service: service.to_owned(),
            role: Role::Consumer,
            stream: ev.stream.to_owned(),
            name: ev.name.to_owned(),
            version: ev.version,
            fingerprint: ev.fingerprint,
            shape: shape_json(schema.shape),
            reads: (ev.versions)()
                .into_iter()
                .map(|(version, fingerprint)| Readable {
                    version,
                    fingerprint,
                })
                .collect(),
            handler: Some(HandlerPolicy {
                handler: reg.path(),
                group: group.clone(),
                retries: c.retries,
                dead_letter: c.dead_letter,
                concurrency: c.concurrency,
                timeout_ms: u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX),
            }),
            last_seen_ms: now_ms,
        });
    }
    out
}

/// Fingerprints as 16 lowercase hex digits, the form used on the wire and by `opsc`.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(fp: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{fp:016x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 16 {
            return Err(serde::de::Error::custom(format!(
                "fingerprint `{s}` is not 16 hex digits"
            )));
        }
        u64::from_str_radix(&s, 16).map_err(|_| {
            serde::de::Error::custom(format!("fingerprint `{s}` is not 16 hex digits"))
        })
    }
}
