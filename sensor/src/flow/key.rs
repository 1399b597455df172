//! Flow keys: direction-independent (both directions of a connection hash to one key).

use analyzers::Vlans;
use std::net::IpAddr;

/// Canonical flow key: the (ip, port) pair that sorts lower is `a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub a_ip: IpAddr,
    pub b_ip: IpAddr,
    pub a_port: u16,
    pub b_port: u16,
    pub proto: u8,
    pub vlan: Vlans,
}

/// Four words for the hasher (each address as 128 bits, ports, protocol and VLANs packed)
/// instead of the derive's field-by-field writes with enum discriminants: this hash runs on
/// every packet. An IPv4 address and the IPv6 address of the same value hash alike, which only
/// costs a comparison in the unlikely case both meet in one table.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let word = |ip: IpAddr| match ip {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        state.write_u128(word(self.a_ip));
        state.write_u128(word(self.b_ip));
        state.write_u64(
            u64::from(self.a_port) | u64::from(self.b_port) << 16 | u64::from(self.proto) << 32,
        );
        self.vlan.hash(state);
    }
}

impl FlowKey {
    /// Builds the key of a packet from `src:sport` to `dst:dport`; the bool is true when the
    /// packet travels a → b.
    pub fn new(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
        vlan: Vlans,
    ) -> (FlowKey, bool) {
        let forward = (src, sport) <= (dst, dport);
        let (a_ip, a_port, b_ip, b_port) = if forward {
            (src, sport, dst, dport)
        } else {
            (dst, dport, src, sport)
        };
        (
            FlowKey {
                a_ip,
                b_ip,
                a_port,
                b_port,
                proto,
                vlan,
            },
            forward,
        )
    }
}

/// ICMP "ports" as Zeek and the Community ID spec use them: for request/reply types, the
/// sender's own type and its counterpart (so a request and its reply share a flow key); for
/// other types, (type, code).
pub fn icmp_flow_ports(v6: bool, icmp_type: u8, code: u8) -> (u16, u16) {
    let counterpart: Option<u8> = if v6 {
        match icmp_type {
            128 => Some(129),
            129 => Some(128),
            130 => Some(131),
            131 => Some(130),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match icmp_type {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    match counterpart {
        Some(c) => (u16::from(icmp_type), u16::from(c)),
        None => (u16::from(icmp_type), u16::from(code)),
    }
}

/// Ports Zeek treats as likely server ports: a flow whose first packet comes *from* one of
/// these (and not to one) is recorded with the roles flipped (history starts with `^`).
pub fn is_likely_server_port(proto: u8, port: u16) -> bool {
    match proto {
        6 => matches!(
            port,
            21 | 22
                | 23
                | 25
                | 53
                | 80
                | 81
                | 88
                | 110
                | 111
                | 135
                | 139
                | 143
                | 179
                | 389
                | 443
                | 445
                | 465
                | 502
                | 513
                | 514
                | 563
                | 585
                | 587
                | 614
                | 631
                | 636
                | 989
                | 990
                | 992
                | 993
                | 995
                | 1080
                | 1433
                | 1521
                | 1723
                | 1883
                | 2049
                | 2811
                | 3128
                | 3268
                | 3306
                | 3389
                | 5222
                | 5223
                | 5269
                | 5432
                | 5900
                | 6379
                | 6666..=6669 | 8000 | 8080 | 8443 | 8883 | 8888 | 9200 | 20000 | 27017
        ),
        17 => matches!(
            port,
            53 | 67
                | 69
                | 88
                | 123
                | 137
                | 138
                | 161
                | 162
                | 443
                | 500
                | 514
                | 1812
                | 1813
                | 1900
                | 3544
                | 4500
                | 4754
                | 4789
                | 5060
                | 5353
                | 5355
                | 6081
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_same_key() {
        let x: IpAddr = "10.0.0.1".parse().unwrap();
        let y: IpAddr = "10.0.0.2".parse().unwrap();
        let (k1, f1) = FlowKey::new(x, 1000, y, 80, 6, Vlans::default());
        let (k2, f2) = FlowKey::new(y, 80, x, 1000, 6, Vlans::default());
        assert_eq!(k1, k2);
        assert_ne!(f1, f2);
        let v = Vlans {
            outer: Some(5),
            inner: None,
        };
        let (k3, _) = FlowKey::new(x, 1000, y, 80, 6, v);
        assert_ne!(k1, k3);
    }

    #[test]
    fn icmp_pairs() {
        assert_eq!(icmp_flow_ports(false, 8, 0), (8, 0));
        assert_eq!(icmp_flow_ports(false, 0, 0), (0, 8));
        assert_eq!(icmp_flow_ports(false, 3, 1), (3, 1));
        assert_eq!(icmp_flow_ports(true, 134, 0), (134, 133));
    }
}
