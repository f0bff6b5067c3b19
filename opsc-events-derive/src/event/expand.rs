//! Generates the `EventSchema` and `Event` impls. Everything generated names
//! `::opsc_events::__private`, or `<path>::__private` with `#[event(crate = "path")]`.

use proc_macro2::{Ident, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Type};

use super::ast::{Body, Field, Tagging, Variant, VariantKind};
use super::valid::Identity;
use crate::krate::CratePath;

/// `&'static Shape` of a field type, spanned on the type so a missing impl is reported there.
fn shape_of(k: &CratePath, ty: &Type) -> TokenStream {
    let p = k.private();
    quote_spanned!(ty.span()=> <#ty as #p::EventSchema>::SHAPE)
}

fn fields(k: &CratePath, fs: &[Field<'_>]) -> TokenStream {
    let p = k.private();
    let items = fs.iter().map(|f| {
        let (name, shape, optional) = (&f.wire, shape_of(k, f.ty), f.optional);
        quote!(#p::Field { name: #name, shape: #shape, optional: #optional })
    });
    quote!(&[#(#items),*])
}

fn tuple(k: &CratePath, types: &[&Type]) -> TokenStream {
    let shapes = types.iter().map(|t| shape_of(k, t));
    quote!(&[#(#shapes),*])
}

fn variant(k: &CratePath, v: &Variant<'_>) -> TokenStream {
    let p = k.private();
    let name = &v.wire;
    let kind = match &v.kind {
        VariantKind::Unit => quote!(#p::VariantKind::Unit),
        VariantKind::Newtype(ty) => {
            let s = shape_of(k, ty);
            quote!(#p::VariantKind::Newtype(#s))
        }
        VariantKind::Tuple(ts) => {
            let t = tuple(k, ts);
            quote!(#p::VariantKind::Tuple(#t))
        }
        VariantKind::Struct(fs) => {
            let f = fields(k, fs);
            quote!(#p::VariantKind::Struct(#f))
        }
    };
    quote!(#p::Variant { name: #name, kind: #kind })
}

/// The `Shape` expression of the item.
fn shape(k: &CratePath, input: &DeriveInput, body: &Body<'_>) -> TokenStream {
    let p = k.private();
    let type_name = input.ident.to_string();
    match body {
        Body::Named(fs) => {
            let f = fields(k, fs);
            quote!(#p::Shape::Struct(&#p::StructShape { name: #type_name, fields: #f }))
        }
        Body::Newtype(ty) => {
            let s = shape_of(k, ty);
            quote!(#p::Shape::Newtype(#type_name, #s))
        }
        Body::Tuple(ts) => {
            let t = tuple(k, ts);
            quote!(#p::Shape::Tuple(#t))
        }
        // rmp-serde writes a unit struct as an empty array, not as nil like `()`: the shape
        // must tell them apart, or equal fingerprints would decode differently.
        Body::Unit => quote!(#p::Shape::Tuple(&[])),
        Body::Enum(tagging, vs) => {
            let tagging = match tagging {
                Tagging::External => quote!(#p::Tagging::External),
                Tagging::Internal(tag) => quote!(#p::Tagging::Internal { tag: #tag }),
                Tagging::Adjacent(tag, content) => {
                    quote!(#p::Tagging::Adjacent { tag: #tag, content: #content })
                }
            };
            let variants = vs.iter().map(|v| variant(k, v));
            quote!(#p::Shape::Enum(&#p::EnumShape {
                name: #type_name,
                tagging: #tagging,
                variants: &[#(#variants),*],
            }))
        }
    }
}

/// `impl EventSchema` with `shape`, with `T: EventSchema` bounds on type parameters.
fn schema_impl_with(k: &CratePath, input: &DeriveInput, shape: &TokenStream) -> TokenStream {
    let p = k.private();
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    let type_params: Vec<_> = generics.type_params().map(|t| t.ident.clone()).collect();
    if !type_params.is_empty() {
        let where_clause = generics.make_where_clause();
        for t in type_params {
            where_clause
                .predicates
                .push(syn::parse_quote!(#t: #p::EventSchema));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::EventSchema for #ident #ty_generics #where_clause {
            const SHAPE: &'static #p::Shape = &#shape;
        }
    }
}

/// `impl EventSchema` of the item.
pub(crate) fn schema_impl(k: &CratePath, input: &DeriveInput, body: &Body<'_>) -> TokenStream {
    schema_impl_with(k, input, &shape(k, input, body))
}

/// The where clause of the `Event` impl. It states the bounds that the checks of
/// [`event_checks`] verify with readable messages, so that a missing `Serialize` or `From` impl
/// is reported once, by the check, and not a second time on the impl in the compiler's words.
/// (`for<'__opsc>` keeps a bound on a concrete type from being rejected as trivially false;
/// the bound must still hold wherever the event is used.)
fn assumed_bounds(k: &CratePath, ident: &Ident, upcast_from: Option<&Type>) -> TokenStream {
    let p = k.private();
    let upcast =
        upcast_from.map(|prev| quote!(for<'__opsc> #p::UpcastVia<#prev>: #p::UpcastChain<#ident>,));
    quote! {
        where
            for<'__opsc> #ident: #p::EventSerde,
            #upcast
    }
}

/// Compile-time checks with readable messages, each spanned on what the user must change: the
/// serde impls on the type's name (unless `check_serde` is false), `upcast_from` on the older
/// type.
fn event_checks(
    k: &CratePath,
    ident: &Ident,
    id: &Identity,
    upcast_from: Option<&Type>,
    check_serde: bool,
) -> TokenStream {
    let ps = k.private_at(ident.span());
    let serde = check_serde.then(|| {
        quote_spanned! {ident.span()=>
            const _: () = #ps::assert_serialize::<#ident>();
            const _: () = #ps::assert_deserialize::<#ident>();
            const _: () = if let ::core::option::Option::Some(message) =
                #ps::undecodable(<#ident as #ps::EventSchema>::SHAPE)
            {
                ::core::panic!("{}", message)
            };
        }
    });
    let Some(prev) = upcast_from else {
        return quote!(#serde);
    };
    let span = prev.span();
    let ps = k.private_at(span);
    // `Self` named at `prev`, so that a missing `From` is reported on `upcast_from`'s value.
    let mut this = ident.clone();
    this.set_span(span);
    let Identity {
        stream,
        name,
        version,
        ..
    } = id;
    quote_spanned! {span=>
        #serde
        const _: () = #ps::assert_upcast_from::<#this, #prev>();
        const _: () = if let ::core::option::Option::Some(message) =
            #ps::upcast_error::<#prev>(#stream, #name, #version)
        {
            ::core::panic!("{}", message)
        };
    }
}

/// `impl Event` plus the compile-time checks of serde support and `upcast_from`.
pub(crate) fn event_impl(
    k: &CratePath,
    input: &DeriveInput,
    id: &Identity,
    upcast_from: Option<&Type>,
    check_serde: bool,
) -> TokenStream {
    let p = k.private();
    let ident = &input.ident;
    let Identity {
        stream,
        name,
        version,
        priority,
    } = id;
    let priority = priority.map(|variant| {
        let variant = syn::Ident::new(variant, proc_macro2::Span::call_site());
        quote!(const PRIORITY: #p::Priority = #p::Priority::#variant;)
    });
    let upcast = match upcast_from {
        None => quote!(#p::NoUpcast),
        Some(prev) => quote!(#p::UpcastVia<#prev>),
    };
    let bounds = assumed_bounds(k, ident, upcast_from);
    let checks = event_checks(k, ident, id, upcast_from, check_serde);
    let type_name = ident.to_string();
    quote! {
        #[automatically_derived]
        impl #p::Event for #ident #bounds {
            const STREAM: &'static str = #stream;
            const NAME: &'static str = #name;
            const VERSION: u16 = #version;
            const FINGERPRINT: u64 = #p::fingerprint(<Self as #p::EventSchema>::SHAPE);
            #priority
            type Upcast = #upcast;
        }
        #checks
        // The event type linked into the binary, for the schema registry. Only the
        // `EventSchema` impl is named (through a fn, evaluated at run time), so an event whose
        // serde impls are missing is reported once, by the checks above.
        #p::inventory::submit! {
            #p::EventRegistration {
                type_name: #type_name,
                module_path: ::core::module_path!(),
                stream: #stream,
                name: #name,
                version: #version,
                shape: || <#ident as #p::EventSchema>::SHAPE,
            }
        }
    }
}

/// What `#[derive(EventSchema)]` emits next to its errors: an impl with a placeholder shape, so
/// that the events using the type report only the real errors.
pub(crate) fn schema_fallback(k: &CratePath, input: &DeriveInput) -> TokenStream {
    let p = k.private();
    schema_impl_with(k, input, &quote!(#p::Shape::Unit))
}

/// What `#[derive(Event)]` emits next to its errors: impls with placeholder values, so that the
/// rest of the user's code still type-checks and only the real errors show. A generic type gets
/// no `Event` impl: it cannot be one.
pub(crate) fn fallback(k: &CratePath, input: &DeriveInput) -> TokenStream {
    let p = k.private();
    let ident = &input.ident;
    let schema = schema_fallback(k, input);
    if !input.generics.params.is_empty() {
        return schema;
    }
    let bounds = assumed_bounds(k, ident, None);
    quote! {
        #schema
        #[automatically_derived]
        impl #p::Event for #ident #bounds {
            const STREAM: &'static str = "";
            const NAME: &'static str = "";
            const VERSION: u16 = 1;
            const FINGERPRINT: u64 = 0;
            type Upcast = #p::NoUpcast;
        }
    }
}
