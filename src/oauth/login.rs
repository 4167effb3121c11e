//! Logging in and the session that follows: password check with throttling, server-side
//! sessions with idle and absolute expiry.

use super::accounts::check_username;
use crate::domain::password::{self, Password};
use crate::domain::secret::{prefix, Digest, Secret};
use crate::settings::{LoginSettings, Settings};
use crate::store::models::{Account, Consent, Session, User};
use crate::store::{sessions, throttle, users, Pool, StoreError};

/// Sessions are touched at most this often, so a busy user does not cost a write per request.
const TOUCH_INTERVAL_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong username or password, disabled user, or throttled: one generic answer for all.
    #[error("invalid username or password")]
    Rejected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a username and password. An unknown user costs the same PBKDF2 work as a wrong
/// password, and the answer never says which it was, nor that throttling is in force.
///
/// Throttling (README, "Login throttling"): the attempt is counted before the password is
/// checked (`store::throttle`), so concurrent guesses cannot overrun a limit. The hard limits
/// are per client address and per (username, address): an attacker exhausts only their own
/// addresses. Per username, from everywhere, failures past a threshold only slow each further
/// attempt down, so the right user on another address still gets in.
pub async fn authenticate(
    pool: &Pool,
    settings: &Settings,
    username: &str,
    password: Password,
    client_ip: Option<std::net::IpAddr>,
    now: i64,
) -> Result<User, LoginError> {
    let cfg = &settings.login;
    // A name no user can have never reaches the database (MariaDB would refuse one longer
    // than the throttle's column with an error): it costs the same hash work and gets the
    // same answer, and only the address is counted.
    let plausible = check_username(username).is_ok();
    let subjects = Subjects::of(plausible.then_some(username), client_ip);
    let attempt =
        throttle::begin_attempt(pool, &subjects.names, now, now - cfg.throttle_window_secs).await?;
    if subjects.over_hard_limit(&attempt, cfg) {
        // Refused before any hash work: a flood of refused guesses costs no CPU, and a refused
        // attempt is not a failure to count.
        throttle::withdraw(pool, &attempt).await?;
        tracing::warn!(username, ?client_ip, "login throttled");
        count_attempt("throttled");
        return Err(LoginError::Rejected);
    }
    if let Some(wait) = subjects.slowdown(&attempt, cfg) {
        tracing::info!(
            username,
            ?wait,
            "login slowed down: many failures for this user"
        );
        count_attempt("slowed");
        tokio::time::sleep(wait).await;
    }

    let user = if plausible {
        users::find_by_username(pool, username).await?
    } else {
        None
    };
    // The hash check runs off the async workers: it is deliberately slow.
    let iterations = cfg.password_hash_iterations;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify(&password, &hash),
        None => {
            password::verify_dummy(&password, iterations);
            false
        }
    })
    .await
    .map_err(|e| StoreError::Config(format!("password check failed: {e}")))?;

    match user {
        Some(u) if matches && !u.disabled => {
            // The success is not a failure; the failures this address had for this user
            // before it are forgiven, but not those of attempts still in flight.
            throttle::withdraw(pool, &attempt).await?;
            if let Some((subject, row)) = subjects.user_and_ip(&attempt) {
                throttle::clear_before(pool, subject, row).await?;
            }
            count_attempt("succeeded");
            Ok(u)
        }
        // A failure keeps the rows its attempt wrote.
        _ => {
            count_attempt("failed");
            Err(LoginError::Rejected)
        }
    }
}

/// `portcullis_login_attempts_total` by outcome; a slowed attempt is counted again when it ends.
fn count_attempt(outcome: &'static str) {
    metrics::counter!("portcullis_login_attempts_total", "outcome" => outcome).increment(1);
}

/// What a login attempt is counted against, by position in `names`.
struct Subjects {
    names: Vec<String>,
    ip: Option<usize>,
    user_and_ip: Option<usize>,
    user: Option<usize>,
}

impl Subjects {
    fn of(username: Option<&str>, client_ip: Option<std::net::IpAddr>) -> Self {
        let mut names = Vec::with_capacity(3);
        let mut add = |name: String| {
            names.push(name);
            names.len() - 1
        };
        // A username has no whitespace (`check_username`), so the space separates unambiguously;
        // the longest subject (IPv6 text and a 191-character name) fits the 255-character column.
        let ip = client_ip.map(|ip| add(format!("ip:{ip}")));
        let (user_and_ip, user) = match username {
            Some(name) => (
                client_ip.map(|ip| add(format!("login:{ip} {name}"))),
                Some(add(format!("user:{name}"))),
            ),
            None => (None, None),
        };
        Subjects {
            names,
            ip,
            user_and_ip,
            user,
        }
    }

