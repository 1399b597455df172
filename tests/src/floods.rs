//! Flood captures for the memory-bound tests (`kizuki-gen floods`, `make stress`,
//! `tests/tests/floods.rs`): millions of hostile packets with a small set of legitimate
//! flows and DNS transactions mixed in, whose records the sensor must still report.
//!
//! Kinds (flood packets every 10 µs of packet time, i.e. 100 kpps):
//! - `syn`: TCP SYNs from random sources (100.64.0.0/10, random ports) to two servers: every
//!   one a new flow, so the flow table fills and evicts.
//! - `water-torture`: random-subdomain queries (`<random>.victim.example`) from 65,536 bots
//!   with random ports to one resolver (10.53.0.53), a third answered NXDOMAIN: the DNS
//!   pending table and the flow table fill.
//! - `fragments`: IPv4/IPv6 first fragments never completed (random ids and sources), pairs
//!   of overlapping fragments with different bytes, and stray non-first fragments: the
//!   reassembly table fills and overlaps are counted.
//! - `mixed`: each flood packet drawn from the three above.
//!
//! Legitimate traffic (every kind, spread evenly over the capture): HTTP flows from
//! 10.1.0.0/16 (handshake, GET with a Host, response, FIN close), DNS A lookups from
//! 10.1.0.0/16 to the same resolver, and (fragments, mixed) DNS TXT responses large enough to
//! be IP-fragmented. [`Expected`] lists them; [`check_eve`] finds them in EVE output.
//!
//! Writing streams: memory stays small whatever the packet count.

use crate::appproto;
use crate::dnsmsg::{rcode, rtype, DnsMsg, RData, Rr};
use crate::generate::Rng;
use crate::pcapw::{LinkType, PcapWriter, TsResolution};
use crate::pkt::{self, tcpflags, Ipv4Fields, TcpFields};
use crate::scenario::BASE_TS_NS;
use crate::tcpconn::TcpConn;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Packet time between flood packets.
pub const FLOOD_GAP_NS: u64 = 10_000;
/// Packet time between the packets of one legitimate session.
const LEGIT_GAP_NS: u64 = 1_000_000;
/// The resolver every DNS query goes to.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 53, 0, 53);
/// Legitimate clients live in 10.1.0.0/16 (flood sources never do).
pub const LEGIT_PREFIX: &str = "10.1.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Syn,
    WaterTorture,
    Fragments,
    Mixed,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Syn, Kind::WaterTorture, Kind::Fragments, Kind::Mixed];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Syn => "syn",
            Kind::WaterTorture => "water-torture",
            Kind::Fragments => "fragments",
            Kind::Mixed => "mixed",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown flood kind {s:?} (syn|water-torture|fragments|mixed)"))
    }
}

/// A legitimate flow the sensor must report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpFlow {
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    pub proto: String,
    pub conn_state: String,
    pub server_name: String,
}

/// A legitimate DNS transaction the sensor must report (answered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpDns {
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub id: u16,
    pub rrname: String,
    pub rrtype: String,
    pub rcode: String,
    /// Prefix of the first answer's rdata.
    pub rdata_prefix: String,
    /// The response was IP-fragmented.
    pub fragmented: bool,
}

/// What a flood capture holds (written beside it as `<file>.expected.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Expected {
    pub kind: String,
    pub seed: u64,
    pub packets: u64,
    pub flood_packets: u64,
    pub legit_packets: u64,
    pub file_bytes: u64,
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
    pub flows: Vec<ExpFlow>,
    pub dns: Vec<ExpDns>,
}

/// Path of the expectations file for a capture.
pub fn expected_path(pcap: &Path) -> PathBuf {
    let mut s = pcap.as_os_str().to_owned();
    s.push(".expected.json");
    PathBuf::from(s)
}

fn eth(ip: &[u8]) -> Vec<u8> {
    let s = pkt::summarize(ip);
    pkt::ethernet(
        pkt::mac_for(s.dst),
        pkt::mac_for(s.src),
        &[],
        pkt::ethertype_of(ip),
        ip,
    )
}

