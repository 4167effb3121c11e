//! Pins on oxide-auth =0.6.1: the behaviours of its `code_grant` machines that Portcullis relies
//! on, and the ones it routes around (../shared/OXIDE-AUTH.md). An upgrade that changes any of
//! them fails here, by name, before it changes what the token endpoint answers.

use std::borrow::Cow;

use chrono::{Duration, Utc};
use oxide_auth::code_grant::accesstoken::{
    self, AccessToken, Authorization as CodeAuthorization, Output as CodeOutput,
};
use oxide_auth::code_grant::client_credentials::{self, ClientCredentials};
use oxide_auth::code_grant::error::AccessTokenErrorType as Kind;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::code_grant::refresh::{self, Refresh};
use oxide_auth::primitives::grant::{Extensions, Grant};

fn grant(client: &str, redirect: &str, scope: &str, until_secs: i64) -> Grant {
    Grant {
        owner_id: "alice".into(),
        client_id: client.into(),
        scope: scope.parse().unwrap(),
        redirect_uri: redirect.parse().unwrap(),
        until: Utc::now() + Duration::seconds(until_secs),
        extensions: Extensions::new(),
    }
}

// ---- authorization code ----------------------------------------------------------------------

struct CodeReq {
    redirect_uri: Option<&'static str>,
}

impl accesstoken::Request for CodeReq {
    fn valid(&self) -> bool {
        true
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some("the-code".into())
    }
    fn authorization(&self) -> CodeAuthorization<'_> {
        CodeAuthorization::Username("client-a".into())
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.redirect_uri.map(Cow::Borrowed)
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some("authorization_code".into())
    }
    fn extension(&self, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// Drives the code machine with `stored` as the recovered grant; the error kind, or None when
/// it reached the Issue step.
fn run_code(req: &CodeReq, stored: Grant) -> Option<Kind> {
    let recovered_scope = stored.scope.clone();
    let mut m = AccessToken::new(req);
    let mut stored = Some(Box::new(stored));
    let mut input = accesstoken::Input::None;
    loop {
        input = match m.advance(input) {
            CodeOutput::Authenticate { passdata, .. } => {
                // Relied on: a client named without a secret is asked about with no passdata.
                assert!(passdata.is_none());
                accesstoken::Input::Authenticated
            }
            CodeOutput::Recover { .. } => accesstoken::Input::Recovered(stored.take()),
            CodeOutput::Extend { .. } => accesstoken::Input::Extended {
                access_extensions: Extensions::new(),
            },
            CodeOutput::Issue { grant } => {
                // Relied on: it issues for the recovered grant's scope unchanged, so the code
                // exchange takes the code's own scope for the tokens (authorization_code.rs).
                assert_eq!(grant.scope, recovered_scope);
                return None;
            }
            CodeOutput::Ok(_) => unreachable!(),
            CodeOutput::Err(mut e) => return Some(e.description().unwrap().kind()),
        };
    }
}

#[test]
fn code_machine_rechecks_client_redirect_and_expiry() {
    let ok = CodeReq {
        redirect_uri: Some("https://app.example/cb"),
    };
    assert_eq!(
        run_code(&ok, grant("client-a", "https://app.example/cb", "read", 60)),
        None
    );
    // Another client's code, another redirect URI, an expired code: invalid_grant.
    for stored in [
        grant("client-b", "https://app.example/cb", "read", 60),
        grant("client-a", "https://app.example/other", "read", 60),
        grant("client-a", "https://app.example/cb", "read", -1),
    ] {
        assert_eq!(run_code(&ok, stored), Some(Kind::InvalidGrant));
    }
}

#[test]
fn code_machine_routed_around_redirect_uri_rules() {
    // It compares parsed URLs, so an explicit default port equals none: Portcullis compares the
    // strings itself first (RFC 6749 §4.1.3 "identical").
    let port = CodeReq {
        redirect_uri: Some("https://app.example:443/cb"),
    };
    assert_eq!(
        run_code(
            &port,
            grant("client-a", "https://app.example/cb", "read", 60)
        ),
        None
    );
    // It demands redirect_uri even when the authorization request had none: Portcullis hands
    // it the code's own URI in that case.
    let missing = CodeReq { redirect_uri: None };
    assert_eq!(
        run_code(
            &missing,
            grant("client-a", "https://app.example/cb", "read", 60)
        ),
        Some(Kind::InvalidRequest)
    );
}

// ---- PKCE --------------------------------------------------------------------------------------

#[test]
fn pkce_extension_behaviours() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 Appendix B
    let optional = Pkce::optional();
    let stored = optional
        .challenge(Some("S256".into()), Some(challenge.into()))
        .unwrap();
    assert!(optional
        .verify(stored.clone(), Some(verifier.into()))
        .is_ok());
    assert!(optional
        .verify(stored.clone(), Some("wrong".into()))
        .is_err());
    assert!(optional.verify(stored, None).is_err());
    // Routed around: no method means `plain` (RFC 7636 §4.3), refused unless allowed; Portcullis
    // accepts S256 only and says so itself.
    assert!(optional.challenge(None, Some(challenge.into())).is_err());
    // Routed around: a verifier for a code that had no challenge passes `optional`; Portcullis
    // refuses it (RFC 9700 §4.8.2).
    assert!(optional.verify(None, Some(verifier.into())).is_ok());
    // Relied on: `required` refuses a code without a challenge.
    assert!(Pkce::required()
        .verify(None, Some(verifier.into()))
        .is_err());
    assert!(Pkce::required().challenge(None, None).is_err());
}

