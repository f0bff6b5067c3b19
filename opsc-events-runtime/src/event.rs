//! The [`Event`] trait and version upcasting.

use std::marker::PhantomData;

use crate::envelope::{DecodeError, decode_data};
use crate::schema::{EventSchema, Schema};

/// A typed event: a payload with a stream, a name, a version and a compile-time fingerprint.
///
/// Implemented by `#[derive(Event)]` (see the `opsc-events` crate): the derive checks the
/// attribute values and computes the fingerprint at compile time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "expected a type with `#[derive(Event)]`",
    note = "add `#[derive(Event)]` and `#[event(stream = \"...\")]` to `{Self}`"
)]
pub trait Event: EventSchema + crate::private::EventSerde + Send + Sync + 'static {
    /// The stream this event is published to (`[a-z0-9_-]{1,64}`).
    const STREAM: &'static str;
    /// The event type name, written to the `event_type` field (`[a-z0-9_.-]{1,128}`).
    const NAME: &'static str;
    /// The schema version, `1..=65535`.
    const VERSION: u16;
    /// The structural fingerprint of [`EventSchema::SHAPE`], written to the `schema` field.
    const FINGERPRINT: u64;
    /// The priority lane events of this type are published to unless
    /// [`PublishOptions::priority`](crate::PublishOptions::priority) says otherwise:
    /// `#[event(priority = "high")]`; [`Priority::Normal`](crate::Priority::Normal) by default.
    const PRIORITY: crate::Priority = crate::Priority::Normal;
    /// The older versions this type accepts: [`NoUpcast`] or [`UpcastVia<Previous>`].
    type Upcast: UpcastChain<Self>;

    /// A value describing the event, its fields and its older versions, for tools.
    fn schema() -> Schema {
        let mut upcast_from = Vec::new();
        Self::Upcast::schemas(&mut upcast_from);
        Schema {
            stream: Self::STREAM,
            name: Self::NAME,
            version: Self::VERSION,
            fingerprint: Self::FINGERPRINT,
            shape: Self::SHAPE,
            upcast_from,
        }
    }
}

/// The chain of older versions an event is decoded from, then converted with `From`.
///
/// Not implemented by hand: `#[event(upcast_from = Previous)]` selects [`UpcastVia<Previous>`],
/// and no `upcast_from` selects [`NoUpcast`].
pub trait UpcastChain<T>: 'static {
    /// Decodes `data` written at `version` into `T`; `None` when no link of the chain has that
    /// version.
    fn decode(version: u16, fingerprint: u64, data: &[u8]) -> Option<Result<T, DecodeError>>;
    /// Appends the `(version, fingerprint)` of every link, newest first.
    fn versions(out: &mut Vec<(u16, u64)>);
    /// Appends the schema of every link, newest first.
    fn schemas(out: &mut Vec<Schema>);
}

/// No older versions.
#[derive(Debug)]
pub enum NoUpcast {}

impl<T> UpcastChain<T> for NoUpcast {
    fn decode(_: u16, _: u64, _: &[u8]) -> Option<Result<T, DecodeError>> {
        None
    }
    fn versions(_: &mut Vec<(u16, u64)>) {}
    fn schemas(_: &mut Vec<Schema>) {}
}

/// Accepts `P` (and whatever `P` accepts) and converts it with `T: From<P>`.
#[derive(Debug)]
pub struct UpcastVia<P>(PhantomData<fn() -> P>);

impl<T, P> UpcastChain<T> for UpcastVia<P>
where
    P: Event,
    T: From<P> + 'static,
{
    fn decode(version: u16, fingerprint: u64, data: &[u8]) -> Option<Result<T, DecodeError>> {
        if version == P::VERSION {
            return Some(if fingerprint == P::FINGERPRINT {
                decode_data::<P>(data).map(T::from)
            } else {
                Err(DecodeError::FingerprintMismatch {
                    event_type: P::NAME.to_owned(),
                    version,
                    expected: P::FINGERPRINT,
                    found: fingerprint,
                })
            });
        }
        P::Upcast::decode(version, fingerprint, data).map(|r| r.map(T::from))
    }

    fn versions(out: &mut Vec<(u16, u64)>) {
        out.push((P::VERSION, P::FINGERPRINT));
        P::Upcast::versions(out);
    }

    fn schemas(out: &mut Vec<Schema>) {
        let mut schema = P::schema();
        // The chain is flattened: P's own older versions follow it in `out`.
        let older = std::mem::take(&mut schema.upcast_from);
        out.push(schema);
        out.extend(older);
    }
}

/// Every `(version, fingerprint)` an event type decodes, its own first.
pub fn known_versions<E: Event>() -> Vec<(u16, u64)> {
    let mut out = vec![(E::VERSION, E::FINGERPRINT)];
    E::Upcast::versions(&mut out);
    out
}
