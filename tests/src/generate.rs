//! Deterministic generators: the demo capture (small office), the throughput benchmark
//! capture (streamed, millions of packets) and the per-flow memory benchmark capture.

use crate::appproto::{self, ClientHello};
use crate::dnsmsg::{rcode, rtype, soa, DnsMsg, RData, Rr};
use crate::pcapw::{LinkType, PcapWriter, TsResolution};
use crate::pkt::{self, tcpflags, Mac, Vlan};
use crate::scenario::BASE_TS_NS;
use crate::tcpconn::{Seg, TcpConn};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x004b_495a_554b_4921;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const US: u64 = 1_000;

// ---------------------------------------------------------------------------------------------
// PRNG (xoshiro256**, seeded by splitmix64): stable across versions and platforms.

/// Small deterministic PRNG.
#[derive(Clone, Debug)]
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `num / den` (integer arithmetic only).
    pub fn one_in(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Pareto with scale `xm` and shape `alpha`.
    pub fn pareto(&mut self, xm: f64, alpha: f64) -> f64 {
        xm / (1.0 - self.unit()).powf(1.0 / alpha)
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }

    /// Index drawn with integer weights.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------------------------

/// What a generator wrote.
#[derive(Clone, Debug, Default)]
pub struct GenStats {
    pub packets: u64,
    pub file_bytes: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    pub dns_packets: u64,
    pub vlan_packets: u64,
    pub sessions: u64,
}

impl fmt::Display for GenStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.packets.max(1) as f64;
        write!(
            f,
            "{} packets, {:.2} MB, {:.1} s of traffic, {:.1}% DNS packets, {:.1}% VLAN-tagged, \
             {} sessions",
            self.packets,
            self.file_bytes as f64 / 1e6,
            self.last_ts.saturating_sub(self.first_ts) as f64 / 1e9,
            100.0 * self.dns_packets as f64 / p,
            100.0 * self.vlan_packets as f64 / p,
            self.sessions
        )
    }
}

fn ipv4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

// ---------------------------------------------------------------------------------------------
// Demo: a small office for an hour.

struct Site {
    name: &'static str,
    /// CNAME chain before the addresses.
    cnames: &'static [&'static str],
    addrs: &'static [[u8; 4]],
    ttl: u32,
    /// 443 = TLS with SNI, 80 = HTTP with Host.
    port: u16,
    weight: u64,
}

const SITES: &[Site] = &[
    Site {
        name: "www.example.com",
        cnames: &[],
        addrs: &[[93, 184, 215, 14]],
        ttl: 3600,
        port: 443,
        weight: 6,
    },
    Site {
        name: "outlook.office.example",
        cnames: &["outlook.ha.office.example"],
        addrs: &[[198, 51, 100, 10], [198, 51, 100, 11]],
        ttl: 300,
        port: 443,
        weight: 14,
    },
    Site {
        name: "teams.office.example",
        cnames: &[],
        addrs: &[[198, 51, 100, 20]],
        ttl: 300,
        port: 443,
        weight: 10,
    },
    Site {
        name: "login.office.example",
        cnames: &["login.geo.office.example"],
        addrs: &[[198, 51, 100, 30]],
        ttl: 300,
        port: 443,
        weight: 5,
    },
    Site {
        name: "www.news-site.example",
        cnames: &["news-site.cdn.example"],
        addrs: &[[203, 0, 113, 50], [203, 0, 113, 51]],
        ttl: 60,
        port: 443,
        weight: 6,
    },
    Site {
        name: "cdn.jsdelivr.example",
        cnames: &[],
        addrs: &[[203, 0, 113, 60]],
        ttl: 600,
        port: 443,
        weight: 4,
    },
    Site {
        name: "fonts.static.example",
        cnames: &[],
        addrs: &[[203, 0, 113, 70]],
        ttl: 86400,
        port: 443,
        weight: 4,
    },
    Site {
        name: "api.github.example",
        cnames: &[],
        addrs: &[[192, 0, 2, 80]],
        ttl: 60,
        port: 443,
        weight: 5,
    },
    Site {
        name: "slack.chat.example",
        cnames: &["slack.chat.edge.example"],
        addrs: &[[192, 0, 2, 90], [192, 0, 2, 91]],
        ttl: 120,
        port: 443,
        weight: 8,
    },
    Site {
        name: "updates.os-vendor.example",
        cnames: &["updates.os-vendor.cdn.example"],
        addrs: &[[203, 0, 113, 100]],
        ttl: 300,
        port: 80,
        weight: 2,
    },
    Site {
        name: "wiki.corp.example",
        cnames: &[],
        addrs: &[[10, 0, 0, 15]],
        ttl: 3600,
        port: 80,
        weight: 5,
    },
    Site {
        name: "intranet.corp.example",
        cnames: &[],
        addrs: &[[10, 0, 0, 16]],
        ttl: 3600,
        port: 80,
        weight: 4,
    },
    Site {
        name: "weather.widgets.example",
        cnames: &[],
        addrs: &[[192, 0, 2, 150]],
        ttl: 300,
        port: 80,
        weight: 2,
    },
];

