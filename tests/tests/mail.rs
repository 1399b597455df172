//! Mail attachments in plaintext SMTP (`docs/mail.md`).
//!
//! - Replays `pcaps/smtp-*.pcap`, recorded on `lo` from real tools by
//!   `scripts/capture-smtp.sh` (aiosmtpd server; swaks and smtplib clients; attachments made
//!   with zip / zip -e), and checks the EVE `smtp` records and `mail_attachment` alerts against
//!   the `.expected.json` written beside each capture (names, SHA-256 of the files as built).
//! - Memory: a flood of half-open SMTP sessions and a large attachment stay within the
//!   configured budget, with the give-ups counted. `smtp_memory_figures` (ignored; run by
//!   `scripts/smtp-bench.sh`) prints the figures at full size (100 MB attachment).

use kizuki_tests::harness;
use kizuki_tests::pcapw::{LinkType, PcapWriter, TsResolution};
use kizuki_tests::tcpconn::{Seg, TcpConn};
use serde_json::Value;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

const CASES: &[&str] = &[
    "smtp-zip-exe",
    "smtp-pdf",
    "smtp-zip-docs",
    "smtp-rtlo",
    "smtp-mz-jpg",
    "smtp-iso2022jp",
    "smtp-segments",
    "smtp-pipelining",
    "smtp-starttls",
];

fn pcap(name: &str) -> PathBuf {
    harness::workspace_root()
        .join("pcaps")
        .join(format!("{name}.pcap"))
}

