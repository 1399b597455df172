//! Fuzz entry points: one function per target, each taking the raw fuzzer input.
//!
//! This file is shared, with no dependency but `sensor` (the `kizuki` package) and std:
//! - `fuzz/fuzz_targets/*.rs` call it under libFuzzer;
//! - `tests/tests/fuzz_regressions.rs` includes it with `#[path]` and replays every file of
//!   `fuzz/regressions/<target>/` (and the seed corpus) through it, asserting no panic;
//! - `fuzz/src/bin/seeds.rs` uses the encoders below to build seeds from `pcaps/*.pcap`.
//!
//! Input formats (all lengths big-endian):
//! - `decode`: `[link][len u16][frame]...` — the link byte selects a [`LinkType`] (index
//!   modulo [`LINKS`]); then up to [`MAX_FRAMES`] frames, each with a 2-byte length (a length
//!   beyond the end takes the rest). Every frame goes through `decode`; fragments feed one
//!   `Reassembler` (small caps, so the table-full path is reachable) and reassembled
//!   datagrams go through `decode_transport`; TCP/UDP payloads go to the DNS parser, the
//!   DNS-over-TCP framer, `sni_string` and `request_host`, as the worker does.
//! - `dns`: the whole input is one DNS message for `parse_message`; the same bytes are then
//!   read as a script of TCP segments for `TcpDnsState::push`:
//!   `[ctl][seq: u32 if ctl&4 else i16 delta from the direction's next byte][len u16][bytes]`
//!   with `dir = ctl & 1`; `ctl & 8` selects a small buffer cap (300 bytes) instead of 65,537.
//!   Every framed message goes to `parse_message`.
//! - `names`: the input is a client's first payload: `sni_string`, `client_hello_sni`,
//!   `sanitize_sni`, `request_host` and the `looks_like_*` checks.
//! - `pcap_reader`: the input is written as a file, opened with `OfflineSource` and polled
//!   to the end; every packet is decoded.

use sensor::capture::offline::OfflineSource;
use sensor::capture::{PacketSource, Poll};
use sensor::decode::frag::Reassembler;
use sensor::decode::{
    decode as decode_link, decode_transport, Decoded, LinkType, Packet, Transport,
};
use sensor::proto::dns::tcp::TcpDnsIssues;
use sensor::proto::dns::{parse_message, TcpDnsState};
use sensor::proto::{http, tls};
use std::path::PathBuf;

/// Link types selected by the first byte of a `decode` input.
pub const LINKS: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ppp,
];

/// Frames per `decode` input.
pub const MAX_FRAMES: usize = 64;
/// Segments per `dns` script.
pub const MAX_SEGMENTS: usize = 256;
/// Packets read per `pcap_reader` input (a fuzzed header cannot loop forever).
pub const MAX_PCAP_PACKETS: usize = 100_000;

const SEC: i64 = 1_000_000_000;

/// The `decode` link byte for `link`.
pub fn link_byte(link: LinkType) -> u8 {
    LINKS.iter().position(|l| *l == link).unwrap_or(0) as u8
}

/// Encodes frames (all of one link type) as a `decode` input.
pub fn encode_decode_input(link: LinkType, frames: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![link_byte(link)];
    for f in frames.iter().take(MAX_FRAMES) {
        let n = f.len().min(0xffff);
        v.extend_from_slice(&(n as u16).to_be_bytes());
        v.extend_from_slice(&f[..n]);
    }
    v
}

/// One segment of a `dns` script (absolute sequence number).
pub fn encode_dns_segment(out: &mut Vec<u8>, dir: usize, seq: u32, payload: &[u8]) {
    out.push(4 | (dir as u8 & 1));
    out.extend_from_slice(&seq.to_be_bytes());
    let n = payload.len().min(0xffff);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&payload[..n]);
}

/// Payload checks the worker runs on a TCP/UDP payload.
fn payload(bytes: &[u8]) {
    let _ = parse_message(bytes);
    let _ = tls::sni_string(bytes);
    let _ = http::request_host(bytes);
}

struct DecodeState {
    frags: Reassembler,
    tcp: TcpDnsState,
    issues: TcpDnsIssues,
}

fn packet(st: &mut DecodeState, p: &Packet<'_>) {
    match p.transport {
        Transport::Tcp(t) => {
            payload(t.payload);
            let dir = usize::from(t.sport > t.dport);
            st.tcp
                .push(dir, t.seq, t.payload, 65_537, &mut st.issues, |m| {
                    let _ = parse_message(m);
                });
        }
        Transport::Udp(u) => payload(u.payload),
        Transport::Icmp { .. } | Transport::Other => {}
    }
}