const BEACON_NAME: &str = "cdn-update.syncsvc-telemetry.example";
const BEACON_ADDR: [u8; 4] = [203, 0, 113, 201];
const NTP_NAME: &str = "pool.ntp.example";
const NTP_ADDRS: &[[u8; 4]] = &[[192, 0, 2, 123], [192, 0, 2, 124], [192, 0, 2, 125]];
const TYPOS: &[&str] = &[
    "www.exmaple.com",
    "githbu.example",
    "outlok.office.example",
    "teams.office.example.corp.example",
    "printer-2f.corp.example",
];

struct Demo {
    rng: Rng,
    frames: Vec<(u64, u32, Vec<u8>)>,
    seq: u32,
    dns_id: u16,
    /// (client, name) → expiry of the cached answer.
    cache: HashMap<(IpAddr, String), u64>,
    ports: HashMap<IpAddr, u16>,
    sessions: u64,
    dns_packets: u64,
}

const RESOLVER: [u8; 4] = [10, 0, 0, 53];
const DEMO_LEN: u64 = 3600 * SEC;

fn internal(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(a) if a.octets()[0] == 10 || a.octets()[..2] == [192, 168])
}

fn gateway_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) if a.octets()[..2] == [192, 168] => ipv4(192, 168, 10, 1),
        _ => ipv4(10, 0, 0, 1),
    }
}

fn demo_macs(src: IpAddr, dst: IpAddr) -> (Mac, Mac) {
    let s = if internal(src) {
        pkt::mac_for(src)
    } else {
        pkt::mac_for(gateway_for(dst))
    };
    let d = if internal(dst) {
        pkt::mac_for(dst)
    } else {
        pkt::mac_for(gateway_for(src))
    };
    (s, d)
}

impl Demo {
    fn push_ip(&mut self, t: u64, ip: &[u8]) {
        let s = pkt::summarize(ip);
        if s.proto == pkt::PROTO_UDP && (s.sport == 53 || s.dport == 53) {
            self.dns_packets += 1;
        }
        let (sm, dm) = demo_macs(s.src, s.dst);
        let f = pkt::pad_ethernet(pkt::ethernet(dm, sm, &[], pkt::ethertype_of(ip), ip));
        self.seq += 1;
        self.frames.push((t, self.seq, f));
    }

    fn port(&mut self, host: IpAddr) -> u16 {
        let start = 49152 + self.rng.below(4000) as u16;
        let p = self.ports.entry(host).or_insert(start);
        *p = if *p >= 65000 {
            49152
        } else {
            *p + 1 + (self.rng.below(3) as u16)
        };
        *p
    }

    fn tcp(&mut self, t: &mut u64, segs: Vec<Seg>) {
        for s in segs {
            *t += s.delay_ns;
            self.push_ip(*t, &s.ip);
        }
    }

    /// One DNS query (and its response unless `answers` is None), from `client` at `t`.
    fn dns(&mut self, t: &mut u64, client: IpAddr, q: &DnsMsg, resp: Option<DnsMsg>) {
        let sport = 1024 + self.rng.below(64000) as u16;
        let res = IpAddr::V4(RESOLVER.into());
        let id = self.rng.below(65536) as u16;
        self.push_ip(
            *t,
            &pkt::udp_packet(client, sport, res, 53, id, &q.encode()),
        );
        if let Some(r) = resp {
            // Cached at the resolver (fast) or recursed (slow).
            *t += if self.rng.one_in(2, 3) {
                self.rng.range(300, 1500) * US
            } else {
                self.rng.range(12, 90) * MS
            };
            self.push_ip(
                *t,
                &pkt::udp_packet(res, 53, client, sport, id ^ 0x8000, &r.encode()),
            );
        }
        *t += self.rng.range(1, 4) * MS;
    }

    fn next_id(&mut self) -> u16 {
        self.dns_id = self.dns_id.wrapping_mul(25173).wrapping_add(13849);
        self.dns_id
    }

