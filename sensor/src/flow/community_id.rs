//! Community ID v1 flow hashing.
//!
//! Implements <https://github.com/corelight/community-id-spec>: a direction-independent
//! string identifier for a flow, so the same connection can be joined across Kizuki, Zeek,
//! Suricata, Elastic, ... with a plain string comparison.
//!
//! Hash input (all big-endian): `seed(2) . addr_lo . addr_hi . proto(1) . 0(1) [. port_lo(2)
//! . port_hi(2)]`, where the endpoint with the numerically smaller (address, port) comes
//! first. The SHA-1 digest is base64-encoded (standard alphabet, padded) and prefixed `1:`.
//!
//! Ports are only hashed for the port-carrying protocols of the spec (TCP, UDP, SCTP, ICMP,
//! ICMPv6); for any other IP protocol the spec hashes the addresses and protocol only, so the
//! `sport`/`dport` arguments are ignored there (callers conventionally pass 0).
//!
//! For ICMP and ICMPv6 the caller passes the message **type as `sport` and code as `dport`**.
//! They are mapped as in Zeek / pycommunityid: request/response types become
//! `(type, counterpart type)` and are ordered like ports, so an echo request and its reply
//! hash to the same id; every other type is "one-way": `(type, code)` hashed in the order
//! given, without flipping the endpoints.

use analyzers::CommunityId;
use std::net::IpAddr;

use sha1::{Digest, Sha1};

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_SCTP: u8 = 132;

/// ICMPv4 request/response pairs (Zeek's `ICMP4_counterpart`, pycommunityid `icmp.py`).
fn icmp4_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        8 => 0,   // echo request -> echo reply
        0 => 8,   // echo reply -> echo request
        13 => 14, // timestamp -> timestamp reply
        14 => 13,
        15 => 16, // information request -> information reply
        16 => 15,
        10 => 9, // router solicitation -> router advertisement
        9 => 10,
        17 => 18, // address mask request -> address mask reply
        18 => 17,
        _ => return None,
    })
}

/// ICMPv6 request/response pairs (Zeek's `ICMP6_counterpart`, pycommunityid `icmp6.py`).
fn icmp6_counterpart(ty: u8) -> Option<u8> {
    Some(match ty {
        128 => 129, // echo request -> echo reply
        129 => 128,
        130 => 131, // MLD listener query -> report
        131 => 130,
        133 => 134, // router solicitation -> advertisement
        134 => 133,
        135 => 136, // neighbor solicitation -> advertisement
        136 => 135,
        139 => 140, // who-are-you request -> reply
        140 => 139,
        144 => 145, // home agent address discovery request -> reply
        145 => 144,
        _ => return None,
    })
}

/// Maps ICMP type/code to port equivalents; the bool is "one-way" (no endpoint flipping).
///
/// Types and codes are 8-bit on the wire; a value above 255 cannot be a real type, so it is
/// treated as an unknown (one-way) type and hashed verbatim.
fn icmp_ports(proto: u8, ty: u16, code: u16) -> (u16, u16, bool) {
    let counterpart = match (u8::try_from(ty), proto) {
        (Ok(t), PROTO_ICMP) => icmp4_counterpart(t),
        (Ok(t), _) => icmp6_counterpart(t),
        (Err(_), _) => None,
    };
    match counterpart {
        Some(c) => (ty, u16::from(c), false),
        None => (ty, code, true),
    }
}

/// Network-byte-order address bytes (4 or 16), without allocating.
fn addr_bytes(ip: &IpAddr) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            (out, 4)
        }
        IpAddr::V6(a) => {
            out.copy_from_slice(&a.octets());
            (out, 16)
        }
    }
}

