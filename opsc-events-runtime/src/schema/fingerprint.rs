//! The structural fingerprint, computed in `const` context.
//!
//! The algorithm is documented in `docs/WIRE.md` so that other languages can reproduce it:
//! FNV-1a 64 over length-prefixed tags, child hashes as little-endian `u64`s, struct fields and
//! enum variants combined by a wrapping sum of finalized hashes (so declaration order does not
//! matter), and a splitmix64 finalizer on the result.

use super::{Field, Shape, Tagging, Variant, VariantKind};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

const fn bytes(mut h: u64, b: &[u8]) -> u64 {
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(PRIME);
        i += 1;
    }
    h
}

const fn word(h: u64, v: u64) -> u64 {
    bytes(h, &v.to_le_bytes())
}

/// A string, prefixed by its length so that concatenations cannot collide.
const fn text(h: u64, s: &str) -> u64 {
    bytes(word(h, s.len() as u64), s.as_bytes())
}

const fn tag(t: &str) -> u64 {
    text(OFFSET, t)
}

/// The splitmix64 finalizer: spreads every input bit over the output before sums are taken.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const fn fields(fs: &[Field]) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < fs.len() {
        let h = word(text(tag("field"), fs[i].name), shape(fs[i].shape));
        sum = sum.wrapping_add(mix(h));
        i += 1;
    }
    word(word(tag("fields"), fs.len() as u64), sum)
}

const fn tuple(items: &[&Shape]) -> u64 {
    let mut h = word(tag("tuple"), items.len() as u64);
    let mut i = 0;
    while i < items.len() {
        h = word(h, shape(items[i]));
        i += 1;
    }
    h
}

const fn variant(v: &Variant) -> u64 {
    let h = text(tag("variant"), v.name);
    match v.kind {
        VariantKind::Unit => word(h, tag("unit")),
        VariantKind::Newtype(s) => word(word(h, tag("newtype")), shape(s)),
        VariantKind::Tuple(items) => word(word(h, tag("tuple_variant")), tuple(items)),
        VariantKind::Struct(fs) => word(word(h, tag("struct_variant")), fields(fs)),
    }
}

const fn shape(s: &Shape) -> u64 {
    match *s {
        Shape::Unit => tag("unit"),
        Shape::Bool => tag("bool"),
        Shape::Int(kind) => tag(kind.name()),
        Shape::F32 => tag("f32"),
        Shape::F64 => tag("f64"),
        Shape::Char => tag("char"),
        Shape::String => tag("string"),
        Shape::Option(inner) => word(tag("option"), shape(inner)),
        Shape::Seq(inner) => word(tag("seq"), shape(inner)),
        Shape::Array(inner, len) => word(word(tag("array"), shape(inner)), len as u64),
        Shape::Tuple(items) => tuple(items),
        Shape::Map(k, v) => word(word(tag("map"), shape(k)), shape(v)),
        Shape::Struct(st) => word(tag("struct"), fields(st.fields)),
        Shape::Newtype(_, inner) => shape(inner),
        Shape::Enum(en) => {
            let mut h = match en.tagging {
                Tagging::External => tag("enum_external"),
                Tagging::Internal { tag: t } => text(tag("enum_internal"), t),
                Tagging::Adjacent { tag: t, content } => {
                    text(text(tag("enum_adjacent"), t), content)
                }
            };
            let mut sum = 0u64;
            let mut i = 0;
            while i < en.variants.len() {
                sum = sum.wrapping_add(mix(variant(&en.variants[i])));
                i += 1;
            }
            h = word(h, en.variants.len() as u64);
            word(h, sum)
        }
        Shape::Opaque(name) => text(tag("opaque"), name),
    }
}

/// The fingerprint of a shape: equal for structurally equal shapes, whatever the declaration
/// order of struct fields and enum variants; different (with overwhelming probability) when a
/// wire name, a type or the set of fields changes.
///
/// ```
/// use opsc_events_runtime::schema::{fingerprint, EventSchema};
///
/// const A: u64 = fingerprint(<Vec<String> as EventSchema>::SHAPE);
/// const B: u64 = fingerprint(<Vec<u64> as EventSchema>::SHAPE);
/// assert_ne!(A, B);
/// ```
pub const fn fingerprint(s: &Shape) -> u64 {
    mix(shape(s))
}
