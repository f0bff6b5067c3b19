//! OpenTelemetry across services (the `otel` feature), with the SDK's in-memory exporter: a
//! root span publishes, handler A publishes again from its handler, handler B runs — one trace,
//! each span the child of the one before; a failing message yields one span per attempt, each
//! marked as an error and linked to the first, the last with the dead-lettering event (on the
//! embedded broker and on Redis, where the first attempt's context is kept in the attempt
//! record).

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "otel_a")]
pub struct Start {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "otel_b")]
pub struct Next {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "otel_c")]
pub struct Doomed {
    pub n: u64,
}

#[handler(stream = "otel_a")]
async fn relay(event: Start, ctx: Context) -> Result<(), HandlerError> {
    ctx.publish(&Next { n: event.n }).await?;
    Ok(())
}

#[handler(stream = "otel_b")]
async fn finish(_event: Next) {}

#[handler(stream = "otel_c", retries = 2, backoff = "none")]
async fn always_fails(_event: Doomed) -> Result<(), HandlerError> {
    Err(HandlerError::retryable("upstream down"))
}

/// The exporter and provider of this test binary, installed once as the global subscriber.
fn telemetry() -> &'static (InMemorySpanExporter, SdkTracerProvider) {
    static T: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    T.get_or_init(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("otel-test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber");
        (exporter, provider)
    })
}

fn spans() -> Vec<SpanData> {
    telemetry().0.get_finished_spans().expect("spans")
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| &kv.value)
}

fn named<'a>(spans: &'a [SpanData], name: &str, trace: TraceId) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|s| s.name == name && s.span_context.trace_id() == trace)
        .collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str, trace: TraceId) -> &'a SpanData {
    let found = named(spans, name, trace);
    assert_eq!(found.len(), 1, "one `{name}` span in the trace: {spans:#?}");
    found[0]
}

async fn runtime() -> Runtime {
    Runtime::builder()
        .service("oteltest")
        .memory()
        .build()
        .await
        .expect("runtime builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_handlers_is_one_trace() {
    telemetry();
    let rt = runtime().await;
    let publisher = rt.publisher();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = stopped.await;
    }));
    let root = tracing::info_span!("request");
    let trace = {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        root.context().span().span_context().trace_id()
    };
    publisher
        .publish(&Start { n: 1 })
        .instrument(root.clone())
        .await
        .expect("publish");
    drop(root);
    wait_until("the chain's last span", Duration::from_secs(20), || async {
        !named(&spans(), "process otel_b", trace).is_empty()
    })
    .await;
    let _ = stop.send(());
    running.await.expect("task").expect("runtime");

    let all = spans();
    let request = one(&all, "request", trace);
    let publish_a = one(&all, "publish otel_a", trace);
    let process_a = one(&all, "process otel_a", trace);
    let publish_b = one(&all, "publish otel_b", trace);
    let process_b = one(&all, "process otel_b", trace);
    let id = |s: &SpanData| s.span_context.span_id();
    assert_eq!(publish_a.parent_span_id, id(request));
    assert_eq!(
        process_a.parent_span_id,
        id(publish_a),
        "the handler is a child of the publish"
    );
    assert!(
        process_a.parent_span_is_remote,
        "its parent came through the event's headers"
    );
    assert_eq!(
        publish_b.parent_span_id,
        id(process_a),
        "Context::publish in the handler's span"
    );
    assert_eq!(process_b.parent_span_id, id(publish_b));
    assert_eq!(publish_a.span_kind, SpanKind::Producer);
    assert_eq!(process_a.span_kind, SpanKind::Consumer);
    assert_eq!(
        attr(process_a, "messaging.system"),
        Some(&Value::from("redis"))
    );
    assert_eq!(
        attr(process_a, "messaging.destination.name"),
        Some(&Value::from("otel_a"))
    );
    assert_eq!(
        attr(process_a, "messaging.consumer.group.name"),
        Some(&Value::from("oteltest.relay"))
    );
    assert_eq!(
        attr(process_a, "messaging.opsc.attempt"),
        Some(&Value::I64(1))
    );
    assert!(attr(process_a, "messaging.message.id").is_some());
    assert_eq!(process_a.status, Status::Unset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_is_a_span_linked_to_the_first_and_the_last_records_the_dead_letter() {
    attempts_on(runtime().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_retries_link_to_the_first_attempt_through_the_attempt_record() {
    let server = opsc_events_testkit::RedisServer::start();
    let rt = Runtime::builder()
        .service("oteltest")
        .redis(server.url())
        .build()
        .await
        .expect("runtime builds");
    attempts_on(rt).await;
}

async fn attempts_on(rt: Runtime) {
    telemetry();
    let publisher = rt.publisher();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rt.run_until(async move {
        let _ = stopped.await;
    }));
    let root = tracing::info_span!("request");
    let trace = {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        root.context().span().span_context().trace_id()
    };
    publisher
        .publish(&Doomed { n: 1 })
        .instrument(root.clone())
        .await
        .expect("publish");
    drop(root);
    wait_until("three attempts", Duration::from_secs(20), || async {
        named(&spans(), "process otel_c", trace).len() == 3
    })
    .await;
    let _ = stop.send(());
    running.await.expect("task").expect("runtime");

    let all = spans();
    let publish = one(&all, "publish otel_c", trace);
    let mut attempts = named(&all, "process otel_c", trace);
    attempts.sort_by_key(|s| s.start_time);
    for (i, span) in attempts.iter().enumerate() {
        assert_eq!(
            span.parent_span_id,
            publish.span_context.span_id(),
            "attempt {} is a child of the publish",
            i + 1
        );
        assert_eq!(
            attr(span, "messaging.opsc.attempt"),
            Some(&Value::I64(i as i64 + 1))
        );
        assert!(
            matches!(span.status, Status::Error { .. }),
            "{:?}",
            span.status
        );
        assert_eq!(
            attr(span, "error.type"),
            Some(&Value::from("handler_error"))
        );
        let dead = span
            .events
            .events
            .iter()
            .any(|e| e.name.contains("dead-lettered"));
        assert_eq!(
            dead,
            i == 2,
            "only the last attempt records the dead letter"
        );
        let links: Vec<_> = span.links.links.iter().map(|l| &l.span_context).collect();
        if i == 0 {
            assert!(
                links.is_empty(),
                "the first attempt links nowhere: {links:?}"
            );
        } else {
            let first = &attempts[0].span_context;
            assert_eq!(links.len(), 1, "attempt {} has one link: {links:?}", i + 1);
            assert_eq!(links[0].span_id(), first.span_id(), "attempt {}", i + 1);
            assert_eq!(links[0].trace_id(), first.trace_id());
        }
    }
}

/// Polls `cond` until it holds; panics after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