    /// Resolves `name` (A, plus AAAA when `dual`), honouring the client's cache.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &mut self,
        t: &mut u64,
        client: IpAddr,
        name: &str,
        cnames: &[&str],
        addrs: &[[u8; 4]],
        ttl: u32,
        dual: bool,
    ) {
        let key = (client, name.to_string());
        if self.cache.get(&key).is_some_and(|&exp| exp > *t) {
            return;
        }
        self.cache.insert(key, *t + ttl as u64 * SEC);
        let q = DnsMsg::query(self.next_id(), name, rtype::A, true);
        let mut answers = Vec::new();
        let mut owner = name.to_string();
        for c in cnames {
            answers.push(Rr::new(&owner, ttl, RData::Cname(c.to_string())));
            owner = c.to_string();
        }
        for a in addrs {
            answers.push(Rr::new(&owner, ttl, RData::A((*a).into())));
        }
        let r = DnsMsg::response(&q, rcode::NOERROR, answers);
        self.dns(t, client, &q, Some(r));
        if dual {
            let q = DnsMsg::query(self.next_id(), name, rtype::AAAA, true);
            let zone = name.split_once('.').map(|x| x.1).unwrap_or(name);
            let r =
                DnsMsg::response(&q, rcode::NOERROR, vec![]).with_authority(vec![soa(zone, 300)]);
            self.dns(t, client, &q, Some(r));
        }
    }

    fn nxdomain(&mut self, t: &mut u64, client: IpAddr, name: &str) {
        let q = DnsMsg::query(self.next_id(), name, rtype::A, true);
        let zone = name.rsplit('.').next().unwrap_or("example").to_string();
        let r = DnsMsg::response(&q, rcode::NXDOMAIN, vec![]).with_authority(vec![soa(&zone, 900)]);
        self.dns(t, client, &q, Some(r));
    }

    fn web(&mut self, mut t: u64, client: IpAddr, site_idx: usize) {
        let s = &SITES[site_idx];
        let dual = !matches!(client, IpAddr::V4(a) if a.octets()[0] == 192);
        self.resolve(&mut t, client, s.name, s.cnames, s.addrs, s.ttl, dual);
        let addr = *self.rng.pick(s.addrs);
        let server = IpAddr::V4(addr.into());
        let sport = self.port(client);
        let mut c = TcpConn::new(
            (client, sport),
            (server, s.port),
            self.rng.next_u64() as u32,
            self.rng.next_u64() as u32,
        );
        c.rtt_ns = if internal(server) {
            self.rng.range(200, 900) * US
        } else {
            self.rng.range(8, 60) * MS
        };
        self.sessions += 1;
        let sizes = [400u64, 700, 1200, 2000, 3500, 6000, 10000, 20000, 40000];
        let weights = [20u64, 20, 18, 14, 10, 8, 5, 3, 2];
        let resp = sizes[self.rng.weighted(&weights)];
        let resp = (resp + self.rng.below(resp / 3 + 1)) as usize;
        let seed = self.rng.next_u64();
        t += self.rng.range(1, 5) * MS;
        self.tcp(&mut t, c.handshake());
        if s.port == 443 {
            let ch = appproto::tls_client_hello(&ClientHello {
                sni: Some(s.name),
                seed,
                pq_key_share: seed % 3 < 1,
                alpn: &["h2", "http/1.1"],
            });
            self.tcp(&mut t, c.send(true, &ch));
            self.tcp(
                &mut t,
                c.send(
                    false,
                    &appproto::tls_server_flight(seed, 1800 + (seed % 800) as usize),
                ),
            );
            self.tcp(
                &mut t,
                c.send(
                    true,
                    &appproto::tls_app_data(seed + 1, 350 + (seed % 400) as usize),
                ),
            );
            self.tcp(
                &mut t,
                c.send(false, &appproto::tls_app_data(seed + 2, resp)),
            );
        } else {
            let req = appproto::http_get(s.name, "/", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)");
            self.tcp(&mut t, c.send(true, &req));
            self.tcp(
                &mut t,
                c.send(
                    false,
                    &appproto::http_response(200, "text/html", resp, seed),
                ),
            );
        }
        t += self.rng.range(5, 400) * MS;
        let client_first = self.rng.one_in(2, 3);
        self.tcp(&mut t, c.close(client_first));
    }

    fn beacon(&mut self, mut t: u64, client: IpAddr) {
        self.resolve(&mut t, client, BEACON_NAME, &[], &[BEACON_ADDR], 300, false);
        let sport = self.port(client);
        let server = IpAddr::V4(BEACON_ADDR.into());
        let mut c = TcpConn::new(
            (client, sport),
            (server, 443),
            self.rng.next_u64() as u32,
            self.rng.next_u64() as u32,
        );
        c.rtt_ns = self.rng.range(70, 80) * MS;
        self.sessions += 1;
        let seed = self.rng.next_u64();
        self.tcp(&mut t, c.handshake());
        let ch = appproto::tls_client_hello(&ClientHello {
            sni: Some(BEACON_NAME),
            seed,
            pq_key_share: false,
            alpn: &["http/1.1"],
        });
        self.tcp(&mut t, c.send(true, &ch));
        self.tcp(
            &mut t,
            c.send(false, &appproto::tls_server_flight(seed, 1900)),
        );
        self.tcp(&mut t, c.send(true, &appproto::tls_app_data(seed + 1, 380)));
        self.tcp(
            &mut t,
            c.send(false, &appproto::tls_app_data(seed + 2, 160)),
        );
        t += 2 * MS;
        self.tcp(&mut t, c.close(true));
    }

    fn ntp(&mut self, mut t: u64, client: IpAddr) {
        self.resolve(&mut t, client, NTP_NAME, &[], NTP_ADDRS, 150, false);
        let server = IpAddr::V4((*self.rng.pick(NTP_ADDRS)).into());
        let sport = 1024 + self.rng.below(60000) as u16;
        let seed = self.rng.next_u64();
        self.push_ip(
            t,
            &pkt::udp_packet(
                client,
                sport,
                server,
                123,
                seed as u16,
                &appproto::ntp(false, seed),
            ),
        );
        t += self.rng.range(9, 40) * MS;
        self.push_ip(
            t,
            &pkt::udp_packet(
                server,
                123,
                client,
                sport,
                (seed >> 16) as u16,
                &appproto::ntp(true, seed + 1),
            ),
        );
        self.sessions += 1;
    }
}

