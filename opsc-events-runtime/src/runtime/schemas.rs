//! The runtime's side of the schema registry: recording its entries at `build()`, warning about
//! mismatches, and reading the registry back.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Runtime;
use crate::contracts::{self, Mismatch, RegistryEntry, Unreadable};
use crate::error::Result;
use crate::keys::Keys;
use crate::transport::{Broker, Transport, with_broker};

/// Milliseconds since the epoch (0 if the clock is before it).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Records `entries` in the registry and returns the mismatches of the registry as it is now,
/// logging each one and setting the `opsc_events_schema_mismatches` gauge. A registry that
/// cannot be written (an ACL without the key, a lost connection) is logged, not fatal: the
/// registry informs operators, it does not gate delivery.
pub(super) async fn record(
    transport: &Transport,
    keys: &Keys,
    service: &str,
    entries: &[RegistryEntry],
) -> Vec<Mismatch> {
    let key = keys.schemas();
    let mut fields = Vec::with_capacity(entries.len());
    for e in entries {
        match serde_json::to_string(e) {
            Ok(json) => fields.push((e.field(), json)),
            Err(err) => {
                tracing::warn!(field = %e.field(), error = %err, "schema registry entry not encoded")
            }
        }
    }
    let all = with_broker!(transport, b => b.schema_registry(&key, &fields).await);
    let all = match all {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(key = %key, error = %e, "the schema registry could not be written");
            return Vec::new();
        }
    };
    let (registry, _) = contracts::parse_registry(all);
    let found = contracts::mismatches(&registry);
    // Only the mismatches this service takes part in: another pair's problem is theirs to report.
    let ours: Vec<Mismatch> = found.into_iter().filter(|m| involves(m, service)).collect();
    metrics::gauge!("opsc_events_schema_mismatches", "service" => service.to_owned())
        .set(ours.len() as f64);
    for m in &ours {
        tracing::warn!(event = m.event(), "schema mismatch: {m}");
    }
    ours
}

fn involves(m: &Mismatch, service: &str) -> bool {
    let of = |who: &str| who == service || who.starts_with(&format!("{service}/"));
    match m {
        Mismatch::ConsumerUnmatched { consumer, .. } => of(consumer),
        Mismatch::ProducerUnread {
            producer,
            consumers,
            ..
        } => of(producer) || consumers.iter().any(|c| of(c)),
    }
}

impl Runtime {
    /// The entries this runtime recorded in the schema registry at `build()`: a producer entry
    /// per event type it publishes, a consumer entry per handler (see `docs/CONTRACTS.md`).
    pub fn schemas(&self) -> &[RegistryEntry] {
        &self.schemas
    }

    /// The schema mismatches this runtime's service took part in when it was built (also logged
    /// as warnings and counted by the `opsc_events_schema_mismatches` gauge).
    pub fn schema_mismatches(&self) -> &[Mismatch] {
        &self.schema_mismatches
    }

    /// The AsyncAPI 3.0 document of this runtime's events and handlers (see
    /// [`contracts::asyncapi`]); `opsc asyncapi` writes the one of the whole registry.
    pub fn asyncapi(&self) -> serde_json::Value {
        contracts::asyncapi(&self.schemas, &self.service, "1.0.0", self.keys.prefix())
    }

    /// Every entry of the schema registry (`<prefix>:{schemas}:registry`), sorted, and the
    /// fields that are not valid entries.
    pub async fn schema_registry(&self) -> Result<(Vec<RegistryEntry>, Vec<Unreadable>)> {
        let key = self.keys.schemas();
        let all = with_broker!(&self.transport, b => b.schema_registry(&key, &[]).await)?;
        Ok(contracts::parse_registry(all))
    }
}
