//! Checks of `#[handler]` that relate keys to each other and to the fn signature.

use std::time::Duration;

use proc_macro2::Span;
use syn::{FnArg, ItemFn, LitStr, Type};

use super::args::{Backoff, HandlerArgs, Start};
use crate::ctxt::Ctxt;
use crate::krate::CratePath;

/// The handler's policy as written. A key left out is `None` and takes the runtime's default
/// (`HandlerConfig::DEFAULT`) in the generated code: the macro repeats no default value.
pub(crate) struct Policy {
    /// The `stream` value, kept as a literal to span the compile-time stream check on it.
    pub(crate) stream: LitStr,
    pub(crate) group: Option<String>,
    pub(crate) retries: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) dead_letter: Option<bool>,
    pub(crate) concurrency: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) claim_after: Option<ClaimAfter>,
    pub(crate) start: Option<Start>,
    /// Set for a batch handler (`batch = N`).
    pub(crate) batch: Option<Batch>,
    pub(crate) krate: CratePath,
}

/// `batch = N` and its `linger`, as written.
pub(crate) struct Batch {
    pub(crate) size: u32,
    /// The `linger` value; left out, the runtime's default (`BatchSpec::DEFAULT_LINGER`).
    pub(crate) linger: Option<(LitStr, Duration)>,
}

