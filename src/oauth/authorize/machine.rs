//! oxide-auth's `Authorization` machine over a request Portcullis has already accepted: it
//! binds the client to the redirect URI, checks the response type and scope syntax again and
//! yields the pre-grant the code is issued for.

use std::borrow::Cow;

use crate::domain::scope::Scope;
use crate::oauth::params::Params;
use crate::oauth::ErrorCode;

/// The request as oxide-auth's `Authorization` machine sees it: the parameters as received,
/// except the redirect URI, which is the one Portcullis resolved (the registered one when the
/// request named none, or the presented loopback URI whose port may differ).
struct MachineRequest<'a> {
    params: &'a Params,
    redirect_uri: &'a str,
}

impl oxide_auth::code_grant::authorization::Request for MachineRequest<'_> {
    fn valid(&self) -> bool {
        true
    }

    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.params.get("client_id").map(Cow::Borrowed)
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        self.params.get("scope").map(Cow::Borrowed)
    }

    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.redirect_uri))
    }

    fn state(&self) -> Option<Cow<'_, str>> {
        self.params.get("state").map(Cow::Borrowed)
    }

    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.params.get("response_type").map(Cow::Borrowed)
    }

    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.params.get(key).map(Cow::Borrowed)
    }
}

pub enum MachineVerdict {
    /// The machine refused the request (an error it would redirect with).
    Refused(ErrorCode),
    /// The machine failed on an input Portcullis gave it: a bug, logged.
    Failed(String),
}

/// Runs the `Authorization` machine over a request Portcullis has accepted; returns the scope
/// of the pre-grant it yields (the one negotiated). Synchronous: no `Input` (which borrows the
/// request) is held across an `.await`.
pub fn pre_grant_scope(
    params: &Params,
    client_id: &str,
    redirect_uri: &str,
    scope: &Scope,
) -> Result<Scope, MachineVerdict> {
    use oxide_auth::code_grant::authorization::{Authorization, Error, Input, Output};
    use oxide_auth::code_grant::error::AuthorizationErrorType as Kind;
    use oxide_auth::primitives::grant::Extensions;
    use oxide_auth::primitives::registrar::{BoundClient, ExactUrl, PreGrant, RegisteredUrl};

    let failed = |why: String| {
        tracing::error!(client_id, %why, "oxide-auth authorization machine failed");
        MachineVerdict::Failed(why)
    };
    let request = MachineRequest {
        params,
        redirect_uri,
    };
    let registered = redirect_uri
        .parse::<ExactUrl>()
        .map(RegisteredUrl::Exact)
        .map_err(|e| failed(format!("redirect URI does not parse: {e}")))?;
    let machine_scope: oxide_auth::primitives::scope::Scope = scope
        .to_string()
        .parse()
        .map_err(|e| failed(format!("scope does not parse: {e}")))?;
    let mut machine = Authorization::new(&request);
    let mut input = Input::None;
    loop {
        input = match machine.advance(input) {
            Output::Bind { client_id, .. } => Input::Bound {
                request: &request,
                bound_client: BoundClient {
                    client_id: Cow::Owned(client_id),
                    redirect_uri: Cow::Owned(registered.clone()),
                },
            },
            Output::Extend => Input::Extended(Extensions::new()),
            Output::Negotiate { bound_client, .. } => Input::Negotiated {
                pre_grant: PreGrant {
                    client_id: bound_client.client_id.to_string(),
                    redirect_uri: registered.clone(),
                    scope: machine_scope.clone(),
                },
                state: params.get("state").map(str::to_string),
            },
            // The pre-grant comes back as negotiated (pinned in tests/api/oxide_auth_pins.rs),
            // so its scope is ours: not converted back.
            Output::Ok { .. } => return Ok(scope.clone()),
            Output::Err(Error::Redirect(mut url)) => {
                let code = match url.description().kind() {
                    Kind::InvalidScope => ErrorCode::InvalidScope,
                    Kind::UnsupportedResponseType => ErrorCode::UnsupportedResponseType,
                    Kind::UnauthorizedClient => ErrorCode::UnauthorizedClient,
                    Kind::AccessDenied => ErrorCode::AccessDenied,
                    _ => ErrorCode::InvalidRequest,
                };
                return Err(MachineVerdict::Refused(code));
            }
            Output::Err(Error::Ignore) => {
                return Err(failed("the machine ignored the request".into()))
            }
            Output::Err(Error::PrimitiveError) => {
                return Err(failed("the machine got an input it did not expect".into()))
            }
        };
    }
}
