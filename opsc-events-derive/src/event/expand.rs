//! Generates the `EventSchema` and `Event` impls. Everything generated names
//! `::opsc_events::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Type};

use super::ast::{Body, Field, Tagging, Variant, VariantKind};
use super::valid::Identity;

fn p() -> TokenStream {
    quote!(::opsc_events::__private)
}

/// `&'static Shape` of a field type, spanned on the type so a missing impl is reported there.
fn shape_of(ty: &Type) -> TokenStream {
    let p = p();
    quote_spanned!(ty.span()=> <#ty as #p::EventSchema>::SHAPE)
}

fn fields(fs: &[Field<'_>]) -> TokenStream {
    let p = p();
    let items = fs.iter().map(|f| {
        let (name, shape, optional) = (&f.wire, shape_of(f.ty), f.optional);
        quote!(#p::Field { name: #name, shape: #shape, optional: #optional })
    });
    quote!(&[#(#items),*])
}

fn tuple(types: &[&Type]) -> TokenStream {
    let shapes = types.iter().map(|t| shape_of(t));
    quote!(&[#(#shapes),*])
}

fn variant(v: &Variant<'_>) -> TokenStream {
    let p = p();
    let name = &v.wire;
    let kind = match &v.kind {
        VariantKind::Unit => quote!(#p::VariantKind::Unit),
        VariantKind::Newtype(ty) => {
            let s = shape_of(ty);
            quote!(#p::VariantKind::Newtype(#s))
        }
        VariantKind::Tuple(ts) => {
            let t = tuple(ts);
            quote!(#p::VariantKind::Tuple(#t))
        }
        VariantKind::Struct(fs) => {
            let f = fields(fs);
            quote!(#p::VariantKind::Struct(#f))
        }
    };
    quote!(#p::Variant { name: #name, kind: #kind })
}

/// The `Shape` expression of the item.
fn shape(input: &DeriveInput, body: &Body<'_>) -> TokenStream {
    let p = p();
    let type_name = input.ident.to_string();
    match body {
        Body::Named(fs) => {
            let f = fields(fs);
            quote!(#p::Shape::Struct(&#p::StructShape { name: #type_name, fields: #f }))
        }
        Body::Newtype(ty) => {
            let s = shape_of(ty);
            quote!(#p::Shape::Newtype(#type_name, #s))
        }
        Body::Tuple(ts) => {
            let t = tuple(ts);
            quote!(#p::Shape::Tuple(#t))
        }
        Body::Unit => quote!(#p::Shape::Unit),
        Body::Enum(tagging, vs) => {
            let tagging = match tagging {
                Tagging::External => quote!(#p::Tagging::External),
                Tagging::Internal(tag) => quote!(#p::Tagging::Internal { tag: #tag }),
                Tagging::Adjacent(tag, content) => {
                    quote!(#p::Tagging::Adjacent { tag: #tag, content: #content })
                }
            };
            let variants = vs.iter().map(variant);
            quote!(#p::Shape::Enum(&#p::EnumShape {
                name: #type_name,
                tagging: #tagging,
                variants: &[#(#variants),*],
            }))
        }
    }
}

/// `impl EventSchema`, with `T: EventSchema` bounds on type parameters.
pub(crate) fn schema_impl(input: &DeriveInput, body: &Body<'_>) -> TokenStream {
    let p = p();
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    let type_params: Vec<_> = generics.type_params().map(|t| t.ident.clone()).collect();
    if !type_params.is_empty() {
        let where_clause = generics.make_where_clause();
        for t in type_params {
            where_clause.predicates.push(syn::parse_quote!(#t: #p::EventSchema));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let shape = shape(input, body);
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::EventSchema for #ident #ty_generics #where_clause {
            const SHAPE: &'static #p::Shape = &#shape;
        }
    }
}

/// `impl Event` plus the compile-time checks of serde support and `upcast_from`.
pub(crate) fn event_impl(input: &DeriveInput, id: &Identity, upcast_from: Option<&Type>) -> TokenStream {
    let p = p();
    let ident = &input.ident;
    let Identity {
        stream,
        name,
        version,
    } = id;
    let serde_check = quote_spanned! {ident.span()=>
        const _: () = #p::assert_event_serde::<#ident>();
    };
    let (upcast, upcast_checks) = match upcast_from {
        None => (quote!(#p::NoUpcast), quote!()),
        Some(prev) => {
            let checks = quote_spanned! {prev.span()=>
                const _: () = #p::check_upcast::<#prev, #ident>();
                const _: () = #p::assert_upcast_from::<#ident, #prev>();
            };
            (quote!(#p::UpcastVia<#prev>), checks)
        }
    };
    quote! {
        #[automatically_derived]
        impl #p::Event for #ident {
            const STREAM: &'static str = #stream;
            const NAME: &'static str = #name;
            const VERSION: u16 = #version;
            const FINGERPRINT: u64 = #p::fingerprint(<Self as #p::EventSchema>::SHAPE);
            type Upcast = #upcast;
        }
        #serde_check
        #upcast_checks
    }
}

/// What is emitted next to the errors when the attributes are wrong: impls with placeholder
/// values, so that the rest of the user's code still type-checks and only the real errors show.
pub(crate) fn fallback(input: &DeriveInput) -> TokenStream {
    let p = p();
    let ident = &input.ident;
    if !input.generics.params.is_empty() {
        return quote!();
    }
    quote! {
        impl #p::EventSchema for #ident {
            const SHAPE: &'static #p::Shape = &#p::Shape::Unit;
        }
        impl #p::Event for #ident {
            const STREAM: &'static str = "";
            const NAME: &'static str = "";
            const VERSION: u16 = 1;
            const FINGERPRINT: u64 = 0;
            type Upcast = #p::NoUpcast;
        }
    }
}
