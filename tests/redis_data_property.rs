//! Whatever a stream holds, the consumer settles it with a trace, and the tools show it.
//!
//! Property, on a real redis-server: entries written raw with `XADD` — random field names and
//! values, duplicated fields, empty and multi-megabyte values, valid v1 and v2 envelopes with
//! random payload bytes, the handler's own `type@version` field with random bytes — each end
//! handled, skipped (another type) or dead-lettered with a reason, exactly once: no panic, no
//! stall of the group (pending and lag reach 0 within a bounded wait), no entry acknowledged
//! without a trace (handled + skipped + dead letters == entries). And what `opsc tail` and
//! `opsc dlq list|show` print for the same entries and letters (`opsc_events_runtime::cli`'s
//! formatting functions) is valid JSON or one line of text, for anything.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsc_events::observe::{Observation, Outcome};
use opsc_events::prelude::*;
use opsc_events::{Runtime, WireFormat, envelope};
use opsc_events_runtime::cli::{entry_json, letter_json, letter_line};
use opsc_events_testkit::RedisServer;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const STREAM: &str = "raw_data";

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "raw_data", name = "probe", version = 1)]
struct Probe {
    n: u64,
    s: String,
}

/// Another type on the same stream: the probe handler's group skips it.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "raw_data", name = "other_thing", version = 1)]
struct OtherThing {
    x: u32,
}

/// Always succeeds: whatever is not handled was skipped or dead-lettered by the runtime.
#[handler(stream = "raw_data", retries = 0)]
async fn probe_handler(_event: Probe) {}

type Fields = Vec<(String, Vec<u8>)>;

/// What must become of an entry, when its construction decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Handled,
    Skipped,
    DeadLettered(Option<&'static str>),
    /// Random bytes that could, however unlikely, decode.
    Anything,
}

/// The final outcome of one delivery, as the observer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Handled,
    Skipped,
    DeadLettered(&'static str),
    Dropped,
}

// ---------------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------------

/// Field names a reader treats specially, and the names of a dead letter's own fields.
const KNOWN_NAMES: &[&str] = &[
    "event_type",
    "version",
    "schema",
    "event_id",
    "service",
    "timestamp",
    "correlation_id",
    "causation_id",
    "headers",
    "data",
    "probe@1",
    "probe@2",
    "probe@01",
    "probe@",
    "@1",
    "@",
    "other_thing@1",
    "original_id",
    "original_fields",
    "stream",
    "group",
    "handler",
    "reason",
    "error",
    "attempts",
    "replays",
    "failed_at",
    "first_failed_at",
    "\u{1b}[31mred@1",
    "line\nbreak@1",
    "tab\there",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KNOWN_NAMES).prop_map(str::to_owned),
        3 => "\\PC{0,24}",
        1 => any::<String>(),
        1 => "[a-z_]{1,8}@[0-9]{1,6}",
        1 => Just("x".repeat(300)),
    ]
}

fn small_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..48),
        2 => Just(Vec::new()),
        2 => "\\PC{0,40}".prop_map(String::into_bytes),
        1 => proptest::sample::select(&["1", "0", "65536", "probe", "other_thing", "\u{1b}[2J\n"][..])
            .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// `len` bytes (up to a few MB) without generating each one: a cheap pattern from `seed`.
fn huge(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8).wrapping_mul(31))
        .collect()
}

fn meta() -> impl Strategy<Value = Metadata> {
    (
        any::<u128>(),
        prop_oneof!["[A-Za-z0-9_.-]{0,20}", "\\PC{0,12}"],
        any::<u64>(),
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        btree_map("\\PC{0,10}", "\\PC{0,20}", 0..3),
    )
        .prop_map(|(id, service, ts, corr, cause, headers)| Metadata {
            event_id: Uuid::from_u128(id),
            service,
            timestamp_ms: ts,
            correlation_id: Uuid::from_u128(corr),
            causation_id: cause.map(Uuid::from_u128),
            headers,
        })
}

