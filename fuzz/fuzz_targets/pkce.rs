//! PKCE values (RFC 7636 §4.1, §4.2, §4.6): a verifier and a challenge, split at the first
//! newline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::domain::pkce::{
    is_valid_s256_challenge, is_valid_verifier, s256_challenge, verify_s256,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (verifier, challenge) = text.split_once('\n').unwrap_or((&text, ""));
    if verify_s256(verifier, challenge) {
        assert!(is_valid_verifier(verifier));
        assert!(is_valid_s256_challenge(challenge));
        assert_eq!(s256_challenge(verifier), challenge);
    }
    let _ = is_valid_s256_challenge(challenge);
    if is_valid_verifier(verifier) {
        let own = s256_challenge(verifier);
        assert!(is_valid_s256_challenge(&own), "{own:?}");
        assert!(verify_s256(verifier, &own));
    }
});
