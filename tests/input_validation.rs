//! What users give the runtime is checked before anything happens: `RuntimeBuilder::build`
//! reports every setting that breaks a rule of docs/WIRE.md § Names and limits at once, and
//! `publish_with` refuses options that break one, before any I/O, leaving the stream untouched
//! (on the embedded broker and on a private redis-server).

use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events::{ConfigError, Error, RuntimeBuilder, error::ConfigProblem, keys::NameProblem};
use opsc_events_runtime::error::{PublishOptionProblem, PublishOptionsError};
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const MAX_HEADERS: usize = PublishOptions::MAX_HEADERS;
const MAX_HEADER_VALUE_LEN: usize = PublishOptions::MAX_HEADER_VALUE_LEN;
const MAX_HEADERS_LEN: usize = PublishOptions::MAX_HEADERS_LEN;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "validated", name = "note_taken", version = 1)]
struct NoteTaken {
    n: u64,
}

/// Handlers whose default group (`<service>.<fn name>`) breaks the group rule.
mod bad_groups {
    use super::*;

    /// The fn name below, whose default group `inventory.` + it is 131 bytes, above the 128
    /// of a group.
    pub const LONG: &str = "a_handler_whose_name_is_so_long_that_the_default_group_made_of_the_service_and_this_name_passes_the_limit_of_a_group_name";

    #[handler(stream = "validated")]
    pub async fn a_handler_whose_name_is_so_long_that_the_default_group_made_of_the_service_and_this_name_passes_the_limit_of_a_group_name(
        _event: NoteTaken,
    ) {
    }

    /// A non-ASCII fn name: `é` is not allowed in a group.
    #[handler(stream = "validated")]
    pub async fn résumé(_event: NoteTaken) {}
}

/// A handler with an explicit group, which the macro checked: fine whatever the service.
mod good_group {
    use super::*;

    #[handler(stream = "validated", group = "notes.indexer")]
    pub async fn indexer(_event: NoteTaken) {}
}

fn problems(err: &Error) -> &[ConfigProblem] {
    match err {
        Error::Config(ConfigError { problems }) => problems,
        other => panic!("expected a configuration error, got {other}"),
    }
}

/// Every setting that breaks a rule, in one build: each is listed, in the order of the
/// builder's checks, and the message points to the rules.
#[tokio::test]
async fn build_reports_every_invalid_setting_at_once() {
    let err = Runtime::builder()
        .service("bad service")
        .prefix("p{x}")
        .consumer_name("")
        .memory()
        .no_handlers()
        .shutdown_timeout(Duration::ZERO)
        .consumer_idle_timeout(Duration::ZERO)
        .stall_after(Duration::ZERO)
        .max_replays(0)
        .stream_limits("Bad*", StreamLimits::new().max_len(10))
        .stream_limits("ok", StreamLimits::new().max_len(0).max_age(Duration::ZERO))
        .build()
        .await
        .expect_err("must not build");
    let name = |what, value: &str, problem, max_len, charset| ConfigProblem::InvalidName {
        what,
        value: value.to_owned(),
        problem,
        max_len,
        charset,
    };
    let names = "A-Z a-z 0-9 _ . -";
    assert_eq!(
        problems(&err),
        &[
            name(
                "service name",
                "bad service",
                NameProblem::Char { ch: ' ', at: 3 },
                64,
                names
            ),
            name(
                "key prefix",
                "p{x}",
                NameProblem::Char { ch: '{', at: 1 },
                64,
                names
            ),
            name("consumer name", "", NameProblem::Empty, 64, names),
            name(
                "stream name of `stream_limits`",
                "Bad*",
                NameProblem::Char { ch: 'B', at: 0 },
                64,
                "a-z 0-9 _ -"
            ),
            ConfigProblem::ZeroDuration {
                setting: "stall_after"
            },
            ConfigProblem::ZeroDuration {
                setting: "shutdown_timeout"
            },
            ConfigProblem::ZeroDuration {
                setting: "consumer_idle_timeout"
            },
            ConfigProblem::OutOfRange {
                setting: "max_replays",
                value: 0,
                min: 1,
                max: 1000
            },
            ConfigProblem::ZeroStreamLimit {
                stream: "ok".into(),
                setting: "max_len"
            },
            ConfigProblem::ZeroStreamLimit {
                stream: "ok".into(),
                setting: "max_age"
            },
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "invalid service name `bad service`: ' ' at byte 3 is not allowed; expected 1 to 64 of \
             `A-Z a-z 0-9 _ . -` (see docs/WIRE.md § Names and limits)"
        ),
        "{text}"
    );
    assert!(
        text.contains("`max_replays` is 0; expected 1 to 1000"),
        "{text}"
    );
    assert!(
        text.contains("`shutdown_timeout` must be longer than zero"),
        "{text}"
    );
}

