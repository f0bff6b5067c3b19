//! Items the generated code of `opsc-events-derive` uses, re-exported by the facade as
//! `::opsc_events::__private`. Not a public API: no stability guarantee.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::event::{Event, NoUpcast, UpcastChain, UpcastVia};
pub use crate::priority::Priority;
pub use crate::schema::{
    EnumShape, EventSchema, Field, IntKind, Shape, StructShape, Tagging, Variant, VariantKind,
    fingerprint,
};

/// Why every event is `Serialize + DeserializeOwned`: a supertrait of `Event`, so that the
/// runtime can encode and decode any event.
#[diagnostic::on_unimplemented(
    message = "event `{Self}` must implement `Serialize` and `Deserialize`",
    label = "events are written and read with serde",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait EventSerde: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> EventSerde for T {}

/// The `Serialize` half of [`EventSerde`], checked on its own so that the message names the
/// missing trait.
#[diagnostic::on_unimplemented(
    message = "event `{Self}` must implement `Serialize`",
    label = "events are written with serde",
    note = "add `#[derive(serde::Serialize)]` to `{Self}`"
)]
pub trait EventSerialize: Serialize {}
impl<T: Serialize> EventSerialize for T {}

/// The `Deserialize` half of [`EventSerde`].
#[diagnostic::on_unimplemented(
    message = "event `{Self}` must implement `Deserialize`",
    label = "events are read with serde",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`"
)]
pub trait EventDeserialize: DeserializeOwned {}
impl<T: DeserializeOwned> EventDeserialize for T {}

/// Generated for every `#[derive(Event)]`, spanned on the type's name.
pub const fn assert_serialize<T: EventSerialize>() {}

/// Generated for every `#[derive(Event)]`, spanned on the type's name.
pub const fn assert_deserialize<T: EventDeserialize>() {}

/// Checks that `T: From<P>` for `#[event(upcast_from = P)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be upcast from `{P}`: `upcast_from` needs a conversion",
    label = "no `impl From<{P}> for {Self}`",
    note = "add `impl From<{P}> for {Self}`, converting the older version into this one"
)]
pub trait UpcastFrom<P> {}
impl<T: From<P>, P> UpcastFrom<P> for T {}

/// Generated for `#[event(upcast_from = P)]`, spanned on `P`.
pub const fn assert_upcast_from<T: UpcastFrom<P>, P>() {}

/// Why values of `shape` could be published but never decoded, if they could not: a `u128` or
/// `i128` inside an internally tagged enum. rmp-serde writes these integers as 16 raw bytes;
/// serde reads an internally tagged enum's content through its own buffer first, and a 128-bit
/// integer cannot be read back from buffered bytes. The event derive checks this at compile
/// time rather than letting every such event end as a dead letter.
pub const fn undecodable(shape: &Shape) -> Option<&'static str> {
    if wide_int_buffered(shape, false) {
        Some(
            "a `u128` or `i128` inside an enum with `#[serde(tag = \"...\")]` (internally tagged) could be published but never decoded: serde reads such an enum's content through a buffer that cannot hold MessagePack's 128-bit integers; tag the enum adjacently (`#[serde(tag = \"...\", content = \"...\")]`) or externally (the default), or store the value as a string or as two `u64`s",
        )
    } else {
        None
    }
}

/// True when `shape` has a 128-bit integer that serde would read through a buffer (`buffered`:
/// inside the content of an internally tagged enum).
const fn wide_int_buffered(shape: &Shape, buffered: bool) -> bool {
    match shape {
        Shape::Int(IntKind::U128 | IntKind::I128) => buffered,
        Shape::Option(inner) | Shape::Seq(inner) | Shape::Array(inner, _) => {
            wide_int_buffered(inner, buffered)
        }
        Shape::Newtype(_, inner) => wide_int_buffered(inner, buffered),
        Shape::Map(key, value) => {
            wide_int_buffered(key, buffered) || wide_int_buffered(value, buffered)
        }
        Shape::Tuple(items) => any_buffered(items, buffered),
        Shape::Struct(s) => fields_buffered(s.fields, buffered),
        Shape::Enum(e) => {
            let buffered = buffered || matches!(e.tagging, Tagging::Internal { .. });
            let mut i = 0;
            while i < e.variants.len() {
                let found = match e.variants[i].kind {
                    VariantKind::Unit => false,
                    VariantKind::Newtype(inner) => wide_int_buffered(inner, buffered),
                    VariantKind::Tuple(items) => any_buffered(items, buffered),
                    VariantKind::Struct(fields) => fields_buffered(fields, buffered),
                };
                if found {
                    return true;
                }
                i += 1;
            }
            false
        }
        _ => false,
    }
}

