//! `portcullis keys list | rotate | retire | generate-encryption-key`: the JOSE signing keys
//! (`crate::keys`). Running servers see a change at their next re-read (`keys.refresh_secs`).

use anyhow::bail;
use clap::Subcommand;

use super::open_store;
use crate::keys::lifecycle::State;
use crate::keys::{self, Algorithm, Kek};
use crate::settings::Settings;
use crate::store::signing_keys;
use crate::web::pages::format_time;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys and their states.
    List,
    /// Make a new key per algorithm (or for --alg only). It is published at once and signs
    /// after keys.publish_ahead_secs; the key it replaces is then retired.
    Rotate {
        /// RS256, ES256 or EdDSA (default: all three).
        #[arg(long, value_parser = parse_alg)]
        alg: Option<Algorithm>,
        /// Sign with the new key at once (a compromised key): verifiers that cached the JWKS
        /// meet an unknown kid until they fetch it again.
        #[arg(long)]
        now: bool,
    },
    /// Cancel a rotation: a key that has not started signing never will. It stays published
    /// for keys.retired_publish_secs. (An active key is replaced with `rotate --now`.)
    Retire {
        // A kid is an RFC 7638 thumbprint in base64url: one in 64 starts with '-'.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Print a new random key-encryption key for keys.encryption_key.
    GenerateEncryptionKey,
}

fn parse_alg(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(s).ok_or_else(|| format!("{s:?} is not one of RS256, ES256, EdDSA"))
}

pub async fn run(settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    let publish_secs = settings.keys.retired_publish_secs;
    match cmd {
        KeysCommand::GenerateEncryptionKey => println!("{}", Kek::generate()?),
        KeysCommand::List => {
            let pool = open_store(settings).await?;
            let now = crate::now();
            let rows = signing_keys::all(&pool).await?;
            println!(
                "{:<44} {:<6} {:<8} {:<21} until",
                "kid", "alg", "state", "signs from"
            );
            for k in keys::describe(&rows, now, publish_secs) {
                let until = match k.state {
                    State::Retired { since } => {
                        format!("published until {}", format_time(since + publish_secs))
                    }
                    _ => String::new(),
                };
                println!(
                    "{:<44} {:<6} {:<8} {:<21} {until}",
                    k.kid,
                    k.alg.name(),
                    k.state.name(),
                    format_time(k.activates_at)
                );
            }
        }
        KeysCommand::Rotate { alg, now: at_once } => {
            let pool = open_store(settings).await?;
            let (kek, _) = Kek::resolve(settings)?;
            let now = crate::now();
            let ahead = settings.keys.publish_ahead_secs;
            let algs = alg.map_or(Algorithm::ALL.to_vec(), |a| vec![a]);
            for alg in algs {
                let (kid, activates_at) =
                    keys::rotate(&pool, &kek, alg, at_once, ahead, now).await?;
                println!(
                    "{alg}: made {kid}; published now, signs from {}",
                    format_time(activates_at)
                );
            }
            eprintln!(
                "(running servers read it within keys.refresh_secs = {} s)",
                settings.keys.refresh_secs
            );
        }
        KeysCommand::Retire { kid } => {
            let pool = open_store(settings).await?;
            let now = crate::now();
            let rows = signing_keys::all(&pool).await?;
            let Some(key) = keys::describe(&rows, now, publish_secs)
                .into_iter()
                .find(|k| k.kid == kid)
            else {
                bail!("no signing key {kid:?} (see `portcullis keys list`)");
            };
            match key.state {
                State::Active => bail!(
                    "{kid} is the active {} key; `portcullis keys rotate --alg {} --now` replaces it at once, which retires it",
                    key.alg,
                    key.alg
                ),
                State::Retired { since } => bail!(
                    "{kid} is already retired (since {})",
                    format_time(since)
                ),
                State::Expired => bail!("{kid} has expired and is no longer published"),
                State::Next => {
                    if !signing_keys::retire(&pool, &kid, now).await? {
                        bail!("{kid} was retired meanwhile");
                    }
                    println!(
                        "retired {kid}; it will never sign, and stays published until {}",
                        format_time(now + publish_secs)
                    );
                }
            }
        }
    }
    Ok(())
}
