//! The JSON form of a [`Shape`], written to the schema registry and the lock file so that tools
//! in any language can read what an event looks like (the layout is specified in
//! `docs/CONTRACTS.md`).

use serde_json::{Value, json};

use crate::schema::{Field, Shape, Tagging, VariantKind};

fn fields(fs: &[Field]) -> Value {
    Value::Array(
        fs.iter()
            .map(
                |f| json!({ "name": f.name, "optional": f.optional, "shape": shape_json(f.shape) }),
            )
            .collect(),
    )
}

fn items(items: &[&Shape]) -> Value {
    Value::Array(items.iter().map(|s| shape_json(s)).collect())
}

/// The JSON form of `shape`: an object whose `type` says what it is (`unit`, `bool`, an integer
/// type such as `u64`, `f32`, `f64`, `char`, `string`, `option`, `seq`, `array`, `tuple`, `map`,
/// `struct`, `newtype`, `enum`, `opaque`).
///
/// ```
/// use opsc_events_runtime::contracts::shape_json;
/// use opsc_events_runtime::schema::EventSchema;
///
/// let json = shape_json(<Option<u32> as EventSchema>::SHAPE);
/// assert_eq!(json.to_string(), r#"{"of":{"type":"u32"},"type":"option"}"#);
/// ```
pub fn shape_json(shape: &Shape) -> Value {
    match shape {
        Shape::Unit => json!({ "type": "unit" }),
        Shape::Bool => json!({ "type": "bool" }),
        Shape::Int(k) => json!({ "type": k.name() }),
        Shape::F32 => json!({ "type": "f32" }),
        Shape::F64 => json!({ "type": "f64" }),
        Shape::Char => json!({ "type": "char" }),
        Shape::String => json!({ "type": "string" }),
        Shape::Option(s) => json!({ "type": "option", "of": shape_json(s) }),
        Shape::Seq(s) => json!({ "type": "seq", "of": shape_json(s) }),
        Shape::Array(s, n) => json!({ "type": "array", "of": shape_json(s), "len": n }),
        Shape::Tuple(ts) => json!({ "type": "tuple", "items": items(ts) }),
        Shape::Map(k, v) => json!({ "type": "map", "key": shape_json(k), "value": shape_json(v) }),
        Shape::Struct(s) => json!({ "type": "struct", "name": s.name, "fields": fields(s.fields) }),
        Shape::Newtype(name, s) => json!({ "type": "newtype", "name": name, "of": shape_json(s) }),
        Shape::Enum(e) => {
            let tagging = match e.tagging {
                Tagging::External => json!({ "kind": "external" }),
                Tagging::Internal { tag } => json!({ "kind": "internal", "tag": tag }),
                Tagging::Adjacent { tag, content } => {
                    json!({ "kind": "adjacent", "tag": tag, "content": content })
                }
            };
            let variants: Vec<Value> = e
                .variants
                .iter()
                .map(|v| match v.kind {
                    VariantKind::Unit => json!({ "name": v.name, "kind": "unit" }),
                    VariantKind::Newtype(s) => {
                        json!({ "name": v.name, "kind": "newtype", "of": shape_json(s) })
                    }
                    VariantKind::Tuple(ts) => {
                        json!({ "name": v.name, "kind": "tuple", "items": items(ts) })
                    }
                    VariantKind::Struct(fs) => {
                        json!({ "name": v.name, "kind": "struct", "fields": fields(fs) })
                    }
                })
                .collect();
            json!({ "type": "enum", "name": e.name, "tagging": tagging, "variants": variants })
        }
        Shape::Opaque(name) => json!({ "type": "opaque", "name": name }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{EnumShape, StructShape, Variant};

    #[test]
    fn a_struct_lists_its_wire_fields_with_their_shapes() {
        const S: Shape = Shape::Struct(&StructShape {
            name: "AssetCreated",
            fields: &[
                Field {
                    name: "asset_id",
                    shape: &Shape::Int(crate::schema::IntKind::U64),
                    optional: false,
                },
                Field {
                    name: "tags",
                    shape: &Shape::Seq(&Shape::String),
                    optional: true,
                },
            ],
        });
        assert_eq!(
            shape_json(&S),
            json!({"type": "struct", "name": "AssetCreated", "fields": [
                {"name": "asset_id", "optional": false, "shape": {"type": "u64"}},
                {"name": "tags", "optional": true, "shape": {"type": "seq", "of": {"type": "string"}}},
            ]})
        );
    }

    #[test]
    fn an_enum_carries_its_tagging_and_variants() {
        const E: Shape = Shape::Enum(&EnumShape {
            name: "State",
            tagging: Tagging::Adjacent {
                tag: "t",
                content: "c",
            },
            variants: &[
                Variant {
                    name: "up",
                    kind: VariantKind::Unit,
                },
                Variant {
                    name: "down",
                    kind: VariantKind::Newtype(&Shape::String),
                },
            ],
        });
        assert_eq!(
            shape_json(&E),
            json!({"type": "enum", "name": "State",
            "tagging": {"kind": "adjacent", "tag": "t", "content": "c"},
            "variants": [
                {"name": "up", "kind": "unit"},
                {"name": "down", "kind": "newtype", "of": {"type": "string"}},
            ]})
        );
    }
}