const fn any_buffered(shapes: &[&Shape], buffered: bool) -> bool {
    let mut i = 0;
    while i < shapes.len() {
        if wide_int_buffered(shapes[i], buffered) {
            return true;
        }
        i += 1;
    }
    false
}

const fn fields_buffered(fields: &[Field], buffered: bool) -> bool {
    let mut i = 0;
    while i < fields.len() {
        if wide_int_buffered(fields[i].shape, buffered) {
            return true;
        }
        i += 1;
    }
    false
}

/// Compares two strings in a `const` context.
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The `upcast_from` rules: the older type `P` is the same event (same stream and name) at a
/// lower version. Returns what is wrong, if anything; the generated code panics with it in a
/// `const`, spanned on `P`, so that the error is reported there.
pub const fn upcast_error<P: Event>(
    stream: &str,
    name: &str,
    version: u16,
) -> Option<&'static str> {
    if !str_eq(P::STREAM, stream) {
        Some(
            "`upcast_from` names an event of another `stream`; it must name an older version of this event, published to the same stream",
        )
    } else if !str_eq(P::NAME, name) {
        Some(
            "`upcast_from` names an event with another `name`; give the older version the same `name` (`#[event(name = \"...\")]`)",
        )
    } else if P::VERSION >= version {
        Some(
            "`upcast_from` names an event whose `version` is not below this event's `version`; it must name an older version",
        )
    } else {
        None
    }
}

pub use crate::contracts::EventRegistration;
pub use crate::envelope::Envelope;
pub use crate::handler::{
    Backoff, BatchContext, BatchError, BatchFuture, BatchSpec, CallError, Context, EventDescriptor,
    FromBatchContext, FromContext, HandlerConfig, HandlerError, HandlerFuture, HandlerRegistration,
    Requirement, Start, decode_for_handler,
};
pub use inventory;

/// One `#[handler]` fn, implemented by the macro for a hidden unit struct next to it.
///
/// The event bound sits on the associated type, so a first parameter that is not an event is
/// reported once, on that parameter (`type Event = ...` is spanned there). Whatever needs
/// `E: Event` afterwards ([`registration`], [`stream_mismatch`], decoding) is generic over
/// `H: Handler`, where the bound follows from the trait, so it is not proved (and reported)
/// again. Naming `<H as Handler>::Event` in the generated code would not do: it normalizes to
/// the written type and the bound is checked anew.
pub trait Handler: 'static {
    /// The handler's first parameter.
    type Event: Event;

    /// Extracts the other parameters from `ctx`, calls the fn and converts what it returns.
    fn call(
        event: Self::Event,
        ctx: Context,
    ) -> impl Future<Output = Result<(), CallError>> + Send + 'static;

    /// Appends the state types the extractors need.
    fn requirements(out: &mut Vec<Requirement>);
}

/// The registration of `H`, submitted to `inventory` by the generated code. Generic over the
/// handler, so that the event bound is the one `H: Handler` already proved.
pub const fn registration<H: Handler>(
    name: &'static str,
    module_path: &'static str,
    stream: &'static str,
    group: Option<&'static str>,
    event_type: &'static str,
    config: HandlerConfig,
) -> HandlerRegistration {
    HandlerRegistration {
        name,
        module_path,
        stream,
        group,
        event: EventDescriptor::of::<H::Event>(event_type),
        config,
        requirements: H::requirements,
        call: call_handler::<H>,
        batch: None,
    }
}

