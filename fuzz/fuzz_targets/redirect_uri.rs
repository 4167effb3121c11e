//! Redirect URIs: registration rules (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1) and matching
//! (RFC 9700 §4.1.3 exact strings; RFC 8252 §7.3 any port on a loopback IP literal). The input
//! is a registered and a presented URI, split at the first newline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::domain::clients::{check_redirect_uri, redirect_uri_matches};

/// The URI as a loopback IP literal over http with its port removed, if it is one.
fn loopback_without_port(uri: &str) -> Option<url::Url> {
    let mut u = url::Url::parse(uri).ok()?;
    let loopback_literal = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    (u.scheme() == "http" && loopback_literal).then_some(())?;
    u.set_port(None).ok()?;
    Some(u)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (registered, presented) = text.split_once('\n').unwrap_or((&text, ""));
    for public in [false, true] {
        if check_redirect_uri(registered, public).is_ok() {
            // A registrable URI can be written into a Location header as it is.
            assert!(
                registered
                    .bytes()
                    .all(|b| b.is_ascii_graphic() || b >= 0x80),
                "registrable URI with a space or control character: {registered:?}"
            );
            assert!(url::Url::parse(registered).is_ok());
        }
    }
    assert!(redirect_uri_matches(registered, registered));
    let matches = redirect_uri_matches(registered, presented);
    assert_eq!(
        matches,
        redirect_uri_matches(presented, registered),
        "not symmetric"
    );
    if matches && registered != presented {
        // Only the port of a loopback IP literal may differ, and it must be a real port.
        let (r, p) = (
            loopback_without_port(registered),
            loopback_without_port(presented),
        );
        assert!(
            r.is_some() && r == p,
            "{registered:?} matched {presented:?}"
        );
    }
});
