//! RFC 7591 client metadata: parsing and validation for dynamic registration (and RFC 7592
//! updates). Errors carry the RFC 7591 §3.2.2 code.

use serde_json::{Map, Value};

use super::clients::{
    check_redirect_uri, AccessTokenFormat, NewClientSpec, ACCESS_TOKEN_FORMAT, AUTH_BASIC,
    AUTH_NONE, GRANT_AUTHORIZATION_CODE, POST_LOGOUT_REDIRECT_URIS,
};
use super::error_code::ErrorCode;
use super::scope::Scope;

/// Descriptive metadata kept as given (after validation) and returned to the client.
const URI_FIELDS: [&str; 4] = ["client_uri", "logo_uri", "tos_uri", "policy_uri"];
const TEXT_FIELDS: [&str; 3] = ["client_name", "software_id", "software_version"];
/// The metadata field naming the client's id_token algorithm (default RS256).
pub const ID_TOKEN_ALG: &str = "id_token_signed_response_alg";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct MetadataError {
    /// `InvalidRedirectUri` or `InvalidClientMetadata`.
    pub code: ErrorCode,
    pub description: String,
}

fn invalid(d: impl Into<String>) -> MetadataError {
    MetadataError {
        code: ErrorCode::InvalidClientMetadata,
        description: d.into(),
    }
}

fn invalid_redirect(d: impl Into<String>) -> MetadataError {
    MetadataError {
        code: ErrorCode::InvalidRedirectUri,
        description: d.into(),
    }
}

/// Validated metadata: what to store, and the descriptive fields to echo back.
#[derive(Debug, Clone)]
pub struct Registration {
    pub spec: NewClientSpec,
    /// `response_types` and the descriptive fields, stored as the client's metadata JSON.
    pub metadata: Value,
}

fn strings(v: &Value, field: &str) -> Result<Option<Vec<String>>, MetadataError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("{field} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(format!("{field} must be an array of strings"))),
    }
}

fn string<'a>(v: &'a Value, field: &str) -> Result<Option<&'a str>, MetadataError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{field} must be a string"))),
    }
}

