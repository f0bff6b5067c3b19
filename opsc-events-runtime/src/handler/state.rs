//! Shared state (`.state(value)`) and the extractors handlers take after the event.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::context::Context;
use super::error::HandlerError;

/// Shared state added with `RuntimeBuilder::state`, by type.
#[derive(Default)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>,
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.values.values().map(|(n, _)| n))
            .finish()
    }
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(
            TypeId::of::<T>(),
            (std::any::type_name::<T>(), Arc::new(value)),
        );
    }

    pub(crate) fn contains(&self, id: TypeId) -> bool {
        self.values.contains_key(&id)
    }

    pub(crate) fn get<T: Clone + 'static>(&self) -> Option<T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .cloned()
    }
}

/// A piece of state a handler needs, checked when the runtime is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The state type's id.
    pub type_id: TypeId,
    /// The state type's name, for the startup error.
    pub type_name: &'static str,
}

/// Shared state of type `T`, added to the runtime with `.state(value)`; extracted by cloning
/// (put an `Arc` inside for large values).
///
/// ```
/// use opsc_events_runtime::handler::State;
///
/// #[derive(Clone)]
/// struct Db;
/// fn takes(State(_db): State<Db>) {}
/// takes(State(Db));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

/// A handler parameter after the event: `Context` or `State<T>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter",
    label = "not an extractor",
    note = "after the event, a handler takes only `Context` and `State<T>`: to pass a `{Self}` in, add it to the runtime with `.state(value)` and take `State<{Self}>`"
)]
pub trait FromContext: Sized + Send + 'static {
    /// Extracts the value for one delivery.
    fn from_context(ctx: &Context) -> Result<Self, HandlerError>;

    /// Declares what the runtime must provide (checked by `build()`).
    fn requirements(_out: &mut Vec<Requirement>) {}
}

impl FromContext for Context {
    fn from_context(ctx: &Context) -> Result<Self, HandlerError> {
        Ok(ctx.clone())
    }
}

impl<T: Clone + Send + Sync + 'static> FromContext for State<T> {
    fn from_context(ctx: &Context) -> Result<Self, HandlerError> {
        ctx.state::<T>().map(State).ok_or_else(|| {
            HandlerError::permanent(format!(
                "state `{}` was not added to the runtime",
                std::any::type_name::<T>()
            ))
        })
    }

    fn requirements(out: &mut Vec<Requirement>) {
        out.push(Requirement {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        });
    }
}
