//! `portcullis`: parse the command line, start telemetry, dispatch. Nothing else lives here.

use clap::Parser;

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
