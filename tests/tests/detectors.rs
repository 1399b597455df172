//! J-CRAT detectors end to end: every `pcaps/jcrat-*.pcap` is replayed through the real
//! `kizuki replay -c pcaps/jcrat.toml` and its alerts of the scenario's detector are compared
//! with `<scenario>.alerts.json` (see `kizuki_tests::jcrat_scenarios`). Positive scenarios
//! must raise exactly the listed alerts; negative ones none.

use kizuki_tests::harness;
use kizuki_tests::jcrat_scenarios::{self, AlertExpect};
use std::path::PathBuf;

fn pcaps() -> PathBuf {
    harness::workspace_root().join("pcaps")
}

fn check(name: &str) {
    let dir = pcaps();
    let exp = AlertExpect::load(&dir.join(format!("{name}.alerts.json")))
        .unwrap_or_else(|e| panic!("{e} (run `kizuki-gen jcrat --out pcaps/`)"));
    let cfg = dir.join(&exp.config);
    let r = harness::replay(
        &[&dir.join(&exp.pcap)],
        &["-c", cfg.to_str().expect("utf-8 path")],
    );
    let errs = exp.compare(&r.events);
    assert!(
        errs.is_empty(),
        "{name}: {} difference(s) (EVE kept in {}):\n  {}",
        errs.len(),
        r.dir.display(),
        errs.join("\n  ")
    );
    // Every alert carries the contract fields.
    for a in r.of_type("alert") {
        assert!(a["src_ip"].is_string(), "{name}: alert without src_ip: {a}");
        assert!(a["kizuki"]["detector"].is_string(), "{a}");
        assert!(a["kizuki"]["dedupe_key"].is_string(), "{a}");
        assert!(a["alert"]["signature"].is_string(), "{a}");
    }
}

macro_rules! jcrat_tests {
    ($($det:ident),* $(,)?) => {
        mod pos {
            $( #[test] fn $det() { super::check(&format!("jcrat-{}-pos", stringify!($det))); } )*
        }
        mod neg {
            $( #[test] fn $det() { super::check(&format!("jcrat-{}-neg", stringify!($det))); } )*
        }
        const TESTED: &[&str] = &[$(stringify!($det)),*];
    };
}

jcrat_tests!(
    direct_ip,
    proxy_bypass,
    dns_bypass,
    ddns,
    paas,
    dns_tunnel,
    dga,
    volume,
    long_connection,
    op25b,
    mail_bruteforce,
    new_server,
);

#[test]
fn every_detector_has_scenarios() {
    for d in jcrat_scenarios::DETECTORS {
        assert!(TESTED.contains(d), "{d} has no test");
    }
    assert_eq!(TESTED.len(), jcrat_scenarios::DETECTORS.len());
}

/// The committed pcaps, expectations and config are what the generator writes.
#[test]
fn committed_files_match_generator() {
    let tmp = harness::tempdir("jcrat-gen");
    jcrat_scenarios::write_all(&tmp).expect("generate");
    let mut files = vec!["jcrat.toml".to_string()];
    for n in jcrat_scenarios::names() {
        files.push(format!("{n}.pcap"));
        files.push(format!("{n}.alerts.json"));
    }
    for f in files {
        let a = std::fs::read(pcaps().join(&f)).unwrap_or_else(|e| panic!("pcaps/{f}: {e}"));
        let b = std::fs::read(tmp.join(&f)).expect("generated");
        assert!(
            a == b,
            "pcaps/{f} differs from the generator's output: regenerate with \
             `cargo run -p kizuki-tests --bin kizuki-gen -- jcrat --out pcaps/`"
        );
        assert!(
            a.len() < 1 << 20,
            "pcaps/{f} is {} bytes (want < 1 MiB)",
            a.len()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// With every detector on, a flood of unique destinations and names keeps memory bounded
/// (the caps hold) and the replay succeeds.
#[test]
fn default_config_replays_all_scenarios_together() {
    let dir = pcaps();
    let files: Vec<PathBuf> = jcrat_scenarios::names()
        .iter()
        .map(|n| dir.join(format!("{n}.pcap")))
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let r = harness::replay(&refs, &[]);
    assert!(r.of_type("flow").count() > 50);
}
