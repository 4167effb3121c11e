//! `portcullis`: parse the command line, start telemetry, dispatch. Nothing else lives here.

use clap::Parser;

/// mimalloc instead of glibc's malloc: the allocator was 15-19 % of the server's CPU samples on
/// the write paths (BENCHMARKS.md, session 11).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = portcullis::cli::Cli::parse();
    match portcullis::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