/// The type-erased entry point of `H`, for [`HandlerRegistration::call`]. Decoding happens
/// inside the future, so that the consumer's panic guard and timeout cover it.
pub fn call_handler<H: Handler>(envelope: Envelope, ctx: Context) -> HandlerFuture {
    Box::pin(async move {
        let event = decode_for_handler::<H::Event>(&envelope)?;
        drop(envelope);
        H::call(event, ctx).await
    })
}

/// One `#[handler(batch = N)]` fn, implemented by the macro for a hidden unit struct next to
/// it (see [`Handler`]: the event bound sits on the associated type the same way).
pub trait BatchHandler: 'static {
    /// `E` of the handler's first parameter, `Vec<E>`.
    type Event: Event;

    /// Extracts the other parameters from `ctx`, calls the fn and converts what it returns.
    fn call(
        events: Vec<Self::Event>,
        ctx: BatchContext,
    ) -> impl Future<Output = Result<(), BatchError>> + Send + 'static;

    /// Appends the state types the extractors need.
    fn requirements(out: &mut Vec<Requirement>);
}

/// The registration of the batch handler `H` (see [`registration`]).
#[allow(clippy::too_many_arguments)] // Mirrors the attribute's keys; called by generated code only.
pub const fn batch_registration<H: BatchHandler>(
    name: &'static str,
    module_path: &'static str,
    stream: &'static str,
    group: Option<&'static str>,
    event_type: &'static str,
    config: HandlerConfig,
    size: u32,
    linger: Option<std::time::Duration>,
) -> HandlerRegistration {
    HandlerRegistration {
        name,
        module_path,
        stream,
        group,
        event: EventDescriptor::of::<H::Event>(event_type),
        config,
        requirements: H::requirements,
        call: call_batch_of_one::<H>,
        batch: Some(BatchSpec {
            size,
            linger: match linger {
                Some(l) => l,
                None => BatchSpec::DEFAULT_LINGER,
            },
            call: call_batch::<H>,
        }),
    }
}

/// The type-erased batch entry point of `H`, for [`BatchSpec::call`]: decodes every entry (an
/// entry that does not decode fails alone, with its decode error, and is not passed to the
/// handler), calls the handler once with the others, and maps its [`BatchError`] back to the
/// entries. Decoding happens inside the future, under the consumer's panic guard and timeout.
pub fn call_batch<H: BatchHandler>(entries: Vec<(Envelope, Context)>) -> BatchFuture {
    Box::pin(async move {
        let n = entries.len();
        let mut results: Vec<Result<(), CallError>> = (0..n).map(|_| Ok(())).collect();
        let mut events = Vec::with_capacity(n);
        let mut contexts = Vec::with_capacity(n);
        let mut positions = Vec::with_capacity(n);
        for (i, (envelope, ctx)) in entries.into_iter().enumerate() {
            match decode_for_handler::<H::Event>(&envelope) {
                Ok(event) => {
                    events.push(event);
                    contexts.push(ctx);
                    positions.push(i);
                }
                Err(e) => results[i] = Err(e),
            }
        }
        let Some(first) = contexts.first() else {
            return results;
        };
        let publisher = first.publisher().clone();
        let len = events.len();
        if let Err(failed) = H::call(events, BatchContext::new(contexts, publisher)).await {
            for (k, failure) in failed.into_failures(len).into_iter().enumerate() {
                if let Some(e) = failure {
                    results[positions[k]] = Err(CallError::Handler(e));
                }
            }
        }
        results
    })
}

/// A batch handler called with one message: how retries, reclaims and resumed entries run
/// (each alone, like any handler's).
pub fn call_batch_of_one<H: BatchHandler>(envelope: Envelope, ctx: Context) -> HandlerFuture {
    Box::pin(async move {
        let mut results = call_batch::<H>(vec![(envelope, ctx)]).await;
        results.pop().unwrap_or(Ok(()))
    })
}

