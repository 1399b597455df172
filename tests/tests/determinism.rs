//! Packet time drives every clock and the sink merges the shards' records in packet-time
//! epochs, so two replays of one capture write byte-identical EVE — whatever the thread
//! scheduling — and the analyzers reach the same alerts.

use kizuki_tests::harness;

fn eve_bytes(r: &harness::Replay) -> Vec<u8> {
    std::fs::read(r.dir.join("eve.json")).expect("eve.json")
}

#[test]
fn replays_are_byte_identical() {
    let demo = harness::workspace_root().join("pcaps/demo.pcap");
    let a = harness::replay(&[&demo], &["--workers", "3"]);
    let b = harness::replay(&[&demo], &["--workers", "3"]);
    assert!(
        a.of_type("alert").count() > 0,
        "the demo capture has a beacon to find"
    );
    assert_eq!(
        eve_bytes(&a),
        eve_bytes(&b),
        "two replays of the same capture differ"
    );
    // The state file too: the inventory's address sets live in random-seeded hash sets,
    // and are written sorted.
    let state = |r: &harness::Replay| std::fs::read(r.dir.join("kizuki-state.json"));
    let (sa, sb) = (
        state(&a).expect("state file"),
        state(&b).expect("state file"),
    );
    assert!(
        String::from_utf8_lossy(&sa).contains("\"clients\""),
        "the demo's state has inventory roles with clients"
    );
    assert!(sa == sb, "two replays wrote different state files");
}

#[test]
fn alerts_do_not_depend_on_the_worker_count() {
    let demo = harness::workspace_root().join("pcaps/demo.pcap");
    let key = |r: &harness::Replay| {
        let mut v: Vec<String> = r
            .of_type("alert")
            .filter(|a| a["kizuki"]["update"] == false)
            .map(|a| {
                format!(
                    "{} {} {} {}",
                    a["kizuki"]["detector"], a["src_ip"], a["dest_ip"], a["kizuki"]["name"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let one = harness::replay(&[&demo], &["--workers", "1"]);
    let four = harness::replay(&[&demo], &["--workers", "4"]);
    assert_eq!(key(&one), key(&four));
}

/// With `[output] inventory = true` the inventory lines join the stream at fixed points
/// (after each epoch's events, before its alerts), so the file stays byte-identical.
#[test]
fn inventory_events_are_deterministic() {
    let demo = harness::workspace_root().join("pcaps/demo.pcap");
    let tmp = harness::tempdir("inventory-det");
    let cfg = tmp.join("inventory.toml");
    std::fs::write(&cfg, "[output]\ninventory = true\n").expect("write config");
    let args = ["--workers", "3", "-c", cfg.to_str().expect("utf-8 path")];
    let a = harness::replay(&[&demo], &args);
    let b = harness::replay(&[&demo], &args);
    assert!(
        a.of_type("inventory").count() > 0,
        "the demo capture has internal hosts"
    );
    assert_eq!(
        eve_bytes(&a),
        eve_bytes(&b),
        "two replays of the same capture differ"
    );
    // Changes are reported once: no host is new twice, no role is gained twice.
    let mut seen = std::collections::HashSet::new();
    for e in a.of_type("inventory") {
        let k = format!(
            "{} {} {} {}",
            e["src_ip"], e["vlan"], e["inventory"]["change"], e["inventory"]["role"]
        );
        assert!(seen.insert(k.clone()), "repeated: {k}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
