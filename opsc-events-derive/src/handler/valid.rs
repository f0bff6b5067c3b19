//! Checks of `#[handler]` that relate keys to each other and to the fn signature.

use std::time::Duration;

use syn::{FnArg, ItemFn, Type};

use super::args::{Backoff, HandlerArgs, Start};
use crate::ctxt::Ctxt;

/// The handler's policy with defaults applied.
pub(crate) struct Policy {
    pub(crate) stream: String,
    pub(crate) group: Option<String>,
    pub(crate) retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) dead_letter: bool,
    pub(crate) concurrency: u32,
    pub(crate) timeout: Duration,
    pub(crate) claim_after: Duration,
    pub(crate) start: Start,
}

fn stream_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn group_ok(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

pub(crate) fn policy(cx: &Ctxt, f: &ItemFn, args: &HandlerArgs) -> Policy {
    let stream = match &args.stream {
        Some(lit) => {
            let v = lit.value();
            if !stream_ok(&v) {
                cx.error_spanned_by(
                    lit,
                    format!("invalid `stream` {v:?}: expected 1 to 64 characters of `a-z`, `0-9`, `_`, `-`"),
                );
            }
            v
        }
        None => {
            cx.error_spanned_by(
                &f.sig.ident,
                "missing `stream`: add `stream = \"...\"` to `#[handler(...)]`, naming the stream of the handler's event",
            );
            String::new()
        }
    };
    let group = args.group.as_ref().map(|lit| {
        let v = lit.value();
        if !group_ok(&v) {
            cx.error_spanned_by(
                lit,
                format!(
                    "invalid `group` {v:?}: expected 1 to 128 characters of `A-Z a-z 0-9 _ - . :`"
                ),
            );
        }
        v
    });
    let timeout = args
        .timeout
        .as_ref()
        .map_or(Duration::from_secs(30), |(_, d)| *d);
    let claim_after = match &args.claim_after {
        Some((lit, d)) => {
            if *d <= timeout {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "`claim_after` ({}) must be above `timeout` ({}): a message still being handled would be reclaimed and run twice",
                        show(*d),
                        show(timeout)
                    ),
                );
            }
            *d
        }
        None => (timeout * 2).max(Duration::from_secs(60)),
    };
    Policy {
        stream,
        group,
        retries: args.retries.unwrap_or(3),
        backoff: args.backoff.unwrap_or(Backoff::Exponential(
            Duration::from_millis(100),
            Duration::from_secs(30),
        )),
        dead_letter: args.dead_letter.unwrap_or(true),
        concurrency: args.concurrency.unwrap_or(1),
        timeout,
        claim_after,
        start: args.start.unwrap_or(Start::Latest),
    }
}

/// The event type and the extractor types, in order; `None` when the signature cannot be a
/// handler (errors recorded).
pub(crate) fn signature(cx: &Ctxt, f: &ItemFn) -> Option<(Type, Vec<Type>)> {
    let sig = &f.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "a handler must be an `async fn`");
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "a handler cannot have generic parameters or lifetimes",
        );
        ok = false;
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "a handler cannot be variadic");
        ok = false;
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                cx.error_spanned_by(r, "a handler is a free `async fn`, not a method");
                ok = false;
            }
            FnArg::Typed(t) => {
                if let Type::Reference(r) = &*t.ty {
                    cx.error_spanned_by(
                        r,
                        "handler parameters are taken by value: the event first, then `Context` or `State<T>`",
                    );
                    ok = false;
                }
                types.push((*t.ty).clone());
            }
        }
    }
    if types.is_empty() {
        cx.syn_error(syn::Error::new(
            sig.paren_token.span.join(),
            "a handler takes its event as the first parameter, e.g. `async fn on_created(event: AssetCreated)`",
        ));
        ok = false;
    }
    if !ok {
        return None;
    }
    let event = types.remove(0);
    Some((event, types))
}

/// The span of the `stream` value, for the const check.
pub(crate) fn stream_span(args: &HandlerArgs, f: &ItemFn) -> proc_macro2::Span {
    args.stream
        .as_ref()
        .map_or(f.sig.ident.span(), |l| l.span())
}
