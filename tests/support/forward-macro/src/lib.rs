//! `forward_handler!(fn_name, EventType, "stream")`: writes a `#[handler]` fn whose name, event
//! type and stream are the caller's tokens (spans kept) and whose parameters, extractor types,
//! attribute and body are the macro's own tokens (`Span::mixed_site()`). The fn counts its calls
//! in `CALLS`, which the caller declares.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token, Type, parse_macro_input};

struct Input {
    name: Ident,
    event: Type,
    stream: LitStr,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = input.parse()?;
        input.parse::<Token![,]>()?;
        let event = input.parse()?;
        input.parse::<Token![,]>()?;
        let stream = input.parse()?;
        Ok(Input {
            name,
            event,
            stream,
        })
    }
}

/// See the crate documentation.
#[proc_macro]
pub fn forward_handler(input: TokenStream) -> TokenStream {
    let Input {
        name,
        event,
        stream,
    } = parse_macro_input!(input as Input);
    let own = Span::mixed_site();
    quote_spanned! {own=>
        #[::opsc_events::handler(stream = #stream, start = "earliest")]
        async fn #name(
            event: #event,
            ctx: ::opsc_events::prelude::Context,
            again: ::opsc_events::prelude::Context,
        ) {
            let _ = (event, again);
            assert!(ctx.attempt() >= 1);
            CALLS.fetch_add(1, ::std::sync::atomic::Ordering::SeqCst);
        }
    }
    .into()
}

/// The same with every token of the macro at the call site (as most macros write them).
#[proc_macro]
pub fn forward_handler_call_site(input: TokenStream) -> TokenStream {
    let Input {
        name,
        event,
        stream,
    } = parse_macro_input!(input as Input);
    quote! {
        #[::opsc_events::handler(stream = #stream, start = "earliest")]
        async fn #name(event: #event, ctx: ::opsc_events::prelude::Context) {
            let _ = event;
            assert!(ctx.attempt() >= 1);
            CALLS_CALL_SITE.fetch_add(1, ::std::sync::atomic::Ordering::SeqCst);
        }
    }
    .into()
}