/// Builds the demo capture in memory (it is small) and writes it sorted by time.
pub fn demo_frames(seed: u64) -> (Vec<(u64, Vec<u8>)>, GenStats) {
    let mut d = Demo {
        rng: Rng::new(seed),
        frames: Vec::new(),
        seq: 0,
        dns_id: 0x1234,
        cache: HashMap::new(),
        ports: HashMap::new(),
        sessions: 0,
        dns_packets: 0,
    };
    let start = BASE_TS_NS;
    let end = start + DEMO_LEN;
    let clients: Vec<IpAddr> = vec![
        ipv4(10, 0, 0, 21),
        ipv4(10, 0, 0, 22),
        ipv4(10, 0, 0, 23),
        ipv4(10, 0, 0, 24),
        ipv4(10, 0, 0, 25),
        ipv4(192, 168, 10, 31),
        ipv4(192, 168, 10, 32),
    ];
    let weights: Vec<u64> = SITES.iter().map(|s| s.weight).collect();
    for &c in &clients {
        // Browsing: bursts of one to three sites, a few minutes apart.
        let mut t = start + d.rng.below(60) * SEC;
        while t < end {
            let n = 1 + d.rng.below(3);
            for _ in 0..n {
                let i = d.rng.weighted(&weights);
                d.web(t, c, i);
                t += d.rng.range(2, 20) * SEC;
            }
            if d.rng.one_in(1, 6) {
                let typo = *d.rng.pick(TYPOS);
                let mut tt = t;
                d.nxdomain(&mut tt, c, typo);
            }
            t += d.rng.range(120, 540) * SEC;
        }
        // NTP every 1024 s.
        let mut t = start + d.rng.below(300) * SEC;
        while t < end {
            d.ntp(t, c);
            t += 1024 * SEC;
        }
        // WPAD lookups every ~10 minutes (Windows), answered NXDOMAIN.
        let mut t = start + d.rng.below(600) * SEC;
        while t < end {
            let mut tt = t;
            d.nxdomain(&mut tt, c, "wpad.corp.example");
            t += d.rng.range(540, 660) * SEC;
        }
    }

    // The periodic callback: every 60 s ± 2 s, plus a burst of NXDOMAINs at ~35 min.
    let bot = ipv4(192, 168, 10, 45);
    let mut t = start + 17 * SEC;
    while t < end {
        d.beacon(t, bot);
        t += 58 * SEC + d.rng.below(4 * SEC);
    }
    let mut t = start + 35 * 60 * SEC;
    for _ in 0..14 {
        let len = d.rng.range(10, 16) as usize;
        let name: String = (0..len)
            .map(|_| (b'a' + d.rng.below(26) as u8) as char)
            .collect();
        let mut tt = t;
        d.nxdomain(&mut tt, bot, &format!("{name}.example"));
        t += d.rng.range(300, 2000) * MS;
    }

    // Monitoring pings to the gateway every minute; a dead printer port (S0) and a closed
    // RDP port (REJ) now and then.
    let mon = ipv4(10, 0, 0, 5);
    let gw = ipv4(10, 0, 0, 1);
    let mut t = start + 5 * SEC;
    let mut seq = 0u16;
    while t < end {
        seq += 1;
        let e = pkt::icmpv4_echo(false, 0x4d4f, seq, &[0x55; 56]);
        d.push_ip(t, &pkt::ip_packet(mon, gw, pkt::PROTO_ICMP, seq, &e));
        let e = pkt::icmpv4_echo(true, 0x4d4f, seq, &[0x55; 56]);
        d.push_ip(
            t + 400 * US,
            &pkt::ip_packet(gw, mon, pkt::PROTO_ICMP, seq ^ 0xff00, &e),
        );
        t += 60 * SEC;
    }
    let printer = (ipv4(10, 0, 0, 40), 9100);
    let mut t = start + 200 * SEC;
    while t < end {
        let c = ipv4(10, 0, 0, 24);
        let p = d.port(c);
        let mut conn = TcpConn::new((c, p), printer, d.rng.next_u64() as u32, 0);
        let mut tt = t;
        let s = conn.syn();
        d.tcp(&mut tt, vec![s]);
        for back in [1u64, 2, 4] {
            let s = conn.syn_retransmit(back * SEC);
            d.tcp(&mut tt, vec![s]);
        }
        d.sessions += 1;
        t += d.rng.range(500, 800) * SEC;
    }
    for k in 0..3u64 {
        let c = ipv4(10, 0, 0, 22);
        let p = d.port(c);
        let mut conn = TcpConn::new(
            (c, p),
            (ipv4(10, 0, 0, 10), 3389),
            d.rng.next_u64() as u32,
            0,
        );
        let mut tt = start + (900 + k * 1000) * SEC;
        let s = vec![conn.syn(), conn.reject()];
        d.tcp(&mut tt, s);
        d.sessions += 1;
    }

    d.frames.retain(|f| f.0 < end);
    d.frames.sort_by_key(|f| (f.0, f.1));
    let stats = GenStats {
        packets: d.frames.len() as u64,
        first_ts: d.frames.first().map(|f| f.0).unwrap_or(0),
        last_ts: d.frames.last().map(|f| f.0).unwrap_or(0),
        dns_packets: d.dns_packets,
        sessions: d.sessions,
        ..Default::default()
    };
    (
        d.frames.into_iter().map(|(t, _, f)| (t, f)).collect(),
        stats,
    )
}

/// Writes the demo capture (Ethernet, microsecond pcap).
pub fn write_demo(path: &Path, seed: u64) -> io::Result<GenStats> {
    let (frames, mut st) = demo_frames(seed);
    let mut w = PcapWriter::new(
        BufWriter::new(File::create(path)?),
        LinkType::Ethernet,
        TsResolution::Micro,
        65535,
    )?;
    for (t, f) in &frames {
        w.write(*t, f, None)?;
    }
    st.file_bytes = w.bytes();
    w.into_inner()?;
    Ok(st)
}

