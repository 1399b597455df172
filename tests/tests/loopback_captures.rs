//! Replays the captures recorded from real tools on `lo` (`pcaps/lo-*.pcap`, made by
//! `scripts/capture-loopback.sh`: dnsmasq + dig over UDP and TCP, python http.server + curl)
//! and checks Kizuki's EVE output against the `.expected.json` written beside each capture
//! (derived from the capture with tshark by `scripts/loopback_expected.py`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kizuki_tests::harness;
use serde_json::Value;

fn pcap_path(name: &str) -> PathBuf {
    harness::workspace_root().join("pcaps").join(name)
}

fn load_expected(pcap: &Path) -> Value {
    let path = pcap.with_extension("expected.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Compares one answer's rdata the way the contract leaves room for: addresses by value,
/// names without a trailing dot, MX by its exchange, TXT by its text.
fn rdata_matches(rrtype: &str, expected: &Value, actual: &Value) -> bool {
    let (Some(e), Some(a)) = (expected.as_str(), actual.as_str()) else {
        return expected == actual;
    };
    match rrtype {
        "A" | "AAAA" => match (e.parse::<IpAddr>(), a.parse::<IpAddr>()) {
            (Ok(e), Ok(a)) => e == a,
            _ => false,
        },
        "CNAME" | "NS" | "PTR" => e.trim_end_matches('.') == a.trim_end_matches('.'),
        "MX" => {
            let exchange = e.rsplit(' ').next().unwrap_or(e);
            a.trim_end_matches('.').contains(exchange)
        }
        "TXT" => a.contains(e),
        _ => e == a,
    }
}

fn same_tuple(ev: &Value, want: &Value) -> bool {
    ["src_ip", "src_port", "dest_ip", "dest_port", "proto"]
        .iter()
        .all(|k| ev[*k] == want[*k])
}

fn check_envelope(ev: &Value) {
    let ts = ev["timestamp"].as_str().unwrap_or_default();
    assert!(
        ts.len() >= 26 && ts.contains('T') && ts.ends_with("+0000"),
        "timestamp not in the contract format: {ev}"
    );
    assert!(ev["flow_id"].is_u64(), "flow_id must be a u64: {ev}");
    assert!(
        ev["community_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("1:")),
        "community_id missing: {ev}"
    );
}

fn check_dns(replay: &harness::Replay, expected: &Value) {
    let want = expected["dns"].as_array().expect("dns array");
    let got: Vec<&Value> = replay.of_type("dns").collect();
    let dump = || {
        got.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        got.len(),
        want.len(),
        "one dns event per transaction expected; got:\n{}",
        dump()
    );
    for w in want {
        let matches: Vec<&&Value> = got
            .iter()
            .filter(|e| same_tuple(e, w) && e["dns"]["id"] == w["id"])
            .collect();
        assert_eq!(
            matches.len(),
            1,
            "expected exactly one dns transaction like {w}; got:\n{}",
            dump()
        );
        let ev = matches[0];
        check_envelope(ev);
        let d = &ev["dns"];
        assert_eq!(d["type"], "transaction", "{ev}");
        for key in [
            "rrname", "rrtype", "rcode", "answered", "aa", "tc", "rd", "ra",
        ] {
            assert_eq!(d[key], w[key], "dns.{key} differs for {w}\nevent: {ev}");
        }
        assert!(
            d["rtt"].as_f64().is_some_and(|r| r >= 0.0),
            "answered transaction needs an rtt: {ev}"
        );
        let want_answers = w["answers"].as_array().expect("answers");
        let got_answers = d["answers"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            got_answers.len(),
            want_answers.len(),
            "answer count for {}/{}: {ev}",
            w["rrname"],
            w["rrtype"]
        );
        for (a, e) in got_answers.iter().zip(want_answers) {
            assert_eq!(a["rrname"], e["rrname"], "answer rrname: {ev}");
            assert_eq!(a["rrtype"], e["rrtype"], "answer rrtype: {ev}");
            assert_eq!(a["ttl"], e["ttl"], "answer ttl: {ev}");
            let rrtype = e["rrtype"].as_str().unwrap_or_default();
            assert!(
                rdata_matches(rrtype, &e["rdata"], &a["rdata"]),
                "answer rdata: expected {} got {} in {ev}",
                e["rdata"],
                a["rdata"]
            );
        }
    }
}

fn check_flows(replay: &harness::Replay, expected: &Value) {
    let want = expected["flows"].as_array().expect("flows array");
    // Periodic "update" records of long flows are not final records; these flows are short.
    let got: Vec<&Value> = replay
        .of_type("flow")
        .filter(|e| e["flow"]["reason"] != "update")
        .collect();
    let dump = || {
        got.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        got.len(),
        want.len(),
        "one final flow event per connection expected; got:\n{}",
        dump()
    );
    for w in want {
        let matches: Vec<&&Value> = got.iter().filter(|e| same_tuple(e, w)).collect();
        assert_eq!(
            matches.len(),
            1,
            "expected exactly one flow (originator first) like {w}; got:\n{}",
            dump()
        );
        let ev = matches[0];
        check_envelope(ev);
        let f = &ev["flow"];
        for key in [
            "pkts_toserver",
            "pkts_toclient",
            "bytes_toserver",
            "bytes_toclient",
            "conn_state",
        ] {
            assert_eq!(f[key], w[key], "flow.{key} differs for {w}\nevent: {ev}");
        }
        if let Some(name) = w.get("server_name") {
            assert_eq!(&f["server_name"], name, "server_name: {ev}");
            assert_eq!(
                f["server_name_source"], w["server_name_source"],
                "server_name_source: {ev}"
            );
        }
        if w["proto"] == "TCP" {
            assert!(ev["tcp"]["tcp_flags"].is_string(), "tcp flags: {ev}");
        }
    }
}

fn check_capture(name: &str) {
    let pcap = pcap_path(name);
    assert!(pcap.is_file(), "{} missing", pcap.display());
    let expected = load_expected(&pcap);
    let replay = harness::replay_raw(&[&pcap], &[]);
    let _cleanup = RemoveOnDrop(replay.dir.clone());
    assert!(
        replay.output.status.success(),
        "kizuki replay {name} failed: {}",
        String::from_utf8_lossy(&replay.output.stderr)
    );
    check_dns(&replay, &expected);
    check_flows(&replay, &expected);
    check_dns_flow_links(&replay);
}

/// A DNS transaction and the flow it rode share flow_id and community_id.
fn check_dns_flow_links(replay: &harness::Replay) {
    for txn in replay.of_type("dns") {
        let flow = replay
            .of_type("flow")
            .find(|f| same_tuple(f, txn))
            .unwrap_or_else(|| panic!("no flow for dns event {txn}"));
        assert_eq!(flow["flow_id"], txn["flow_id"], "flow_id: {txn} vs {flow}");
        assert_eq!(
            flow["community_id"], txn["community_id"],
            "community_id: {txn} vs {flow}"
        );
    }
}

/// Removes the replay's output directory however the test ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn lo_dig_dns_over_udp_and_tcp() {
    check_capture("lo-dig.pcap");
}

#[test]
fn lo_curl_http_host() {
    check_capture("lo-curl.pcap");
}

/// Every committed `lo-*.pcap` has its expectations and stays small.
#[test]
fn every_loopback_capture_has_expectations() {
    let dir = harness::workspace_root().join("pcaps");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("pcaps dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("lo-") && name.ends_with(".pcap")) {
            continue;
        }
        n += 1;
        let size = std::fs::metadata(&path).expect("stat").len();
        assert!(size < 100_000, "{name} is {size} bytes; keep it < 100 KB");
        let expected = load_expected(&path);
        assert!(
            expected["dns"].is_array() && expected["flows"].is_array(),
            "{name}: bad expectations"
        );
    }
    assert!(n >= 2, "expected lo-dig.pcap and lo-curl.pcap in pcaps/");
}
