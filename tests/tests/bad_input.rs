//! Bad input must give a clean error, never a panic (docs/CONTRACT.md, "Errors"): one line on
//! stderr `kizuki: error: <file or thing>: <problem>`, exit 2 for usage/config errors, 1 for
//! runtime/input errors; a pcap cut mid-record is processed up to the cut. Garbage frames inside
//! a well-formed pcap are counted as decode errors, not fatal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etherparse::PacketBuilder;
use kizuki_tests::harness;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_USER0: u32 = 147;

// ---- pcap bytes by hand ---------------------------------------------------------------------

/// Classic pcap global header (little endian, microseconds, snaplen 65535).
fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    b.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    b.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    b.extend_from_slice(&linktype.to_le_bytes());
    b
}

/// One record: 16-byte header (ts_sec, ts_usec, incl_len, orig_len) + the captured bytes.
fn push_record(buf: &mut Vec<u8>, ts_usec: u64, data: &[u8], orig_len: usize) {
    buf.extend_from_slice(&((ts_usec / 1_000_000) as u32).to_le_bytes());
    buf.extend_from_slice(&((ts_usec % 1_000_000) as u32).to_le_bytes());
    buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(orig_len.max(data.len()) as u32).to_le_bytes());
    buf.extend_from_slice(data);
}

const T0: u64 = 1_764_100_000_000_000; // 2025-11-25, microseconds

// ---- frames ----------------------------------------------------------------------------------

fn qname(name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b
}

fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, 1 question
    b.extend_from_slice(&qname(name));
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b
}

fn dns_response_a(id: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]); // QR RD RA, 1 q, 1 answer
    b.extend_from_slice(&qname(name));
    b.extend_from_slice(&[0, 1, 0, 1]);
    b.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]); // pointer to qname, A, IN
    b.extend_from_slice(&300u32.to_be_bytes());
    b.extend_from_slice(&4u16.to_be_bytes());
    b.extend_from_slice(&addr);
    b
}

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 53];

fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let (smac, dmac) = if sport == 53 {
        (SERVER_MAC, CLIENT_MAC)
    } else {
        (CLIENT_MAC, SERVER_MAC)
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .expect("build udp frame");
    out
}