// ---- refresh -----------------------------------------------------------------------------------

struct RefreshReq {
    client: &'static str,
}

impl refresh::Request for RefreshReq {
    fn valid(&self) -> bool {
        true
    }
    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        Some("the-token".into())
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some("refresh_token".into())
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        Some((self.client.into(), Cow::Borrowed(&[])))
    }
    fn extension(&self, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// The scope the refresh machine decides, or its error kind.
fn run_refresh(
    client: &'static str,
    scope: Option<&'static str>,
    stored: Grant,
) -> Result<String, Kind> {
    let req = RefreshReq { client };
    let mut m = Refresh::new(&req);
    let mut stored = Some(Box::new(stored));
    let mut input = refresh::Input::None;
    loop {
        input = match m.advance(input) {
            refresh::Output::Unauthenticated { .. } => refresh::Input::Authenticated {
                scope: scope.map(Cow::Borrowed),
            },
            refresh::Output::RecoverRefresh { .. } => refresh::Input::Recovered {
                scope: scope.map(Cow::Borrowed),
                grant: stored.take(),
            },
            refresh::Output::Refresh { grant, .. } => {
                let mut tokens: Vec<String> = grant.scope.iter().map(str::to_string).collect();
                tokens.sort();
                return Ok(tokens.join(" "));
            }
            refresh::Output::Ok(_) => unreachable!(),
            refresh::Output::Err(mut e) => return Err(e.description().unwrap().kind()),
        };
    }
}

#[test]
fn refresh_machine_decides_scope_and_checks_the_client() {
    let stored = || grant("client-a", "urn:x", "read write", 60);
    assert_eq!(
        run_refresh("client-a", None, stored()).unwrap(),
        "read write"
    );
    // Relied on: the scope may only narrow (RFC 6749 §6).
    assert_eq!(
        run_refresh("client-a", Some("read"), stored()).unwrap(),
        "read"
    );
    assert_eq!(
        run_refresh("client-a", Some("read admin"), stored()),
        Err(Kind::InvalidScope)
    );
    assert_eq!(
        run_refresh("client-a", Some("a\"b"), stored()),
        Err(Kind::InvalidScope)
    );
    // Relied on: another client's token, and an expired one, are invalid_grant.
    assert_eq!(
        run_refresh("client-b", None, stored()),
        Err(Kind::InvalidGrant)
    );
    assert_eq!(
        run_refresh("client-a", None, grant("client-a", "urn:x", "read", -1)),
        Err(Kind::InvalidGrant)
    );
}

// ---- client credentials ------------------------------------------------------------------------

struct CredentialsReq {
    scope: &'static str,
}

impl client_credentials::Request for CredentialsReq {
    fn valid(&self) -> bool {
        true
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        Some(("client-a".into(), Cow::Borrowed(&[])))
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        Some(self.scope.into())
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some("client_credentials".into())
    }
    fn extension(&self, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

#[test]
fn client_credentials_machine_says_invalid_request_for_a_malformed_scope() {
    // Routed around: RFC 6749 §5.2 wants invalid_scope, so Portcullis checks the scope first.
    let req = CredentialsReq { scope: "a\"b" };
    let mut m = ClientCredentials::new(&req);
    match m.advance(client_credentials::Input::None) {
        client_credentials::Output::Err(mut e) => {
            assert_eq!(e.description().unwrap().kind(), Kind::InvalidRequest)
        }
        _ => panic!("a malformed scope is refused at once"),
    }
    // A good one starts with authentication.
    let req = CredentialsReq { scope: "read" };
    let mut m = ClientCredentials::new(&req);
    assert!(matches!(
        m.advance(client_credentials::Input::None),
        client_credentials::Output::Authenticate { .. }
    ));
}

// ---- the handler futures stay Send -----------------------------------------------------------

#[tokio::test]
async fn token_handler_futures_are_send() {
    // web::detached runs them with tokio::spawn: no machine Input may live across an await.
    fn assert_send<T: Send>(_: &T) {}
    let db = crate::helpers::TestDb::sqlite();
    let settings = db.settings();
    let pool = portcullis::store::Pool::build(&settings.database).unwrap();
    let cache = portcullis::oauth::client_cache::ClientCache::new(0);
    let params = portcullis::oauth::params::Params::default();
    portcullis::store::migrations::run(
        settings.database.url.expose(),
        portcullis::store::migrations::Action::RunPending,
    )
    .await
    .unwrap();
    let kek =
        portcullis::keys::Kek::from_base64(&portcullis::keys::Kek::generate().unwrap()).unwrap();
    let keys = portcullis::keys::KeyRing::open(pool.clone(), kek, 3600, 0)
        .await
        .unwrap();
    let fut = portcullis::oauth::grants::handle(&pool, &cache, &keys, &settings, &params, None, 0);
    assert_send(&fut);
}

// ---- authorization request and bearer checks ---------------------------------------------------

struct AuthReq {
    response_type: Option<&'static str>,
}

impl oxide_auth::code_grant::authorization::Request for AuthReq {
    fn valid(&self) -> bool {
        true
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        Some("client-a".into())
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        Some("https://app.example/cb".into())
    }
    fn state(&self) -> Option<Cow<'_, str>> {
        None
    }
    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.response_type.map(Cow::Borrowed)
    }
    fn extension(&self, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

#[test]
fn authorization_machine_says_unsupported_response_type_when_it_is_missing() {
    // Routed around: RFC 6749 §4.1.2.1 wants invalid_request for a missing parameter, so
    // Portcullis checks response_type before the machine.
    use oxide_auth::code_grant::authorization::{Authorization, Error, Input, Output};
    use oxide_auth::code_grant::error::AuthorizationErrorType;
    use oxide_auth::primitives::registrar::{BoundClient, RegisteredUrl};
    let req = AuthReq {
        response_type: None,
    };
    let mut m = Authorization::new(&req);
    assert!(matches!(m.advance(Input::None), Output::Bind { .. }));
    let bound = BoundClient {
        client_id: "client-a".into(),
        redirect_uri: Cow::Owned(RegisteredUrl::Exact(
            "https://app.example/cb".parse().unwrap(),
        )),
    };
    match m.advance(Input::Bound {
        request: &req,
        bound_client: bound,
    }) {
        Output::Err(Error::Redirect(mut url)) => assert_eq!(
            url.description().kind(),
            AuthorizationErrorType::UnsupportedResponseType
        ),
        _ => panic!("a missing response_type is refused"),
    }
}

#[test]
fn authorization_machine_yields_the_pre_grant_as_negotiated() {
    // Relied on: the pre-grant of its Ok step is the one Portcullis negotiated, so the
    // authorization endpoint keeps its own scope instead of converting the machine's back
    // (authorize/machine.rs).
    use oxide_auth::code_grant::authorization::{Authorization, Input, Output};
    use oxide_auth::primitives::registrar::{BoundClient, PreGrant, RegisteredUrl};
    let req = AuthReq {
        response_type: Some("code"),
    };
    let url = RegisteredUrl::Exact("https://app.example/cb".parse().unwrap());
    let negotiated = PreGrant {
        client_id: "client-a".into(),
        redirect_uri: url.clone(),
        scope: "write read".parse().unwrap(),
    };
    let mut m = Authorization::new(&req);
    assert!(matches!(m.advance(Input::None), Output::Bind { .. }));
    let bound = BoundClient {
        client_id: "client-a".into(),
        redirect_uri: Cow::Owned(url),
    };
    assert!(matches!(
        m.advance(Input::Bound {
            request: &req,
            bound_client: bound,
        }),
        Output::Extend
    ));
    assert!(matches!(
        m.advance(Input::Extended(Extensions::new())),
        Output::Negotiate { .. }
    ));
    match m.advance(Input::Negotiated {
        pre_grant: negotiated.clone(),
        state: None,
    }) {
        Output::Ok { pre_grant, .. } => {
            assert_eq!(pre_grant.scope, negotiated.scope);
            assert_eq!(pre_grant.client_id, negotiated.client_id);
        }
        _ => panic!("a negotiated request is accepted"),
    }
}

struct BearerReq(Option<&'static str>);

impl oxide_auth::code_grant::resource::Request for BearerReq {
    fn valid(&self) -> bool {
        true
    }
    fn token(&self) -> Option<Cow<'_, str>> {
        self.0.map(Cow::Borrowed)
    }
}

#[test]
fn resource_machine_behaviours() {
    use oxide_auth::code_grant::resource::{Error, ErrorCode, Input, Output, Resource};
    let empty: oxide_auth::primitives::scope::Scope = "".parse().unwrap();
    let scopes = [empty];
    // Relied on: the scheme is matched case-insensitively and stripped.
    let mut m = Resource::new();
    assert!(matches!(
        m.advance(Input::Request {
            request: &BearerReq(Some("bEaReR tok"))
        }),
        Output::DetermineScopes
    ));
    match m.advance(Input::Scopes(&scopes)) {
        Output::Recover { token } => assert_eq!(token, "tok"),
        _ => panic!("asks for the grant"),
    }
    // Routed around: an unknown token (None) is answered with invalid_request, not RFC 6750's
    // invalid_token, so Portcullis never feeds None.
    match m.advance(Input::Recovered(None)) {
        Output::Err(Error::AccessDenied { failure, .. }) => {
            assert!(matches!(failure.code, Some(ErrorCode::InvalidRequest)))
        }
        _ => panic!("None is refused"),
    }
    // Relied on: an empty list of required scopes allows nothing; one empty scope allows all.
    let mut m = Resource::new();
    m.advance(Input::Request {
        request: &BearerReq(Some("Bearer tok")),
    });
    m.advance(Input::Scopes(&[]));
    assert!(matches!(
        m.advance(Input::Recovered(Some(grant("c", "urn:x", "", 60)))),
        Output::Err(Error::AccessDenied { .. })
    ));
    // No header at all: the machine says credentials are missing.
    let mut m = Resource::new();
    assert!(matches!(
        m.advance(Input::Request {
            request: &BearerReq(None)
        }),
        Output::Err(Error::NoAuthentication { .. })
    ));
}
