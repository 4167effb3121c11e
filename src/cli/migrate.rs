//! `portcullis migrate run | revert [--to VERSION | --all] | redo | status`.

use clap::Subcommand;

use crate::settings::Settings;
use crate::store::migrations::{self, Action, Outcome};
use crate::store::Pool;

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply every pending migration.
    Run,
    /// Roll back the newest migration (or down to --to VERSION, or --all).
    Revert {
        /// Revert until this version is the newest applied one.
        #[arg(long, value_name = "VERSION", conflicts_with = "all")]
        to: Option<String>,
        /// Revert every migration.
        #[arg(long)]
        all: bool,
    },
    /// Revert the newest migration and apply it again.
    Redo,
    /// List every embedded migration as applied or pending.
    Status,
}

pub async fn run(settings: &Settings, cmd: MigrateCommand) -> anyhow::Result<()> {
    Pool::build(&settings.database)?.check_server().await?;
    let action = match cmd {
        MigrateCommand::Run => Action::RunPending,
        MigrateCommand::Revert { all: true, .. } => Action::RevertAll,
        MigrateCommand::Revert { to: Some(v), .. } => Action::RevertTo(v),
        MigrateCommand::Revert { .. } => Action::RevertLast,
        MigrateCommand::Redo => Action::Redo,
        MigrateCommand::Status => Action::Status,
    };
    let verb = match &action {
        Action::RunPending => "applied",
        Action::Redo => "redone",
        _ => "reverted",
    };
    match migrations::run(settings.database.url.expose(), action).await? {
        Outcome::Changed(versions) if versions.is_empty() => println!("nothing to do"),
        Outcome::Changed(versions) => {
            for v in versions {
                println!("{verb} {v}");
            }
        }
        Outcome::Status(list) => {
            for m in list {
                println!(
                    "{} {} {}",
                    if m.applied { "applied" } else { "pending" },
                    m.version,
                    m.name
                );
            }
        }
    }
    Ok(())
}
