//! `portcullis registration-token create [--expires-in SECONDS] [--uses N]`: an initial access
//! token for dynamic client registration (RFC 7591 §3), printed once.

use anyhow::bail;
use clap::Subcommand;

use super::open_store;
use crate::domain::secret::Secret;
use crate::oauth::registration::INITIAL_TOKEN_PREFIX;
use crate::settings::Settings;
use crate::store::models::RegistrationToken;
use crate::store::registration_tokens;

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Create a token developers send as `Authorization: Bearer` to POST /oauth2/register.
    Create {
        /// Seconds until it expires (default: never).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<i64>,
        /// How many registrations it allows (default: unlimited).
        #[arg(long, value_name = "N")]
        uses: Option<i64>,
    },
}

pub async fn run(settings: &Settings, cmd: RegistrationTokenCommand) -> anyhow::Result<()> {
    let RegistrationTokenCommand::Create { expires_in, uses } = cmd;
    if expires_in.is_some_and(|s| s <= 0) || uses.is_some_and(|n| n <= 0) {
        bail!("--expires-in and --uses must be positive");
    }
    let pool = open_store(settings).await?;
    let now = crate::now();
    let token = Secret::generate(INITIAL_TOKEN_PREFIX);
    registration_tokens::insert(
        &pool,
        &RegistrationToken {
            token_hash: token.digest().as_bytes().to_vec(),
            uses_left: uses,
            created_at: now,
            expires_at: expires_in.map(|s| now + s),
        },
    )
    .await?;
    println!("{}", token.expose());
    eprintln!(
        "(shown only now; it allows {} registration(s), {})",
        uses.map_or("unlimited".to_string(), |n| n.to_string()),
        expires_in.map_or("never expires".to_string(), |s| format!("expires in {s} s"))
    );
    Ok(())
}
