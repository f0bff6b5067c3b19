//! `Result<(), HandlerError>`: `?` on std errors gives retryable errors,
//! `HandlerError::permanent` a permanent one.

use std::future::Future;
use std::pin::pin;
use std::task::{Poll, Waker};

use opsc_events::handler::HandlerRegistration;
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(stream = "assets")]
pub struct AssetImported {
    pub asset_id: u64,
    pub raw: String,
}

#[handler(stream = "assets")]
async fn import(event: AssetImported) -> Result<(), HandlerError> {
    let n: u64 = event.raw.parse()?; // ParseIntError
    if n == 0 {
        return Err(HandlerError::permanent("zero is never a valid size"));
    }
    if n == 404 {
        std::fs::read("/nonexistent/opsc-events-ui-test")?; // io::Error
    }
    Ok(())
}

/// Runs a handler that never waits.
fn run<F: Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the handler does not wait"),
    }
}

fn event(raw: &str) -> AssetImported {
    AssetImported {
        asset_id: 7,
        raw: raw.to_owned(),
    }
}

fn main() {
    assert!(run(import(event("12"))).is_ok());
    let parse = run(import(event("x"))).unwrap_err();
    assert!(parse.is_retryable());
    assert!(parse.source().is::<std::num::ParseIntError>());
    let io = run(import(event("404"))).unwrap_err();
    assert!(io.is_retryable());
    assert!(io.source().is::<std::io::Error>());
    let permanent = run(import(event("0"))).unwrap_err();
    assert!(!permanent.is_retryable());
    assert_eq!(permanent.to_string(), "zero is never a valid size");

    assert!(
        opsc_events::__private::inventory::iter::<HandlerRegistration>
            .into_iter()
            .any(|r| r.name == "import")
    );
}
