//! Handlers: what `#[handler]` registers, the extractors it may take, and what it returns.

mod batch;
mod context;
mod error;
mod registration;
mod state;

pub use batch::{BatchContext, BatchError, BatchFuture, BatchSpec, FromBatchContext};
pub use context::Context;
pub(crate) use context::ContextParts;
pub use error::{HandlerError, IntoHandlerResult};
pub use registration::{
    Backoff, CallError, EventDescriptor, HandlerConfig, HandlerFuture, HandlerInfo,
    HandlerRegistration, Start, decode_for_handler,
};
pub(crate) use state::StateMap;
pub use state::{FromContext, Requirement, State};