/// `decode` target.
pub fn decode(data: &[u8]) {
    let Some((&l, mut rest)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(l) % LINKS.len()];
    // Small caps: 8 datagrams, 64 KiB, so eviction paths run too.
    let mut st = DecodeState {
        frags: Reassembler::new(8, 64 << 10, 30 * SEC),
        tcp: TcpDnsState::default(),
        issues: TcpDnsIssues::default(),
    };
    let mut ts = 1_700_000_000 * SEC;
    for _ in 0..MAX_FRAMES {
        if rest.is_empty() {
            break;
        }
        let frame = if rest.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let body = &rest[2..];
            let n = n.min(body.len());
            rest = &body[n..];
            &body[..n]
        } else {
            std::mem::take(&mut rest)
        };
        ts += SEC / 100;
        match decode_link(link, frame) {
            Decoded::Packet(p) => packet(&mut st, &p),
            Decoded::Fragment(f) => {
                if let Some(r) = st.frags.add(ts, &f) {
                    let len = r.payload.len() as u32;
                    if let Decoded::Packet(p) =
                        decode_transport(r.ctx, r.src, r.dst, r.proto, r.ip_len, &r.payload, len)
                    {
                        packet(&mut st, &p);
                    }
                }
            }
            Decoded::NonIp(_) | Decoded::Drop(_) | Decoded::TunnelDrop(..) => {}
        }
    }
    st.frags.expire(ts + 60 * SEC);
    assert!(st.frags.is_empty(), "fragments left after expiry");
}

/// `dns` target.
pub fn dns(data: &[u8]) {
    let _ = parse_message(data);
    let mut st = TcpDnsState::default();
    let mut issues = TcpDnsIssues::default();
    let mut next: [u32; 2] = [0x1000_0000, 0x2000_0000];
    let mut rest = data;
    for _ in 0..MAX_SEGMENTS {
        let Some((&ctl, r)) = rest.split_first() else {
            break;
        };
        rest = r;
        let dir = usize::from(ctl & 1);
        let seq = if ctl & 4 != 0 {
            let Some(b) = rest.get(..4) else { break };
            rest = &rest[4..];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            let Some(b) = rest.get(..2) else { break };
            rest = &rest[2..];
            next[dir].wrapping_add(i16::from_be_bytes([b[0], b[1]]) as i32 as u32)
        };
        let Some(b) = rest.get(..2) else { break };
        rest = &rest[2..];
        let n = usize::from(u16::from_be_bytes([b[0], b[1]])).min(rest.len());
        let (seg, r) = rest.split_at(n);
        rest = r;
        let max = if ctl & 8 != 0 { 300 } else { 65_537 };
        st.push(dir, seq, seg, max, &mut issues, |m| {
            let _ = parse_message(m);
        });
        next[dir] = seq.wrapping_add(n as u32);
    }
}

/// `names` target.
pub fn names(data: &[u8]) {
    let sni = tls::sni_string(data);
    if let Some(raw) = tls::client_hello_sni(data) {
        let _ = tls::sanitize_sni(raw);
    }
    let cow = tls::client_hello_sni_cow(data);
    // The borrowed and the copying variants agree when both find a name.
    if let (Some(raw), Some(c)) = (tls::client_hello_sni(data), cow.as_deref()) {
        assert_eq!(raw, c, "client_hello_sni and client_hello_sni_cow disagree");
    }
    if let Some(s) = &sni {
        assert!(
            !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "implausible SNI {s:?}"
        );
    }
    let _ = tls::looks_like_client_hello(data);
    let _ = http::looks_like_http_request(data);
    if let Some(h) = http::request_host(data) {
        assert!(
            !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "implausible Host {h:?}"
        );
    }
}

/// A per-process, per-call path for `pcap_reader` (in /dev/shm when there is one).
fn scratch_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("kizuki-fuzz-{}-{n}.pcap", std::process::id()))
}

/// `pcap_reader` target.
pub fn pcap_reader(data: &[u8]) {
    let path = scratch_path();
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut src) = OfflineSource::open(std::slice::from_ref(&path), "") {
        for _ in 0..MAX_PCAP_PACKETS {
            let mut sink = |p: sensor::capture::RawPacket<'_>| {
                let _ = decode_link(p.link, p.data);
            };
            if src.poll(&mut sink) == Poll::End {
                break;
            }
        }
        let _ = src.take_errors();
    }
    let _ = std::fs::remove_file(&path);
}

/// Every target by name (for the regression replayer).
/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

pub const TARGETS: [Target; 4] = [
    ("decode", decode),
    ("dns", dns),
    ("names", names),
    ("pcap_reader", pcap_reader),
];