fn probe() -> impl Strategy<Value = Probe> {
    (any::<u64>(), "\\PC{0,30}").prop_map(|(n, s)| Probe { n, s })
}

fn fields_of(e: &envelope::EncodedEvent) -> Fields {
    e.fields()
        .map(|(k, v)| (k.to_owned(), v.to_vec()))
        .collect()
}

fn encode(event: &impl Event, meta: &Metadata, v1: bool) -> Fields {
    let format = if v1 { WireFormat::V1 } else { WireFormat::V2 };
    fields_of(&envelope::encode_as(event, meta, format).expect("encodes"))
}

/// `fields` of a valid envelope with the payload replaced by `junk`.
fn with_payload(mut fields: Fields, junk: Vec<u8>) -> Fields {
    for (name, value) in &mut fields {
        if name == "data" {
            *value = junk;
            return fields;
        }
        if name.contains('@') {
            let header = u32::from_be_bytes([value[1], value[2], value[3], value[4]]) as usize;
            value.truncate(5 + header);
            value.extend_from_slice(&junk);
            return fields;
        }
    }
    fields
}

/// One entry and what must become of it.
fn entry() -> impl Strategy<Value = (Fields, Expect)> {
    let raw = vec((field_name(), small_value()), 1..6).prop_map(|f| (f, Expect::Anything));
    let valid = (probe(), meta(), any::<bool>())
        .prop_map(|(p, m, v1)| (encode(&p, &m, v1), Expect::Handled));
    let junk_payload = (probe(), meta(), any::<bool>(), small_value())
        .prop_map(|(p, m, v1, junk)| (with_payload(encode(&p, &m, v1), junk), Expect::Anything));
    // The handler's own field with bytes that are not a v2 value (format byte other than 2).
    let own_field = small_value().prop_map(|mut v| {
        if v.first() == Some(&2) {
            v[0] = 3;
        }
        (
            vec![("probe@1".to_owned(), v)],
            Expect::DeadLettered(Some("decode_error")),
        )
    });
    let other = (any::<u32>(), meta(), any::<bool>())
        .prop_map(|(x, m, v1)| (encode(&OtherThing { x }, &m, v1), Expect::Skipped));
    let other_junk =
        small_value().prop_map(|v| (vec![("other_thing@1".to_owned(), v)], Expect::Skipped));
    // A known field twice (v1), or two event fields (v2).
    let duplicated = (probe(), meta(), any::<bool>(), any::<prop::sample::Index>()).prop_map(
        |(p, m, v1, at)| {
            let mut f = encode(&p, &m, v1);
            let copy = f[at.index(f.len())].clone();
            f.push(copy);
            (f, Expect::DeadLettered(Some("decode_error")))
        },
    );
    // A valid v2 event with fields of no meaning around it: they are ignored.
    let extra =
        (probe(), meta(), vec(("[a-z_]{1,12}", small_value()), 1..4)).prop_map(|(p, m, extra)| {
            let mut f = encode(&p, &m, false);
            f.extend(extra);
            (f, Expect::Handled)
        });
    // The probe's payload under a version the handler does not know.
    let unknown_version = (probe(), meta()).prop_map(|(p, m)| {
        let mut f = encode(&p, &m, false);
        f[0].0 = "probe@2".to_owned();
        (f, Expect::DeadLettered(Some("schema_mismatch")))
    });
    // A few megabytes: in a valid event, in the handler's own field, in any field.
    let big = (any::<u8>(), 1usize..=3_000_000, meta(), 0..3u8).prop_map(|(seed, len, m, how)| {
        let bytes = huge(seed, len);
        match how {
            0 => {
                let s: String = bytes.iter().map(|b| char::from(b'a' + b % 26)).collect();
                (encode(&Probe { n: 1, s }, &m, false), Expect::Handled)
            }
            1 => {
                let mut v = bytes;
                v[0] = 0xff;
                (
                    vec![("probe@1".to_owned(), v)],
                    Expect::DeadLettered(Some("decode_error")),
                )
            }
            _ => (vec![("data".to_owned(), bytes)], Expect::Anything),
        }
    });
    // Text that a terminal would act on, where tools print it: the type and the error.
    let control = (
        probe(),
        meta(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z]{1,12}",
    )
        .prop_map(|(p, m, ty)| {
            let mut f = encode(&p, &m, true);
            f[0].1 = ty.into_bytes();
            f.push(("version".to_owned(), b"\x1b[2J".to_vec()));
            (f, Expect::Anything)
        });
    prop_oneof![
        2 => control,
        6 => raw,
        6 => valid,
        5 => junk_payload,
        3 => own_field,
        2 => other,
        1 => other_junk,
        2 => duplicated,
        1 => extra,
        1 => unknown_version,
        1 => big,
    ]
}

