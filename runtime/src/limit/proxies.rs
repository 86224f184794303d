//! Which address a request comes from, for limits keyed by client IP.
//!
//! `X-Forwarded-For` is written by whoever sends the request, so it is believed only as far
//! as it was written by proxies the operator trusts (`x-gateway.limits.trusted_proxies`):
//! the list is read from the right, each trusted hop vouching for the address to its left,
//! and the first address that is not a trusted proxy is the client. A peer that is not a
//! trusted proxy is the client, whatever the header says.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use gatewayc_vocab::net::Net;
use http::HeaderValue;

/// Networks whose `X-Forwarded-For` is believed, parsed once at start-up.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`, `fd00::/8`) and plain addresses (`192.0.2.1`, `::1`), as
    /// `gatewayc_vocab::net` reads them (the compiler checked the spec's list the same way).
    /// Host bits below the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`). The error
    /// names the first entry that is neither.
    pub fn parse(entries: &[&str]) -> Result<TrustedProxies, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                Net::parse(entry).ok_or_else(|| {
                    format!(
                        "trusted_proxies: `{entry}` is neither an IP address nor a CIDR \
                         (like 10.0.0.0/8 or fd00::/8)"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` is in one of the networks. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.0.0.1`) are taken as the IPv4 address they hold.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// Whether no proxy is trusted (then `X-Forwarded-For` is never read).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.nets.iter().map(Net::to_string))
            .finish()
    }
}

/// The client's address: `peer` itself unless `peer` is a trusted proxy, in which case the
/// rightmost address of `X-Forwarded-For` that is not a trusted proxy (or the leftmost, when
/// every hop is trusted).
///
/// Entries may carry a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`). Reading stops at an
/// entry that is not an address (`unknown`, garbage): the last address read is returned, so
/// a malformed header never lets the client choose its key. A header that is not visible
/// ASCII counts as absent. When a request has several `X-Forwarded-For` lines, pass the
/// last one: the nearest proxy appended to it.
pub fn client_ip(peer: IpAddr, xff: Option<&HeaderValue>, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let Some(list) = xff.and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    let mut client = peer;
    for hop in list.rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port, possibly in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = match hop.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match hop.parse::<SocketAddr>() {
            Ok(sa) => sa.ip(),
            Err(_) => hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?,
        },
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn parses_cidrs_and_addresses_and_names_a_bad_entry() {
        let t = TrustedProxies::parse(&[
            "10.0.0.0/8",
            "192.0.2.7",
            "fd00::/8",
            " ::1 ",
            "10.9.8.7/32",
        ])
        .unwrap();
        assert!(t.contains(ip("10.255.0.1")));
        assert!(t.contains(ip("::ffff:10.1.1.1")), "mapped IPv4");
        assert!(t.contains(ip("192.0.2.7")));
        assert!(!t.contains(ip("192.0.2.8")));
        assert!(t.contains(ip("fd12:3456::1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert_eq!(
            format!("{t:?}"),
            "[\"10.0.0.0/8\", \"192.0.2.7/32\", \"fd00::/8\", \"::1/128\", \"10.9.8.7/32\"]"
        );

        let all = TrustedProxies::parse(&["0.0.0.0/0", "::/0"]).unwrap();
        assert!(all.contains(ip("203.0.113.9")) && all.contains(ip("2001:db8::9")));
        let masked = TrustedProxies::parse(&["10.1.2.3/8"]).unwrap();
        assert!(masked.contains(ip("10.200.0.1")));
        let mapped = TrustedProxies::parse(&["::ffff:10.0.0.0/104"]).unwrap();
        assert!(mapped.contains(ip("10.3.3.3")) && !mapped.contains(ip("11.3.3.3")));

        // What an entry may be is `gatewayc_vocab::net`'s, tested there.
        for bad in ["10.0.0.0/33", "localhost"] {
            let err = TrustedProxies::parse(&["10.0.0.0/8", bad]).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert!(TrustedProxies::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let spoof = xff("10.0.0.5, 198.51.100.1");
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some(&spoof), &trusted),
            ip("203.0.113.9")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(&spoof), &none),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.9"), None, &none),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn walks_forwarded_for_through_trusted_proxies() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "2001:db8:ff::/48"]).unwrap();
        let peer = ip("10.0.0.2");
        let at = |header: &str| client_ip(peer, Some(&xff(header)), &trusted);
        // Each trusted hop vouches for the one on its left.
        assert_eq!(at("203.0.113.7, 10.0.0.1"), ip("203.0.113.7"));
        // What the client wrote itself, left of the first untrusted hop, is ignored.
        assert_eq!(at("6.6.6.6, 203.0.113.7, 10.0.0.1"), ip("203.0.113.7"));
        assert_eq!(at("6.6.6.6,203.0.113.7"), ip("203.0.113.7"));
        // Every hop trusted: the leftmost.
        assert_eq!(at("10.1.1.1, 10.0.0.1"), ip("10.1.1.1"));
        // Ports, brackets, IPv6, empty entries.
        assert_eq!(at("203.0.113.7:4711"), ip("203.0.113.7"));
        assert_eq!(
            at("[2001:db8::1]:4711, [2001:db8:ff::2]"),
            ip("2001:db8::1")
        );
        assert_eq!(at(" 203.0.113.7 ,, "), ip("203.0.113.7"));
        // Garbage stops the walk at the last address read.
        assert_eq!(at("203.0.113.7, unknown"), peer);
        assert_eq!(at("203.0.113.7, nonsense, 10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(at(""), peer);
        // No header, or one that is not ASCII: the peer.
        assert_eq!(client_ip(peer, None, &trusted), peer);
        let binary = HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap();
        assert_eq!(client_ip(peer, Some(&binary), &trusted), peer);
    }
}
