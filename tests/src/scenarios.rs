//! The scenario pcaps and what a correct sensor must report for each. Everything here is
//! fixed (no randomness), so the output is byte-for-byte reproducible.

use crate::appproto::{self, ClientHello};
use crate::dnsmsg::{rcode, rtype, soa, DnsMsg, RData, Rr};
use crate::pcapw::{LinkType, TsResolution};
use crate::pkt::tcpflags::{ACK, PSH};
use crate::pkt::{self, Ipv4Fields, Vlan};
use crate::scenario::{L2Encap, Path, Scenario, Tunnel, TunnelKind};
use crate::tcpconn::{Seg, TcpConn};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip literal")
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("ipv4 literal")
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("ipv6 literal")
}

/// Names of all scenarios, in generation order.
pub const NAMES: &[&str] = &[
    "dns_udp",
    "dns_tcp",
    "tcp_states",
    "vlan",
    "fragments",
    "tunnels",
    "names",
    "malformed",
    "linktype_sll",
    "linktype_raw",
    "encap",
    "ipv6_ext",
    "tcp_reassembly",
];

/// Builds one scenario by name.
pub fn build(name: &str) -> Option<Scenario> {
    Some(match name {
        "dns_udp" => dns_udp(),
        "dns_tcp" => dns_tcp(),
        "tcp_states" => tcp_states(),
        "vlan" => vlan(),
        "fragments" => fragments(),
        "tunnels" => tunnels(),
        "names" => names(),
        "malformed" => malformed(),
        "linktype_sll" => linktype_sll(),
        "linktype_raw" => linktype_raw(),
        "encap" => encap(),
        "ipv6_ext" => ipv6_ext(),
        "tcp_reassembly" => tcp_reassembly(),
        _ => return None,
    })
}

/// All scenarios.
pub fn all() -> Vec<Scenario> {
    NAMES
        .iter()
        .map(|n| build(n).expect("known scenario"))
        .collect()
}

fn a(name: &str, ttl: u32, addr: &str) -> Rr {
    Rr::new(name, ttl, RData::A(v4(addr)))
}

fn aaaa(name: &str, ttl: u32, addr: &str) -> Rr {
    Rr::new(name, ttl, RData::Aaaa(v6(addr)))
}

fn cname(name: &str, ttl: u32, target: &str) -> Rr {
    Rr::new(name, ttl, RData::Cname(target.into()))
}

fn txt(name: &str, ttl: u32, s: &str) -> Rr {
    Rr::new(name, ttl, RData::Txt(vec![s.as_bytes().to_vec()]))
}

/// A line-based request/response payload no protocol analyzer recognises.
fn opaque(tag: &str, n: usize) -> Vec<u8> {
    let mut v = format!("{tag} ").into_bytes();
    while v.len() < n {
        v.extend_from_slice(b"0123456789abcdef");
    }
    v.truncate(n);
    v
}

// ---------------------------------------------------------------------------------------------

