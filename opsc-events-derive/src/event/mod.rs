//! `#[derive(Event)]` and `#[derive(EventSchema)]`: parse → validate → expand.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::Ctxt;

pub(crate) fn expand_event(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::parse(&cx, &input.attrs);
    valid::item(&cx, input);
    let identity = valid::identity(&cx, input, &attrs);
    let body = ast::body(&cx, input);
    match (cx.check(), body) {
        (None, Some(body)) => {
            let schema = expand::schema_impl(input, &body);
            let event = expand::event_impl(input, &identity, attrs.upcast_from.as_ref());
            quote::quote!(#schema #event)
        }
        (err, _) => {
            let errors = err.map(|e| e.to_compile_error());
            let fallback = expand::fallback(input);
            quote::quote!(#errors #fallback)
        }
    }
}

pub(crate) fn expand_schema(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let body = ast::body(&cx, input);
    match (cx.check(), body) {
        (None, Some(body)) => expand::schema_impl(input, &body),
        (err, _) => err.map(|e| e.to_compile_error()).unwrap_or_default(),
    }
}
