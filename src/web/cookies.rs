//! Cookies: the session cookie and the login form's CSRF cookie. HttpOnly, SameSite=Lax,
//! Path=/; `Secure` and the `__Host-` prefix whenever the issuer is https.

use crate::settings::Settings;

pub const SESSION: &str = "portcullis_session";
pub const LOGIN_CSRF: &str = "portcullis_login_csrf";

fn secure(settings: &Settings) -> bool {
    settings.issuer().starts_with("https://")
}

/// The cookie's name as sent: `__Host-` prefixed over https.
pub fn name(settings: &Settings, base: &str) -> String {
    if secure(settings) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

pub fn set(settings: &Settings, base: &str, value: &str, max_age: i64) -> String {
    let secure = if secure(settings) { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        name(settings, base)
    )
}

pub fn clear(settings: &Settings, base: &str) -> String {
    set(settings, base, "", 0)
}

/// The value of cookie `name` in a `Cookie` header.
pub fn get(header: Option<&str>, name: &str) -> Option<String> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        assert_eq!(
            get(Some("a=1; portcullis_session=xyz; b=2"), SESSION),
            Some("xyz".into())
        );
        assert_eq!(get(Some("a=1"), SESSION), None);
        assert_eq!(get(None, SESSION), None);
    }

    #[test]
    fn https_issuer_gets_host_prefix_and_secure() {
        let mut s = Settings::default();
        s.server.issuer = "https://auth.example".into();
        let c = set(&s, SESSION, "v", 10);
        assert!(c.starts_with("__Host-portcullis_session=v; Path=/; HttpOnly; SameSite=Lax"));
        assert!(c.ends_with("; Secure"));
        let plain = set(&Settings::default(), SESSION, "v", 10);
        assert!(plain.starts_with("portcullis_session=") && !plain.contains("Secure"));
    }
}