fn v4(x: u32) -> Ipv4Addr {
    Ipv4Addr::from(x)
}

/// Random source in 100.64.0.0/10 (shared address space: never a legitimate client here).
fn flood_src(rng: &mut Rng) -> Ipv4Addr {
    v4(0x6440_0000 | (rng.next_u64() as u32 & 0x003f_ffff))
}

const LABEL_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

struct Flood {
    rng: Rng,
    kind: Kind,
    /// Packets queued by the last step (a query's response, an overlapping pair).
    queued: VecDeque<Vec<u8>>,
}

impl Flood {
    fn next(&mut self) -> Vec<u8> {
        if let Some(f) = self.queued.pop_front() {
            return f;
        }
        let kind = match self.kind {
            Kind::Mixed => {
                [Kind::Syn, Kind::WaterTorture, Kind::Fragments][self.rng.below(3) as usize]
            }
            k => k,
        };
        match kind {
            Kind::Syn => self.syn(),
            Kind::WaterTorture => self.water(),
            _ => self.fragment(),
        }
    }

    fn syn(&mut self) -> Vec<u8> {
        let src = IpAddr::V4(flood_src(&mut self.rng));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + self.rng.below(2) as u8));
        let f = TcpFields {
            sport: 1024 + self.rng.below(64_000) as u16,
            dport: if self.rng.one_in(1, 2) { 80 } else { 443 },
            seq: self.rng.next_u64() as u32,
            ack: 0,
            flags: tcpflags::SYN,
            window: 1024,
            options: vec![],
        };
        let seg = pkt::tcp_segment(src, dst, &f, &[]);
        eth(&pkt::ip_packet(
            src,
            dst,
            pkt::PROTO_TCP,
            self.rng.next_u64() as u16,
            &seg,
        ))
    }

    fn water(&mut self) -> Vec<u8> {
        let r = self.rng.next_u64();
        let bot = IpAddr::V4(Ipv4Addr::new(10, 66, (r >> 8) as u8, r as u8));
        let sport = 1024 + ((r >> 16) % 64_000) as u16;
        let id = (r >> 40) as u16;
        let n = 8 + self.rng.below(9) as usize;
        let label: String = (0..n)
            .map(|_| *self.rng.pick(LABEL_CHARS) as char)
            .collect();
        let name = format!("{label}.victim.example");
        let q = DnsMsg::query(id, &name, rtype::A, false);
        let res = IpAddr::V4(RESOLVER);
        if self.rng.one_in(1, 3) {
            let resp = DnsMsg::response(&q, rcode::NXDOMAIN, vec![]);
            self.queued.push_back(eth(&pkt::udp_packet(
                res,
                53,
                bot,
                sport,
                id ^ 0x5555,
                &resp.encode(),
            )));
        }
        eth(&pkt::udp_packet(bot, sport, res, 53, id, &q.encode()))
    }

    fn fragment(&mut self) -> Vec<u8> {
        let src = flood_src(&mut self.rng);
        let dst = Ipv4Addr::new(198, 51, 100, 20);
        let id = self.rng.next_u64() as u16;
        let mut data = [0u8; 48];
        for b in data.iter_mut() {
            *b = self.rng.next_u64() as u8;
        }
        match self.rng.below(8) {
            // Overlapping pair: [0, 48) then [24, 72) with other bytes; never completed.
            0 | 1 => {
                let second = Ipv4Fields {
                    id,
                    dont_fragment: false,
                    more_fragments: true,
                    frag_offset: 3,
                    ..Default::default()
                };
                let mut other = data;
                for b in other.iter_mut() {
                    *b ^= 0xa5;
                }
                self.queued
                    .push_back(eth(&pkt::ipv4(src, dst, pkt::PROTO_UDP, &second, &other)));
                self.first_fragment_v4(src, dst, id, &data)
            }
            // A stray middle fragment (its first never comes).
            2 => {
                let f = Ipv4Fields {
                    id,
                    dont_fragment: false,
                    more_fragments: true,
                    frag_offset: 1 + self.rng.below(1000) as u16,
                    ..Default::default()
                };
                eth(&pkt::ipv4(src, dst, pkt::PROTO_UDP, &f, &data))
            }
            // IPv6 first fragment.
            3 => {
                let s = Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0x66,
                    0,
                    0,
                    0,
                    (u32::from(src) >> 16) as u16,
                    u32::from(src) as u16,
                );
                let d = Ipv6Addr::new(0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 0x20);
                let mut fh = vec![pkt::PROTO_UDP, 0];
                fh.extend_from_slice(&1u16.to_be_bytes()); // offset 0, M = 1
                fh.extend_from_slice(&(self.rng.next_u64() as u32).to_be_bytes());
                fh.extend_from_slice(&data);
                eth(&pkt::ipv6(s, d, pkt::PROTO_IPV6_FRAG, 64, &fh))
            }
            _ => self.first_fragment_v4(src, dst, id, &data),
        }
    }

    fn first_fragment_v4(&self, src: Ipv4Addr, dst: Ipv4Addr, id: u16, data: &[u8]) -> Vec<u8> {
        let f = Ipv4Fields {
            id,
            dont_fragment: false,
            more_fragments: true,
            frag_offset: 0,
            ..Default::default()
        };
        // A UDP header claiming a 1,200-byte datagram, then random bytes.
        let mut d = data.to_vec();
        d[0..2].copy_from_slice(&5353u16.to_be_bytes());
        d[2..4].copy_from_slice(&9999u16.to_be_bytes());
        d[4..6].copy_from_slice(&1200u16.to_be_bytes());
        eth(&pkt::ipv4(src, dst, pkt::PROTO_UDP, &f, &d))
    }
}

