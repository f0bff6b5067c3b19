//! Checks an AsyncAPI document the way a consumer of it would: against the official AsyncAPI
//! 3.0.0 JSON Schema, vendored in `tests/fixtures/` (its source, version and license are in
//! `tests/fixtures/README.md`), and for what that schema cannot express — every `$ref` points
//! at something in the document, an operation's messages are messages of its channel, and
//! every parameter of a channel address is defined. Each message payload must also be a valid
//! JSON Schema (draft 07, AsyncAPI's default schema format).
//!
//! Included by `#[path]` from the tests that need it (tests/asyncapi.rs, tests/contracts_example.rs,
//! opsc-events-cli/tests/cli_schema.rs); no retrieval is enabled, so every reference of the
//! schema resolves inside the vendored file.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::OnceLock;

use serde_json::Value;

/// The vendored schema, verbatim.
pub(crate) const SCHEMA: &str = include_str!("../fixtures/asyncapi-3.0.0.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the vendored schema is JSON");
        jsonschema::draft7::new(&schema).expect("the vendored AsyncAPI schema compiles offline")
    })
}

/// Every `$ref` under `v`, with the JSON pointer of where it is.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push((at.clone(), r)),
                    _ => refs(
                        x,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    ),
                }
            }
        }
        Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                refs(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The parameter names of a channel address: `a.{b}.{c}` has `b` and `c`.
fn address_parameters(address: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = address;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[open + 1..open + len]);
        rest = &rest[open + len + 1..];
    }
    out
}

/// What is wrong with `doc`: one line per problem, empty when it is a valid AsyncAPI 3.0.0
/// document.
pub(crate) fn problems(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = validator()
        .iter_errors(doc)
        .map(|e| format!("schema: at `{}`: {e}", e.instance_path()))
        .collect();

    let mut found = Vec::new();
    refs(doc, String::new(), &mut found);
    for (at, r) in &found {
        match r.strip_prefix('#') {
            Some(pointer) if doc.pointer(pointer).is_some() => {}
            _ => out.push(format!(
                "ref: at `{at}`: `{r}` points at nothing in the document"
            )),
        }
    }

    let empty = serde_json::Map::new();
    let operations = doc["operations"].as_object().unwrap_or(&empty);
    for (name, op) in operations {
        let channel = op["channel"]["$ref"].as_str().unwrap_or_default();
        for m in op["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let r = m["$ref"].as_str().unwrap_or_default();
            if !r.starts_with(&format!("{channel}/messages/")) {
                out.push(format!(
                    "operation `{name}`: message `{r}` is not a message of its channel `{channel}`"
                ));
            }
        }
    }

    let channels = doc["channels"].as_object().unwrap_or(&empty);
    for (name, ch) in channels {
        for p in address_parameters(ch["address"].as_str().unwrap_or_default()) {
            if ch["parameters"].get(p).is_none() {
                out.push(format!(
                    "channel `{name}`: the address parameter `{p}` is not defined in its parameters"
                ));
            }
        }
    }

    let messages = doc["components"]["messages"].as_object().unwrap_or(&empty);
    for (name, m) in messages {
        if let Err(e) = jsonschema::draft7::meta::validate(&m["payload"]) {
            out.push(format!(
                "message `{name}`: the payload is not a JSON Schema: {e}"
            ));
        }
    }
    out
}

/// Panics listing the problems of `doc` (and the document itself) unless it is valid.
pub(crate) fn assert_valid(what: &str, doc: &Value) {
    let found = problems(doc);
    assert!(
        found.is_empty(),
        "{what} is not a valid AsyncAPI 3.0.0 document:\n  {}\n{}",
        found.join("\n  "),
        serde_json::to_string_pretty(doc).unwrap_or_default()
    );
}
