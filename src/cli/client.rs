//! `portcullis client add | list | show | remove | rotate-secret | resource-server`. Secrets are
//! printed once.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use super::open_store;
use crate::domain::clients::{
    check_redirect_uri, Client, NewClientSpec, ACCESS_TOKEN_FORMAT, POST_LOGOUT_REDIRECT_URIS,
};
use crate::domain::registration::ID_TOKEN_ALG;
use crate::domain::secret::{prefix, Secret};
use crate::oauth::accounts::{self, Lifetimes};
use crate::settings::Settings;
use crate::store::clients;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client (confidential unless --public); prints its id and, once, its secret.
    Add {
        #[arg(long)]
        name: String,
        /// A redirect URI, exactly as the client will send it (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A public client (no secret; must use PKCE).
        #[arg(long)]
        public: bool,
        /// An allowed grant type (repeat); default: every grant the client type may use.
        #[arg(long = "grant-type", value_name = "TYPE")]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may ask for.
        #[arg(long, default_value = "")]
        scope: String,
        /// Access token lifetime for this client, overriding tokens.access_token_ttl_secs.
        #[arg(long, value_name = "SECONDS")]
        access_token_ttl: Option<i64>,
        /// Refresh token lifetime for this client, overriding tokens.refresh_token_ttl_secs.
        #[arg(long, value_name = "SECONDS")]
        refresh_token_ttl: Option<i64>,
        /// A resource server: may call the introspection endpoint (confidential clients only).
        #[arg(long)]
        resource_server: bool,
        /// How its OpenID Connect id_tokens are signed: RS256 (default), ES256 or EdDSA.
        #[arg(long, value_name = "ALG", value_parser = parse_id_token_alg)]
        id_token_alg: Option<String>,
        /// Its access tokens: opaque (default; introspect them) or jwt (RFC 9068, signed with
        /// the id_token algorithm, validated by resource servers against the JWKS).
        #[arg(long, value_name = "FORMAT", value_parser = ["opaque", "jwt"])]
        access_token_format: Option<String>,
        /// Where RP-Initiated Logout may send the user afterwards (repeat for several).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List,
    /// Show one client (never its secret).
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client; its codes, tokens and consents stop working.
    Remove {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Issue a new secret for a confidential client; the old one stops working.
    RotateSecret {
        // Ids made before they were kept from starting with '-' (e.g. loaded from a dump).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Allow (`on`) or stop (`off`) a confidential client calling the introspection endpoint.
    /// Running servers see the change within cache.client_ttl_secs.
    ResourceServer {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

pub async fn run(settings: &Settings, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Add {
            name,
            redirect_uris,
            public,
            grant_types,
            scope,
            access_token_ttl,
            refresh_token_ttl,
            resource_server,
            id_token_alg,
            access_token_format,
            post_logout_redirect_uris,
            json,
        } => {
            let spec = NewClientSpec {
                name,
                redirect_uris,
                public,
                grant_types,
                scope,
                auth_method: None,
                resource_server,
            };
            // Validate before touching the database, so a typo never needs a connection.
            for uri in &post_logout_redirect_uris {
                check_redirect_uri(uri, public)?;
            }
            spec.clone().validate()?;
            let pool = open_store(settings).await?;
            let lifetimes = Lifetimes {
                access_token_ttl,
                refresh_token_ttl,
            };
            let mut extra = serde_json::Map::new();
            if let Some(alg) = id_token_alg {
                extra.insert(ID_TOKEN_ALG.into(), json!(alg));
            }
            if let Some(format) = access_token_format {
                extra.insert(ACCESS_TOKEN_FORMAT.into(), json!(format));
            }
            if !post_logout_redirect_uris.is_empty() {
                extra.insert(
                    POST_LOGOUT_REDIRECT_URIS.into(),
                    json!(post_logout_redirect_uris),
                );
            }
            let (client, secret) =
                accounts::create_client_with(&pool, spec, lifetimes, extra, crate::now()).await?;
            let mut out = describe(&client);
            if let Some(s) = &secret {
                out["client_secret"] = json!(s.expose());
            }
            if json {
                println!("{out}");
            } else {
                println!("client_id: {}", client.client_id);
                if let Some(s) = &secret {
                    println!("client_secret: {}", s.expose());
                    println!("(the secret is shown only now; store it safely)");
                }
            }
        }
        ClientCommand::List => {
            let pool = open_store(settings).await?;
            println!(
                "{:<24} {:<12} {:<30} grant types",
                "client_id", "type", "name"
            );
            for c in clients::list(&pool).await? {
                let kind = if c.is_public() {
                    "public"
                } else {
                    "confidential"
                };
                println!(
                    "{:<24} {:<12} {:<30} {}",
                    c.client_id, kind, c.name, c.grant_types
                );
            }
        }
        ClientCommand::Show { client_id } => {
            let pool = open_store(settings).await?;
            let Some(c) = clients::find(&pool, &client_id).await? else {
                bail!("no client with id {client_id:?}");
            };
            println!("{}", serde_json::to_string_pretty(&describe(&c))?);
        }
        ClientCommand::Remove { client_id } => {
            let pool = open_store(settings).await?;
            if !clients::remove(&pool, &client_id).await? {
                bail!("no client with id {client_id:?}");
            }
            println!("removed client {client_id}");
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let pool = open_store(settings).await?;
            let secret = Secret::generate(prefix::CLIENT_SECRET);
            if !clients::set_secret_hash(&pool, &client_id, &secret.digest()).await? {
                match clients::find(&pool, &client_id).await? {
                    Some(_) => bail!("client {client_id:?} is public and has no secret"),
                    None => bail!("no client with id {client_id:?}"),
                }
            }
            if json {
                println!(
                    "{}",
                    json!({ "client_id": client_id, "client_secret": secret.expose() })
                );
            } else {
                println!("client_id: {client_id}");
                println!("client_secret: {}", secret.expose());
                println!("(the old secret no longer works; the new one is shown only now)");
            }
        }
        ClientCommand::ResourceServer { client_id, state } => {
            let pool = open_store(settings).await?;
            let on = state == "on";
            if !clients::set_resource_server(&pool, &client_id, on).await? {
                match clients::find(&pool, &client_id).await? {
                    Some(_) => {
                        bail!("client {client_id:?} is public: a resource server needs a secret")
                    }
                    None => bail!("no client with id {client_id:?}"),
                }
            }
            let verb = if on { "may now" } else { "may no longer" };
            println!("client {client_id} {verb} introspect tokens");
        }
    }
    Ok(())
}

/// A client's public description (no secret material).
fn describe(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "client_name": c.name,
        "client_type": if c.is_public() { "public" } else { "confidential" },
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types.names(),
        "scope": c.scope.to_string(),
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "access_token_ttl": c.access_token_ttl,
        "refresh_token_ttl": c.refresh_token_ttl,
        "resource_server": c.resource_server,
        "id_token_signed_response_alg": crate::oauth::id_token::client_alg(c).name(),
        "access_token_format": c.access_token_format().as_str(),
        "post_logout_redirect_uris": c.post_logout_redirect_uris().collect::<Vec<_>>(),
        "created_at": c.created_at,
    })
}

fn parse_id_token_alg(s: &str) -> Result<String, String> {
    crate::keys::Algorithm::from_name(s)
        .map(|a| a.name().to_string())
        .ok_or_else(|| format!("{s:?} is not one of RS256, ES256, EdDSA"))
}
