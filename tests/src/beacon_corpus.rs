//! Labeled beacon-evaluation corpus (`kizuki-gen beacon-eval`): a few office captures, each
//! mixing benign background with malicious periodic callbacks, plus `labels.json`
//! (format in [`crate::beacon_eval`]).
//!
//! One pcap per period band, because a 1 h beacon needs a long capture: `beacon-10s` (1.5 h),
//! `beacon-60s` (3 h), `beacon-300s` (8 h), `beacon-1h` (30 h). Longer captures get thinner
//! background (fewer bursts, a night lull) so every file stays well under 20 MB.
//!
//! Malicious sources (one infected host each, unique C2 name and IPs so prevalence never
//! hides them): the full matrix period × jitter {0, 10, 25, 50 %} × jitter kind {symmetric,
//! one-sided (Cobalt Strike: sleep × (1 − U[0, j]))} × missed beats {0, 10, 30 %}, as a new
//! TCP connection per beat (TLS with SNI, HTTP with Host, or raw TCP to an IP with no name);
//! keep-alives inside one long TLS session; two alternating periods; a C2 rotating over four
//! IPs behind one name (DNS lookup every beat, TTL 30); DNS-only periodic lookups answered
//! NXDOMAIN or 127.0.0.1 / 0.0.0.0; too-short beacons (4 beats, must not fire); and a few
//! beyond-spec ones (jitter 75 % or 50 % missed, reported but not scored).
//!
//! Benign background, each labelled with its class (periodic ones flagged): browsing bursts
//! with DNS lookups (`browsing`), NTP every 1024 s to a pool (`ntp`, periodic), OS update
//! checks hourly and AV signature checks every 30 min (`update_check` / `av_update`,
//! periodic, every host), chat websocket pings every 30 s inside one TLS session
//! (`chat_keepalive`, periodic, most hosts), telemetry with exponential gaps
//! (`poisson_poller`), audio streaming segments every ~6 s (`streaming`, quasi-periodic),
//! interactive SSH (`long_flow`), WPAD NXDOMAIN lookups about every 10 min (`wpad_nxdomain`,
//! periodic), typo NXDOMAINs (`dns_typo`) and an internal ICMP monitor every 60 s
//! (`monitoring`, periodic).

use crate::appproto::{self, ClientHello};
use crate::beacon_eval::{
    BeaconLabel, BenignLabel, Labels, PcapLabels, CLASS_BEYOND, CLASS_DETECTABLE, CLASS_TOO_SHORT,
    DET_BEACON, DET_DNS,
};
use crate::dnsmsg::{rcode, rtype, soa, DnsMsg, RData, Rr};
use crate::generate::Rng;
use crate::pcapw::{LinkType, PcapWriter, TsResolution};
use crate::pkt::{self, Mac};
use crate::scenario::BASE_TS_NS;
use crate::tcpconn::{Seg, TcpConn};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const US: u64 = 1_000;

/// Corpus size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// A reduced matrix (jitter {0, 25 % sym, 50 % one-sided} × missed {0, 30 %}) and fewer
    /// background hosts: a quick smoke run.
    Small,
    /// The whole matrix.
    Full,
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "small" => Ok(Scale::Small),
            "full" => Ok(Scale::Full),
            o => Err(format!("unknown scale {o:?} (small|full)")),
        }
    }
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::Full => "full",
        }
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const RESOLVER: [u8; 4] = [10, 0, 0, 53];
const GATEWAY: [u8; 4] = [10, 0, 0, 1];

fn internal(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(a) if a.octets()[0] == 10)
}

fn macs(src: IpAddr, dst: IpAddr) -> (Mac, Mac) {
    let gw = IpAddr::V4(GATEWAY.into());
    let s = if internal(src) {
        pkt::mac_for(src)
    } else {
        pkt::mac_for(gw)
    };
    let d = if internal(dst) {
        pkt::mac_for(dst)
    } else {
        pkt::mac_for(gw)
    };
    (s, d)
}

/// A benign web site.
struct Site {
    name: String,
    addrs: Vec<IpAddr>,
    ttl: u32,
    port: u16,
    weight: u64,
}

fn sites() -> Vec<Site> {
    const SUBS: &[&str] = &[
        "www", "static", "img", "api", "cdn", "login", "mail", "docs", "news", "maps", "video",
        "search", "shop", "assets", "fonts", "ads",
    ];
    const BRANDS: &[&str] = &[
        "example",
        "news-site",
        "shopmart",
        "searchco",
        "socialnet",
        "office",
        "cloudstore",
        "travelbook",
        "wikiref",
        "bankone",
        "weatherly",
        "sportsdaily",
    ];
    let mut r = Rng::new(0x5173);
    let mut v = Vec::new();
    // 30 server addresses shared by 60 names (CDNs host many names).
    let pool: Vec<IpAddr> = (0..30u8)
        .map(|i| match i % 3 {
            0 => v4(198, 51, 100, 10 + i),
            1 => v4(192, 0, 2, 10 + i),
            _ => v4(203, 0, 113, 10 + i),
        })
        .collect();
    for i in 0..60usize {
        let name = format!(
            "{}.{}.example",
            SUBS[i % SUBS.len()],
            BRANDS[(i / SUBS.len() + i * 7) % BRANDS.len()]
        );
        if v.iter().any(|s: &Site| s.name == name) {
            continue;
        }
        let n = 1 + r.below(3) as usize;
        let first = r.below(pool.len() as u64) as usize;
        let addrs = (0..n).map(|k| pool[(first + k) % pool.len()]).collect();
        v.push(Site {
            name,
            addrs,
            ttl: *r.pick(&[30u32, 60, 300, 300, 3600, 86400]),
            port: if r.one_in(1, 8) { 80 } else { 443 },
            // Zipf-ish popularity.
            weight: 1000 / (1 + i as u64),
        });
    }
    v.push(Site {
        name: "wiki.corp.example".into(),
        addrs: vec![v4(10, 0, 0, 15)],
        ttl: 3600,
        port: 80,
        weight: 40,
    });
    v
}

const NTP_NAME: &str = "pool.ntp.example";
const NTP_ADDRS: [[u8; 4]; 4] = [
    [192, 0, 2, 123],
    [192, 0, 2, 124],
    [198, 51, 100, 123],
    [203, 0, 113, 123],
];
const UPDATE_NAME: &str = "update.os-vendor.example";
const UPDATE_ADDR: [u8; 4] = [203, 0, 113, 100];
const AV_NAME: &str = "sigs.av-vendor.example";
const AV_ADDR: [u8; 4] = [198, 51, 100, 101];
const CHAT_NAME: &str = "ws.chat.example";
const CHAT_ADDRS: [[u8; 4]; 2] = [[192, 0, 2, 90], [192, 0, 2, 91]];
const TELEMETRY_NAME: &str = "telemetry.appvendor.example";
const TELEMETRY_ADDR: [u8; 4] = [198, 51, 100, 140];
const STREAM_NAME: &str = "audio.stream.example";
const STREAM_ADDR: [u8; 4] = [203, 0, 113, 150];
const SSH_ADDR: [u8; 4] = [198, 51, 100, 22];
const WPAD: &str = "wpad.corp.example";
const TYPOS: &[&str] = &["www.exmaple.com", "githbu.example", "outlok.office.example"];