fn udp6(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[0] = 0xfd;
    src[15] = 1;
    let mut dst = src;
    dst[15] = 0x53;
    let mut out = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv6(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .expect("build udp6 frame");
    out
}

fn tcp4(sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv4(CLIENT, SERVER, 64)
        .tcp(sport, dport, seq, 64240)
        .psh()
        .ack(1)
        .write(&mut out, payload)
        .expect("build tcp frame");
    out
}

/// Inserts an 802.1Q tag after the MAC addresses.
fn vlan_tag(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    out.extend_from_slice(&0x8100u16.to_be_bytes());
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(&frame[12..]);
    out
}

/// `n` DNS query/response pairs (`q<i>.bad-input.test`), one pcap record each.
fn dns_pairs_pcap(n: u16) -> Vec<u8> {
    let mut buf = pcap_header(LINKTYPE_ETHERNET);
    for i in 0..n {
        let name = format!("q{i}.bad-input.test");
        let id = 0x1000 + i;
        let q = udp4(CLIENT, 40000 + i, SERVER, 53, &dns_query(id, &name, 1));
        let r = udp4(
            SERVER,
            53,
            CLIENT,
            40000 + i,
            &dns_response_a(id, &name, [192, 0, 2, i as u8]),
        );
        let t = T0 + u64::from(i) * 10_000;
        push_record(&mut buf, t, &q, q.len());
        push_record(&mut buf, t + 500, &r, r.len());
    }
    buf
}

// ---- running kizuki --------------------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        TempDir(harness::tempdir(tag))
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write test input");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kizuki(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(harness::kizuki_bin())
        .args(args)
        .output()
        .expect("spawn kizuki")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_panic(out: &Output) {
    let (stdout, stderr) = text(out);
    assert!(
        !stdout.contains("panicked") && !stderr.contains("panicked"),
        "kizuki panicked:\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert_ne!(out.status.code(), Some(101), "exit 101 is a Rust panic");
    assert!(out.status.code().is_some(), "killed by a signal: {out:?}");
}

/// Exactly one stderr line `kizuki: error: ...<file>: <reason>`, the given exit code, no panic.
/// Returns the line.
fn assert_one_error(out: &Output, file: &Path, code: i32) -> String {
    assert_no_panic(out);
    let (stdout, stderr) = text(out);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one line on stderr, got {}:\n{stderr}\n(stdout: {stdout})",
        lines.len()
    );
    let line = lines[0];
    assert!(
        line.starts_with("kizuki: error: "),
        "stderr line must start with `kizuki: error: `: {line:?}"
    );
    let name = file.file_name().unwrap().to_string_lossy();
    let at = line
        .rfind(name.as_ref())
        .unwrap_or_else(|| panic!("stderr line must name {name}: {line:?}"));
    let reason = line[at + name.len()..].trim_start_matches([':', '"', '\'', '`', ' ']);
    assert!(
        !reason.trim().is_empty(),
        "stderr line must give a reason after the file name: {line:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code for {line:?} (2 = usage/config error, 1 = input/runtime error)"
    );
    line.to_string()
}

/// A replay whose output directory is removed when it goes out of scope (pass or fail).
struct ReplayGuard(harness::Replay);

impl std::ops::Deref for ReplayGuard {
    type Target = harness::Replay;
    fn deref(&self) -> &harness::Replay {
        &self.0
    }
}

impl Drop for ReplayGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

fn replay_one(pcap: &Path, extra: &[&str]) -> ReplayGuard {
    ReplayGuard(harness::replay_raw(&[pcap], extra))
}

// ---- input files -----------------------------------------------------------------------------

#[test]
fn missing_pcap_file() {
    let dir = TempDir::new("bad-missing");
    let pcap = dir.0.join("does-not-exist.pcap");
    let r = replay_one(&pcap, &[]);
    assert_one_error(&r.output, &pcap, 1);
}

#[test]
fn text_file_is_not_a_pcap() {
    let dir = TempDir::new("bad-text");
    let pcap = dir.write(
        "notes.pcap",
        b"This is a text file, not a packet capture.\nIt has two lines.\n",
    );
    let r = replay_one(&pcap, &[]);
    assert_one_error(&r.output, &pcap, 1);
}

#[test]
fn empty_file_is_not_a_pcap() {
    let dir = TempDir::new("bad-empty");
    let pcap = dir.write("empty.pcap", b"");
    let r = replay_one(&pcap, &[]);
    assert_one_error(&r.output, &pcap, 1);
}

#[test]
fn global_header_cut_short() {
    let dir = TempDir::new("bad-shorthdr");
    let pcap = dir.write("short-header.pcap", &pcap_header(LINKTYPE_ETHERNET)[..10]);
    let r = replay_one(&pcap, &[]);
    assert_one_error(&r.output, &pcap, 1);
}

/// 10 complete query/response pairs, then a record whose header promises more bytes than the
/// file holds: the 10 transactions come out, the cut is reported, exit 1.
#[test]
fn truncated_mid_record_processes_what_precedes() {
    let dir = TempDir::new("bad-trunc");
    let mut bytes = dns_pairs_pcap(10);
    let extra = udp4(
        CLIENT,
        41000,
        SERVER,
        53,
        &dns_query(0x7777, "cut.bad-input.test", 1),
    );
    push_record(&mut bytes, T0 + 1_000_000, &extra, extra.len());
    bytes.truncate(bytes.len() - extra.len() / 2);
    let pcap = dir.write("cut-mid-record.pcap", &bytes);

    let r = replay_one(&pcap, &[]);
    assert_one_error(&r.output, &pcap, 1);
    let names: Vec<&str> = r
        .of_type("dns")
        .filter_map(|e| e["dns"]["rrname"].as_str())
        .collect();
    for i in 0..10 {
        let want = format!("q{i}.bad-input.test");
        assert!(
            names.contains(&want.as_str()),
            "transaction {want} (before the cut) missing; got {names:?}"
        );
    }
    assert!(
        !names.contains(&"cut.bad-input.test"),
        "the cut record must not be decoded"
    );
}

/// Record header itself cut (fewer than 16 bytes after the last full record).
#[test]
fn truncated_record_header() {
    let dir = TempDir::new("bad-trunc-hdr");
    let mut bytes = dns_pairs_pcap(3);
    bytes.extend_from_slice(&[0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70]);
    let pcap = dir.write("cut-record-header.pcap", &bytes);
    let r = replay_one(&pcap, &[]);
    assert_one_error(&r.output, &pcap, 1);
    assert_eq!(
        r.of_type("dns").count(),
        3,
        "the 3 complete transactions before the cut"
    );
}

#[test]
fn unsupported_link_type() {
    let dir = TempDir::new("bad-linktype");
    let mut bytes = pcap_header(LINKTYPE_USER0);
    push_record(&mut bytes, T0, &[0xab; 60], 60);
    let pcap = dir.write("user0-linktype.pcap", &bytes);
    let r = replay_one(&pcap, &[]);
    let line = assert_one_error(&r.output, &pcap, 1).to_lowercase();
    assert!(
        line.contains("link") || line.contains("147") || line.contains("dlt"),
        "reason should say the link type is unsupported: {line}"
    );
}

// ---- config files ----------------------------------------------------------------------------

const GOOD_CONFIG: &str = "[flow]\nmax_flows = 1200000\n";
const SYNTAX_ERROR: &str = "[flow\nmax_flows = 10\n";
const UNKNOWN_KEY: &str = "[flow]\nbogus = 1\n";
const UNKNOWN_SECTION: &str = "[bogus_section]\nenabled = true\n";

fn good_pcap(dir: &TempDir) -> PathBuf {
    dir.write("good.pcap", &dns_pairs_pcap(2))
}

#[test]
fn replay_with_toml_syntax_error() {
    let dir = TempDir::new("bad-cfg-syntax");
    let pcap = good_pcap(&dir);
    let cfg = dir.write("syntax-error.toml", SYNTAX_ERROR.as_bytes());
    let r = replay_one(&pcap, &["-c", cfg.to_str().unwrap()]);
    assert_one_error(&r.output, &cfg, 2);
}

#[test]
fn replay_with_unknown_key_names_the_key() {
    let dir = TempDir::new("bad-cfg-key");
    let pcap = good_pcap(&dir);
    let cfg = dir.write("unknown-key.toml", UNKNOWN_KEY.as_bytes());
    let r = replay_one(&pcap, &["-c", cfg.to_str().unwrap()]);
    let line = assert_one_error(&r.output, &cfg, 2);
    assert!(line.contains("bogus"), "message must name the key: {line}");
}

#[test]
fn replay_with_missing_config_file() {
    let dir = TempDir::new("bad-cfg-missing");
    let pcap = good_pcap(&dir);
    let cfg = dir.0.join("no-such-config.toml");
    let r = replay_one(&pcap, &["-c", cfg.to_str().unwrap()]);
    assert_one_error(&r.output, &cfg, 2);
}

#[test]
fn check_config_accepts_good_files() {
    let dir = TempDir::new("cfg-good");
    for (name, body) in [("empty.toml", ""), ("flow-cap.toml", GOOD_CONFIG)] {
        let cfg = dir.write(name, body.as_bytes());
        let out = kizuki(&["check-config".as_ref(), cfg.as_os_str()]);
        assert_no_panic(&out);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "check-config {name} failed: {stderr}");
        assert!(
            stdout.contains(&format!("{}: ok", cfg.display())),
            "check-config {name} must print `FILE: ok`, got {stdout:?}"
        );
        assert!(
            stderr.trim().is_empty(),
            "no stderr for a good config: {stderr}"
        );
    }
}

