//! Scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of printable ASCII without
//! `"` or `\`. Kept as a sorted set so responses are stable.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a scope string; `None` if a token has a character §3.3 forbids.
    pub fn parse(s: &str) -> Option<Self> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            let ok = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !ok {
                return None;
            }
            set.insert(token.to_string());
        }
        Some(Scope(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scope a request gets (RFC 6749 §3.3): `allowed` when it names none, what it names
    /// when that is well-formed and within `allowed`, otherwise `None` (`invalid_scope`).
    pub fn requested(requested: Option<&str>, allowed: &Scope) -> Option<Scope> {
        match requested {
            None => Some(allowed.clone()),
            Some(s) => Scope::parse(s).filter(|req| req.is_subset_of(allowed)),
        }
    }

    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }

    /// The values `keep` says yes to.
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> Scope {
        Scope(self.0.iter().filter(|v| keep(v)).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorted_and_deduplicated() {
        assert_eq!(Scope::parse("b a  b").unwrap().to_string(), "a b");
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_forbidden_characters() {
        assert!(Scope::parse("a\"b").is_none());
        assert!(Scope::parse("a\\b").is_none());
        assert!(Scope::parse("é").is_none());
    }

    #[test]
    fn requested_defaults_and_narrows() {
        let allowed = Scope::parse("read write").unwrap();
        assert_eq!(Scope::requested(None, &allowed), Some(allowed.clone()));
        assert_eq!(
            Scope::requested(Some("read"), &allowed)
                .unwrap()
                .to_string(),
            "read"
        );
        assert_eq!(Scope::requested(Some("read admin"), &allowed), None);
        assert_eq!(Scope::requested(Some("a\"b"), &allowed), None);
    }

    #[test]
    fn subset() {
        let all = Scope::parse("read write").unwrap();
        assert!(Scope::parse("read").unwrap().is_subset_of(&all));
        assert!(!Scope::parse("admin").unwrap().is_subset_of(&all));
    }
}