// ---------------------------------------------------------------------------------------------
// Bench: many hosts, heavy-tailed TCP, ~20 % DNS packets, ~10 % VLAN-tagged frames.

enum Kind {
    /// Pre-built packets with their delays.
    Fixed(VecDeque<(u64, Vec<u8>)>),
    Tcp(Box<TcpSess>),
}

struct TcpSess {
    conn: TcpConn,
    phase: u8,
    request: Vec<u8>,
    resp_left: u64,
    since_ack: u32,
    gap_ns: u64,
    rst: bool,
    pending: VecDeque<Seg>,
}

struct Sess {
    kind: Kind,
    vlans: Vec<Vlan>,
    dns: bool,
}

struct Bench {
    rng: Rng,
    payload: Vec<u8>,
    names: Vec<String>,
    total: u64,
    dns: u64,
    vlan: u64,
    sessions: u64,
}

fn public_ip(i: u64) -> IpAddr {
    // Spread indices over unicast space avoiding private, loopback and reserved blocks.
    let mut h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    loop {
        let a = (h >> 24) as u32;
        let o = a.to_be_bytes();
        let bad = matches!(o[0], 0 | 10 | 100 | 127 | 169 | 172 | 192 | 198 | 224..=255);
        if !bad {
            return ipv4(o[0], o[1], o[2], o[3].max(1));
        }
        h = h.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(1);
    }
}

