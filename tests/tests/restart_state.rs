//! State across restarts: the demo capture replayed in two halves into the same output
//! directory. The beacon alerted in the first half is only *updated* in the second
//! (`kizuki.update: true`), and the inventory of the first half survives.

use kizuki_tests::harness;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Splits a classic little-endian pcap at packet time `cut` (seconds): (before, from).
fn split_pcap(src: &Path, cut: u32, dir: &Path) -> (PathBuf, PathBuf) {
    let b = std::fs::read(src).unwrap();
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "classic LE µs pcap");
    let (mut a, mut c) = (b[..24].to_vec(), b[..24].to_vec());
    let mut off = 24;
    while off + 16 <= b.len() {
        let sec = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        let rec = &b[off..off + 16 + len];
        if sec < cut { &mut a } else { &mut c }.extend_from_slice(rec);
        off += 16 + len;
    }
    let (pa, pc) = (dir.join("first.pcap"), dir.join("second.pcap"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pc, c).unwrap();
    (pa, pc)
}

fn first_ts(pcap: &Path) -> u32 {
    let b = std::fs::read(pcap).unwrap();
    u32::from_le_bytes(b[24..28].try_into().unwrap())
}

fn kizuki(args: &[&str]) -> std::process::Output {
    let out = Command::new(harness::kizuki_bin())
        .args(args)
        .output()
        .expect("spawn kizuki");
    assert!(
        out.status.success(),
        "kizuki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn beacon_alerts(eve: &Path, skip: usize) -> Vec<Value> {
    harness::read_eve(eve)
        .into_iter()
        .skip(skip)
        .filter(|e| e["event_type"] == "alert" && e["kizuki"]["detector"] == "beacon")
        .collect()
}

fn inventory_hosts(out: &[u8]) -> Vec<(String, f64)> {
    let v: Value = serde_json::from_slice(out).expect("inventory JSON");
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["ip"].as_str().unwrap().to_string(),
                h["first_seen"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn beacon_is_updated_not_realerted_and_inventory_survives_restart() {
    let root = harness::workspace_root();
    let demo = root.join("pcaps/demo.pcap");
    let tmp = harness::tempdir("restart");
    // The demo beacon alerts ~7 min in and updates at ~22 min: cut at 30 min.
    let (a, b) = split_pcap(&demo, first_ts(&demo) + 1800, &tmp);
    let (out, fresh) = (tmp.join("out"), tmp.join("fresh"));
    let o = out.to_str().unwrap();
    kizuki(&["replay", "--out", o, a.to_str().unwrap()]);
    let eve = out.join("eve.json");
    let first = beacon_alerts(&eve, 0);
    assert!(
        first.iter().any(|e| e["kizuki"]["update"] == false),
        "first half raises the beacon alert: {first:#?}"
    );
    let state: Value =
        serde_json::from_slice(&std::fs::read(out.join("kizuki-state.json")).expect("state file"))
            .expect("state file is JSON");
    assert_eq!(state["kizuki_state"], 1);
    assert!(state["analyzers"]["beacon"]["alerted"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    let inv_first =
        inventory_hosts(&kizuki(&["report", "--inventory", a.to_str().unwrap()]).stdout);
    assert!(!inv_first.is_empty());

    // Without state the second half alerts anew ...
    kizuki(&[
        "replay",
        "--out",
        fresh.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let no_state = beacon_alerts(&fresh.join("eve.json"), 0);
    assert!(
        no_state.iter().any(|e| e["kizuki"]["update"] == false),
        "control: {no_state:#?}"
    );

    // ... with it, the same alert is updated.
    let lines_before = harness::read_eve(&eve).len();
    kizuki(&["replay", "--out", o, b.to_str().unwrap()]);
    let second = beacon_alerts(&eve, lines_before);
    assert!(!second.is_empty(), "the ongoing beacon is still reported");
    for e in &second {
        assert_eq!(
            e["kizuki"]["update"], true,
            "an update, not a new alert: {e}"
        );
        assert!(first
            .iter()
            .any(|f| f["kizuki"]["dedupe_key"] == e["kizuki"]["dedupe_key"]));
    }

    // The inventory of the first half is still there (same first_seen) after the second.
    let inv = inventory_hosts(
        &kizuki(&["report", "--inventory", "--out", o, b.to_str().unwrap()]).stdout,
    );
    let inv_fresh =
        inventory_hosts(&kizuki(&["report", "--inventory", b.to_str().unwrap()]).stdout);
    for (ip, seen) in &inv_first {
        assert!(
            inv.iter().any(|(i, s)| i == ip && (s - seen).abs() < 1e-3),
            "{ip} (first seen {seen}) lost after the restart"
        );
    }
    assert!(inv.len() >= inv_fresh.len());
    assert!(
        inv_first
            .iter()
            .any(|(ip, _)| !inv_fresh.iter().any(|(i, _)| i == ip))
            || inv_first
                .iter()
                .any(|(ip, s)| inv_fresh.iter().any(|(i, f)| i == ip && f > s)),
        "the first half adds something the second half alone does not show"
    );

    // A corrupt state file: one warning line, the run goes on.
    std::fs::write(
        out.join("kizuki-state.json"),
        b"{\"kizuki_state\": 1, \"anal",
    )
    .unwrap();
    let r = kizuki(&["replay", "--out", o, b.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    let warn: Vec<&str> = err.lines().filter(|l| l.contains("state file")).collect();
    assert_eq!(warn.len(), 1, "{err}");
    assert!(warn[0].contains("ignored"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
