//! Escaping: DNS names, TLS SNI and HTTP Host carrying control characters, quotes,
//! backslashes, invalid UTF-8, terminal escape sequences and exposition-format injection.
//! Every `eve.json` line must parse as JSON, `kizuki report` must print no control
//! character but newlines, and `/metrics` (beacon top-score labels carry names) must pass
//! `promtool check metrics`.

mod common;

use common::*;
use kizuki_tests::appproto::{http_get as http_request, http_response, tls_client_hello};
use kizuki_tests::appproto::{tls_server_flight, ClientHello};
use kizuki_tests::harness;
use kizuki_tests::pcapw::{LinkType, PcapWriter, TsResolution};
use kizuki_tests::pkt::{self, ethertype_of, mac_for};
use kizuki_tests::tcpconn::TcpConn;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Hostile names as raw bytes (labels split on '.').
const HOSTILE: &[&[u8]] = &[
    b"evil\x1b[31mred\x1b[0m.example",
    b"osc\x1b]0;pwned\x07title.example",
    b"quo\"te\\back\\slash.example",
    b"ctl\x00\x01\x07\x08\t\n\r\x7f.example",
    b"bad\xff\xfe\xc3\x28utf8.example",
    b"c1\xc2\x9b31mcsi\xe2\x80\xa8ls.example",
    b"x\"} 1\nfake_metric{a=\"b\"} 2 #.example",
];