// ---------------------------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------------------------

fn record(seen: &Mutex<Vec<(MessageId, Seen)>>, o: &Observation) {
    let outcome = match &o.outcome {
        Outcome::Handled => Seen::Handled,
        Outcome::Skipped => Seen::Skipped,
        Outcome::GaveUp {
            reason,
            dead_lettered: true,
            ..
        } => Seen::DeadLettered(reason),
        Outcome::GaveUp { .. } => Seen::Dropped,
        // Not final: another attempt follows (none should, the handler never fails).
        _ => return,
    };
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((o.message_id, outcome));
}

/// Readable for scripts: one line of valid JSON, an object with the entry's or letter's id
/// (floats are not compared: the reader's float parsing is not exact).
fn check_json(what: &str, j: &serde_json::Value) -> Result<(), TestCaseError> {
    let text = j.to_string();
    prop_assert!(!text.contains('\n'), "{} spans lines: {}", what, text);
    let back: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{what}: not JSON ({e}): {text}")))?;
    prop_assert_eq!(back.get("id"), j.get("id"), "{} does not read back", what);
    prop_assert!(j.get("id").is_some_and(serde_json::Value::is_string));
    Ok(())
}

/// Readable for people: one line without control characters a terminal would act on.
fn check_line(what: &str, line: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !line.chars().any(char::is_control),
        "{} holds a control character: {:?}",
        what,
        line
    );
    Ok(())
}

