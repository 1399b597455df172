//! Replays every scenario pcap in `pcaps/` through `kizuki replay` and compares the EVE output
//! with `<scenario>.expected.json` (see `kizuki_tests::expect`). Also checks that the committed
//! pcaps are what the generator produces (determinism) and stay small.

use kizuki_tests::expect::{self, Expected};
use kizuki_tests::harness;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn pcaps_dir() -> PathBuf {
    harness::workspace_root().join("pcaps")
}

/// The decode-error count of the summary JSON: `decode_errors_total` if present, else the sum
/// of the numbers under keys mentioning decode errors; `None` when there is no such key.
fn decode_errors(summary: &Value) -> Option<u64> {
    fn sum_numbers(v: &Value) -> u64 {
        match v {
            Value::Number(n) => n.as_u64().unwrap_or(0),
            Value::Object(m) => m.values().map(sum_numbers).sum(),
            Value::Array(a) => a.iter().map(sum_numbers).sum(),
            _ => 0,
        }
    }
    fn find<'a>(v: &'a Value, pred: &dyn Fn(&str) -> bool, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if pred(k) {
                        out.push(x);
                    } else {
                        find(x, pred, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| find(x, pred, out)),
            _ => {}
        }
    }
    let mut hits = Vec::new();
    find(summary, &|k| k == "decode_errors_total", &mut hits);
    if hits.is_empty() {
        find(summary, &|k| k.contains("decode_error"), &mut hits);
    }
    (!hits.is_empty()).then(|| hits.into_iter().map(sum_numbers).sum())
}

fn check(name: &str) {
    check_with(name, &[]);
}

/// [`check`] with more `kizuki replay` arguments.
fn check_with(name: &str, extra: &[&str]) {
    let dir = pcaps_dir();
    let exp = Expected::load(&dir.join(format!("{name}.expected.json"))).unwrap_or_else(|e| {
        panic!("scenario {name}: {e} (run `kizuki-gen scenarios --out pcaps/`)")
    });
    let pcap = dir.join(&exp.pcap);
    let r = harness::replay(&[&pcap], extra);
    let mut errs = expect::compare(&exp, &r.events);
    if exp.min_decode_errors > 0 {
        match decode_errors(&r.summary) {
            Some(n) if n < exp.min_decode_errors => errs.push(format!(
                "[{name}] summary counts {n} decode errors, want at least {}",
                exp.min_decode_errors
            )),
            Some(_) => {}
            None => eprintln!(
                "[{name}] note: the summary JSON has no decode-error counter; not checked \
                 (want at least {})",
                exp.min_decode_errors
            ),
        }
    }
    assert!(
        errs.is_empty(),
        "scenario {name}: {} difference(s) from {name}.expected.json (EVE kept in {}):\n  {}",
        errs.len(),
        r.dir.display(),
        errs.join("\n  ")
    );
}

macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

scenario_tests!(
    dns_udp,
    dns_tcp,
    tcp_states,
    vlan,
    fragments,
    tunnels,
    names,
    malformed,
    linktype_sll,
    linktype_raw,
    encap,
    ipv6_ext,
    tcp_reassembly,
);

/// Scenario names of the generator's expected files in pcaps/ (other `*.expected.json` files,
/// e.g. the loopback recordings, have no `scenario` key and are tested elsewhere).
fn expected_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(pcaps_dir())
        .expect("pcaps/ exists")
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().into_string().ok()?;
            let stem = n.strip_suffix(".expected.json")?.to_string();
            let text = std::fs::read_to_string(e.path()).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            v.get("scenario").is_some().then_some(stem)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_scenario_is_committed_and_tested() {
    let files = expected_files();
    for n in kizuki_tests::scenarios::NAMES {
        assert!(
            files.iter().any(|f| f == n),
            "pcaps/{n}.expected.json missing"
        );
        assert!(
            TESTED.contains(n),
            "scenario {n} has no test in tests/scenarios.rs"
        );
    }
    for f in &files {
        assert!(
            TESTED.contains(&f.as_str()),
            "pcaps/{f}.expected.json has no test in tests/scenarios.rs"
        );
    }
}

#[test]
fn committed_pcaps_are_small() {
    for n in expected_files() {
        let len = std::fs::metadata(pcaps_dir().join(format!("{n}.pcap")))
            .expect("scenario pcap")
            .len();
        assert!(
            len < 1 << 20,
            "pcaps/{n}.pcap is {len} bytes (want < 1 MiB)"
        );
    }
    if let Ok(m) = std::fs::metadata(pcaps_dir().join("demo.pcap")) {
        assert!(
            m.len() <= 2 << 20,
            "pcaps/demo.pcap is {} bytes (want ≤ 2 MiB)",
            m.len()
        );
    }
}

