//! Which addresses a public URL may lead to: none of the IANA IPv4 and
//! IPv6 Special-Purpose Address Registries' ranges that are not globally
//! reachable, and no IPv6 form that embeds or reaches such an IPv4 address
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges refused, as (network, prefix length).
const V4_REFUSED: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGN)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata lives here)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast address
];

/// IPv6 ranges refused outright, as (network, prefix length).
const V6_REFUSED: &[(u128, u8)] = &[
    (0, 96), // ::/96: unspecified, loopback, IPv4-compatible
    (0x0000_0000_0000_0000_ffff_0000_0000_0000, 96), // IPv4-translated (SIIT)
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // local-use NAT64
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard-only
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // IETF protocol assignments (Teredo, ORCHID…)
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
    (0x2002_0000_0000_0000_0000_0000_0000_0000, 16), // 6to4: reaches an embedded IPv4 address
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation
    (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16), // SRv6 SIDs
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7), // unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // site-local (deprecated)
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8), // multicast
];

/// The well-known NAT64 prefix `64:ff9b::/96`: the address reached is the
/// embedded IPv4 one.
const NAT64: u128 = 0x0064_ff9b_0000_0000_0000_0000_0000_0000;

/// Whether `ip` is an address no public URL should lead to.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_refused(v4),
        IpAddr::V6(v6) => v6_refused(v6),
    }
}

fn v4_refused(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    V4_REFUSED.iter().any(|(network, prefix)| {
        let mask = u32::MAX << (32 - u32::from(*prefix));
        ip & mask == u32::from_be_bytes(*network) & mask
    })
}

fn v6_refused(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refused(v4);
    }
    let bits = u128::from(ip);
    if bits >> 32 == NAT64 >> 32 {
        return v4_refused(Ipv4Addr::from(bits as u32));
    }
    V6_REFUSED.iter().any(|(network, prefix)| {
        let mask = u128::MAX << (128 - u32::from(*prefix));
        bits & mask == network & mask
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_ipv4_addresses_are_refused() {
        for internal in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.255",
        ] {
            assert!(is_internal(internal.parse().expect("ip")), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.3.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!is_internal(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn special_purpose_ipv6_addresses_and_embedded_ipv4_are_refused() {
        for internal in [
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:7f00:1",
            "::ffff:0:808:808",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:10::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:808:808::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_internal(internal.parse().expect("ip")), "{internal}");
        }
        for public in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2a00:1450:4001:81c::200e",
        ] {
            assert!(!is_internal(public.parse().expect("ip")), "{public}");
        }
    }
}
