//! The HTML pages people see: login, consent, account, signed-out and error. Templates live in
//! `templates/` and are compiled by askama, which escapes every value: whatever comes from a
//! request or a client's registration is untrusted text, never markup.

use askama::Template;

use crate::domain::scope::Scope;
use crate::settings::{ScopeSettings, Settings};

/// What every page shows of the site: branding from settings and the stylesheet's path.
#[derive(Debug, Clone)]
pub struct Site {
    pub product_name: String,
    pub organisation: String,
    pub logo_url: String,
    pub language: String,
    /// `/assets/portcullis.<hash>.css`
    pub stylesheet: String,
    pub support: Option<Support>,
}

/// Where error pages send people: the text shown and, for an e-mail address or a URL, a link.
#[derive(Debug, Clone)]
pub struct Support {
    pub text: String,
    pub href: Option<String>,
}

impl Site {
    pub fn new(settings: &Settings, stylesheet: String) -> Self {
        let b = &settings.branding;
        let contact = b.support_contact.trim();
        let support = (!contact.is_empty()).then(|| Support {
            text: contact.to_string(),
            href: if contact.starts_with("https://") || contact.starts_with("http://") {
                Some(contact.to_string())
            } else if contact.contains('@') && !contact.contains(char::is_whitespace) {
                Some(format!("mailto:{contact}"))
            } else {
                None
            },
        });
        Site {
            product_name: b.product_name.clone(),
            organisation: b.organisation.clone(),
            logo_url: b.logo_url.clone(),
            language: b.language.clone(),
            stylesheet,
            support,
        }
    }
}

/// A scope as people read it: the operator's sentence for it, or only its name.
#[derive(Debug, Clone)]
pub struct ScopeLine {
    pub name: String,
    pub description: Option<String>,
}

pub fn describe_scopes(scope: &Scope, descriptions: &ScopeSettings) -> Vec<ScopeLine> {
    scope
        .iter()
        .map(|name| ScopeLine {
            name: name.to_string(),
            description: descriptions.describe(name).map(str::to_string),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub site: &'a Site,
    /// The application the user is signing in to, when they came from /oauth2/authorize.
    pub app_name: Option<&'a str>,
    pub error: Option<&'a str>,
    /// Kept after a failed attempt so only the password needs typing again.
    pub username: &'a str,
    pub return_to: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub site: &'a Site,
    pub username: &'a str,
    pub client_name: &'a str,
    /// The host the user is sent back to, whatever they decide.
    pub redirect_host: &'a str,
    pub client_uri: Option<&'a str>,
    pub scopes: Vec<ScopeLine>,
    /// The authorization request's parameters, carried back by the form.
    pub hidden: Vec<(&'a str, &'a str)>,
    pub csrf: &'a str,
    /// Where "not you?" comes back to after signing out: this same request.
    pub return_to: &'a str,
}

/// An application the user allowed, as the account page lists it.
#[derive(Debug, Clone)]
pub struct GrantLine {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<ScopeLine>,
    pub granted_at: String,
}

#[derive(Debug, Clone)]
pub struct SessionLine {
    pub created_at: String,
    pub last_seen_at: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub site: &'a Site,
    pub username: &'a str,
    pub notice: Option<&'a str>,
    pub grants: Vec<GrantLine>,
    pub sessions: Vec<SessionLine>,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "end_session.html")]
pub struct EndSessionPage<'a> {
    pub site: &'a Site,
    pub username: &'a str,
    pub client_name: Option<&'a str>,
    pub hidden: &'a [(&'static str, String)],
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub site: &'a Site,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub site: &'a Site,
    pub title: &'a str,
    /// What went wrong, in one sentence.
    pub message: &'a str,
    /// What to do about it.
    pub next_step: &'a str,
    /// A reference that also appears in the server log next to the cause.
    pub error_id: &'a str,
    pub client_id: Option<&'a str>,
    /// Somewhere the person may choose to go next.
    pub link: Option<PageLink<'a>>,
}

/// A link on an error page, with the words that say where it goes.
pub struct PageLink<'a> {
    pub href: &'a str,
    pub text: &'a str,
}

/// Renders a page. Askama fails only if a value's `Display` fails, which ours never do; if it
/// ever happened, the person still gets a page and the log says why.
pub fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "page failed to render");
        "<!doctype html><title>Error</title><p>Something went wrong on our side. Please try again."
            .to_string()
    })
}

/// A short reference for an error page, to be quoted to support and found in the log.
pub fn new_error_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Unix seconds as `2026-12-04 14:45 UTC` (civil-from-days, proleptic Gregorian).
pub fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site::new(&Settings::default(), "/assets/x.css".into())
    }

    #[test]
    fn templates_escape_untrusted_text() {
        let site = site();
        let html = render(&ErrorPage {
            site: &site,
            title: "Bad",
            message: "<script>alert(\"x\")</script>",
            next_step: "a & b",
            error_id: "ID",
            client_id: Some("'><img src=x>"),
            link: Some(PageLink {
                href: "https://a.example/?x=\"><b>",
                text: "<i>go</i>",
            }),
        });
        assert!(
            !html.contains("\"><b>") && !html.contains("<i>go"),
            "{html}"
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("'><img"), "{html}");
        assert!(
            html.contains("&#60;script&#62;") && html.contains("a &#38; b"),
            "{html}"
        );
    }

    #[test]
    fn support_contact_becomes_a_link() {
        let mut s = Settings::default();
        s.branding.support_contact = "help@example.org".into();
        let site = Site::new(&s, String::new());
        assert_eq!(
            site.support.and_then(|s| s.href).as_deref(),
            Some("mailto:help@example.org")
        );
        s.branding.support_contact = "the front desk".into();
        assert!(Site::new(&s, String::new())
            .support
            .is_some_and(|s| s.href.is_none()));
    }

    #[test]
    fn formats_unix_time_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_796_395_500), "2026-12-04 14:45 UTC");
    }

    #[test]
    fn error_ids_are_distinct_and_readable() {
        let a = new_error_id();
        assert_eq!(a.len(), 10);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, new_error_id());
    }
}
