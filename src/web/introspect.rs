//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009).

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::cors;
use super::token::client_endpoint;
use super::AppState;
use crate::oauth::introspect;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    // Resource servers call introspection from their backends: no CORS.
    let introspect = client_endpoint(
        warp::path!("oauth2" / "introspect"),
        state.clone(),
        None,
        |state, params, auth| async move {
            let issuer = state.settings.issuer();
            let body = introspect::introspect(
                &state.pool,
                &state.clients,
                issuer,
                &params,
                auth.as_deref(),
                crate::now(),
            )
            .await?;
            Ok(warp::reply::json(&body).into_response())
        },
    );
    let revoke = client_endpoint(
        warp::path!("oauth2" / "revoke"),
        state,
        Some(cors::Policy::Configured),
        |state, params, auth| async move {
            introspect::revoke(
                &state.pool,
                &state.clients,
                &params,
                auth.as_deref(),
                crate::now(),
            )
            .await?;
            // RFC 7009 §2.2: 200 whether or not anything was revoked.
            Ok(warp::reply().into_response())
        },
    );
    introspect.or(revoke).unify().boxed()
}
