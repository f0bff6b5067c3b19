//! `#[derive(Event)]` and `#[derive(EventSchema)]`: parse → validate → expand.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::Ctxt;
use crate::krate::CratePath;

pub(crate) fn expand_event(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let attrs = attr::parse(&cx, &input.attrs);
    let krate = CratePath::new(attrs.krate.clone().flatten());
    valid::item(&cx, input);
    let identity = valid::identity(&cx, input, &attrs);
    let body = ast::body(&cx, input);
    if let Some(body) = &body {
        valid::not_recursive(&cx, input, body);
    }
    // When serde rejects its attributes it derives nothing: do not also report the missing impls.
    let check_serde = !cx.serde_rejected();
    match (cx.check(), body) {
        (None, Some(body)) => {
            let schema = expand::schema_impl(&krate, input, &body);
            let upcast_from = attrs.upcast_from.as_ref().and_then(Option::as_ref);
            let event = expand::event_impl(&krate, input, &identity, upcast_from, check_serde);
            quote::quote!(#schema #event)
        }
        (err, _) => {
            let errors = err.map(|e| e.to_compile_error());
            let fallback = expand::fallback(&krate, input);
            quote::quote!(#errors #fallback)
        }
    }
}

pub(crate) fn expand_schema(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let krate = CratePath::new(attr::parse_schema(&cx, &input.attrs));
    let body = ast::body(&cx, input);
    if let Some(body) = &body {
        valid::not_recursive(&cx, input, body);
    }
    match (cx.check(), body) {
        (None, Some(body)) => expand::schema_impl(&krate, input, &body),
        (err, _) => {
            let errors = err.map(|e| e.to_compile_error());
            let fallback = expand::schema_fallback(&krate, input);
            quote::quote!(#errors #fallback)
        }
    }
}