/// Community ID v1 of a flow, e.g. `1:LQU9qZlK+B5F3KDmev6m5PMibrg=`.
///
/// `src`/`dst` and the ports may be given in either direction: both produce the same id.
/// For ICMP (1) and ICMPv6 (58) pass the ICMP type as `sport` and the code as `dport`.
/// For protocols other than TCP/UDP/SCTP/ICMP/ICMPv6 the ports are ignored (per spec).
/// `seed` is 0 unless the deployment configures one.
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> CommunityId {
    let (sa, sa_len) = addr_bytes(&src);
    let (da, da_len) = addr_bytes(&dst);
    // `addr_bytes` never returns a length above 16, so these slices cannot fail; use `get`
    // anyway to keep the no-panic property obvious.
    let sa = sa.get(..sa_len).unwrap_or(&[]);
    let da = da.get(..da_len).unwrap_or(&[]);

    let (has_ports, one_way, p1, p2) = match proto {
        PROTO_TCP | PROTO_UDP | PROTO_SCTP => (true, false, sport, dport),
        PROTO_ICMP | PROTO_ICMPV6 => {
            let (p1, p2, one_way) = icmp_ports(proto, sport, dport);
            (true, one_way, p1, p2)
        }
        _ => (false, false, 0, 0),
    };

    // Order endpoints so the smaller (address, port) comes first. Slice comparison of
    // big-endian bytes is numeric comparison for equal-length addresses. Ports only break
    // ties when they are hashed at all.
    let ordered = one_way || sa < da || (sa == da && (!has_ports || p1 <= p2));
    let (a1, a2, q1, q2) = if ordered {
        (sa, da, p1, p2)
    } else {
        (da, sa, p2, p1)
    };

    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a1);
    h.update(a2);
    h.update([proto, 0]);
    if has_ports {
        h.update(q1.to_be_bytes());
        h.update(q2.to_be_bytes());
    }
    let digest = h.finalize();

    // "1:" and 28 base64 characters, built in place: no allocation per record.
    let mut text = [0u8; 30];
    text[..2].copy_from_slice(b"1:");
    let mut at = 2;
    base64_padded(&digest, |quad| {
        if let Some(dst) = text.get_mut(at..at + 4) {
            dst.copy_from_slice(&quad);
        }
        at += 4;
    });
    // Only ASCII was written.
    CommunityId::from_ascii(&text).unwrap_or_default()
}