impl Bench {
    fn client(&mut self, v6: bool) -> IpAddr {
        let i = self.rng.below(20_000);
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0xbe,
                (i >> 8) as u16,
                0,
                0,
                0,
                0,
                (i & 0xff) as u16 + 1,
            ))
        } else {
            ipv4(
                10,
                1 + (i / 65_024) as u8,
                ((i / 254) % 256) as u8,
                1 + (i % 254) as u8,
            )
        }
    }

    fn server(&mut self, v6: bool) -> IpAddr {
        // Skewed popularity over 50 000 servers.
        let u = self.rng.unit();
        let i = (50_000.0 * u * u * u) as u64;
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0xbe,
                (i >> 16) as u16,
                0,
                0,
                0,
                (i & 0xffff) as u16 + 1,
            ))
        } else {
            public_ip(i)
        }
    }

    fn data(&self, off: u64, n: usize) -> &[u8] {
        let o = (off as usize) % (self.payload.len() - n);
        &self.payload[o..o + n]
    }

    fn new_session(&mut self) -> Sess {
        self.sessions += 1;
        let dns = self.dns * 5 < self.total || (self.total == 0 && self.rng.one_in(1, 5));
        let tag = self.vlan * 10 < self.total;
        let vlans = if tag {
            match self.rng.below(10) {
                0 => vec![Vlan::qinq(100), Vlan::dot1q(10 + self.rng.below(4) as u16)],
                n => vec![Vlan::dot1q(
                    [10, 20, 30, 40, 50, 60, 70, 80, 90][n as usize - 1],
                )],
            }
        } else {
            vec![]
        };
        let v6 = self.rng.one_in(1, 10);
        let client = self.client(v6);
        if dns {
            let resolver = if v6 {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0xbe, 0, 0, 0, 0, 0, 0x53))
            } else {
                ipv4(10, 0, 0, 53 + self.rng.below(3) as u8)
            };
            let name =
                self.names[(self.names.len() as f64 * self.rng.unit().powi(2)) as usize].clone();
            let qt = *self.rng.pick(&[
                rtype::A,
                rtype::A,
                rtype::A,
                rtype::AAAA,
                rtype::AAAA,
                rtype::HTTPS,
            ]);
            let q = DnsMsg::query(self.rng.below(65536) as u16, &name, qt, true);
            let sport = 1024 + self.rng.below(64000) as u16;
            let mut pk = VecDeque::new();
            pk.push_back((
                0,
                pkt::udp_packet(
                    client,
                    sport,
                    resolver,
                    53,
                    self.rng.below(65536) as u16,
                    &q.encode(),
                ),
            ));
            if !self.rng.one_in(1, 50) {
                let r = if self.rng.one_in(1, 20) {
                    DnsMsg::response(&q, rcode::NXDOMAIN, vec![])
                        .with_authority(vec![soa("example", 900)])
                } else {
                    let n = 1 + self.rng.below(4);
                    let mut answers = Vec::new();
                    let mut owner = name.clone();
                    if self.rng.one_in(1, 3) {
                        let cn = format!(
                            "edge{}.cdn{}.example",
                            self.rng.below(100),
                            self.rng.below(20)
                        );
                        answers.push(Rr::new(&owner, 300, RData::Cname(cn.clone())));
                        owner = cn;
                    }
                    for _ in 0..n {
                        match qt {
                            // Answers point into the same server pool the TCP sessions
                            // use, as on a real network where most connections follow
                            // a lookup (popular servers get resolved early, the long
                            // tail may not be).
                            rtype::A => {
                                let ip = self.server(false);
                                if let IpAddr::V4(a) = ip {
                                    answers.push(Rr::new(&owner, 60, RData::A(a)));
                                }
                            }
                            rtype::AAAA => {
                                let ip = self.server(true);
                                if let IpAddr::V6(a) = ip {
                                    answers.push(Rr::new(&owner, 60, RData::Aaaa(a)));
                                }
                            }
                            _ => {}
                        }
                    }
                    DnsMsg::response(&q, rcode::NOERROR, answers)
                };
                let delay = (self.rng.exp(15.0) * MS as f64) as u64 + 200 * US;
                pk.push_back((
                    delay,
                    pkt::udp_packet(
                        resolver,
                        53,
                        client,
                        sport,
                        self.rng.below(65536) as u16,
                        &r.encode(),
                    ),
                ));
            }
            return Sess {
                kind: Kind::Fixed(pk),
                vlans,
                dns: true,
            };
        }
        let server = self.server(v6);
        let sport = 1024 + self.rng.below(64000) as u16;
        let roll = self.rng.below(100);
        if roll < 8 {
            // QUIC-like UDP 443 exchange.
            let n = 6 + self.rng.below(60);
            let mut pk = VecDeque::new();
            let sport2 = sport;
            for i in 0..n {
                let from_client = i % 3 == 0 || i < 2;
                let len = if i == 0 {
                    1250
                } else if from_client {
                    30 + self.rng.below(60) as usize
                } else {
                    1200 + self.rng.below(150) as usize
                };
                let off = self.rng.next_u64();
                let body = self.data(off, len).to_vec();
                let ip = if from_client {
                    pkt::udp_packet(client, sport2, server, 443, i as u16, &body)
                } else {
                    pkt::udp_packet(server, 443, client, sport2, i as u16, &body)
                };
                let delay = if i == 0 {
                    0
                } else {
                    (self.rng.exp(2.0) * MS as f64) as u64
                };
                pk.push_back((delay, ip));
            }
            return Sess {
                kind: Kind::Fixed(pk),
                vlans,
                dns: false,
            };
        }
        if roll < 11 {
            // NTP, ICMP echo.
            let mut pk = VecDeque::new();
            if roll < 10 || v6 {
                let seed = self.rng.next_u64();
                pk.push_back((
                    0,
                    pkt::udp_packet(client, sport, server, 123, 1, &appproto::ntp(false, seed)),
                ));
                pk.push_back((
                    20 * MS,
                    pkt::udp_packet(server, 123, client, sport, 2, &appproto::ntp(true, seed)),
                ));
            } else {
                let id = self.rng.below(65536) as u16;
                pk.push_back((
                    0,
                    pkt::ip_packet(
                        client,
                        server,
                        pkt::PROTO_ICMP,
                        id,
                        &pkt::icmpv4_echo(false, id, 1, &[0x61; 56]),
                    ),
                ));
                pk.push_back((
                    30 * MS,
                    pkt::ip_packet(
                        server,
                        client,
                        pkt::PROTO_ICMP,
                        !id,
                        &pkt::icmpv4_echo(true, id, 1, &[0x61; 56]),
                    ),
                ));
            }
            return Sess {
                kind: Kind::Fixed(pk),
                vlans,
                dns: false,
            };
        }
        // TCP.
        let port = *self
            .rng
            .pick(&[443u16, 443, 443, 443, 443, 443, 80, 80, 22, 8080, 993, 445]);
        let mut conn = TcpConn::new(
            (client, sport),
            (server, port),
            self.rng.next_u64() as u32,
            self.rng.next_u64() as u32,
        );
        conn.mss = 1460;
        conn.rtt_ns = (self.rng.exp(40.0) * MS as f64) as u64 + MS;
        let mut pending = VecDeque::new();
        if roll < 14 {
            // S0 (with retransmissions) or REJ.
            pending.push_back(conn.syn());
            if roll < 13 {
                pending.push_back(conn.syn_retransmit(SEC));
            } else {
                pending.push_back(conn.reject());
            }
            return Sess {
                kind: Kind::Tcp(Box::new(TcpSess {
                    conn,
                    phase: 9,
                    request: vec![],
                    resp_left: 0,
                    since_ack: 0,
                    gap_ns: 0,
                    rst: false,
                    pending,
                })),
                vlans,
                dns: false,
            };
        }
        let request = match port {
            443 => appproto::tls_client_hello(&ClientHello {
                sni: Some(&self.names[self.rng.below(self.names.len() as u64) as usize]),
                seed: self.rng.next_u64(),
                pq_key_share: self.rng.one_in(1, 3),
                alpn: &["h2", "http/1.1"],
            }),
            80 | 8080 => appproto::http_get(
                &self.names[self.rng.below(self.names.len() as u64) as usize],
                "/",
                "bench/1.0",
            ),
            _ => {
                let off = self.rng.next_u64();
                let n = 40 + self.rng.below(400) as usize;
                self.data(off, n).to_vec()
            }
        };
        let resp = self.rng.pareto(1200.0, 1.15).min(30e6) as u64;
        let mbit = 5.0 * 100f64.powf(self.rng.unit());
        let gap_ns = (1500.0 * 8.0 / mbit * 1e3) as u64;
        let rst = self.rng.one_in(1, 20);
        Sess {
            kind: Kind::Tcp(Box::new(TcpSess {
                conn,
                phase: 0,
                request,
                resp_left: resp,
                since_ack: 0,
                gap_ns,
                rst,
                pending,
            })),
            vlans,
            dns: false,
        }
    }

    /// Next packet of a session: (delay before it, IP packet), or None when done.
    fn step(&mut self, s: &mut Sess) -> Option<(u64, Vec<u8>)> {
        match &mut s.kind {
            Kind::Fixed(q) => q.pop_front(),
            Kind::Tcp(t) => loop {
                if let Some(seg) = t.pending.pop_front() {
                    return Some((seg.delay_ns, seg.ip));
                }
                match t.phase {
                    0 => {
                        t.pending.extend(t.conn.handshake());
                        t.phase = 1;
                    }
                    1 => {
                        let req = std::mem::take(&mut t.request);
                        t.pending.extend(t.conn.send(true, &req));
                        t.phase = 2;
                    }
                    2 => {
                        if t.resp_left == 0 {
                            t.phase = 3;
                            continue;
                        }
                        let n = t.resp_left.min(t.conn.mss as u64) as usize;
                        t.resp_left -= n as u64;
                        let off = self.rng.next_u64();
                        let flags = if t.resp_left == 0 { tcpflags::PSH } else { 0 };
                        let o = (off as usize) % (self.payload.len() - n);
                        let mut seg =
                            t.conn
                                .segment(false, flags | tcpflags::ACK, &self.payload[o..o + n]);
                        seg.delay_ns = t.gap_ns;
                        t.pending.push_back(seg);
                        t.since_ack += 1;
                        if t.since_ack == 2 || t.resp_left == 0 {
                            t.since_ack = 0;
                            let mut a = t.conn.ack(true);
                            a.delay_ns = 30 * US;
                            t.pending.push_back(a);
                        }
                    }
                    3 => {
                        if t.rst {
                            t.pending.push_back(t.conn.rst(true, true));
                        } else {
                            let cf = self.rng.one_in(1, 2);
                            t.pending.extend(t.conn.close(cf));
                        }
                        t.phase = 9;
                    }
                    _ => return None,
                }
            },
        }
    }
}

