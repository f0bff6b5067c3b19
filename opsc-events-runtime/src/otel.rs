//! OpenTelemetry propagation (the `otel` feature).
//!
//! - **Publish.** Each `publish`/`publish_with` runs in a `publish` span (kind producer; one span
//!   for a whole `publish_all` batch), and the trace context of that span is injected into the
//!   event's headers with the globally installed propagator
//!   (`opentelemetry::global::set_text_map_propagator`, e.g. `TraceContextPropagator` for W3C
//!   `traceparent`/`tracestate`, or a composite with baggage). The injected values replace a
//!   `traceparent` given in the options: the current span is the truth.
//! - **Handle.** Each attempt is a `handle` span (kind consumer) whose parent is the context
//!   extracted from the event's headers, so a chain A → B → C is one trace. Retries are
//!   sibling spans under the same producer span, each with its attempt number and a link to the
//!   first traced attempt (whose context is kept in the message's attempt record, so the link
//!   survives a restart); a dead-lettering is an event on the last attempt's span.
//! - Spans carry the messaging attributes of the OpenTelemetry semantic conventions
//!   (`messaging.system = "redis"`, destination, consumer group, message id, operation) and are
//!   exported by whatever `tracing-opentelemetry` layer the service installs; without that
//!   layer nothing is injected (the span context is empty).
//!
//! Without the feature nothing of this is compiled and no span is opened per publish.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::envelope::Headers;

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The span of one publish (or one batch of `count`).
pub(crate) fn publish_span(stream: &'static str, count: usize) -> tracing::Span {
    tracing::info_span!(
        "publish",
        otel.name = format!("publish {stream}"),
        otel.kind = "producer",
        messaging.system = "redis",
        messaging.destination.name = stream,
        messaging.operation.type = "send",
        messaging.operation.name = "publish",
        messaging.batch.message_count = i64::try_from(count).unwrap_or(i64::MAX),
        messaging.message.id = tracing::field::Empty,
    )
}

/// Writes the trace context of `span` into `headers`.
pub(crate) fn inject(span: &tracing::Span, headers: &mut Headers) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

/// Makes the context carried in `headers` the parent of `span`.
pub(crate) fn set_parent(span: &tracing::Span, headers: &Headers) {
    let cx =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    // Fails only when the span is not recorded by an OpenTelemetry layer: nothing to link.
    let _ = span.set_parent(cx);
}

/// The span of one attempt, a child of the context carried in the event's headers.
pub(crate) fn handle_span(
    stream: &'static str,
    group: &str,
    event_type: &'static str,
    id: crate::MessageId,
    attempt: u32,
    meta: &crate::envelope::Metadata,
    first_attempt: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "handle",
        otel.name = format!("process {stream}"),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
        messaging.system = "redis",
        messaging.destination.name = stream,
        messaging.consumer.group.name = group,
        messaging.operation.type = "process",
        messaging.operation.name = "handle",
        messaging.message.id = %meta.event_id,
        messaging.message.conversation_id = %meta.correlation_id,
        messaging.redis.entry_id = %id,
        messaging.opsc.event_type = event_type,
        messaging.opsc.attempt = i64::from(attempt),
        error.type = tracing::field::Empty,
    );
    set_parent(&span, &meta.headers);
    if let Some(first) = first_attempt.and_then(parse_traceparent) {
        span.add_link(first);
    }
    span
}

/// The context of `span` in W3C `traceparent` form (`00-<trace>-<span>-<flags>`); `None` when
/// the span is not recorded by an OpenTelemetry layer. Written here rather than through the
/// global propagator: the value is kept for a link, whatever propagator the service installed.
pub(crate) fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Parses what [`traceparent`] wrote; `None` for anything else (a record is data from Redis).
fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.split('-');
    let (Some("00"), Some(trace), Some(span), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// Records a failed attempt on its span; `last`: no attempt follows (dead-lettered, or
/// dropped when the handler keeps no dead letters).
pub(crate) fn failed(span: &tracing::Span, reason: &'static str, error: &str, last: bool) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_message", error);
    span.record("error.type", reason);
    if last {
        tracing::event!(parent: span, tracing::Level::WARN, reason, error, "dead-lettered: no attempt left");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_traceparent;

    #[test]
    fn a_traceparent_round_trips_and_garbage_is_no_link() {
        let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        for bad in [
            "",
            "00",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-ü4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
    }
}
