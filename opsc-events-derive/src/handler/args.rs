//! Parses `#[handler(...)]` arguments. Values are checked here as far as they are literals;
//! relations between keys are checked in `valid.rs`.

use std::ops::RangeInclusive;
use std::time::Duration;

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::ctxt::{Attr, Ctxt};
use crate::krate::{parse_crate, ungroup};

pub(crate) const KEYS: &str = "`stream`, `group`, `retries`, `backoff`, `dead_letter`, `concurrency`, `timeout`, `claim_after`, `start`, `batch`, `linger`, `crate`";

#[derive(Clone, Copy)]
pub(crate) enum Backoff {
    None,
    Fixed(Duration),
    Exponential(Duration, Duration),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Latest,
    Earliest,
}

/// The arguments as written. For each key: `None` when absent, `Some(None)` when present with a
/// malformed value (already reported), so that no "missing" or relational error follows it.
pub(crate) struct HandlerArgs {
    pub(crate) stream: Option<Option<LitStr>>,
    pub(crate) group: Option<Option<LitStr>>,
    pub(crate) retries: Option<Option<u32>>,
    pub(crate) backoff: Option<Option<Backoff>>,
    pub(crate) dead_letter: Option<Option<bool>>,
    pub(crate) concurrency: Option<Option<u32>>,
    pub(crate) timeout: Option<Option<(LitStr, Duration)>>,
    pub(crate) claim_after: Option<Option<(LitStr, Duration)>>,
    pub(crate) start: Option<Option<Start>>,
    /// `batch = N`: a batch handler taking up to `N` events per call.
    pub(crate) batch: Option<Option<u32>>,
    /// `linger = "50ms"`: how long a batch waits for more events (zero allowed).
    pub(crate) linger: Option<Option<(LitStr, Duration)>>,
    /// `crate = "path"`: where generated code finds the facade.
    pub(crate) krate: Option<Option<syn::Path>>,
    /// The attribute could not be parsed to its end (reported): keys after the error are
    /// unknown, so none is reported missing.
    pub(crate) malformed: bool,
}

const DURATION_HELP: &str =
    "expected an integer and a unit (`ms`, `s`, `m`, `h`), e.g. `10s` or `250ms`";

/// Parses `10s`, `250ms`, `5m`, `1h`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

fn duration(cx: &Ctxt, key: &str, lit: &LitStr) -> Option<Duration> {
    match parse_duration(&lit.value()) {
        Some(d) if !d.is_zero() => Some(d),
        Some(_) => {
            cx.error_spanned_by(lit, format!("`{key}` must be above zero"));
            None
        }
        None => {
            cx.error_spanned_by(
                lit,
                format!(
                    "invalid `{key}` duration {:?}: {DURATION_HELP}",
                    lit.value()
                ),
            );
            None
        }
    }
}

fn backoff(cx: &Ctxt, lit: &LitStr) -> Option<Backoff> {
    let v = lit.value();
    let v = v.trim();
    let help = "expected `none`, `fixed(D)` or `exponential(INITIAL, MAX)` with durations like `200ms`, `30s`";
    let bad = |why: &str| {
        cx.error_spanned_by(lit, format!("invalid `backoff` {v:?}: {why}"));
        None
    };
    if v == "none" {
        return Some(Backoff::None);
    }
    let inner = |prefix: &str| v.strip_prefix(prefix).and_then(|r| r.strip_suffix(')'));
    if let Some(d) = inner("fixed(") {
        return match parse_duration(d) {
            Some(d) => Some(Backoff::Fixed(d)),
            None => bad(DURATION_HELP),
        };
    }
    if let Some(args) = inner("exponential(") {
        let Some((a, b)) = args.split_once(',') else {
            return bad(help);
        };
        return match (parse_duration(a), parse_duration(b)) {
            (Some(initial), Some(max)) if !initial.is_zero() && initial <= max => {
                Some(Backoff::Exponential(initial, max))
            }
            (Some(_), Some(_)) => bad("`INITIAL` must be above zero and not above `MAX`"),
            _ => bad(DURATION_HELP),
        };
    }
    bad(help)
}

/// Consumes `(...)` after a key, if any.
fn skip_parens(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        let _: TokenStream = content.parse()?;
    }
    Ok(())
}

/// The `= value` of `key`, as an expression without the invisible groups a `macro_rules!`
/// fragment adds; `None` (reported on the key) when there is none.
fn value(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
) -> syn::Result<Option<Expr>> {
    if meta.input.peek(syn::Token![=]) {
        let input = meta.value()?;
        if !input.is_empty() && !input.peek(syn::Token![,]) {
            return Ok(Some(ungroup(input.parse()?)));
        }
    } else {
        skip_parens(meta)?;
    }
    cx.error_spanned_by(
        &meta.path,
        format!("`{key}` needs a value: `{key} = {example}`"),
    );
    Ok(None)
}

/// A string value; anything else is reported on the value.
fn lit_str(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    example: &str,
) -> syn::Result<Option<LitStr>> {
    Ok(match value(cx, meta, key, example)? {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Some(s),
        Some(other) => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be a string literal: `{key} = {example}`"),
            );
            None
        }
        None => None,
    })
}

