//! `opsc`: the operator's tool — streams, lag, pending and dead letters; tail; replay.

fn main() -> std::process::ExitCode {
    opsc_events_runtime::cli::main()
}
