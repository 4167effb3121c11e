//! A request id for every request (issue 13): taken from a trusted proxy's `X-Request-Id` when
//! it is a plain token, otherwise made here. It names the request's tracing span, so every log
//! line of the request carries it, and it is echoed in the response's `X-Request-Id`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use warp::http::HeaderMap;

use super::server::Connection;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn for_request(headers: &HeaderMap, connection: &Connection) -> Self {
        let from_proxy = connection
            .trusted_proxies
            .trusts(connection.peer.ip())
            .then(|| headers.get(HEADER)?.to_str().ok())
            .flatten()
            .filter(|v| is_plain_token(v));
        match from_proxy {
            Some(id) => RequestId(id.to_string()),
            None => RequestId::new(),
        }
    }

    /// A random prefix for the process and a counter: unique across nodes and restarts, and
    /// cheaper on every request than fresh randomness.
    fn new() -> Self {
        static PREFIX: LazyLock<String> = LazyLock::new(|| crate::domain::secret::random_b64(6));
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RequestId(format!(
            "{}-{:x}",
            *PREFIX,
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

/// 1 to 64 of `[A-Za-z0-9._-]`: safe in a log line and a header, whatever the proxy sent.
fn is_plain_token(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_are_unique_and_plain() {
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_ne!(a.0, b.0);
        assert!(is_plain_token(&a.0), "{a:?}");
    }

    #[test]
    fn only_plain_tokens_are_taken_from_a_proxy() {
        assert!(is_plain_token("7f3a-11.b_c"));
        for bad in ["", "a b", "a\"b", "é", &"x".repeat(65)] {
            assert!(!is_plain_token(bad), "{bad:?}");
        }
    }
}