/// One legitimate session: its frames, sent `LEGIT_GAP_NS` apart from `start`.
struct Session {
    start: u64,
    frames: Vec<Vec<u8>>,
}

fn legit_sessions(
    kind: Kind,
    rng: &mut Rng,
    span_ns: u64,
    n_flows: u64,
    n_dns: u64,
) -> (Vec<Session>, Vec<ExpFlow>, Vec<ExpDns>) {
    let n_frag = if matches!(kind, Kind::Fragments | Kind::Mixed) {
        (n_dns / 4).max(1)
    } else {
        0
    };
    let total = n_flows + n_dns + n_frag;
    let mut sessions = Vec::new();
    let mut flows = Vec::new();
    let mut dns = Vec::new();
    let resolver = IpAddr::V4(RESOLVER);
    for i in 0..total {
        // Evenly spread, first and last well inside the capture.
        let start = BASE_TS_NS + span_ns * (2 * i + 1) / (2 * total + 2);
        let client = IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8));
        let sport = 20_000 + (i % 40_000) as u16;
        if i < n_flows {
            let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80 + (i % 16) as u8));
            let host = format!("www.site{i}.legit.example");
            let mut c = TcpConn::new(
                (client, sport),
                (server, 80),
                rng.next_u64() as u32,
                rng.next_u64() as u32,
            );
            let mut segs = c.handshake();
            segs.extend(c.exchange(
                &appproto::http_get(&host, "/index.html", "kizuki-flood-test/1.0"),
                &appproto::http_response(200, "text/html", 600, i),
            ));
            segs.extend(c.close(true));
            sessions.push(Session {
                start,
                frames: segs.into_iter().map(|s| eth(&s.ip)).collect(),
            });
            flows.push(ExpFlow {
                src_ip: client.to_string(),
                src_port: sport,
                dest_ip: server.to_string(),
                dest_port: 80,
                proto: "TCP".into(),
                conn_state: "SF".into(),
                server_name: host,
            });
        } else {
            let fragmented = i >= n_flows + n_dns;
            let id = rng.next_u64() as u16;
            let (name, qtype) = if fragmented {
                (format!("txt{i}.legit.example"), rtype::TXT)
            } else {
                (format!("host{i}.legit.example"), rtype::A)
            };
            let q = DnsMsg::query(id, &name, qtype, fragmented);
            let (answer, prefix) = if fragmented {
                // ~2,600 bytes of TXT: two or three IPv4 fragments at 1,480.
                let parts: Vec<Vec<u8>> = (0..11)
                    .map(|k| {
                        let s = format!("v=legit{k:02};{}", "x".repeat(220));
                        s.into_bytes()
                    })
                    .collect();
                (
                    Rr::new(&name, 300, RData::Txt(parts)),
                    "v=legit00;".to_string(),
                )
            } else {
                let a = Ipv4Addr::new(203, 0, 113, (i % 250) as u8 + 1);
                (Rr::new(&name, 300, RData::A(a)), a.to_string())
            };
            let r = DnsMsg::response(&q, rcode::NOERROR, vec![answer]);
            let mut frames = vec![eth(&pkt::udp_packet(
                client,
                sport,
                resolver,
                53,
                id,
                &q.encode(),
            ))];
            let resp = pkt::udp_packet(resolver, 53, client, sport, id ^ 0x7777, &r.encode());
            if fragmented {
                let mut ip = resp;
                // Let it be fragmented: clear DF (fragment_ipv4 rebuilds the headers).
                ip[6] &= !0x40;
                for f in pkt::fragment_ipv4(&ip, 1480) {
                    frames.push(eth(&f));
                }
            } else {
                frames.push(eth(&resp));
            }
            sessions.push(Session { start, frames });
            dns.push(ExpDns {
                src_ip: client.to_string(),
                src_port: sport,
                dest_ip: RESOLVER.to_string(),
                id,
                rrname: name,
                rrtype: if fragmented { "TXT" } else { "A" }.into(),
                rcode: "NOERROR".into(),
                rdata_prefix: prefix,
                fragmented,
            });
        }
    }
    (sessions, flows, dns)
}

