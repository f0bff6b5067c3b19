//! `opsc schema registry`, `opsc schema lock` and `opsc schema check`.

use std::path::Path;

use serde_json::json;

use super::CliError;
use super::commands::Out;
use crate::contracts::{Lock, RegistryEntry, Role, check_lock, mismatches};
use crate::runtime::Runtime;

type Result<T> = std::result::Result<T, CliError>;

fn describe(e: &RegistryEntry) -> String {
    let who = match &e.handler {
        Some(h) => format!("{} (group {})", e.service, h.group),
        None => e.service.clone(),
    };
    let reads: Vec<String> = e
        .reads
        .iter()
        .filter(|r| r.version != e.version)
        .map(|r| format!("v{} {:016x}", r.version, r.fingerprint))
        .collect();
    let upcasts = if reads.is_empty() {
        String::new()
    } else {
        format!(", upcasts from {}", reads.join(", "))
    };
    format!(
        "{who}: v{} {:016x}{upcasts}, last seen {}",
        e.version, e.fingerprint, e.last_seen_ms
    )
}

/// Prints the registry per event type, with its mismatches.
pub(super) async fn registry(rt: &Runtime, out: &Out) -> Result<()> {
    let (entries, bad) = rt.schema_registry().await?;
    let found = mismatches(&entries);
    if out.json {
        let value = json!({
            "entries": entries,
            "mismatches": found.iter().map(|m| json!({"event": m.event(), "problem": m.to_string()})).collect::<Vec<_>>(),
            "unreadable": bad.iter().map(|u| json!({"field": u.field, "reason": u.reason})).collect::<Vec<_>>(),
        });
        return out.say(&value.to_string());
    }
    if entries.is_empty() && bad.is_empty() {
        return out.say("no schemas registered");
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.dedup();
    for name in names {
        let of = |role| {
            entries
                .iter()
                .filter(move |e| e.name == name && e.role == role)
        };
        let stream = entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.stream.as_str())
            .unwrap_or_default();
        out.say(&format!("{name} (stream {stream})"))?;
        for (label, role) in [("producer", Role::Producer), ("consumer", Role::Consumer)] {
            for e in of(role) {
                out.say(&format!("  {label} {}", describe(e)))?;
            }
        }
        for m in found.iter().filter(|m| m.event() == name) {
            out.say(&format!("  MISMATCH {m}"))?;
        }
    }
    for u in &bad {
        out.say(&format!("unreadable field `{}`: {}", u.field, u.reason))?;
    }
    Ok(())
}

/// Prints the lock of `service` from its registry entries.
pub(super) async fn lock(rt: &Runtime, out: &Out, service: &str) -> Result<()> {
    let (entries, _) = rt.schema_registry().await?;
    let ours: Vec<RegistryEntry> = entries
        .into_iter()
        .filter(|e| e.service == service)
        .collect();
    if ours.is_empty() {
        return Err(CliError::LockFile {
            path: format!("(registry of service `{service}`)"),
            reason: "the service has no entry in the schema registry".to_owned(),
        });
    }
    let text = Lock::from_entries(&ours).to_file_string();
    out.say(text.trim_end())
}

fn read_lock(path: &Path) -> Result<Lock> {
    let err = |reason: String| CliError::LockFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    Lock::parse(&text).map_err(err)
}

/// Checks `current` against the committed `lock`: exit 1 naming each broken event.
pub(super) fn check(out: &Out, lock: &Path, current: &Path) -> Result<()> {
    let (locked, now) = (read_lock(lock)?, read_lock(current)?);
    let problems = check_lock(&locked, &now);
    if problems.is_empty() {
        return out.line(json!({"ok": true, "events": now.events.len()}), || {
            format!("ok: {} event versions keep the lock", now.events.len())
        });
    }
    Err(CliError::LockBroken {
        problems: problems.iter().map(ToString::to_string).collect(),
    })
}

/// Prints the AsyncAPI document of the whole registry.
pub(super) async fn asyncapi(rt: &Runtime, out: &Out, prefix: &str) -> Result<()> {
    let (entries, _) = rt.schema_registry().await?;
    let doc = crate::contracts::registry_asyncapi(&entries, prefix);
    out.say(&serde_json::to_string_pretty(&doc).unwrap_or_default())
}
