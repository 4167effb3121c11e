//! The admin command line: one module per subcommand, all through the same store and
//! settings code as the server.

mod client;
mod config;
mod db;
mod keys;
mod migrate;
mod registration_token;
mod serve;
mod user;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::settings::Settings;
use crate::store::Pool;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An OAuth 2.0 authorization server"
)]
pub struct Cli {
    /// A TOML settings file, read after config/default.toml and before PORTCULLIS__* variables.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first when database.auto_migrate is on).
    Serve,
    /// Apply, revert or list the embedded schema migrations.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Create a MariaDB database and user; dump or load all data as JSON.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Manage the users who log in.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Validate or print the effective settings.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// JOSE signing keys: list, rotate, retire; make a key-encryption key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Initial access tokens for dynamic client registration.
    #[command(subcommand, name = "registration-token")]
    RegistrationToken(registration_token::RegistrationTokenCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log);
    for var in Settings::unknown_env_vars() {
        tracing::warn!(%var, "environment variable names no setting and is ignored");
    }
    match cli.command {
        Command::Serve => serve::run(settings).await,
        Command::Migrate(c) => migrate::run(&settings, c).await,
        Command::Db(c) => db::run(&settings, c).await,
        Command::User(c) => user::run(&settings, c).await,
        Command::Client(c) => client::run(&settings, c).await,
        Command::Config(c) => config::run(&settings, c),
        Command::Keys(c) => keys::run(&settings, c).await,
        Command::RegistrationToken(c) => registration_token::run(&settings, c).await,
    }
}

/// A pool for an admin command: checks the server and that the schema is there.
async fn open_store(settings: &Settings) -> anyhow::Result<Pool> {
    let pool = Pool::build(&settings.database)?;
    pool.check_server().await?;
    let status = crate::store::migrations::run(
        settings.database.url.expose(),
        crate::store::migrations::Action::Status,
    )
    .await?;
    if let crate::store::migrations::Outcome::Status(list) = status {
        if list.iter().any(|m| !m.applied) {
            if settings.database.auto_migrate {
                crate::store::migrations::run(
                    settings.database.url.expose(),
                    crate::store::migrations::Action::RunPending,
                )
                .await?;
            } else {
                anyhow::bail!(
                    "the database schema is not up to date; run `portcullis migrate run` first"
                );
            }
        }
    }
    Ok(pool)
}

/// Reads a secret from one line of standard input, or prompts twice without echo.
fn read_password(from_stdin: bool, what: &str) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password(format!("{what}: "))
        .context("cannot read the password from the terminal (use --password-stdin)")?;
    let second = rpassword::prompt_password(format!("{what} (again): "))
        .context("cannot read the password")?;
    if first != second {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