/// Names at their longest and `max_replays` at both ends of its range are accepted; one past
/// either end is not.
#[tokio::test]
async fn limits_are_inclusive() {
    let at_limit = Runtime::builder()
        .service("s".repeat(64))
        .prefix("p".repeat(64))
        .consumer_name("c".repeat(64))
        .stream_limits("x".repeat(64), StreamLimits::new().max_len(1))
        .max_replays(RuntimeBuilder::MAX_REPLAYS)
        .memory()
        .no_handlers()
        .build()
        .await;
    assert!(at_limit.is_ok(), "{:?}", at_limit.err());
    assert!(
        Runtime::builder()
            .service("s")
            .max_replays(1)
            .memory()
            .no_handlers()
            .build()
            .await
            .is_ok()
    );

    let err = Runtime::builder()
        .service("s".repeat(65))
        .max_replays(RuntimeBuilder::MAX_REPLAYS + 1)
        .memory()
        .no_handlers()
        .build()
        .await
        .expect_err("one past the limits");
    assert!(
        matches!(
            problems(&err),
            [
                ConfigProblem::InvalidName {
                    what: "service name",
                    problem: NameProblem::TooLong(65),
                    ..
                },
                ConfigProblem::OutOfRange {
                    setting: "max_replays",
                    value: 1001,
                    ..
                }
            ]
        ),
        "{err}"
    );
}

/// `build()` checks each selected handler's group by the group rule and names the handler:
/// the default group `<service>.<fn name>` of a long or non-ASCII fn name breaks it.
#[tokio::test]
async fn default_groups_that_break_the_group_rule_are_reported_per_handler() {
    let err = Runtime::builder()
        .service("inventory")
        .memory()
        .only(|h| h.module_path().ends_with("::bad_groups") || h.name() == "indexer")
        .build()
        .await
        .expect_err("two groups break the rule");
    let found: Vec<(&str, &NameProblem)> = problems(&err)
        .iter()
        .map(|p| match p {
            ConfigProblem::InvalidGroup {
                handler,
                problem,
                default_group: true,
                ..
            } => (handler.rsplit("::").next().unwrap_or_default(), problem),
            other => panic!("unexpected problem {other}"),
        })
        .collect();
    assert_eq!(found.len(), 2, "{err}");
    let long = bad_groups::LONG;
    assert!("inventory.".len() + long.len() > 128);
    assert!(
        found.contains(&(long, &NameProblem::TooLong("inventory.".len() + long.len()))),
        "{err}"
    );
    assert!(
        found.contains(&(
            "résumé",
            &NameProblem::Char {
                ch: 'é',
                at: "inventory.r".len()
            }
        )),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "handler `input_validation::bad_groups::résumé`: invalid group name `inventory.résumé`"
        ),
        "{text}"
    );
    assert!(
        text.contains("give the handler a `group = \"...\"`"),
        "{text}"
    );

    // The explicit group of the third handler is fine, whatever the service's length.
    let rt = Runtime::builder()
        .service("s".repeat(64))
        .memory()
        .only(|h| h.name() == "indexer")
        .build()
        .await;
    assert!(rt.is_ok(), "{:?}", rt.err());
}