/// A `claim_after` value. When `timeout` is left out, the rule that `claim_after` is above it is
/// checked against the runtime's default by a const assertion in the generated code, spanned on
/// `lit` and reported with `check_default`.
pub(crate) struct ClaimAfter {
    pub(crate) lit: LitStr,
    pub(crate) value: Duration,
    /// Set when `timeout` is left out: the message of the generated check.
    pub(crate) check_default: Option<String>,
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

/// A duration as a user would write it: `250ms`, `90s`, `2m`, `1h`.
fn show(d: Duration) -> String {
    let (ms, s) = (d.as_millis(), d.as_secs());
    if d.subsec_millis() != 0 || s == 0 {
        format!("{ms}ms")
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Checks the values against each other; `None` when a value is missing or invalid (reported).
pub(crate) fn policy(cx: &Ctxt, args: &HandlerArgs) -> Option<Policy> {
    let stream = args.stream.clone().flatten();
    if let Some(lit) = &stream {
        let v = lit.value();
        if !stream_ok(&v) {
            cx.error_spanned_by(
                lit,
                format!(
                    "invalid `stream` {v:?}: expected 1 to 64 characters of `a-z`, `0-9`, `_`, `-`"
                ),
            );
        }
    } else if args.stream.is_none() && !args.malformed {
        cx.syn_error(syn::Error::new(
            Span::call_site(),
            "missing `stream`: add `stream = \"...\"` to `#[handler(...)]`, naming the stream of the handler's event",
        ));
    }
    let group = args.group.clone().flatten().map(|lit| {
        let v = lit.value();
        if !group_ok(&v) {
            cx.error_spanned_by(
                &lit,
                format!(
                    "invalid `group` {v:?}: expected 1 to 128 characters of `A-Z a-z 0-9 _ - . :`"
                ),
            );
        }
        v
    });
    // `None` (left out) stays `None`: the runtime's default applies. A malformed value makes
    // the whole policy `None` (reported).
    let timeout = args
        .timeout
        .as_ref()
        .map(|given| given.as_ref().map(|(_, d)| *d));
    let claim_after = match (&args.claim_after, timeout) {
        (Some(Some((lit, d))), Some(Some(timeout))) => {
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
            Some(ClaimAfter {
                lit: lit.clone(),
                value: *d,
                check_default: None,
            })
        }
        (Some(Some((lit, d))), None) => Some(ClaimAfter {
            lit: lit.clone(),
            value: *d,
            check_default: Some(format!(
                "`claim_after` ({}) must be above `timeout` (the default, `HandlerConfig::DEFAULT.timeout`): a message still being handled would be reclaimed and run twice; raise `claim_after` or set `timeout`",
                show(*d)
            )),
        }),
        // Malformed `timeout` (reported), or `claim_after` left out or malformed.
        _ => None,
    };
    let batch = match (&args.batch, &args.linger) {
        (Some(Some(size)), linger) => Some(Batch {
            size: *size,
            linger: linger.clone().flatten(),
        }),
        (None, Some(Some((lit, _)))) => {
            cx.error_spanned_by(
                lit,
                "`linger` only applies to a batch handler: add `batch = N` (and take `Vec<E>`), or remove `linger`",
            );
            None
        }
        _ => None,
    };
    // A malformed `batch` or `linger` (reported) makes the whole policy `None`.
    if matches!(args.batch, Some(None)) || matches!(args.linger, Some(None)) {
        return None;
    }
    Some(Policy {
        stream: stream?,
        group,
        retries: args.retries.flatten(),
        backoff: args.backoff.flatten(),
        dead_letter: args.dead_letter.flatten(),
        concurrency: args.concurrency.flatten(),
        timeout: match timeout {
            Some(given) => Some(given?),
            None => None,
        },
        claim_after,
        start: args.start.flatten(),
        batch,
        krate: CratePath::new(args.krate.clone().flatten()),
    })
}

/// `E` of a type written `Vec<E>` (or `std::vec::Vec<E>`, ...), if it is written so.
fn vec_item(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if p.qself.is_some() || last.ident != "Vec" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(item)] => Some(item),
        _ => None,
    }
}

/// The event type and the extractor types, in order; `None` when the signature cannot be a
/// handler (errors recorded, each on the offending token). For a batch handler (`batch`), the
/// event type is `E` of the first parameter, `Vec<E>`.
pub(crate) fn signature(cx: &Ctxt, f: &ItemFn, batch: bool) -> Option<(Type, Vec<Type>)> {
    let sig = &f.sig;
    let mut ok = true;
    let mut error = |tokens: &dyn quote::ToTokens, msg: &str| {
        cx.error_spanned_by(tokens.to_token_stream(), msg);
        ok = false;
    };
    if sig.asyncness.is_none() {
        error(
            &sig.fn_token,
            "a handler must be an `async fn`: add `async` before `fn`",
        );
    }
    if let Some(u) = &sig.unsafety {
        error(u, "a handler cannot be an `unsafe fn`");
    }
    if !sig.generics.params.is_empty() {
        error(
            &sig.generics,
            "a handler cannot have generic parameters or lifetimes: name the event and state types",
        );
    }
    if let Some(v) = &sig.variadic {
        error(v, "a handler cannot be variadic");
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => error(
                r,
                "a handler is a free `async fn`, not a method: move it out of the `impl` block",
            ),
            FnArg::Typed(t) => match &*t.ty {
                Type::Reference(r) => {
                    let amp = if r.mutability.is_some() { "&mut" } else { "&" };
                    error(
                        r,
                        &format!("handler parameters are taken by value: remove the `{amp}`"),
                    );
                }
                Type::ImplTrait(i) => error(
                    i,
                    "a handler cannot have generic parameters: name the event or extractor type instead of `impl ...`",
                ),
                ty => types.push(ty.clone()),
            },
        }
    }
    if sig.inputs.is_empty() {
        cx.syn_error(syn::Error::new(
            sig.paren_token.span.join(),
            "a handler takes its event as the first parameter, e.g. `async fn on_created(event: AssetCreated)`",
        ));
        return None;
    }
    if !ok {
        return None;
    }
    let event = types.remove(0);
    match (batch, vec_item(&event)) {
        (true, Some(item)) => Some((item.clone(), types)),
        (true, None) => {
            cx.error_spanned_by(
                &event,
                "a batch handler (`batch = N`) takes its events as a `Vec` first: `events: Vec<E>`",
            );
            None
        }
        (false, Some(_)) => {
            cx.error_spanned_by(
                &event,
                "a handler taking a `Vec` of events is a batch handler: add `batch = N` to `#[handler(...)]`, e.g. `batch = 100`",
            );
            None
        }
        (false, None) => {
            let batch_context = types.iter().find(|ty| {
                matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "BatchContext"))
            });
            if let Some(ty) = batch_context {
                cx.error_spanned_by(
                    ty,
                    "`BatchContext` is for batch handlers: take `Context`, or add `batch = N` and take `events: Vec<E>`",
                );
                return None;
            }
            Some((event, types))
        }
    }
}
