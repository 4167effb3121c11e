//! The client's address, for rate limits: the connection's peer, unless the peer is one of
//! `server.trusted_proxies`. Then the proxies' `Forwarded` (RFC 7239) or `X-Forwarded-For`
//! header is read from the right, past every trusted proxy, and the first address that is not
//! one is the client. Addresses to the left of it were written by the client itself and are
//! never believed. A hop that cannot be read (`unknown`, an obfuscated name, garbage) stops
//! the walk at the last trusted hop, so a malformed header costs the proxy's own limit, not a
//! bypass.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR blocks (`10.0.0.0/8`) or single addresses (`127.0.0.1`, `::1`).
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("server.trusted_proxies: {s:?} is not an address or CIDR block")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying these headers (each the
    /// comma-joined values of all its fields, in order). `Forwarded` wins when both are sent.
    pub fn client_ip(
        &self,
        peer: IpAddr,
        forwarded: Option<&str>,
        x_forwarded_for: Option<&str>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<Option<IpAddr>> = match (forwarded, x_forwarded_for) {
            (Some(f), _) => f.split(',').map(forwarded_for).collect(),
            (None, Some(x)) => x.split(',').map(|h| h.trim().parse().ok()).collect(),
            (None, None) => return peer,
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }
}

/// The address in one `Forwarded` element's `for=` parameter (RFC 7239 §5.2): a quoted
/// `"[v6]:port"` or `"v4:port"`, or a bare v4 address. `None` for `unknown`, obfuscated
/// identifiers or no `for=`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    })?;
    let value = value.trim_matches('"');
    if let Some(v6) = value.strip_prefix('[') {
        return v6.split_once(']')?.0.parse().ok();
    }
    let host = value.split_once(':').map_or(value, |(h, _)| h);
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(
                ip("192.0.2.1"),
                Some("for=198.51.100.7"),
                Some("198.51.100.8")
            ),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client wrote 203.0.113.9 itself; the first proxy appended the real address.
        let xff = "203.0.113.9, 198.51.100.7, 10.1.2.3";
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), None, Some(xff)),
            ip("198.51.100.7")
        );
        let fwd = r#"for=203.0.113.9, for="198.51.100.7:4711";proto=https, for=10.1.2.3"#;
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), Some(fwd), Some("1.1.1.1")),
            ip("198.51.100.7")
        );
        let v6 = r#"For="[2001:db8:cafe::17]:4711""#;
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), Some(v6), None),
            ip("2001:db8:cafe::17")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_trusted_one() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(
                ip("10.0.0.1"),
                None,
                Some("198.51.100.7, garbage, 10.0.0.2")
            ),
            ip("10.0.0.2")
        );
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), Some("for=unknown"), None),
            ip("10.0.0.1")
        );
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), Some("for=_hidden"), None),
            ip("10.0.0.1")
        );
        assert_eq!(p.client_ip(ip("10.0.0.1"), None, None), ip("10.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_blocks() {
        let p = proxies(&["127.0.0.1"]);
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), None, Some("198.51.100.7")),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
    }
}
