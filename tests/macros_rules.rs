//! `#[derive(Event)]` and `#[handler]` written by `macro_rules!` macros: attribute values passed
//! as `literal`, `expr` and `tt` fragments (the first two arrive wrapped in invisible groups),
//! names passed as `ident` fragments, types as `ty` fragments, and whole items passed through as
//! token trees. Each handler runs on the embedded broker and must be called.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsc_events::handler::{Backoff, HandlerConfig, Start};
use opsc_events::prelude::*;
use opsc_events::testing::TestRuntime;
use serde::{Deserialize, Serialize};

// ---- events ---------------------------------------------------------------------------------

/// Every `#[event]` value as a `literal` fragment.
macro_rules! event_from_literals {
    ($ty:ident, $stream:literal, $name:literal, $version:literal) => {
        #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
        #[event(stream = $stream, name = $name, version = $version)]
        pub struct $ty {
            pub n: u64,
        }
    };
}

/// Every `#[event]` value as an `expr` fragment.
macro_rules! event_from_exprs {
    ($ty:ident, $stream:expr, $name:expr, $version:expr) => {
        #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
        #[event(stream = $stream, name = $name, version = $version)]
        pub struct $ty {
            pub n: u64,
        }
    };
}

/// Every `#[event]` value as a `tt` fragment, and the whole attribute as token trees.
macro_rules! event_from_tts {
    ($ty:ident, $stream:tt, $($rest:tt)*) => {
        #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
        #[event(stream = $stream, $($rest)*)]
        pub struct $ty {
            pub n: u64,
        }
    };
}

/// A key as an `ident` fragment, its value as an `expr` one.
macro_rules! event_with_key {
    ($ty:ident, $key:ident = $value:expr) => {
        #[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
        #[event($key = $value)]
        pub struct $ty {
            pub n: u64,
        }
    };
}

event_from_literals!(LiteralEvent, "macro-literal", "literal_event", 2);
event_from_exprs!(ExprEvent, "macro-expr", "expr_event", 3);
event_from_tts!(TtEvent, "macro-tt", name = "tt_event", version = 4);
event_with_key!(KeyEvent, stream = "macro-key");
event_from_tts!(AttrEvent, "macro-attr",);
event_from_tts!(ExtractorEvent, "macro-extractors",);
event_from_tts!(NestedEvent, "macro-nested",);

#[test]
fn event_values_pass_through_fragments() {
    assert_eq!(
        (
            LiteralEvent::STREAM,
            LiteralEvent::NAME,
            LiteralEvent::VERSION
        ),
        ("macro-literal", "literal_event", 2)
    );
    assert_eq!(
        (ExprEvent::STREAM, ExprEvent::NAME, ExprEvent::VERSION),
        ("macro-expr", "expr_event", 3)
    );
    assert_eq!(
        (TtEvent::STREAM, TtEvent::NAME, TtEvent::VERSION),
        ("macro-tt", "tt_event", 4)
    );
    assert_eq!(
        (KeyEvent::STREAM, KeyEvent::NAME, KeyEvent::VERSION),
        ("macro-key", "key_event", 1)
    );
}

// ---- handlers -------------------------------------------------------------------------------

/// Every `#[handler]` value as a `literal` fragment; the event type as a `ty` fragment; the
/// extractors written inside the macro (their spans come from it).
macro_rules! handler_from_literals {
    (
        $fn:ident, $event:ty, $stream:literal, $group:literal, $retries:literal, $backoff:literal,
        $dead_letter:literal, $concurrency:literal, $timeout:literal, $claim_after:literal,
        $start:literal
    ) => {
        #[handler(
                                                                    stream = $stream,
                                                                    group = $group,
                                                                    retries = $retries,
                                                                    backoff = $backoff,
                                                                    dead_letter = $dead_letter,
                                                                    concurrency = $concurrency,
                                                                    timeout = $timeout,
                                                                    claim_after = $claim_after,
                                                                    start = $start
                                                                )]
        async fn $fn(
            event: $event,
            ctx: Context,
            State(seen): State<Seen>,
        ) -> Result<(), HandlerError> {
            seen.record(stringify!($fn), event.n, ctx.attempt());
            Ok(())
        }
    };
}

