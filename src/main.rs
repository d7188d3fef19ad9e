//! The `safegate` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One crypto provider for every TLS user in the process (tonic, sqlx, OTLP).
    let _ = rustls::crypto::ring::default_provider().install_default();
    safegate::cli::run(safegate::cli::Cli::parse())
}
