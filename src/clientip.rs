//! Which address a request came from: the connection's peer, or, when the peer is a proxy the operator
//! trusts (`server.trusted_proxies`), the address that proxy saw, from `X-Forwarded-For`. Nothing is
//! believed by default, because anyone can send the header. Pure; depends on nothing internal.

use std::fmt;
use std::net::IpAddr;

/// An address block such as `10.0.0.0/8`, `127.0.0.1` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!("{s:?} is not an address or block like \"10.0.0.0/8\", \"127.0.0.1\" or \"fd00::/8\"")
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    let drop = u32::from(width - prefix);
    if drop >= 128 {
        0
    } else {
        (bits >> drop) << drop
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then `X-Forwarded-For` is read
/// from the right (the hop nearest us) and the first address that is not itself a trusted proxy is the
/// client. An entry that is not an address stops the walk at the proxy that passed it on.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let trusts = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !trusts(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for
        .unwrap_or_default()
        .split(',')
        .rev()
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !trusts(ip) {
            return ip;
        }
    }
    client
}

/// What sign-in limits count an address as: an IPv4 address itself, an IPv6 address by its /64 (one
/// subscriber's network holds billions of addresses; counting each apart would let one client look like
/// many).
pub fn limit_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) >> 64 << 64;
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("192.168.1.0/24", "::ffff:192.168.1.77", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::1", "::1", true),
            ("::/0", "2001:db8::1", true),
            ("10.0.0.0/8", "::1", false),
        ];
        for (block, addr, want) in cases {
            assert_eq!(
                Cidr::parse(block).unwrap().contains(ip(addr)),
                *want,
                "{block} {addr}"
            );
        }
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "example.com",
            "::1/129",
            "10.0.0.0/x",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let cases = [
            ("203.0.113.5", "203.0.113.5"),
            ("::ffff:203.0.113.5", "203.0.113.5"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ];
        for (addr, want) in cases {
            assert_eq!(limit_key(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let proxies = [
            Cidr::parse("127.0.0.1").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let cases: &[(&str, Option<&str>, &[Cidr], &str)] = &[
            // Nothing trusted by default: the header is ignored.
            ("127.0.0.1", Some("203.0.113.5"), &[], "127.0.0.1"),
            (
                "198.51.100.1",
                Some("203.0.113.5"),
                &proxies,
                "198.51.100.1",
            ),
            ("127.0.0.1", Some("203.0.113.5"), &proxies, "203.0.113.5"),
            // A client cannot choose its address by prepending to the header.
            (
                "127.0.0.1",
                Some("1.1.1.1, 203.0.113.5"),
                &proxies,
                "203.0.113.5",
            ),
            (
                "127.0.0.1",
                Some("203.0.113.5, 10.0.0.7"),
                &proxies,
                "203.0.113.5",
            ),
            (
                "127.0.0.1",
                Some("203.0.113.5:4431"),
                &proxies,
                "203.0.113.5",
            ),
            (
                "127.0.0.1",
                Some("[2001:db8::5]:443"),
                &proxies,
                "2001:db8::5",
            ),
            ("127.0.0.1", None, &proxies, "127.0.0.1"),
            ("127.0.0.1", Some("garbage, 10.0.0.7"), &proxies, "10.0.0.7"),
            (
                "::ffff:127.0.0.1",
                Some("203.0.113.5"),
                &proxies,
                "203.0.113.5",
            ),
        ];
        for (peer, header, trusted, want) in cases {
            assert_eq!(
                client_ip(ip(peer), *header, trusted),
                ip(want),
                "{peer} {header:?}"
            );
        }
    }
}
