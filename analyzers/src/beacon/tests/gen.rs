//! Synthetic event streams for the beacon tests: a seeded PRNG, event builders, beacon and
//! noise schedules, and a driver that replays events with packet-time ticks.

use std::net::IpAddr;

use crate::beacon::BeaconAnalyzer;
use crate::{
    Alert, Analyzer, CloseReason, ConnState, DnsAnswer, DnsTxn, Event, Flow, FlowBurst, TsNanos,
    Vlans,
};

pub const S: i64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, so timestamps look like real packet time.
pub const T0: i64 = 1_767_225_600 * S;

/// xorshift64* — small, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn flow(src: &str, dst: &str, port: u16, first_ts: TsNanos, bytes: u64) -> Flow {
    Flow {
        flow_id: (first_ts as u64) ^ u64::from(port),
        src_ip: ip(src),
        src_port: 49152 + (first_ts / S % 16000) as u16,
        dest_ip: ip(dst),
        dest_port: port,
        proto: crate::ipproto::TCP,
        vlan: Vlans::default(),
        tunnel_depth: 0,
        first_ts,
        last_ts: first_ts + S / 5,
        pkts_toserver: 6,
        pkts_toclient: 5,
        bytes_toserver: bytes,
        bytes_toclient: 1800,
        payload_toserver: bytes.saturating_sub(300),
        payload_toclient: 1500,
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

pub fn named(mut f: Flow, name: &str) -> Flow {
    f.server_name = Some(name.into());
    f.server_name_source = Some(crate::NameSource::TlsSni);
    f
}

pub fn burst(src: &str, dst: &str, port: u16, ts: TsNanos, ip_len: u32) -> FlowBurst {
    FlowBurst {
        ts,
        flow_id: 7,
        src_ip: ip(src),
        src_port: 50000,
        dest_ip: ip(dst),
        dest_port: port,
        proto: crate::ipproto::TCP,
        vlan: Vlans::default(),
        server_name: None,
        from_originator: true,
        ip_len,
        flow_start: T0,
        prev_ts: TsNanos::MIN,
        flow_bytes_toserver: 0,
        flow_bytes_toclient: 0,
    }
}

pub fn dns(client: &str, qname: &str, ts: TsNanos, rcode: u16, answers: &[(&str, u32)]) -> DnsTxn {
    DnsTxn {
        ts,
        flow_id: ts as u64,
        client_ip: ip(client),
        client_port: 53000,
        server_ip: ip("10.0.0.53"),
        server_port: 53,
        proto: crate::ipproto::UDP,
        vlan: Vlans::default(),
        community_id: Default::default(),
        id: 1,
        qname: qname.into(),
        qtype: 1,
        qclass: 1,
        opcode: 0,
        rcode: Some(rcode),
        answers: answers
            .iter()
            .map(|(a, ttl)| DnsAnswer {
                name: qname.into(),
                rtype: if a.contains(':') { 28 } else { 1 },
                ttl: *ttl,
                data: (*a).into(),
                addr: a.parse().ok(),
            })
            .collect(),
        authoritative: false,
        truncated: false,
        recursion_desired: true,
        recursion_available: true,
        rtt_ns: Some(S / 100),
        query_seen: true,
    }
}

/// Jitter style of a synthetic beacon.
#[derive(Clone, Copy, Debug)]
pub enum Jitter {
    /// sleep = P·(1 + U[−j, j])
    Symmetric(f64),
    /// sleep = P·(1 − U[0, j]) (Cobalt Strike)
    OneSided(f64),
}

/// Beat times of a beacon: `n` scheduled callbacks from `start`, each missed with
/// probability `miss` (missed ones are not returned).
pub fn beacon_times(
    rng: &mut Rng,
    start: TsNanos,
    period_s: f64,
    n: usize,
    jitter: Jitter,
    miss: f64,
) -> Vec<TsNanos> {
    let mut t = start as f64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if rng.unit() >= miss {
            out.push(t as i64);
        }
        let sleep = match jitter {
            Jitter::Symmetric(j) => period_s * (1.0 + rng.range(-j, j)),
            Jitter::OneSided(j) => period_s * (1.0 - rng.range(0.0, j)),
        };
        t += sleep * 1e9;
    }
    out
}

/// Poisson arrivals with the given mean gap until `end`.
pub fn poisson_times(rng: &mut Rng, start: TsNanos, mean_s: f64, end: TsNanos) -> Vec<TsNanos> {
    let mut t = start as f64;
    let mut out = Vec::new();
    while (t as i64) < end {
        out.push(t as i64);
        t += rng.exp(mean_s) * 1e9;
    }
    out
}

/// Bursty browsing: sessions (exponential think time, mean `idle_s`) of 2–12 requests a few
/// seconds apart.
pub fn browsing_times(rng: &mut Rng, start: TsNanos, idle_s: f64, end: TsNanos) -> Vec<TsNanos> {
    let mut t = start as f64;
    let mut out = Vec::new();
    while (t as i64) < end {
        let k = 2 + (rng.next_u64() % 11) as usize;
        for _ in 0..k {
            out.push(t as i64);
            t += rng.exp(3.0).max(0.05) * 1e9;
        }
        t += rng.exp(idle_s) * 1e9;
    }
    out
}

/// Replays events in the given order, ticking every second of packet time (ticks follow the
/// largest timestamp seen, like the sensor), and a final tick at the end.
pub fn run(a: &mut BeaconAnalyzer, events: &[Event]) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut next_tick = i64::MIN;
    let mut hi = i64::MIN;
    for ev in events {
        let ts = match ev {
            Event::Flow(f) => f.last_ts,
            other => other.ts(),
        };
        hi = hi.max(ts);
        if next_tick == i64::MIN {
            next_tick = hi + S;
        }
        while hi >= next_tick {
            a.on_tick(next_tick, &mut out);
            next_tick += S;
        }
        a.on_event(ev, &mut out);
    }
    if hi != i64::MIN {
        a.on_tick(hi + 2 * S, &mut out);
    }
    out
}

/// Flow events for beats (connection starts), sorted by flow end time.
pub fn flows(times: &[TsNanos], src: &str, dst: &str, port: u16, bytes: u64) -> Vec<Event> {
    times
        .iter()
        .map(|&t| Event::Flow(flow(src, dst, port, t, bytes)))
        .collect()
}

pub fn by_time(mut evs: Vec<Event>) -> Vec<Event> {
    evs.sort_by_key(|e| match e {
        Event::Flow(f) => f.last_ts,
        other => other.ts(),
    });
    evs
}

pub fn analyzer() -> BeaconAnalyzer {
    BeaconAnalyzer::new(crate::beacon::BeaconConfig::default()).unwrap()
}

pub fn beacon_alerts(alerts: &[Alert]) -> Vec<&Alert> {
    alerts.iter().filter(|a| !a.update).collect()
}