/// A benign pair: (class, src, name, dst port).
type PairKey = (String, IpAddr, Option<String>, Option<u16>);

/// Frame generator with per-client DNS cache and port allocation.
struct Gen {
    rng: Rng,
    frames: Vec<(u64, u32, Vec<u8>)>,
    seq: u32,
    end: u64,
    cache: HashMap<(IpAddr, String), u64>,
    ports: HashMap<IpAddr, u16>,
    /// (class, src, name, port) → (dst IPs, periodic).
    benign: BTreeMap<PairKey, (BTreeSet<IpAddr>, bool)>,
}

impl Gen {
    fn push_ip(&mut self, t: u64, ip: &[u8]) {
        if t >= self.end {
            return;
        }
        let s = pkt::summarize(ip);
        let (sm, dm) = macs(s.src, s.dst);
        let f = pkt::pad_ethernet(pkt::ethernet(dm, sm, &[], pkt::ethertype_of(ip), ip));
        self.seq += 1;
        self.frames.push((t, self.seq, f));
    }

    fn note(
        &mut self,
        class: &str,
        periodic: bool,
        src: IpAddr,
        dst: IpAddr,
        port: Option<u16>,
        name: Option<&str>,
    ) {
        let e = self
            .benign
            .entry((class.to_string(), src, name.map(str::to_string), port))
            .or_insert_with(|| (BTreeSet::new(), periodic));
        e.0.insert(dst);
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

    fn dns(&mut self, t: &mut u64, client: IpAddr, q: &DnsMsg, r: &DnsMsg) {
        let sport = 1024 + self.rng.below(64000) as u16;
        let res = IpAddr::V4(RESOLVER.into());
        let id = self.rng.below(65536) as u16;
        self.push_ip(
            *t,
            &pkt::udp_packet(client, sport, res, 53, id, &q.encode()),
        );
        *t += if self.rng.one_in(2, 3) {
            self.rng.range(300, 1500) * US
        } else {
            self.rng.range(12, 90) * MS
        };
        self.push_ip(
            *t,
            &pkt::udp_packet(res, 53, client, sport, id ^ 0x8000, &r.encode()),
        );
        *t += self.rng.range(1, 4) * MS;
    }

    /// A lookup answered with `addrs` unless the client's cache still holds the name.
    fn resolve(&mut self, t: &mut u64, client: IpAddr, name: &str, addrs: &[IpAddr], ttl: u32) {
        let key = (client, name.to_string());
        if self.cache.get(&key).is_some_and(|&exp| exp > *t) {
            return;
        }
        self.cache.insert(key, *t + ttl as u64 * SEC);
        let q = DnsMsg::query(self.rng.next_u64() as u16, name, rtype::A, true);
        let answers = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(x) => Some(Rr::new(name, ttl, RData::A(*x))),
                IpAddr::V6(_) => None,
            })
            .collect();
        let r = DnsMsg::response(&q, rcode::NOERROR, answers);
        self.dns(t, client, &q, &r);
    }

    fn nxdomain(&mut self, t: &mut u64, client: IpAddr, name: &str) {
        let q = DnsMsg::query(self.rng.next_u64() as u16, name, rtype::A, true);
        let zone = name.split_once('.').map_or(name, |x| x.1).to_string();
        let r = DnsMsg::response(&q, rcode::NXDOMAIN, vec![]).with_authority(vec![soa(&zone, 60)]);
        self.dns(t, client, &q, &r);
    }

    fn conn(&mut self, client: IpAddr, server: IpAddr, port: u16) -> TcpConn {
        let sport = self.port(client);
        let mut c = TcpConn::new(
            (client, sport),
            (server, port),
            self.rng.next_u64() as u32,
            self.rng.next_u64() as u32,
        );
        c.rtt_ns = if internal(server) {
            self.rng.range(200, 900) * US
        } else {
            self.rng.range(8, 90) * MS
        };
        c
    }

    /// A whole short connection: handshake, TLS (SNI) / HTTP (Host) / raw bytes, close.
    #[allow(clippy::too_many_arguments)]
    fn session(
        &mut self,
        t: &mut u64,
        client: IpAddr,
        server: IpAddr,
        port: u16,
        app: App,
        name: Option<&str>,
        req: usize,
        resp: usize,
    ) {
        let mut c = self.conn(client, server, port);
        let seed = self.rng.next_u64();
        self.tcp(t, c.handshake());
        match app {
            App::Tls => {
                let ch = appproto::tls_client_hello(&ClientHello {
                    sni: name,
                    seed,
                    pq_key_share: false,
                    alpn: &["h2", "http/1.1"],
                });
                self.tcp(t, c.send(true, &ch));
                let fl = appproto::tls_server_flight(seed, 1000 + (seed % 600) as usize);
                self.tcp(t, c.send(false, &fl));
                self.tcp(t, c.send(true, &appproto::tls_app_data(seed + 1, req)));
                self.tcp(t, c.send(false, &appproto::tls_app_data(seed + 2, resp)));
            }
            App::Http => {
                let host = name.unwrap_or("198.18.0.1");
                let mut r = appproto::http_get(host, "/api/v2/status", "Mozilla/5.0");
                r.resize(r.len().max(req), b' ');
                self.tcp(t, c.send(true, &r));
                let body = appproto::http_response(200, "application/json", resp, seed);
                self.tcp(t, c.send(false, &body));
            }
            App::Raw => {
                let mut r = vec![0u8; req];
                for (i, b) in r.iter_mut().enumerate() {
                    *b = (seed >> (i % 8 * 8)) as u8 ^ i as u8;
                }
                self.tcp(t, c.send(true, &r));
                r.resize(resp, 0x5a);
                self.tcp(t, c.send(false, &r));
            }
        }
        *t += self.rng.range(2, 60) * MS;
        let cf = self.rng.one_in(2, 3);
        self.tcp(t, c.close(cf));
    }

    fn ntp(&mut self, t: u64, client: IpAddr, server: IpAddr) {
        let sport = 1024 + self.rng.below(60000) as u16;
        let seed = self.rng.next_u64();
        let q = pkt::udp_packet(
            client,
            sport,
            server,
            123,
            seed as u16,
            &appproto::ntp(false, seed),
        );
        self.push_ip(t, &q);
        let t2 = t + self.rng.range(9, 40) * MS;
        let r = pkt::udp_packet(
            server,
            123,
            client,
            sport,
            (seed >> 16) as u16,
            &appproto::ntp(true, seed + 1),
        );
        self.push_ip(t2, &r);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum App {
    Tls,
    Http,
    Raw,
}

/// How dense the benign background is.
struct Background {
    /// Mean seconds between browsing bursts of one host (daytime).
    burst_gap_s: f64,
    /// Night lull: bursts `night_factor` times rarer for 10 of every 24 hours.
    night_factor: f64,
    streaming_sessions: u32,
    ssh_sessions: u32,
    /// Share of hosts (in 1/100) running the chat client (pings every 30 s, days only).
    chat_pct: u64,
    /// Share of hosts (in 1/100) running the Poisson telemetry poller, and its mean gap range.
    poller_pct: u64,
    poller_mean_s: (f64, f64),
}

fn is_night(start: u64, t: u64) -> bool {
    let h = (t - start) / (3600 * SEC) % 24;
    (12..22).contains(&h)
}

/// Background for `hosts`; `light` hosts (the infected ones) browse 3× less and run no AV
/// check, chat client or telemetry poller, to keep the files small.
fn background(
    g: &mut Gen,
    hosts: &[(IpAddr, bool)],
    all_hosts: &[IpAddr],
    bg: &Background,
    start: u64,
) {
    let sites = sites();
    let weights: Vec<u64> = sites.iter().map(|s| s.weight).collect();
    let res = IpAddr::V4(RESOLVER.into());
    let ntp: Vec<IpAddr> = NTP_ADDRS.iter().map(|a| IpAddr::V4((*a).into())).collect();
    let chat: Vec<IpAddr> = CHAT_ADDRS.iter().map(|a| IpAddr::V4((*a).into())).collect();
    let end = g.end;
    for &(h, light) in hosts {
        // Browsing: bursts of 1–6 sites fetched within seconds of each other.
        let mut t = start + g.rng.below(300) * SEC;
        while t < end {
            let n = 1 + g.rng.below(6);
            let mut tb = t;
            for _ in 0..n {
                let s = &sites[g.rng.weighted(&weights)];
                let (name, addrs, ttl, port) = (s.name.clone(), s.addrs.clone(), s.ttl, s.port);
                let mut tt = tb;
                g.resolve(&mut tt, h, &name, &addrs, ttl);
                let dst = *g.rng.pick(&addrs);
                let sizes = [300u64, 600, 1000, 2000, 4000, 8000, 16000];
                let w = [30u64, 25, 20, 12, 8, 4, 1];
                let resp = sizes[g.rng.weighted(&w)] as usize;
                let req = 200 + g.rng.below(500) as usize;
                let app = if port == 443 { App::Tls } else { App::Http };
                g.session(&mut tt, h, dst, port, app, Some(&name), req, resp);
                g.note("browsing", false, h, dst, Some(port), Some(&name));
                tb += g.rng.range(50, 3000) * MS;
            }
            if g.rng.one_in(1, 10) {
                let typo = *g.rng.pick(TYPOS);
                let mut tt = tb;
                g.nxdomain(&mut tt, h, typo);
                g.note("dns_typo", false, h, res, Some(53), Some(typo));
            }
            let f = if is_night(start, t) {
                bg.night_factor
            } else {
                1.0
            } * if light { 3.0 } else { 1.0 };
            t += ((g.rng.exp(bg.burst_gap_s * f) + 5.0) * SEC as f64) as u64;
        }
        // NTP: one pool server, every 1024 s (chrony/ntpd steady-state poll).
        let server = *g.rng.pick(&ntp);
        let mut t = start + g.rng.below(1024) * SEC + g.rng.below(SEC);
        let mut first = true;
        while t < end {
            if first {
                let mut tt = t;
                g.resolve(&mut tt, h, NTP_NAME, &ntp, 150);
                g.note("ntp", true, h, res, Some(53), Some(NTP_NAME));
                first = false;
            }
            g.ntp(t, h, server);
            g.note("ntp", true, h, server, Some(123), Some(NTP_NAME));
            t += 1024 * SEC + g.rng.below(20 * MS);
        }
        // OS update check hourly ± 5 % (plain HTTP metadata check), AV signatures every
        // 2 h ± 2 % (TLS).
        for (class, name, addr, period, jit, port, app) in [
            (
                "update_check",
                UPDATE_NAME,
                UPDATE_ADDR,
                3600.0,
                0.05,
                80,
                App::Http,
            ),
            ("av_update", AV_NAME, AV_ADDR, 7200.0, 0.02, 443, App::Tls),
        ] {
            if light && class == "av_update" {
                continue;
            }
            let dst = IpAddr::V4(addr.into());
            let mut t = start + (g.rng.unit() * period * SEC as f64) as u64;
            while t < end {
                let mut tt = t;
                g.resolve(&mut tt, h, name, &[dst], 300);
                let resp = 600 + g.rng.below(80) as usize;
                g.session(&mut tt, h, dst, port, app, Some(name), 200, resp);
                g.note(class, true, h, dst, Some(port), Some(name));
                t += (period * (1.0 + jit * (2.0 * g.rng.unit() - 1.0)) * SEC as f64) as u64;
            }
        }
        // Chat client: one websocket over TLS, ping every 30 s, a message now and then;
        // reconnects every few hours, off at night.
        if !light && g.rng.one_in(bg.chat_pct, 100) {
            let mut t = start + g.rng.below(600) * SEC;
            while t < end {
                let dst = *g.rng.pick(&chat);
                let mut tt = t;
                g.resolve(&mut tt, h, CHAT_NAME, &chat, 120);
                g.note("chat_keepalive", true, h, dst, Some(443), Some(CHAT_NAME));
                let mut c = g.conn(h, dst, 443);
                let seed = g.rng.next_u64();
                g.tcp(&mut tt, c.handshake());
                let ch = appproto::tls_client_hello(&ClientHello {
                    sni: Some(CHAT_NAME),
                    seed,
                    pq_key_share: false,
                    alpn: &["http/1.1"],
                });
                g.tcp(&mut tt, c.send(true, &ch));
                g.tcp(
                    &mut tt,
                    c.send(false, &appproto::tls_server_flight(seed, 1800)),
                );
                let life = ((2.0 + g.rng.unit() * 6.0) * 3600.0) as u64 * SEC;
                let mut stop = (t + life).min(end);
                // The laptop is closed for the night.
                if bg.night_factor > 1.0 {
                    let mut x = t;
                    while x < stop && !is_night(start, x) {
                        x += 600 * SEC;
                    }
                    stop = x.min(stop);
                }
                let mut tp = tt + 30 * SEC;
                while tp < stop {
                    let mut tk = tp;
                    if g.rng.one_in(1, 12) {
                        let n = 200 + g.rng.below(2000) as usize;
                        g.tcp(&mut tk, c.send(false, &appproto::tls_app_data(seed + 3, n)));
                    }
                    let ping = c.data_seg(true, &appproto::tls_app_data(seed + 4, 31));
                    let pong = c.data_seg(false, &appproto::tls_app_data(seed + 5, 31));
                    g.tcp(&mut tk, vec![ping, pong]);
                    tp += 30 * SEC + g.rng.below(40 * MS);
                }
                let mut tk = stop.min(tp);
                g.tcp(&mut tk, c.close(true));
                t = stop + g.rng.range(5, 60) * SEC;
                while t < end && bg.night_factor > 1.0 && is_night(start, t) {
                    t += 600 * SEC;
                }
            }
        }
        // Telemetry with exponential gaps (a Poisson process).
        if !light && g.rng.one_in(bg.poller_pct, 100) {
            let dst = IpAddr::V4(TELEMETRY_ADDR.into());
            let (lo, hi) = bg.poller_mean_s;
            let mean = lo + g.rng.unit() * (hi - lo);
            let mut t = start + (g.rng.exp(mean) * SEC as f64) as u64;
            while t < end {
                let mut tt = t;
                g.resolve(&mut tt, h, TELEMETRY_NAME, &[dst], 60);
                let req = 300 + g.rng.below(1500) as usize;
                g.session(
                    &mut tt,
                    h,
                    dst,
                    443,
                    App::Tls,
                    Some(TELEMETRY_NAME),
                    req,
                    200,
                );
                g.note(
                    "poisson_poller",
                    false,
                    h,
                    dst,
                    Some(443),
                    Some(TELEMETRY_NAME),
                );
                t += ((g.rng.exp(mean) + 0.5) * SEC as f64) as u64;
            }
        }
        // WPAD lookups (Windows hosts, 2 in 3) roughly every 10 min, NXDOMAIN.
        if g.rng.one_in(2, 3) {
            let mut t = start + g.rng.below(600) * SEC;
            while t < end {
                let mut tt = t;
                g.nxdomain(&mut tt, h, WPAD);
                g.note("wpad_nxdomain", true, h, res, Some(53), Some(WPAD));
                t += g.rng.range(540, 660) * SEC;
            }
        }
    }
    // Audio streaming: one long TLS session fetching a segment every ~6 s for 20–40 min.
    let span = (end - start) / SEC;
    for _ in 0..bg.streaming_sessions {
        let h = *g.rng.pick(all_hosts);
        let dst = IpAddr::V4(STREAM_ADDR.into());
        let mut t = start + g.rng.below(span.saturating_sub(2400).max(1)) * SEC;
        g.resolve(&mut t, h, STREAM_NAME, &[dst], 300);
        g.note("streaming", true, h, dst, Some(443), Some(STREAM_NAME));
        let mut c = g.conn(h, dst, 443);
        let seed = g.rng.next_u64();
        g.tcp(&mut t, c.handshake());
        let ch = appproto::tls_client_hello(&ClientHello {
            sni: Some(STREAM_NAME),
            seed,
            pq_key_share: true,
            alpn: &["h2"],
        });
        g.tcp(&mut t, c.send(true, &ch));
        g.tcp(
            &mut t,
            c.send(false, &appproto::tls_server_flight(seed, 2500)),
        );
        let stop = t + g.rng.range(1200, 2400) * SEC;
        while t < stop && t < end {
            let mut tk = t;
            g.tcp(&mut tk, c.send(true, &appproto::tls_app_data(seed + 1, 90)));
            let n = 2000 + g.rng.below(2000) as usize;
            g.tcp(&mut tk, c.send(false, &appproto::tls_app_data(seed + 2, n)));
            t += ((4.5 + 3.0 * g.rng.unit()) * SEC as f64) as u64;
        }
        g.tcp(&mut t, c.close(true));
    }
    // Interactive SSH: bursts of keystrokes with heavy-tailed think times, 1–2 h.
    for _ in 0..bg.ssh_sessions {
        let h = *g.rng.pick(all_hosts);
        let dst = IpAddr::V4(SSH_ADDR.into());
        let mut t = start + g.rng.below(span.saturating_sub(3600).max(1)) * SEC;
        g.note("long_flow", false, h, dst, Some(22), None);
        let mut c = g.conn(h, dst, 22);
        g.tcp(&mut t, c.handshake());
        g.tcp(
            &mut t,
            c.exchange(b"SSH-2.0-OpenSSH_9.6\r\n", b"SSH-2.0-OpenSSH_9.2\r\n"),
        );
        let stop = t + g.rng.range(3600, 7200) * SEC;
        while t < stop && t < end {
            let keys = 1 + g.rng.below(20);
            let mut tk = t;
            for _ in 0..keys {
                g.tcp(&mut tk, vec![c.data_seg(true, &[0u8; 36])]);
                g.tcp(&mut tk, vec![c.data_seg(false, &[0u8; 36])]);
                tk += g.rng.range(80, 400) * MS;
            }
            if g.rng.one_in(1, 5) {
                let n = 500 + g.rng.below(8000) as usize;
                g.tcp(&mut tk, c.send(false, &vec![0u8; n]));
            }
            t = tk + (g.rng.pareto(2.0, 1.2).min(600.0) * SEC as f64) as u64;
        }
        g.tcp(&mut t, c.close(true));
    }
    // Internal monitoring: ICMP echo to the gateway every 60 s.
    let mon = v4(10, 0, 0, 5);
    let gw = IpAddr::V4(GATEWAY.into());
    g.note("monitoring", true, mon, gw, None, None);
    let mut t = start + 5 * SEC;
    let mut seq = 0u16;
    while t < end {
        seq = seq.wrapping_add(1);
        let e = pkt::icmpv4_echo(false, 0x4d4f, seq, &[0x55; 56]);
        g.push_ip(t, &pkt::ip_packet(mon, gw, pkt::PROTO_ICMP, seq, &e));
        let e = pkt::icmpv4_echo(true, 0x4d4f, seq, &[0x55; 56]);
        g.push_ip(
            t + 400 * US,
            &pkt::ip_packet(gw, mon, pkt::PROTO_ICMP, seq ^ 0xff00, &e),
        );
        t += 60 * SEC;
    }
}

// ---------------------------------------------------------------------------------------------
// Beacons.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Conn(App),
    Keepalive,
    Rotating,
    Alternating,
    DnsNx,
    /// Answered with this sinkhole address.
    DnsSink([u8; 4]),
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Conn(App::Tls) => "tls",
            Kind::Conn(App::Http) => "http",
            Kind::Conn(App::Raw) => "raw",
            Kind::Keepalive => "keepalive",
            Kind::Rotating => "rotating",
            Kind::Alternating => "alternating",
            Kind::DnsNx => "dns_nxdomain",
            Kind::DnsSink(_) => "dns_sinkhole",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Jk {
    None,
    Sym,
    One,
}

impl Jk {
    fn label(self) -> &'static str {
        match self {
            Jk::None => "none",
            Jk::Sym => "symmetric",
            Jk::One => "one_sided",
        }
    }
}

