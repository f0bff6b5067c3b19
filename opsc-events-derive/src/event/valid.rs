//! Checks of `#[derive(Event)]` beyond parsing: the attribute values and the item's form.


use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields};

use super::attr::EventAttrs;
use crate::case::snake_case;
use crate::ctxt::Ctxt;

/// The validated identity of an event.
pub(crate) struct Identity {
    pub(crate) stream: String,
    pub(crate) name: String,
    pub(crate) version: u16,
}

fn stream_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn name_ok(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks that the item can be an event: a struct with named fields, no generics.
pub(crate) fn item(cx: &Ctxt, input: &DeriveInput) {
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "an event cannot have generic parameters or lifetimes: its stream, name and fingerprint must be fixed; use concrete types",
        );
    }
    match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(_) => {}
            Fields::Unnamed(f) => cx.error_spanned_by(
                f,
                "a tuple struct cannot be an event: events are encoded with named fields; give the fields names",
            ),
            Fields::Unit => cx.error_spanned_by(
                &input.ident,
                "a unit struct cannot be an event: events are encoded with named fields; add fields (`struct Name {}` if there are none)",
            ),
        },
        Data::Enum(e) => cx.error_spanned_by(
            e.enum_token,
            "an enum cannot be an event: derive `Event` on a struct with named fields and put the enum in a field (`#[derive(EventSchema)]` on the enum)",
        ),
        Data::Union(u) => cx.error_spanned_by(u.union_token, "a union cannot be an event"),
    }
}

/// Validates the `#[event]` values.
pub(crate) fn identity(cx: &Ctxt, input: &DeriveInput, attrs: &EventAttrs) -> Identity {
    let stream = match &attrs.stream {
        Some(lit) => {
            let v = lit.value();
            if !stream_ok(&v) {
                cx.error_spanned_by(
                    lit,
                    format!("invalid `stream` {v:?}: expected 1 to 64 characters of `a-z`, `0-9`, `_`, `-`"),
                );
            }
            v
        }
        None => {
            let span = attrs
                .attr
                .as_ref()
                .map_or(input.ident.span(), |a| a.span());
            cx.syn_error(syn::Error::new(
                span,
                "missing `stream`: add `#[event(stream = \"...\")]` naming the stream this event is published to",
            ));
            String::new()
        }
    };
    let name = match &attrs.name {
        Some(lit) => {
            let v = lit.value();
            if !name_ok(&v) {
                cx.error_spanned_by(
                    lit,
                    format!("invalid `name` {v:?}: expected 1 to 128 characters of `a-z`, `0-9`, `_`, `.`, `-`"),
                );
            }
            v
        }
        None => {
            let v = snake_case(&input.ident.to_string());
            if !name_ok(&v) {
                cx.error_spanned_by(
                    &input.ident,
                    format!("the default event name {v:?} is invalid: set `name = \"...\"` (1 to 128 of `a-z 0-9 _ . -`)"),
                );
            }
            v
        }
    };
    let version = match &attrs.version {
        Some(lit) => match lit.base10_parse::<u32>() {
            Ok(v) if (1..=65535).contains(&v) => v as u16,
            _ => {
                cx.error_spanned_by(lit, "`version` must be an integer in 1..=65535");
                1
            }
        },
        None => 1,
    };
    Identity {
        stream,
        name,
        version,
    }
}