/// Validates RFC 7591 §2 metadata. `allowed_scope` bounds what a registered client may ask for.
pub fn validate(body: &Value, allowed_scope: &Scope) -> Result<Registration, MetadataError> {
    if !body.is_object() {
        return Err(invalid("the request body must be a JSON object"));
    }
    let auth_method = string(body, "token_endpoint_auth_method")?
        .unwrap_or(AUTH_BASIC)
        .to_string();
    let public = auth_method == AUTH_NONE;
    // §2: grant_types defaults to authorization_code, response_types to code.
    let grant_types =
        strings(body, "grant_types")?.unwrap_or_else(|| vec![GRANT_AUTHORIZATION_CODE.into()]);
    let uses_code = grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE);
    let response_types = strings(body, "response_types")?.unwrap_or_else(|| {
        if uses_code {
            vec!["code".into()]
        } else {
            vec![]
        }
    });
    if response_types.iter().any(|r| r != "code") {
        return Err(invalid("only the response type \"code\" is supported"));
    }
    // §2.1: grant_types and response_types must agree.
    if uses_code != response_types.iter().any(|r| r == "code") {
        return Err(invalid(
            "grant_types authorization_code and response_types code go together (RFC 7591 §2.1)",
        ));
    }
    let redirect_uris = strings(body, "redirect_uris")?.unwrap_or_default();
    if uses_code && redirect_uris.is_empty() {
        return Err(invalid_redirect(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri, public).map_err(|e| invalid_redirect(e.to_string()))?;
    }
    let Some(scope) = Scope::requested(string(body, "scope")?, allowed_scope) else {
        return Err(invalid(format!("scope may only contain: {allowed_scope}")));
    };

    let mut metadata = Map::new();
    metadata.insert("response_types".into(), Value::from(response_types));
    for field in TEXT_FIELDS {
        if let Some(v) = string(body, field)? {
            if v.chars().count() > 255 || v.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "{field} must be at most 255 characters, without control characters"
                )));
            }
            metadata.insert(field.into(), Value::from(v));
        }
    }
    for field in URI_FIELDS {
        if let Some(v) = string(body, field)? {
            let ok =
                url::Url::parse(v).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http");
            if !ok || v.len() > 2000 {
                return Err(invalid(format!("{field} must be an absolute http(s) URL")));
            }
            metadata.insert(field.into(), Value::from(v));
        }
    }
    // OpenID Connect Dynamic Client Registration 1.0 §2: how its id_tokens are signed; only the
    // algorithms Portcullis signs with (never `none`).
    if let Some(alg) = string(body, ID_TOKEN_ALG)? {
        if crate::keys::Algorithm::from_name(alg).is_none() {
            return Err(invalid(format!(
                "{ID_TOKEN_ALG} must be one of RS256, ES256, EdDSA"
            )));
        }
        metadata.insert(ID_TOKEN_ALG.into(), Value::from(alg));
    }
    // RFC 9068 access tokens, per client: a Portcullis metadata field (RFC 7591 §2 lets a
    // server define its own), `opaque` (the default) or `jwt`.
    if let Some(format) = string(body, ACCESS_TOKEN_FORMAT)? {
        if AccessTokenFormat::parse(format).is_none() {
            return Err(invalid(format!(
                "{ACCESS_TOKEN_FORMAT} must be opaque or jwt"
            )));
        }
        metadata.insert(ACCESS_TOKEN_FORMAT.into(), Value::from(format));
    }
    // RP-Initiated Logout 1.0 §3.1: the same rules as redirect URIs.
    if let Some(uris) = strings(body, POST_LOGOUT_REDIRECT_URIS)? {
        for uri in &uris {
            check_redirect_uri(uri, public)
                .map_err(|e| invalid(format!("{POST_LOGOUT_REDIRECT_URIS}: {e}")))?;
        }
        metadata.insert(POST_LOGOUT_REDIRECT_URIS.into(), Value::from(uris));
    }
    if let Some(contacts) = strings(body, "contacts")? {
        metadata.insert("contacts".into(), Value::from(contacts));
    }
    let spec = NewClientSpec {
        name: string(body, "client_name")?.unwrap_or_default().to_string(),
        redirect_uris,
        public,
        grant_types,
        scope: scope.to_string(),
        auth_method: Some(auth_method),
        resource_server: false,
    };
    let spec = spec.validate().map_err(|e| match e {
        super::clients::ClientRuleError::RedirectUri(..) => invalid_redirect(e.to_string()),
        super::clients::ClientRuleError::Metadata(m) => invalid(m),
    })?;
    Ok(Registration {
        spec,
        metadata: Value::Object(metadata),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn allowed() -> Scope {
        Scope::parse("read write").unwrap()
    }

    #[test]
    fn defaults_follow_rfc7591() {
        let r = validate(
            &json!({"redirect_uris": ["https://a.example/cb"]}),
            &allowed(),
        )
        .unwrap();
        assert_eq!(r.spec.grant_types, ["authorization_code"]);
        assert_eq!(r.spec.auth_method().as_str(), "client_secret_basic");
        assert_eq!(r.spec.scope, "read write");
        assert_eq!(r.metadata["response_types"], json!(["code"]));
    }

    #[test]
    fn redirect_errors_are_invalid_redirect_uri() {
        for uris in [
            json!([]),
            json!(["http://a.example/cb"]),
            json!(["https://a.example/cb#f"]),
            json!(["com.example:/cb"]),
        ] {
            let e = validate(&json!({ "redirect_uris": uris }), &allowed()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRedirectUri, "{uris}");
        }
        // A native (public) client may use a private-use scheme.
        assert!(validate(
            &json!({"redirect_uris": ["com.example:/cb"], "token_endpoint_auth_method": "none"}),
            &allowed()
        )
        .is_ok());
    }

    #[test]
    fn metadata_errors_are_invalid_client_metadata() {
        let cases = [
            json!({"redirect_uris": "https://a.example/cb"}),
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code"], "response_types": []}),
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}),
            json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "javascript:alert(1)"}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            json!({"grant_types": ["password"]}),
            json!([1, 2]),
        ];
        for c in cases {
            assert_eq!(
                validate(&c, &allowed()).unwrap_err().code,
                ErrorCode::InvalidClientMetadata,
                "{c}"
            );
        }
    }
}
