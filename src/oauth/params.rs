//! Request parameters. RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be
//! included more than once"; a parameter sent without a value is treated as omitted.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

/// The first parameter that appeared more than once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {0:?} is repeated")]
pub struct Repeated(pub String);

impl Params {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, Repeated> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(Repeated(k));
            }
        }
        Ok(Params(map))
    }

    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn parse(text: &str) -> Result<Self, Repeated> {
        Self::from_pairs(url::form_urlencoded::parse(text.as_bytes()).into_owned())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    pub fn to_query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0.iter())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(Params::parse("a=1&b=2&a=3"), Err(Repeated("a".into())));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::parse("scope=&state=x%20y").unwrap();
        assert_eq!(p.get("scope"), None);
        assert_eq!(p.get("state"), Some("x y"));
    }
}
