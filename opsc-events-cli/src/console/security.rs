//! What every request passes through: the token, the read-only switch, the CSRF checks, the
//! `Host` check against DNS rebinding, and the security headers of every response.
//!
//! CSRF: a write is a `POST` that must carry `x-opsc-csrf` with the per-process token, which
//! only a same-origin script can read (from `GET /api/session`; the console sends no CORS
//! headers, so no other origin can read a response). A browser only sends such a custom header
//! cross-origin after a CORS preflight, which the console never allows. As a second layer, an
//! `Origin` header, when present, must be the console's own (`http(s)://<Host>`), and bodies are
//! JSON (`application/json`, which a cross-site form cannot send).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The header a write carries the CSRF token in.
pub(super) const CSRF_HEADER: &str = "x-opsc-csrf";

/// A secret: the console's access token or its CSRF token. Never printed (`Debug` shows
/// `Token(<redacted>)`), compared in constant time.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    /// A token of 16 to 256 visible ASCII characters; `None` for anything else.
    pub fn new(s: &str) -> Option<Token> {
        let ok = (16..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Token(Arc::from(s)))
    }

    /// 244 random bits from the operating system, as 64 hex digits.
    pub(super) fn random() -> Token {
        let a = uuid::Uuid::new_v4().simple().to_string();
        let b = uuid::Uuid::new_v4().simple().to_string();
        Token(Arc::from(format!("{a}{b}")))
    }

    /// The token's text (for the page's session answer: the CSRF token only).
    pub(super) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this token; the time taken depends on the lengths only, not on
    /// where the first difference is.
    pub fn matches(&self, other: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), other.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Who made a request, for the audit log of writes: the peer address and how it was admitted.
#[derive(Debug, Clone)]
pub(super) struct Actor {
    pub(super) peer: SocketAddr,
    pub(super) via_token: bool,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.via_token { "token" } else { "loopback" };
        write!(f, "{} ({how})", self.peer)
    }
}

/// The host part of a `Host` header value (`[::1]:8080` → `::1`, `localhost:80` → `localhost`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn is_loopback_name(host: &str) -> bool {
    let h = host_name(host);
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a request against the console's rules; `Err` is the refusal to send.
fn check(st: &AppState, req: &Request) -> Result<bool, ApiError> {
    let headers = req.headers();
    let host = header(headers, header::HOST).unwrap_or("");
    if !req.uri().path().starts_with("/api/") {
        return Ok(false);
    }
    let via_token = match &st.token {
        Some(token) => {
            let given = header(headers, header::AUTHORIZATION)
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !token.matches(given) {
                return Err(ApiError::Unauthorized);
            }
            true
        }
        None => {
            // Without a token the console is loopback-only; a page of another site that
            // rebinds its name to 127.0.0.1 sends its own name as `Host`.
            if st.loopback && !is_loopback_name(host) {
                return Err(ApiError::Forbidden(
                    "the `Host` header does not name a loopback address".to_owned(),
                ));
            }
            false
        }
    };
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return Ok(via_token);
    }
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    if !st.writes {
        return Err(ApiError::Forbidden(
            "the console is read-only: start it with `--allow-writes` to change anything"
                .to_owned(),
        ));
    }
    let csrf = header(headers, CSRF_HEADER).unwrap_or("");
    if !st.csrf.matches(csrf) {
        return Err(ApiError::Forbidden(format!(
            "a write needs the `{CSRF_HEADER}` header from `GET /api/session`"
        )));
    }
    // The console's own origin: its `Host`, over HTTP or (behind a TLS proxy) HTTPS.
    if let Some(origin) = header(headers, header::ORIGIN)
        && origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_none_or(|h| !h.eq_ignore_ascii_case(host))
    {
        return Err(ApiError::Forbidden(format!(
            "origin `{origin}` is not the console's"
        )));
    }
    Ok(via_token)
}

/// The middleware: refuses what [`check`] refuses, records the [`Actor`], adds the security
/// headers.
pub(super) async fn guard(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let mut resp = match check(&st, &req) {
        Ok(via_token) => {
            req.extensions_mut().insert(Actor { peer, via_token });
            next.run(req).await
        }
        Err(e) => {
            if req.method() == Method::POST {
                tracing::warn!(
                    target: "opsc::console::audit",
                    who = %Actor { peer, via_token: false },
                    path = %req.uri().path(),
                    refused = %e,
                    "write refused"
                );
            }
            e.into_response()
        }
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let t = Token::new("0123456789abcdef").expect("token");
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcdeF"));
        assert!(!t.matches("0123456789abcde"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "10.0.0.1:80",
            "",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }

    #[test]
    fn random_tokens_differ() {
        let (a, b) = (Token::random(), Token::random());
        assert_eq!(a.expose().len(), 64);
        assert!(!a.matches(b.expose()));
    }
}
