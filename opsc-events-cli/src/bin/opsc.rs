//! `opsc`: the operator's tool — streams, lag, pending and dead letters; tail; replay; the web
//! console.

fn main() -> std::process::ExitCode {
    opsc_events_cli::main()
}
