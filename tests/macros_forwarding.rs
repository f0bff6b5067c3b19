//! `#[handler]` written by another proc macro: the fn's name, event type and stream come from
//! the caller with their spans, everything else (parameters, extractor types, the attribute,
//! the body) from the macro, with `Span::mixed_site()` or the call site. The handlers run on the
//! embedded broker and must be called.

use std::sync::atomic::{AtomicUsize, Ordering};

use opsc_events::prelude::*;
use opsc_events::testing::TestRuntime;
use opsc_events_forward_macro::{forward_handler, forward_handler_call_site};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "forwarded")]
pub struct Forwarded {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "forwarded-call-site")]
pub struct ForwardedCallSite {
    pub n: u64,
}

/// Calls of the handler written with mixed-site spans.
static CALLS: AtomicUsize = AtomicUsize::new(0);
/// Calls of the handler written with call-site spans.
static CALLS_CALL_SITE: AtomicUsize = AtomicUsize::new(0);

forward_handler!(on_forwarded, Forwarded, "forwarded");
forward_handler_call_site!(
    on_forwarded_call_site,
    ForwardedCallSite,
    "forwarded-call-site"
);

/// Runs `handler` alone and publishes `event` to it.
async fn run_one<E: Event>(handler: &'static str, event: E) {
    let builder = TestRuntime::builder().only(move |h| h.name() == handler);
    let t = TestRuntime::start(builder).await.unwrap();
    t.publish(&event).await.unwrap();
    t.wait_idle().await.unwrap();
    assert_eq!(t.handled(handler).len(), 1, "`{handler}` handled the event");
    t.stop().await.unwrap();
}

#[tokio::test]
async fn handler_written_with_mixed_site_spans_is_called() {
    run_one("on_forwarded", Forwarded { n: 1 }).await;
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn handler_written_with_call_site_spans_is_called() {
    run_one("on_forwarded_call_site", ForwardedCallSite { n: 2 }).await;
    assert_eq!(CALLS_CALL_SITE.load(Ordering::SeqCst), 1);
}
