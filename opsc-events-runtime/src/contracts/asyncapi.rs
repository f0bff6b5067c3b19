//! An AsyncAPI 3.0 document of the registered events and handlers: channels are streams,
//! messages are `(event name, version)` with a JSON Schema payload derived from the shape,
//! operations are a `send` per published event type and a `receive` per handler.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::entry::{RegistryEntry, Role};

/// A component key: AsyncAPI allows `[A-Za-z0-9._-]`; anything else becomes `_`.
fn key(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn fields_schema(fields: &[Value]) -> (Map<String, Value>, Vec<Value>) {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in fields {
        let name = f["name"].as_str().unwrap_or_default().to_owned();
        if !f["optional"].as_bool().unwrap_or(false) {
            required.push(Value::String(name.clone()));
        }
        props.insert(name, json_schema(&f["shape"]));
    }
    (props, required)
}

fn object(fields: &[Value]) -> Value {
    let (props, required) = fields_schema(fields);
    json!({ "type": "object", "properties": props, "required": required })
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The JSON Schema (draft 07, AsyncAPI's default schema format) of a shape in its JSON form
/// (see `shape_json`), as the payload looks once decoded from MessagePack.
pub fn json_schema(shape: &Value) -> Value {
    let int = |min: i128, max: u128| json!({ "type": "integer", "minimum": min, "maximum": max });
    match shape["type"].as_str().unwrap_or_default() {
        "unit" => json!({ "type": "null" }),
        "bool" => json!({ "type": "boolean" }),
        "i8" => int(i8::MIN.into(), 127),
        "i16" => int(i16::MIN.into(), 32_767),
        "i32" => int(i32::MIN.into(), 2_147_483_647),
        "i64" | "i128" => json!({ "type": "integer" }),
        "u8" => int(0, 255),
        "u16" => int(0, 65_535),
        "u32" => int(0, 4_294_967_295),
        "u64" | "u128" => json!({ "type": "integer", "minimum": 0 }),
        "f32" | "f64" => json!({ "type": "number" }),
        "char" => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
        "string" => json!({ "type": "string" }),
        // `anyOf`, not `oneOf`: `null` would match both when the inner schema accepts any value
        // (an opaque type, or an option of an option).
        "option" => json!({ "anyOf": [json_schema(&shape["of"]), { "type": "null" }] }),
        "seq" => json!({ "type": "array", "items": json_schema(&shape["of"]) }),
        "array" => json!({
            "type": "array",
            "items": json_schema(&shape["of"]),
            "minItems": shape["len"],
            "maxItems": shape["len"],
        }),
        "tuple" => {
            let items: Vec<Value> = list(&shape["items"]).iter().map(json_schema).collect();
            let n = items.len();
            json!({ "type": "array", "items": items, "minItems": n, "maxItems": n })
        }
        "map" => json!({ "type": "object", "additionalProperties": json_schema(&shape["value"]) }),
        "struct" => {
            let mut o = object(list(&shape["fields"]));
            o["title"] = shape["name"].clone();
            o
        }
        "newtype" => json_schema(&shape["of"]),
        "enum" => {
            let tagging = &shape["tagging"];
            let variants: Vec<Value> = list(&shape["variants"])
                .iter()
                .map(|v| variant_schema(tagging, v))
                .collect();
            json!({ "title": shape["name"], "oneOf": variants })
        }
        // opaque and anything unknown: any value, named.
        _ => json!({ "description": shape["name"] }),
    }
}

fn content(v: &Value) -> Option<Value> {
    match v["kind"].as_str().unwrap_or_default() {
        "newtype" => Some(json_schema(&v["of"])),
        "tuple" => Some(json_schema(
            &json!({ "type": "tuple", "items": v["items"] }),
        )),
        "struct" => Some(object(list(&v["fields"]))),
        _ => None,
    }
}

fn variant_schema(tagging: &Value, v: &Value) -> Value {
    let name = v["name"].clone();
    match tagging["kind"].as_str().unwrap_or_default() {
        "internal" => {
            let tag = tagging["tag"].as_str().unwrap_or_default().to_owned();
            let mut o = match v["kind"].as_str() {
                Some("struct") => object(list(&v["fields"])),
                _ => json!({ "type": "object", "properties": {}, "required": [] }),
            };
            o["properties"][&tag] = json!({ "const": name });
            if let Some(r) = o["required"].as_array_mut() {
                r.push(Value::String(tag));
            }
            o
        }
        "adjacent" => {
            let tag = tagging["tag"].as_str().unwrap_or_default();
            let c = tagging["content"].as_str().unwrap_or_default();
            match content(v) {
                Some(s) => json!({ "type": "object",
                    "properties": { tag: { "const": name }, c: s }, "required": [tag, c] }),
                None => json!({ "type": "object",
                    "properties": { tag: { "const": name } }, "required": [tag] }),
            }
        }
        _ => match content(v) {
            Some(s) => {
                json!({ "type": "object", "properties": { name.as_str().unwrap_or_default(): s },
                "required": [name], "additionalProperties": false })
            }
            None => json!({ "const": name }),
        },
    }
}

/// The AsyncAPI 3.0 document of `entries` (registry entries, or `Runtime::schemas()`), with
/// `title` and `version` for its `info`, and the key `prefix` for the channel addresses.
pub fn asyncapi(entries: &[RegistryEntry], title: &str, version: &str, prefix: &str) -> Value {
    let mut channels: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut messages = Map::new();
    let mut operations = Map::new();
    let mut sorted: Vec<&RegistryEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| {
        (
            e.stream.clone(),
            e.name.clone(),
            e.version,
            e.role,
            e.field(),
        )
    });
    for e in sorted {
        let msg = key(&format!("{}.v{}", e.name, e.version));
        let stream = key(&e.stream);
        messages.entry(msg.clone()).or_insert_with(|| {
            json!({
                "name": e.name,
                "title": format!("{} v{}", e.name, e.version),
                "contentType": "application/msgpack",
                "payload": json_schema(&e.shape),
                "x-opsc-version": e.version,
                "x-opsc-fingerprint": format!("{:016x}", e.fingerprint),
            })
        });
        channels.entry(stream.clone()).or_default().insert(
            msg.clone(),
            json!({ "$ref": format!("#/components/messages/{msg}") }),
        );
        let channel_ref = json!({ "$ref": format!("#/channels/{stream}") });
        let message_ref = json!([{ "$ref": format!("#/channels/{stream}/messages/{msg}") }]);
        match (&e.role, &e.handler) {
            (Role::Consumer, Some(h)) => {
                operations.insert(
                    key(&format!("receive.{}.{}", h.group, msg)),
                    json!({
                        "action": "receive",
                        "channel": channel_ref,
                        "messages": message_ref,
                        "summary": format!("{} handles {} v{}", h.handler, e.name, e.version),
                        "x-opsc-service": e.service,
                        "x-opsc-group": h.group,
                        "x-opsc-retries": h.retries,
                        "x-opsc-dead-letter": h.dead_letter,
                        "x-opsc-concurrency": h.concurrency,
                        "x-opsc-timeout-ms": h.timeout_ms,
                    }),
                );
            }
            _ => {
                operations
                    .entry(key(&format!("publish.{msg}")))
                    .or_insert_with(|| {
                        json!({
                            "action": "send",
                            "channel": channel_ref,
                            "messages": message_ref,
                            "x-opsc-services": [],
                        })
                    });
                if let Some(list) =
                    operations[&key(&format!("publish.{msg}"))]["x-opsc-services"].as_array_mut()
                    && !list.contains(&json!(e.service))
                {
                    list.push(json!(e.service));
                }
            }
        }
    }
    let channels: Map<String, Value> = channels
        .into_iter()
        .map(|(stream, msgs)| {
            // The address is the stream's exact key. Its `{stream}` is the Redis Cluster hash
            // tag, but in an AsyncAPI address braces mark a parameter, which the channel must
            // define: it is defined with the hash tag itself as its only value, so that the
            // address reads the same before and after substitution.
            let address = format!("{prefix}:{{{stream}}}:events");
            let tag = format!("{{{stream}}}");
            let parameters = json!({ stream.as_str(): {
                "enum": [tag],
                "default": tag,
                "description": "Not a variable: the Redis Cluster hash tag of the stream, braces \
                    included; the address is the stream's key.",
            }});
            (
                stream,
                json!({ "address": address, "parameters": parameters, "messages": msgs }),
            )
        })
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": { "title": title, "version": version },
        "defaultContentType": "application/msgpack",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    })
}

