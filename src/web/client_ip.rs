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
        let hops = hops(forwarded, x_forwarded_for, None);
        self.walk(peer, &hops).0
    }

    /// The scheme the client used, as recorded by the proxy that took its connection: the
    /// `proto=` of the `Forwarded` element where `client_ip` stops, or the matching
    /// `X-Forwarded-Proto` value (one value stands for every hop; a list is matched to
    /// `X-Forwarded-For` by position, else its last value counts). `None` when the peer is not
    /// a trusted proxy or no proxy said.
    pub fn forwarded_proto(
        &self,
        peer: IpAddr,
        forwarded: Option<&str>,
        x_forwarded_for: Option<&str>,
        x_forwarded_proto: Option<&str>,
    ) -> Option<String> {
        if !self.trusts(peer) {
            return None;
        }
        let hops = hops(forwarded, x_forwarded_for, x_forwarded_proto);
        if hops.is_empty() {
            // A proxy that names no client still says how the request reached it.
            return (forwarded.is_none())
                .then(|| x_forwarded_proto.and_then(last_value))
                .flatten();
        }
        let (_, at) = self.walk(peer, &hops);
        hops.get(at?)?.proto.clone()
    }

    /// Walks the hops from the right past every trusted proxy: the client's address, and the
    /// hop where the walk stopped (`None`: no hop, the peer itself).
    fn walk(&self, peer: IpAddr, hops: &[Hop]) -> (IpAddr, Option<usize>) {
        let mut client = peer;
        for (i, hop) in hops.iter().enumerate().rev() {
            match hop.ip {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return (ip, Some(i)),
                None => return (client, Some(i)),
            }
        }
        (client, hops.len().checked_sub(1).map(|_| 0))
    }
}

/// One proxy's record of the connection it took.
struct Hop {
    ip: Option<IpAddr>,
    proto: Option<String>,
}

fn hops(
    forwarded: Option<&str>,
    x_forwarded_for: Option<&str>,
    x_forwarded_proto: Option<&str>,
) -> Vec<Hop> {
    if let Some(f) = forwarded {
        return f
            .split(',')
            .map(|element| Hop {
                ip: forwarded_for(element),
                proto: forwarded_param(element, "proto").map(|p| p.to_ascii_lowercase()),
            })
            .collect();
    }
    let Some(x) = x_forwarded_for else {
        return Vec::new();
    };
    let ips: Vec<Option<IpAddr>> = x.split(',').map(|h| h.trim().parse().ok()).collect();
    let protos: Vec<String> = x_forwarded_proto
        .map(|p| {
            p.split(',')
                .map(|v| v.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let n = ips.len();
    ips.into_iter()
        .enumerate()
        .map(|(i, ip)| Hop {
            ip,
            proto: match protos.len() {
                0 => None,
                1 => protos.first().cloned(),
                len if len == n => protos.get(i).cloned(),
                _ => protos.last().cloned(),
            },
        })
        .collect()
}

fn last_value(list: &str) -> Option<String> {
    list.rsplit(',')
        .next()
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// A parameter of one `Forwarded` element, unquoted (RFC 7239 §4: names are
/// case-insensitive).
fn forwarded_param<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    element.split(';').find_map(|pair| {
        let (n, value) = pair.trim().split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The address in one `Forwarded` element's `for=` parameter (RFC 7239 §5.2): a quoted
/// `"[v6]:port"` or `"v4:port"`, or a bare v4 address. `None` for `unknown`, obfuscated
/// identifiers or no `for=`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = forwarded_param(element, "for")?;
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
    fn the_scheme_is_the_one_recorded_where_the_client_was_found() {
        let p = proxies(&["10.0.0.0/8"]);
        let fwd =
            r#"for=203.0.113.9;proto=https, for=198.51.100.7;proto=http, for=10.1.2.3;proto=https"#;
        assert_eq!(
            p.forwarded_proto(ip("10.0.0.1"), Some(fwd), None, None)
                .as_deref(),
            Some("http")
        );
        // One X-Forwarded-Proto value stands for the chain; a list pairs with the addresses.
        let xff = Some("198.51.100.7, 10.0.0.2");
        assert_eq!(
            p.forwarded_proto(ip("10.0.0.1"), None, xff, Some("HTTPS"))
                .as_deref(),
            Some("https")
        );
        assert_eq!(
            p.forwarded_proto(ip("10.0.0.1"), None, xff, Some("http, https"))
                .as_deref(),
            Some("http")
        );
        assert_eq!(
            p.forwarded_proto(ip("10.0.0.1"), None, None, Some("https"))
                .as_deref(),
            Some("https")
        );
        assert_eq!(p.forwarded_proto(ip("10.0.0.1"), None, xff, None), None);
        // From anyone else it is not believed.
        assert_eq!(
            p.forwarded_proto(ip("192.0.2.1"), None, None, Some("https")),
            None
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
    }
}
