//! Items the generated code of `opsc-events-derive` uses, re-exported by the facade as
//! `::opsc_events::__private`. Not a public API: no stability guarantee.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::event::{Event, NoUpcast, UpcastChain, UpcastVia};
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

pub use crate::envelope::Envelope;
pub use crate::handler::{
    Backoff, CallError, Context, EventDescriptor, FromContext, HandlerConfig, HandlerFuture,
    HandlerRegistration, IntoHandlerResult, Requirement, Start, decode_for_handler,
};
pub use inventory;

/// Generated for a handler's first parameter: fails with `Event`'s message when it is not one.
pub const fn assert_event<E: Event>() {}

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

    const fn as_str(&self) -> &str {
        let (bytes, _) = self.buf.split_at(self.len);
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => "handler stream does not match the event's stream",
        }
    }
}

/// The message of a handler/event stream mismatch, naming both streams.
pub const fn stream_mismatch_message<E: Event>(
    handler_stream: &str,
    handler: &str,
) -> ConstMessage {
    ConstMessage::new()
        .push("handler `")
        .push(handler)
        .push("` reads stream `")
        .push(handler_stream)
        .push("`, but its event `")
        .push(E::NAME)
        .push("` is published to stream `")
        .push(E::STREAM)
        .push("`; set `stream = \"")
        .push(E::STREAM)
        .push("\"`")
}

/// Generated for every handler: its `stream` must be its event's stream.
pub const fn check_handler_stream<E: Event>(message: &ConstMessage, handler_stream: &str) {
    if !str_eq(E::STREAM, handler_stream) {
        panic!("{}", message.as_str());
    }
}
