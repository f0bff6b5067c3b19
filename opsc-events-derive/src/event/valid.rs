//! Checks of `#[derive(Event)]` beyond parsing: the attribute values and the item's form.

use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, PathArguments, Type};

use super::ast::{self, Body, VariantKind};
use super::attr::EventAttrs;
use crate::case::snake_case;
use crate::ctxt::Ctxt;

/// The validated identity of an event.
pub(crate) struct Identity {
    pub(crate) stream: String,
    pub(crate) name: String,
    pub(crate) version: u16,
    /// The `Priority` variant, e.g. `High`; `None` when not set (the trait's default).
    pub(crate) priority: Option<&'static str>,
}

fn stream_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn name_ok(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Checks that the item can be an event: a struct with named fields, no generics.
pub(crate) fn item(cx: &Ctxt, input: &DeriveInput) {
    let generics = &input.generics;
    if generics.type_params().next().is_some() || generics.const_params().next().is_some() {
        cx.error_spanned_by(
            generics,
            "an event cannot be generic: its stream, name and fingerprint are fixed at compile time; use concrete field types",
        );
    } else if generics.lifetimes().next().is_some() {
        cx.error_spanned_by(
            generics,
            "an event cannot have lifetime parameters: events are decoded into owned values; use owned field types (`String`, not `&str`)",
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
        Data::Union(u) => cx.error_spanned_by(
            u.union_token,
            "a union cannot be an event: derive `Event` on a struct with named fields",
        ),
    }
}

/// Validates the `#[event]` values. Malformed ones are reported and replaced by placeholders.
pub(crate) fn identity(cx: &Ctxt, input: &DeriveInput, attrs: &EventAttrs) -> Identity {
    let stream = match &attrs.stream {
        Some(Some(lit)) => {
            let v = lit.value();
            if !stream_ok(&v) {
                cx.error_spanned_by(
                    lit,
                    format!("invalid `stream` {v:?}: expected 1 to 64 characters of `a-z`, `0-9`, `_`, `-`"),
                );
            }
            v
        }
        Some(None) => String::new(),
        None if attrs.malformed => String::new(),
        None => {
            match &attrs.attr {
                Some(attr) => cx.error_spanned_by(
                    attr,
                    "missing `stream` key: add `stream = \"...\"` to `#[event(...)]`, naming the stream this event is published to",
                ),
                None => cx.error_spanned_by(
                    &input.ident,
                    "missing `#[event(stream = \"...\")]`: an event must name the stream it is published to",
                ),
            }
            String::new()
        }
    };
    let name = match &attrs.name {
        Some(Some(lit)) => {
            let v = lit.value();
            if !name_ok(&v) {
                cx.error_spanned_by(
                    lit,
                    format!("invalid `name` {v:?}: expected 1 to 128 characters of `a-z`, `0-9`, `_`, `.`, `-`"),
                );
            }
            v
        }
        Some(None) => String::new(),
        None => {
            let v = snake_case(&input.ident.to_string());
            if !name_ok(&v) {
                cx.error_spanned_by(
                    &input.ident,
                    format!(
                        "the default event name {v:?} is invalid: set `name = \"...\"` (1 to 128 characters of `a-z`, `0-9`, `_`, `.`, `-`)"
                    ),
                );
            }
            v
        }
    };
    let version = match &attrs.version {
        Some(Some(lit)) => match lit.base10_parse::<u16>() {
            Ok(v) if v >= 1 => v,
            _ => {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "invalid `version` {}: expected an integer in 1..=65535",
                        lit.base10_digits()
                    ),
                );
                1
            }
        },
        Some(None) | None => 1,
    };
    let priority = match &attrs.priority {
        Some(Some(lit)) => {
            let v = lit.value();
            let variant = match v.as_str() {
                "low" => Some("Low"),
                "normal" => Some("Normal"),
                "high" => Some("High"),
                "critical" => Some("Critical"),
                _ => None,
            };
            if variant.is_none() {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "invalid `priority` {v:?}: expected one of `\"low\"`, `\"normal\"`, `\"high\"`, `\"critical\"`"
                    ),
                );
            }
            variant
        }
        Some(None) | None => None,
    };
    Identity {
        stream,
        name,
        version,
        priority,
    }
}

/// The types of the item's serialized fields.
fn field_types<'a>(body: &Body<'a>) -> Vec<&'a Type> {
    let named = |fs: &[ast::Field<'a>]| fs.iter().map(|f| f.ty).collect::<Vec<_>>();
    match body {
        Body::Named(fs) => named(fs),
        Body::Newtype(ty) => vec![*ty],
        Body::Tuple(ts) => ts.clone(),
        Body::Unit => Vec::new(),
        Body::Enum(_, vs) => vs
            .iter()
            .flat_map(|v| match &v.kind {
                VariantKind::Unit => Vec::new(),
                VariantKind::Newtype(ty) => vec![*ty],
                VariantKind::Tuple(ts) => ts.clone(),
                VariantKind::Struct(fs) => named(fs),
            })
            .collect(),
    }
}

/// The first place `ty` names the item itself, as `Self` or by its name.
fn self_mention<'a>(ty: &'a Type, ident: &Ident) -> Option<&'a Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            if p.path.segments.len() == 1
                && let Some(seg) = p.path.segments.first()
                && (seg.ident == *ident || seg.ident == "Self")
            {
                return Some(&seg.ident);
            }
            p.path.segments.iter().find_map(|seg| match &seg.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Type(t) => self_mention(t, ident),
                    _ => None,
                }),
                _ => None,
            })
        }
        Type::Array(a) => self_mention(&a.elem, ident),
        Type::Slice(s) => self_mention(&s.elem, ident),
        Type::Reference(r) => self_mention(&r.elem, ident),
        Type::Paren(p) => self_mention(&p.elem, ident),
        Type::Group(g) => self_mention(&g.elem, ident),
        Type::Tuple(t) => t.elems.iter().find_map(|t| self_mention(t, ident)),
        _ => None,
    }
}

/// Rejects a type that contains itself: its shape would be infinite, which the compiler reports
/// as an obscure query cycle. Only direct recursion is seen here; a cycle through another type
/// is still the compiler's cycle error.
pub(crate) fn not_recursive(cx: &Ctxt, input: &DeriveInput, body: &Body<'_>) {
    for ty in field_types(body) {
        if let Some(mention) = self_mention(ty, &input.ident) {
            cx.error_spanned_by(
                mention,
                format!(
                    "`{}` contains itself, so its schema would be infinite: a recursive type cannot be part of an event; flatten it (for a tree, a `Vec` of nodes that refer to their parent by id)",
                    input.ident
                ),
            );
        }
    }
}
