//! `events.lock`: the event types a service publishes and reads, committed next to its code, and
//! the check CI runs against it (`opsc schema check --lock events.lock --current new.lock`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::entry::{RegistryEntry, Role, linked};
use super::shape_json;
use crate::schema::fingerprint;

/// The version of the lock file format.
pub const LOCK_FORMAT: u32 = 1;

/// The contents of an `events.lock`, sorted by event name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// [`LOCK_FORMAT`].
    pub lock_format: u32,
    /// One entry per `(name, version)`.
    pub events: Vec<LockedEvent>,
}

/// One version of one event type in a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedEvent {
    /// The event type name.
    pub name: String,
    /// The version.
    pub version: u16,
    /// The stream.
    pub stream: String,
    /// The fingerprint, 16 lowercase hex digits.
    pub fingerprint: String,
    /// The shape (see `shape_json`); `null` when unknown (a version only read by upcasting, taken
    /// from the registry).
    pub shape: serde_json::Value,
    /// The service publishes this version.
    pub published: bool,
    /// A handler of the service handles this version directly.
    pub handled: bool,
    /// The versions of handlers that read this one by upcasting.
    #[serde(default)]
    pub upcast_into: Vec<u16>,
}

impl LockedEvent {
    /// Whether some handler reads this version (directly or by upcasting).
    pub fn read(&self) -> bool {
        self.handled || !self.upcast_into.is_empty()
    }
}

#[derive(Default)]
struct Builder {
    events: BTreeMap<(String, u16), LockedEvent>,
}

impl Builder {
    fn entry(&mut self, name: &str, version: u16, stream: &str, fp: u64) -> &mut LockedEvent {
        self.events
            .entry((name.to_owned(), version))
            .or_insert_with(|| LockedEvent {
                name: name.to_owned(),
                version,
                stream: stream.to_owned(),
                fingerprint: format!("{fp:016x}"),
                shape: serde_json::Value::Null,
                published: false,
                handled: false,
                upcast_into: Vec::new(),
            })
    }

    fn finish(self) -> Lock {
        let mut events: Vec<LockedEvent> = self.events.into_values().collect();
        for e in &mut events {
            e.upcast_into.sort_unstable();
            e.upcast_into.dedup();
        }
        Lock {
            lock_format: LOCK_FORMAT,
            events,
        }
    }
}

impl Lock {
    /// The lock of the registry entries of one service (e.g. `Runtime::schemas()`).
    pub fn from_entries(entries: &[RegistryEntry]) -> Lock {
        let mut b = Builder::default();
        for e in entries {
            let l = b.entry(&e.name, e.version, &e.stream, e.fingerprint);
            l.shape = e.shape.clone();
            match e.role {
                Role::Producer => l.published = true,
                Role::Consumer => l.handled = true,
            }
            if e.role == Role::Consumer {
                for r in e.reads.iter().filter(|r| r.version != e.version) {
                    b.entry(&e.name, r.version, &e.stream, r.fingerprint)
                        .upcast_into
                        .push(e.version);
                }
            }
        }
        b.finish()
    }

    /// The lock of everything linked into this binary: every `#[derive(Event)]` type and every
    /// `#[handler]` (every linked event type counts as `published`). Meant for a test of the
    /// service that writes or checks its `events.lock`.
    pub fn linked() -> Lock {
        let mut b = Builder::default();
        let handlers = crate::registry::registered();
        for e in linked() {
            if e.module_path.starts_with("opsc_events_runtime") {
                continue; // the runtime's own events are not the service's contract
            }
            let shape = (e.shape)();
            let fp = fingerprint(shape);
            let l = b.entry(e.name, e.version, e.stream, fp);
            l.shape = shape_json(shape);
            // Any linked event type may be published by the binary.
            l.published = true;
        }
        for h in &handlers {
            let ev = &h.event;
            b.entry(ev.name, ev.version, ev.stream, ev.fingerprint)
                .handled = true;
            for (version, fp) in (ev.versions)() {
                if version != ev.version {
                    b.entry(ev.name, version, ev.stream, fp)
                        .upcast_into
                        .push(ev.version);
                }
            }
        }
        b.finish()
    }

    /// The lock as written to `events.lock`: pretty JSON with a final newline.
    pub fn to_file_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses an `events.lock`.
    pub fn parse(text: &str) -> Result<Lock, String> {
        let lock: Lock = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if lock.lock_format != LOCK_FORMAT {
            return Err(format!(
                "lock format {} is not supported (expected {LOCK_FORMAT})",
                lock.lock_format
            ));
        }
        Ok(lock)
    }
}

