//! Structural schemas of event payloads and their fingerprints.
//!
//! Every type that can appear in an event implements [`EventSchema`], whose associated constant
//! [`EventSchema::SHAPE`] describes how the type looks on the wire (field names after serde
//! renames, field types, enum variants). Shapes are plain `const` data, so the fingerprint of an
//! event ([`fingerprint`]) is computed by the compiler: the same source gives the same fingerprint
//! on every build and platform, and no work is done at run time.
//!
//! Shapes describe values as serde sees them, not as Rust declares them: a newtype struct is its
//! inner value, `Box<T>` and `Arc<T>` are `T`, `&str`, `String` and `Box<str>` are all a string.

mod fingerprint;
mod impls;
mod render;

pub use fingerprint::fingerprint;

/// How a type looks on the wire. Built by `#[derive(EventSchema)]` and by the impls in this crate.
///
/// Shapes are `'static` trees of constants; there is no run-time registration. Recursive types
/// cannot be described (their shape would be infinite): `#[derive(EventSchema)]` on one fails to
/// compile with a cycle error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// `()` (nil on the wire).
    Unit,
    /// `bool`.
    Bool,
    /// A primitive number type.
    Int(IntKind),
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// Any string type.
    String,
    /// `Option<T>`: the value or nil.
    Option(&'static Shape),
    /// A variable-length sequence (`Vec<T>`, `VecDeque<T>`, sets, slices).
    Seq(&'static Shape),
    /// A fixed-length array `[T; N]`.
    Array(&'static Shape, usize),
    /// A tuple, or a tuple struct (serialized as an array); a unit struct is the empty tuple,
    /// since rmp-serde writes it as an empty array.
    Tuple(&'static [&'static Shape]),
    /// A map with string keys.
    Map(&'static Shape, &'static Shape),
    /// A struct with named fields.
    Struct(&'static StructShape),
    /// A newtype struct or a `#[serde(transparent)]` struct: on the wire it is its inner value.
    Newtype(&'static str, &'static Shape),
    /// An enum.
    Enum(&'static EnumShape),
    /// A type defined outside this crate's model whose wire form is fixed by its own serde impl
    /// (for example `uuid`, `chrono::DateTime<Utc>`, `json`). Compared by name.
    Opaque(&'static str),
}

/// The primitive integer types, each a distinct shape (retyping a field changes the fingerprint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // the variants are the Rust types of the same name
pub enum IntKind {
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
}

impl IntKind {
    /// The Rust name of the type, e.g. `u64`.
    pub const fn name(self) -> &'static str {
        match self {
            IntKind::I8 => "i8",
            IntKind::I16 => "i16",
            IntKind::I32 => "i32",
            IntKind::I64 => "i64",
            IntKind::I128 => "i128",
            IntKind::U8 => "u8",
            IntKind::U16 => "u16",
            IntKind::U32 => "u32",
            IntKind::U64 => "u64",
            IntKind::U128 => "u128",
        }
    }
}

/// A struct with named fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructShape {
    /// The Rust type name (for people; not part of the fingerprint).
    pub name: &'static str,
    /// The fields as serialized, in declaration order; skipped fields are absent.
    pub fields: &'static [Field],
}

/// One named field of a struct or struct variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The wire name (after `#[serde(rename)]` / `rename_all`).
    pub name: &'static str,
    /// The field's type.
    pub shape: &'static Shape,
    /// The field may be absent when decoding (`#[serde(default)]`); not part of the fingerprint.
    pub optional: bool,
}

/// An enum: its representation and its variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumShape {
    /// The Rust type name (for people; not part of the fingerprint).
    pub name: &'static str,
    /// How serde writes the variant tag.
    pub tagging: Tagging,
    /// The variants as serialized, in declaration order; skipped variants are absent.
    pub variants: &'static [Variant],
}

/// Serde's enum representations (`untagged` is rejected: its schema cannot be known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    /// The default: `{ "Variant": content }`, unit variants as a plain string.
    External,
    /// `#[serde(tag = "t")]`: the tag is a field of the content.
    Internal {
        /// The tag field's name.
        tag: &'static str,
    },
    /// `#[serde(tag = "t", content = "c")]`.
    Adjacent {
        /// The tag field's name.
        tag: &'static str,
        /// The content field's name.
        content: &'static str,
    },
}

/// One enum variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// The wire name (after `#[serde(rename)]` / `rename_all`).
    pub name: &'static str,
    /// The variant's content.
    pub kind: VariantKind,
}

/// The content of an enum variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantKind {
    /// No content.
    Unit,
    /// One unnamed field.
    Newtype(&'static Shape),
    /// Several unnamed fields.
    Tuple(&'static [&'static Shape]),
    /// Named fields.
    Struct(&'static [Field]),
}

/// A type whose values can be part of an event, with a wire shape known at compile time.
///
/// Implemented here for the primitives, strings, `Option`, `Box`, sequences, arrays, tuples and
/// maps with string keys, and (behind the cargo features of the same names) `uuid::Uuid`,
/// `chrono` and `time` date-times and `serde_json::Value`. Derive it for your own structs and
/// enums with `#[derive(EventSchema)]`.
///
/// ```
/// use opsc_events_runtime::schema::{EventSchema, Shape};
///
/// assert_eq!(*<Vec<u32> as EventSchema>::SHAPE, Shape::Seq(<u32 as EventSchema>::SHAPE));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of an event: it does not implement `EventSchema`",
    label = "this type has no `EventSchema` impl",
    note = "add `#[derive(EventSchema)]` to `{Self}` if it is your type, or wrap it in a newtype that derives `EventSchema`"
)]
pub trait EventSchema {
    /// The wire shape of the type.
    const SHAPE: &'static Shape;
}

/// Types that may be the keys of a map in an event: they serialize as strings.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a map key in an event: keys must be strings",
    label = "the keys of this map are not strings",
    note = "use `String` keys, or a `Vec` of `(key, value)` pairs"
)]
pub trait MapKey: EventSchema {}

/// The complete schema of one event type: identity, fingerprint and payload shape.
///
/// Returned by `Event::schema()`; used by tools to show what a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The stream the event is published to.
    pub stream: &'static str,
    /// The event type name, the `event_type` field on the wire.
    pub name: &'static str,
    /// The schema version.
    pub version: u16,
    /// The structural fingerprint ([`fingerprint`] of [`Schema::shape`]).
    pub fingerprint: u64,
    /// The payload's shape.
    pub shape: &'static Shape,
    /// Older versions this event is upcast from, newest first.
    pub upcast_from: Vec<Schema>,
}

impl Schema {
    /// The fingerprint as it appears on the wire: 16 lowercase hex digits.
    pub fn fingerprint_hex(&self) -> String {
        format!("{:016x}", self.fingerprint)
    }
}
