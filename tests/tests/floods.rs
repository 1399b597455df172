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