fn expected(name: &str) -> Value {
    let p = harness::workspace_root()
        .join("pcaps")
        .join(format!("{name}.expected.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn smtp_captures_from_real_tools() {
    for case in CASES {
        let want = expected(case);
        let r = harness::replay(&[&pcap(case)], &["--workers", "2"]);
        let msgs: Vec<&Value> = r.of_type("smtp").collect();
        let want_msgs = want["messages"].as_array().expect("messages");
        assert_eq!(
            msgs.len(),
            want_msgs.len(),
            "{case}: smtp records {msgs:#?}"
        );
        for (m, w) in msgs.iter().zip(want_msgs) {
            assert_eq!(
                m["dest_port"].as_u64().map(|p| p == 25 || p == 587),
                Some(true)
            );
            assert!(m["community_id"].as_str().unwrap_or("").starts_with("1:"));
            for k in ["mail_from", "rcpt_to", "pipelined"] {
                if !w[k].is_null() {
                    assert_eq!(m["smtp"][k], w[k], "{case}: smtp.{k}");
                }
            }
            if !w["subject"].is_null() {
                assert_eq!(m["email"]["subject"], w["subject"], "{case}: subject");
            }
            let atts = m["email"]["attachments"].as_array().expect("attachments");
            let want_atts = w["attachments"].as_array().expect("attachments");
            assert_eq!(atts.len(), want_atts.len(), "{case}: {atts:#?}");
            for (a, wa) in atts.iter().zip(want_atts) {
                assert_eq!(a["name"], wa["name"], "{case}: decoded attachment name");
                assert_eq!(
                    a["sha256"], wa["sha256"],
                    "{case}: sha256 of the decoded file"
                );
                assert_eq!(a["truncated"], false);
                if !wa["encrypted"].is_null() {
                    assert_eq!(a["encrypted"], wa["encrypted"], "{case}: encrypted");
                }
                if !wa["entries"].is_null() {
                    let got: Vec<String> = a["entries"]
                        .as_array()
                        .expect("entries")
                        .iter()
                        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
                        .collect();
                    assert_eq!(got, names(&wa["entries"]), "{case}: archive entries");
                }
            }
        }
        let alerts: Vec<&Value> = r
            .of_type("alert")
            .filter(|a| a["kizuki"]["detector"] == "mail_attachment")
            .collect();
        let want_alerts = want["alerts"].as_array().expect("alerts");
        assert_eq!(
            alerts.len(),
            want_alerts.len(),
            "{case}: alerts {alerts:#?}"
        );
        for (a, w) in alerts.iter().zip(want_alerts) {
            let k = &a["kizuki"];
            assert_eq!(k["attachment"], w["attachment"], "{case}");
            for key in ["entry", "entry_container", "encrypted"] {
                if !w[key].is_null() {
                    assert_eq!(k[key], w[key], "{case}: kizuki.{key}");
                }
            }
            assert_eq!(
                sorted(names(&k["reasons"])),
                sorted(names(&w["reasons"])),
                "{case}: reasons"
            );
            assert_eq!(k["from"], msgs[0]["smtp"]["mail_from"]);
            assert_eq!(k["to"], msgs[0]["smtp"]["rcpt_to"]);
            assert_eq!(k["subject"], msgs[0]["email"]["subject"]);
            assert_eq!(
                k["sha256"].as_str().map(str::len),
                Some(64),
                "{case}: sha256 in the evidence"
            );
            assert_eq!(a["alert"]["category"], "Malicious Mail");
        }
        let smtp = &r.summary["smtp"];
        let tls = want["starttls_sessions"].as_u64().unwrap_or(0);
        assert_eq!(smtp["starttls_sessions"], tls, "{case}: {smtp}");
        assert_eq!(smtp["messages"].as_u64(), Some(want_msgs.len() as u64));
        let gave_up: u64 = smtp["give_ups"]
            .as_object()
            .expect("give_ups")
            .values()
            .filter_map(Value::as_u64)
            .sum();
        assert_eq!(gave_up, 0, "{case}: {smtp}");
        assert_eq!(smtp["buffer_bytes_at_end"], 0, "{case}: {smtp}");
    }
}

#[test]
fn japanese_filename_decodes() {
    let want = expected("smtp-iso2022jp");
    assert!(
        want["encoded_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("=?iso-2022-jp?b?") || n.starts_with("=?ISO-2022-JP?")),
        "the capture carries the name in RFC 2047 ISO-2022-JP: {}",
        want["encoded_name"]
    );
    let r = harness::replay(&[&pcap("smtp-iso2022jp")], &[]);
    let m = r.of_type("smtp").next().expect("smtp record");
    assert_eq!(m["email"]["attachments"][0]["name"], "請求書.pdf.exe");
    assert_eq!(m["email"]["subject"], "請求書の送付");
    let r = harness::replay(&[&pcap("smtp-segments")], &[]);
    let m = r.of_type("smtp").next().expect("smtp record");
    assert_eq!(m["email"]["attachments"][0]["name"], "報告書.zip");
}

#[test]
fn segments_case_really_is_segmented() {
    let want = expected("smtp-segments");
    let f = std::fs::File::open(pcap("smtp-segments")).expect("pcap");
    let p = kizuki_tests::pcapw::read_pcap(f).expect("read pcap");
    // Client payload packets: IPv4 over Ethernet (lo), TCP payload > 0, to port 25.
    let client_payload = p
        .records
        .iter()
        .filter(|r| {
            let d = &r.data;
            d.len() > 14 + 20 + 20 && {
                let ip = &d[14..];
                let ihl = usize::from(ip[0] & 15) * 4;
                let tcp = &ip[ihl..];
                let doff = usize::from(tcp[12] >> 4) * 4;
                let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                dport == 25 && total > ihl + doff
            }
        })
        .count() as u64;
    assert!(
        client_payload >= want["min_client_segments"].as_u64().unwrap_or(40),
        "only {client_payload} client segments"
    );
}

#[test]
fn pcaps_on_other_ports_are_ignored_when_smtp_is_off() {
    let dir = harness::tempdir("smtp-off");
    let cfg = dir.join("k.toml");
    std::fs::write(&cfg, "[smtp]\nenabled = false\n").expect("config");
    let r = harness::replay(
        &[&pcap("smtp-zip-exe")],
        &["-c", cfg.to_str().expect("utf8")],
    );
    assert_eq!(r.of_type("smtp").count(), 0);
    assert_eq!(r.of_type("alert").count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- memory bounds ------------------------------------------------------------------------

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 25);

struct Gen<W: Write> {
    w: PcapWriter<W>,
    ts: u64,
}

impl<W: Write> Gen<W> {
    fn put(&mut self, segs: Vec<Seg>) {
        for s in segs {
            self.ts += s.delay_ns.max(1_000);
            self.w.write(self.ts, &s.ip, None).expect("write pcap");
        }
    }
}

/// A stored ZIP: one large entry of pseudo-random bytes, then `invoice.pdf.exe` (PE), then
/// the central directory: only the tail of the archive names the executable.
fn big_zip(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let files: [(&str, &[u8]); 2] = [("data.bin", &data), ("invoice.pdf.exe", b"MZ\x90\0\x03\0")];
    let mut out = Vec::with_capacity(size + 1024);
    let mut cd = Vec::new();
    for (name, body) in files {
        let off = out.len() as u32;
        let hdr = |sig: &[u8], central: bool, out: &mut Vec<u8>| {
            out.extend_from_slice(sig);
            if central {
                out.extend_from_slice(&[20, 0]);
            }
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            if central {
                // Comment length, disk, internal and external attributes.
                out.extend_from_slice(&[0; 10]);
                out.extend_from_slice(&off.to_le_bytes());
            }
            out.extend_from_slice(name.as_bytes());
        };
        hdr(b"PK\x03\x04", false, &mut out);
        out.extend_from_slice(body);
        hdr(b"PK\x01\x02", true, &mut cd);
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x02\0\x02\0");
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Writes the flood capture: first one message with a `attach_bytes` ZIP attachment, then
/// `sessions` half-open sessions, each stuck inside DATA with a long header line and an
/// out-of-order segment after a hole. Returns the attachment's SHA-256.
fn flood_pcap(path: &Path, sessions: u32, attach_bytes: usize) -> String {
    use base64::Engine;
    let f = std::io::BufWriter::new(std::fs::File::create(path).expect("create pcap"));
    let mut g = Gen {
        w: PcapWriter::new(f, LinkType::RawIp, TsResolution::Micro, 65_535).expect("pcap"),
        ts: 1_764_100_000_000_000_000,
    };
    let zip = big_zip(attach_bytes);
    let sha = sha256_hex(&zip);
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 5));
    let mut c = TcpConn::new((client, 41000), (IpAddr::V4(SERVER), 25), 1000, 9000);
    g.put(c.handshake());
    g.put(c.exchange(b"EHLO big.example\r\n", b"250 mx\r\n"));
    g.put(c.exchange(b"MAIL FROM:<big@example.test>\r\n", b"250 ok\r\n"));
    g.put(c.exchange(b"RCPT TO:<victim@example.test>\r\n", b"250 ok\r\n"));
    g.put(c.exchange(b"DATA\r\n", b"354 go\r\n"));
    g.put(c.send(
        true,
        b"Subject: big one\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: application/zip; name=archive.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    ));
    // Base64 in 76-character lines, sent 57 KiB of input at a time.
    for chunk in zip.chunks(57 * 1024) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
        let mut text = Vec::with_capacity(b64.len() * 78 / 76 + 2);
        for line in b64.as_bytes().chunks(76) {
            text.extend_from_slice(line);
            text.extend_from_slice(b"\r\n");
        }
        g.put(c.send(true, &text));
    }
    g.put(c.send(true, b"--b--\r\n.\r\n"));
    g.put(c.exchange(b"QUIT\r\n", b"221 bye\r\n"));
    g.put(c.close(true));
    drop(zip);

    let long_line = vec![b'A'; 3000];
    for i in 0..sessions {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 2, (i / 250) as u8, (i % 250) as u8 + 1));
        let mut c = TcpConn::new(
            (ip, 40000 + (i % 20000) as u16),
            (IpAddr::V4(SERVER), 25),
            i,
            7,
        );
        g.put(c.handshake());
        g.put(c.send(
            true,
            b"EHLO x\r\nMAIL FROM:<f@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nSubject: ",
        ));
        g.put(c.send(true, &long_line));
        // A hole: this segment is never captured, the next one waits for it.
        let _lost = c.data_seg(true, b"lost bytes");
        g.put(vec![c.data_seg(true, b"held early")]);
    }
    g.w.into_inner().expect("flush").flush().expect("flush");
    sha
}

fn flood_config(dir: &Path, total: usize) -> PathBuf {
    let cfg = dir.join("smtp.toml");
    std::fs::write(
        &cfg,
        format!(
            "[smtp]\nsession_buffer_bytes = 16384\ntotal_buffer_bytes = {total}\n\
             inspect_bytes = 262144\nmax_message_bytes = 1073741824\n\
             [flow]\nmax_flows = 1000000\n"
        ),
    )
    .expect("config");
    cfg
}

struct Figures {
    sha_ok: bool,
    alert: bool,
    smtp: Value,
    flows: u64,
}

fn run_flood(sessions: u32, attach: usize, total: usize, tag: &str) -> Figures {
    // The bench keeps its capture and config (SMTP_BENCH_DIR) to measure the process too.
    let keep = std::env::var_os("SMTP_BENCH_DIR").filter(|_| tag == "smtp-bench");
    let dir = match &keep {
        Some(d) => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).expect("bench dir");
            d
        }
        None => harness::tempdir(tag),
    };
    let p = dir.join("flood.pcap");
    let sha = flood_pcap(&p, sessions, attach);
    let cfg = flood_config(&dir, total);
    let r = harness::replay(
        &[&p],
        &["-c", cfg.to_str().expect("utf8"), "--workers", "1"],
    );
    let m = r
        .of_type("smtp")
        .find(|m| m["smtp"]["mail_from"] == "big@example.test")
        .cloned()
        .expect("the large message is recorded");
    let att = &m["email"]["attachments"][0];
    assert_eq!(att["size"].as_u64(), Some(attach as u64 + 226));
    let alert = r.of_type("alert").any(|a| {
        a["kizuki"]["detector"] == "mail_attachment" && a["kizuki"]["entry"] == "invoice.pdf.exe"
    });
    let f = Figures {
        sha_ok: att["sha256"] == sha,
        alert,
        smtp: r.summary["smtp"].clone(),
        flows: r.summary["flows"].as_u64().unwrap_or(0),
    };
    drop(r);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    f
}

#[test]
fn flood_and_large_attachment_stay_within_budget() {
    let total = 1 << 20;
    let f = run_flood(600, 4 << 20, total, "smtp-flood");
    let s = &f.smtp;
    assert!(f.sha_ok, "SHA-256 of the 4 MiB attachment: {s}");
    assert!(
        f.alert,
        "the executable named in the central directory (tail window) fires: {s}"
    );
    let peak = s["buffer_peak_bytes"].as_u64().unwrap_or(u64::MAX);
    assert!(
        peak <= total as u64,
        "peak {peak} over the budget {total}: {s}"
    );
    assert!(
        s["give_ups"]["memory"].as_u64().unwrap_or(0) > 0,
        "the flood exhausts the budget and is counted: {s}"
    );
    assert_eq!(s["sessions"].as_u64(), Some(601), "{s}");
    assert_eq!(
        s["buffer_bytes_at_end"], 0,
        "everything released at the end: {s}"
    );
    assert!(f.flows >= 601);
}

/// Figures at full size for `scripts/smtp-bench.sh` (`SMTP_BENCH_SESSIONS`,
/// `SMTP_BENCH_MB`, `SMTP_BENCH_BUDGET_MB`).
#[test]
#[ignore = "benchmark figures: scripts/smtp-bench.sh"]
fn smtp_memory_figures() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let sessions = env("SMTP_BENCH_SESSIONS", 20_000) as u32;
    let mb = env("SMTP_BENCH_MB", 100);
    let budget = env("SMTP_BENCH_BUDGET_MB", 16) << 20;
    let t = std::time::Instant::now();
    let f = run_flood(sessions, mb << 20, budget, "smtp-bench");
    println!(
        "smtp-bench: sessions={sessions} attachment_mb={mb} budget_bytes={budget} \
         wall_s={:.1} sha256_ok={} alert_from_tail={} flows={}",
        t.elapsed().as_secs_f64(),
        f.sha_ok,
        f.alert,
        f.flows
    );
    println!("smtp-bench: summary.smtp = {}", f.smtp);
}
