//! IP networks as `x-gateway.limits.trusted_proxies` writes them: a CIDR range (`10.0.0.0/8`,
//! `fd00::/8`) or a single address (`192.0.2.1`, `::1`).
//!
//! The compiler refuses an entry that is neither; the gateway parses the same entries at
//! start-up and refuses to start on one it cannot read. Both use [`Net::parse`], so a spec
//! that passes `gatewayc check` never stops a gateway over its proxy list.

use std::fmt;
use std::net::IpAddr;

/// An address with a prefix length; the bits after the prefix are zero.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.0/104`) are the IPv4 network they stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses a CIDR range or an address (a whole /32 or /128); surrounding whitespace is
    /// ignored. Bits after the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`). `None` for
    /// anything else, a prefix written other than in digits (`/+8`) or too long for the
    /// address among them.
    pub fn parse(text: &str) -> Option<Net> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            // Digits only: `u8::from_str` would also take `+8`.
            Some((addr, prefix))
                if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (
                    addr.parse::<IpAddr>().ok()?,
                    Some(prefix.parse::<u8>().ok()?),
                )
            }
            Some(_) => return None,
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let written_v6 = addr.is_ipv6();
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // A mapped IPv6 network (`::ffff:10.0.0.0/104`) is the IPv4 one it stands for.
            Some(p) if written_v6 && addr.is_ipv4() => p.checked_sub(96)?,
            Some(p) => p,
        };
        if prefix > max {
            return None;
        }
        Some(Net {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The network's first address.
    pub fn addr(self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is
    /// taken as the IPv4 address it holds.
    pub fn contains(self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `addr` with every bit after the first `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    let prefix = u32::from(prefix);
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32u32.saturating_sub(prefix))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128u32.saturating_sub(prefix))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Net {
        Net::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn ranges_and_addresses_parse_and_anything_else_does_not() {
        let shown = |s| net(s).to_string();
        assert_eq!(shown("10.0.0.0/8"), "10.0.0.0/8");
        assert_eq!(shown("192.0.2.7"), "192.0.2.7/32");
        assert_eq!(shown("fd00::/8"), "fd00::/8");
        assert_eq!(shown(" ::1 "), "::1/128");
        assert_eq!(shown("10.1.2.3/8"), "10.0.0.0/8", "host bits cleared");
        assert_eq!(shown("::ffff:10.0.0.0/104"), "10.0.0.0/8", "mapped IPv4");
        assert_eq!(shown("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(shown("::/0"), "::/0");
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "localhost",
            "example.com",
            "",
            "10.0.0/8",
            "::ffff:10.0.0.0/95",
        ] {
            assert_eq!(Net::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn networks_hold_the_addresses_under_their_prefix() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.1.1")), "mapped IPv4");
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(!ten.contains(ip("::a00:1")), "IPv6, not mapped");
        let one = net("192.0.2.7");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = net("fd00::/8");
        assert!(v6.contains(ip("fd12:3456::1")) && !v6.contains(ip("fe80::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(net("::/0").contains(ip("2001:db8::9")));
        assert!(!net("::/0").contains(ip("203.0.113.9")));
        assert_eq!((ten.addr(), ten.prefix()), (ip("10.0.0.0"), 8));
    }
}