/// Standard base64 with `=` padding (RFC 4648 §4), as the base64 crate's `STANDARD` engine
/// writes it. By hand for the 20 bytes of a digest: the engine's general path cost ~560
/// instructions an id, on every flow and DNS record.
fn base64_padded(bytes: &[u8], mut out: impl FnMut([u8; 4])) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| ALPHABET[(v & 63) as usize];
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let v = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out([sym(v >> 18), sym(v >> 12), sym(v >> 6), sym(v)]);
    }
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            out([sym(v >> 18), sym(v >> 12), b'=', b'=']);
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            out([sym(v >> 18), sym(v >> 12), sym(v >> 6), b'=']);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_the_crates_standard_engine() {
        use base64::Engine as _;
        let mut x: u32 = 7;
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let mut out = Vec::new();
            base64_padded(&bytes, |q| out.extend_from_slice(&q));
            let want = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{len} bytes");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// (proto, saddr, daddr, sport, dport, id seed 0, id seed 1) from the spec repo's
    /// `baseline/baseline_deflt.json` / `baseline_seed1.json` and pycommunityid's tests.
    const VECTORS: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
        // TCP
        (
            6,
            "128.232.110.120",
            "66.35.250.204",
            34855,
            80,
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
        ),
        (
            6,
            "66.35.250.204",
            "128.232.110.120",
            80,
            34855,
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
        ),
        (
            6,
            "10.0.0.1",
            "10.0.0.2",
            10,
            11569,
            "1:SXBGMX1lBOwhhoDrZynfROxnhnM=",
            "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo=",
        ),
        (
            6,
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            "2607:f8b0:400c:c03::1a",
            63943,
            25,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        ),
        (
            6,
            "2607:f8b0:400c:c03::1a",
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            25,
            63943,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        ),
        // UDP
        (
            17,
            "192.168.1.52",
            "8.8.8.8",
            54585,
            53,
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
        ),
        (
            17,
            "8.8.8.8",
            "192.168.1.52",
            53,
            54585,
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
        ),
        // SCTP
        (
            132,
            "192.168.170.8",
            "192.168.170.56",
            7,
            7,
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
        ),
        (
            132,
            "192.168.170.56",
            "192.168.170.8",
            7,
            7,
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
        ),
        (
            132,
            "192.168.170.8",
            "192.168.170.56",
            7,
            80,
            "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
            "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=",
        ),
        (
            132,
            "192.168.170.56",
            "192.168.170.8",
            80,
            7,
            "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
            "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=",
        ),
        // ICMP: echo request (8/0) and reply (0/0) share an id.
        (
            1,
            "192.168.0.89",
            "192.168.0.1",
            8,
            0,
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
        ),
        (
            1,
            "192.168.0.1",
            "192.168.0.89",
            0,
            0,
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
        ),
        // For a two-way type the code is ignored.
        (
            1,
            "192.168.0.1",
            "192.168.0.89",
            0,
            20,
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
        ),
        // One-way types hash type and code as given.
        (
            1,
            "192.168.0.89",
            "192.168.0.1",
            20,
            0,
            "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=",
            "1:lCXHHxavE1Vq3oX9NH5ladQg02o=",
        ),
        (
            1,
            "192.168.0.89",
            "192.168.0.1",
            20,
            1,
            "1:tz/fHIDUHs19NkixVVoOZywde+I=",
            "1:Ie3wmFyxiEyikbsbcO03d2nh+PM=",
        ),
        (
            1,
            "10.0.0.1",
            "10.0.0.2",
            11,
            0,
            "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
            "1:XjUibYHaafLQ3pxQeiMI8g25q20=",
        ),
        // ICMPv6: neighbor solicitation (135) / advertisement (136) share an id.
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            135,
            0,
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "fe80::200:86ff:fe05:80da",
            136,
            0,
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "fe80::200:86ff:fe05:80da",
            135,
            0,
            "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
        ),
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            136,
            0,
            "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
        ),
        // ICMPv6 echo request/reply.
        (
            58,
            "3ffe:507:0:1:200:86ff:fe05:80da",
            "3ffe:501:0:1001::2",
            128,
            0,
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
        ),
        (
            58,
            "3ffe:501:0:1001::2",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            129,
            0,
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
        ),
        // ICMPv6 one-way: destination unreachable / parameter problem.
        (
            58,
            "3ffe:501:1800:2345::2",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            3,
            0,
            "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
            "1:lVEtCZpYu84Xqaa++3lXFyuu2n4=",
        ),
        (
            58,
            "3ffe:501:410:0:2c0:dfff:fe47:33e",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            1,
            4,
            "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
            "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8=",
        ),
        (
            58,
            "3ffe:507:0:1:260:97ff:fe07:69ea",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            3,
            0,
            "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=",
            "1:OlOWx9psIbBFi7lOCw/4MhlKR9M=",
        ),
        (
            58,
            "3ffe:507:0:1:200:86ff:fe05:80da",
            "3ffe:507:0:1:260:97ff:fe07:69ea",
            3,
            0,
            "1:/OGBt9BN1ofenrmSPWYicpij2Vc=",
            "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE=",
        ),
        // ICMPv6 router solicitation to all-routers, advertisement to all-nodes: different
        // destination addresses, so different ids despite the type pairing.
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "ff02::2",
            133,
            0,
            "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
            "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "ff02::1",
            134,
            0,
            "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
            "1:K/ee5UCqAMAQXDorP5nSa2CGLjc=",
        ),
        // Port-less protocol (RSVP, 46): ports are not hashed.
        (
            46,
            "10.1.12.1",
            "10.1.12.2",
            0,
            0,
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            "1:rYir8gphR31noO9iDRQmF/BteEI=",
        ),
        (
            46,
            "10.1.12.2",
            "10.1.12.1",
            0,
            0,
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            "1:rYir8gphR31noO9iDRQmF/BteEI=",
        ),
        (
            46,
            "10.1.24.4",
            "10.1.12.1",
            0,
            0,
            "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=",
            "1:BK3BVW3U2eemuwVQVN3zd/GULno=",
        ),
    ];

    #[test]
    fn spec_vectors_seed0_and_seed1() {
        for &(proto, s, d, sp, dp, want0, want1) in VECTORS {
            assert_eq!(
                community_id_v1(0, ip(s), ip(d), proto, sp, dp),
                want0,
                "seed 0: {proto} {s}:{sp} -> {d}:{dp}"
            );
            assert_eq!(
                community_id_v1(1, ip(s), ip(d), proto, sp, dp),
                want1,
                "seed 1: {proto} {s}:{sp} -> {d}:{dp}"
            );
        }
    }

    #[test]
    fn tcp_udp_sctp_are_direction_independent() {
        let pairs = [
            ("10.0.0.1", "127.0.0.1", 1234, 80),
            ("10.0.0.1", "10.0.0.1", 80, 1234), // equal addresses: ports decide
            ("::1", "2001:db8::1", 65535, 0),
            ("192.0.2.1", "192.0.2.1", 7, 7),
        ];
        for proto in [6u8, 17, 132] {
            for &(a, b, pa, pb) in &pairs {
                let fwd = community_id_v1(0, ip(a), ip(b), proto, pa, pb);
                let rev = community_id_v1(0, ip(b), ip(a), proto, pb, pa);
                assert_eq!(fwd, rev, "{proto} {a}:{pa} {b}:{pb}");
                assert!(fwd.starts_with("1:"));
                assert_eq!(fwd.len(), 30, "1: + 28 base64 chars");
            }
        }
    }

    #[test]
    fn spec_readme_ordering_example() {
        // Both get ordered into 10.0.0.1, 127.0.0.1, 1234, 80.
        let a = community_id_v1(0, ip("10.0.0.1"), ip("127.0.0.1"), 6, 1234, 80);
        let b = community_id_v1(0, ip("127.0.0.1"), ip("10.0.0.1"), 6, 80, 1234);
        assert_eq!(a, b);
    }

    #[test]
    fn ports_matter_for_port_protocols_only() {
        let a = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1, 2);
        let b = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1, 3);
        assert_ne!(a, b);
        let c = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 47, 1, 2);
        let d = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 47, 0, 0);
        assert_eq!(c, d);
        // Protocol and seed are part of the hash.
        assert_ne!(
            a,
            community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 17, 1, 2)
        );
        assert_ne!(
            a,
            community_id_v1(7, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1, 2)
        );
    }

    #[test]
    fn icmp_request_reply_pairs_match_both_ways() {
        let v4 = [(8u16, 0u16), (13, 14), (15, 16), (10, 9), (17, 18)];
        for &(req, rep) in &v4 {
            let a = community_id_v1(0, ip("192.0.2.1"), ip("198.51.100.7"), 1, req, 0);
            let b = community_id_v1(0, ip("198.51.100.7"), ip("192.0.2.1"), 1, rep, 0);
            assert_eq!(a, b, "icmp {req}/{rep}");
        }
        let v6 = [
            (128u16, 129u16),
            (130, 131),
            (133, 134),
            (135, 136),
            (139, 140),
            (144, 145),
        ];
        for &(req, rep) in &v6 {
            let a = community_id_v1(0, ip("2001:db8::1"), ip("2001:db8::2"), 58, req, 0);
            let b = community_id_v1(0, ip("2001:db8::2"), ip("2001:db8::1"), 58, rep, 0);
            assert_eq!(a, b, "icmp6 {req}/{rep}");
        }
        // The v4 table does not apply to ICMPv6 and vice versa: ICMPv6 type 8 is one-way.
        let a = community_id_v1(0, ip("2001:db8::1"), ip("2001:db8::2"), 58, 8, 0);
        let b = community_id_v1(0, ip("2001:db8::2"), ip("2001:db8::1"), 58, 0, 0);
        assert_ne!(a, b);
    }

    #[test]
    fn icmp_one_way_types_are_not_flipped() {
        // Destination unreachable from either side yields different ids (different tuples).
        let a = community_id_v1(0, ip("10.0.0.2"), ip("10.0.0.1"), 1, 3, 3);
        let b = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 3, 3);
        assert_ne!(a, b);
        // Out-of-range "types" (not representable on the wire) don't panic and are one-way.
        let c = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 264, 0);
        let d = community_id_v1(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 8, 0);
        assert_ne!(c, d);
        let _ = community_id_v1(u16::MAX, ip("::"), ip("::"), 58, u16::MAX, u16::MAX);
    }

    #[test]
    fn exhaustive_small_inputs_do_not_panic_and_are_well_formed() {
        let addrs = [
            ip("0.0.0.0"),
            ip("255.255.255.255"),
            ip("::"),
            ip("ffff::1"),
        ];
        for proto in 0..=255u8 {
            for a in &addrs {
                for b in &addrs {
                    for &(sp, dp) in &[(0u16, 0u16), (u16::MAX, 0), (8, 0), (129, 0)] {
                        let id = community_id_v1(0, *a, *b, proto, sp, dp);
                        assert!(id.starts_with("1:") && id.len() == 30, "{id}");
                    }
                }
            }
        }
    }
}