#[derive(Clone, Debug)]
struct Spec {
    kind: Kind,
    periods: Vec<f64>,
    jitter: f64,
    jk: Jk,
    missed: f64,
    /// Beats to emit.
    beats: u32,
    class: &'static str,
}

fn spec(kind: Kind, p: f64, j: f64, jk: Jk, m: f64, beats: u32, class: &'static str) -> Spec {
    Spec {
        kind,
        periods: vec![p],
        jitter: j,
        jk,
        missed: m,
        beats,
        class,
    }
}

/// Slot gaps and which slots carry traffic.
fn schedule(r: &mut Rng, s: &Spec) -> (Vec<f64>, Vec<bool>) {
    let slots = ((s.beats as f64) / (1.0 - s.missed))
        .round()
        .max(s.beats as f64) as usize;
    let n_miss = slots - s.beats as usize;
    let mut on = vec![true; slots];
    // Missed slots never include the first or last one, so the span is as planned.
    let mut placed = 0;
    while placed < n_miss && slots > 2 {
        let k = 1 + r.below(slots as u64 - 2) as usize;
        if on[k] {
            on[k] = false;
            placed += 1;
        }
    }
    let gaps = (0..slots.saturating_sub(1))
        .map(|k| {
            let p = s.periods[k % s.periods.len()];
            match s.jk {
                Jk::None => p,
                Jk::Sym => p * (1.0 + s.jitter * (2.0 * r.unit() - 1.0)),
                Jk::One => p * (1.0 - s.jitter * r.unit()),
            }
        })
        .collect();
    (gaps, on)
}

