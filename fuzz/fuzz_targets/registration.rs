//! Dynamic registration metadata (RFC 7591 §2): any JSON body within the endpoint's size limit
//! is refused with a metadata error or gives a client that the store can hold on both backends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::domain::clients::check_redirect_uri;
use portcullis::domain::registration::validate;
use portcullis::domain::scope::Scope;
use portcullis::web::request::MAX_FORM_BYTES;

/// MariaDB's TEXT holds 65,535 bytes; strict mode refuses more.
const TEXT_BYTES: usize = 65_535;

fuzz_target!(|data: &[u8]| {
    if data.len() as u64 > MAX_FORM_BYTES {
        return;
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let allowed = Scope::parse("read write profile").expect("a valid scope");
    let Ok(registration) = validate(&body, &allowed) else {
        return;
    };
    let spec = &registration.spec;
    for uri in &spec.redirect_uris {
        assert!(check_redirect_uri(uri, spec.public).is_ok(), "{uri:?}");
    }
    assert!(spec.name.chars().count() <= 255);
    assert!(spec.scope_set().is_subset_of(&allowed));
    assert!(!spec.resource_server, "registration granted introspection");
    let stored_uris = serde_json::Value::from(spec.redirect_uris.clone()).to_string();
    assert!(stored_uris.len() <= TEXT_BYTES);
    assert!(registration.metadata.to_string().len() <= TEXT_BYTES);
    // Validating what was validated changes nothing.
    let again = spec.clone().validate().expect("a validated spec is valid");
    assert_eq!(again.redirect_uris, spec.redirect_uris);
    assert_eq!(again.grant_types, spec.grant_types);
    assert_eq!(again.scope, spec.scope);
});
