//! OpenID Connect Core 1.0 §3.1.2.1's `prompt` and `max_age`: whether the user must sign in
//! again, or be asked again, before a code is issued; `prompt=none` gets an error instead of
//! a page (§3.1.2.6).
//!
//! A forced sign-in sends the user to the login page and back to the same request. So that
//! the request does not force another sign-in when it comes back, the way back carries
//! `login_after` (Unix seconds): a session that began then or later satisfies it. It is only
//! honoured for `LOGIN_WINDOW` seconds, so a bookmarked or replayed URL cannot stand in for
//! a fresh sign-in later. A client that sends it itself gains nothing: it can only ask for a
//! sign-in at least that recent.

use crate::oauth::params::Params;

/// The parameter the way back from a forced sign-in carries.
pub const LOGIN_AFTER: &str = "login_after";

/// How long after the request a forced sign-in may take (the login page's lifetime is longer;
/// past this the user is asked once more).
const LOGIN_WINDOW: i64 = 600;

/// What `prompt` and `max_age` ask for. `select_account` is taken as `login`: the login page
/// is where a user picks the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    /// Seconds a sign-in may be old.
    pub max_age: Option<i64>,
    /// Set on the way back from a forced sign-in.
    pub login_after: Option<i64>,
}

/// The values discovery lists (`prompt_values_supported`).
pub const SUPPORTED: [&str; 4] = ["none", "login", "consent", "select_account"];

impl Prompt {
    /// Reads `prompt`, `max_age` and `login_after`; the message says what is wrong
    /// (`invalid_request`).
    pub fn parse(params: &Params) -> Result<Prompt, String> {
        let mut p = Prompt::default();
        if let Some(values) = params.get("prompt") {
            let mut count = 0;
            for v in values.split(' ').filter(|v| !v.is_empty()) {
                count += 1;
                match v {
                    "none" => p.none = true,
                    "login" | "select_account" => p.login = true,
                    "consent" => p.consent = true,
                    other => return Err(format!("prompt value {other:?} is not supported")),
                }
            }
            // §3.1.2.1: "none" with any other value is an error.
            if p.none && count > 1 {
                return Err("prompt=none cannot be combined with other values".into());
            }
        }
        p.max_age = seconds(params, "max_age")?;
        p.login_after = seconds(params, LOGIN_AFTER)?;
        Ok(p)
    }

    /// Whether the session that began at `auth_time` is too old for this request.
    pub fn needs_login(&self, auth_time: i64, now: i64) -> bool {
        match self.login_after {
            Some(t) if now - t <= LOGIN_WINDOW => auth_time < t,
            // Stale: the sign-in it stood for is too long ago to count as this request's.
            Some(_) => true,
            None => self.login || self.max_age.is_some_and(|m| now - auth_time > m),
        }
    }

    /// Whether a sign-in sent to the login page must come back marked with `login_after`:
    /// when the request asks for a fresh one, or it would ask again on the way back.
    pub fn forces_login(&self) -> bool {
        self.login || self.max_age.is_some() || self.login_after.is_some()
    }
}

/// A whole number of seconds: digits only, at most ten (about 300 years).
fn seconds(params: &Params, name: &str) -> Result<Option<i64>, String> {
    match params.get(name) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(v.parse().ok())
        }
        Some(_) => Err(format!("{name} must be a whole number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(query: &str) -> Result<Prompt, String> {
        Prompt::parse(&Params::parse(query).unwrap())
    }

    #[test]
    fn values_are_read_and_none_stands_alone() {
        let p = prompt("prompt=login%20consent&max_age=60").unwrap();
        assert!(p.login && p.consent && !p.none);
        assert_eq!(p.max_age, Some(60));
        assert!(prompt("prompt=select_account").unwrap().login);
        assert!(prompt("prompt=none").unwrap().none);
        assert!(prompt("prompt=none%20login").is_err());
        assert!(prompt("prompt=sideways").is_err());
        // RFC 6749 §3.1: an empty parameter is as if it were not sent.
        assert_eq!(prompt("max_age=").unwrap().max_age, None);
        for bad in ["-1", "1.5", "12345678901", "1e3", "+5"] {
            assert!(prompt(&format!("max_age={bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fresh_sign_in_satisfies_login_and_max_age_once() {
        let now = 10_000;
        let login = prompt("prompt=login").unwrap();
        assert!(login.needs_login(now, now));
        let aged = prompt("max_age=300").unwrap();
        assert!(!aged.needs_login(now - 300, now));
        assert!(aged.needs_login(now - 301, now));
        // max_age=0 and prompt=login come back marked and are then satisfied.
        let back = prompt(&format!("prompt=login&max_age=0&login_after={}", now - 5)).unwrap();
        assert!(!back.needs_login(now - 5, now));
        assert!(
            back.needs_login(now - 6, now),
            "a session from before the request"
        );
        assert!(
            back.needs_login(now + 700, now + 700),
            "a replay after the window asks again"
        );
    }
}