fn domain_names(rng: &mut Rng, n: usize) -> Vec<String> {
    const SYL: &[&str] = &[
        "ka", "zu", "mi", "no", "ta", "ri", "so", "ne", "lo", "vi", "pe", "da", "ex", "cor", "net",
        "web", "api", "cdn", "mail", "app",
    ];
    const HOSTS: &[&str] = &[
        "www", "api", "cdn", "static", "img", "login", "m", "app", "edge", "media",
    ];
    const TLDS: &[&str] = &[
        "example",
        "example.com",
        "example.net",
        "example.org",
        "test",
    ];
    (0..n)
        .map(|_| {
            let parts = 2 + rng.below(3);
            let dom: String = (0..parts).map(|_| *rng.pick(SYL)).collect();
            format!("{}.{dom}.{}", rng.pick(HOSTS), rng.pick(TLDS))
        })
        .collect()
}

/// Writes `packets` packets of benchmark traffic to `path`, streaming.
pub fn write_bench(path: &Path, packets: u64, seed: u64) -> io::Result<GenStats> {
    let out = BufWriter::with_capacity(4 << 20, File::create(path)?);
    write_bench_to(out, packets, seed)
}

/// [`write_bench`] into any writer.
pub fn write_bench_to<W: io::Write>(out: W, packets: u64, seed: u64) -> io::Result<GenStats> {
    let mut rng = Rng::new(seed);
    let names = domain_names(&mut rng, 20_000);
    let payload: Vec<u8> = (0..(1 << 20)).map(|_| rng.next_u64() as u8).collect();
    let mut b = Bench {
        rng,
        payload,
        names,
        total: 0,
        dns: 0,
        vlan: 0,
        sessions: 0,
    };
    let mut w = PcapWriter::new(out, LinkType::Ethernet, TsResolution::Micro, 65535)?;
    const SLOTS: usize = 1500;
    let mut slots: Vec<Sess> = Vec::with_capacity(SLOTS);
    let mut heap = BinaryHeap::new();
    let start = BASE_TS_NS;
    let mut now = start;
    for i in 0..SLOTS {
        slots.push(b.new_session());
        heap.push(Reverse((start + b.rng.below(50 * MS), i)));
    }
    let mut st = GenStats {
        first_ts: start,
        ..Default::default()
    };
    while b.total < packets {
        let Reverse((t, i)) = heap.pop().expect("slots never run out");
        now = now.max(t);
        let mut sess = std::mem::replace(
            &mut slots[i],
            Sess {
                kind: Kind::Fixed(VecDeque::new()),
                vlans: vec![],
                dns: false,
            },
        );
        match b.step(&mut sess) {
            Some((_, ip)) => {
                let s = pkt::summarize(&ip);
                let src_mac = pkt::mac_for(s.src);
                let dst_mac = pkt::mac_for(s.dst);
                let f = pkt::pad_ethernet(pkt::ethernet(
                    dst_mac,
                    src_mac,
                    &sess.vlans,
                    pkt::ethertype_of(&ip),
                    &ip,
                ));
                w.write(now, &f, None)?;
                b.total += 1;
                if sess.dns {
                    b.dns += 1;
                }
                if !sess.vlans.is_empty() {
                    b.vlan += 1;
                }
                // Peek the next delay by stepping lazily: schedule after the session's own gap.
                let next_delay = match &sess.kind {
                    Kind::Fixed(q) => q.front().map(|x| x.0),
                    Kind::Tcp(tc) => Some(
                        tc.pending
                            .front()
                            .map(|x| x.delay_ns)
                            .unwrap_or(tc.gap_ns.max(20 * US)),
                    ),
                };
                slots[i] = sess;
                heap.push(Reverse((now + next_delay.unwrap_or(0), i)));
            }
            None => {
                slots[i] = b.new_session();
                heap.push(Reverse((now + (b.rng.exp(2.0) * MS as f64) as u64, i)));
            }
        }
    }
    st.packets = b.total;
    st.last_ts = now;
    st.dns_packets = b.dns;
    st.vlan_packets = b.vlan;
    st.sessions = b.sessions;
    st.file_bytes = w.bytes();
    w.into_inner()?;
    Ok(st)
}

