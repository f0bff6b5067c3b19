//! Nothing here: the package exists for its test, `tests/otel.rs` (see `Cargo.toml`).
