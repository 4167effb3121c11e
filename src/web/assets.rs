//! The one stylesheet, and the Content-Security-Policy that allows it.
//!
//! The stylesheet is built once at startup (the operator's accent colour, then
//! `assets/portcullis.css`) and served under a name that carries a hash of its bytes, so it can
//! be cached for a year and a new build or colour is a new URL. The pages have no inline
//! styles or scripts and need no JavaScript; the CSP says so.

use std::sync::Arc;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::settings::Settings;

const STYLESHEET: &str = include_str!("../../assets/portcullis.css");

#[derive(Debug, Clone)]
pub struct Assets {
    /// `/assets/portcullis.<hash>.css`
    pub stylesheet_path: String,
    stylesheet: Bytes,
    /// The CSP every response carries.
    pub csp: HeaderValue,
}

impl Assets {
    pub fn new(settings: &Settings) -> Self {
        let accent = &settings.branding.accent_color;
        let css = format!(":root {{ --accent: {accent}; }}\n{STYLESHEET}");
        let digest = ring::digest::digest(&ring::digest::SHA256, css.as_bytes());
        let hash = hex::encode(&digest.as_ref()[..8]);
        if let Some(ratio) = contrast_with_white(accent).filter(|r| *r < 4.5) {
            tracing::warn!(
                accent,
                ratio = format!("{ratio:.1}"),
                "branding.accent_color has less than 4.5:1 contrast with the white text on buttons (WCAG AA)"
            );
        }
        Assets {
            stylesheet_path: format!("/assets/portcullis.{hash}.css"),
            stylesheet: Bytes::from(css),
            csp: csp(settings),
        }
    }
}

/// `default-src 'none'` and only what the pages use: this stylesheet, images from here and from
/// the logo's origin. No `form-action`: Chromium applies it to the redirect that follows a form
/// submission, so `'self'` would block the consent form's 303 to the client's redirect URI.
fn csp(settings: &Settings) -> HeaderValue {
    let logo = url::Url::parse(&settings.branding.logo_url)
        .ok()
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'{logo}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    // The logo URL was checked to be an http(s) URL, whose origin is plain ASCII.
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    ))
}

/// `GET /assets/portcullis.<hash>.css`. Any other name under /assets is a 404.
pub fn routes(assets: Arc<Assets>) -> BoxedFilter<(Response,)> {
    warp::path!("assets" / String)
        .and(super::request::get_or_head())
        .and_then(move |name: String| {
            let assets = assets.clone();
            async move {
                if format!("/assets/{name}") != assets.stylesheet_path {
                    return Err(warp::reject::not_found());
                }
                let mut r = Response::new(assets.stylesheet.clone().into());
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/css; charset=utf-8"),
                );
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                );
                Ok(warp::reply::with_status(r, StatusCode::OK).into_response())
            }
        })
        .boxed()
}

/// WCAG 2 contrast ratio of `#rrggbb` against white.
fn contrast_with_white(hex_colour: &str) -> Option<f64> {
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(hex_colour.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    let l = 0.2126 * channel(1)? + 0.7152 * channel(3)? + 0.0722 * channel(5)?;
    Some(1.05 / (l + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accent_passes_aa_with_white_text() {
        let ratio = contrast_with_white(&Settings::default().branding.accent_color).unwrap();
        assert!(ratio >= 4.5, "{ratio}");
        assert!(contrast_with_white("#ffff00").unwrap() < 4.5);
    }

    #[test]
    fn stylesheet_name_follows_its_content() {
        let a = Assets::new(&Settings::default());
        let mut s = Settings::default();
        s.branding.accent_color = "#7a1fa2".into();
        let b = Assets::new(&s);
        assert_ne!(a.stylesheet_path, b.stylesheet_path);
        assert!(a.stylesheet_path.starts_with("/assets/portcullis."));
    }

    #[test]
    fn csp_allows_the_logo_origin_only() {
        let mut s = Settings::default();
        s.branding.logo_url = "https://cdn.example:8443/brand/logo.svg".into();
        let csp = Assets::new(&s).csp;
        let csp = csp.to_str().unwrap();
        assert!(
            csp.contains("img-src 'self' https://cdn.example:8443;"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
    }
}