/// An integer value in `range`; anything else is reported on the value.
fn int_in(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    range: RangeInclusive<u32>,
    example: &str,
) -> syn::Result<Option<u32>> {
    let (lo, hi) = (range.start(), range.end());
    Ok(match value(cx, meta, key, example)? {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        })) => match lit.base10_parse::<u32>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                cx.error_spanned_by(
                    &lit,
                    format!("`{key}` must be an integer in {lo}..={hi}, not {lit}"),
                );
                None
            }
        },
        Some(other) => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be an integer literal in {lo}..={hi}: `{key} = {example}`"),
            );
            None
        }
        None => None,
    })
}

/// `true` or `false`; a string such as `"yes"` is reported on the value.
fn bool_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<Option<bool>> {
    Ok(match value(cx, meta, key, "false")? {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        })) => Some(b.value),
        Some(other) => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be `true` or `false`, without quotes"),
            );
            None
        }
        None => None,
    })
}

pub(crate) fn parse(cx: &Ctxt, args: TokenStream) -> HandlerArgs {
    let mut stream = Attr::none(cx, "stream");
    let mut group = Attr::none(cx, "group");
    let mut retries = Attr::none(cx, "retries");
    let mut backoff_a = Attr::none(cx, "backoff");
    let mut dead_letter = Attr::none(cx, "dead_letter");
    let mut concurrency = Attr::none(cx, "concurrency");
    let mut timeout = Attr::none(cx, "timeout");
    let mut claim_after = Attr::none(cx, "claim_after");
    let mut start = Attr::none(cx, "start");
    let mut krate = Attr::none(cx, "crate");
    let mut batch = Attr::none(cx, "batch");
    let mut linger = Attr::none(cx, "linger");
    let parser = syn::meta::parser(|meta| {
        let key = &meta.path;
        if key.is_ident("stream") {
            stream.set(key, lit_str(cx, &meta, "stream", "\"assets\"")?);
        } else if key.is_ident("group") {
            group.set(key, lit_str(cx, &meta, "group", "\"inventory.indexer\"")?);
        } else if key.is_ident("retries") {
            retries.set(key, int_in(cx, &meta, "retries", 0..=100, "5")?);
        } else if key.is_ident("backoff") {
            let lit = lit_str(cx, &meta, "backoff", "\"exponential(100ms, 30s)\"")?;
            backoff_a.set(key, lit.and_then(|lit| backoff(cx, &lit)));
        } else if key.is_ident("dead_letter") {
            dead_letter.set(key, bool_value(cx, &meta, "dead_letter")?);
        } else if key.is_ident("concurrency") {
            concurrency.set(key, int_in(cx, &meta, "concurrency", 1..=10_000, "8")?);
        } else if key.is_ident("timeout") {
            let lit = lit_str(cx, &meta, "timeout", "\"30s\"")?;
            let d = lit.and_then(|lit| duration(cx, "timeout", &lit).map(|d| (lit, d)));
            timeout.set(key, d);
        } else if key.is_ident("claim_after") {
            let lit = lit_str(cx, &meta, "claim_after", "\"2m\"")?;
            let d = lit.and_then(|lit| duration(cx, "claim_after", &lit).map(|d| (lit, d)));
            claim_after.set(key, d);
        } else if key.is_ident("start") {
            let lit = lit_str(cx, &meta, "start", "\"earliest\"")?;
            let value = lit.and_then(|lit| match lit.value().as_str() {
                "latest" => Some(Start::Latest),
                "earliest" => Some(Start::Earliest),
                other => {
                    cx.error_spanned_by(
                        &lit,
                        format!("invalid `start` {other:?}: expected `latest` or `earliest`"),
                    );
                    None
                }
            });
            start.set(key, value);
        } else if key.is_ident("batch") {
            batch.set(key, int_in(cx, &meta, "batch", 1..=10_000, "100")?);
        } else if key.is_ident("linger") {
            let lit = lit_str(cx, &meta, "linger", "\"50ms\"")?;
            let d = lit.and_then(|lit| match parse_duration(&lit.value()) {
                Some(d) => Some((lit, d)),
                None => {
                    cx.error_spanned_by(
                        &lit,
                        format!(
                            "invalid `linger` duration {:?}: {DURATION_HELP}",
                            lit.value()
                        ),
                    );
                    None
                }
            });
            linger.set(key, d);
        } else if key.is_ident("crate") {
            let lit = lit_str(cx, &meta, "crate", "\"my_events\"")?;
            krate.set(key, lit.and_then(|lit| parse_crate(cx, &lit)));
        } else {
            let shown = quote::quote!(#key).to_string().replace(' ', "");
            cx.error_spanned_by(
                key,
                format!("unknown `handler` key `{shown}`; expected one of {KEYS}"),
            );
            if meta.input.peek(syn::Token![=]) {
                let _: Expr = meta.value()?.parse()?;
            }
            skip_parens(&meta)?;
        }
        Ok(())
    });
    let malformed = match syn::parse::Parser::parse2(parser, args) {
        Ok(()) => false,
        Err(e) => {
            cx.syn_error(e);
            true
        }
    };
    HandlerArgs {
        stream: stream.get(),
        group: group.get(),
        retries: retries.get(),
        backoff: backoff_a.get(),
        dead_letter: dead_letter.get(),
        concurrency: concurrency.get(),
        timeout: timeout.get(),
        claim_after: claim_after.get(),
        start: start.get(),
        krate: krate.get(),
        batch: batch.get(),
        linger: linger.get(),
        malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "10", "s", "1.5s", "10 s", "-1s", "10sec", "10d"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