/// The `info.title` of the registry's document.
pub const REGISTRY_TITLE: &str = "opsc-events schema registry";

/// The AsyncAPI 3.0 document of a whole registry, as `opsc asyncapi` writes it: [`asyncapi`]
/// with the title [`REGISTRY_TITLE`] and version `1.0.0`.
pub fn registry_asyncapi(entries: &[RegistryEntry], prefix: &str) -> Value {
    asyncapi(entries, REGISTRY_TITLE, "1.0.0", prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::entry::HandlerPolicy;

    fn entry(role: Role) -> RegistryEntry {
        RegistryEntry {
            service: "api".into(),
            role,
            stream: "assets".into(),
            name: "asset_created".into(),
            version: 1,
            fingerprint: 0xab,
            shape: json!({"type": "struct", "name": "AssetCreated", "fields": [
                {"name": "asset_id", "optional": false, "shape": {"type": "u64"}},
                {"name": "tags", "optional": true, "shape": {"type": "seq", "of": {"type": "string"}}}]}),
            reads: Vec::new(),
            handler: (role == Role::Consumer).then(|| HandlerPolicy {
                handler: "inventory::index".into(),
                group: "inventory.index".into(),
                retries: 5,
                dead_letter: true,
                concurrency: 1,
                timeout_ms: 30_000,
            }),
            last_seen_ms: 0,
        }
    }

    #[test]
    fn streams_are_channels_and_events_are_messages_with_their_fingerprint() {
        let doc = asyncapi(
            &[entry(Role::Producer), entry(Role::Consumer)],
            "t",
            "1",
            "opsconductor",
        );
        assert_eq!(doc["asyncapi"], "3.0.0");
        assert_eq!(
            doc["channels"]["assets"]["address"],
            "opsconductor:{assets}:events"
        );
        let msg = &doc["components"]["messages"]["asset_created.v1"];
        assert_eq!(msg["x-opsc-fingerprint"], "00000000000000ab");
        assert_eq!(msg["payload"]["required"], json!(["asset_id"]));
        assert_eq!(msg["payload"]["properties"]["tags"]["type"], "array");
        let send = &doc["operations"]["publish.asset_created.v1"];
        assert_eq!(send["action"], "send");
        let receive = &doc["operations"]["receive.inventory.index.asset_created.v1"];
        assert_eq!(receive["action"], "receive");
        assert_eq!(receive["x-opsc-group"], "inventory.index");
        assert_eq!(receive["x-opsc-retries"], 5);
        assert_eq!(receive["x-opsc-dead-letter"], true);
    }

    #[test]
    fn enums_follow_their_serde_tagging() {
        let internal = json!({"type": "enum", "name": "E", "tagging": {"kind": "internal", "tag": "t"},
            "variants": [{"name": "a", "kind": "unit"}]});
        let s = json_schema(&internal);
        assert_eq!(s["oneOf"][0]["properties"]["t"]["const"], "a");
        let external = json!({"type": "enum", "name": "E", "tagging": {"kind": "external"},
            "variants": [{"name": "a", "kind": "unit"}, {"name": "b", "kind": "newtype", "of": {"type": "bool"}}]});
        let s = json_schema(&external);
        assert_eq!(s["oneOf"][0]["const"], "a");
        assert_eq!(s["oneOf"][1]["properties"]["b"]["type"], "boolean");
    }
}