/// The `E` of a batch handler returning `Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a batch handler's error type: it does not convert into `BatchError`",
    label = "the error type of this `Result`",
    note = "return `Result<(), BatchError>` to fail some messages, or any error that converts into `HandlerError` to fail the whole batch"
)]
pub trait BatchErrorType: Into<BatchError> {}
impl<E: Into<BatchError>> BatchErrorType for E {}

/// Generated for every batch handler, spanned on its return type.
pub fn batch_result<E: BatchErrorType>(result: Result<(), E>) -> Result<(), BatchError> {
    result.map_err(Into::into)
}

/// What a handler fn returns, split from its error type: `()` or `Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "a handler must return `()` or `Result<(), E>`, not `{Self}`",
    label = "not `()` or `Result<(), E>`",
    note = "`E` may be `HandlerError`, any `std::error::Error + Send + Sync + 'static`, `anyhow::Error` or `String`"
)]
pub trait HandlerReturn {
    /// `E`, or `HandlerError` for `()`.
    type Error;
    /// The return value as a `Result`.
    fn into_result(self) -> Result<(), Self::Error>;
}

impl HandlerReturn for () {
    type Error = HandlerError;
    fn into_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E> HandlerReturn for Result<(), E> {
    type Error = E;
    fn into_result(self) -> Result<(), E> {
        self
    }
}

/// The `E` of a handler returning `Result<(), E>`, checked on its own so that the message names
/// `E` rather than the chain of blanket impls that fails below it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler's error type: it does not convert into `HandlerError`",
    label = "the error type of this `Result`",
    note = "return `Result<(), HandlerError>` and convert with `HandlerError::retryable(..)` or `?`, or implement `std::error::Error` for `{Self}`; `anyhow::Error` and `String` work too"
)]
pub trait HandlerErrorType: Into<HandlerError> {}
impl<E: Into<HandlerError>> HandlerErrorType for E {}

/// Generated for every handler, spanned on its return type: converts the returned error (the
/// same conversion as [`IntoHandlerResult`](crate::handler::IntoHandlerResult)).
pub fn handler_result<E: HandlerErrorType>(result: Result<(), E>) -> Result<(), CallError> {
    result.map_err(|e| CallError::Handler(e.into()))
}

/// A message built at compile time (const panics can only print a `&str`).
#[derive(Debug)]
pub struct ConstMessage {
    buf: [u8; 512],
    len: usize,
}

impl ConstMessage {
    const fn new() -> Self {
        ConstMessage {
            buf: [0; 512],
            len: 0,
        }
    }

    const fn push(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && self.len < self.buf.len() {
            self.buf[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// The message; generated code panics with it.
    pub const fn as_str(&self) -> &str {
        let (bytes, _) = self.buf.split_at(self.len);
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => "handler stream does not match the event's stream",
        }
    }
}

/// The message of a handler/event stream mismatch, naming the handler, the event type and both
/// streams; `None` when the streams match. The generated code panics with it in a `const`,
/// spanned on the `stream` value. Generic over the handler, not the event: see [`Handler`].
pub const fn stream_mismatch<H: Handler>(
    handler: &str,
    handler_stream: &str,
    event_type: &str,
) -> Option<ConstMessage> {
    mismatch(
        handler,
        handler_stream,
        event_type,
        <H::Event as Event>::STREAM,
    )
}

/// [`stream_mismatch`] for a batch handler.
pub const fn batch_stream_mismatch<H: BatchHandler>(
    handler: &str,
    handler_stream: &str,
    event_type: &str,
) -> Option<ConstMessage> {
    mismatch(
        handler,
        handler_stream,
        event_type,
        <H::Event as Event>::STREAM,
    )
}

const fn mismatch(
    handler: &str,
    handler_stream: &str,
    event_type: &str,
    event_stream: &str,
) -> Option<ConstMessage> {
    if str_eq(event_stream, handler_stream) {
        return None;
    }
    Some(
        ConstMessage::new()
            .push("handler `")
            .push(handler)
            .push("` reads stream `")
            .push(handler_stream)
            .push("`, but its event `")
            .push(event_type)
            .push("` is published to stream `")
            .push(event_stream)
            .push("`; set `stream = \"")
            .push(event_stream)
            .push("\"`"),
    )
}
