//! Address sets and the network model the detectors share: which addresses are internal,
//! which hosts are proxies, resolvers, mail servers or sinkholes, and which addresses are
//! neither internal nor external (link-local, multicast, broadcast, loopback, unspecified).
//!
//! Pure data: built once from configuration strings, then queried per event.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One CIDR block (`10.0.0.0/8`, `fc00::/7`, or a bare address = a host route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cidr {
    V4 { net: u32, len: u8 },
    V6 { net: u128, len: u8 },
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/LEN`. Host bits set under the mask are an error (a typo such
    /// as `10.1.2.3/8` is more likely than intent).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (
                a,
                Some(
                    l.parse::<u8>()
                        .map_err(|_| format!("{s:?}: bad prefix length"))?,
                ),
            ),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or CIDR"))?;
        match ip {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(format!("{s:?}: prefix length over 32"));
                }
                let net = u32::from(a);
                if net & !mask4(len) != 0 {
                    return Err(format!(
                        "{s:?}: host bits set (did you mean {}/{len}?)",
                        Ipv4Addr::from(net & mask4(len))
                    ));
                }
                Ok(Cidr::V4 { net, len })
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(format!("{s:?}: prefix length over 128"));
                }
                let net = u128::from(a);
                if net & !mask6(len) != 0 {
                    return Err(format!(
                        "{s:?}: host bits set (did you mean {}/{len}?)",
                        Ipv6Addr::from(net & mask6(len))
                    ));
                }
                Ok(Cidr::V6 { net, len })
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (Cidr::V4 { net, len }, IpAddr::V4(a)) => u32::from(a) & mask4(*len) == *net,
            (Cidr::V6 { net, len }, IpAddr::V6(a)) => u128::from(a) & mask6(*len) == *net,
            _ => false,
        }
    }
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) compare as their IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// A set of CIDR blocks (linear scan: the sets are short and configured by hand). Each
/// family's blocks are kept apart as (mask, network) pairs, so a lookup canonicalises the
/// address once and compares only within its family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrSet {
    blocks: Vec<Cidr>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    /// Per first octet of an IPv4 address: [`NONE`] of that /8 is in the set, [`ALL`] of it
    /// is, or [`SOME`] (scan `v4`). Most lookups end here: every detector asks for the zone
    /// of both ends of every record.
    v4_octet: Vec<u8>,
}

const NONE: u8 = 0;
const ALL: u8 = 1;
const SOME: u8 = 2;

impl CidrSet {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<CidrSet, String> {
        let blocks = items
            .iter()
            .map(|s| Cidr::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut set = CidrSet {
            blocks,
            ..Default::default()
        };
        for b in &set.blocks {
            match *b {
                Cidr::V4 { net, len } => set.v4.push((mask4(len), net)),
                Cidr::V6 { net, len } => set.v6.push((mask6(len), net)),
            }
        }
        set.v4_octet = (0..=255u32)
            .map(|o| {
                let lo = o << 24;
                if set.v4.iter().any(|&(m, n)| m <= mask4(8) && lo & m == n) {
                    ALL
                } else if set.v4.iter().any(|&(_, n)| n & mask4(8) == lo) {
                    SOME
                } else {
                    NONE
                }
            })
            .collect();
        Ok(set)
    }

    /// Some block contains `ip` (as [`Cidr::contains`]: IPv4-mapped IPv6 as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => match self.v4_octet.get(a.octets()[0] as usize) {
                Some(&NONE) => false,
                Some(&ALL) => true,
                _ => {
                    let a = u32::from(a);
                    self.v4.iter().any(|&(m, n)| a & m == n)
                }
            },
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(m, n)| a & m == n)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }
}

/// `a.b.c.d` (as `Ipv4Addr`'s `Display`) into `buf`; returns its length. For text built
/// per event (dedupe keys, the state file), without the formatting machinery.
pub fn ipv4_text(octets: [u8; 4], buf: &mut [u8; 15]) -> usize {
    // Each octet is one table entry (its digits and a dot) stored as four bytes: a fixed
    // copy and an add, where the digit-by-digit form branched three times an octet.
    let mut b = [0u8; 16];
    let mut n = 0;
    for o in octets {
        let (text, len) = OCTET_TEXT[usize::from(o)];
        b[n..n + 4].copy_from_slice(&text);
        n += usize::from(len);
    }
    buf.copy_from_slice(&b[..15]);
    n - 1 // no dot after the last octet
}

/// Every octet's decimal digits followed by a dot, and that length.
static OCTET_TEXT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut o = 0;
    while o < 256 {
        let (h, d, u) = ((o / 100) as u8, (o / 10 % 10) as u8, (o % 10) as u8);
        t[o] = if o >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 4)
        } else if o >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 3)
        } else {
            ([b'0' + u, b'.', 0, 0], 2)
        };
        o += 1;
    }
    t
};

/// Longest IPv6 text: eight groups of four hex digits and seven colons.
pub const IPV6_TEXT_MAX: usize = 39;

/// An IPv6 address as `Ipv6Addr`'s `Display` writes it into `buf`; returns its length:
/// `::ffff:a.b.c.d` when v4-mapped, else lower-case hex groups with the first longest run
/// of two or more zero groups as `::`.
pub fn ipv6_text(a: Ipv6Addr, buf: &mut [u8; IPV6_TEXT_MAX]) -> usize {
    if let Some(v4) = a.to_ipv4_mapped() {
        buf[..7].copy_from_slice(b"::ffff:");
        let mut b4 = [0u8; 15];
        let n = ipv4_text(v4.octets(), &mut b4);
        buf[7..7 + n].copy_from_slice(&b4[..n]);
        return 7 + n;
    }
    let seg = a.segments();
    let (mut best, mut best_len, mut run) = (0usize, 0usize, 0usize);
    for (i, &s) in seg.iter().enumerate() {
        run = if s == 0 { run + 1 } else { 0 };
        if run > best_len {
            best_len = run;
            best = i + 1 - run;
        }
    }
    if best_len < 2 {
        return hex_groups(&seg, buf, 0);
    }
    let n = hex_groups(&seg[..best], buf, 0);
    buf[n..n + 2].copy_from_slice(b"::");
    hex_groups(&seg[best + best_len..], buf, n + 2)
}

/// `groups` as `{:x}` joined by `:`, from `buf[n]` on; returns the end.
fn hex_groups(groups: &[u16], buf: &mut [u8; IPV6_TEXT_MAX], mut n: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            buf[n] = b':';
            n += 1;
        }
        // From the highest non-zero nibble (at least one digit).
        for shift in [12u32, 8, 4, 0] {
            if g >> shift != 0 || shift == 0 {
                buf[n] = HEX[usize::from((g >> shift) & 15)];
                n += 1;
            }
        }
    }
    n
}

/// Appends `ip` as its `Display` text.
pub fn push_ip_bytes(out: &mut Vec<u8>, ip: IpAddr) {
    let mut buf = [0u8; IPV6_TEXT_MAX];
    let n = ip_text(ip, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// `ip` as its `Display` text into `buf`; returns its length.
pub fn ip_text(ip: IpAddr, buf: &mut [u8; IPV6_TEXT_MAX]) -> usize {
    match ip {
        IpAddr::V4(a) => {
            let mut b4 = [0u8; 15];
            let n = ipv4_text(a.octets(), &mut b4);
            buf[..n].copy_from_slice(&b4[..n]);
            n
        }
        IpAddr::V6(a) => ipv6_text(a, buf),
    }
}

/// Appends `ip` as its `Display` text.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    let mut buf = [0u8; IPV6_TEXT_MAX];
    let n = ip_text(ip, &mut buf);
    // Only ASCII digits, hex and separators were written.
    out.push_str(std::str::from_utf8(&buf[..n]).unwrap_or_default());
}

/// Where an address sits relative to the monitored network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Zone {
    Internal,
    External,
    /// Link-local, multicast, broadcast, loopback, unspecified: never "outbound".
    Special,
}

/// Link-local, multicast, limited broadcast, loopback, unspecified (either family).
pub fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || a.octets()[0] == 0
        }
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            a.is_loopback() || a.is_unspecified() || a.is_multicast() || (seg0 & 0xffc0) == 0xfe80
        }
    }
}

/// The `[network]` configuration section: lists of CIDRs or addresses.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// The monitored network. Default: RFC 1918, RFC 6598 shared space (100.64/10), ULA fc00::/7.
    /// Link-local, multicast and loopback are never internal nor external.
    pub internal: Vec<String>,
    /// Forward proxies: their outbound web traffic is expected (`proxy_bypass` needs this set).
    pub proxies: Vec<String>,
    /// The organisation's DNS resolvers (`dns_bypass` needs this set).
    pub resolvers: Vec<String>,
    /// Hosts allowed to send SMTP to the internet (`op25b`).
    pub mail_servers: Vec<String>,
    /// Sinkhole addresses a resolver answers for blocked names (dormant C2 polling).
    pub sinkholes: Vec<String>,
}

/// Default `network.internal`.
pub const DEFAULT_INTERNAL: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            internal: DEFAULT_INTERNAL.iter().map(|s| s.to_string()).collect(),
            proxies: Vec::new(),
            resolvers: Vec::new(),
            mail_servers: Vec::new(),
            sinkholes: Vec::new(),
        }
    }
}

impl NetworkConfig {
    /// Parses every list; the error names the key.
    pub fn compile(&self) -> Result<Network, String> {
        let p =
            |key: &str, v: &[String]| CidrSet::parse(v).map_err(|e| format!("network.{key}: {e}"));
        Ok(Network {
            internal: p("internal", &self.internal)?,
            proxies: p("proxies", &self.proxies)?,
            resolvers: p("resolvers", &self.resolvers)?,
            mail_servers: p("mail_servers", &self.mail_servers)?,
            sinkholes: p("sinkholes", &self.sinkholes)?,
        })
    }
}

/// The compiled network model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    pub internal: CidrSet,
    pub proxies: CidrSet,
    pub resolvers: CidrSet,
    pub mail_servers: CidrSet,
    pub sinkholes: CidrSet,
}

impl Network {
    /// The default model (RFC 1918 + 100.64/10 + ULA internal, nothing else configured).
    pub fn default_model() -> Network {
        NetworkConfig::default()
            .compile()
            .expect("default network config is valid")
    }

    pub fn zone(&self, ip: IpAddr) -> Zone {
        // IPv4 outside the /8s that hold special addresses (the usual case): one table
        // lookup for the internal set, no special-address tests.
        if let IpAddr::V4(a) = ip {
            if !matches!(a.octets()[0], 0 | 127 | 169 | 224..=255) {
                return if self.internal.contains(ip) {
                    Zone::Internal
                } else {
                    Zone::External
                };
            }
        }
        if is_special(ip) {
            Zone::Special
        } else if self.internal.contains(ip) {
            Zone::Internal
        } else {
            Zone::External
        }
    }

    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.zone(ip) == Zone::Internal
    }

    pub fn is_external(&self, ip: IpAddr) -> bool {
        self.zone(ip) == Zone::External
    }

    /// Internal source, external destination.
    pub fn is_outbound(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.is_internal(src) && self.is_external(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "v4-mapped v6");
        let h = Cidr::parse("192.0.2.7").unwrap();
        assert!(h.contains(ip("192.0.2.7")) && !h.contains(ip("192.0.2.8")));
        let v6 = Cidr::parse("fc00::/7").unwrap();
        assert!(v6.contains(ip("fd00:1::5")));
        assert!(!v6.contains(ip("2001:db8::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.1.2.3/8").unwrap_err().contains("host bits"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert!(Cidr::parse("::/129").is_err());
    }

    /// The per-octet table and the zone fast path agree with the definitions (block scan,
    /// special first) over addresses at and around every /8 and block edge.
    #[test]
    fn fast_paths_match_the_definitions() {
        let configs: [&[&str]; 4] = [
            DEFAULT_INTERNAL,
            &[
                "10.0.0.0/7",
                "172.16.5.0/24",
                "203.0.113.9",
                "169.254.0.0/16",
            ],
            &["0.0.0.0/0"],
            &[],
        ];
        let mut addrs: Vec<IpAddr> = Vec::new();
        let mut x: u32 = 0x9e37_79b9;
        for o in 0..=255u32 {
            for low in [0, 1, 0x10_0000, 0x10_0005, 0xfe_0001, 0xff_ffff] {
                addrs.push(IpAddr::V4(Ipv4Addr::from(o << 24 | low)));
            }
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                addrs.push(IpAddr::V4(Ipv4Addr::from(o << 24 | (x & 0xff_ffff))));
            }
        }
        for a in [
            "172.16.5.200",
            "172.16.6.1",
            "203.0.113.9",
            "203.0.113.10",
            "169.254.1.1",
        ] {
            addrs.push(ip(a));
        }
        addrs.push(ip("::ffff:10.1.2.3"));
        addrs.push(ip("fd00::1"));
        for items in configs {
            let net = NetworkConfig {
                internal: items.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }
            .compile()
            .unwrap();
            let blocks: Vec<Cidr> = items.iter().map(|s| Cidr::parse(s).unwrap()).collect();
            for &a in &addrs {
                let inside = blocks.iter().any(|b| b.contains(a));
                assert_eq!(net.internal.contains(a), inside, "{a} in {items:?}");
                let want = if is_special(a) {
                    Zone::Special
                } else if inside {
                    Zone::Internal
                } else {
                    Zone::External
                };
                assert_eq!(net.zone(a), want, "zone of {a} with {items:?}");
            }
        }
    }

    #[test]
    fn set_contains_as_its_blocks() {
        let items = [
            "10.0.0.0/8",
            "192.0.2.7",
            "fc00::/7",
            "::/0",
            "0.0.0.0/0",
            "2001:db8::/32",
        ];
        for n in 0..=items.len() {
            let set = CidrSet::parse(&items[..n]).unwrap();
            let blocks: Vec<Cidr> = items[..n].iter().map(|s| Cidr::parse(s).unwrap()).collect();
            for a in [
                "10.1.2.3",
                "11.0.0.1",
                "192.0.2.7",
                "192.0.2.8",
                "::ffff:10.1.2.3",
                "::ffff:8.8.8.8",
                "fd00::1",
                "2001:db8::5",
                "2001:db9::5",
                "::",
                "0.0.0.0",
            ] {
                let ip = ip(a);
                assert_eq!(
                    set.contains(ip),
                    blocks.iter().any(|b| b.contains(ip)),
                    "{a} in {:?}",
                    &items[..n]
                );
            }
        }
    }

    #[test]
    fn ip_text_is_display() {
        let mut buf = [0u8; 15];
        for o in 0..=255u8 {
            for a in [[o, 0, 0, 0], [1, o, 2, o], [255, 255, 255, o], [o, o, o, o]] {
                let n = ipv4_text(a, &mut buf);
                assert_eq!(&buf[..n], Ipv4Addr::from(a).to_string().as_bytes());
            }
        }
        for a in [
            "10.0.0.1",
            "::",
            "2001:db8::1",
            "::ffff:10.1.2.3",
            "fe80::1:2",
        ] {
            let mut s = String::from("x");
            push_ip(&mut s, ip(a));
            assert_eq!(s, format!("x{}", ip(a)));
        }
    }

    #[test]
    fn zones() {
        let n = Network::default_model();
        assert_eq!(n.zone(ip("192.168.1.1")), Zone::Internal);
        assert_eq!(n.zone(ip("100.64.3.3")), Zone::Internal);
        assert_eq!(n.zone(ip("fd12::1")), Zone::Internal);
        assert_eq!(n.zone(ip("8.8.8.8")), Zone::External);
        assert_eq!(n.zone(ip("2001:db8::1")), Zone::External);
        for s in [
            "169.254.1.1",
            "224.0.0.251",
            "255.255.255.255",
            "127.0.0.1",
            "0.0.0.0",
            "fe80::1",
            "ff02::fb",
            "::1",
            "::",
        ] {
            assert_eq!(n.zone(ip(s)), Zone::Special, "{s}");
        }
        assert!(n.is_outbound(ip("10.0.0.1"), ip("1.1.1.1")));
        assert!(!n.is_outbound(ip("1.1.1.1"), ip("10.0.0.1")));
    }

    #[test]
    fn compile_names_key() {
        let c = NetworkConfig {
            proxies: vec!["10.0.0.300".into()],
            ..Default::default()
        };
        assert!(c.compile().unwrap_err().starts_with("network.proxies"));
    }

    #[test]
    fn addresses_match_display_on_every_zero_run_shape() {
        let check = |v: IpAddr| {
            let mut a = b"x".to_vec();
            push_ip_bytes(&mut a, v);
            assert_eq!(String::from_utf8(a).unwrap(), format!("x{v}"));
            let mut s = "y".to_string();
            push_ip(&mut s, v);
            assert_eq!(s, format!("y{v}"));
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..4 {
            // Every pattern of zero and non-zero groups, with groups of 1 to 4 hex digits.
            for mask in 0u32..256 {
                let r = next();
                let seg: [u16; 8] = std::array::from_fn(|i| {
                    let width = ((r >> (i * 2)) & 3) as u32 * 4 + 4;
                    let g = (r >> (16 + i * 5)) as u16 | 1;
                    if mask >> i & 1 == 1 {
                        g & ((1u32 << width) - 1) as u16
                    } else {
                        0
                    }
                });
                check(IpAddr::V6(std::net::Ipv6Addr::from(seg)));
            }
        }
        for _ in 0..5_000 {
            let r = next();
            check(IpAddr::V4(std::net::Ipv4Addr::from((r >> 32) as u32)));
            check(IpAddr::V4(std::net::Ipv4Addr::from(r as u32 & 0x0a0b_0c0d)));
            // v4-mapped and v4-compatible (the latter prints as plain groups).
            check(IpAddr::V6(
                std::net::Ipv4Addr::from(r as u32).to_ipv6_mapped(),
            ));
            check(IpAddr::V6(
                std::net::Ipv4Addr::from(r as u32).to_ipv6_compatible(),
            ));
            check(IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(r) << 64 | u128::from(next()),
            )));
        }
        for s in [
            "::",
            "::1",
            "1::",
            "::ffff:0.0.0.0",
            "::ffff:1.2.3.4",
            "::fffe:1.2.3.4",
            "64:ff9b::1.2.3.4",
            "1:0:0:1:0:0:0:1",
            "1:0:0:1:0:0:1:1",
            "0:1:0:1:0:1:0:1",
            "2001:db8:0:0:1:0:0:1",
            "fe80::ffff:ffff:ffff:ffff",
        ] {
            check(s.parse().unwrap());
        }
    }
}
