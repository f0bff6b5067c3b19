//! The optional `EventSchema` impls (`chrono`, `time`, and the default `uuid`, `json`): events
//! with such fields derive, round-trip through the envelope, and each type has its own shape.

use opsc_events::prelude::*;
use opsc_events::schema::{Shape, fingerprint};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "audit")]
struct Audited {
    id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    local: chrono::DateTime<chrono::FixedOffset>,
    day: chrono::NaiveDate,
    naive: chrono::NaiveDateTime,
    clock: chrono::NaiveTime,
    t_at: time::OffsetDateTime,
    t_day: time::Date,
    t_clock: time::Time,
    t_naive: time::PrimitiveDateTime,
    extra: serde_json::Value,
}

fn roundtrip<E: Event + PartialEq + std::fmt::Debug>(event: &E) -> E {
    let entry = envelope::encode(event, &Metadata::new("test")).unwrap();
    let env = Envelope::from_fields(entry.fields().map(|(k, v)| (k.as_bytes(), v))).unwrap();
    envelope::decode_event::<E>(&env).unwrap()
}

#[test]
fn date_time_uuid_and_json_fields_round_trip() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:20:30.123+01:00").unwrap();
    let t_at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let event = Audited {
        id: uuid::Uuid::now_v7(),
        at: at.with_timezone(&chrono::Utc),
        local: at,
        day: at.date_naive(),
        naive: at.naive_utc(),
        clock: at.time(),
        t_at,
        t_day: t_at.date(),
        t_clock: t_at.time(),
        t_naive: time::PrimitiveDateTime::new(t_at.date(), t_at.time()),
        extra: serde_json::json!({"tags": ["a", "b"], "n": 3}),
    };
    assert_eq!(roundtrip(&event), event);
}

#[test]
fn each_date_time_type_has_its_own_shape() {
    let shapes = [
        <chrono::DateTime<chrono::Utc> as EventSchema>::SHAPE,
        <chrono::DateTime<chrono::FixedOffset> as EventSchema>::SHAPE,
        <chrono::NaiveDate as EventSchema>::SHAPE,
        <chrono::NaiveDateTime as EventSchema>::SHAPE,
        <chrono::NaiveTime as EventSchema>::SHAPE,
        <time::OffsetDateTime as EventSchema>::SHAPE,
        <time::Date as EventSchema>::SHAPE,
        <time::Time as EventSchema>::SHAPE,
        <time::PrimitiveDateTime as EventSchema>::SHAPE,
        <uuid::Uuid as EventSchema>::SHAPE,
        <serde_json::Value as EventSchema>::SHAPE,
    ];
    let mut prints: Vec<u64> = shapes.iter().map(|s| fingerprint(s)).collect();
    prints.sort_unstable();
    prints.dedup();
    assert_eq!(
        prints.len(),
        shapes.len(),
        "no two of these types share a fingerprint"
    );
    assert!(shapes.iter().all(|s| matches!(s, Shape::Opaque(_))));
}
