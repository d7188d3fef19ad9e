//! The `safegate` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: answering a query allocates and frees many
/// small strings and messages, which glibc's malloc serves markedly slower
/// (`cargo bench --bench gateway`, which uses the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One crypto provider for every TLS user in the process (tonic, sqlx, OTLP).
    let _ = rustls::crypto::ring::default_provider().install_default();
    safegate::cli::run(safegate::cli::Cli::parse())
}
