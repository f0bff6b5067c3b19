//! The item as serde sees it: wire names after renames, skipped fields removed.

use syn::{Data, DeriveInput, Fields, Type};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;
use crate::serde_attr;

pub(crate) struct Field<'a> {
    pub(crate) wire: String,
    pub(crate) ty: &'a Type,
    pub(crate) optional: bool,
}

pub(crate) enum VariantKind<'a> {
    Unit,
    Newtype(&'a Type),
    Tuple(Vec<&'a Type>),
    Struct(Vec<Field<'a>>),
}

pub(crate) struct Variant<'a> {
    pub(crate) wire: String,
    pub(crate) kind: VariantKind<'a>,
}

pub(crate) enum Tagging {
    External,
    Internal(String),
    Adjacent(String, String),
}

pub(crate) enum Body<'a> {
    Named(Vec<Field<'a>>),
    /// A newtype struct or a `#[serde(transparent)]` one.
    Newtype(&'a Type),
    Tuple(Vec<&'a Type>),
    Unit,
    Enum(Tagging, Vec<Variant<'a>>),
}

/// Removes `r#` from a raw identifier, as serde does for wire names.
fn unraw(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

fn named_fields<'a>(
    cx: &Ctxt,
    fields: &'a syn::FieldsNamed,
    rule: Option<RenameRule>,
    all_optional: bool,
) -> Vec<Field<'a>> {
    let mut out = Vec::new();
    for f in &fields.named {
        let attrs = serde_attr::field(cx, &f.attrs);
        if attrs.skip {
            continue;
        }
        let Some(ident) = &f.ident else { continue };
        let wire = attrs.rename.unwrap_or_else(|| {
            let raw = unraw(ident);
            rule.map_or(raw.clone(), |r| r.apply_to_field(&raw))
        });
        out.push(Field {
            wire,
            ty: &f.ty,
            optional: attrs.optional || all_optional,
        });
    }
    out
}

fn unnamed<'a>(cx: &Ctxt, fields: &'a syn::FieldsUnnamed) -> Vec<&'a Type> {
    fields
        .unnamed
        .iter()
        .filter(|f| !serde_attr::field(cx, &f.attrs).skip)
        .map(|f| &f.ty)
        .collect()
}

/// Reads the item's body; `None` for unions (reported here).
pub(crate) fn body<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Option<Body<'a>> {
    let container = serde_attr::container(cx, &input.attrs);
    match &input.data {
        Data::Struct(s) => {
            let body = match &s.fields {
                Fields::Named(named) => Body::Named(named_fields(
                    cx,
                    named,
                    container.rename_all,
                    container.default,
                )),
                Fields::Unnamed(fields) => {
                    let mut types = unnamed(cx, fields);
                    if types.len() == 1 && fields.unnamed.len() == 1 {
                        Body::Newtype(types.remove(0))
                    } else {
                        Body::Tuple(types)
                    }
                }
                Fields::Unit => Body::Unit,
            };
            if container.transparent {
                let inner = match &body {
                    Body::Named(fs) if fs.len() == 1 => Some(fs[0].ty),
                    Body::Newtype(ty) => Some(*ty),
                    Body::Tuple(ts) if ts.len() == 1 => Some(ts[0]),
                    _ => None, // serde reports the error
                };
                if let Some(ty) = inner {
                    return Some(Body::Newtype(ty));
                }
            }
            Some(body)
        }
        Data::Enum(e) => {
            let tagging = match (container.tag, container.content) {
                (Some(tag), Some(content)) => Tagging::Adjacent(tag, content),
                (Some(tag), None) => Tagging::Internal(tag),
                _ => Tagging::External,
            };
            let mut variants = Vec::new();
            for v in &e.variants {
                let attrs = serde_attr::variant(cx, &v.attrs);
                if attrs.skip {
                    continue;
                }
                let wire = attrs.rename.unwrap_or_else(|| {
                    let raw = unraw(&v.ident);
                    container
                        .rename_all
                        .map_or(raw.clone(), |r| r.apply_to_variant(&raw))
                });
                let kind = match &v.fields {
                    Fields::Unit => VariantKind::Unit,
                    Fields::Unnamed(fields) => {
                        let mut types = unnamed(cx, fields);
                        if types.len() == 1 && fields.unnamed.len() == 1 {
                            VariantKind::Newtype(types.remove(0))
                        } else {
                            VariantKind::Tuple(types)
                        }
                    }
                    Fields::Named(named) => {
                        let rule = attrs.rename_all.or(container.rename_all_fields);
                        VariantKind::Struct(named_fields(cx, named, rule, false))
                    }
                };
                variants.push(Variant { wire, kind });
            }
            Some(Body::Enum(tagging, variants))
        }
        Data::Union(u) => {
            cx.error_spanned_by(u.union_token, "unions cannot be part of an event");
            None
        }
    }
}