const WORDS: &[&str] = &[
    "cdn",
    "sync",
    "update",
    "telemetry",
    "metrics",
    "static",
    "edge",
    "api",
    "img",
    "auth",
    "cloud",
    "srv",
    "data",
    "push",
    "msg",
    "status",
    "assets",
    "beacon",
    "health",
    "report",
];
const ZONES: &[&str] = &[
    "example",
    "example.net",
    "example.org",
    "test-cloud.example",
    "cdn-edge.example",
];

struct Ctx {
    /// Next C2 address (198.18.0.0/15, unique per beacon).
    next_c2: u32,
    /// Next infected host (10.20.0.0/16).
    next_host: u32,
    next_id: u32,
}

impl Ctx {
    fn c2(&mut self) -> IpAddr {
        self.next_c2 += 1;
        IpAddr::V4(Ipv4Addr::from(0xc612_0000u32 + self.next_c2 * 3))
    }
    fn host(&mut self) -> IpAddr {
        self.next_host += 1;
        let n = self.next_host;
        v4(10, 20, (n / 200) as u8, (n % 200 + 20) as u8)
    }
    fn name(&mut self, r: &mut Rng) -> String {
        self.next_id += 1;
        format!(
            "{}-{}{}.{}",
            r.pick(WORDS),
            r.pick(WORDS),
            self.next_id,
            r.pick(ZONES)
        )
    }
}