/// An invalid service is reported once, not again in every default group made of it.
#[tokio::test]
async fn an_invalid_service_is_not_reported_again_in_each_default_group() {
    let err = Runtime::builder()
        .service("in ventory")
        .memory()
        .only(|h| h.module_path().ends_with("::bad_groups"))
        .build()
        .await
        .expect_err("invalid service");
    assert!(
        matches!(
            problems(&err),
            [ConfigProblem::InvalidName {
                what: "service name",
                ..
            }]
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Publish options
// ---------------------------------------------------------------------------------------------

/// One invalid option set per rule, with the problem each must be refused with.
fn invalid_options() -> Vec<(PublishOptions, PublishOptionProblem)> {
    let id = Uuid::now_v7();
    let ok = PublishOptions::new().event_id(id).correlation_id(id);
    let name_err = |name: &str| match opsc_events::keys::HEADER_NAME.check(name) {
        Err(e) => PublishOptionProblem::HeaderName(e),
        Ok(()) => panic!("`{name}` is a valid header name"),
    };
    let value_char = |ch, at| PublishOptionProblem::HeaderValueChar {
        name: "tenant".into(),
        ch,
        at,
    };
    let mut many = ok.clone();
    for i in 0..=MAX_HEADERS {
        many = many.header(format!("h{i}"), "v");
    }
    let mut large = ok.clone();
    for i in 0..(MAX_HEADERS_LEN / MAX_HEADER_VALUE_LEN) {
        large = large.header(format!("h{i}"), "v".repeat(MAX_HEADER_VALUE_LEN));
    }
    let large_len = (MAX_HEADERS_LEN / MAX_HEADER_VALUE_LEN) * (2 + MAX_HEADER_VALUE_LEN);
    vec![
        (
            ok.clone().event_id(Uuid::nil()),
            PublishOptionProblem::NilId { option: "event_id" },
        ),
        (
            ok.clone().correlation_id(Uuid::nil()),
            PublishOptionProblem::NilId {
                option: "correlation_id",
            },
        ),
        (
            ok.clone().causation_id(Uuid::nil()),
            PublishOptionProblem::NilId {
                option: "causation_id",
            },
        ),
        (ok.clone().header("", "v"), name_err("")),
        (ok.clone().header("tenant id", "v"), name_err("tenant id")),
        (ok.clone().header("tenant\n", "v"), name_err("tenant\n")),
        (ok.clone().header("tenänt", "v"), name_err("tenänt")),
        (
            ok.clone().header("h".repeat(129), "v"),
            name_err(&"h".repeat(129)),
        ),
        (
            ok.clone()
                .header("tenant", "v".repeat(MAX_HEADER_VALUE_LEN + 1)),
            PublishOptionProblem::HeaderValueTooLong {
                name: "tenant".into(),
                len: MAX_HEADER_VALUE_LEN + 1,
                max: MAX_HEADER_VALUE_LEN,
            },
        ),
        (ok.clone().header("tenant", "a\r\nb"), value_char('\r', 1)),
        (
            ok.clone().header("tenant", "\u{1b}[31m"),
            value_char('\u{1b}', 0),
        ),
        (
            ok.clone().header("tenant", "ü\u{85}"),
            value_char('\u{85}', 2),
        ),
        (ok.clone().header("tenant", "\0"), value_char('\0', 0)),
        (
            many,
            PublishOptionProblem::TooManyHeaders {
                count: MAX_HEADERS + 1,
                max: MAX_HEADERS,
            },
        ),
        (
            large,
            PublishOptionProblem::HeadersTooLong {
                len: large_len,
                max: MAX_HEADERS_LEN,
            },
        ),
    ]
}

/// Each invalid option set is refused with exactly its problem, and nothing reaches the stream.
async fn each_invalid_option_is_refused_and_nothing_is_published(rt: &Runtime) {
    let publisher = rt.publisher();
    for (opts, expected) in invalid_options() {
        let err = publisher
            .publish_with(&NoteTaken { n: 1 }, &opts)
            .await
            .expect_err("invalid options must be refused");
        match &err {
            Error::PublishOptions(PublishOptionsError { problems }) => {
                assert_eq!(problems, std::slice::from_ref(&expected), "{err}");
            }
            other => panic!("expected {expected}, got {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("nothing was published"), "{text}");
        assert!(
            text.contains("docs/WIRE.md § Names and limits") || text.contains("nil UUID"),
            "{text}"
        );
    }
    let entries = rt.read("validated", None, 10).await.expect("read");
    assert!(entries.is_empty(), "published: {entries:?}");
}

/// Every problem of one option set is listed, ids first, then headers by name.
async fn all_problems_of_one_option_set_are_listed(rt: &Runtime) {
    let opts = PublishOptions::new()
        .event_id(Uuid::nil())
        .causation_id(Uuid::nil())
        .header("b ad", "fine")
        .header("good", "line\nbreak");
    let err = rt
        .publisher()
        .publish_with(&NoteTaken { n: 2 }, &opts)
        .await
        .expect_err("refused");
    let Error::PublishOptions(PublishOptionsError { problems }) = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(
            &problems[..],
            [
                PublishOptionProblem::NilId { option: "event_id" },
                PublishOptionProblem::NilId {
                    option: "causation_id"
                },
                PublishOptionProblem::HeaderName(_),
                PublishOptionProblem::HeaderValueChar { ch: '\n', .. },
            ]
        ),
        "{err}"
    );
    assert!(
        rt.read("validated", None, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

/// At the limits, options are accepted and the headers arrive intact.
async fn options_at_the_limits_are_published(rt: &Runtime) {
    let mut at_limits = PublishOptions::new()
        .header("h".repeat(128), "spaces and punctuation: fine!")
        .header("unicode", "ümlaut ✓");
    for i in 0..(MAX_HEADERS - 2) {
        at_limits = at_limits.header(format!("h{i:02}"), "v");
    }
    assert_eq!(at_limits.headers().len(), MAX_HEADERS);
    let id = rt
        .publisher()
        .publish_with(&NoteTaken { n: 3 }, &at_limits)
        .await
        .expect("64 headers are accepted");

    // One value of the longest length, the total at exactly the limit.
    let mut full = PublishOptions::new();
    let per = MAX_HEADERS_LEN / 8;
    for i in 0..8 {
        let name = format!("h{i}");
        full = full.header(name.clone(), "v".repeat(per - name.len()));
    }
    assert_eq!(
        full.headers()
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>(),
        MAX_HEADERS_LEN
    );
    assert!(per - 2 <= MAX_HEADER_VALUE_LEN);
    rt.publisher()
        .publish_with(&NoteTaken { n: 4 }, &full)
        .await
        .expect("headers of exactly the limit are accepted");

    let entries = rt.read("validated", None, 10).await.expect("read");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].id, id);
    let env = entries[0].envelope().expect("decodes");
    assert_eq!(&env.meta.headers, at_limits.headers());
}

#[tokio::test]
async fn publish_options_are_checked_on_the_embedded_broker() {
    let rt = Runtime::builder()
        .service("x")
        .memory()
        .no_handlers()
        .build()
        .await
        .expect("build");
    each_invalid_option_is_refused_and_nothing_is_published(&rt).await;
    all_problems_of_one_option_set_are_listed(&rt).await;
    options_at_the_limits_are_published(&rt).await;
}

#[tokio::test]
async fn publish_options_are_checked_on_redis() {
    let server = RedisServer::start();
    let rt = Runtime::builder()
        .service("x")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .expect("build");
    each_invalid_option_is_refused_and_nothing_is_published(&rt).await;
    all_problems_of_one_option_set_are_listed(&rt).await;
    options_at_the_limits_are_published(&rt).await;
}

/// `validate` is the check `publish_with` applies: callers can check options they build once
/// (an outbox relay, say) without publishing.
#[test]
fn validate_agrees_with_publish() {
    for (opts, expected) in invalid_options() {
        assert_eq!(
            opts.validate(),
            Err(PublishOptionsError {
                problems: vec![expected]
            })
        );
    }
    assert_eq!(PublishOptions::new().validate(), Ok(()));
}

/// Notes the follow-up publish of `follow_up::relay` made.
#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "validated_out", name = "note_relayed", version = 1)]
struct NoteRelayed {
    n: u64,
}

mod follow_up {
    use super::*;

    /// Publishes a follow-up for every note.
    #[handler(stream = "validated", retries = 0)]
    pub async fn relay(event: NoteTaken, ctx: Context) -> Result<(), HandlerError> {
        ctx.publish(&NoteRelayed { n: event.n }).await?;
        Ok(())
    }
}

/// An incoming entry written by another program with a nil correlation id and a `traceparent`
/// holding a control character is data from Redis, not the handler's mistake: the follow-up
/// publish still succeeds (starting its own conversation, without the header) instead of
/// failing every attempt.
#[tokio::test]
async fn a_follow_up_of_an_entry_with_bad_metadata_is_still_published() {
    let broker = MemoryBroker::new();
    let rt = Runtime::builder()
        .service("relay")
        .memory_with(broker.clone())
        .only(|h| h.module_path().ends_with("::follow_up"))
        .build()
        .await
        .unwrap();
    let probe = Runtime::builder()
        .service("probe")
        .memory_with(broker)
        .no_handlers()
        .build()
        .await
        .unwrap();
    let mut meta = envelope::Metadata::new("other-program");
    meta.correlation_id = Uuid::nil();
    meta.headers
        .insert("traceparent".into(), "00-\u{7}-not-a-trace".into());
    let encoded = envelope::encode(&NoteTaken { n: 7 }, &meta).unwrap();
    let fields: Vec<(&str, &[u8])> = encoded.fields().collect();
    probe
        .publisher()
        .append_raw("validated", &fields)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = probe.read("validated_out", None, 10).await.unwrap();
        if !out.is_empty() {
            break out;
        }
        let letters = probe
            .dead_letters()
            .list(&DeadLetterFilter::stream("validated"))
            .await
            .unwrap();
        assert!(letters.is_empty(), "the handler failed: {letters:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "no follow-up published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    let env = envelope::Envelope::from_fields(
        out[0]
            .fields
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_slice())),
    )
    .unwrap();
    assert!(
        !env.meta.correlation_id.is_nil(),
        "a conversation of its own"
    );
    assert!(!env.meta.headers.contains_key("traceparent"));
    assert_eq!(env.meta.causation_id, Some(meta.event_id));
}