// ---------------------------------------------------------------------------------------------
// Flows: N concurrent long-lived TCP flows.

/// Writes `n` TCP flows: every flow's SYN in the first two seconds, then one client data
/// packet per flow (in a shuffled order) in the next two seconds; none is closed.
pub fn write_flows(path: &Path, n: u64, seed: u64) -> io::Result<GenStats> {
    let out = BufWriter::with_capacity(4 << 20, File::create(path)?);
    write_flows_to(out, n, seed)
}

/// [`write_flows`] into any writer.
pub fn write_flows_to<W: io::Write>(out: W, n: u64, seed: u64) -> io::Result<GenStats> {
    assert!(n < 150 * 65536, "at most ~9.8 M flows");
    let mut rng = Rng::new(seed);
    let mut w = PcapWriter::new(out, LinkType::Ethernet, TsResolution::Micro, 65535)?;
    let flow = |i: u64, rng_isn: u32| {
        let client = ipv4(10, 100 + (i >> 16) as u8, (i >> 8) as u8, i as u8);
        let server = ipv4(
            198,
            18 + ((i >> 8) & 1) as u8,
            (i % 251) as u8,
            1 + (i % 199) as u8,
        );
        let sport = 10_000 + ((i.wrapping_mul(2_654_435_761) >> 7) % 50_000) as u16;
        TcpConn::new(
            (client, sport),
            (server, 443),
            rng_isn,
            rng_isn ^ 0xdead_beef,
        )
    };
    let frame = |ip: &[u8]| {
        let s = pkt::summarize(ip);
        pkt::pad_ethernet(pkt::ethernet(
            pkt::mac_for(s.dst),
            pkt::mac_for(s.src),
            &[],
            pkt::ethertype_of(ip),
            ip,
        ))
    };
    let isn_seed = rng.next_u64();
    let isn = |i: u64| (i.wrapping_mul(0x9e37_79b9).wrapping_add(isn_seed)) as u32;
    let start = BASE_TS_NS;
    let step = (2 * SEC / n.max(1)).max(1);
    for i in 0..n {
        let mut c = flow(i, isn(i));
        w.write(start + i * step, &frame(&c.syn().ip), None)?;
    }
    // A full-period permutation of 0..n for the data packets.
    let mut mult = (n / 2 + rng.below(n / 4 + 1)) | 1;
    while gcd(mult, n) != 1 {
        mult += 2;
    }
    let off = rng.below(n.max(1));
    let body = b"long-lived flow keepalive payload";
    for k in 0..n {
        let i = (k.wrapping_mul(mult).wrapping_add(off)) % n;
        let mut c = flow(i, isn(i));
        c.syn();
        let d = c.segment(true, tcpflags::PSH | tcpflags::ACK, body);
        w.write(start + 2 * SEC + k * step, &frame(&d.ip), None)?;
    }
    let st = GenStats {
        packets: w.packets(),
        file_bytes: w.bytes(),
        first_ts: start,
        last_ts: start + 2 * SEC + n.saturating_sub(1) * step,
        sessions: n,
        ..Default::default()
    };
    w.into_inner()?;
    Ok(st)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_stable() {
        let mut r = Rng::new(1);
        let v: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut r2 = Rng::new(1);
        assert_eq!(v, (0..3).map(|_| r2.next_u64()).collect::<Vec<_>>());
        assert!((0..1000).all(|_| r.below(7) < 7));
    }

    #[test]
    fn bench_is_deterministic_and_mixed() {
        let mut a = Vec::new();
        let sa = write_bench_to(&mut a, 30_000, 7).unwrap();
        let mut b = Vec::new();
        write_bench_to(&mut b, 30_000, 7).unwrap();
        assert!(a == b);
        assert_eq!(sa.packets, 30_000);
        let dns = sa.dns_packets as f64 / sa.packets as f64;
        let vlan = sa.vlan_packets as f64 / sa.packets as f64;
        assert!((0.17..0.23).contains(&dns), "{sa}");
        assert!((0.08..0.12).contains(&vlan), "{sa}");
        let f = crate::pcapw::read_pcap(&a[..]).unwrap();
        assert_eq!(f.records.len(), 30_000);
        assert!(f.records.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    }

    #[test]
    fn flows_file_has_two_packets_per_flow() {
        let mut a = Vec::new();
        let st = write_flows_to(&mut a, 1000, 3).unwrap();
        assert_eq!(st.packets, 2000);
        let f = crate::pcapw::read_pcap(&a[..]).unwrap();
        let mut tuples = std::collections::HashSet::new();
        for r in &f.records[..1000] {
            let s = pkt::summarize(&r.data[14..]);
            assert_eq!(s.tcp_flags, tcpflags::SYN);
            tuples.insert((s.src, s.sport, s.dst, s.dport));
        }
        assert_eq!(tuples.len(), 1000);
        for r in &f.records[1000..] {
            let s = pkt::summarize(&r.data[14..]);
            assert!(tuples.contains(&(s.src, s.sport, s.dst, s.dport)));
        }
    }
}
