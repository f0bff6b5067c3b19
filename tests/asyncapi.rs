//! The AsyncAPI documents — `Runtime::asyncapi()` of a runtime that publishes and handles, and
//! the one of a whole registry that `opsc asyncapi` writes — are valid AsyncAPI 3.0.0: checked
//! against the official JSON Schema, vendored in tests/fixtures (docs/CONTRACTS.md § AsyncAPI).
//! The checker is shown to reject broken copies, and each message's payload schema to accept
//! the events it describes as they look once decoded.

#[path = "common/asyncapi.rs"]
mod asyncapi_check;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use asyncapi_check::{assert_valid, problems};
use opsc_events::contracts;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    High,
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    Scanner { name: String },
    Manual,
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "t", content = "c")]
pub enum Note {
    Text(String),
    Score(u8, f64),
    Empty,
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Action {
    Ignore,
    Retry(u32),
    Escalate { to: String },
}

#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Port(pub u16);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "aa_findings", name = "aa_finding_reported", version = 1)]
pub struct FindingReportedV1 {
    pub finding_id: u64,
}

/// Every shape the payload schema is derived from, in one event.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "aa_findings", name = "aa_finding_reported", version = 2, upcast_from = FindingReportedV1)]
pub struct FindingReported {
    pub finding_id: u64,
    pub delta: i32,
    pub score: f32,
    pub grade: char,
    pub ok: bool,
    pub nothing: (),
    pub address: IpAddr,
    pub port: Port,
    pub severity: Severity,
    pub origin: Origin,
    pub note: Note,
    pub action: Action,
    pub tags: Vec<String>,
    pub pair: (u8, String),
    pub digest: [u8; 4],
    pub labels: BTreeMap<String, i64>,
    pub owner: Option<IpAddr>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl From<FindingReportedV1> for FindingReported {
    fn from(v1: FindingReportedV1) -> Self {
        FindingReported {
            finding_id: v1.finding_id,
            ..sample()
        }
    }
}

/// Published only.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "aa_findings", name = "aa_finding_closed", version = 1)]
pub struct FindingClosed {
    pub finding_id: u64,
}

/// On a stream of its own, handled with non-default settings.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "aa-alerts", name = "aa_alert", version = 1)]
pub struct Alert {
    pub text: String,
}

#[handler(stream = "aa_findings", group = "triage.index", retries = 5)]
pub async fn index(_e: FindingReported) {}

#[handler(
    stream = "aa-alerts",
    retries = 2,
    dead_letter = false,
    concurrency = 4,
    timeout = "10s"
)]
pub async fn page(_e: Alert) {}

fn sample() -> FindingReported {
    FindingReported {
        finding_id: 7,
        delta: -3,
        score: 0.5,
        grade: 'A',
        ok: true,
        nothing: (),
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: Port(443),
        severity: Severity::High,
        origin: Origin::Scanner {
            name: "nmap".into(),
        },
        note: Note::Score(3, 0.25),
        action: Action::Escalate { to: "ops".into() },
        tags: vec!["tls".into()],
        pair: (1, "x".into()),
        digest: [1, 2, 3, 4],
        labels: BTreeMap::from([("cvss".to_owned(), 9)]),
        owner: None,
        comment: Some("seen twice".into()),
    }
}

async fn runtime(broker: &MemoryBroker, service: &str, handlers: bool) -> Runtime {
    let b = Runtime::builder()
        .service(service)
        .prefix("aa")
        .memory_with(broker.clone());
    let b = if handlers {
        b.only(|h| h.group() == "triage.index" || h.stream() == "aa-alerts")
    } else {
        b.no_handlers().publishes::<FindingReported>()
    };
    b.build().await.expect("runtime")
}

#[tokio::test]
async fn the_document_of_a_runtime_is_valid_asyncapi_3() {
    let broker = MemoryBroker::new();
    let rt = runtime(&broker, "triage", true).await;
    let doc = rt.asyncapi();
    assert_valid("Runtime::asyncapi()", &doc);

    // The handlers' settings are in it.
    let ops = &doc["operations"];
    let index = &ops["receive.triage.index.aa_finding_reported.v2"];
    assert_eq!(index["action"], "receive");
    assert_eq!(index["x-opsc-retries"], 5);
    assert_eq!(index["x-opsc-dead-letter"], true);
    let page = ops
        .as_object()
        .expect("operations")
        .values()
        .find(|op| {
            op["x-opsc-group"]
                .as_str()
                .is_some_and(|g| g.ends_with("page"))
        })
        .unwrap_or_else(|| panic!("no receive operation of `page` in {ops:#}"));
    assert_eq!(page["x-opsc-retries"], 2);
    assert_eq!(page["x-opsc-dead-letter"], false);
    assert_eq!(page["x-opsc-concurrency"], 4);
    assert_eq!(page["x-opsc-timeout-ms"], 10_000);
    // A published-only event is sent.
    assert_eq!(ops["publish.aa_finding_closed.v1"]["action"], "send");
}

