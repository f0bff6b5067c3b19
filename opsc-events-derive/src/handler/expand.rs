//! Generates the registration of a handler. The user's fn is emitted unchanged; next to it, a
//! hidden block with an `impl Handler` for a unit struct, the compile-time stream check and an
//! `inventory` entry.
//!
//! Every bound the user can get wrong is proved once, spanned on the token to change: the event
//! by `type Event = ...` (on the first parameter's type), each extractor by its
//! `FromContext` call (on its type), the return value by `handler_result` (on the error type).
//! The registration and the stream check are generic over the handler in the runtime, where
//! `H::Event: Event` follows from `H: Handler`, so they prove nothing again.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, ItemFn, PathArguments, ReturnType, Type};

use super::args::{Backoff, Start};
use super::valid::{Batch, Policy};
use crate::krate::source_name;

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

/// The `HandlerConfig` expression: each key as written, or the runtime's default for it
/// (`HandlerConfig::DEFAULT`, and `default_claim_after` of the timeout), so that the defaults
/// are written once, in the runtime.
fn config(p: &TokenStream, policy: &Policy) -> TokenStream {
    let default = quote!(#p::HandlerConfig::DEFAULT);
    let or_default = |given: Option<TokenStream>, field: &str| {
        let field = Ident::new(field, Span::call_site());
        given.unwrap_or_else(|| quote!(#default.#field))
    };
    let backoff = policy.backoff.map(|backoff| match backoff {
        Backoff::None => quote!(#p::Backoff::None),
        Backoff::Fixed(d) => {
            let d = duration(d);
            quote!(#p::Backoff::Fixed(#d))
        }
        Backoff::Exponential(i, m) => {
            let (i, m) = (duration(i), duration(m));
            quote!(#p::Backoff::Exponential { initial: #i, max: #m })
        }
    });
    let start = policy.start.map(|start| match start {
        Start::Latest => quote!(#p::Start::Latest),
        Start::Earliest => quote!(#p::Start::Earliest),
    });
    let retries = or_default(policy.retries.map(|n| quote!(#n)), "retries");
    let backoff = or_default(backoff, "backoff");
    let dead_letter = or_default(policy.dead_letter.map(|b| quote!(#b)), "dead_letter");
    let concurrency = or_default(policy.concurrency.map(|n| quote!(#n)), "concurrency");
    let timeout = or_default(policy.timeout.map(duration), "timeout");
    let claim_after = match &policy.claim_after {
        Some(c) => duration(c.value),
        None => quote!(#p::HandlerConfig::default_claim_after(#timeout)),
    };
    let start = or_default(start, "start");
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

/// With `claim_after` given and `timeout` left out: the check that `claim_after` is above the
/// runtime's default timeout, a const assertion spanned on the `claim_after` value.
fn claim_after_check(policy: &Policy) -> Option<TokenStream> {
    let claim = policy.claim_after.as_ref()?;
    let message = claim.check_default.as_ref()?;
    let span = claim.lit.span();
    let ps = policy.krate.private_at(span);
    let value = duration(claim.value);
    Some(quote_spanned! {span=>
        const _: () = if #value.as_nanos() <= #ps::HandlerConfig::DEFAULT.timeout.as_nanos() {
            ::core::panic!("{}", #message)
        };
    })
}

/// With `linger` given: the check that it is below the read-ahead window,
/// `(claim_after − timeout) / 2`, a const assertion spanned on the `linger` value (entries
/// waiting for their batch must not become reclaimable while they wait).
fn linger_check(policy: &Policy, batch: &Batch, config: &TokenStream) -> Option<TokenStream> {
    let (lit, linger) = batch.linger.as_ref()?;
    let span = lit.span();
    let ps = policy.krate.private_at(span);
    let value = duration(*linger);
    let message = format!(
        "`linger` ({}) must be below half of `claim_after` − `timeout`: events waiting for their batch would become reclaimable by another consumer; lower `linger` or raise `claim_after`",
        lit.value()
    );
    Some(quote_spanned! {span=>
        const _: () = {
            let config: #ps::HandlerConfig = #config;
            if #value.as_nanos() >= config.claim_after.saturating_sub(config.timeout).as_nanos() / 2 {
                ::core::panic!("{}", #message)
            }
        };
    })
}

pub(crate) fn registration(
    f: &ItemFn,
    policy: &Policy,
    event: &Type,
    extractors: &[Type],
) -> TokenStream {
    let k = &policy.krate;
    let p = k.private();
    let name = &f.sig.ident;
    let name_str = name.to_string();
    let stream = &policy.stream;
    let group = match &policy.group {
        Some(g) => quote!(::core::option::Option::Some(#g)),
        None => quote!(::core::option::Option::None),
    };
    let event_name = source_name(quote!(#event));
    let config = config(&p, policy);
    let claim_after_check = claim_after_check(policy);
    // The generated locals resolve at the macro's definition site (`mixed_site`) wherever they
    // appear, whatever the span of the tokens around them: a `macro_rules!` macro that wrote
    // the attribute but took the fn's name or a type from its caller gives those tokens another
    // hygiene context, and a local written inside their `quote_spanned!` would not be found.
    // Each one is only located at the span of its use, so that errors still point there.
    let at = |name: &str, span: Span| Ident::new(name, Span::mixed_site().located_at(span));
    let here = Span::call_site();
    let (event_arg, ctx, out) = (
        at("__opsc_event", here),
        at("__opsc_ctx", here),
        at("__opsc_out", here),
    );
    let handler = Ident::new("__OpscHandler", Span::mixed_site());
    let message = at("__opsc_message", stream.span());

    let pe = k.private_at(event.span());
    let batch = policy.batch.as_ref();
    // A batch handler implements `BatchHandler` and takes its extractors with
    // `FromBatchContext`; everything else is generated the same way.
    // Names, not tokens: each is made an ident at the span of the `quote_spanned!` it goes in,
    // so that errors stay on the parameter or return type they are about.
    let (handler_trait, mismatch, from_context, from_fn, extract_err, result_fn) =
        if batch.is_some() {
            (
                "BatchHandler",
                "batch_stream_mismatch",
                "FromBatchContext",
                "from_batch_context",
                ("BatchError", "from"),
                "batch_result",
            )
        } else {
            (
                "Handler",
                "stream_mismatch",
                "FromContext",
                "from_context",
                ("CallError", "Handler"),
                "handler_result",
            )
        };
    let (handler_trait, mismatch) = (
        Ident::new(handler_trait, Span::call_site()),
        Ident::new(mismatch, stream.span()),
    );
    let event_type = quote_spanned!(event.span()=> type Event = #event;);
    let ps = k.private_at(stream.span());
    let stream_check = quote_spanned! {stream.span()=>
        const _: () = if let ::core::option::Option::Some(#message) =
            #ps::#mismatch::<#handler>(#name_str, #stream, #event_name)
        {
            ::core::panic!("{}", #message.as_str())
        };
    };
    let arg_name = |i: usize| format!("__opsc_extracted_{i}");
    let extract = extractors.iter().enumerate().map(|(i, ty)| {
        let span = ty.span();
        let pt = k.private_at(span);
        let (arg, ctx) = (at(&arg_name(i), span), at("__opsc_ctx", span));
        let (from_context, from_fn) = (Ident::new(from_context, span), Ident::new(from_fn, span));
        let (err_type, err_fn) = (
            Ident::new(extract_err.0, span),
            Ident::new(extract_err.1, span),
        );
        let extract_err = quote_spanned!(span=> #err_type::#err_fn);
        quote_spanned! {span=>
            let #arg = <#ty as #pt::#from_context>::#from_fn(&#ctx)
                .map_err(#pt::#extract_err)?;
        }
    });
    let requirements = extractors.iter().map(|ty| {
        let span = ty.span();
        let pt = k.private_at(span);
        let out = at("__opsc_out", span);
        let from_context = Ident::new(from_context, span);
        quote_spanned! {span=> <#ty as #pt::#from_context>::requirements(#out); }
    });
    // The returned value is the argument of the call that proves the return type, and rustc
    // reports a bound failing on an argument at the call only when both share one hygiene
    // context: this local is bound and used with the span of the return type itself (one
    // span, so it resolves wherever that type came from).
    let return_span = return_span(&f.sig.output);
    let returned = Ident::new("__opsc_returned", return_span.unwrap_or(here));
    let convert = match return_span {
        Some(span) => {
            let pr = k.private_at(span);
            let result_fn = Ident::new(result_fn, span);
            quote_spanned! {span=>
                #pr::#result_fn(#pr::HandlerReturn::into_result(#returned))
            }
        }
        None => {
            let result_fn = Ident::new(result_fn, here);
            quote!(#p::#result_fn(#p::HandlerReturn::into_result(#returned)))
        }
    };
    // Spanned on the fn's name: a future that is not `Send` is reported there.
    let pn = k.private_at(name.span());
    let error = Ident::new(
        if batch.is_some() {
            "BatchError"
        } else {
            "CallError"
        },
        name.span(),
    );
    let future = quote_spanned! {name.span()=>
        impl ::core::future::Future<Output = ::core::result::Result<(), #pn::#error>>
            + ::core::marker::Send
            + 'static
    };
    let body = {
        let span = name.span();
        let (event_arg, ctx) = (at("__opsc_event", span), at("__opsc_ctx", span));
        let args = (0..extractors.len()).map(|i| at(&arg_name(i), span));
        quote_spanned! {span=>
            async move {
                let _ = &#ctx;
                #(#extract)*
                let #returned = #name(#event_arg, #(#args),*).await;
                #convert
            }
        }
    };
    let (event_param, ctx_type) = if batch.is_some() {
        (
            quote!(::std::vec::Vec<<Self as #p::BatchHandler>::Event>),
            quote!(#p::BatchContext),
        )
    } else {
        (quote!(<Self as #p::Handler>::Event), quote!(#p::Context))
    };
    let submit = match batch {
        Some(b) => {
            let size = b.size;
            let linger = match &b.linger {
                Some((_, d)) => {
                    let d = duration(*d);
                    quote!(::core::option::Option::Some(#d))
                }
                None => quote!(::core::option::Option::None),
            };
            quote! {
                #p::batch_registration::<#handler>(
                    #name_str,
                    ::core::module_path!(),
                    #stream,
                    #group,
                    #event_name,
                    #config,
                    #size,
                    #linger,
                )
            }
        }
        None => quote! {
            #p::registration::<#handler>(
                #name_str,
                ::core::module_path!(),
                #stream,
                #group,
                #event_name,
                #config,
            )
        },
    };
    let linger_check = batch.and_then(|b| linger_check(policy, b, &config));
    quote! {
        #[doc(hidden)]
        const _: () = {
            struct #handler;

            impl #pe::#handler_trait for #handler {
                #event_type

                fn call(
                    #event_arg: #event_param,
                    #ctx: #ctx_type,
                ) -> #future {
                    #body
                }

                fn requirements(#out: &mut ::std::vec::Vec<#p::Requirement>) {
                    let _ = &#out;
                    #(#requirements)*
                }
            }

            #stream_check
            #claim_after_check
            #linger_check

            #p::inventory::submit! {
                #submit
            }
        };
    }
}