/// Writes a flood capture of about `packets` packets to `path` (+ `<path>.expected.json`).
pub fn write_flood(path: &Path, kind: Kind, packets: u64, seed: u64) -> io::Result<Expected> {
    let out = BufWriter::with_capacity(4 << 20, File::create(path)?);
    let exp = write_flood_to(out, kind, packets, seed)?;
    let f = File::create(expected_path(path))?;
    serde_json::to_writer_pretty(BufWriter::new(f), &exp)?;
    Ok(exp)
}

/// Legitimate flows and DNS lookups for a capture of `packets` packets: 1 per 20,000
/// packets each, at least 20 and at most 500.
pub fn legit_counts(packets: u64) -> (u64, u64) {
    let n = (packets / 20_000).clamp(20, 500);
    (n, n)
}

/// [`write_flood`] into any writer (no expectations file).
pub fn write_flood_to<W: Write>(
    out: W,
    kind: Kind,
    packets: u64,
    seed: u64,
) -> io::Result<Expected> {
    let mut rng = Rng::new(seed ^ 0xf100d);
    let span = packets * FLOOD_GAP_NS;
    let (nf, nd) = legit_counts(packets);
    let (sessions, flows, dns) = legit_sessions(kind, &mut rng, span, nf, nd);
    // Legitimate frames in time order (sessions never overlap: they are spread far apart
    // compared with their own length, so concatenation is ordered).
    let mut legit: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    for s in sessions {
        for (k, f) in s.frames.into_iter().enumerate() {
            legit.push_back((s.start + k as u64 * LEGIT_GAP_NS, f));
        }
    }
    let legit_total = legit.len() as u64;
    let mut flood = Flood {
        rng,
        kind,
        queued: VecDeque::new(),
    };
    let mut w = PcapWriter::new(out, LinkType::Ethernet, TsResolution::Micro, 65535)?;
    let flood_total = packets.saturating_sub(legit_total);
    let mut ts = BASE_TS_NS;
    for _ in 0..flood_total {
        while legit.front().is_some_and(|(t, _)| *t <= ts) {
            let (t, f) = legit.pop_front().expect("front");
            w.write(t, &pkt::pad_ethernet(f), None)?;
        }
        let f = flood.next();
        w.write(ts, &pkt::pad_ethernet(f), None)?;
        ts += FLOOD_GAP_NS;
    }
    let mut last = ts;
    for (t, f) in legit.drain(..) {
        last = t.max(last);
        w.write(t.max(ts), &pkt::pad_ethernet(f), None)?;
    }
    let exp = Expected {
        kind: kind.name().into(),
        seed,
        packets: w.packets(),
        flood_packets: flood_total,
        legit_packets: legit_total,
        file_bytes: w.bytes(),
        first_ts_ns: BASE_TS_NS,
        last_ts_ns: last,
        flows,
        dns,
    };
    w.into_inner()?;
    Ok(exp)
}