/// Emits one beacon into `g` on `src` starting at `t0`; returns its label.
fn emit_beacon(
    g: &mut Gen,
    cx: &mut Ctx,
    s: &Spec,
    src: IpAddr,
    t0: u64,
    tag: &str,
) -> BeaconLabel {
    let (gaps, on) = schedule(&mut g.rng, s);
    let res = IpAddr::V4(RESOLVER.into());
    let app = match s.kind {
        Kind::Conn(a) => a,
        _ => App::Tls,
    };
    let named = !matches!(s.kind, Kind::Conn(App::Raw));
    let name = named.then(|| cx.name(&mut g.rng));
    let n_ips = if s.kind == Kind::Rotating { 4 } else { 1 };
    let ips: Vec<IpAddr> = (0..n_ips).map(|_| cx.c2()).collect();
    let port = match s.kind {
        Kind::Conn(App::Http) => *g.rng.pick(&[80u16, 8080]),
        Kind::Conn(App::Raw) => *g.rng.pick(&[4444u16, 8081, 5222, 1337]),
        Kind::DnsNx | Kind::DnsSink(_) => 53,
        _ => *g.rng.pick(&[443u16, 443, 443, 8443]),
    };
    let dns_only = matches!(s.kind, Kind::DnsNx | Kind::DnsSink(_));
    // Implants send a nearly fixed check-in and get a fixed "no tasks" answer; now and then a
    // task makes the answer bigger.
    let req = 150 + g.rng.below(400) as usize;
    let resp = 60 + g.rng.below(300) as usize;
    let mut times = Vec::new();
    let mut t = t0;
    let mut ka: Option<(TcpConn, u64)> = None;
    let last_on = on.iter().rposition(|x| *x).unwrap_or(0);
    for (k, &present) in on.iter().enumerate() {
        if present && t < g.end {
            times.push(t);
            let mut tt = t;
            let nm = name.as_deref();
            let task = g.rng.one_in(1, 15);
            let rsp = if task {
                resp + 1000 + g.rng.below(5000) as usize
            } else {
                resp + g.rng.below(8) as usize
            };
            match s.kind {
                Kind::Conn(a) => {
                    if let Some(n) = nm {
                        g.resolve(&mut tt, src, n, &ips, 300);
                    }
                    g.session(&mut tt, src, ips[0], port, a, nm, req, rsp);
                }
                Kind::Alternating => {
                    g.resolve(&mut tt, src, nm.unwrap_or_default(), &ips, 300);
                    g.session(&mut tt, src, ips[0], port, app, nm, req, rsp);
                }
                Kind::Rotating => {
                    let ip = ips[k % ips.len()];
                    let n = nm.unwrap_or_default().to_string();
                    g.cache.remove(&(src, n.clone()));
                    g.resolve(&mut tt, src, &n, &[ip], 30);
                    g.session(&mut tt, src, ip, port, App::Tls, nm, req, rsp);
                }
                Kind::Keepalive => {
                    if ka.is_none() {
                        let n = nm.unwrap_or_default().to_string();
                        g.resolve(&mut tt, src, &n, &ips, 300);
                        let mut c = g.conn(src, ips[0], port);
                        let seed = g.rng.next_u64();
                        g.tcp(&mut tt, c.handshake());
                        let ch = appproto::tls_client_hello(&ClientHello {
                            sni: nm,
                            seed,
                            pq_key_share: false,
                            alpn: &["http/1.1"],
                        });
                        g.tcp(&mut tt, c.send(true, &ch));
                        g.tcp(
                            &mut tt,
                            c.send(false, &appproto::tls_server_flight(seed, 1700)),
                        );
                        ka = Some((c, seed));
                    } else if let Some((c, seed)) = ka.as_mut() {
                        let (small, rs) = (40 + (*seed % 40) as usize, 30 + (*seed % 20) as usize);
                        let rs = if task { rs + 1500 } else { rs };
                        let a = c.send(true, &appproto::tls_app_data(*seed + k as u64, small));
                        let b = c.send(false, &appproto::tls_app_data(*seed + 7, rs));
                        g.tcp(&mut tt, a);
                        g.tcp(&mut tt, b);
                    }
                }
                Kind::DnsNx => {
                    g.nxdomain(&mut tt, src, nm.unwrap_or_default());
                }
                Kind::DnsSink(a) => {
                    let n = nm.unwrap_or_default();
                    let q = DnsMsg::query(g.rng.next_u64() as u16, n, rtype::A, true);
                    let r = DnsMsg::response(
                        &q,
                        rcode::NOERROR,
                        vec![Rr::new(n, 60, RData::A(a.into()))],
                    );
                    g.dns(&mut tt, src, &q, &r);
                }
            }
            if k == last_on {
                if let Some((mut c, _)) = ka.take() {
                    tt += 50 * MS;
                    g.tcp(&mut tt, c.close(true));
                }
            }
        }
        if let Some(gap) = gaps.get(k) {
            t += (gap * SEC as f64) as u64;
        }
    }
    let slots = on.len() as u32;
    let span: f64 = gaps.iter().sum();
    let periods_tag = if s.periods.len() > 1 {
        "alt".to_string()
    } else {
        period_class(s.periods[0])
    };
    let id = format!(
        "{}/{}/j{}-{}/m{}{}",
        periods_tag,
        s.kind.label(),
        (s.jitter * 100.0).round(),
        s.jk.label(),
        (s.missed * 100.0).round(),
        tag
    );
    let to_s = |t: u64| t as f64 / SEC as f64;
    BeaconLabel {
        id,
        kind: s.kind.label().into(),
        period_class: periods_tag,
        periods_s: s.periods.clone(),
        mean_gap_s: if gaps.is_empty() {
            s.periods[0]
        } else {
            span / gaps.len() as f64
        },
        jitter: s.jitter,
        jitter_kind: s.jk.label().into(),
        missed: s.missed,
        beats: times.len() as u32,
        slots,
        first_ts: times.first().map_or(0.0, |t| to_s(*t)),
        last_ts: times.last().map_or(0.0, |t| to_s(*t)),
        src_ip: src.to_string(),
        dst_ips: if dns_only {
            vec![res.to_string()]
        } else {
            ips.iter().map(|i| i.to_string()).collect()
        },
        dst_port: port,
        proto: if dns_only { "UDP" } else { "TCP" }.into(),
        name,
        expected_detector: match s.kind {
            Kind::DnsNx | Kind::DnsSink(_) => DET_DNS,
            _ => DET_BEACON,
        }
        .into(),
        class: s.class.into(),
    }
}

