//! What `#[handler]` registers: the handler's identity, its policy and a type-erased entry point.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::context::Context;
use super::error::HandlerError;
use super::state::Requirement;
use crate::envelope::{DecodeError, Envelope};
use crate::event::{Event, known_versions};
use crate::schema::Schema;

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only events published after the group is created (`$`).
    Latest,
    /// Every event still in the stream (`0`).
    Earliest,
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// Always wait this long.
    Fixed(Duration),
    /// Wait a random time in `0..=min(max, initial × 2^(attempt-1))` ("full jitter").
    Exponential {
        /// The first delay's upper bound.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
}

/// The default per-attempt timeout (also the base of the default `claim_after`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A handler's policy, from its attribute (defaults as in the SPEC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerConfig {
    /// Attempts after the first failure.
    pub retries: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Dead-letter after the last attempt (else log and drop).
    pub dead_letter: bool,
    /// Messages in flight per process.
    pub concurrency: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Idle time after which another consumer reclaims a message.
    pub claim_after: Duration,
    /// Where a new group starts.
    pub start: Start,
}

impl HandlerConfig {
    /// The defaults: 3 retries, `exponential(100ms, 30s)`, dead letters on, concurrency 1,
    /// timeout 30 s, `claim_after` = max(2 × timeout, 60 s), start at `latest`.
    ///
    /// The one place they are written: `#[handler]` emits `HandlerConfig::DEFAULT.<key>` (and
    /// [`HandlerConfig::default_claim_after`]) for every key it is not given.
    pub const DEFAULT: HandlerConfig = HandlerConfig {
        retries: 3,
        backoff: Backoff::Exponential {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        },
        dead_letter: true,
        concurrency: 1,
        timeout: DEFAULT_TIMEOUT,
        claim_after: HandlerConfig::default_claim_after(DEFAULT_TIMEOUT),
        start: Start::Latest,
    };

    /// The default `claim_after` for a timeout: max(2 × timeout, 60 s).
    pub const fn default_claim_after(timeout: Duration) -> Duration {
        let doubled = timeout.saturating_mul(2);
        if doubled.as_millis() > 60_000 {
            doubled
        } else {
            Duration::from_secs(60)
        }
    }
}

/// The event type a handler takes, as the runtime needs it.
#[derive(Debug, Clone, Copy)]
pub struct EventDescriptor {
    /// The Rust type, as written in the handler.
    pub type_name: &'static str,
    /// `Event::STREAM`.
    pub stream: &'static str,
    /// `Event::NAME`.
    pub name: &'static str,
    /// `Event::VERSION`.
    pub version: u16,
    /// `Event::FINGERPRINT`.
    pub fingerprint: u64,
    /// `Event::schema`.
    pub schema: fn() -> Schema,
    /// Every `(version, fingerprint)` the type decodes.
    pub versions: fn() -> Vec<(u16, u64)>,
}

impl EventDescriptor {
    /// The descriptor of `E`.
    pub const fn of<E: Event>(type_name: &'static str) -> Self {
        EventDescriptor {
            type_name,
            stream: E::STREAM,
            name: E::NAME,
            version: E::VERSION,
            fingerprint: E::FINGERPRINT,
            schema: E::schema,
            versions: known_versions::<E>,
        }
    }
}

/// Why a call did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// The payload could not be decoded as the handler's event.
    Decode(DecodeError),
    /// The handler (or an extractor) failed.
    Handler(HandlerError),
}

/// The future of one call.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send + 'static>>;

/// One `#[handler]` fn, registered with `inventory`.
#[derive(Debug)]
pub struct HandlerRegistration {
    /// The fn's name.
    pub name: &'static str,
    /// `module_path!()` where it is defined.
    pub module_path: &'static str,
    /// The `stream` attribute (equal to the event's stream, checked at compile time).
    pub stream: &'static str,
    /// The `group` attribute, if given.
    pub group: Option<&'static str>,
    /// The event type.
    pub event: EventDescriptor,
    /// The policy.
    pub config: HandlerConfig,
    /// Appends the state types the handler's extractors need.
    pub requirements: fn(&mut Vec<Requirement>),
    /// Decodes the envelope and calls the handler (for a batch handler: with a batch of one).
    pub call: fn(Envelope, Context) -> HandlerFuture,
    /// Set for a batch handler (`#[handler(batch = N)]`): entries read together are passed to
    /// it together.
    pub batch: Option<super::batch::BatchSpec>,
}

inventory::collect!(HandlerRegistration);

impl HandlerRegistration {
    /// The full path of the fn, `module::name`.
    pub fn path(&self) -> String {
        format!("{}::{}", self.module_path, self.name)
    }
}

/// A registered handler as `.only(..)` sees it.
#[derive(Debug, Clone, Copy)]
pub struct HandlerInfo<'a> {
    pub(crate) reg: &'static HandlerRegistration,
    pub(crate) group: &'a str,
}

impl HandlerInfo<'_> {
    /// The fn's name.
    pub fn name(&self) -> &'static str {
        self.reg.name
    }

    /// The module that defines it.
    pub fn module_path(&self) -> &'static str {
        self.reg.module_path
    }

    /// The stream it reads.
    pub fn stream(&self) -> &'static str {
        self.reg.stream
    }

    /// Its consumer group (the `group` attribute or `<service>.<fn name>`).
    pub fn group(&self) -> &str {
        self.group
    }

    /// The Rust type of its event.
    pub fn event_type(&self) -> &'static str {
        self.reg.event.type_name
    }

    /// The event's wire name.
    pub fn event_name(&self) -> &'static str {
        self.reg.event.name
    }

    /// Its policy.
    pub fn config(&self) -> &HandlerConfig {
        &self.reg.config
    }

    /// For a batch handler, the most messages one call receives and how long it waits for
    /// them (`batch`, `linger`).
    pub fn batch(&self) -> Option<(u32, Duration)> {
        self.reg.batch.map(|b| (b.size, b.linger))
    }
}

/// Used by generated code: decodes `envelope` as `E`.
pub fn decode_for_handler<E: Event>(envelope: &Envelope) -> Result<E, CallError> {
    crate::envelope::decode_event::<E>(envelope).map_err(CallError::Decode)
}
