//! Floods at small scale (200 k packets each): with tight caps the sensor counts its
//! evictions/overflows and still reports every legitimate flow and DNS transaction mixed into
//! the flood. Peak RSS is measured by `make stress` (scripts/stress.sh) at 10 M packets.

use kizuki_tests::floods::{self, Kind};
use kizuki_tests::harness;

const PACKETS: u64 = 200_000;

const CONFIG: &str = "\
[flow]
max_flows = 20000
[fragments]
max_datagrams = 512
[dns]
max_pending = 5000
";

fn run(kind: Kind) {
    let dir = harness::tempdir(&format!("flood-{}", kind.name()));
    let pcap = dir.join(format!("{}.pcap", kind.name()));
    let exp = floods::write_flood(&pcap, kind, PACKETS, 7).expect("write flood");
    let cfg = dir.join("kizuki.toml");
    std::fs::write(&cfg, CONFIG).expect("write config");
    let mut r = harness::replay(&[&pcap], &["-c", cfg.to_str().expect("utf-8 path")]);
    assert_eq!(r.summary["packets"], exp.packets, "{}", kind.name());
    for (ptr, label) in floods::required_counters(kind) {
        let v = r.summary.pointer(ptr).and_then(|v| v.as_u64()).unwrap_or(0);
        if v == 0 {
            let d = r.keep().display().to_string();
            panic!("{}: {label} not counted (output in {d})", kind.name());
        }
    }
    let c = floods::check_eve(&exp, &r.dir).expect("read eve");
    if !c.missing.is_empty() {
        let d = r.keep().display().to_string();
        panic!(
            "{}: {} legitimate record(s) missing (output in {d}):\n{}",
            kind.name(),
            c.missing.len(),
            c.missing.join("\n")
        );
    }
    assert!(c.flows_found >= 20 && c.dns_found >= 20, "{c:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn syn_flood_evicts_and_keeps_legit() {
    run(Kind::Syn);
}

#[test]
fn water_torture_overflows_and_keeps_legit() {
    run(Kind::WaterTorture);
}

#[test]
fn fragment_flood_fills_table_and_keeps_legit() {
    run(Kind::Fragments);
}

#[test]
fn mixed_flood_keeps_legit() {
    run(Kind::Mixed);
}

/// A SYN flood from random 100.64.0.0/10 sources (internal by default) with inventory events
/// on: far more new hosts than the table holds, but no more `new_host` lines than
/// `max_hosts` (hosts entering a full table are not reported).
#[test]
fn syn_flood_inventory_events_are_bounded_by_the_host_table() {
    let dir = harness::tempdir("flood-inventory");
    let pcap = dir.join("syn.pcap");
    floods::write_flood(&pcap, Kind::Syn, PACKETS, 7).expect("write flood");
    let cfg = dir.join("kizuki.toml");
    std::fs::write(
        &cfg,
        format!("{CONFIG}[output]\ninventory = true\n[detectors.inventory]\nmax_hosts = 1000\n"),
    )
    .expect("write config");
    let r = harness::replay(&[&pcap], &["-c", cfg.to_str().expect("utf-8 path")]);
    let sources: std::collections::HashSet<&str> = r
        .of_type("flow")
        .filter_map(|f| f["src_ip"].as_str())
        .filter(|s| s.starts_with("100."))
        .collect();
    assert!(sources.len() > 10_000, "{} flood sources", sources.len());
    let new_hosts = r
        .of_type("inventory")
        .filter(|e| e["inventory"]["change"] == "new_host")
        .count();
    assert!(
        (900..=1000).contains(&new_hosts),
        "{new_hosts} new_host lines"
    );
    assert!(r.of_type("inventory").count() <= 1000 * 13);
    let _ = std::fs::remove_dir_all(&dir);
}