pub fn dns_udp() -> Scenario {
    let mut sc = Scenario::new(
        "dns_udp",
        "DNS over UDP: A and AAAA from one socket, a CNAME chain, NXDOMAIN, SERVFAIL, NODATA, \
         PTR, TXT, IPv6 transport, an unanswered query and a response without its query",
    );
    let p = Path::plain();
    let cli = ip("10.0.0.10");
    let res = (ip("10.0.0.53"), 53);

    let q = DnsMsg::query(0x1a2b, "www.example.com", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("www.example.com", 300, "93.184.215.14")],
    );
    sc.dns_udp(&p, (cli, 53001), res, &q, Some(&r), true, 12, "A");
    let q = DnsMsg::query(0x1a2c, "www.example.com", rtype::AAAA, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![aaaa(
            "www.example.com",
            300,
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        )],
    );
    sc.dns_udp(
        &p,
        (cli, 53001),
        res,
        &q,
        Some(&r),
        true,
        11,
        "AAAA on the same socket",
    );

    let q = DnsMsg::query(0x2b3c, "shop.example.net", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![
            cname("shop.example.net", 3600, "shop.cdn.example.net"),
            cname("shop.cdn.example.net", 60, "edge-7.cdnprovider.example"),
            a("edge-7.cdnprovider.example", 20, "203.0.113.10"),
            a("edge-7.cdnprovider.example", 20, "203.0.113.11"),
        ],
    );
    sc.dns_udp(&p, (cli, 53002), res, &q, Some(&r), true, 35, "CNAME chain");

    let q = DnsMsg::query(0x3c4d, "doesnotexist.example.com", rtype::A, true);
    let r =
        DnsMsg::response(&q, rcode::NXDOMAIN, vec![]).with_authority(vec![soa("example.com", 900)]);
    sc.dns_udp(
        &p,
        (cli, 53003),
        res,
        &q,
        Some(&r),
        true,
        18,
        "NXDOMAIN with SOA in authority",
    );

    let q = DnsMsg::query(0x4d5e, "broken.example.org", rtype::A, true);
    let r = DnsMsg::response(&q, rcode::SERVFAIL, vec![]);
    sc.dns_udp(&p, (cli, 53004), res, &q, Some(&r), true, 900, "SERVFAIL");

    let q = DnsMsg::query(0x5e6f, "www.example.com", rtype::HTTPS, true);
    let r =
        DnsMsg::response(&q, rcode::NOERROR, vec![]).with_authority(vec![soa("example.com", 900)]);
    sc.dns_udp(
        &p,
        (cli, 53005),
        res,
        &q,
        Some(&r),
        true,
        9,
        "NODATA for HTTPS",
    );

    let q = DnsMsg::query(0x6f70, "10.113.0.203.in-addr.arpa", rtype::PTR, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![Rr::new(
            "10.113.0.203.in-addr.arpa",
            86400,
            RData::Ptr("edge-7.cdnprovider.example".into()),
        )],
    );
    sc.dns_udp(&p, (cli, 53006), res, &q, Some(&r), true, 7, "PTR");

    let q = DnsMsg::query(0x7081, "example.com", rtype::TXT, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![txt("example.com", 3600, "v=spf1 -all")],
    );
    sc.dns_udp(&p, (cli, 53007), res, &q, Some(&r), true, 8, "TXT");

    let cli6 = ip("fd00:10::10");
    let res6 = (ip("fd00:10::53"), 53);
    let q = DnsMsg::query(0x8192, "ipv6.example.com", rtype::AAAA, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![
            aaaa("ipv6.example.com", 600, "2001:db8:85a3::8a2e:370:7334"),
            aaaa("ipv6.example.com", 600, "2001:db8::1"),
        ],
    );
    sc.dns_udp(&p, (cli6, 53008), res6, &q, Some(&r), true, 10, "over IPv6");

    let q = DnsMsg::query(0x1111, "api.example.io", rtype::A, false);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![
            a("api.example.io", 60, "198.51.100.31"),
            a("api.example.io", 60, "198.51.100.32"),
        ],
    );
    sc.dns_udp(
        &p,
        (ip("192.168.1.20"), 41234),
        (ip("9.9.9.9"), 53),
        &q,
        Some(&r),
        true,
        24,
        "second client, public resolver, no EDNS",
    );

    let q = DnsMsg::query(0x92a3, "timeout.example.org", rtype::A, true);
    sc.dns_udp(&p, (cli, 53010), res, &q, None, true, 0, "unanswered");

    let q = DnsMsg::query(0x9a0b, "orphan.example.com", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("orphan.example.com", 120, "198.51.100.7")],
    );
    sc.dns_udp(
        &p,
        (cli, 53020),
        res,
        &q,
        Some(&r),
        false,
        0,
        "response without its query",
    );
    let f = sc.udp_flow(&p, res, (cli, 53020));
    f.reversed_conn_state = Some("SHR".into());
    f.note = "only a response: originator by first packet is the server (S0); a sensor that \
              orients by the well-known port reports the client as originator (SHR)"
        .into();
    sc.advance_ms(500);
    sc.notes.push(
        "The unanswered query must be reported (answered false, no rcode) when the transaction \
         times out or at the end of the replay."
            .into(),
    );
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn dns_tcp() -> Scenario {
    let mut sc = Scenario::new(
        "dns_tcp",
        "DNS over TCP: two queries in one segment answered in one segment, a length prefix \
         alone in its segment, a response split across segments, a length prefix split across \
         segments, responses out of query order, and a truncated UDP answer retried over TCP",
    );
    let p = Path::plain();
    let cli = ip("10.0.0.11");
    let res = (ip("10.0.0.53"), 53);
    let mut c = TcpConn::new((cli, 45001), res, 0x1000_0000, 0x2000_0000);
    sc.tcp(&p, c.handshake());

    // Two pipelined queries in one segment; both answers in one segment.
    let q1 = DnsMsg::query(0x0101, "a.tcp.example.com", rtype::A, true);
    let q2 = DnsMsg::query(0x0102, "a.tcp.example.com", rtype::AAAA, true);
    let r1 = DnsMsg::response(
        &q1,
        rcode::NOERROR,
        vec![a("a.tcp.example.com", 300, "192.0.2.11")],
    );
    let r2 = DnsMsg::response(
        &q2,
        rcode::NOERROR,
        vec![aaaa("a.tcp.example.com", 300, "2001:db8::11")],
    );
    let seg = [q1.encode_tcp(), q2.encode_tcp()].concat();
    sc.tcp(&p, c.send_pieces(true, &[&seg]));
    let seg = [r1.encode_tcp(), r2.encode_tcp()].concat();
    sc.tcp(&p, c.send_pieces(false, &[&seg]));

    // Length prefix alone, then the message; the response split in the middle.
    let q3 = DnsMsg::query(0x0103, "b.tcp.example.com", rtype::TXT, true);
    let r3 = DnsMsg::response(
        &q3,
        rcode::NOERROR,
        vec![
            txt(
                "b.tcp.example.com",
                300,
                "first record of a response split across two segments",
            ),
            txt("b.tcp.example.com", 300, "second record"),
        ],
    );
    let w = q3.encode_tcp();
    sc.tcp(&p, c.send_pieces(true, &[&w[..2], &w[2..]]));
    let w = r3.encode_tcp();
    let mid = w.len() / 2;
    sc.tcp(&p, c.send_pieces(false, &[&w[..mid], &w[mid..]]));

    // One query plus the first byte of the next one's length prefix; answers in reverse order.
    let q4 = DnsMsg::query(0x0104, "c.tcp.example.com", rtype::A, true);
    let q5 = DnsMsg::query(0x0105, "d.tcp.example.com", rtype::A, true);
    let r4 = DnsMsg::response(
        &q4,
        rcode::NOERROR,
        vec![a("c.tcp.example.com", 30, "192.0.2.14")],
    );
    let r5 = DnsMsg::response(&q5, rcode::NXDOMAIN, vec![])
        .with_authority(vec![soa("example.com", 900)]);
    let w4 = q4.encode_tcp();
    let w5 = q5.encode_tcp();
    let s1 = [&w4[..], &w5[..1]].concat();
    sc.tcp(&p, c.send_pieces(true, &[&s1, &w5[1..]]));
    let seg = [r5.encode_tcp(), r4.encode_tcp()].concat();
    sc.tcp(&p, c.send_pieces(false, &[&seg]));
    sc.tcp(&p, c.close(true));
    sc.tcp_state(&p, &c, "SF", "DNS over TCP, client closes");
    for (q, r, note) in [
        (&q1, &r1, "pipelined with the next query in one segment"),
        (&q2, &r2, "pipelined, answer shares a segment"),
        (
            &q3,
            &r3,
            "length prefix alone; response split across segments",
        ),
        (
            &q4,
            &r4,
            "shares a segment with the next query's first length byte",
        ),
        (
            &q5,
            &r5,
            "length prefix split across segments; answered before the previous query",
        ),
    ] {
        sc.expect_dns(&p, pkt::PROTO_TCP, (cli, 45001), res, q, Some(r), note);
    }

    // Truncated UDP answer, then the same question over TCP (response > 1 MSS).
    sc.advance_ms(40);
    let qu = DnsMsg::query(0x0201, "big.example.com", rtype::TXT, true);
    let mut ru = DnsMsg::response(&qu, rcode::NOERROR, vec![]);
    ru.tc = true;
    sc.dns_udp(
        &p,
        (cli, 53050),
        res,
        &qu,
        Some(&ru),
        true,
        15,
        "TC set, no answers",
    );
    let mut c2 = TcpConn::new((cli, 45002), res, 0x3000_0000, 0x4000_0000);
    sc.tcp(&p, c2.handshake());
    let qt = DnsMsg::query(0x0202, "big.example.com", rtype::TXT, true);
    let answers: Vec<Rr> = (0..12)
        .map(|i| {
            let s: String = format!("chunk-{i:02}-")
                .chars()
                .chain(std::iter::repeat_n((b'a' + i as u8) as char, 190))
                .collect();
            txt("big.example.com", 600, &s)
        })
        .collect();
    let rt = DnsMsg::response(&qt, rcode::NOERROR, answers);
    sc.tcp(&p, c2.send(true, &qt.encode_tcp()));
    sc.tcp(&p, c2.send(false, &rt.encode_tcp()));
    sc.tcp(&p, c2.close(false));
    sc.tcp_state(
        &p,
        &c2,
        "SF",
        "TCP retry after TC; response spans two segments; server closes",
    );
    sc.expect_dns(
        &p,
        pkt::PROTO_TCP,
        (cli, 45002),
        res,
        &qt,
        Some(&rt),
        "answer larger than one segment",
    );
    sc.advance_ms(200);
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn tcp_states() -> Scenario {
    let mut sc = Scenario::new(
        "tcp_states",
        "One TCP connection per Zeek conn_state: SF, S0, REJ, RSTO, RSTR, S1, SH, OTH, S2, S3, \
         RSTOS0 (opaque payloads, no application protocol)",
    );
    let p = Path::plain();
    let cli = ip("10.0.1.10");
    let srv = ip("10.0.1.20");
    let mut isn = 0x0a00_0000u32;
    let mut conn = |port: u16, sport: u16| {
        isn = isn.wrapping_add(0x0101_0101);
        TcpConn::new((cli, port), (srv, sport), isn, isn ^ 0x5555_0000)
    };

    let mut c = conn(50001, 9000);
    sc.tcp(&p, c.handshake());
    sc.tcp(&p, c.exchange(&opaque("REQ", 300), &opaque("RESP", 2000)));
    sc.tcp(&p, c.close(true));
    sc.tcp_state(&p, &c, "SF", "handshake, data, FIN both ways");
    sc.advance_ms(50);

    let mut c = conn(50002, 8080);
    let s = c.syn();
    sc.tcp(&p, vec![s]);
    let s = c.syn_retransmit(1_000_000_000);
    sc.tcp(&p, vec![s]);
    sc.tcp_state(&p, &c, "S0", "SYN and one retransmission, no answer");
    sc.advance_ms(50);

    let mut c = conn(50003, 23);
    let s = vec![c.syn(), c.reject()];
    sc.tcp(&p, s);
    sc.tcp_state(&p, &c, "REJ", "SYN answered by RST-ACK");
    sc.advance_ms(50);

    let mut c = conn(50004, 9000);
    sc.tcp(&p, c.handshake());
    sc.tcp(&p, c.exchange(&opaque("REQ", 120), &opaque("RESP", 600)));
    let s = c.rst(true, true);
    sc.tcp(&p, vec![s]);
    sc.tcp_state(&p, &c, "RSTO", "established, originator aborts with RST");
    sc.advance_ms(50);

    let mut c = conn(50005, 9000);
    sc.tcp(&p, c.handshake());
    sc.tcp(&p, c.send(true, &opaque("REQ", 200)));
    let s = c.rst(false, true);
    sc.tcp(&p, vec![s]);
    sc.tcp_state(&p, &c, "RSTR", "established, responder aborts with RST");
    sc.advance_ms(50);

    let mut c = conn(50006, 9000);
    sc.tcp(&p, c.handshake());
    sc.tcp(&p, c.exchange(&opaque("REQ", 100), &opaque("RESP", 100)));
    sc.tcp_state(&p, &c, "S1", "established, never closed");
    sc.advance_ms(50);

    let mut c = conn(50007, 9000);
    let s = vec![c.syn(), c.fin(true)];
    sc.tcp(&p, s);
    sc.tcp_state(&p, &c, "SH", "SYN then FIN from the originator, no SYN-ACK");
    sc.advance_ms(50);

    let mut c = TcpConn::established((cli, 50008), (srv, 9000), 0x7000_0000, 0x7100_0000);
    sc.tcp(&p, c.exchange(&opaque("MID", 500), &opaque("STREAM", 1500)));
    sc.tcp_state(&p, &c, "OTH", "mid-stream, no SYN seen; client sends first");
    sc.advance_ms(50);

    let mut c = conn(50009, 9000);
    sc.tcp(&p, c.handshake());
    sc.tcp(&p, c.exchange(&opaque("REQ", 100), &opaque("RESP", 100)));
    let s = vec![c.fin(true), c.ack(false)];
    sc.tcp(&p, s);
    sc.tcp_state(
        &p,
        &c,
        "S2",
        "established, originator FIN acknowledged, no responder FIN",
    );
    sc.advance_ms(50);

    let mut c = conn(50010, 9000);
    sc.tcp(&p, c.handshake());
    sc.tcp(&p, c.exchange(&opaque("REQ", 100), &opaque("RESP", 100)));
    let s = vec![c.fin(false), c.ack(true)];
    sc.tcp(&p, s);
    sc.tcp_state(
        &p,
        &c,
        "S3",
        "established, responder FIN acknowledged, no originator FIN",
    );
    sc.advance_ms(50);

    let mut c = conn(50011, 9000);
    let s = vec![c.syn(), c.rst(true, false)];
    sc.tcp(&p, s);
    sc.tcp_state(
        &p,
        &c,
        "RSTOS0",
        "SYN then bare RST from the originator, no SYN-ACK",
    );
    sc.advance_ms(200);
    sc.notes.push(
        "conn_state follows Zeek's conn_state() in base/protocols/conn/main.zeek; flows still \
         open at the end of the capture are reported at shutdown with their state then."
            .into(),
    );
    sc
}

// ---------------------------------------------------------------------------------------------

fn interleave(
    sc: &mut Scenario,
    a: (&Path, Vec<crate::tcpconn::Seg>),
    b: (&Path, Vec<crate::tcpconn::Seg>),
) {
    let (pa, sa) = a;
    let (pb, sb) = b;
    let n = sa.len().max(sb.len());
    let mut ia = sa.into_iter();
    let mut ib = sb.into_iter();
    for _ in 0..n {
        if let Some(s) = ia.next() {
            sc.advance_ns(s.delay_ns);
            sc.send(pa, s.from_client, &s.ip);
        }
        if let Some(s) = ib.next() {
            sc.advance_ns(20_000);
            sc.send(pb, s.from_client, &s.ip);
        }
    }
}

pub fn vlan() -> Scenario {
    let mut sc = Scenario::new(
        "vlan",
        "The same 5-tuples untagged, on VLAN 10 and on VLAN 20 (distinct flows, interleaved), \
         QinQ (0x88a8 100 / 0x8100 200) and double 802.1Q (300/301)",
    );
    let cli = ip("10.0.2.10");
    let res = (ip("10.0.2.53"), 53);
    let srv = (ip("10.0.2.20"), 9000);
    let v10 = Path::vlans(&[Vlan::dot1q(10)]);
    let v20 = Path::vlans(&[Vlan::dot1q(20)]);
    let plain = Path::plain();
    let qinq = Path::vlans(&[Vlan::qinq(100), Vlan::dot1q(200)]);
    let dbl = Path::vlans(&[Vlan::dot1q(300), Vlan::dot1q(301)]);

    // Same DNS query (same id too) on three segments.
    let q = DnsMsg::query(0x4242, "intranet.corp.example", rtype::A, true);
    for (path, addr, note) in [
        (&v10, "10.10.0.5", "VLAN 10"),
        (&v20, "10.20.0.5", "VLAN 20: same 5-tuple and id as VLAN 10"),
        (&plain, "10.0.0.5", "untagged: same 5-tuple and id again"),
    ] {
        let r = DnsMsg::response(
            &q,
            rcode::NOERROR,
            vec![a("intranet.corp.example", 60, addr)],
        );
        sc.dns_udp(path, (cli, 51000), res, &q, Some(&r), true, 2, note);
    }

    // Same TCP 5-tuple on VLAN 10 and 20 at the same time.
    let mut c10 = TcpConn::new((cli, 52000), srv, 1_000, 9_000);
    let mut c20 = TcpConn::new((cli, 52000), srv, 500_000, 900_000);
    let mut s10 = c10.handshake();
    s10.extend(c10.exchange(&opaque("V10", 400), &opaque("R10", 3000)));
    s10.extend(c10.close(true));
    let mut s20 = c20.handshake();
    s20.extend(c20.exchange(&opaque("V20", 200), &opaque("R20", 1000)));
    s20.extend(c20.close(false));
    interleave(&mut sc, (&v10, s10), (&v20, s20));
    sc.tcp_state(&v10, &c10, "SF", "VLAN 10");
    sc.tcp_state(
        &v20,
        &c20,
        "SF",
        "VLAN 20, same 5-tuple, interleaved with VLAN 10",
    );

    let mut cq = TcpConn::new((cli, 52001), srv, 77_000, 88_000);
    sc.tcp(&qinq, cq.handshake());
    sc.tcp(&qinq, cq.exchange(&opaque("QINQ", 100), &opaque("R", 100)));
    sc.tcp(&qinq, cq.close(true));
    sc.tcp_state(
        &qinq,
        &cq,
        "SF",
        "QinQ: S-tag 0x88a8 vid 100, C-tag 0x8100 vid 200",
    );
    let q = DnsMsg::query(0x4343, "qinq.corp.example", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("qinq.corp.example", 60, "10.100.200.1")],
    );
    sc.dns_udp(&qinq, (cli, 51001), res, &q, Some(&r), true, 2, "QinQ");
    let q = DnsMsg::query(0x4444, "dbl.corp.example", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("dbl.corp.example", 60, "10.30.1.1")],
    );
    sc.dns_udp(
        &dbl,
        (cli, 51002),
        res,
        &q,
        Some(&r),
        true,
        2,
        "double 802.1Q tags (0x8100 twice)",
    );
    sc.advance_ms(100);
    sc.notes
        .push("vlan arrays are outer tag first; untagged flows have no vlan field".into());
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn fragments() -> Scenario {
    let mut sc = Scenario::new(
        "fragments",
        "IPv4 DNS response in 3 fragments sent out of order (last, first, middle); IPv6 DNS \
         response in 3 fragments; a 3000-byte IPv4 UDP datagram in 3 MTU-sized fragments",
    );
    let p = Path::plain();
    let cli = ip("10.0.3.10");
    let res = (ip("10.0.3.53"), 53);
    let q = DnsMsg::query(0x0f01, "many.example.com", rtype::A, true);
    let answers: Vec<Rr> = (1..=24)
        .map(|i| a("many.example.com", 300, &format!("203.0.113.{i}")))
        .collect();
    let r = DnsMsg::response(&q, rcode::NOERROR, answers);
    let qp = pkt::udp_packet(cli, 53100, res.0, 53, 0x2222, &q.encode());
    sc.send(&p, true, &qp);
    sc.advance_ms(14);
    let full = pkt::ipv4(
        v4("10.0.3.53"),
        v4("10.0.3.10"),
        pkt::PROTO_UDP,
        &Ipv4Fields {
            id: 0x7a7a,
            dont_fragment: false,
            ..Default::default()
        },
        &pkt::udp_segment(res.0, cli, 53, 53100, &r.encode()),
    );
    let frags = pkt::fragment_ipv4(&full, 184);
    assert_eq!(frags.len(), 3);
    sc.send_fragments(&p, false, &full, &frags, &[2, 0, 1], 40_000);
    sc.expect_dns(
        &p,
        pkt::PROTO_UDP,
        (cli, 53100),
        res,
        &q,
        Some(&r),
        "response reassembled from out-of-order IPv4 fragments",
    );
    sc.udp_flow(&p, (cli, 53100), res).note =
        "response counted once as the reassembled datagram (alt_counts: each fragment counted)"
            .into();
    sc.advance_ms(20);

    let cli6 = ip("fd00:3::10");
    let res6 = (ip("fd00:3::53"), 53);
    let q = DnsMsg::query(0x0f02, "many6.example.com", rtype::AAAA, true);
    let answers: Vec<Rr> = (1..=12)
        .map(|i| aaaa("many6.example.com", 300, &format!("2001:db8:f::{i:x}")))
        .collect();
    let r = DnsMsg::response(&q, rcode::NOERROR, answers);
    let qp = pkt::udp_packet(cli6, 53101, res6.0, 53, 0, &q.encode());
    sc.send(&p, true, &qp);
    sc.advance_ms(9);
    let full = pkt::udp_packet(res6.0, 53, cli6, 53101, 0, &r.encode());
    let frags = pkt::fragment_ipv6(&full, 160, 0x0bad_f00d);
    assert_eq!(frags.len(), 3);
    sc.send_fragments(&p, false, &full, &frags, &[0, 1, 2], 30_000);
    sc.expect_dns(
        &p,
        pkt::PROTO_UDP,
        (cli6, 53101),
        res6,
        &q,
        Some(&r),
        "response reassembled from IPv6 fragments",
    );
    sc.udp_flow(&p, (cli6, 53101), res6).note =
        "response counted once as the reassembled datagram (IPv6 fragment headers removed)".into();
    sc.advance_ms(20);

    let line = b"<134>Nov 25 09:00:00 host app: syslog line\n";
    let big: Vec<u8> = line.iter().cycle().take(3000).copied().collect();
    let full = pkt::ipv4(
        v4("10.0.3.10"),
        v4("10.0.3.99"),
        pkt::PROTO_UDP,
        &Ipv4Fields {
            id: 0x1234,
            dont_fragment: false,
            ..Default::default()
        },
        &pkt::udp_segment(cli, ip("10.0.3.99"), 40514, 514, &big),
    );
    let frags = pkt::fragment_ipv4(&full, 1480);
    assert_eq!(frags.len(), 3);
    sc.send_fragments(&p, true, &full, &frags, &[0, 1, 2], 15_000);
    sc.udp_flow(&p, (cli, 40514), (ip("10.0.3.99"), 514)).note =
        "one 3008-byte UDP datagram in three fragments, no answer".into();
    sc.advance_ms(100);
    sc.notes.push(
        "Fragmented datagrams count as one packet of the reassembled IP length (Zeek); \
         alt_counts gives the per-fragment counting a sensor may use instead."
            .into(),
    );
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn tunnels() -> Scenario {
    let mut sc = Scenario::new(
        "tunnels",
        "VXLAN (UDP 4789, VNI 5001), GRE with Ethernet (0x6558) and GRE with IPv4 (0x0800), each \
         carrying a DNS transaction and a TCP flow; VXLAN and ERSPAN whose tunnel packets carrying \
         a DNS response are IPv4-fragmented",
    );
    let specs = [
        (
            Tunnel {
                kind: TunnelKind::Vxlan { vni: 5001 },
                client_end: ip("172.16.0.1"),
                server_end: ip("172.16.0.2"),
            },
            "10.200.0",
            "vxlan",
        ),
        (
            Tunnel {
                kind: TunnelKind::GreEth,
                client_end: ip("172.16.1.1"),
                server_end: ip("172.16.1.2"),
            },
            "10.201.0",
            "gre-eth",
        ),
        (
            Tunnel {
                kind: TunnelKind::GreIp,
                client_end: ip("172.16.2.1"),
                server_end: ip("172.16.2.2"),
            },
            "10.202.0",
            "gre-ip",
        ),
    ];
    for (i, (t, net, tag)) in specs.into_iter().enumerate() {
        let p = Path::tunnel(t);
        let cli = ip(&format!("{net}.5"));
        let res = (ip(&format!("{net}.53")), 53);
        let srv_addr = format!("{net}.80");
        let name = format!("{tag}.inner.example");
        let q = DnsMsg::query(0x7000 + i as u16, &name, rtype::A, true);
        let r = DnsMsg::response(&q, rcode::NOERROR, vec![a(&name, 300, &srv_addr)]);
        sc.dns_udp(
            &p,
            (cli, 40000 + i as u16 * 10),
            res,
            &q,
            Some(&r),
            true,
            4,
            tag,
        );
        let mut c = TcpConn::new(
            (cli, 40001 + i as u16 * 10),
            (ip(&srv_addr), 80),
            0x0100_0000 * (i as u32 + 1),
            0x0900_0000,
        );
        c.mss = 1380;
        sc.tcp(&p, c.handshake());
        sc.tcp(
            &p,
            c.exchange(
                &appproto::http_get(&name, "/status", "curl/8.5.0"),
                &appproto::http_response(200, "text/plain", 1800, i as u64),
            ),
        );
        sc.tcp(&p, c.close(false));
        sc.tcp_state(&p, &c, "SF", tag);
        sc.tcp_name(&p, &c, &name, "http_host");
        sc.allowed_extra_flows
            .push(json!({ "any_ip": t.client_end.to_string() }));
        sc.advance_ms(30);
    }
    // Mirror transport with a small MTU: the tunnel's own IPv4 packet carrying a DNS response
    // is fragmented (the query is not). A sensor must reassemble it before it can tell which
    // inner hosts (and so which flow and transaction) it belongs to.
    let mtu_specs = [
        (
            Tunnel {
                kind: TunnelKind::Vxlan { vni: 5003 },
                client_end: ip("172.16.3.1"),
                server_end: ip("172.16.3.2"),
            },
            "10.203.0",
            "vxlan-fragmented",
        ),
        (
            Tunnel {
                kind: TunnelKind::Erspan {
                    version3: false,
                    session: 7,
                },
                client_end: ip("172.16.4.1"),
                server_end: ip("172.16.4.2"),
            },
            "10.204.0",
            "erspan-fragmented",
        ),
    ];
    for (i, (t, net, tag)) in mtu_specs.into_iter().enumerate() {
        let p = Path::tunnel(t);
        let cli = ip(&format!("{net}.5"));
        let res = (ip(&format!("{net}.53")), 53);
        let name = format!("{tag}.inner.example");
        let q = DnsMsg::query(0x7100 + i as u16, &name, rtype::A, true);
        let answers: Vec<Rr> = (1..=24)
            .map(|k| a(&name, 300, &format!("198.51.100.{k}")))
            .collect();
        let r = DnsMsg::response(&q, rcode::NOERROR, answers);
        let client = (cli, 41000 + i as u16);
        let qp = pkt::udp_packet(cli, client.1, res.0, 53, 0x3300 + i as u16, &q.encode());
        sc.send(&p, true, &qp);
        sc.advance_ms(5);
        let rp = pkt::udp_packet(res.0, 53, cli, client.1, 0x4400 + i as u16, &r.encode());
        sc.send_outer_fragmented(&p, false, &rp, 256);
        sc.expect_dns(
            &p,
            pkt::PROTO_UDP,
            client,
            res,
            &q,
            Some(&r),
            &format!("{tag}: response in a fragmented tunnel packet"),
        );
        sc.allowed_extra_flows
            .push(json!({ "any_ip": t.client_end.to_string() }));
        sc.advance_ms(30);
    }
    sc.notes.push(
        "Inner flows are reported with tunnel_depth 1. The outer flows (VTEP to VTEP UDP 4789, \
         GRE between the tunnel endpoints) may be reported or not. The last two DNS responses \
         travel in tunnel packets cut into IPv4 fragments; the transaction and the inner flow \
         must come out whole."
            .into(),
    );
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn names() -> Scenario {
    let mut sc = Scenario::new(
        "names",
        "Server names: TLS SNI (small ClientHello; ~1.8 KB post-quantum ClientHello split over \
         two segments; over IPv6), HTTP Host, and a TLS flow without SNI",
    );
    let p = Path::plain();
    let cli = ip("10.0.4.10");

    let tls = |sc: &mut Scenario, c: &mut TcpConn, sni: Option<&str>, pq: bool, seed: u64| {
        sc.tcp(&p, c.handshake());
        let ch = appproto::tls_client_hello(&ClientHello {
            sni,
            seed,
            pq_key_share: pq,
            alpn: &["h2", "http/1.1"],
        });
        sc.tcp(&p, c.send(true, &ch));
        sc.tcp(&p, c.send(false, &appproto::tls_server_flight(seed, 3200)));
        sc.tcp(&p, c.send(true, &appproto::tls_app_data(seed + 10, 420)));
        sc.tcp(&p, c.send(false, &appproto::tls_app_data(seed + 11, 5200)));
        sc.tcp(&p, c.close(true));
    };

    let mut c = TcpConn::new(
        (cli, 50100),
        (ip("93.184.215.14"), 443),
        0x1111_0000,
        0x2222_0000,
    );
    tls(&mut sc, &mut c, Some("www.example.com"), false, 1);
    sc.tcp_state(&p, &c, "SF", "TLS 1.3, SNI in a one-segment ClientHello");
    sc.tcp_name(&p, &c, "www.example.com", "tls_sni");
    sc.advance_ms(30);

    let mut c = TcpConn::new(
        (cli, 50101),
        (ip("198.51.100.20"), 443),
        0x3333_0000,
        0x4444_0000,
    );
    tls(&mut sc, &mut c, Some("accounts.example.net"), true, 2);
    sc.tcp_state(
        &p,
        &c,
        "SF",
        "ClientHello with ML-KEM key share spans two TCP segments",
    );
    sc.tcp_name(&p, &c, "accounts.example.net", "tls_sni");
    sc.advance_ms(30);

    let mut c = TcpConn::new(
        (ip("fd00:4::10"), 50102),
        (ip("2001:db8:4::443"), 443),
        0x5555_0000,
        0x6666_0000,
    );
    tls(&mut sc, &mut c, Some("v6.example.com"), false, 3);
    sc.tcp_state(&p, &c, "SF", "TLS over IPv6");
    sc.tcp_name(&p, &c, "v6.example.com", "tls_sni");
    sc.advance_ms(30);

    let mut c = TcpConn::new(
        (cli, 50103),
        (ip("192.0.2.50"), 443),
        0x7777_0000,
        0x8888_0000,
    );
    tls(&mut sc, &mut c, None, false, 4);
    sc.tcp_state(&p, &c, "SF", "TLS without SNI: no server_name");
    sc.advance_ms(30);

    let mut c = TcpConn::new(
        (cli, 50104),
        (ip("203.0.113.80"), 80),
        0x9999_0000,
        0xaaaa_0000,
    );
    sc.tcp(&p, c.handshake());
    sc.tcp(
        &p,
        c.exchange(
            &appproto::http_get(
                "example.org",
                "/index.html",
                "Mozilla/5.0 (X11; Linux x86_64)",
            ),
            &appproto::http_response(200, "text/html", 4000, 9),
        ),
    );
    sc.tcp(&p, c.close(false));
    sc.tcp_state(&p, &c, "SF", "HTTP/1.1 GET, server closes");
    sc.tcp_name(&p, &c, "example.org", "http_host");
    sc.advance_ms(100);
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn malformed() -> Scenario {
    let mut sc = Scenario::new(
        "malformed",
        "Junk between two legit flows: runt frames, frames cut by the capture (caplen < len) \
         inside the IP or TCP header, IP version garbage, bad IHL, total length below the \
         header length, header longer than the packet, zero UDP length, UDP length beyond the \
         packet, IPv4/IPv6 total length beyond the frame, TCP data offset < 5, unknown EtherType",
    );
    let p = Path::plain();
    let cli = ip("10.0.5.10");
    let srv = (ip("10.0.5.20"), 80);
    let res = (ip("10.0.5.53"), 53);
    let eth = |ethertype: u16, payload: &[u8]| {
        pkt::pad_ethernet(pkt::ethernet(
            pkt::mac_for(ip("10.66.66.254")),
            pkt::mac_for(ip("10.66.66.1")),
            &[],
            ethertype,
            payload,
        ))
    };
    let j = |n: u8| ip(&format!("10.66.66.{n}"));
    let mut errors = 0;

    let q = DnsMsg::query(0x0e01, "legit.example.com", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("legit.example.com", 300, "10.0.5.20")],
    );
    sc.dns_udp(
        &p,
        (cli, 53200),
        res,
        &q,
        Some(&r),
        true,
        3,
        "legit DNS between junk frames",
    );

    // 1. Runt frame shorter than an Ethernet header.
    sc.advance_ms(1);
    sc.push_frame(vec![0x02, 0x5a, 1, 2, 3, 4, 0x02, 0x5a, 5, 6], None);
    errors += 1;
    // 2. Ethernet header announcing IPv4 and nothing after it (captured as 14 bytes).
    sc.advance_ms(1);
    sc.push_frame(eth(pkt::ETH_IPV4, &[])[..14].to_vec(), None);
    errors += 1;
    // 3. IPv4 EtherType, version nibble 0.
    sc.advance_ms(1);
    let garbage: Vec<u8> = (0..46u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(3) & 0x0f)
        .collect();
    sc.push_frame(eth(pkt::ETH_IPV4, &garbage), None);
    errors += 1;
    // 4. IPv6 EtherType, version nibble 1.
    sc.advance_ms(1);
    let mut g6 = garbage.clone();
    g6[0] = 0x12;
    sc.push_frame(eth(pkt::ETH_IPV6, &g6), None);
    errors += 1;

    let mut c = TcpConn::new((cli, 50200), srv, 0x0c00_0000, 0x0d00_0000);
    sc.tcp(&p, c.handshake());

    // 5. IHL 3 (< 5).
    sc.advance_ms(1);
    let mut bad = pkt::udp_packet(j(5), 1005, j(105), 2005, 5, b"ihl three");
    bad[0] = 0x43;
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    errors += 1;
    // 6. Total length 12 (< header length 20).
    sc.advance_ms(1);
    let mut bad = pkt::udp_packet(j(6), 1006, j(106), 2006, 6, b"short total length");
    bad[2..4].copy_from_slice(&12u16.to_be_bytes());
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    errors += 1;
    // 7. IHL 15 (60-byte header) in a 28-byte packet.
    sc.advance_ms(1);
    let mut bad = pkt::udp_packet(j(7), 1007, j(107), 2007, 7, b"");
    bad[0] = 0x4f;
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    errors += 1;
    // 8. TCP SYN cut by the capture inside the TCP header (caplen 40 of 74).
    sc.advance_ms(1);
    let mut t = TcpConn::new((j(8), 1008), (j(108), 80), 1, 1);
    let syn = t.syn().ip;
    let f = eth(pkt::ETH_IPV4, &syn);
    let len = f.len() as u32;
    sc.push_frame(f[..14 + 20 + 6].to_vec(), Some(len));
    sc.allowed_extra_flows
        .push(json!({"any_ip": j(8).to_string()}));
    // 9. Frame cut inside the IP header (caplen 24).
    sc.advance_ms(1);
    let mut t = TcpConn::new((j(9), 1009), (j(109), 80), 1, 1);
    let f = eth(pkt::ETH_IPV4, &t.syn().ip);
    let len = f.len() as u32;
    sc.push_frame(f[..24].to_vec(), Some(len));
    errors += 1;

    sc.tcp(
        &p,
        c.send(
            true,
            &appproto::http_get("legit.example.com", "/", "Wget/1.21"),
        ),
    );

    // 10. UDP length field 0.
    sc.advance_ms(1);
    let mut bad = pkt::udp_packet(j(10), 1010, j(110), 2010, 10, b"zero");
    bad[24..26].copy_from_slice(&0u16.to_be_bytes());
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    sc.allowed_extra_flows
        .push(json!({"any_ip": j(10).to_string()}));
    // 11. UDP length 200 in a 20-byte UDP payload.
    sc.advance_ms(1);
    let mut bad = pkt::udp_packet(j(11), 1011, j(111), 2011, 11, b"udp length too big");
    bad[24..26].copy_from_slice(&200u16.to_be_bytes());
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    sc.allowed_extra_flows
        .push(json!({"any_ip": j(11).to_string()}));
    // 12. IPv4 total length 1500 in a 60-byte frame that was captured whole.
    sc.advance_ms(1);
    let mut bad = pkt::udp_packet(j(12), 1012, j(112), 2012, 12, b"claims 1500 bytes");
    bad[2..4].copy_from_slice(&1500u16.to_be_bytes());
    let cs = {
        bad[10] = 0;
        bad[11] = 0;
        pkt::inet_checksum(&bad[..20])
    };
    bad[10..12].copy_from_slice(&cs.to_be_bytes());
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    sc.allowed_extra_flows
        .push(json!({"any_ip": j(12).to_string()}));
    // 13. IPv6 payload length 1000 in a short frame.
    sc.advance_ms(1);
    let s6 = ip("fd66::13");
    let d6 = ip("fd66::113");
    let mut bad = pkt::udp_packet(s6, 1013, d6, 2013, 0, b"v6 payload length lies");
    bad[4..6].copy_from_slice(&1000u16.to_be_bytes());
    sc.push_frame(eth(pkt::ETH_IPV6, &bad), None);
    sc.allowed_extra_flows.push(json!({"any_ip": "fd66::13"}));
    // 14. TCP data offset 2 (< 5).
    sc.advance_ms(1);
    let mut t = TcpConn::new((j(14), 1014), (j(114), 80), 1, 1);
    let mut bad = t.syn().ip;
    bad[32] = 0x20;
    sc.push_frame(eth(pkt::ETH_IPV4, &bad), None);
    sc.allowed_extra_flows
        .push(json!({"any_ip": j(14).to_string()}));
    // 15. Unknown EtherType (0x88b5, local experimental).
    sc.advance_ms(1);
    sc.push_frame(eth(0x88b5, b"local experimental ethertype payload"), None);
    // 16. A TCP segment with data offset 2 in two IPv4 fragments: only the reassembled
    // datagram shows the bad header, and it must be counted like a whole bad frame.
    let mut t = TcpConn::new((j(16), 1016), (j(116), 80), 1, 1);
    let mut bad = t.syn().ip;
    bad[32] = 0x20;
    for f in pkt::fragment_ipv4(&bad, 16) {
        sc.advance_ms(1);
        sc.push_frame(eth(pkt::ETH_IPV4, &f), None);
    }
    errors += 1;

    sc.tcp(
        &p,
        c.send(false, &appproto::http_response(200, "text/html", 700, 5)),
    );
    sc.tcp(&p, c.close(true));
    sc.tcp_state(&p, &c, "SF", "legit HTTP flow with junk frames around it");
    sc.tcp_name(&p, &c, "legit.example.com", "http_host");
    sc.advance_ms(100);
    sc.min_decode_errors = errors;
    sc.notes.push(format!(
        "At least {errors} frames cannot be decoded to a transport header and should be counted \
         as decode errors (frames 1-7, 9 and the datagram reassembled from 16); the sensor \
         must not crash, must not report flows for them, and must still report the legit flows. Flows a lenient decoder builds from \
         frames 8 and 10-14 are allowed (addresses 10.66.66.x / fd66::13)."
    ));
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn linktype_sll() -> Scenario {
    let mut sc = Scenario::new(
        "linktype_sll",
        "Linux cooked capture (DLT 113): a DNS transaction and a TLS flow with SNI",
    );
    sc.link = LinkType::LinuxSll;
    let p = Path::plain();
    let cli = ip("10.0.6.10");
    let res = (ip("10.0.6.53"), 53);
    let q = DnsMsg::query(0x5110, "sll.example.com", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("sll.example.com", 300, "10.0.6.20")],
    );
    sc.dns_udp(&p, (cli, 53300), res, &q, Some(&r), true, 5, "");
    let mut c = TcpConn::new(
        (cli, 50300),
        (ip("10.0.6.20"), 443),
        0x5100_0000,
        0x5200_0000,
    );
    sc.tcp(&p, c.handshake());
    let ch = appproto::tls_client_hello(&ClientHello {
        sni: Some("sll.example.com"),
        seed: 11,
        pq_key_share: false,
        alpn: &["http/1.1"],
    });
    sc.tcp(&p, c.exchange(&ch, &appproto::tls_server_flight(11, 2500)));
    sc.tcp(&p, c.close(true));
    sc.tcp_state(&p, &c, "SF", "");
    sc.tcp_name(&p, &c, "sll.example.com", "tls_sni");
    sc.advance_ms(100);
    sc
}

pub fn linktype_raw() -> Scenario {
    let mut sc = Scenario::new(
        "linktype_raw",
        "Raw IP (DLT 101) with nanosecond timestamps: IPv4 DNS, an IPv6 HTTP flow, ICMP and \
         ICMPv6 echo",
    );
    sc.link = LinkType::RawIp;
    sc.res = TsResolution::Nano;
    sc.advance_ns(123);
    let p = Path::plain();
    let cli = ip("10.0.7.10");
    let res = (ip("10.0.7.53"), 53);
    let q = DnsMsg::query(0x7a11, "raw6.example.com", rtype::AAAA, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![aaaa("raw6.example.com", 300, "fd00:7::20")],
    );
    sc.dns_udp(&p, (cli, 53400), res, &q, Some(&r), true, 4, "");

    let mut c = TcpConn::new(
        (ip("fd00:7::10"), 50400),
        (ip("fd00:7::20"), 80),
        0x7a00_0000,
        0x7b00_0000,
    );
    sc.tcp(&p, c.handshake());
    sc.tcp(
        &p,
        c.exchange(
            &appproto::http_get("raw6.example.com", "/api/v1/ping", "python-requests/2.31"),
            &appproto::http_response(200, "application/json", 300, 12),
        ),
    );
    sc.tcp(&p, c.close(true));
    sc.tcp_state(&p, &c, "SF", "");
    sc.tcp_name(&p, &c, "raw6.example.com", "http_host");

    for seq in 1..=2u16 {
        sc.advance_ms(100);
        let e = pkt::icmpv4_echo(false, 0x77, seq, &[0x61; 32]);
        let pk = pkt::ip_packet(cli, ip("10.0.7.1"), pkt::PROTO_ICMP, 0x100 + seq, &e);
        sc.send_unaccounted(&p, true, &pk);
        sc.advance_ns(350_127);
        let e = pkt::icmpv4_echo(true, 0x77, seq, &[0x61; 32]);
        let pk = pkt::ip_packet(ip("10.0.7.1"), cli, pkt::PROTO_ICMP, 0x200 + seq, &e);
        sc.send_unaccounted(&p, false, &pk);
        let (s6, d6) = (v6("fd00:7::10"), v6("fd00:7::1"));
        sc.advance_ns(1_001);
        let e = pkt::icmpv6_echo(s6, d6, false, 0x78, seq, &[0x62; 16]);
        sc.send_unaccounted(&p, true, &pkt::ipv6(s6, d6, pkt::PROTO_ICMPV6, 64, &e));
        sc.advance_ns(210_333);
        let e = pkt::icmpv6_echo(d6, s6, true, 0x78, seq, &[0x62; 16]);
        sc.send_unaccounted(&p, false, &pkt::ipv6(d6, s6, pkt::PROTO_ICMPV6, 64, &e));
    }
    sc.allowed_extra_flows.push(json!({"proto": ["ICMP", "1"]}));
    sc.allowed_extra_flows
        .push(json!({"proto": ["IPv6-ICMP", "58"]}));
    sc.notes.push(
        "ICMP echo flows may be reported (their port convention varies between sensors) and are \
         not checked."
            .into(),
    );
    sc.advance_ms(100);
    sc
}

// ---------------------------------------------------------------------------------------------

pub fn encap() -> Scenario {
    let mut sc = Scenario::new(
        "encap",
        "MPLS (one label; two labels under a VLAN tag), PPPoE session, Geneve (UDP 6081), \
         GRE-in-UDP (UDP 4754), ERSPAN type II and type III, each carrying a DNS transaction \
         and an HTTP flow",
    );
    let tun = |kind, a: &str, b: &str| {
        Path::tunnel(Tunnel {
            kind,
            client_end: ip(a),
            server_end: ip(b),
        })
    };
    let cases = [
        (
            Path::encap(&[], L2Encap::Mpls(vec![16001])),
            "10.210.0",
            "mpls",
        ),
        (
            Path::encap(&[Vlan::dot1q(42)], L2Encap::Mpls(vec![16002, 24005])),
            "10.211.0",
            "vlan-mpls2",
        ),
        (
            Path::encap(&[], L2Encap::Pppoe(0x1a2b)),
            "10.212.0",
            "pppoe",
        ),
        (
            tun(TunnelKind::Geneve { vni: 777 }, "172.16.3.1", "172.16.3.2"),
            "10.213.0",
            "geneve",
        ),
        (
            tun(TunnelKind::GreInUdp, "172.16.4.1", "172.16.4.2"),
            "10.214.0",
            "gre-in-udp",
        ),
        (
            tun(
                TunnelKind::Erspan {
                    version3: false,
                    session: 100,
                },
                "172.16.5.1",
                "172.16.5.2",
            ),
            "10.215.0",
            "erspan2",
        ),
        (
            tun(
                TunnelKind::Erspan {
                    version3: true,
                    session: 200,
                },
                "172.16.6.1",
                "172.16.6.2",
            ),
            "10.216.0",
            "erspan3",
        ),
    ];
    for (i, (p, net, tag)) in cases.into_iter().enumerate() {
        let i = i as u16;
        let cli = ip(&format!("{net}.5"));
        let res = (ip(&format!("{net}.53")), 53);
        let srv_addr = format!("{net}.80");
        let name = format!("{tag}.encap.example");
        let q = DnsMsg::query(0x6000 + i, &name, rtype::A, true);
        let r = DnsMsg::response(&q, rcode::NOERROR, vec![a(&name, 300, &srv_addr)]);
        sc.dns_udp(&p, (cli, 41000 + i * 10), res, &q, Some(&r), true, 3, tag);
        let mut c = TcpConn::new(
            (cli, 41001 + i * 10),
            (ip(&srv_addr), 80),
            0x0200_0000 * (i as u32 + 1),
            0x0a00_0000,
        );
        c.mss = 1380;
        sc.tcp(&p, c.handshake());
        sc.tcp(
            &p,
            c.exchange(
                &appproto::http_get(&name, "/", "curl/8.5.0"),
                &appproto::http_response(200, "text/plain", 1500, 100 + i as u64),
            ),
        );
        sc.tcp(&p, c.close(true));
        sc.tcp_state(&p, &c, "SF", tag);
        sc.tcp_name(&p, &c, &name, "http_host");
        if let Some(t) = p.tunnel {
            sc.allowed_extra_flows
                .push(json!({ "any_ip": t.client_end.to_string() }));
        }
        sc.advance_ms(30);
    }
    sc.notes.push(
        "MPLS and PPPoE are not tunnels (no tunnel_depth check); Geneve, GRE-in-UDP and ERSPAN \
         inner flows have tunnel_depth 1. ERSPAN carries both directions of the mirrored \
         traffic from the switch (172.16.5.1 / 172.16.6.1) to the collector. Outer flows may be \
         reported or not."
            .into(),
    );
    sc
}

/// Inserts a Hop-by-Hop and a Destination Options header (PadN) into an IPv6 packet.
fn with_v6_ext(ip6: &[u8]) -> Vec<u8> {
    let nh = ip6[6];
    let plen = u16::from_be_bytes([ip6[4], ip6[5]]) + 16;
    let mut v = ip6[..40].to_vec();
    v[4..6].copy_from_slice(&plen.to_be_bytes());
    v[6] = 0;
    v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    v.extend_from_slice(&[nh, 0, 1, 4, 0, 0, 0, 0]);
    v.extend_from_slice(&ip6[40..]);
    v
}

pub fn ipv6_ext() -> Scenario {
    let mut sc = Scenario::new(
        "ipv6_ext",
        "IPv6 extension headers: DNS and a TCP flow whose packets carry Hop-by-Hop and \
         Destination Options headers, and a DNS response sent as an atomic fragment (Fragment \
         header with offset 0 and M = 0)",
    );
    let p = Path::plain();
    let cli = ip("fd00:9::10");
    let res = (ip("fd00:9::53"), 53);
    let q = DnsMsg::query(0xe601, "ext.example.com", rtype::AAAA, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![aaaa("ext.example.com", 300, "2001:db8:9::80")],
    );
    let qp = pkt::udp_packet(cli, 53500, res.0, 53, 0, &q.encode());
    sc.send(&p, true, &with_v6_ext(&qp));
    sc.advance_ms(6);
    let rp = pkt::udp_packet(res.0, 53, cli, 53500, 0, &r.encode());
    sc.send(&p, false, &with_v6_ext(&rp));
    sc.expect_dns(
        &p,
        pkt::PROTO_UDP,
        (cli, 53500),
        res,
        &q,
        Some(&r),
        "HBH + DestOpts headers",
    );
    sc.advance_ms(10);

    let mut c = TcpConn::new(
        (cli, 50600),
        (ip("2001:db8:9::80"), 443),
        0x6600_0000,
        0x6700_0000,
    );
    let mut segs = c.handshake();
    let ch = appproto::tls_client_hello(&ClientHello {
        sni: Some("ext.example.com"),
        seed: 21,
        pq_key_share: false,
        alpn: &["h2"],
    });
    segs.extend(c.exchange(&ch, &appproto::tls_server_flight(21, 2000)));
    segs.extend(c.close(true));
    for s in &mut segs {
        s.ip = with_v6_ext(&s.ip);
    }
    sc.tcp(&p, segs);
    sc.tcp_state(&p, &c, "SF", "every packet has HBH + DestOpts headers");
    sc.tcp_name(&p, &c, "ext.example.com", "tls_sni");
    sc.advance_ms(10);

    let q = DnsMsg::query(0xe602, "atomic.example.com", rtype::AAAA, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![aaaa("atomic.example.com", 60, "2001:db8:9::a")],
    );
    let qp = pkt::udp_packet(cli, 53501, res.0, 53, 0, &q.encode());
    sc.send(&p, true, &qp);
    sc.advance_ms(5);
    let rp = pkt::udp_packet(res.0, 53, cli, 53501, 0, &r.encode());
    let atomic = pkt::fragment_ipv6(&rp, 4096, 0x0a70_0001);
    assert_eq!(atomic.len(), 1);
    sc.send_fragments(&p, false, &rp, &atomic, &[0], 0);
    sc.expect_dns(
        &p,
        pkt::PROTO_UDP,
        (cli, 53501),
        res,
        &q,
        Some(&r),
        "atomic fragment response",
    );
    sc.udp_flow(&p, (cli, 53501), res).note =
        "the response is an atomic fragment: one packet; bytes may count the 8-byte Fragment \
         header (alt_counts) or not"
            .into();
    sc.advance_ms(100);
    sc
}

fn with_ip_id(mut s: Seg, id: u16, delay_ns: u64) -> Seg {
    pkt::set_ipv4_id(&mut s.ip, id);
    s.delay_ns = delay_ns;
    s
}

pub fn tcp_reassembly() -> Scenario {
    let mut sc = Scenario::new(
        "tcp_reassembly",
        "TCP stream reassembly: a retransmitted DNS query (must give one transaction), a DNS \
         response whose two segments arrive out of order, a TLS ClientHello whose two segments \
         arrive out of order, and a retransmitted HTTP request",
    );
    let p = Path::plain();
    let cli = ip("10.0.8.10");
    let res = (ip("10.0.8.53"), 53);

    let mut c = TcpConn::new((cli, 45100), res, 0x8100_0000, 0x8200_0000);
    sc.tcp(&p, c.handshake());
    let q = DnsMsg::query(0x8801, "retrans.example.com", rtype::A, true);
    let r = DnsMsg::response(
        &q,
        rcode::NOERROR,
        vec![a("retrans.example.com", 60, "192.0.2.88")],
    );
    let s = c.segment(true, PSH | ACK, &q.encode_tcp());
    let dup = with_ip_id(s.clone(), 0x4242, 210_000_000);
    sc.tcp(&p, vec![with_ip_id(s, 0x4241, 100_000), dup]);
    let ack = c.ack(false);
    sc.tcp(&p, vec![ack]);
    let q2 = DnsMsg::query(0x8802, "ooo.example.com", rtype::A, true);
    let r2 = DnsMsg::response(
        &q2,
        rcode::NOERROR,
        vec![
            cname("ooo.example.com", 60, "ooo.edge.example.net"),
            a("ooo.edge.example.net", 60, "192.0.2.89"),
        ],
    );
    sc.tcp(&p, c.send(false, &r.encode_tcp()));
    sc.tcp(&p, c.send(true, &q2.encode_tcp()));
    let w = r2.encode_tcp();
    let first = c.segment(false, ACK, &w[..30]);
    let second = c.segment(false, PSH | ACK, &w[30..]);
    let second = Seg {
        delay_ns: 5_000_000,
        ..second
    };
    let first = Seg {
        delay_ns: 40_000,
        ..first
    };
    sc.tcp(&p, vec![second, first]);
    let ack = c.ack(true);
    sc.tcp(&p, vec![ack]);
    sc.tcp(&p, c.close(true));
    sc.tcp_state(
        &p,
        &c,
        "SF",
        "query segment retransmitted 210 ms later; second response out of order",
    );
    sc.expect_dns(
        &p,
        pkt::PROTO_TCP,
        (cli, 45100),
        res,
        &q,
        Some(&r),
        "query segment seen twice",
    );
    sc.expect_dns(
        &p,
        pkt::PROTO_TCP,
        (cli, 45100),
        res,
        &q2,
        Some(&r2),
        "response segments out of order",
    );
    sc.advance_ms(20);

    let mut c = TcpConn::new(
        (cli, 50500),
        (ip("198.51.100.99"), 443),
        0x8300_0000,
        0x8400_0000,
    );
    sc.tcp(&p, c.handshake());
    let ch = appproto::tls_client_hello(&ClientHello {
        sni: Some("ooo.example.net"),
        seed: 31,
        pq_key_share: true,
        alpn: &["h2", "http/1.1"],
    });
    assert!(ch.len() > 1448);
    let s1 = c.segment(true, ACK, &ch[..1448]);
    let s2 = c.segment(true, PSH | ACK, &ch[1448..]);
    let s2 = Seg {
        delay_ns: 300_000,
        ..s2
    };
    let s1 = Seg {
        delay_ns: 30_000,
        ..s1
    };
    sc.tcp(&p, vec![s2, s1]);
    let ack = c.ack(false);
    sc.tcp(&p, vec![ack]);
    sc.tcp(&p, c.send(false, &appproto::tls_server_flight(31, 2600)));
    sc.tcp(&p, c.close(true));
    sc.tcp_state(&p, &c, "SF", "ClientHello segments arrive second-first");
    sc.tcp_name(&p, &c, "ooo.example.net", "tls_sni");
    sc.advance_ms(20);

    let mut c = TcpConn::new(
        (cli, 50501),
        (ip("203.0.113.99"), 80),
        0x8500_0000,
        0x8600_0000,
    );
    sc.tcp(&p, c.handshake());
    let req = appproto::http_get("retrans.example.org", "/feed.xml", "Feedreader/2.0");
    let s = c.segment(true, PSH | ACK, &req);
    let dup = with_ip_id(s.clone(), 0x5151, 250_000_000);
    sc.tcp(&p, vec![with_ip_id(s, 0x5150, 100_000), dup]);
    let ack = c.ack(false);
    sc.tcp(&p, vec![ack]);
    sc.tcp(
        &p,
        c.send(
            false,
            &appproto::http_response(200, "application/rss+xml", 2200, 77),
        ),
    );
    sc.tcp(&p, c.close(false));
    sc.tcp_state(&p, &c, "SF", "HTTP request retransmitted");
    sc.tcp_name(&p, &c, "retrans.example.org", "http_host");
    sc.advance_ms(100);
    sc.notes.push(
        "Retransmitted and out-of-order segments count as packets (and IP bytes) like any other; \
         reassembly must not duplicate or lose DNS messages or the server name."
            .into(),
    );
    sc
}
