//! `portcullis user add | list | set | set-password | disable`.

use anyhow::bail;
use clap::Subcommand;

use super::{open_store, read_password};
use crate::domain::password::{self, Password};
use crate::oauth::accounts;
use crate::settings::Settings;
use crate::store::models::Profile;
use crate::store::users;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (prompts for the password unless --password-stdin).
    Add {
        username: String,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// List users.
    List,
    /// Change a user's profile claims (what the `profile` and `email` scopes release).
    Set {
        username: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
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
            profile,
        } => {
            accounts::check_username(&username)?;
            // Checked before the password prompt, so a typo costs no retyping.
            let profile = profile.apply(Profile::default());
            accounts::check_profile(&profile)?;
            let pool = open_store(settings).await?;
            if users::find_by_username(&pool, &username).await?.is_some() {
                bail!("user {username:?} already exists");
            }
            let password = Password::new(read_password(password_stdin, "Password")?);
            let user = accounts::create_user_with(
                &pool,
                &username,
                &password,
                profile,
                iterations,
                crate::now(),
            )
            .await?;
            println!("created user {username} (id {})", user.id);
        }
        UserCommand::List => {
            let pool = open_store(settings).await?;
            println!("{:<24} {:<32} {:<9} email", "id", "username", "status");
            for u in users::list(&pool).await? {
                let status = if u.disabled { "disabled" } else { "active" };
                let email = match (&u.profile.email, u.profile.email_verified) {
                    (Some(e), true) => format!("{e} (verified)"),
                    (Some(e), false) => e.clone(),
                    (None, _) => String::new(),
                };
                println!("{:<24} {:<32} {status:<9} {email}", u.id, u.username);
            }
        }
        UserCommand::Set { username, profile } => {
            if profile.is_empty() {
                bail!("nothing to change: give at least one of --email, --email-verified, --name, --given-name, --family-name, --preferred-username");
            }
            let pool = open_store(settings).await?;
            let Some(user) = users::find_by_username(&pool, &username).await? else {
                bail!("no user named {username:?}");
            };
            let profile = profile.apply(user.profile);
            accounts::set_profile(&pool, &username, profile, crate::now()).await?;
            println!("profile changed for {username}");
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

/// The profile claims as flags. On `user set`, a flag left out keeps the value and an empty
/// value clears it; a new e-mail address is unverified unless `--email-verified true` says so.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// E-mail address (the `email` claim).
    #[arg(long)]
    email: Option<String>,
    /// Whether the address is known to be the user's (`email_verified`).
    #[arg(long, value_name = "true|false")]
    email_verified: Option<bool>,
    /// Full name (`name`).
    #[arg(long)]
    name: Option<String>,
    /// `given_name`.
    #[arg(long)]
    given_name: Option<String>,
    /// `family_name`.
    #[arg(long)]
    family_name: Option<String>,
    /// `preferred_username` (the username when not set).
    #[arg(long)]
    preferred_username: Option<String>,
}

impl ProfileArgs {
    fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.email_verified.is_none()
            && self.name.is_none()
            && self.given_name.is_none()
            && self.family_name.is_none()
            && self.preferred_username.is_none()
    }

    fn apply(self, mut p: Profile) -> Profile {
        let given = |v: String| (!v.is_empty()).then_some(v);
        if let Some(email) = self.email.map(given) {
            if email != p.email {
                p.email_verified = false;
            }
            p.email = email;
        }
        if let Some(v) = self.email_verified {
            p.email_verified = v;
        }
        for (field, value) in [
            (&mut p.name, self.name),
            (&mut p.given_name, self.given_name),
            (&mut p.family_name, self.family_name),
            (&mut p.preferred_username, self.preferred_username),
        ] {
            if let Some(v) = value {
                *field = given(v);
            }
        }
        p
    }
}

fn new_hash(from_stdin: bool, iterations: u32) -> anyhow::Result<String> {
    let p = Password::new(read_password(from_stdin, "Password")?);
    password::validate(&p)?;
    Ok(password::hash(&p, iterations))
}