#[test]
fn check_config_rejects_bad_files() {
    let dir = TempDir::new("cfg-bad");
    for (name, body, must_name) in [
        ("syntax-error.toml", SYNTAX_ERROR, None),
        ("unknown-key.toml", UNKNOWN_KEY, Some("bogus")),
        (
            "unknown-section.toml",
            UNKNOWN_SECTION,
            Some("bogus_section"),
        ),
        (
            "wrong-type.toml",
            "[flow]\nmax_flows = \"many\"\n",
            Some("max_flows"),
        ),
    ] {
        let cfg = dir.write(name, body.as_bytes());
        let out = kizuki(&["check-config".as_ref(), cfg.as_os_str()]);
        let line = assert_one_error(&out, &cfg, 2);
        if let Some(key) = must_name {
            assert!(
                line.contains(key),
                "{name}: message must name `{key}`: {line}"
            );
        }
    }
    let missing = dir.0.join("absent.toml");
    let out = kizuki(&["check-config".as_ref(), missing.as_os_str()]);
    assert_one_error(&out, &missing, 2);
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = kizuki(&["frobnicate".as_ref()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2: {out:?}");
}

// ---- garbage frames --------------------------------------------------------------------------

/// Walks a JSON value, collecting `(key path, number)` for every numeric leaf.
fn numbers(v: &Value, path: &str, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                numbers(v, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                numbers(v, &format!("{path}[{i}]"), out);
            }
        }
        Value::Number(n) => out.push((path.to_string(), n.as_f64().unwrap_or(0.0))),
        _ => {}
    }
}

