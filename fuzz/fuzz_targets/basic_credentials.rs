//! HTTP Basic client credentials (RFC 7617, RFC 6749 §2.3.1): any header value decodes or is
//! refused without a panic, and any id and secret a client encodes as §2.3.1 says come back
//! exactly.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::client_auth::decode_basic;

fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Whatever a client sends after `Basic `.
    let _ = decode_basic(&text);

    // An id and a secret, split at the first NUL, encoded as a conforming client does.
    let (id, secret) = text.split_once('\0').unwrap_or((&text, ""));
    let header = STANDARD.encode(format!("{}:{}", form_urlencode(id), form_urlencode(secret)));
    let decoded = decode_basic(&header);
    if id.is_empty() {
        assert_eq!(decoded, None, "an empty client id was accepted");
    } else {
        assert_eq!(decoded, Some((id.to_string(), secret.to_string())));
    }
});
