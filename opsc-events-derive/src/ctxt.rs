//! Collects every error found in one item so they are reported together.

use std::cell::{Cell, RefCell};
use std::fmt::Display;

use quote::ToTokens;

/// Error accumulator; `check` returns them all combined.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
    /// A `#[serde]` attribute that serde itself rejects was seen (serde reports it).
    serde_rejects: Cell<bool>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Ctxt::default()
    }

    /// Records an error spanned on `tokens`.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, msg: M) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens.into_token_stream(), msg));
    }

    /// Records a syn error.
    pub(crate) fn syn_error(&self, err: syn::Error) {
        self.errors.borrow_mut().push(err);
    }

    /// Notes that serde will reject one of its attributes: it reports the error itself and
    /// generates no impls, so checks that the item implements `Serialize` would only add noise.
    pub(crate) fn serde_rejects(&self) {
        self.serde_rejects.set(true);
    }

    /// Whether [`Ctxt::serde_rejects`] was called.
    pub(crate) fn serde_rejected(&self) -> bool {
        self.serde_rejects.get()
    }

    /// All errors combined, or `None`.
    pub(crate) fn check(self) -> Option<syn::Error> {
        let mut errors = self.errors.into_inner().into_iter();
        let mut combined = errors.next()?;
        for e in errors {
            combined.combine(e);
        }
        Some(combined)
    }
}

/// A container attribute value that may be set once: a second setting is an error on the key.
pub(crate) struct Attr<'c, T> {
    cx: &'c Ctxt,
    name: &'static str,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    pub(crate) fn none(cx: &'c Ctxt, name: &'static str) -> Self {
        Attr {
            cx,
            name,
            value: None,
        }
    }

    /// Sets the value; a duplicate is reported on the second key.
    pub(crate) fn set<A: ToTokens>(&mut self, key: A, value: T) {
        if self.value.is_some() {
            self.cx
                .error_spanned_by(key, format!("duplicate `{}` key; set it once", self.name));
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}