/// A frame from one of a few valid templates, then damaged at random.
fn fuzz_frame(rng: &mut SmallRng, i: u32) -> (Vec<u8>, usize) {
    let id = rng.random::<u16>();
    let name = format!("f{i}.fuzz.test");
    let sport = 1024 + (i % 60000) as u16;
    let mut frame = match rng.random_range(0..7) {
        0 => udp4(CLIENT, sport, SERVER, 53, &dns_query(id, &name, 1)),
        1 => udp4(
            SERVER,
            53,
            CLIENT,
            sport,
            &dns_response_a(id, &name, [192, 0, 2, 7]),
        ),
        2 => udp6(sport, 53, &dns_query(id, &name, 28)),
        3 => {
            let msg = dns_query(id, &name, 16);
            let mut p = (msg.len() as u16).to_be_bytes().to_vec();
            p.extend_from_slice(&msg);
            tcp4(sport, 53, rng.random(), &p)
        }
        4 => vlan_tag(
            &udp4(CLIENT, sport, SERVER, 53, &dns_query(id, &name, 1)),
            rng.random_range(1..4095),
        ),
        5 => {
            // Random bytes behind an Ethernet header claiming IPv4 or IPv6.
            let mut f = Vec::new();
            f.extend_from_slice(&SERVER_MAC);
            f.extend_from_slice(&CLIENT_MAC);
            f.extend_from_slice(if rng.random_bool(0.5) {
                &[0x08, 0x00]
            } else {
                &[0x86, 0xdd]
            });
            let mut body = vec![0u8; rng.random_range(0..120)];
            rng.fill_bytes(&mut body);
            f.extend_from_slice(&body);
            f
        }
        _ => {
            let mut f = vec![0u8; rng.random_range(0..80)];
            rng.fill_bytes(&mut f);
            f
        }
    };
    let orig_len = frame.len();
    match rng.random_range(0..6) {
        0 => {} // intact
        1 | 2 => {
            // flip a few bytes anywhere (headers included)
            for _ in 0..rng.random_range(1..8) {
                if frame.is_empty() {
                    break;
                }
                let at = rng.random_range(0..frame.len());
                frame[at] ^= rng.random_range(1..=255u8);
            }
        }
        3 => {
            // snaplen-style truncation: caplen < orig_len
            let keep = rng.random_range(0..=frame.len());
            frame.truncate(keep);
        }
        4 => {
            // damage the IP header length / total length fields
            if frame.len() > 18 {
                frame[14] = rng.random();
                frame[16] = rng.random();
                frame[17] = rng.random();
            }
        }
        _ => {
            // trailing garbage
            let mut tail = vec![0u8; rng.random_range(1..40)];
            rng.fill_bytes(&mut tail);
            frame.extend_from_slice(&tail);
        }
    }
    let orig_len = orig_len.max(frame.len());
    (frame, orig_len)
}

#[test]
fn mutated_frames_are_counted_not_fatal() {
    const N: u32 = 4000;
    let dir = TempDir::new("fuzz");
    let mut rng = SmallRng::seed_from_u64(0x6b69_7a75_6b69);
    let mut bytes = pcap_header(LINKTYPE_ETHERNET);
    // Some frames that can never decode, so the error counter cannot stay at zero.
    let sure_bad: [&[u8]; 3] = [
        &[],
        &[0xff; 7],
        &[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x41, 0x00],
    ];
    let mut written = 0u32;
    for (i, f) in sure_bad.iter().enumerate() {
        push_record(&mut bytes, T0 + i as u64, f, f.len());
        written += 1;
    }
    for i in 0..N - written {
        let (frame, orig_len) = fuzz_frame(&mut rng, i);
        push_record(
            &mut bytes,
            T0 + 1_000 + u64::from(i) * 250,
            &frame,
            orig_len,
        );
    }
    let pcap = dir.write("mutated.pcap", &bytes);

    let r = replay_one(&pcap, &[]);
    assert_no_panic(&r.output);
    let (stdout, stderr) = text(&r.output);
    assert!(
        r.output.status.success(),
        "garbage frames must not be fatal: exit {:?}\nstderr: {stderr}\nstdout: {stdout}",
        r.output.status.code()
    );
    assert!(
        r.summary.is_object(),
        "--summary-json must be written; stdout: {stdout}"
    );
    let mut nums = Vec::new();
    numbers(&r.summary, "", &mut nums);
    let leaf = |p: &str| p.rsplit('.').next().unwrap_or(p).to_ascii_lowercase();
    let packet_counts: Vec<&(String, f64)> = nums
        .iter()
        .filter(|(p, _)| {
            matches!(
                leaf(p).as_str(),
                "packets"
                    | "packets_total"
                    | "packets_read"
                    | "packets_seen"
                    | "packets_processed"
                    | "packets_received"
                    | "total_packets"
                    | "pkts"
            )
        })
        .collect();
    assert!(
        packet_counts.iter().any(|(_, v)| *v == f64::from(N)),
        "summary must count all {N} packets; packet counters: {packet_counts:?}\nsummary: {}",
        r.summary
    );
    let errors: f64 = nums
        .iter()
        .filter(|(p, _)| {
            let p = p.to_ascii_lowercase();
            p.contains("decode") || p.contains("error")
        })
        .map(|(_, v)| *v)
        .sum();
    assert!(
        errors > 0.0,
        "summary must count decode errors; summary: {}",
        r.summary
    );
}
