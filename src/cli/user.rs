//! `portcullis user add | list | set-password | disable`.

use anyhow::bail;
use clap::Subcommand;

use super::{open_store, read_password};
use crate::domain::password::{self, Password};
use crate::oauth::accounts;
use crate::settings::Settings;
use crate::store::users;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (prompts for the password unless --password-stdin).
    Add {
        username: String,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Replace a user's password.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from logging in and end their sessions.
    Disable { username: String },
}

pub async fn run(settings: &Settings, cmd: UserCommand) -> anyhow::Result<()> {
    let iterations = settings.login.password_hash_iterations;
    match cmd {
        UserCommand::Add {
            username,
            password_stdin,
        } => {
            accounts::check_username(&username)?;
            let pool = open_store(settings).await?;
            if users::find_by_username(&pool, &username).await?.is_some() {
                bail!("user {username:?} already exists");
            }
            let password = Password::new(read_password(password_stdin, "Password")?);
            let user = accounts::create_user(&pool, &username, &password, iterations, crate::now())
                .await?;
            println!("created user {username} (id {})", user.id);
        }
        UserCommand::List => {
            let pool = open_store(settings).await?;
            println!("{:<24} {:<32} status", "id", "username");
            for u in users::list(&pool).await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!("{:<24} {:<32} {status}", u.id, u.username);
            }
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let pool = open_store(settings).await?;
            if users::find_by_username(&pool, &username).await?.is_none() {
                bail!("no user named {username:?}");
            }
            let hash = new_hash(password_stdin, iterations)?;
            users::set_password_hash(&pool, &username, &hash).await?;
            println!("password changed for {username}");
        }
        UserCommand::Disable { username } => {
            let pool = open_store(settings).await?;
            if !users::disable(&pool, &username).await? {
                bail!("no user named {username:?}");
            }
            println!("disabled {username}; their sessions have ended");
        }
    }
    Ok(())
}

fn new_hash(from_stdin: bool, iterations: u32) -> anyhow::Result<String> {
    let p = Password::new(read_password(from_stdin, "Password")?);
    password::validate(&p)?;
    Ok(password::hash(&p, iterations))
}