/// Reads EVE lines from `dir/eve.json*` (rotated and gzip-compressed files included) and
/// calls `f` with every line that names a legitimate client (cheap prefilter: the 5 GB of
/// flood records are not parsed).
pub fn for_each_legit_event(dir: &Path, mut f: impl FnMut(serde_json::Value)) -> io::Result<u64> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("eve"))
        })
        .collect();
    files.sort();
    let needle = format!("\"src_ip\":\"{LEGIT_PREFIX}");
    let mut lines = 0u64;
    for p in files {
        let file = File::open(&p)?;
        let r: Box<dyn Read> = if p.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut br = BufReader::with_capacity(1 << 20, r);
        let mut line = String::new();
        loop {
            line.clear();
            if br.read_line(&mut line)? == 0 {
                break;
            }
            lines += 1;
            if line.contains(&needle) {
                let v: serde_json::Value = serde_json::from_str(line.trim_end()).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
                })?;
                f(v);
            }
        }
    }
    Ok(lines)
}

/// Legitimate records found in the EVE output.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckResult {
    pub eve_lines: u64,
    pub flows_expected: usize,
    pub flows_found: usize,
    pub dns_expected: usize,
    pub dns_found: usize,
    pub missing: Vec<String>,
}

fn flow_matches(e: &serde_json::Value, x: &ExpFlow) -> bool {
    e["event_type"] == "flow"
        && e["src_ip"] == x.src_ip.as_str()
        && e["src_port"] == x.src_port
        && e["dest_ip"] == x.dest_ip.as_str()
        && e["dest_port"] == x.dest_port
        && e["proto"] == x.proto.as_str()
        && e["flow"]["conn_state"] == x.conn_state.as_str()
        && e["flow"]["server_name"] == x.server_name.as_str()
}

fn dns_matches(e: &serde_json::Value, x: &ExpDns) -> bool {
    let d = &e["dns"];
    e["event_type"] == "dns"
        && e["src_ip"] == x.src_ip.as_str()
        && e["src_port"] == x.src_port
        && e["dest_ip"] == x.dest_ip.as_str()
        && d["id"] == x.id
        && d["rrname"] == x.rrname.as_str()
        && d["rrtype"] == x.rrtype.as_str()
        && d["rcode"] == x.rcode.as_str()
        && d["answered"] == true
        && d["answers"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["rdata"].as_str())
            .is_some_and(|r| r.starts_with(&x.rdata_prefix))
}

/// Checks that every legitimate flow and DNS transaction of `exp` is in the EVE output of
/// `dir`.
pub fn check_eve(exp: &Expected, dir: &Path) -> io::Result<CheckResult> {
    let mut flow_seen = vec![false; exp.flows.len()];
    let mut dns_seen = vec![false; exp.dns.len()];
    let eve_lines = for_each_legit_event(dir, |e| {
        for (i, x) in exp.flows.iter().enumerate() {
            if !flow_seen[i] && flow_matches(&e, x) {
                flow_seen[i] = true;
            }
        }
        for (i, x) in exp.dns.iter().enumerate() {
            if !dns_seen[i] && dns_matches(&e, x) {
                dns_seen[i] = true;
            }
        }
    })?;
    let mut missing = Vec::new();
    for (x, s) in exp.flows.iter().zip(&flow_seen) {
        if !s {
            missing.push(format!(
                "flow {}:{} -> {}:{} ({})",
                x.src_ip, x.src_port, x.dest_ip, x.dest_port, x.server_name
            ));
        }
    }
    for (x, s) in exp.dns.iter().zip(&dns_seen) {
        if !s {
            missing.push(format!(
                "dns {}:{} id {} {} {}{}",
                x.src_ip,
                x.src_port,
                x.id,
                x.rrname,
                x.rrtype,
                if x.fragmented { " (fragmented)" } else { "" }
            ));
        }
    }
    Ok(CheckResult {
        eve_lines,
        flows_expected: exp.flows.len(),
        flows_found: flow_seen.iter().filter(|s| **s).count(),
        dns_expected: exp.dns.len(),
        dns_found: dns_seen.iter().filter(|s| **s).count(),
        missing,
    })
}