fn period_class(p: f64) -> String {
    if p >= 3600.0 {
        format!("{}h", (p / 3600.0).round())
    } else {
        format!("{}s", p.round())
    }
}

/// Expected span (s) of a spec, for placing it inside the capture.
fn est_span(s: &Spec) -> f64 {
    let slots = (s.beats as f64 / (1.0 - s.missed)).round();
    let mean_p: f64 = s.periods.iter().sum::<f64>() / s.periods.len() as f64;
    let stretch = match s.jk {
        Jk::Sym => 1.0 + s.jitter / 2.0,
        _ => 1.0,
    };
    slots * mean_p * stretch
}

/// One pcap's plan.
struct Plan {
    file: &'static str,
    duration_s: u64,
    benign_hosts: u32,
    bg: Background,
    specs: Vec<Spec>,
}

fn matrix(scale: Scale, p: f64, beats: (u32, u32), r: &mut Rng) -> Vec<Spec> {
    let jit: Vec<(f64, Jk)> = match scale {
        Scale::Full => vec![
            (0.0, Jk::None),
            (0.1, Jk::Sym),
            (0.25, Jk::Sym),
            (0.5, Jk::Sym),
            (0.1, Jk::One),
            (0.25, Jk::One),
            (0.5, Jk::One),
        ],
        Scale::Small => vec![(0.0, Jk::None), (0.25, Jk::Sym), (0.5, Jk::One)],
    };
    let miss: &[f64] = match scale {
        Scale::Full => &[0.0, 0.1, 0.3],
        Scale::Small => &[0.0, 0.3],
    };
    let apps = [App::Tls, App::Tls, App::Http, App::Tls, App::Raw];
    let mut v = Vec::new();
    let mut i = 0;
    for &(j, jk) in &jit {
        for &m in miss {
            let app = apps[i % apps.len()];
            i += 1;
            let n = r.range(beats.0 as u64, beats.1 as u64) as u32;
            v.push(spec(Kind::Conn(app), p, j, jk, m, n, CLASS_DETECTABLE));
        }
    }
    v
}

