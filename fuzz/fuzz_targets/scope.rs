//! Scope strings (RFC 6749 §3.3): space-delimited tokens of %x21 / %x23-5B / %x5D-7E.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::domain::scope::Scope;

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (requested, allowed) = text.split_once('\n').unwrap_or((&text, ""));
    let Some(scope) = Scope::parse(requested) else {
        assert!(
            requested.bytes().any(|b| b != b' ' && !is_scope_char(b)),
            "a well-formed scope was refused: {requested:?}"
        );
        return;
    };
    assert!(requested.bytes().all(|b| b == b' ' || is_scope_char(b)));
    assert_eq!(Scope::parse(&scope.to_string()).as_ref(), Some(&scope));
    assert!(scope
        .iter()
        .all(|t| !t.is_empty() && t.bytes().all(is_scope_char)));
    assert_eq!(
        Scope::requested(Some(requested), &scope).as_ref(),
        Some(&scope)
    );
    if let Some(allowed) = Scope::parse(allowed) {
        let granted = Scope::requested(Some(requested), &allowed);
        assert_eq!(granted.is_some(), scope.is_subset_of(&allowed));
        assert_eq!(Scope::requested(None, &allowed).as_ref(), Some(&allowed));
        assert!(scope.is_subset_of(&scope.union(&allowed)));
    }
});
