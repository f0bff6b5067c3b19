//! `EventSchema` for std types and, behind features, `uuid`, `chrono`, `time` and `serde_json`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::{EventSchema, Field, IntKind, MapKey, Shape, StructShape};

macro_rules! leaf {
    ($($ty:ty => $shape:expr),* $(,)?) => {
        $(impl EventSchema for $ty {
            const SHAPE: &'static Shape = &$shape;
        })*
    };
}

leaf! {
    () => Shape::Unit,
    bool => Shape::Bool,
    i8 => Shape::Int(IntKind::I8),
    i16 => Shape::Int(IntKind::I16),
    i32 => Shape::Int(IntKind::I32),
    i64 => Shape::Int(IntKind::I64),
    i128 => Shape::Int(IntKind::I128),
    u8 => Shape::Int(IntKind::U8),
    u16 => Shape::Int(IntKind::U16),
    u32 => Shape::Int(IntKind::U32),
    u64 => Shape::Int(IntKind::U64),
    u128 => Shape::Int(IntKind::U128),
    f32 => Shape::F32,
    f64 => Shape::F64,
    char => Shape::Char,
    String => Shape::String,
    str => Shape::String,
    Cow<'_, str> => Shape::String,
    std::net::IpAddr => Shape::Opaque("std::net::IpAddr"),
    std::net::Ipv4Addr => Shape::Opaque("std::net::Ipv4Addr"),
    std::net::Ipv6Addr => Shape::Opaque("std::net::Ipv6Addr"),
    std::net::SocketAddr => Shape::Opaque("std::net::SocketAddr"),
    std::path::PathBuf => Shape::String,
}

impl MapKey for String {}
impl MapKey for str {}
impl MapKey for Box<str> {}
impl MapKey for Arc<str> {}
impl MapKey for Cow<'_, str> {}
impl MapKey for char {}
impl<T: MapKey + ?Sized> MapKey for &T {}

/// `std::time::Duration` is serialized by serde as a struct of `secs` and `nanos`.
impl EventSchema for std::time::Duration {
    const SHAPE: &'static Shape = &Shape::Struct(&StructShape {
        name: "Duration",
        fields: &[
            Field {
                name: "secs",
                shape: u64::SHAPE,
                optional: false,
            },
            Field {
                name: "nanos",
                shape: u32::SHAPE,
                optional: false,
            },
        ],
    });
}

impl<T: EventSchema + ?Sized> EventSchema for &T {
    const SHAPE: &'static Shape = T::SHAPE;
}
impl<T: EventSchema + ?Sized> EventSchema for Box<T> {
    const SHAPE: &'static Shape = T::SHAPE;
}
impl<T: EventSchema + ?Sized> EventSchema for Arc<T> {
    const SHAPE: &'static Shape = T::SHAPE;
}
impl<T: EventSchema> EventSchema for Option<T> {
    const SHAPE: &'static Shape = &Shape::Option(T::SHAPE);
}
impl<T: EventSchema> EventSchema for [T] {
    const SHAPE: &'static Shape = &Shape::Seq(T::SHAPE);
}
impl<T: EventSchema> EventSchema for Vec<T> {
    const SHAPE: &'static Shape = &Shape::Seq(T::SHAPE);
}
impl<T: EventSchema> EventSchema for VecDeque<T> {
    const SHAPE: &'static Shape = &Shape::Seq(T::SHAPE);
}
impl<T: EventSchema, S> EventSchema for HashSet<T, S> {
    const SHAPE: &'static Shape = &Shape::Seq(T::SHAPE);
}
impl<T: EventSchema> EventSchema for BTreeSet<T> {
    const SHAPE: &'static Shape = &Shape::Seq(T::SHAPE);
}
impl<T: EventSchema, const N: usize> EventSchema for [T; N] {
    const SHAPE: &'static Shape = &Shape::Array(T::SHAPE, N);
}
impl<K: MapKey, V: EventSchema, S> EventSchema for HashMap<K, V, S> {
    const SHAPE: &'static Shape = &Shape::Map(K::SHAPE, V::SHAPE);
}
impl<K: MapKey, V: EventSchema> EventSchema for BTreeMap<K, V> {
    const SHAPE: &'static Shape = &Shape::Map(K::SHAPE, V::SHAPE);
}

macro_rules! tuples {
    ($(($($name:ident),+))*) => {
        $(impl<$($name: EventSchema),+> EventSchema for ($($name,)+) {
            const SHAPE: &'static Shape = &Shape::Tuple(&[$($name::SHAPE),+]);
        })*
    };
}

tuples! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
    (A, B, C, D, E, F, G, H, I)
    (A, B, C, D, E, F, G, H, I, J)
    (A, B, C, D, E, F, G, H, I, J, K)
    (A, B, C, D, E, F, G, H, I, J, K, L)
}

#[cfg(feature = "uuid")]
leaf! { uuid::Uuid => Shape::Opaque("uuid") }

#[cfg(feature = "json")]
leaf! {
    serde_json::Value => Shape::Opaque("json"),
    serde_json::Map<String, serde_json::Value> => Shape::Map(&Shape::String, &Shape::Opaque("json")),
}

#[cfg(feature = "chrono")]
leaf! {
    chrono::DateTime<chrono::Utc> => Shape::Opaque("chrono::DateTime<Utc>"),
    chrono::DateTime<chrono::FixedOffset> => Shape::Opaque("chrono::DateTime<FixedOffset>"),
    chrono::NaiveDateTime => Shape::Opaque("chrono::NaiveDateTime"),
    chrono::NaiveDate => Shape::Opaque("chrono::NaiveDate"),
    chrono::NaiveTime => Shape::Opaque("chrono::NaiveTime"),
}

#[cfg(feature = "time")]
leaf! {
    time::OffsetDateTime => Shape::Opaque("time::OffsetDateTime"),
    time::PrimitiveDateTime => Shape::Opaque("time::PrimitiveDateTime"),
    time::Date => Shape::Opaque("time::Date"),
    time::Time => Shape::Opaque("time::Time"),
}
