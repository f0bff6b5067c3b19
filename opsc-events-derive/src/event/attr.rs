//! Parses `#[event(...)]`.

use syn::{Attribute, LitInt, LitStr, Type};

use crate::ctxt::{Attr, Ctxt};

pub(crate) const KEYS: &str = "`stream`, `name`, `version`, `upcast_from`";

/// The `#[event]` keys as written; validated in `valid.rs`.
pub(crate) struct EventAttrs {
    /// The first `#[event]` attribute, for errors about missing keys.
    pub(crate) attr: Option<Attribute>,
    pub(crate) stream: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitInt>,
    pub(crate) upcast_from: Option<Type>,
}

pub(crate) fn parse(cx: &Ctxt, attrs: &[Attribute]) -> EventAttrs {
    let mut stream = Attr::none(cx, "stream");
    let mut name = Attr::none(cx, "name");
    let mut version = Attr::none(cx, "version");
    let mut upcast_from = Attr::none(cx, "upcast_from");
    let mut first = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
        first.get_or_insert_with(|| attr.clone());
        let res = attr.parse_nested_meta(|meta| {
            let key = &meta.path;
            if key.is_ident("stream") {
                stream.set(key, meta.value()?.parse::<LitStr>()?);
            } else if key.is_ident("name") {
                name.set(key, meta.value()?.parse::<LitStr>()?);
            } else if key.is_ident("version") {
                version.set(key, meta.value()?.parse::<LitInt>()?);
            } else if key.is_ident("upcast_from") {
                upcast_from.set(key, meta.value()?.parse::<Type>()?);
            } else {
                let shown = quote::quote!(#key).to_string().replace(' ', "");
                cx.error_spanned_by(key, format!("unknown `event` key `{shown}`; expected one of {KEYS}"));
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
            }
            Ok(())
        });
        if let Err(e) = res {
            cx.syn_error(e);
        }
    }
    EventAttrs {
        attr: first,
        stream: stream.get(),
        name: name.get(),
        version: version.get(),
        upcast_from: upcast_from.get(),
    }
}
