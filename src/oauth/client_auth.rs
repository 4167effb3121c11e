//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients; exactly one method per request.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::client_cache::ClientCache;
use super::error::{oauth, TokenError};
use super::params::Params;
use super::ErrorCode::{InvalidClient, InvalidRequest};
use crate::domain::clients::{could_be_client_id, Client};
use crate::domain::secret::Secret;
use crate::store::Pool;

/// What the request presented, before it is checked against the store.
#[derive(Debug)]
struct Presented {
    client_id: String,
    secret: Option<Secret>,
}

fn presented(params: &Params, authorization: Option<&str>) -> Result<Presented, TokenError> {
    if let Some(header) = authorization {
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return oauth(
                InvalidClient,
                "only HTTP Basic client authentication is supported",
            );
        };
        let Some((id, secret)) = decode_basic(encoded.trim()) else {
            return oauth(InvalidClient, "malformed Basic credentials");
        };
        // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        if params.contains("client_secret") {
            return oauth(
                InvalidRequest,
                "client authenticated with both Basic and client_secret",
            );
        }
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return oauth(
                InvalidRequest,
                "client_id in the body differs from the Basic credentials",
            );
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(Secret::from_presented(secret)),
        });
    }
    match (params.get("client_id"), params.get("client_secret")) {
        (Some(id), secret) => Ok(Presented {
            client_id: id.to_string(),
            secret: secret.map(Secret::from_presented),
        }),
        (None, _) => oauth(InvalidClient, "client authentication is required"),
    }
}

/// The client id and secret of Basic credentials (`encoded`: what follows `Basic `). RFC 6749
/// §2.3.1: each is form-urlencoded before the Basic encoding, so each is decoded here exactly
/// (`+` is a space, `%XX` a byte; `&` and `=` are themselves). `None` if the base64, the
/// `id:secret` shape or the UTF-8 inside is malformed, or the id is empty.
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let raw = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| -> Option<String> {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let id = decode(id).filter(|id| !id.is_empty())?;
    Some((id, decode(secret)?))
}

/// Authenticates the client of a token request; every failure is `invalid_client`.
pub async fn authenticate(
    pool: &Pool,
    cache: &ClientCache,
    params: &Params,
    authorization: Option<&str>,
) -> Result<Arc<Client>, TokenError> {
    let p = presented(params, authorization)?;
    // An id no client can have never reaches the database (MariaDB refuses to compare
    // non-ASCII text with the ASCII column, which would be a 500).
    if !could_be_client_id(&p.client_id) {
        return oauth(InvalidClient, "unknown client or bad credentials");
    }
    let (client, cached) = cache.get(pool, &p.client_id).await?;
    let client = match check(client, &p) {
        // A secret that fails against a remembered row may be a freshly rotated one: look again.
        Err(_) if cached => check(cache.fresh(pool, &p.client_id).await?, &p),
        result => result,
    }?;
    // The request's log lines name the client from here on (never its secret).
    tracing::Span::current().record("client_id", client.client_id.as_str());
    Ok(client)
}

fn check(client: Option<Arc<Client>>, p: &Presented) -> Result<Arc<Client>, TokenError> {
    let Some(client) = client else {
        return oauth(InvalidClient, "unknown client or bad credentials");
    };
    match (&client.secret_hash, &p.secret) {
        (Some(stored), Some(secret)) if secret.digest().matches(stored.as_bytes()) => Ok(client),
        (None, None) => Ok(client),
        (None, Some(_)) => oauth(InvalidClient, "a public client has no secret"),
        _ => oauth(InvalidClient, "unknown client or bad credentials"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        // "my client" / "s+cr%t" as RFC 6749 §2.3.1 encodes them.
        let encoded = STANDARD.encode("my+client:s%2Bcr%25t");
        assert_eq!(
            decode_basic(&encoded),
            Some(("my client".into(), "s+cr%t".into()))
        );
        assert_eq!(decode_basic("%%%"), None);
        assert_eq!(decode_basic(&STANDARD.encode("nocolon")), None);
    }

    #[test]
    fn ampersand_and_equals_are_part_of_the_secret() {
        // Decoding each part as a one-field form used to cut "a&b=c" to "a".
        let encoded = STANDARD.encode("id:a&b=c");
        assert_eq!(decode_basic(&encoded), Some(("id".into(), "a&b=c".into())));
        // A %-escape that decodes to invalid UTF-8 is malformed, not replaced.
        assert_eq!(decode_basic(&STANDARD.encode("id:%FF")), None);
    }
}
