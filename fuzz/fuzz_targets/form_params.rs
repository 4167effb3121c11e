//! Form bodies and query strings (RFC 6749 §3.1, §3.2): any bytes, under any content type, give
//! either parameters or `invalid_request`, and parameters survive a round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::oauth::params::Params;
use portcullis::web::request::form_params;

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("Application/X-WWW-Form-Urlencoded"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let Ok(params) = form_params(content_type, body) else {
        return;
    };
    assert!(
        content_type.is_some(),
        "a body without a content type was accepted"
    );
    assert!(
        std::str::from_utf8(body).is_ok(),
        "a non-UTF-8 body was accepted"
    );
    // What is read back from the query the server would build is what was read.
    let again = Params::parse(&params.to_query()).expect("a built query repeats no parameter");
    assert_eq!(again, params);
    // A parameter without a value is treated as omitted (RFC 6749 §3.1).
    for (name, value) in params.iter() {
        assert_eq!(params.get(name).is_some(), !value.is_empty());
    }
});