fn plans(scale: Scale, r: &mut Rng) -> Vec<Plan> {
    let full = scale == Scale::Full;
    let d = CLASS_DETECTABLE;
    // Minimum beats per band (the maximum is fixed per band below).
    let (b10, b60, b300, b1h) = if full {
        (30, 20, 14, 12)
    } else {
        (20, 12, 12, 10)
    };
    let bg_hosts = |n: u32| if full { n } else { n / 3 };
    let mut p10 = matrix(scale, 10.0, (b10, 90), r);
    p10.extend([
        spec(Kind::Keepalive, 10.0, 0.0, Jk::None, 0.0, 60, d),
        spec(Kind::Keepalive, 10.0, 0.25, Jk::Sym, 0.1, 60, d),
        spec(Kind::Keepalive, 10.0, 0.5, Jk::One, 0.0, 60, d),
        spec(Kind::DnsNx, 10.0, 0.1, Jk::Sym, 0.0, 40, d),
        spec(
            Kind::Conn(App::Tls),
            10.0,
            0.0,
            Jk::None,
            0.0,
            4,
            CLASS_TOO_SHORT,
        ),
        spec(
            Kind::Conn(App::Tls),
            10.0,
            0.25,
            Jk::Sym,
            0.0,
            4,
            CLASS_TOO_SHORT,
        ),
        spec(
            Kind::Conn(App::Tls),
            10.0,
            0.75,
            Jk::Sym,
            0.0,
            60,
            CLASS_BEYOND,
        ),
        spec(
            Kind::Conn(App::Tls),
            10.0,
            0.25,
            Jk::Sym,
            0.5,
            40,
            CLASS_BEYOND,
        ),
    ]);
    let mut alt60 = spec(Kind::Alternating, 30.0, 0.1, Jk::Sym, 0.0, 40, d);
    alt60.periods = vec![30.0, 90.0];
    let mut alt60b = spec(Kind::Alternating, 45.0, 0.0, Jk::None, 0.1, 40, d);
    alt60b.periods = vec![45.0, 135.0];
    let mut p60 = matrix(scale, 60.0, (b60, 60), r);
    p60.extend([
        spec(Kind::Keepalive, 60.0, 0.0, Jk::None, 0.0, 40, d),
        spec(Kind::Keepalive, 60.0, 0.1, Jk::Sym, 0.1, 40, d),
        spec(Kind::Keepalive, 60.0, 0.5, Jk::Sym, 0.0, 40, d),
        alt60,
        alt60b,
        spec(Kind::Rotating, 60.0, 0.0, Jk::None, 0.0, 40, d),
        spec(Kind::Rotating, 60.0, 0.25, Jk::One, 0.1, 40, d),
        spec(Kind::DnsNx, 60.0, 0.0, Jk::None, 0.0, 30, d),
        spec(Kind::DnsNx, 60.0, 0.25, Jk::Sym, 0.1, 30, d),
        spec(
            Kind::DnsSink([127, 0, 0, 1]),
            60.0,
            0.0,
            Jk::None,
            0.0,
            30,
            d,
        ),
        spec(
            Kind::DnsSink([127, 0, 0, 1]),
            60.0,
            0.5,
            Jk::One,
            0.3,
            30,
            d,
        ),
        spec(
            Kind::Conn(App::Tls),
            60.0,
            0.0,
            Jk::None,
            0.0,
            4,
            CLASS_TOO_SHORT,
        ),
        spec(Kind::DnsNx, 60.0, 0.0, Jk::None, 0.0, 4, CLASS_TOO_SHORT),
        spec(
            Kind::Conn(App::Http),
            60.0,
            0.75,
            Jk::One,
            0.0,
            40,
            CLASS_BEYOND,
        ),
    ]);
    let mut alt300 = spec(Kind::Alternating, 120.0, 0.1, Jk::One, 0.0, 30, d);
    alt300.periods = vec![120.0, 480.0];
    let mut p300 = matrix(scale, 300.0, (b300, 40), r);
    p300.extend([
        alt300,
        spec(Kind::Rotating, 300.0, 0.1, Jk::Sym, 0.0, 24, d),
        spec(Kind::Rotating, 300.0, 0.5, Jk::Sym, 0.3, 24, d),
        spec(Kind::DnsNx, 300.0, 0.5, Jk::One, 0.0, 24, d),
        spec(Kind::DnsNx, 300.0, 0.25, Jk::Sym, 0.3, 24, d),
        spec(
            Kind::DnsSink([127, 0, 0, 1]),
            300.0,
            0.1,
            Jk::Sym,
            0.1,
            24,
            d,
        ),
        spec(
            Kind::DnsSink([0, 0, 0, 0]),
            300.0,
            0.25,
            Jk::One,
            0.0,
            24,
            d,
        ),
        spec(
            Kind::Conn(App::Tls),
            300.0,
            0.1,
            Jk::Sym,
            0.0,
            4,
            CLASS_TOO_SHORT,
        ),
        spec(
            Kind::DnsSink([127, 0, 0, 1]),
            300.0,
            0.0,
            Jk::None,
            0.0,
            4,
            CLASS_TOO_SHORT,
        ),
        spec(
            Kind::Conn(App::Tls),
            300.0,
            0.5,
            Jk::Sym,
            0.5,
            24,
            CLASS_BEYOND,
        ),
    ]);
    let mut p1h = matrix(scale, 3600.0, (b1h, 16), r);
    p1h.extend([
        spec(Kind::DnsNx, 3600.0, 0.1, Jk::Sym, 0.0, 14, d),
        spec(
            Kind::DnsSink([127, 0, 0, 1]),
            3600.0,
            0.25,
            Jk::One,
            0.1,
            14,
            d,
        ),
        spec(Kind::Rotating, 3600.0, 0.1, Jk::One, 0.0, 14, d),
        spec(
            Kind::Conn(App::Tls),
            3600.0,
            0.1,
            Jk::Sym,
            0.0,
            4,
            CLASS_TOO_SHORT,
        ),
        spec(
            Kind::Conn(App::Tls),
            3600.0,
            0.75,
            Jk::Sym,
            0.0,
            14,
            CLASS_BEYOND,
        ),
    ]);
    if !full {
        for v in [&mut p10, &mut p60, &mut p300, &mut p1h] {
            // Keep one of each special kind.
            let mut seen = BTreeSet::new();
            v.retain(|s| {
                matches!(s.kind, Kind::Conn(_)) && s.class == CLASS_DETECTABLE
                    || seen.insert((s.kind.label(), s.class))
            });
        }
    }
    vec![
        Plan {
            file: "beacon-10s.pcap",
            duration_s: 5400,
            benign_hosts: bg_hosts(30),
            bg: Background {
                burst_gap_s: 450.0,
                night_factor: 1.0,
                streaming_sessions: 1,
                ssh_sessions: 1,
                chat_pct: 75,
                poller_pct: 40,
                poller_mean_s: (120.0, 600.0),
            },
            specs: p10,
        },
        Plan {
            file: "beacon-60s.pcap",
            duration_s: 3 * 3600,
            benign_hosts: bg_hosts(30),
            bg: Background {
                burst_gap_s: 900.0,
                night_factor: 1.0,
                streaming_sessions: 1,
                ssh_sessions: 1,
                chat_pct: 60,
                poller_pct: 40,
                poller_mean_s: (180.0, 900.0),
            },
            specs: p60,
        },
        Plan {
            file: "beacon-300s.pcap",
            duration_s: 8 * 3600,
            benign_hosts: bg_hosts(24),
            bg: Background {
                burst_gap_s: 1800.0,
                night_factor: 4.0,
                streaming_sessions: 1,
                ssh_sessions: 1,
                chat_pct: 35,
                poller_pct: 30,
                poller_mean_s: (300.0, 1200.0),
            },
            specs: p300,
        },
        Plan {
            file: "beacon-1h.pcap",
            duration_s: 30 * 3600,
            benign_hosts: bg_hosts(15),
            bg: Background {
                burst_gap_s: 4500.0,
                night_factor: 4.0,
                streaming_sessions: 1,
                ssh_sessions: 1,
                chat_pct: 20,
                poller_pct: 20,
                poller_mean_s: (900.0, 2400.0),
            },
            specs: p1h,
        },
    ]
}