fn dns_msg(id: u16, name: &[u8], response: bool) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    // Query: RD. Response: QR RD RA, NXDOMAIN.
    let flags: u16 = if response { 0x8183 } else { 0x0100 };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split(|&b| b == b'.') {
        m.push(label.len().min(63) as u8);
        m.extend_from_slice(&label[..label.len().min(63)]);
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

/// `text` with `placeholder` (same length) replaced by `raw` bytes: SNI/Host builders take
/// `&str`, hostile names need not be UTF-8.
fn patch(mut buf: Vec<u8>, placeholder: &[u8], raw: &[u8]) -> Vec<u8> {
    assert_eq!(placeholder.len(), raw.len());
    if let Some(i) = buf
        .windows(placeholder.len())
        .position(|w| w == placeholder)
    {
        buf[i..i + raw.len()].copy_from_slice(raw);
    }
    buf
}

fn write_capture(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(f, LinkType::Ethernet, TsResolution::Micro, 65535).unwrap();
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut push = |t: u64, ip: Vec<u8>| {
        let (s, d) = match (&ip[0] >> 4, ip.len() >= 20) {
            (4, true) => (
                IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
                IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
            ),
            _ => unreachable!("IPv4 only"),
        };
        let fr = pkt::ethernet(mac_for(d), mac_for(s), &[], ethertype_of(&ip), &ip);
        frames.push((t, fr));
    };
    let client: IpAddr = "10.0.0.5".parse().unwrap();
    let resolver: IpAddr = "10.0.0.53".parse().unwrap();
    let t0: u64 = 1_790_000_000 * 1_000_000_000;
    let s = 1_000_000_000u64;
    for (i, name) in HOSTILE.iter().enumerate() {
        // Periodic NXDOMAIN lookups (a dns_sinkhole_periodic candidate: the name becomes a
        // label of kizuki_beacon_top_score).
        for k in 0..12u64 {
            let t = t0 + k * 60 * s + i as u64 * s;
            let id = (i as u16) << 8 | k as u16;
            let sport = 40000 + (i as u16) * 100 + k as u16;
            push(
                t,
                pkt::udp_packet(client, sport, resolver, 53, id, &dns_msg(id, name, false)),
            );
            push(
                t + 2_000_000,
                pkt::udp_packet(resolver, 53, client, sport, id, &dns_msg(id, name, true)),
            );
        }
        // TLS with the name as SNI, and HTTP with it as Host, also periodic.
        let ph: Vec<u8> = (0..name.len()).map(|j| b'a' + (j % 26) as u8).collect();
        let ph_str = std::str::from_utf8(&ph).unwrap();
        for k in 0..8u64 {
            let t = t0 + 5 * s + k * 90 * s + i as u64 * s;
            let port = 50000 + (i as u16) * 100 + k as u16;
            let tls_srv: IpAddr = format!("203.0.113.{}", 10 + i).parse().unwrap();
            let mut c = TcpConn::new((client, port), (tls_srv, 443), 1000 + k as u32, 9000);
            let hello = patch(
                tls_client_hello(&ClientHello {
                    sni: Some(ph_str),
                    seed: k,
                    pq_key_share: false,
                    alpn: &["h2"],
                }),
                &ph,
                name,
            );
            let mut segs = c.handshake();
            segs.extend(c.exchange(&hello, &tls_server_flight(k, 200)));
            segs.extend(c.close(true));
            let mut tt = t;
            for sg in segs {
                tt += sg.delay_ns.max(1_000);
                push(tt, sg.ip);
            }
            let web: IpAddr = format!("198.51.100.{}", 10 + i).parse().unwrap();
            let mut c = TcpConn::new((client, port + 50), (web, 80), 5000, 7000);
            let req = patch(http_request(ph_str, "/", "hostile/1.0"), &ph, name);
            let mut segs = c.handshake();
            segs.extend(c.exchange(&req, &http_response(200, "text/plain", 10, k)));
            segs.extend(c.close(true));
            let mut tt = t + 20 * s;
            for sg in segs {
                tt += sg.delay_ns.max(1_000);
                push(tt, sg.ip);
            }
        }
    }
    frames.sort_by_key(|(t, _)| *t);
    for (t, fr) in frames {
        w.write(t, &fr, None).unwrap();
    }
    w.into_inner().unwrap();
}

#[test]
fn hostile_names_never_break_json_report_or_metrics() {
    let dir = DirGuard::new("hostile");
    let pcap = dir.0.join("hostile.pcap");
    write_capture(&pcap);

    // EVE: every line is JSON, and the hostile names made it through (escaped).
    let r = harness::replay(&[&pcap], &[]);
    let raw = std::fs::read(r.dir.join("eve.json")).unwrap();
    let text = String::from_utf8(raw).expect("eve.json is UTF-8");
    let mut dns = 0;
    for l in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid EVE line {l:?}: {e}"));
        assert!(
            !l.chars().any(|c| c.is_control()),
            "raw control character in {l:?}"
        );
        if v["event_type"] == "dns" {
            dns += 1;
        }
    }
    assert!(dns >= HOSTILE.len() * 12, "{dns} dns events");
    assert!(
        text.contains("evil") && text.contains("quo"),
        "names logged"
    );
    let flows_with_names = r
        .of_type("flow")
        .filter(|f| f["server_name"].is_string())
        .count();
    println!("flows with a server_name: {flows_with_names}");
    // SNI / Host that are not plausible host names are dropped, never logged raw.
    for f in r.of_type("flow") {
        if let Some(n) = f["server_name"].as_str() {
            assert!(n.bytes().all(|b| b.is_ascii_graphic()), "{n:?}");
        }
    }
    assert!(r.of_type("flow").filter(|f| f["dest_port"] == 443).count() >= HOSTILE.len() * 8);

    // The report: names are shown, control characters never reach the terminal.
    for args in [&["report"][..], &["report", "--json"][..]] {
        let out = Command::new(harness::kizuki_bin())
            .args(args)
            .arg(&pcap)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rep = String::from_utf8(out.stdout).expect("report is UTF-8");
        let bad: Vec<(usize, char)> = rep
            .char_indices()
            .filter(|(_, c)| c.is_control() && *c != '\n')
            .collect();
        assert!(
            bad.is_empty(),
            "{args:?}: control characters {bad:?} in:\n{rep}"
        );
        assert!(!rep.contains('\u{2028}'), "line separator in the report");
        if args.len() == 1 {
            assert!(rep.contains("evil"), "{rep}");
        }
    }

    // /metrics with the names as beacon labels passes promtool.
    if skip_unless("hostile_names promtool", false, &["promtool"]) {
        return;
    }
    let port = free_port();
    let _k = start_replay("hostile-metrics", &dir.0, port, None, &[&pcap], 60);
    let body = wait_for(Duration::from_secs(30), "beacon top-score gauges", || {
        let (_, body) = http_get(addr(port), "/metrics")?;
        body.contains("kizuki_beacon_top_score{").then_some(body)
    });
    assert!(!body.contains("\nfake_metric"), "label injection:\n{body}");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && msg.trim().is_empty(),
        "promtool check metrics:\n{msg}\n{body}"
    );
    let top: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("kizuki_beacon_top_score{"))
        .collect();
    println!("{}", top.join("\n"));
}
