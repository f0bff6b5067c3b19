//! Compile-time UI tests of the macros, run by trybuild: one `#[test]` per macro, each compiling
//! `tests/ui/<macro>/pass/*.rs` (built and run: their `main` asserts) and
//! `tests/ui/<macro>/fail/*.rs` (must fail with exactly the errors in the `.stderr` next to them).
//!
//! Regenerate the expected errors with `TRYBUILD=overwrite cargo test --test ui`, then read the
//! diff: every message must be readable and spanned on the offending token.

/// Runs the pass and fail cases of one macro, `tests/ui/<name>/{pass,fail}/*.rs`.
fn ui(name: &str) {
    let t = trybuild::TestCases::new();
    t.pass(format!("tests/ui/{name}/pass/*.rs"));
    t.compile_fail(format!("tests/ui/{name}/fail/*.rs"));
}

/// `#[derive(Event)]` and `#[derive(EventSchema)]`.
#[test]
fn event() {
    ui("event");
}

/// `#[handler(...)]`.
#[test]
fn handler() {
    ui("handler");
}