#[tokio::test]
async fn the_document_of_a_registry_is_valid_asyncapi_3() {
    let broker = MemoryBroker::new();
    let _producer = runtime(&broker, "scanner", false).await;
    let consumer = runtime(&broker, "triage", true).await;
    let (entries, bad) = consumer.schema_registry().await.expect("registry");
    assert!(bad.is_empty(), "{bad:?}");
    assert!(entries.iter().any(|e| e.service == "scanner"));
    let doc = contracts::registry_asyncapi(&entries, "aa");
    assert_valid("the registry's document", &doc);
    let services = &doc["operations"]["publish.aa_finding_reported.v2"]["x-opsc-services"];
    assert!(
        services
            .as_array()
            .is_some_and(|s| s.contains(&json!("scanner"))),
        "{services}"
    );
}

/// The payload schema accepts the event as it looks decoded (its serde form), and rejects a
/// payload with a field of the wrong type.
#[tokio::test]
async fn payload_schemas_accept_the_events_they_describe() {
    let broker = MemoryBroker::new();
    let rt = runtime(&broker, "triage", true).await;
    let doc = rt.asyncapi();
    let payload = &doc["components"]["messages"]["aa_finding_reported.v2"]["payload"];
    let v = jsonschema::draft7::new(payload).expect("a JSON Schema");
    let mut variants = vec![sample()];
    let mut other = sample();
    other.origin = Origin::Manual;
    other.note = Note::Empty;
    other.action = Action::Retry(2);
    other.severity = Severity::Low;
    other.owner = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    other.comment = None;
    variants.push(other);
    let mut text = sample();
    text.note = Note::Text("hi".into());
    text.action = Action::Ignore;
    variants.push(text);
    for event in &variants {
        let instance = serde_json::to_value(event).expect("JSON");
        let errors: Vec<String> = v.iter_errors(&instance).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{event:?}: {errors:#?}\n{payload:#}");
    }
    let mut wrong = serde_json::to_value(sample()).expect("JSON");
    wrong["finding_id"] = json!("seven");
    assert!(!v.is_valid(&wrong));
    let mut wrong = serde_json::to_value(sample()).expect("JSON");
    wrong["severity"] = json!("medium");
    assert!(!v.is_valid(&wrong));
    let mut wrong = serde_json::to_value(sample()).expect("JSON");
    wrong.as_object_mut().expect("object").remove("delta");
    assert!(!v.is_valid(&wrong));
}

/// The checker is not vacuous: broken copies of a valid document are rejected, each for its
/// own reason.
#[tokio::test]
async fn broken_documents_are_rejected() {
    let broker = MemoryBroker::new();
    let rt = runtime(&broker, "triage", true).await;
    let good = rt.asyncapi();
    assert_valid("the original", &good);
    let op = "receive.triage.index.aa_finding_reported.v2";
    type Breaker = fn(&mut Value);
    let cases: [(&str, Breaker, &str); 7] = [
        (
            "no asyncapi field",
            |d| {
                d.as_object_mut().expect("object").remove("asyncapi");
            },
            "\"asyncapi\" is a required property",
        ),
        (
            "another version",
            |d| d["asyncapi"] = json!("2.6.0"),
            "schema: at `/asyncapi`",
        ),
        (
            "an unknown top-level field",
            |d| d["publish"] = json!({}),
            "schema: at ``",
        ),
        (
            "a channel given by name instead of a reference",
            |d| {
                d["operations"]["receive.triage.index.aa_finding_reported.v2"]["channel"] =
                    json!("aa_findings")
            },
            "schema: at `/operations/receive.triage.index.aa_finding_reported.v2",
        ),
        (
            "a reference to a channel that does not exist",
            |d| {
                d["operations"]["receive.triage.index.aa_finding_reported.v2"]["channel"] =
                    json!({"$ref": "#/channels/nowhere"})
            },
            "`#/channels/nowhere` points at nothing",
        ),
        (
            "an operation action that is not send or receive",
            |d| {
                d["operations"]["receive.triage.index.aa_finding_reported.v2"]["action"] =
                    json!("subscribe")
            },
            "schema: at `/operations/receive.triage.index.aa_finding_reported.v2",
        ),
        (
            "a message of another channel",
            |d| {
                d["operations"]["receive.triage.index.aa_finding_reported.v2"]["messages"] =
                    json!([{"$ref": "#/channels/aa-alerts/messages/aa_alert.v1"}])
            },
            "is not a message of its channel",
        ),
    ];
    for (case, breaker, expected) in cases {
        let mut doc = good.clone();
        breaker(&mut doc);
        let found = problems(&doc);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{case}: expected a problem containing {expected:?} in {found:#?}"
        );
    }
    // The operation the cases break exists as named.
    assert!(good["operations"][op].is_object());
    // An undefined address parameter, and a payload that is not a JSON Schema.
    let mut doc = good.clone();
    doc["channels"]["aa_findings"]["address"] = json!("aa:{nowhere}:events");
    assert!(
        problems(&doc)
            .iter()
            .any(|p| p.contains("`nowhere` is not defined")),
        "{:#?}",
        problems(&doc)
    );
    let mut doc = good.clone();
    doc["components"]["messages"]["aa_alert.v1"]["payload"] = json!({"type": "text"});
    assert!(!problems(&doc).is_empty());
}
