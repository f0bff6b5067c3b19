//! Parses `#[event(...)]`.
//!
//! A key whose value is malformed is reported on the value and recorded as present (with no
//! value), so that parsing goes on to the next key and no "missing key" error follows.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitInt, LitStr, Type};

use crate::ctxt::{Attr, Ctxt};
use crate::krate::{parse_crate, ungroup};

pub(crate) const KEYS: &str = "`stream`, `name`, `version`, `upcast_from`, `priority`, `crate`";

/// The `#[event]` keys as written; validated in `valid.rs`. For each key: `None` when absent,
/// `Some(None)` when present with a malformed value (already reported).
pub(crate) struct EventAttrs {
    /// The first `#[event]` attribute, for errors about missing keys.
    pub(crate) attr: Option<Attribute>,
    pub(crate) stream: Option<Option<LitStr>>,
    pub(crate) name: Option<Option<LitStr>>,
    pub(crate) version: Option<Option<LitInt>>,
    pub(crate) upcast_from: Option<Option<Type>>,
    /// `priority = "high"`: the default priority lane.
    pub(crate) priority: Option<Option<LitStr>>,
    /// `crate = "path"`: where generated code finds the facade.
    pub(crate) krate: Option<Option<syn::Path>>,
    /// An `#[event]` attribute could not be parsed to its end (reported): keys after the error
    /// are unknown, so none is reported missing.
    pub(crate) malformed: bool,
}

/// Consumes `(...)` after a key, if any.
fn skip_parens(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        let _: TokenStream = content.parse()?;
    }
    Ok(())
}

/// The `= value` of `key`, as an expression without the invisible groups a `macro_rules!`
/// fragment adds; `None` (reported on the key) when there is none.
fn value(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
) -> syn::Result<Option<Expr>> {
    if meta.input.peek(syn::Token![=]) {
        let input = meta.value()?;
        if !input.is_empty() && !input.peek(syn::Token![,]) {
            return Ok(Some(ungroup(input.parse()?)));
        }
    } else {
        skip_parens(meta)?;
    }
    cx.error_spanned_by(
        &meta.path,
        format!("`{key}` needs a value: `{key} = {example}`"),
    );
    Ok(None)
}

fn lit_str(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
) -> syn::Result<Option<LitStr>> {
    Ok(match value(cx, meta, key, example)? {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Some(s),
        Some(other) => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be a string literal: `{key} = {example}`"),
            );
            None
        }
        None => None,
    })
}

fn lit_int(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
) -> syn::Result<Option<LitInt>> {
    Ok(match value(cx, meta, key, example)? {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        })) => Some(i),
        Some(other) => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be an integer literal in 1..=65535: `{key} = {example}`"),
            );
            None
        }
        None => None,
    })
}

/// `upcast_from = Type`; a string literal is reported with the type it probably names.
fn type_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Type>> {
    if meta.input.peek(syn::Token![=]) {
        let input = meta.value()?;
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            cx.error_spanned_by(
                &lit,
                format!(
                    "`upcast_from` takes a type, not a string: `upcast_from = {}`",
                    lit.value()
                ),
            );
            return Ok(None);
        }
        if !input.is_empty() && !input.peek(syn::Token![,]) {
            return Ok(Some(input.parse()?));
        }
    } else {
        skip_parens(meta)?;
    }
    cx.error_spanned_by(
        &meta.path,
        "`upcast_from` needs a value: `upcast_from = OlderVersion`, the type of the previous version",
    );
    Ok(None)
}

pub(crate) fn parse(cx: &Ctxt, attrs: &[Attribute]) -> EventAttrs {
    let mut stream = Attr::none(cx, "stream");
    let mut name = Attr::none(cx, "name");
    let mut version = Attr::none(cx, "version");
    let mut upcast_from = Attr::none(cx, "upcast_from");
    let mut priority = Attr::none(cx, "priority");
    let mut krate = Attr::none(cx, "crate");
    let mut first = None;
    let mut malformed = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
        first.get_or_insert_with(|| attr.clone());
        let res = attr.parse_nested_meta(|meta| {
            let key = &meta.path;
            if key.is_ident("stream") {
                stream.set(key, lit_str(cx, &meta, "stream", "\"assets\"")?);
            } else if key.is_ident("name") {
                name.set(key, lit_str(cx, &meta, "name", "\"asset_created\"")?);
            } else if key.is_ident("version") {
                version.set(key, lit_int(cx, &meta, "version", "2")?);
            } else if key.is_ident("upcast_from") {
                upcast_from.set(key, type_value(cx, &meta)?);
            } else if key.is_ident("priority") {
                priority.set(key, lit_str(cx, &meta, "priority", "\"high\"")?);
            } else if key.is_ident("crate") {
                let lit = lit_str(cx, &meta, "crate", "\"my_events\"")?;
                krate.set(key, lit.and_then(|lit| parse_crate(cx, &lit)));
            } else {
                let shown = quote::quote!(#key).to_string().replace(' ', "");
                cx.error_spanned_by(
                    key,
                    format!("unknown `event` key `{shown}`; expected one of {KEYS}"),
                );
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                }
                skip_parens(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
            malformed = true;
        }
    }
    EventAttrs {
        attr: first,
        stream: stream.get(),
        name: name.get(),
        version: version.get(),
        upcast_from: upcast_from.get(),
        priority: priority.get(),
        krate: krate.get(),
        malformed,
    }
}

/// Parses `#[event_schema(crate = "path")]` of `#[derive(EventSchema)]`, its only key.
pub(crate) fn parse_schema(cx: &Ctxt, attrs: &[Attribute]) -> Option<syn::Path> {
    let mut krate = Attr::none(cx, "crate");
    for attr in attrs.iter().filter(|a| a.path().is_ident("event_schema")) {
        let res = attr.parse_nested_meta(|meta| {
            let key = &meta.path;
            if key.is_ident("crate") {
                let lit = lit_str(cx, &meta, "crate", "\"my_events\"")?;
                krate.set(key, lit.and_then(|lit| parse_crate(cx, &lit)));
            } else {
                let shown = quote::quote!(#key).to_string().replace(' ', "");
                cx.error_spanned_by(
                    key,
                    format!("unknown `event_schema` key `{shown}`; expected `crate`"),
                );
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                }
                skip_parens(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    krate.get().flatten()
}
