//! What a handler returns when it fails.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

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
    retry_after: Option<Duration>,
}

impl HandlerError {
    /// The longest delay [`retry_after`](Self::retry_after) sets (longer ones are cut to it).
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

    /// A failure that is retried according to the handler's policy.
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        HandlerError {
            permanent: false,
            source: error.into(),
            retry_after: None,
        }
    }

    /// A failure that retrying cannot fix: the message is dead-lettered at once (reason
    /// `permanent`), skipping the remaining retries.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        HandlerError {
            permanent: true,
            source: error.into(),
            retry_after: None,
        }
    }

    /// The next attempt comes `delay` after this failure, instead of after the handler's
    /// backoff (an upstream said when to come back: HTTP 429 or 503 with `Retry-After`). The
    /// attempt still counts: after the last one the message is dead-lettered as usual. Delays
    /// above [`MAX_RETRY_AFTER`](Self::MAX_RETRY_AFTER) are cut to it; a permanent error is not
    /// retried at all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use opsc_events_runtime::HandlerError;
    ///
    /// let e = HandlerError::retryable("rate limited").retry_after(Duration::from_secs(30));
    /// assert_eq!(e.retry_delay(), Some(Duration::from_secs(30)));
    /// ```
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay.min(Self::MAX_RETRY_AFTER));
        self
    }

    /// [`retry_after`](Self::retry_after) from an HTTP `Retry-After` value: delay-seconds
    /// (`"120"`) or an HTTP-date (`"Wed, 21 Oct 2026 07:28:00 GMT"`, a date in the past meaning
    /// now). A value that is neither leaves the handler's backoff in charge.
    ///
    /// ```
    /// use std::time::Duration;
    /// use opsc_events_runtime::HandlerError;
    ///
    /// let e = HandlerError::retryable("429").retry_after_header("120");
    /// assert_eq!(e.retry_delay(), Some(Duration::from_secs(120)));
    /// let e = HandlerError::retryable("503").retry_after_header("soon");
    /// assert_eq!(e.retry_delay(), None);
    /// ```
    pub fn retry_after_header(self, value: &str) -> Self {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return self.retry_after(Duration::from_secs(secs));
        }
        match httpdate::parse_http_date(value) {
            Ok(at) => {
                let delay = at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                self.retry_after(delay)
            }
            Err(_) => self,
        }
    }

    /// The delay set with [`retry_after`](Self::retry_after), if any.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_after
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

impl HandlerError {
    /// The same failure for another message (a batch failed as a whole fails each of its
    /// messages): the text of the error and its chain, its permanence and its delay.
    pub(crate) fn duplicate(&self) -> HandlerError {
        HandlerError {
            permanent: self.permanent,
            source: self.to_string().into(),
            retry_after: self.retry_after,
        }
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
            .field("retry_after", &self.retry_after)
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
