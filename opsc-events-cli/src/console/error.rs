//! The API's errors: each a status code and a JSON body `{"error": "..."}`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: a parameter is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the token is missing or wrong.
    #[error("a token is required: `Authorization: Bearer <token>`")]
    Unauthorized,
    /// 403: not allowed (read-only, CSRF, origin, host).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("{0}")]
    NotFound(String),
    /// 405: the API takes `GET` and `POST` only.
    #[error("the API takes GET for reads and POST for writes")]
    MethodNotAllowed,
    /// 502: the broker failed (the message names the command and key, never a password).
    #[error("the broker failed: {0}")]
    Broker(#[from] opsc_events_runtime::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Broker(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Bearer".parse()
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}
