//! The facade's path in generated code, and what attribute values look like after a
//! `macro_rules!` macro passed them on.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::{Expr, LitStr, Path};

use crate::ctxt::Ctxt;

/// Where generated code finds the facade: `::opsc_events`, or the path of `crate = "..."` for a
/// crate that renames or re-exports it (as serde's `#[serde(crate = "...")]`).
#[derive(Clone, Default)]
pub(crate) struct CratePath(Option<Path>);

impl CratePath {
    pub(crate) fn new(path: Option<Path>) -> Self {
        CratePath(path)
    }

    /// `<facade>::__private`.
    pub(crate) fn private(&self) -> TokenStream {
        match &self.0 {
            None => quote!(::opsc_events::__private),
            Some(path) => quote!(#path::__private),
        }
    }

    /// `<facade>::__private` located at `span`, so that an error in a call through it is
    /// reported there. A `crate = "..."` path keeps its name resolution (that of the attribute)
    /// and takes only the location of `span`.
    pub(crate) fn private_at(&self, span: Span) -> TokenStream {
        match &self.0 {
            None => quote_spanned!(span=> ::opsc_events::__private),
            Some(path) => located_at(quote!(#path::__private), span),
        }
    }
}

/// `tokens` with every span moved to the location of `span`, resolving as before.
fn located_at(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut moved = Group::new(g.delimiter(), located_at(g.stream(), span));
                moved.set_span(g.span().located_at(span));
                TokenTree::Group(moved)
            }
            mut other => {
                other.set_span(other.span().located_at(span));
                other
            }
        })
        .collect()
}

/// Parses the value of `crate = "..."` as a path; an invalid path is reported on the literal.
pub(crate) fn parse_crate(cx: &Ctxt, lit: &LitStr) -> Option<Path> {
    match lit.parse::<Path>() {
        Ok(path) => Some(path),
        Err(_) => {
            cx.error_spanned_by(
                lit,
                format!(
                    "invalid `crate` path {:?}: expected the path of the `opsc_events` crate as the code sees it, e.g. `crate = \"my_events\"` for a renamed dependency or `crate = \"crate::reexports::events\"` for a re-export",
                    lit.value()
                ),
            );
            None
        }
    }
}

/// `expr` without the invisible groups around it. A `macro_rules!` macro passes an `expr` or
/// `literal` fragment on wrapped in a group with no delimiters (`$stream` of `stream = $stream`
/// is such a group around `"assets"`); the value is what is inside.
pub(crate) fn ungroup(mut expr: Expr) -> Expr {
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    expr
}

/// The Rust source of `tokens` without spaces, as a name for messages and tools; invisible
/// groups (around `ty` fragments) are left out rather than printed.
pub(crate) fn source_name(tokens: TokenStream) -> String {
    fn push(out: &mut String, tokens: TokenStream) {
        for tt in tokens {
            match tt {
                TokenTree::Group(g) if g.delimiter() == Delimiter::None => push(out, g.stream()),
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    push(out, g.stream());
                    out.push_str(close);
                }
                other => out.push_str(&other.to_string()),
            }
        }
    }
    let mut out = String::new();
    push(&mut out, tokens);
    out
}

#[cfg(test)]
mod tests {
    use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
    use quote::quote;

    /// Every identifier of `tokens`, inside groups too.
    fn idents(tokens: TokenStream, out: &mut Vec<String>) {
        for tt in tokens {
            match tt {
                TokenTree::Group(g) => idents(g.stream(), out),
                TokenTree::Ident(i) => out.push(i.to_string()),
                _ => {}
            }
        }
    }

    fn names_facade(tokens: TokenStream) -> bool {
        let mut all = Vec::new();
        idents(tokens, &mut all);
        all.iter().any(|i| i == "opsc_events")
    }

    /// `tokens` wrapped in a group with no delimiters, as a `macro_rules!` fragment arrives.
    fn invisible(tokens: TokenStream) -> TokenTree {
        TokenTree::Group(Group::new(Delimiter::None, tokens))
    }

    #[test]
    fn event_with_a_crate_path_never_names_the_facade() {
        let input = syn::parse_quote! {
            #[event(stream = "assets", crate = "crate::reexport::events", upcast_from = Old)]
            struct AssetCreated { id: u64, tags: Vec<String> }
        };
        let expanded = crate::event::expand_event(&input);
        assert!(!names_facade(expanded.clone()), "{expanded}");
        assert!(expanded.to_string().contains("reexport"), "{expanded}");
        let plain = crate::event::expand_event(&syn::parse_quote! {
            #[event(stream = "assets")]
            struct AssetCreated { id: u64 }
        });
        assert!(names_facade(plain));
    }

    #[test]
    fn schema_with_a_crate_path_never_names_the_facade() {
        let input = syn::parse_quote! {
            #[event_schema(crate = "my_events")]
            enum Size { Small, Large { bytes: u64 } }
        };
        let expanded = crate::event::expand_schema(&input);
        assert!(!names_facade(expanded.clone()), "{expanded}");
        assert!(expanded.to_string().contains("my_events"), "{expanded}");
    }

    #[test]
    fn handler_with_a_crate_path_never_names_the_facade() {
        for args in [
            quote!(stream = "assets", crate = "my_events"),
            quote!(stream = "assets", crate = "my_events", claim_after = "2m"),
            quote!(
                crate = "my_events",
                stream = "assets",
                timeout = "5s",
                retries = 1
            ),
        ] {
            let item = quote! {
                async fn on_created(event: AssetCreated, ctx: Context) -> Result<(), HandlerError> {
                    Ok(())
                }
            };
            let expanded = crate::handler::expand(args, item);
            assert!(!names_facade(expanded.clone()), "{expanded}");
            assert!(expanded.to_string().contains("my_events"), "{expanded}");
            assert!(
                !expanded.to_string().contains("compile_error"),
                "{expanded}"
            );
        }
    }

    #[test]
    fn values_in_invisible_groups_are_accepted() {
        let stream = invisible(quote!("assets"));
        let retries = invisible(quote!(5));
        let dead_letter = invisible(quote!(false));
        let krate = invisible(quote!("my_events"));
        let args = quote!(stream = #stream, retries = #retries, dead_letter = #dead_letter, crate = #krate);
        let item = quote!(
            async fn on_created(event: AssetCreated) {}
        );
        let expanded = crate::handler::expand(args, item).to_string();
        assert!(!expanded.contains("compile_error"), "{expanded}");
        let name = invisible(quote!("asset_made"));
        let version = invisible(TokenStream::from(invisible(quote!(2))));
        let input = syn::parse2(quote! {
            #[event(stream = #stream, name = #name, version = #version)]
            struct AssetCreated { id: u64 }
        })
        .expect("a struct");
        let expanded = crate::event::expand_event(&input).to_string();
        assert!(!expanded.contains("compile_error"), "{expanded}");
        assert!(expanded.contains("\"asset_made\""), "{expanded}");
    }

    #[test]
    fn type_names_leave_invisible_groups_out() {
        let ty = invisible(quote!(AssetCreated));
        assert_eq!(super::source_name(quote!(Vec<#ty>)), "Vec<AssetCreated>");
        assert_eq!(super::source_name(quote!((u8, [u16; 2]))), "(u8,[u16;2])");
    }
}
