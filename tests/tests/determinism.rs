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