/// What one pcap got.
pub struct PcapStats {
    pub file: String,
    pub packets: u64,
    pub bytes: u64,
    pub beacons: usize,
    pub benign_pairs: usize,
    pub duration_s: u64,
}

/// Writes the corpus into `dir` (created) and `dir/labels.json`.
pub fn write_corpus(dir: &Path, seed: u64, scale: Scale) -> io::Result<Vec<PcapStats>> {
    std::fs::create_dir_all(dir)?;
    let mut r = Rng::new(seed ^ 0xbeac_0000);
    let plans = plans(scale, &mut r);
    let mut cx = Ctx {
        next_c2: 0,
        next_host: 0,
        next_id: 0,
    };
    let mut labels = Labels {
        version: 1,
        seed,
        scale: scale.name().into(),
        pcaps: vec![],
    };
    let mut stats = Vec::new();
    for (pi, plan) in plans.into_iter().enumerate() {
        let start = BASE_TS_NS;
        let end = start + plan.duration_s * SEC;
        let mut g = Gen {
            rng: Rng::new(seed.wrapping_add(0x1000 * (pi as u64 + 1))),
            frames: Vec::new(),
            seq: 0,
            end,
            cache: HashMap::new(),
            ports: HashMap::new(),
            benign: BTreeMap::new(),
        };
        let benign_hosts: Vec<IpAddr> = (0..plan.benign_hosts)
            .map(|i| v4(10, 0, 1 + (i / 200) as u8, (20 + i % 200) as u8))
            .collect();
        let mut beacon_labels = Vec::new();
        let mut infected = Vec::new();
        for (si, s) in plan.specs.iter().enumerate() {
            let src = cx.host();
            infected.push(src);
            let span = est_span(s) as u64 + 1;
            let room = plan.duration_s.saturating_sub(span + 120);
            let off = 60 + g.rng.below(room.max(1));
            let t0 = start + off * SEC + g.rng.below(SEC);
            let tag = format!("#{pi}.{si}");
            beacon_labels.push(emit_beacon(&mut g, &mut cx, s, src, t0, &tag));
        }
        // Infected hosts browse too (lightly): their benign pairs are labelled as well.
        let mut hosts: Vec<(IpAddr, bool)> = benign_hosts.iter().map(|h| (*h, false)).collect();
        hosts.extend(infected.iter().map(|h| (*h, true)));
        let all: Vec<IpAddr> = hosts.iter().map(|h| h.0).collect();
        background(&mut g, &hosts, &benign_hosts, &plan.bg, start);

        g.frames.sort_by_key(|f| (f.0, f.1));
        let path = dir.join(plan.file);
        let mut w = PcapWriter::new(
            BufWriter::with_capacity(1 << 20, File::create(&path)?),
            LinkType::Ethernet,
            TsResolution::Micro,
            65535,
        )?;
        for (t, _, f) in &g.frames {
            w.write(*t, f, None)?;
        }
        let (packets, bytes) = (w.packets(), w.bytes());
        w.into_inner()?;
        let benign: Vec<BenignLabel> = g
            .benign
            .iter()
            .map(|((class, src, name, port), (dsts, periodic))| BenignLabel {
                class: class.clone(),
                periodic: *periodic,
                src_ip: src.to_string(),
                dst_ips: dsts.iter().map(|d| d.to_string()).collect(),
                dst_port: *port,
                name: name.clone(),
            })
            .collect();
        stats.push(PcapStats {
            file: plan.file.into(),
            packets,
            bytes,
            beacons: beacon_labels.len(),
            benign_pairs: benign.len(),
            duration_s: plan.duration_s,
        });
        labels.pcaps.push(PcapLabels {
            file: plan.file.into(),
            start_ts: start as f64 / SEC as f64,
            duration_s: plan.duration_s as f64,
            packets,
            bytes,
            hosts: all.len() as u32,
            beacons: beacon_labels,
            benign,
        });
    }
    let js = serde_json::to_string_pretty(&labels).map_err(io::Error::other)?;
    std::fs::write(dir.join("labels.json"), js)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_corpus_is_deterministic_and_well_labelled() {
        let base = std::env::temp_dir().join(format!("kizuki-bc-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        write_corpus(&a, 42, Scale::Small).unwrap();
        write_corpus(&b, 42, Scale::Small).unwrap();
        let labels: Labels =
            serde_json::from_str(&std::fs::read_to_string(a.join("labels.json")).unwrap()).unwrap();
        assert_eq!(labels.pcaps.len(), 4);
        let mut ids = BTreeSet::new();
        for p in &labels.pcaps {
            let x = std::fs::read(a.join(&p.file)).unwrap();
            assert_eq!(x, std::fs::read(b.join(&p.file)).unwrap(), "{}", p.file);
            assert!(x.len() < 20_000_000);
            let end = p.start_ts + p.duration_s;
            for l in &p.beacons {
                assert!(ids.insert(l.id.clone()), "duplicate id {}", l.id);
                assert!(l.last_ts < end && l.first_ts >= p.start_ts, "{}", l.id);
                match l.class.as_str() {
                    CLASS_DETECTABLE => assert!(l.beats >= 10, "{} {}", l.id, l.beats),
                    CLASS_TOO_SHORT => assert_eq!(l.beats, 4, "{}", l.id),
                    _ => {}
                }
                // C2 destinations are never shared with benign pairs.
                for bl in &p.benign {
                    if l.expected_detector == DET_BEACON {
                        assert!(l.dst_ips.iter().all(|d| !bl.dst_ips.contains(d)));
                    }
                    assert!(l.name.is_none() || l.name != bl.name);
                }
            }
            let kinds: BTreeSet<&str> = p.beacons.iter().map(|l| l.kind.as_str()).collect();
            assert!(kinds.contains("tls"), "{kinds:?}");
        }
        assert_eq!(
            std::fs::read(a.join("labels.json")).unwrap(),
            std::fs::read(b.join("labels.json")).unwrap()
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn schedule_respects_missed_and_jitter() {
        let mut r = Rng::new(7);
        let s = spec(
            Kind::Conn(App::Tls),
            60.0,
            0.5,
            Jk::One,
            0.3,
            28,
            CLASS_DETECTABLE,
        );
        let (gaps, on) = schedule(&mut r, &s);
        assert_eq!(on.len(), 40);
        assert_eq!(on.iter().filter(|x| **x).count(), 28);
        assert!(on[0] && on[39]);
        assert!(gaps.iter().all(|g| (30.0..=60.0).contains(g)));
        let s = spec(
            Kind::Conn(App::Tls),
            10.0,
            0.25,
            Jk::Sym,
            0.0,
            50,
            CLASS_DETECTABLE,
        );
        let (gaps, on) = schedule(&mut r, &s);
        assert_eq!(on.len(), 50);
        assert!(gaps.iter().all(|g| (7.5..=12.5).contains(g)));
    }
}