/// The counters a flood of `kind` must drive above zero, as (summary JSON pointer, label).
pub fn required_counters(kind: Kind) -> Vec<(&'static str, &'static str)> {
    let flows = ("/flows_evicted", "flows_evicted");
    let dns = ("/dns_pending_overflow", "dns_pending_overflow");
    let full = ("/decode_errors/frag_table_full", "frag_table_full");
    let overlap = ("/decode_errors/frag_overlap", "frag_overlap");
    match kind {
        Kind::Syn => vec![flows],
        Kind::WaterTorture => vec![flows, dns],
        Kind::Fragments => vec![full, overlap],
        Kind::Mixed => vec![flows, dns, full, overlap],
    }
}

/// `kizuki-gen floods ...` and `kizuki-gen floods-check ...` (args after the command).
pub fn cli(cmd: &str, args: &[String]) -> Result<(), String> {
    let mut kind = None;
    let mut packets = 10_000_000u64;
    let mut seed = crate::generate::DEFAULT_SEED;
    let mut out = None;
    let mut expected = None;
    let mut dir = None;
    let mut summary = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let num = |s: String| {
            s.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{a}: {e}"))
        };
        match a.as_str() {
            "--kind" => kind = Some(val()?.parse::<Kind>()?),
            "--packets" => packets = num(val()?)?,
            "--seed" => seed = num(val()?)?,
            "--out" | "-o" => out = Some(PathBuf::from(val()?)),
            "--expected" => expected = Some(PathBuf::from(val()?)),
            "--eve-dir" => dir = Some(PathBuf::from(val()?)),
            "--summary" => summary = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if cmd == "floods" {
        let kind = kind.ok_or("--kind is required")?;
        let out = out.ok_or("--out is required")?;
        let t0 = std::time::Instant::now();
        let e = write_flood(&out, kind, packets, seed)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        println!(
            "{}: {} {} packets ({} flood, {} legitimate: {} flows, {} dns), {:.1} MB in {:.1} s",
            out.display(),
            e.kind,
            e.packets,
            e.flood_packets,
            e.legit_packets,
            e.flows.len(),
            e.dns.len(),
            e.file_bytes as f64 / 1e6,
            t0.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    // floods-check: one JSON line with the findings; exit status 1 if something is missing.
    let expected = expected.ok_or("--expected is required")?;
    let dir = dir.ok_or("--eve-dir is required")?;
    let exp: Expected = serde_json::from_slice(
        &std::fs::read(&expected).map_err(|e| format!("{}: {e}", expected.display()))?,
    )
    .map_err(|e| format!("{}: {e}", expected.display()))?;
    let r = check_eve(&exp, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut problems = r.missing.clone();
    if let Some(s) = summary {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&s).map_err(|e| format!("{}: {e}", s.display()))?,
        )
        .map_err(|e| format!("{}: {e}", s.display()))?;
        let kind: Kind = exp.kind.parse()?;
        for (ptr, label) in required_counters(kind) {
            if v.pointer(ptr).and_then(|x| x.as_u64()).unwrap_or(0) == 0 {
                problems.push(format!("{label} not counted"));
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "eve_lines": r.eve_lines,
            "flows_expected": r.flows_expected,
            "flows_found": r.flows_found,
            "dns_expected": r.dns_expected,
            "dns_found": r.dns_found,
            "problems": problems,
        })
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s): {}",
            problems.len(),
            problems.join("; ")
        ))
    }
}