fn run_gen(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_kizuki-gen"))
        .args(args)
        .output()
        .expect("run kizuki-gen");
    assert!(
        out.status.success(),
        "kizuki-gen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same_bytes(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
    let y = std::fs::read(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
    assert!(
        x == y,
        "{} differs from the generator's output {} ({} vs {} bytes): regenerate with \
         `cargo run -p kizuki-tests --bin kizuki-gen -- scenarios --out pcaps/` (and `demo --out \
         pcaps/demo.pcap`)",
        a.display(),
        b.display(),
        x.len(),
        y.len()
    );
}

#[test]
fn generator_is_deterministic() {
    let tmp = harness::tempdir("gen");
    let t = tmp.to_str().expect("utf-8 temp path");
    run_gen(&["scenarios", "--out", t]);
    for n in kizuki_tests::scenarios::NAMES {
        for ext in ["pcap", "expected.json"] {
            let f = format!("{n}.{ext}");
            same_bytes(&pcaps_dir().join(&f), &tmp.join(&f));
        }
    }
    if pcaps_dir().join("demo.pcap").exists() {
        let d = tmp.join("demo.pcap");
        run_gen(&["demo", "--out", d.to_str().expect("utf-8")]);
        same_bytes(&pcaps_dir().join("demo.pcap"), &d);
    }
    // Bench and flows captures: same seed, same bytes.
    for (cmd, n, a, b) in [
        ("bench", "--packets", "b1.pcap", "b2.pcap"),
        ("flows", "--flows", "f1.pcap", "f2.pcap"),
    ] {
        for f in [a, b] {
            run_gen(&[
                cmd,
                n,
                "5000",
                "--seed",
                "42",
                "--out",
                tmp.join(f).to_str().expect("utf-8"),
            ]);
        }
        same_bytes(&tmp.join(a), &tmp.join(b));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The demo capture replays and shows what it was built to show.
#[test]
fn demo_replays() {
    let pcap = pcaps_dir().join("demo.pcap");
    if !pcap.exists() {
        eprintln!("pcaps/demo.pcap absent; skipped");
        return;
    }
    let r = harness::replay(&[&pcap], &[]);
    let flows: Vec<&Value> = r.of_type("flow").collect();
    assert!(flows.len() > 300, "only {} flow records", flows.len());
    let beacons = flows
        .iter()
        .filter(|f| f["flow"]["server_name"] == "cdn-update.syncsvc-telemetry.example")
        .count();
    assert!(
        beacons >= 55,
        "{beacons} callback flows with the beacon SNI, want ≥ 55"
    );
    let nx = r
        .of_type("dns")
        .filter(|d| d["dns"]["rcode"] == "NXDOMAIN")
        .count();
    assert!(nx >= 30, "{nx} NXDOMAIN transactions, want ≥ 30");
    let http = flows
        .iter()
        .filter(|f| f["flow"]["server_name_source"] == "http_host")
        .count();
    assert!(http > 5, "{http} flows named by HTTP Host");
}

/// Kizuki's own counts on `malformed.pcap`, by reason (the scenario's expectation is a floor
/// any decoder must reach; these are exact). `bad_transport`: frame 14's TCP data offset and
/// the same fault inside fragments (16), which only the reassembled datagram shows.
#[test]
fn malformed_drops_are_counted_by_reason() {
    let r = harness::replay(&[&pcaps_dir().join("malformed.pcap")], &[]);
    let d = &r.summary["decode_errors"];
    assert_eq!(d["bad_transport"], 2, "{d}");
    assert_eq!(d["bad_ip_header"], 4, "{d}");
    assert_eq!(d["truncated"], 5, "{d}");
    assert_eq!(r.summary["decode_errors_total"], 11, "{}", r.summary);
}

/// Fragments are reassembled before packets are spread over the workers: a fragmented tunnel
/// packet belongs to the shard of its inner hosts, which only the whole datagram shows. With
/// reassembly in the workers, the DNS responses of `tunnels` landed on another worker than
/// their queries for some worker counts (3, 4, 5, 8 here), and each transaction came out as
/// an unanswered query plus an orphan response.
#[test]
fn tunnels_and_fragments_do_not_depend_on_the_worker_count() {
    for w in ["1", "3", "4", "5"] {
        check_with("tunnels", &["--workers", w]);
        check_with("fragments", &["--workers", w]);
    }
}
