//! Generates the registration of a handler. The user's fn is emitted unchanged; next to it, a
//! hidden block with an `impl Handler` for a unit struct, the compile-time stream check and an
//! `inventory` entry.
//!
//! Every bound the user can get wrong is proved once, spanned on the token to change: the event
//! by `type Event = ...` (on the first parameter's type), each extractor by its
//! `FromContext` call (on its type), the return value by `handler_result` (on the error type).
//! The registration and the stream check are generic over the handler in the runtime, where
//! `H::Event: Event` follows from `H: Handler`, so they prove nothing again.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, ItemFn, PathArguments, ReturnType, Type};

use super::args::{Backoff, Start};
use super::valid::Policy;

/// `::opsc_events::__private` spanned at `span`, so that an error in a call through it is
/// reported there rather than on the attribute.
fn p_at(span: Span) -> TokenStream {
    quote_spanned!(span=> ::opsc_events::__private)
}

fn duration(d: std::time::Duration) -> TokenStream {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    quote!(::core::time::Duration::new(#secs, #nanos))
}

/// Where a wrong return type is reported: `E` of `Result<(), E>` when written so, else the whole
/// return type (a type alias such as `io::Result<()>`, or not a `Result` at all).
fn return_span(output: &ReturnType) -> Option<Span> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let error_type = match &**ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().and_then(|last| {
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let types: Vec<_> = args
                .args
                .iter()
                .filter_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect();
            (last.ident == "Result" && types.len() == 2).then(|| types[1].span())
        }),
        _ => None,
    };
    Some(error_type.unwrap_or_else(|| ty.span()))
}

fn config(policy: &Policy) -> TokenStream {
    let p = p_at(Span::call_site());
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
    quote! {
        #p::HandlerConfig {
            retries: #retries,
            backoff: #backoff,
            dead_letter: #dead_letter,
            concurrency: #concurrency,
            timeout: #timeout,
            claim_after: #claim_after,
            start: #start,
        }
    }
}

pub(crate) fn registration(
    f: &ItemFn,
    policy: &Policy,
    event: &Type,
    extractors: &[Type],
) -> TokenStream {
    let p = p_at(Span::call_site());
    let name = &f.sig.ident;
    let name_str = name.to_string();
    let stream = &policy.stream;
    let group = match &policy.group {
        Some(g) => quote!(::core::option::Option::Some(#g)),
        None => quote!(::core::option::Option::None),
    };
    let event_name = quote!(#event).to_string().replace(' ', "");
    let config = config(policy);

    let pe = p_at(event.span());
    let event_type = quote_spanned!(event.span()=> type Event = #event;);
    let ps = p_at(stream.span());
    let stream_check = quote_spanned! {stream.span()=>
        const _: () = if let ::core::option::Option::Some(message) =
            #ps::stream_mismatch::<__OpscHandler>(#name_str, #stream, #event_name)
        {
            ::core::panic!("{}", message.as_str())
        };
    };
    let args: Vec<_> = (0..extractors.len())
        .map(|i| format_ident!("__opsc_extracted_{}", i))
        .collect();
    let extract = extractors.iter().zip(&args).map(|(ty, arg)| {
        let pt = p_at(ty.span());
        quote_spanned! {ty.span()=>
            let #arg = <#ty as #pt::FromContext>::from_context(&__opsc_ctx)
                .map_err(#pt::CallError::Handler)?;
        }
    });
    let requirements = extractors.iter().map(|ty| {
        let pt = p_at(ty.span());
        quote_spanned! {ty.span()=> <#ty as #pt::FromContext>::requirements(__opsc_out); }
    });
    let convert = match return_span(&f.sig.output) {
        Some(span) => {
            let pr = p_at(span);
            quote_spanned! {span=>
                #pr::handler_result(#pr::HandlerReturn::into_result(__opsc_returned))
            }
        }
        None => quote!(#p::handler_result(#p::HandlerReturn::into_result(__opsc_returned))),
    };
    // Spanned on the fn's name: a future that is not `Send` is reported there.
    let pn = p_at(name.span());
    let future = quote_spanned! {name.span()=>
        impl ::core::future::Future<Output = ::core::result::Result<(), #pn::CallError>>
            + ::core::marker::Send
            + 'static
    };
    let body = quote_spanned! {name.span()=>
        async move {
            let _ = &__opsc_ctx;
            #(#extract)*
            let __opsc_returned = #name(__opsc_event, #(#args),*).await;
            #convert
        }
    };
    quote! {
        #[doc(hidden)]
        const _: () = {
            struct __OpscHandler;

            impl #pe::Handler for __OpscHandler {
                #event_type

                fn call(
                    __opsc_event: <Self as #p::Handler>::Event,
                    __opsc_ctx: #p::Context,
                ) -> #future {
                    #body
                }

                fn requirements(__opsc_out: &mut ::std::vec::Vec<#p::Requirement>) {
                    let _ = &__opsc_out;
                    #(#requirements)*
                }
            }

            #stream_check

            #p::inventory::submit! {
                #p::registration::<__OpscHandler>(
                    #name_str,
                    ::core::module_path!(),
                    #stream,
                    #group,
                    #event_name,
                    #config,
                )
            }
        };
    }
}