/// Why a new build breaks the contract of its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockProblem {
    /// The fingerprint of a version changed: the payload changed without a version bump.
    FingerprintChanged {
        /// The event type name.
        name: String,
        /// The version.
        version: u16,
        /// The locked fingerprint.
        locked: String,
        /// The new one.
        current: String,
    },
    /// A version a handler read is gone from the build (its type was removed).
    VersionRemoved {
        /// The event type name.
        name: String,
        /// The version.
        version: u16,
    },
    /// A version is still known but no handler reads it any more (its upcast was removed, or
    /// the handler changed version): its messages would be dead-lettered.
    NoLongerRead {
        /// The event type name.
        name: String,
        /// The version.
        version: u16,
    },
}

impl fmt::Display for LockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockProblem::FingerprintChanged {
                name,
                version,
                locked,
                current,
            } => write!(
                f,
                "`{name}` v{version}: the fingerprint changed from {locked} to {current} without \
                 a version bump; give the new payload version {} (with `upcast_from`) or restore \
                 the old one",
                u32::from(*version) + 1
            ),
            LockProblem::VersionRemoved { name, version } => write!(
                f,
                "`{name}` v{version}: the version disappeared but a handler still read it; keep \
                 the type (and the upcast) until no such message can be in the stream"
            ),
            LockProblem::NoLongerRead { name, version } => write!(
                f,
                "`{name}` v{version}: the upcast path was removed, no handler reads this version \
                 any more; keep `upcast_from` until no such message can be in the stream"
            ),
        }
    }
}

/// The problems of `current` against the committed `locked`, by event name and version. New
/// events and new versions are no problem (update the lock to record them).
pub fn check_lock(locked: &Lock, current: &Lock) -> Vec<LockProblem> {
    let now: BTreeMap<(&str, u16), &LockedEvent> = current
        .events
        .iter()
        .map(|e| ((e.name.as_str(), e.version), e))
        .collect();
    let mut out = Vec::new();
    for old in &locked.events {
        let key = (old.name.as_str(), old.version);
        match now.get(&key) {
            Some(new) if new.fingerprint != old.fingerprint => {
                out.push(LockProblem::FingerprintChanged {
                    name: old.name.clone(),
                    version: old.version,
                    locked: old.fingerprint.clone(),
                    current: new.fingerprint.clone(),
                });
            }
            Some(new) if old.read() && !new.read() => out.push(LockProblem::NoLongerRead {
                name: old.name.clone(),
                version: old.version,
            }),
            Some(_) => {}
            None if old.read() => out.push(LockProblem::VersionRemoved {
                name: old.name.clone(),
                version: old.version,
            }),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(version: u16, fp: &str, handled: bool, upcast_into: &[u16]) -> LockedEvent {
        LockedEvent {
            name: "asset_created".into(),
            version,
            stream: "assets".into(),
            fingerprint: fp.into(),
            shape: serde_json::Value::Null,
            published: true,
            handled,
            upcast_into: upcast_into.to_vec(),
        }
    }

    fn lock(events: Vec<LockedEvent>) -> Lock {
        Lock {
            lock_format: LOCK_FORMAT,
            events,
        }
    }

    const A: &str = "00000000000000aa";
    const B: &str = "00000000000000bb";

    #[test]
    fn an_unchanged_build_keeps_the_lock_and_new_versions_are_allowed() {
        let old = lock(vec![ev(1, A, true, &[])]);
        let new = lock(vec![ev(1, A, false, &[2]), ev(2, B, true, &[])]);
        assert_eq!(check_lock(&old, &old), []);
        assert_eq!(check_lock(&old, &new), []);
    }

    #[test]
    fn a_fingerprint_changed_without_a_version_bump_fails() {
        let problems = check_lock(
            &lock(vec![ev(1, A, true, &[])]),
            &lock(vec![ev(1, B, true, &[])]),
        );
        assert!(
            matches!(&problems[..], [LockProblem::FingerprintChanged { name, version: 1, .. }] if name == "asset_created"),
            "{problems:?}"
        );
        assert!(problems[0].to_string().contains("`asset_created` v1"));
    }

    #[test]
    fn a_removed_version_a_handler_read_fails() {
        let old = lock(vec![ev(1, A, false, &[2]), ev(2, B, true, &[])]);
        let new = lock(vec![ev(2, B, true, &[])]);
        let problems = check_lock(&old, &new);
        assert!(
            matches!(
                &problems[..],
                [LockProblem::VersionRemoved { version: 1, .. }]
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn a_removed_upcast_path_fails() {
        let old = lock(vec![ev(1, A, false, &[2]), ev(2, B, true, &[])]);
        let new = lock(vec![ev(1, A, false, &[]), ev(2, B, true, &[])]);
        let problems = check_lock(&old, &new);
        assert!(
            matches!(
                &problems[..],
                [LockProblem::NoLongerRead { version: 1, .. }]
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn a_lock_survives_its_file_form() {
        let l = lock(vec![ev(1, A, true, &[])]);
        assert_eq!(Lock::parse(&l.to_file_string()), Ok(l));
        assert!(Lock::parse("{}").is_err());
        assert!(Lock::parse(r#"{"lock_format": 9, "events": []}"#).is_err());
    }
}
