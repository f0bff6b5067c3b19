//! `#[handler(...)]`: parse → validate → expand. On any error the user's fn is emitted unchanged
//! next to the errors, so the rest of the crate still type-checks.

mod args;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(e.span(), "`#[handler]` applies to an `async fn`");
            let err = e.to_compile_error();
            return quote!(#err #item);
        }
    };
    let cx = Ctxt::new();
    let parsed = args::parse(&cx, args);
    let policy = valid::policy(&cx, &parsed);
    // Present, even with a malformed value (reported): the signature is checked as a batch's.
    let batch = parsed.batch.is_some();
    let signature = valid::signature(&cx, &f, batch);
    match (cx.check(), policy, signature) {
        (None, Some(policy), Some((event, extractors))) => {
            let reg = expand::registration(&f, &policy, &event, &extractors);
            quote!(#f #reg)
        }
        (err, _, _) => {
            let err = err.map(|e| e.to_compile_error());
            quote!(#err #f)
        }
    }
}
