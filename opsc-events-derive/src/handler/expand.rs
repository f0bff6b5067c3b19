//! Generates the registration of a handler. The user's fn is emitted unchanged; next to it, a
//! hidden block with compile-time checks, a type-erased entry point and an `inventory` entry.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use super::args::{Backoff, Start};
use super::valid::Policy;

fn duration(d: std::time::Duration) -> TokenStream {
    let ms = d.as_millis() as u64;
    quote!(::core::time::Duration::from_millis(#ms))
}

pub(crate) fn registration(
    f: &ItemFn,
    policy: &Policy,
    event: &Type,
    extractors: &[Type],
    stream_span: Span,
) -> TokenStream {
    let p = quote!(::opsc_events::__private);
    let name = &f.sig.ident;
    let name_str = name.to_string();
    let stream = &policy.stream;
    let group = match &policy.group {
        Some(g) => quote!(::core::option::Option::Some(#g)),
        None => quote!(::core::option::Option::None),
    };
    let event_name = quote!(#event).to_string().replace(' ', "");
    let backoff = match policy.backoff {
        Backoff::None => quote!(#p::Backoff::None),
        Backoff::Fixed(d) => {
            let d = duration(d);
            quote!(#p::Backoff::Fixed(#d))
        }
        Backoff::Exponential(i, m) => {
            let (i, m) = (duration(i), duration(m));
            quote!(#p::Backoff::Exponential { initial: #i, max: #m })
        }
    };
    let start = match policy.start {
        Start::Latest => quote!(#p::Start::Latest),
        Start::Earliest => quote!(#p::Start::Earliest),
    };
    let (retries, dead_letter, concurrency) =
        (policy.retries, policy.dead_letter, policy.concurrency);
    let timeout = duration(policy.timeout);
    let claim_after = duration(policy.claim_after);

    let event_check = quote_spanned! {event.span()=>
        const _: () = #p::assert_event::<#event>();
    };
    let stream_check = quote_spanned! {stream_span=>
        const _: () = {
            const MESSAGE: #p::ConstMessage = #p::stream_mismatch_message::<#event>(#stream, #name_str);
            #p::check_handler_stream::<#event>(&MESSAGE, #stream)
        };
    };
    let args: Vec<_> = (0..extractors.len())
        .map(|i| format_ident!("__extracted_{}", i))
        .collect();
    let extract = extractors.iter().zip(&args).map(|(ty, arg)| {
        quote_spanned! {ty.span()=>
            let #arg = <#ty as #p::FromContext>::from_context(&ctx).map_err(#p::CallError::Handler)?;
        }
    });
    let requirements = extractors.iter().map(|ty| {
        quote_spanned! {ty.span()=> <#ty as #p::FromContext>::requirements(out); }
    });
    let ret_span = match &f.sig.output {
        ReturnType::Default => f.sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let convert = quote_spanned! {ret_span=>
        #p::IntoHandlerResult::into_handler_result(returned).map_err(#p::CallError::Handler)
    };
    quote! {
        #[doc(hidden)]
        const _: () = {
            #event_check
            #stream_check

            fn __opsc_call(envelope: #p::Envelope, ctx: #p::Context) -> #p::HandlerFuture {
                ::std::boxed::Box::pin(async move {
                    let event = #p::decode_for_handler::<#event>(&envelope)?;
                    ::core::mem::drop(envelope);
                    #(#extract)*
                    let returned = #name(event, #(#args),*).await;
                    #convert
                })
            }

            fn __opsc_requirements(out: &mut ::std::vec::Vec<#p::Requirement>) {
                let _ = &out;
                #(#requirements)*
            }

            #p::inventory::submit! {
                #p::HandlerRegistration {
                    name: #name_str,
                    module_path: ::core::module_path!(),
                    stream: #stream,
                    group: #group,
                    event: #p::EventDescriptor::of::<#event>(#event_name),
                    config: #p::HandlerConfig {
                        retries: #retries,
                        backoff: #backoff,
                        dead_letter: #dead_letter,
                        concurrency: #concurrency,
                        timeout: #timeout,
                        claim_after: #claim_after,
                        start: #start,
                    },
                    requirements: __opsc_requirements,
                    call: __opsc_call,
                }
            }
        };
    }
}
