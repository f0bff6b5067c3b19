//! Reads the `#[serde(...)]` attributes that change the wire form, so that the schema describes
//! what serde really writes, and rejects those that make it unknowable. Serde validates its own
//! attributes; keys that do not affect the schema are skipped.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr};

use crate::case::RenameRule;
use crate::ctxt::{Attr, Ctxt};

#[derive(Default)]
pub(crate) struct Container {
    pub(crate) rename_all: Option<RenameRule>,
    pub(crate) rename_all_fields: Option<RenameRule>,
    pub(crate) tag: Option<String>,
    pub(crate) content: Option<String>,
    pub(crate) transparent: bool,
    pub(crate) default: bool,
}

#[derive(Default)]
pub(crate) struct Field {
    pub(crate) rename: Option<String>,
    pub(crate) skip: bool,
    pub(crate) optional: bool,
}

#[derive(Default)]
pub(crate) struct Variant {
    pub(crate) rename: Option<String>,
    pub(crate) rename_all: Option<RenameRule>,
    pub(crate) skip: bool,
}

const UNTAGGED: &str = "`#[serde(untagged)]` is not supported in events: the variant of an untagged value is guessed from its content, so its schema cannot be known; use the default tagging or `#[serde(tag = \"...\")]`";
const FLATTEN: &str = "`#[serde(flatten)]` is not supported in events: the names and types of flattened fields cannot be known at compile time; declare the fields directly or nest the struct as a named field";
const CONVERT: &str = "makes the schema unknowable: the wire form is another type's; derive `EventSchema` on that type and use it in the event instead";
const WITH: &str = "makes the schema unknowable: the wire form is whatever the function writes; use a newtype that implements `Serialize`, `Deserialize` and `EventSchema`";

/// Consumes the value of a key we do not interpret: `= expr`, `(...)` or nothing.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        let _: TokenStream = content.parse()?;
    }
    Ok(())
}

/// `key = "name"` or `key(serialize = "a", deserialize = "b")`; the two must agree.
fn name_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<String>> {
    if meta.input.peek(syn::Token![=]) {
        let lit: LitStr = meta.value()?.parse()?;
        return Ok(Some(lit.value()));
    }
    let (mut ser, mut de) = (None, None);
    meta.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            ser = Some(lit.value());
        } else if inner.path.is_ident("deserialize") {
            de = Some(lit.value());
        }
        Ok(())
    })?;
    if ser.is_some() && ser == de {
        return Ok(ser);
    }
    cx.error_spanned_by(
        &meta.path,
        "different names for serialization and deserialization make the schema ambiguous; use one name",
    );
    Ok(None)
}

fn rename_rule(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<RenameRule>> {
    let Some(rule) = name_value(cx, meta)? else {
        return Ok(None);
    };
    // An unknown rule is reported by serde itself.
    Ok(RenameRule::from_str(&rule))
}

fn serde_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("serde"))
}

/// Parses the container's serde attributes.
pub(crate) fn container(cx: &Ctxt, attrs: &[Attribute]) -> Container {
    let mut rename_all = Attr::none(cx, "rename_all");
    let mut out = Container::default();
    for attr in serde_attrs(attrs) {
        let res = attr.parse_nested_meta(|meta| {
            let p = &meta.path;
            if p.is_ident("rename_all") {
                if let Some(rule) = rename_rule(cx, &meta)? {
                    rename_all.set(p, rule);
                }
            } else if p.is_ident("rename_all_fields") {
                out.rename_all_fields = rename_rule(cx, &meta)?;
            } else if p.is_ident("tag") {
                out.tag = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if p.is_ident("content") {
                out.content = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if p.is_ident("transparent") {
                out.transparent = true;
            } else if p.is_ident("default") {
                out.default = true;
                skip_value(&meta)?;
            } else if p.is_ident("untagged") {
                cx.error_spanned_by(p, UNTAGGED);
            } else if p.is_ident("from") || p.is_ident("try_from") || p.is_ident("into") {
                let key = p.get_ident().map(ToString::to_string).unwrap_or_default();
                cx.error_spanned_by(p, format!("`#[serde({key})]` {CONVERT}"));
                skip_value(&meta)?;
            } else if p.is_ident("remote") {
                cx.error_spanned_by(p, format!("`#[serde(remote)]` {CONVERT}"));
                skip_value(&meta)?;
            } else if p.is_ident("field_identifier") || p.is_ident("variant_identifier") {
                cx.error_spanned_by(p, "identifier enums cannot be part of an event");
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    out.rename_all = rename_all.get();
    out
}

/// Checks a field's or variant's `with`-family keys; returns true when the key was handled.
fn reject_common(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    let p = &meta.path;
    for key in ["with", "serialize_with", "deserialize_with"] {
        if p.is_ident(key) {
            cx.error_spanned_by(p, format!("`#[serde({key})]` {WITH}"));
            skip_value(meta)?;
            return Ok(true);
        }
    }
    if p.is_ident("untagged") {
        cx.error_spanned_by(p, UNTAGGED);
        return Ok(true);
    }
    Ok(false)
}

/// Parses a field's serde attributes.
pub(crate) fn field(cx: &Ctxt, attrs: &[Attribute]) -> Field {
    let mut rename = Attr::none(cx, "rename");
    let mut out = Field::default();
    for attr in serde_attrs(attrs) {
        let res = attr.parse_nested_meta(|meta| {
            let p = &meta.path;
            if reject_common(cx, &meta)? {
            } else if p.is_ident("rename") {
                if let Some(name) = name_value(cx, &meta)? {
                    rename.set(p, name);
                }
            } else if p.is_ident("skip") || p.is_ident("skip_serializing") || p.is_ident("skip_deserializing") {
                out.skip = true;
            } else if p.is_ident("default") || p.is_ident("skip_serializing_if") {
                out.optional = true;
                skip_value(&meta)?;
            } else if p.is_ident("flatten") {
                cx.error_spanned_by(p, FLATTEN);
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    out.rename = rename.get();
    out
}

/// Parses a variant's serde attributes.
pub(crate) fn variant(cx: &Ctxt, attrs: &[Attribute]) -> Variant {
    let mut rename = Attr::none(cx, "rename");
    let mut out = Variant::default();
    for attr in serde_attrs(attrs) {
        let res = attr.parse_nested_meta(|meta| {
            let p = &meta.path;
            if reject_common(cx, &meta)? {
            } else if p.is_ident("rename") {
                if let Some(name) = name_value(cx, &meta)? {
                    rename.set(p, name);
                }
            } else if p.is_ident("rename_all") {
                out.rename_all = rename_rule(cx, &meta)?;
            } else if p.is_ident("skip") || p.is_ident("skip_serializing") || p.is_ident("skip_deserializing") {
                out.skip = true;
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    out.rename = rename.get();
    out
}
