//! Synthetic events for the detectors' unit tests.

use crate::{ipproto, CloseReason, ConnState, DnsAnswer, DnsTxn, Event, Flow, FlowBurst, Vlans};
use crate::{TsNanos, NANOS_PER_SEC};
use std::net::IpAddr;

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip literal")
}

pub fn ts(secs: i64) -> TsNanos {
    secs * NANOS_PER_SEC
}

pub fn answer(name: &str, rtype: u16, ttl: u32, data: &str) -> DnsAnswer {
    DnsAnswer {
        name: name.into(),
        rtype,
        ttl,
        data: data.into(),
        addr: if rtype == 1 || rtype == 28 {
            data.parse().ok()
        } else {
            None
        },
    }
}

/// A DNS transaction with full control of type and rcode.
pub fn dns_txn(t: i64, client: &str, qname: &str, qtype: u16, rcode: Option<u16>) -> DnsTxn {
    DnsTxn {
        ts: ts(t),
        flow_id: 1,
        client_ip: ip(client),
        client_port: 40000,
        server_ip: if client.contains(':') {
            ip("fd00::53")
        } else {
            ip("10.0.0.53")
        },
        server_port: 53,
        proto: ipproto::UDP,
        vlan: Vlans::default(),
        community_id: Default::default(),
        id: 1,
        qname: qname.into(),
        qtype,
        qclass: 1,
        opcode: 0,
        rcode,
        answers: Vec::new(),
        authoritative: false,
        truncated: false,
        recursion_desired: true,
        recursion_available: true,
        rtt_ns: Some(1_000_000),
        query_seen: true,
    }
}

/// An answered A/AAAA query at `t` seconds (answers: address, ttl).
pub fn dns_a(t: i64, client: &str, qname: &str, answers: &[(&str, u32)]) -> Event {
    let mut d = dns_txn(t, client, qname, 1, Some(0));
    d.answers = answers
        .iter()
        .map(|(a, ttl)| answer(qname, if a.contains(':') { 28 } else { 1 }, *ttl, a))
        .collect();
    Event::Dns(d)
}

/// A flow record of a completed TCP connection starting at `t` lasting `dur` seconds.
pub fn tcp_flow(t: i64, src: &str, dst: &str, dport: u16, dur: i64) -> Event {
    Event::Flow(flow(t, src, dst, dport, dur, ipproto::TCP))
}

pub fn udp_flow(t: i64, src: &str, dst: &str, dport: u16) -> Event {
    Event::Flow(flow(t, src, dst, dport, 0, ipproto::UDP))
}

pub fn flow(t: i64, src: &str, dst: &str, dport: u16, dur: i64, proto: u8) -> Flow {
    Flow {
        flow_id: (t as u64) << 16 | dport as u64,
        src_ip: ip(src),
        src_port: 50000,
        dest_ip: ip(dst),
        dest_port: dport,
        proto,
        vlan: Vlans::default(),
        tunnel_depth: 0,
        first_ts: ts(t),
        last_ts: ts(t + dur),
        pkts_toserver: 5,
        pkts_toclient: 5,
        bytes_toserver: 600,
        bytes_toclient: 4000,
        payload_toserver: 300,
        payload_toclient: 3700,
        tcp_flags_ts: 0x1b,
        tcp_flags_tc: 0x1b,
        history: "ShADadFf".into(),
        conn_state: ConnState::SF,
        reason: CloseReason::Closed,
        server_name: None,
        server_name_source: None,
        community_id: Default::default(),
        missed_bytes: 0,
    }
}

pub fn burst(t: i64, f: &Flow) -> Event {
    Event::Burst(FlowBurst {
        ts: ts(t),
        flow_id: f.flow_id,
        src_ip: f.src_ip,
        src_port: f.src_port,
        dest_ip: f.dest_ip,
        dest_port: f.dest_port,
        proto: f.proto,
        vlan: f.vlan,
        server_name: f.server_name.clone(),
        from_originator: true,
        ip_len: 100,
        flow_start: f.first_ts,
        prev_ts: TsNanos::MIN,
        flow_bytes_toserver: 0,
        flow_bytes_toclient: 0,
    })
}
