//! `kizuki-fuzz-seeds PCAP_DIR OUT_DIR`: builds the seed corpus of every fuzz target from the
//! frames of `PCAP_DIR/*.pcap` (the repository's `pcaps/`), into `OUT_DIR/<target>/`, one file
//! per distinct input named by a 64-bit FNV-1a hash of its bytes (re-running is idempotent).
//!
//! - `decode`: every frame alone, plus runs of 16 consecutive frames (fragment reassembly,
//!   TCP streams); `demo.pcap` only contributes its first 300 frames.
//! - `dns`: UDP port-53 payloads, plus one segment script per DNS-over-TCP connection.
//! - `names`: client payloads that look like a TLS ClientHello or an HTTP request.
//! - `pcap_reader`: the first 4 KiB of each capture, a gzip copy of a small one and a
//!   hand-built pcapng with two interfaces of different link types (the pcap-file path).
//!
//! The total stays well under 1 MB.

use kizuki_fuzz::entry::{encode_decode_input, encode_dns_segment};
use sensor::capture::offline::OfflineSource;
use sensor::capture::{PacketSource, Poll};
use sensor::decode::{decode, Decoded, LinkType, Transport};
use sensor::proto::{http, tls};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const DEMO_FRAMES: usize = 300;
const RUN: usize = 16;
const PCAP_HEAD: usize = 4096;

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Out {
    dir: PathBuf,
    written: BTreeMap<&'static str, (usize, usize)>,
}

impl Out {
    fn put(&mut self, target: &'static str, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let d = self.dir.join(target);
        std::fs::create_dir_all(&d).expect("create seed dir");
        let p = d.join(format!("{:016x}", fnv(data)));
        if !p.exists() {
            std::fs::write(&p, data).expect("write seed");
            let e = self.written.entry(target).or_default();
            e.0 += 1;
            e.1 += data.len();
        }
    }
}

fn frames(path: &Path) -> Vec<(LinkType, Vec<u8>)> {
    let mut v = Vec::new();
    let Ok(mut src) = OfflineSource::open(&[path.to_path_buf()], "") else {
        return v;
    };
    loop {
        let mut f = |p: sensor::capture::RawPacket<'_>| v.push((p.link, p.data.to_vec()));
        if src.poll(&mut f) == Poll::End {
            break;
        }
    }
    v
}

type ConnKey = (IpAddr, u16, IpAddr, u16);

fn pcapng_two_ifaces() -> Vec<u8> {
    fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (12 + body.len()) as u32;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut v = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut v, 0x0a0d_0d0a, &shb);
    for (dlt, snap) in [(1u16, 65535u32), (101, 8192)] {
        let mut idb = Vec::new();
        idb.extend_from_slice(&dlt.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snap.to_le_bytes());
        // if_tsresol = 9 (nanoseconds), then opt_endofopt.
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        block(&mut v, 1, &idb);
    }
    // A raw IPv4/UDP DNS query on interface 1, an Ethernet frame on interface 0.
    let ip: Vec<u8> = vec![
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 53, 0x30, 0x39, 0, 53,
        0, 20, 0, 0, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
    ];
    let mut eth = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
    eth.extend_from_slice(&ip);
    for (iface, data, ts) in [(1u32, &ip, 1_000u64), (0, &eth, 2_000)] {
        let mut epb = Vec::new();
        epb.extend_from_slice(&iface.to_le_bytes());
        let ts = 1_700_000_000_000_000_000u64 + ts;
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        block(&mut v, 6, &epb);
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pcaps, out] = args.as_slice() else {
        eprintln!("usage: kizuki-fuzz-seeds PCAP_DIR OUT_DIR");
        std::process::exit(2);
    };
    let mut out = Out {
        dir: PathBuf::from(out),
        written: BTreeMap::new(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps)
        .expect("read pcap dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    let mut smallest: Option<Vec<u8>> = None;
    for path in &files {
        let raw = std::fs::read(path).expect("read pcap");
        out.put("pcap_reader", &raw[..raw.len().min(PCAP_HEAD)]);
        if smallest.as_ref().is_none_or(|s| raw.len() < s.len()) {
            smallest = Some(raw);
        }
        let mut fr = frames(path);
        if path.file_name().is_some_and(|n| n == "demo.pcap") {
            fr.truncate(DEMO_FRAMES);
        }
        for (link, f) in &fr {
            out.put("decode", &encode_decode_input(*link, &[f]));
        }
        for chunk in fr.chunks(RUN) {
            let link = chunk[0].0;
            let same: Vec<&[u8]> = chunk
                .iter()
                .filter(|(l, _)| *l == link)
                .map(|(_, f)| f.as_slice())
                .collect();
            out.put("decode", &encode_decode_input(link, &same));
        }
        let mut tcp_dns: BTreeMap<ConnKey, Vec<u8>> = BTreeMap::new();
        for (link, f) in &fr {
            let Decoded::Packet(p) = decode(*link, f) else {
                continue;
            };
            match p.transport {
                Transport::Udp(u) if u.sport == 53 || u.dport == 53 => {
                    out.put("dns", u.payload);
                }
                Transport::Tcp(t) if t.sport == 53 || t.dport == 53 => {
                    let (key, dir) = if t.dport == 53 {
                        ((p.src, t.sport, p.dst, t.dport), 0)
                    } else {
                        ((p.dst, t.dport, p.src, t.sport), 1)
                    };
                    if !t.payload.is_empty() {
                        encode_dns_segment(tcp_dns.entry(key).or_default(), dir, t.seq, t.payload);
                    }
                }
                Transport::Tcp(t)
                    if tls::looks_like_client_hello(t.payload)
                        || http::looks_like_http_request(t.payload) =>
                {
                    out.put("names", t.payload);
                }
                _ => {}
            }
        }
        for script in tcp_dns.values() {
            out.put("dns", script);
        }
    }
    if let Some(small) = smallest {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&small).expect("gzip");
        out.put("pcap_reader", &gz.finish().expect("gzip"));
    }
    out.put("pcap_reader", &pcapng_two_ifaces());
    for (t, (n, bytes)) in &out.written {
        println!("{t:<12} {n:>5} new seeds {bytes:>8} bytes");
    }
}