async fn run_case(
    url: &str,
    case: u64,
    entries: Vec<(Fields, Expect)>,
) -> Result<(), TestCaseError> {
    let prefix = format!("case{case}");
    let seen: Arc<Mutex<Vec<(MessageId, Seen)>>> = Arc::default();
    let observed = seen.clone();
    let consumer = Runtime::builder()
        .service("prop")
        .prefix(&prefix)
        .redis(url)
        .only(|h| h.name() == "probe_handler")
        .trim_interval(Duration::from_secs(3600))
        .response_timeout(Duration::from_secs(30))
        .observer(move |o| record(&observed, o))
        .build()
        .await
        .expect("build the consumer");
    let group = consumer.handlers()[0].1.clone();
    let tools = Runtime::builder()
        .service("tools")
        .prefix(&prefix)
        .redis(url)
        .response_timeout(Duration::from_secs(30))
        .no_handlers()
        .build()
        .await
        .expect("build the tools' runtime");

    let publisher = tools.publisher();
    let mut expected: HashMap<MessageId, Expect> = HashMap::new();
    for (fields, expect) in &entries {
        let borrowed: Vec<(&str, &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let id = publisher.append_raw(STREAM, &borrowed).await.expect("XADD");
        expected.insert(id, *expect);
    }

    // `opsc tail`: every entry prints, whatever it holds.
    let mut after = None;
    let mut printed = 0;
    loop {
        let page = tools.read(STREAM, after, 100).await.expect("read");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for e in &page {
            check_json("tail --json", &entry_json(e))?;
            printed += 1;
        }
    }
    prop_assert_eq!(printed, entries.len());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run_until(async move {
        let _ = stopped.await;
    }));
    let idle = || async {
        let info = tools.stream_info(STREAM).await.expect("stream info");
        info.groups
            .iter()
            .find(|g| g.name == group)
            .is_some_and(|g| g.pending == 0 && g.scheduled == 0 && g.lag == Some(0))
    };
    common::wait_until(
        "the group to settle every entry",
        Duration::from_secs(60),
        idle,
    )
    .await;
    let _ = stop.send(());
    running
        .await
        .expect("the runtime task does not panic")
        .expect("the runtime stops cleanly");

    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut outcome: BTreeMap<MessageId, Seen> = BTreeMap::new();
    for (id, s) in seen {
        prop_assert!(
            outcome.insert(id, s.clone()).is_none(),
            "entry {} settled twice (then {:?})",
            id,
            s
        );
    }
    // Every entry has exactly one trace, and only entries that were written.
    prop_assert_eq!(outcome.len(), entries.len());
    for (id, expect) in &expected {
        let Some(got) = outcome.get(id) else {
            return Err(TestCaseError::fail(format!(
                "entry {id} settled without a trace"
            )));
        };
        prop_assert!(*got != Seen::Dropped, "entry {} dropped", id);
        let fits = match expect {
            Expect::Handled => *got == Seen::Handled,
            Expect::Skipped => *got == Seen::Skipped,
            Expect::DeadLettered(None) => matches!(got, Seen::DeadLettered(_)),
            Expect::DeadLettered(Some(r)) => *got == Seen::DeadLettered(r),
            Expect::Anything => true,
        };
        prop_assert!(fits, "entry {}: expected {:?}, got {:?}", id, expect, got);
    }

    // Every dead-lettered entry has its letter, with a reason, and there are no others.
    let letters = tools
        .dead_letters()
        .list(&DeadLetterFilter::stream(STREAM).limit(10_000))
        .await
        .expect("list dead letters");
    let dead: BTreeMap<MessageId, &'static str> = outcome
        .iter()
        .filter_map(|(id, s)| match s {
            Seen::DeadLettered(r) => Some((*id, *r)),
            _ => None,
        })
        .collect();
    prop_assert_eq!(letters.len(), dead.len());
    let handled = outcome.values().filter(|s| **s == Seen::Handled).count();
    let skipped = outcome.values().filter(|s| **s == Seen::Skipped).count();
    prop_assert_eq!(handled + skipped + letters.len(), entries.len());
    for l in &letters {
        prop_assert_eq!(dead.get(&l.original_id).copied(), Some(l.reason.as_str()));
        prop_assert_eq!(&l.group, &group);
        prop_assert!(!l.error.is_empty(), "letter {} has no error text", l.id);
        prop_assert_eq!(l.stream.as_str(), STREAM);

        // `opsc dlq list` and `opsc dlq show`.
        check_json("dlq list --json", &letter_json(l, false))?;
        check_line("dlq list", &letter_line(l))?;
        let shown = tools
            .dead_letters()
            .get(STREAM, l.id)
            .await
            .expect("get a letter")
            .expect("the letter is there");
        let full = letter_json(&shown, true);
        check_json("dlq show --json", &full)?;
        prop_assert!(
            serde_json::to_string_pretty(&full).is_ok(),
            "dlq show cannot print"
        );
    }
    Ok(())
}

#[test]
fn every_entry_ends_handled_skipped_or_dead_lettered_and_prints() {
    common::init_tracing();
    let server = RedisServer::start();
    let url = server.url();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let mut runner = TestRunner::new(Config {
        cases: 24,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&vec(entry(), 1..=50), |entries| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio.block_on(run_case(&url, n, entries))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
