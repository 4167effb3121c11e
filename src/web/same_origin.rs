//! Whether a state-changing form post (login, consent, logout, revoking a grant) came from one
//! of our own pages. The CSRF token is checked as well; this is the second, independent check.
//!
//! Which browser behaviour it relies on:
//! - **Fetch Metadata** (`Sec-Fetch-Site`): Chromium 76+, Firefox 90+ and Safari 16.4+ send it
//!   on every request, and a page cannot set or change a `Sec-` header. It says how the
//!   request's initiator relates to its target across the whole redirect chain: `same-origin`
//!   only when every step was on our origin. Anything else (`same-site`, `cross-site`, `none`)
//!   is refused: our forms post to our own origin, so nothing else is one of ours.
//! - **Origin** on every POST (Fetch, "append a request Origin header"). It is `null` for a
//!   same-origin post from a page whose `Referrer-Policy` is `no-referrer` — which is why our
//!   pages now send `same-origin` (see `web::with_security_headers`) — and also after a
//!   cross-origin redirect or from an opaque origin (sandboxed frame, `data:` page). So `null`
//!   alone proves nothing: it is accepted only when `Sec-Fetch-Site` vouches for the request.
//!   An Origin that is present and not `null` must be ours.
//! - A request with neither header did not come from a browser that follows these standards
//!   (a script or an HTTP library); it passes this check and still needs the CSRF token.

use super::request::Browser;
use crate::settings::Settings;

pub fn form_from_this_site(settings: &Settings, b: &Browser) -> bool {
    let ours = url::Url::parse(settings.issuer())
        .map(|u| u.origin().ascii_serialization())
        .ok();
    let origin_is_ours = |o: &str| ours.as_deref() == Some(o);
    match (b.sec_fetch_site.as_deref(), b.origin.as_deref()) {
        (Some("same-origin"), None | Some("null")) => true,
        (Some("same-origin"), Some(origin)) => origin_is_ours(origin),
        (Some(_), _) => false,
        (None, None) => true,
        (None, Some(origin)) => origin_is_ours(origin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(site: Option<&str>, origin: Option<&str>) -> bool {
        let b = Browser {
            sec_fetch_site: site.map(str::to_string),
            origin: origin.map(str::to_string),
            ..Browser::default()
        };
        form_from_this_site(&Settings::default(), &b)
    }

    #[test]
    fn accepts_what_browsers_send_for_our_own_forms() {
        let ours = Some("http://127.0.0.1:8080");
        assert!(post(Some("same-origin"), ours));
        // Referrer-Policy: no-referrer on the page makes Chromium send Origin: null.
        assert!(post(Some("same-origin"), Some("null")));
        assert!(post(Some("same-origin"), None));
        // A browser without Fetch Metadata, and scripts.
        assert!(post(None, ours));
        assert!(post(None, None));
    }

    #[test]
    fn refuses_posts_from_other_origins_and_sites() {
        assert!(!post(Some("cross-site"), Some("https://evil.example")));
        assert!(!post(Some("cross-site"), Some("null")));
        assert!(!post(Some("cross-site"), None));
        // Another port on the same host is the same site but not the same origin.
        assert!(!post(Some("same-site"), Some("http://127.0.0.1:9999")));
        assert!(!post(Some("none"), None));
        // A header that contradicts the other.
        assert!(!post(Some("same-origin"), Some("https://evil.example")));
        // No Fetch Metadata: Origin decides, and null proves nothing.
        assert!(!post(None, Some("https://evil.example")));
        assert!(!post(None, Some("null")));
    }
}
