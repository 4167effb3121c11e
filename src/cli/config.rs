//! `portcullis config check | show`.

use clap::Subcommand;

use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings without serving; exits non-zero with the reason.
    Check,
    /// Print the effective settings (secrets redacted).
    Show,
}

/// Loading already validated; reaching here means the settings are good.
pub fn run(settings: &Settings, cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check => {
            for var in Settings::unknown_env_vars() {
                println!("warning: {var} names no setting and is ignored");
            }
            println!(
                "configuration OK (database: {})",
                settings.database.url.redacted()
            );
        }
        ConfigCommand::Show => print!("{}", settings.to_redacted_toml()),
    }
    Ok(())
}
