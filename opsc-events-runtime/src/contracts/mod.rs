//! Schema contracts between services: the event types a binary links and handles, the schema
//! registry in Redis that records them (`<prefix>:{schemas}:registry`), and the mismatches
//! between producers and consumers found in it.
//!
//! The registry layout is specified in `docs/CONTRACTS.md`, for readers in other languages.

mod analysis;
mod asyncapi;
mod entry;
mod lock;
mod shape_json;

pub use analysis::{Mismatch, mismatches};
pub use asyncapi::{REGISTRY_TITLE, asyncapi, json_schema, registry_asyncapi};
pub use entry::{EventRegistration, HandlerPolicy, Readable, RegistryEntry, Role, linked};
pub use lock::{LOCK_FORMAT, Lock, LockProblem, LockedEvent, check_lock};
pub use shape_json::shape_json;

pub(crate) use entry::entries;

/// A registry field whose value could not be read as a [`RegistryEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The hash field.
    pub field: String,
    /// Why it could not be read.
    pub reason: String,
}

/// Parses the fields of the registry hash, sorted by event name, role, service and version;
/// the fields that are not valid entries are returned apart, never a panic.
pub fn parse_registry(fields: Vec<(String, String)>) -> (Vec<RegistryEntry>, Vec<Unreadable>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (field, value) in fields {
        match serde_json::from_str::<RegistryEntry>(&value) {
            Ok(e) => entries.push(e),
            Err(e) => bad.push(Unreadable {
                field,
                reason: e.to_string(),
            }),
        }
    }
    entries.sort_by(|a, b| {
        (&a.name, a.role, &a.service, a.version, a.field()).cmp(&(
            &b.name,
            b.role,
            &b.service,
            b.version,
            b.field(),
        ))
    });
    bad.sort_by(|a, b| a.field.cmp(&b.field));
    (entries, bad)
}
