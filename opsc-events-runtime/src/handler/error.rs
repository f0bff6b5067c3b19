//! What a handler returns when it fails.

use std::error::Error as StdError;
use std::fmt;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A handler's failure: retryable (the default) or permanent.
///
/// Any `std::error::Error + Send + Sync + 'static`, `anyhow::Error`, `String` or `&str` converts
/// into it, so `?` works inside a handler returning `Result<(), HandlerError>`.
/// `HandlerError` itself does not implement `std::error::Error`: that is what lets one blanket
/// `From` cover both error types and strings without a coherence conflict (as `anyhow::Error`
/// does).
///
/// ```
/// use opsc_events_runtime::HandlerError;
///
/// fn parse(s: &str) -> Result<u32, HandlerError> {
///     let n: u32 = s.parse()?; // ParseIntError → retryable HandlerError
///     if n == 0 {
///         return Err(HandlerError::permanent("zero is never valid"));
///     }
///     Ok(n)
/// }
/// assert!(parse("x").unwrap_err().is_retryable());
/// assert!(!parse("0").unwrap_err().is_retryable());
/// ```
pub struct HandlerError {
    permanent: bool,
    source: BoxError,
}

impl HandlerError {
    /// A failure that is retried according to the handler's policy.
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        HandlerError {
            permanent: false,
            source: error.into(),
        }
    }

    /// A failure that retrying cannot fix: the message is dead-lettered at once (reason
    /// `permanent`), skipping the remaining retries.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        HandlerError {
            permanent: true,
            source: error.into(),
        }
    }

    /// False for [`HandlerError::permanent`] errors.
    pub fn is_retryable(&self) -> bool {
        !self.permanent
    }

    /// The underlying error.
    pub fn source(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The underlying error, owned.
    pub fn into_source(self) -> BoxError {
        self.source
    }
}

impl<E: Into<BoxError>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        HandlerError::retryable(error)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("permanent", &self.permanent)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)?;
        let mut cause = self.source.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// What a handler fn may return: `()` or `Result<(), E>` with `E: Into<HandlerError>`.
#[diagnostic::on_unimplemented(
    message = "a handler must return `()` or `Result<(), E>` where `E` converts into `HandlerError`, not `{Self}`",
    note = "`E` may be `HandlerError`, any `std::error::Error + Send + Sync + 'static`, `anyhow::Error` or `String`"
)]
pub trait IntoHandlerResult {
    /// Converts the return value.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}
