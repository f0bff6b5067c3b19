//! Parses `#[handler(...)]` arguments. Values are checked here as far as they are literals;
//! relations between keys are checked in `valid.rs`.

use std::time::Duration;

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{LitBool, LitInt, LitStr};

use crate::ctxt::{Attr, Ctxt};

pub(crate) const KEYS: &str = "`stream`, `group`, `retries`, `backoff`, `dead_letter`, `concurrency`, `timeout`, `claim_after`, `start`";

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

/// The arguments as written, each with the literal for error spans.
pub(crate) struct HandlerArgs {
    pub(crate) stream: Option<LitStr>,
    pub(crate) group: Option<LitStr>,
    pub(crate) retries: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) dead_letter: Option<bool>,
    pub(crate) concurrency: Option<u32>,
    pub(crate) timeout: Option<(LitStr, Duration)>,
    pub(crate) claim_after: Option<(LitStr, Duration)>,
    pub(crate) start: Option<Start>,
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

fn int_in(cx: &Ctxt, key: &str, lit: &LitInt, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
    match lit.base10_parse::<u32>() {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            cx.error_spanned_by(
                lit,
                format!(
                    "`{key}` must be an integer in {}..={}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }
}

fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        let _: TokenStream = content.parse()?;
    }
    Ok(())
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
    let parser = syn::meta::parser(|meta| {
        let key = &meta.path;
        if key.is_ident("stream") {
            stream.set(key, meta.value()?.parse::<LitStr>()?);
        } else if key.is_ident("group") {
            group.set(key, meta.value()?.parse::<LitStr>()?);
        } else if key.is_ident("retries") {
            let lit = meta.value()?.parse::<LitInt>()?;
            if let Some(n) = int_in(cx, "retries", &lit, 0..=100) {
                retries.set(key, n);
            }
        } else if key.is_ident("backoff") {
            let lit = meta.value()?.parse::<LitStr>()?;
            if let Some(b) = backoff(cx, &lit) {
                backoff_a.set(key, b);
            }
        } else if key.is_ident("dead_letter") {
            dead_letter.set(key, meta.value()?.parse::<LitBool>()?.value);
        } else if key.is_ident("concurrency") {
            let lit = meta.value()?.parse::<LitInt>()?;
            if let Some(n) = int_in(cx, "concurrency", &lit, 1..=10_000) {
                concurrency.set(key, n);
            }
        } else if key.is_ident("timeout") {
            let lit = meta.value()?.parse::<LitStr>()?;
            if let Some(d) = duration(cx, "timeout", &lit) {
                timeout.set(key, (lit, d));
            }
        } else if key.is_ident("claim_after") {
            let lit = meta.value()?.parse::<LitStr>()?;
            if let Some(d) = duration(cx, "claim_after", &lit) {
                claim_after.set(key, (lit, d));
            }
        } else if key.is_ident("start") {
            let lit = meta.value()?.parse::<LitStr>()?;
            match lit.value().as_str() {
                "latest" => start.set(key, Start::Latest),
                "earliest" => start.set(key, Start::Earliest),
                other => cx.error_spanned_by(
                    &lit,
                    format!("invalid `start` {other:?}: expected `latest` or `earliest`"),
                ),
            }
        } else {
            let shown = quote::quote!(#key).to_string().replace(' ', "");
            cx.error_spanned_by(
                key,
                format!("unknown `handler` key `{shown}`; expected one of {KEYS}"),
            );
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(e);
    }
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