/// Every `#[handler]` value as an `expr` fragment.
macro_rules! handler_from_exprs {
    (
        $fn:ident, $event:ty, $stream:expr, $group:expr, $retries:expr, $backoff:expr,
        $dead_letter:expr, $concurrency:expr, $timeout:expr, $claim_after:expr, $start:expr
    ) => {
        #[handler(
                                                                    stream = $stream,
                                                                    group = $group,
                                                                    retries = $retries,
                                                                    backoff = $backoff,
                                                                    dead_letter = $dead_letter,
                                                                    concurrency = $concurrency,
                                                                    timeout = $timeout,
                                                                    claim_after = $claim_after,
                                                                    start = $start
                                                                )]
        async fn $fn(event: $event, ctx: Context, State(seen): State<Seen>) {
            seen.record(stringify!($fn), event.n, ctx.attempt());
        }
    };
}

/// The attribute's arguments as token trees.
macro_rules! handler_from_tts {
    ($fn:ident, $event:ident, $($args:tt)*) => {
        #[handler($($args)*)]
        async fn $fn(event: $event, State(seen): State<Seen>, ctx: Context) {
            seen.record(stringify!($fn), event.n, ctx.attempt());
        }
    };
}

/// The attribute written by the macro, the fn's name given by the caller (an `ident`
/// fragment): the generated code mixes tokens of two hygiene contexts.
macro_rules! handler_named_by_caller {
    ($fn:ident) => {
        #[handler(stream = "macro-attr", start = "earliest")]
        async fn $fn(event: AttrEvent, ctx: Context, State(seen): State<Seen>) {
            seen.record(stringify!($fn), event.n, ctx.attempt());
        }
    };
}

/// The attribute and the fn written by the macro, the extractor types given by the caller
/// (`ident` fragments).
macro_rules! handler_with_extractors {
    ($context:ident, $state:ident, $seen:ident) => {
        #[handler(stream = "macro-extractors")]
        async fn on_extractors_from_caller(
            event: ExtractorEvent,
            ctx: $context,
            $state(seen): $state<$seen>,
        ) {
            seen.record("on_extractors_from_caller", event.n, ctx.attempt());
        }
    };
}

/// The same through two macros, the name passed on as token trees.
macro_rules! outer {
    ($($t:tt)*) => {
        inner! { $($t)* }
    };
}

macro_rules! inner {
    ($fn:ident) => {
        #[handler(stream = "macro-nested", start = "earliest")]
        async fn $fn(event: NestedEvent, ctx: Context, again: Context, State(seen): State<Seen>) {
            assert_eq!(ctx.message_id(), again.message_id());
            seen.record(stringify!($fn), event.n, ctx.attempt());
        }
    };
}

/// A whole item passed through as token trees.
macro_rules! pass_through {
    ($($item:tt)*) => {
        $($item)*
    };
}

handler_from_literals!(
    on_literal,
    LiteralEvent,
    "macro-literal",
    "macros.on_literal",
    5,
    "exponential(200ms, 10s)",
    false,
    2,
    "10s",
    "45s",
    "earliest"
);

handler_from_exprs!(
    on_expr,
    ExprEvent,
    "macro-expr",
    "macros.on_expr",
    7,
    "fixed(1s)",
    true,
    3,
    "20s",
    "50s",
    "earliest"
);

handler_from_tts!(
    on_tt,
    TtEvent,
    stream = "macro-tt",
    retries = 0,
    backoff = "none",
    timeout = "5s",
    start = "earliest"
);

pass_through! {
    #[handler(stream = "macro-key", start = "earliest")]
    async fn on_passed_through(event: KeyEvent, ctx: Context, State(seen): State<Seen>) {
        seen.record("on_passed_through", event.n, ctx.attempt());
    }
}

handler_named_by_caller!(on_attr_from_macro);
handler_with_extractors!(Context, State, Seen);
outer!(on_nested);

/// What the handlers saw: (handler, event, attempt).
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, u64, u32)>>>);

