//! Reads the `#[serde(...)]` attributes that change the wire form, so that the schema describes
//! what serde really writes, and rejects those that make it unknowable. Serde validates its own
//! attributes: keys that do not affect the schema are skipped, and malformed or duplicate keys
//! are left to serde to report (reporting them here too would show every such error twice).

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

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

/// A name given as `key = "name"`, or as `key(serialize = "a", deserialize = "b")`, possibly
/// split over several keys; the two names must agree.
#[derive(Default)]
struct NamePair {
    ser: Option<String>,
    de: Option<String>,
    key: Option<syn::Path>,
}

impl NamePair {
    /// Reads one key; on a parse error (serde reports it) the pair is left without its key, so
    /// that no ambiguity is reported.
    fn parse(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        self.key = None;
        if meta.input.peek(syn::Token![=]) {
            let name = meta.value()?.parse::<LitStr>()?.value();
            self.ser = Some(name.clone());
            self.de = Some(name);
        } else {
            meta.parse_nested_meta(|inner| {
                let name = inner.value()?.parse::<LitStr>()?.value();
                if inner.path.is_ident("serialize") {
                    self.ser = Some(name);
                } else if inner.path.is_ident("deserialize") {
                    self.de = Some(name);
                }
                Ok(())
            })?;
        }
        self.key = Some(meta.path.clone());
        Ok(())
    }

    fn finish(self, cx: &Ctxt) -> Option<String> {
        match (self.ser, self.de, self.key) {
            (Some(ser), Some(de), _) if ser == de => Some(ser),
            (_, _, Some(key)) => {
                let shown = quote::quote!(#key).to_string();
                cx.error_spanned_by(
                    &key,
                    format!(
                        "different `serialize` and `deserialize` names make the schema ambiguous; use one name: `{shown} = \"...\"`"
                    ),
                );
                None
            }
            _ => None,
        }
    }

    /// The name as a `rename_all` rule.
    fn finish_rule(self, cx: &Ctxt) -> Option<RenameRule> {
        let rule = RenameRule::from_str(&self.finish(cx)?);
        if rule.is_none() {
            // An unknown rule is reported by serde itself.
            cx.serde_rejects();
        }
        rule
    }
}

/// Calls `f` with each key of the `#[serde(...)]` attributes in `attrs`. A key that serde
/// rejects (malformed, or repeated) is not reported here but noted on `cx`: serde reports it,
/// and the rest of that attribute is skipped.
fn each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    mut f: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    // Keys given once as `key = value` or `key`; `key(serialize = .., deserialize = ..)` may be
    // split over two keys, and `alias` may repeat.
    let mut seen = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let res = attr.parse_nested_meta(|meta| {
            if !meta.input.peek(syn::token::Paren) && !meta.path.is_ident("alias") {
                let key = meta.path.clone();
                if seen.contains(&key) {
                    cx.serde_rejects();
                }
                seen.push(key);
            }
            f(&meta)
        });
        if res.is_err() {
            cx.serde_rejects();
        }
    }
}

/// Parses the container's serde attributes.
pub(crate) fn container(cx: &Ctxt, attrs: &[Attribute]) -> Container {
    let mut out = Container::default();
    let (mut rename_all, mut rename_all_fields) = (NamePair::default(), NamePair::default());
    each_key(cx, attrs, |meta| {
        let p = &meta.path;
        if p.is_ident("rename_all") {
            rename_all.parse(meta)?;
        } else if p.is_ident("rename_all_fields") {
            rename_all_fields.parse(meta)?;
        } else if p.is_ident("tag") {
            out.tag = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if p.is_ident("content") {
            out.content = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if p.is_ident("transparent") {
            out.transparent = true;
        } else if p.is_ident("default") {
            out.default = true;
            skip_value(meta)?;
        } else if p.is_ident("untagged") {
            cx.error_spanned_by(p, UNTAGGED);
        } else if p.is_ident("from") || p.is_ident("try_from") || p.is_ident("into") {
            let key = p.get_ident().map(ToString::to_string).unwrap_or_default();
            cx.error_spanned_by(p, format!("`#[serde({key})]` {CONVERT}"));
            skip_value(meta)?;
        } else if p.is_ident("remote") {
            cx.error_spanned_by(p, format!("`#[serde(remote)]` {CONVERT}"));
            skip_value(meta)?;
        } else if p.is_ident("field_identifier") || p.is_ident("variant_identifier") {
            cx.error_spanned_by(p, "identifier enums cannot be part of an event");
        } else {
            skip_value(meta)?;
        }
        Ok(())
    });
    out.rename_all = rename_all.finish_rule(cx);
    out.rename_all_fields = rename_all_fields.finish_rule(cx);
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
    let mut out = Field::default();
    let mut rename = NamePair::default();
    each_key(cx, attrs, |meta| {
        let p = &meta.path;
        if reject_common(cx, meta)? {
        } else if p.is_ident("rename") {
            rename.parse(meta)?;
        } else if p.is_ident("skip")
            || p.is_ident("skip_serializing")
            || p.is_ident("skip_deserializing")
        {
            out.skip = true;
        } else if p.is_ident("default") || p.is_ident("skip_serializing_if") {
            out.optional = true;
            skip_value(meta)?;
        } else if p.is_ident("flatten") {
            cx.error_spanned_by(p, FLATTEN);
        } else {
            skip_value(meta)?;
        }
        Ok(())
    });
    out.rename = rename.finish(cx);
    out
}

/// Parses a variant's serde attributes.
pub(crate) fn variant(cx: &Ctxt, attrs: &[Attribute]) -> Variant {
    let mut out = Variant::default();
    let (mut rename, mut rename_all) = (NamePair::default(), NamePair::default());
    each_key(cx, attrs, |meta| {
        let p = &meta.path;
        if reject_common(cx, meta)? {
        } else if p.is_ident("rename") {
            rename.parse(meta)?;
        } else if p.is_ident("rename_all") {
            rename_all.parse(meta)?;
        } else if p.is_ident("skip")
            || p.is_ident("skip_serializing")
            || p.is_ident("skip_deserializing")
        {
            out.skip = true;
        } else {
            skip_value(meta)?;
        }
        Ok(())
    });
    out.rename = rename.finish(cx);
    out.rename_all = rename_all.finish_rule(cx);
    out
}
