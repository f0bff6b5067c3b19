//! Items the generated code of `opsc-events-derive` uses, re-exported by the facade as
//! `::opsc_events::__private`. Not a public API: no stability guarantee.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::event::{Event, NoUpcast, UpcastVia};
pub use crate::schema::{
    EnumShape, EventSchema, Field, IntKind, Shape, StructShape, Tagging, Variant, VariantKind,
    fingerprint,
};

/// Checks, with a readable message, that an event type can be serialized and deserialized.
#[diagnostic::on_unimplemented(
    message = "event `{Self}` must implement `Serialize` and `Deserialize`",
    label = "events are written and read with serde",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}`"
)]
pub trait EventSerde: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> EventSerde for T {}

/// Generated for every `#[derive(Event)]`: fails to compile with the message above.
pub const fn assert_event_serde<T: EventSerde>() {}

/// Checks that `T: From<P>` for `#[event(upcast_from = P)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be upcast from `{P}`",
    label = "`upcast_from` needs a conversion",
    note = "add `impl From<{P}> for {Self}`"
)]
pub trait UpcastFrom<P> {}
impl<T: From<P>, P> UpcastFrom<P> for T {}

/// Generated for `#[event(upcast_from = P)]`.
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

/// The `upcast_from` rules, checked at compile time: the older type is the same event (same
/// stream and name) at a lower version.
pub const fn check_upcast<P: Event, T: Event>() {
    if !str_eq(P::STREAM, T::STREAM) {
        panic!("`upcast_from` names an event of another stream; it must be an older version of this event");
    }
    if !str_eq(P::NAME, T::NAME) {
        panic!("`upcast_from` names an event with another `name`; give the older version the same `name`");
    }
    if P::VERSION >= T::VERSION {
        panic!("`upcast_from` names an event whose `version` is not below this event's `version`");
    }
}