impl Seen {
    fn record(&self, handler: &str, n: u64, attempt: u32) {
        self.0
            .lock()
            .unwrap()
            .push((handler.to_owned(), n, attempt));
    }

    fn calls(&self) -> Vec<(String, u64, u32)> {
        self.0.lock().unwrap().clone()
    }
}

/// Runs `handler` alone, publishes `publish`, and returns what it saw and its config.
async fn run_one<E: Event>(
    handler: &'static str,
    event: E,
) -> (Vec<(String, u64, u32)>, HandlerConfig) {
    let seen = Seen::default();
    let config: Arc<Mutex<Option<HandlerConfig>>> = Arc::default();
    let found = config.clone();
    let builder = TestRuntime::builder().state(seen.clone()).only(move |h| {
        let selected = h.name() == handler;
        if selected {
            *found.lock().unwrap() = Some(*h.config());
        }
        selected
    });
    let t = TestRuntime::start(builder).await.unwrap();
    t.publish(&event).await.unwrap();
    t.wait_idle().await.unwrap();
    assert_eq!(t.handled(handler).len(), 1, "`{handler}` handled the event");
    t.stop().await.unwrap();
    let config = config.lock().unwrap().expect("the handler was selected");
    (seen.calls(), config)
}

#[tokio::test]
async fn handler_with_literal_fragments_is_called() {
    let (calls, config) = run_one("on_literal", LiteralEvent { n: 1 }).await;
    assert_eq!(calls, vec![("on_literal".to_owned(), 1, 1)]);
    assert_eq!(
        config,
        HandlerConfig {
            retries: 5,
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(10),
            },
            dead_letter: false,
            concurrency: 2,
            timeout: Duration::from_secs(10),
            claim_after: Duration::from_secs(45),
            start: Start::Earliest,
        }
    );
}

#[tokio::test]
async fn handler_with_expr_fragments_is_called() {
    let (calls, config) = run_one("on_expr", ExprEvent { n: 2 }).await;
    assert_eq!(calls, vec![("on_expr".to_owned(), 2, 1)]);
    assert_eq!(
        config,
        HandlerConfig {
            retries: 7,
            backoff: Backoff::Fixed(Duration::from_secs(1)),
            dead_letter: true,
            concurrency: 3,
            timeout: Duration::from_secs(20),
            claim_after: Duration::from_secs(50),
            start: Start::Earliest,
        }
    );
}

#[tokio::test]
async fn handler_with_tt_fragments_is_called() {
    let (calls, config) = run_one("on_tt", TtEvent { n: 3 }).await;
    assert_eq!(calls, vec![("on_tt".to_owned(), 3, 1)]);
    assert_eq!(config.retries, 0);
    assert_eq!(config.backoff, Backoff::None);
    assert_eq!(config.timeout, Duration::from_secs(5));
    assert_eq!(
        config.claim_after,
        HandlerConfig::default_claim_after(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn handler_passed_through_as_tokens_is_called() {
    let (calls, config) = run_one("on_passed_through", KeyEvent { n: 4 }).await;
    assert_eq!(calls, vec![("on_passed_through".to_owned(), 4, 1)]);
    assert_eq!(config.start, Start::Earliest);
}

#[tokio::test]
async fn handler_named_by_the_caller_is_called() {
    let (calls, _) = run_one("on_attr_from_macro", AttrEvent { n: 5 }).await;
    assert_eq!(calls, vec![("on_attr_from_macro".to_owned(), 5, 1)]);
}

#[tokio::test]
async fn handler_with_extractor_types_from_the_caller_is_called() {
    let (calls, config) = run_one("on_extractors_from_caller", ExtractorEvent { n: 6 }).await;
    assert_eq!(calls, vec![("on_extractors_from_caller".to_owned(), 6, 1)]);
    assert_eq!(config, HandlerConfig::DEFAULT);
}

#[tokio::test]
async fn handler_through_two_macros_is_called() {
    let (calls, _) = run_one("on_nested", NestedEvent { n: 7 }).await;
    assert_eq!(calls, vec![("on_nested".to_owned(), 7, 1)]);
}