    fn over_hard_limit(&self, attempt: &throttle::Attempt, cfg: &LoginSettings) -> bool {
        let over = |i: Option<usize>, limit: i64| i.is_some_and(|i| attempt.counts[i] > limit);
        over(self.ip, cfg.max_failures_per_ip)
            || over(self.user_and_ip, cfg.max_failures_per_user_and_ip)
    }

    /// How long to wait before checking the password: doubling from 250 ms with each failure
    /// for this username (from anywhere) past `max_failures_per_user`, capped.
    fn slowdown(
        &self,
        attempt: &throttle::Attempt,
        cfg: &LoginSettings,
    ) -> Option<std::time::Duration> {
        // The count includes this attempt (and any in flight): failures are one fewer.
        let failures = attempt.counts[self.user?] - 1;
        let past = failures - cfg.max_failures_per_user;
        if past <= 0 {
            return None;
        }
        let ms = 250u64.saturating_mul(1 << (past - 1).min(20));
        Some(std::time::Duration::from_millis(
            ms.min(cfg.max_slowdown_ms),
        ))
    }

    fn user_and_ip<'a>(&'a self, attempt: &throttle::Attempt) -> Option<(&'a str, i64)> {
        self.user_and_ip
            .map(|i| (self.names[i].as_str(), attempt.ids[i]))
    }
}

/// A fresh session (a new id at every login: no fixation). Returns the cookie value.
pub async fn start_session(
    pool: &Pool,
    settings: &Settings,
    user: &User,
    now: i64,
) -> Result<Secret, StoreError> {
    let cookie = Secret::generate(prefix::SESSION);
    let row = Session {
        id_hash: cookie.digest().as_bytes().to_vec(),
        user_id: user.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + settings.session.absolute_timeout_secs,
    };
    sessions::insert(pool, &row).await?;
    Ok(cookie)
}

/// A session that is alive: not past its absolute or idle limit, and its user not disabled.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// The digest of the cookie: the session's key.
    pub id: Digest,
    pub session: Session,
    pub user: Account,
    csrf_token: String,
}

impl ActiveSession {
    /// The CSRF token for forms in this session: it never appears in the cookie.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    pub fn csrf_matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.csrf_token.as_bytes();
        presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected))
    }
}

/// A session's CSRF token: HMAC-SHA256 of a fixed label, keyed by the session cookie. It is
/// derived rather than stored so that the database (and `db dump`), which holds only the
/// cookie's SHA-256, holds nothing the token can be computed from; and a page can never show
/// it without the cookie that goes with it.
fn csrf_token_of(cookie: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, cookie.as_bytes());
    hex::encode(ring::hmac::sign(&key, b"portcullis session csrf v1"))
}

pub async fn resolve(
    pool: &Pool,
    settings: &Settings,
    cookie: &str,
    now: i64,
) -> Result<Option<ActiveSession>, StoreError> {
    let digest = Secret::from_presented(cookie).digest();
    let Some((session, user)) = sessions::find_with_user(pool, &digest).await? else {
        return Ok(None);
    };
    keep_alive(pool, settings, cookie, digest, session, user, now).await
}

/// `resolve`, plus the consent the user gave `client_id` (read together, for /authorize).
pub async fn resolve_for_client(
    pool: &Pool,
    settings: &Settings,
    cookie: &str,
    client_id: &str,
    now: i64,
) -> Result<Option<(ActiveSession, Option<Consent>)>, StoreError> {
    let digest = Secret::from_presented(cookie).digest();
    let found = sessions::find_with_user_and_consent(pool, &digest, client_id).await?;
    let Some((session, user, consent)) = found else {
        return Ok(None);
    };
    let active = keep_alive(pool, settings, cookie, digest, session, user, now).await?;
    Ok(active.map(|a| (a, consent)))
}

/// Applies the expiry rules to a session that was found: an expired one (or one whose user
/// is disabled) is deleted, a live one is touched at most every `TOUCH_INTERVAL_SECS`.
async fn keep_alive(
    pool: &Pool,
    settings: &Settings,
    cookie: &str,
    id: Digest,
    session: Session,
    user: Account,
    now: i64,
) -> Result<Option<ActiveSession>, StoreError> {
    let idle_expired = session.last_seen_at + settings.session.idle_timeout_secs <= now;
    if session.expires_at <= now || idle_expired || user.disabled {
        sessions::delete(pool, &id).await?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_INTERVAL_SECS {
        sessions::touch(pool, &id, now).await?;
    }
    Ok(Some(ActiveSession {
        id,
        session,
        user,
        csrf_token: csrf_token_of(cookie),
    }))
}

pub async fn end(pool: &Pool, cookie: &str) -> Result<(), StoreError> {
    sessions::delete(pool, &Secret::from_presented(cookie).digest()).await
}

/// Ends a session that was found live (logout).
pub async fn end_session(pool: &Pool, active: &ActiveSession) -> Result<(), StoreError> {
    sessions::delete(pool, &active.id).await
}
