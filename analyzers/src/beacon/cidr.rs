//! Allowlist matching: CIDR blocks (parsed here, no crate) and DNS name suffixes.

use std::net::IpAddr;

/// One IPv4 or IPv6 network. A bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address. Host bits are cleared.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(Cidr {
            net: mask(ip, prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.net
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 blocks.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// A short list of CIDR blocks, scanned linearly (allowlists are tens of entries).
#[derive(Clone, Debug, Default)]
pub struct CidrSet(Vec<Cidr>);

impl CidrSet {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<CidrSet, String> {
        items
            .iter()
            .map(|s| Cidr::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(CidrSet)
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// DNS name suffixes: `example.com` matches `example.com` and `a.example.com`, not
/// `badexample.com`. Case-insensitive; leading/trailing dots are ignored.
#[derive(Clone, Debug, Default)]
pub struct NameSuffixes(Vec<String>);

impl NameSuffixes {
    pub fn new<S: AsRef<str>>(items: &[S]) -> NameSuffixes {
        NameSuffixes(
            items
                .iter()
                .map(|s| normalize_name(s.as_ref()))
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }
    /// `name` must already be normalized (see [`normalize_name`]).
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|s| {
            name == s
                || (name.len() > s.len()
                    && name.ends_with(s.as_str())
                    && name.as_bytes()[name.len() - s.len() - 1] == b'.')
        })
    }
}

/// Lower-case, without leading/trailing dots.
pub fn normalize_name(s: &str) -> String {
    normalized(s).into_owned()
}

/// [`normalize_name`] without a copy when the name is already normal (the common case on the
/// per-event path).
pub fn normalized(s: &str) -> std::borrow::Cow<'_, str> {
    // Fast path: a name that starts and ends (before at most one final dot) with printable
    // ASCII other than a dot has nothing to trim; anything else takes the general path.
    let plain = |c: u8| matches!(c, b'!'..=b'~') && c != b'.';
    let t = match s.as_bytes() {
        [f, .., p, b'.'] if plain(*f) && plain(*p) => &s[..s.len() - 1],
        [f, .., l] if plain(*f) && plain(*l) => s,
        [c] if plain(*c) => s,
        _ => s.trim().trim_matches('.'),
    };
    if crate::detectors::has_ascii_uppercase(t) {
        std::borrow::Cow::Owned(t.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_v4_v6_and_mapped() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!c6.contains("10.0.0.1".parse().unwrap()));
        let host = Cidr::parse("192.0.2.7").unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope/8").is_err());
    }

    #[test]
    fn normalized_fast_path_matches_the_general_one() {
        let general = |s: &str| s.trim().trim_matches('.').to_ascii_lowercase();
        for s in [
            "",
            ".",
            "..",
            "a",
            "A",
            "a.",
            "a..",
            ".a",
            "Ab.",
            "ab.c.",
            "ab.c..",
            " ab ",
            "ab ",
            "ab\u{b}",
            "\u{b}ab",
            "ab\u{a0}",
            "\u{3000}ab.",
            "ab.\u{85}",
            "é.com.",
            "x.É",
            "Example.COM.",
            "-.",
            "!.",
            "~x~",
            "a\u{200a}.",
        ] {
            assert_eq!(normalized(s), general(s), "{s:?}");
        }
    }

    #[test]
    fn suffixes() {
        let s = NameSuffixes::new(&[".Example.com.", "update.vendor.net"]);
        assert!(s.matches("example.com"));
        assert!(s.matches("a.b.example.com"));
        assert!(!s.matches("badexample.com"));
        assert!(s.matches("update.vendor.net"));
        assert!(!s.matches("vendor.net"));
    }
}
