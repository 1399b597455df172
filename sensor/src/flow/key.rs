//! Flow keys: direction-independent (both directions of a connection hash to one key).

use analyzers::Vlans;
use std::net::IpAddr;

/// Canonical flow key: the (ip, port) pair that sorts lower is `a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a_ip: IpAddr,
    pub b_ip: IpAddr,
    pub a_port: u16,
    pub b_port: u16,
    pub proto: u8,
    /// Tunnel depth keeps an inner flow apart from an identical outer one.
    pub tunnel_depth: u8,
    pub vlan: Vlans,
}

impl FlowKey {
    /// Builds the key of a packet from `src:sport` to `dst:dport`; the bool is true when the
    /// packet travels a → b.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
        vlan: Vlans,
        tunnel_depth: u8,
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
                tunnel_depth,
                vlan,
            },
            forward,
        )
    }
}

/// ICMP type → the type that plays the "request" role, so a request and its reply share a
/// flow (the Community ID spec's table).
pub fn icmp_flow_ports(v6: bool, icmp_type: u8, code: u8) -> (u16, u16, bool) {
    // Returns (sport, dport, is_reply) in Zeek's convention: orig_p = type, resp_p = code
    // for non-paired types; for paired types both sides use (request type, reply type).
    let pair: Option<(u8, u8)> = if v6 {
        match icmp_type {
            128 | 129 => Some((128, 129)),
            130 | 131 => Some((130, 131)),
            133 | 134 => Some((133, 134)),
            135 | 136 => Some((135, 136)),
            139 | 140 => Some((139, 140)),
            144 | 145 => Some((144, 145)),
            _ => None,
        }
    } else {
        match icmp_type {
            8 | 0 => Some((8, 0)),
            13 | 14 => Some((13, 14)),
            15 | 16 => Some((15, 16)),
            10 | 9 => Some((10, 9)),
            17 | 18 => Some((17, 18)),
            _ => None,
        }
    };
    match pair {
        Some((req, rep)) if icmp_type == rep => (u16::from(rep), u16::from(req), true),
        Some((req, rep)) => (u16::from(req), u16::from(rep), false),
        None => (u16::from(icmp_type), u16::from(code), false),
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
        let (k1, f1) = FlowKey::new(x, 1000, y, 80, 6, Vlans::default(), 0);
        let (k2, f2) = FlowKey::new(y, 80, x, 1000, 6, Vlans::default(), 0);
        assert_eq!(k1, k2);
        assert_ne!(f1, f2);
        let v = Vlans {
            outer: Some(5),
            inner: None,
        };
        let (k3, _) = FlowKey::new(x, 1000, y, 80, 6, v, 0);
        assert_ne!(k1, k3);
    }

    #[test]
    fn icmp_pairs() {
        assert_eq!(icmp_flow_ports(false, 8, 0), (8, 0, false));
        assert_eq!(icmp_flow_ports(false, 0, 0), (0, 8, true));
        assert_eq!(icmp_flow_ports(false, 3, 1), (3, 1, false));
        assert_eq!(icmp_flow_ports(true, 129, 0), (129, 128, true));
    }
}
