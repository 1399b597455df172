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
    // Inventory events are on by default (`[output] inventory`): each one names a host
    // that the scenario's own flows showed.
    for inv in r.of_type("inventory") {
        let host = inv["src_ip"].as_str().unwrap_or_default();
        assert!(
            r.of_type("flow")
                .any(|f| f["src_ip"] == host || f["dest_ip"] == host),
            "{name}: inventory line for a host no flow shows: {inv}"
        );
    }
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

/// `[output] inventory = true` on the `new_server` scenario: one `inventory` line per new
/// internal host and per new server role (during the learning period too, where no alert is
/// raised), never repeated, each valid against `docs/schema/eve-inventory.schema.json` and
/// naming the flow that showed it.
#[test]
fn inventory_events_on_the_new_server_scenario() {
    let tmp = harness::tempdir("inventory-cfg");
    let cfg = tmp.join("inventory.toml");
    std::fs::write(
        &cfg,
        format!("{}\n[output]\ninventory = true\n", jcrat_scenarios::CONFIG),
    )
    .expect("write config");
    let pcap = pcaps().join("jcrat-new_server-pos.pcap");
    let r = harness::replay(&[&pcap], &["-c", cfg.to_str().expect("utf-8 path")]);
    let inv: Vec<&serde_json::Value> = r.of_type("inventory").collect();
    let got: Vec<String> = inv
        .iter()
        .map(|e| {
            let i = &e["inventory"];
            format!(
                "{} {} {} roles={} learning={} {}:{}",
                e["src_ip"].as_str().unwrap_or("?"),
                i["change"].as_str().unwrap_or("?"),
                i["role"].as_str().unwrap_or("-"),
                i["roles"],
                i["learning"],
                i["evidence"]["seen_as"].as_str().unwrap_or("?"),
                i["evidence"]["port"],
            )
        })
        .collect();
    let want = [
        // During the 60 s learning period: hosts and roles are reported, no alert.
        "10.1.0.21 new_host - roles=[] learning=true client:80",
        "10.1.0.80 new_host - roles=[] learning=true server:80",
        "10.1.0.80 new_role web roles=[\"web\"] learning=true server:80",
        "10.1.0.80 new_role ntp roles=[\"ntp\",\"web\"] learning=true server:123",
        // Heartbeats: 9000+ is no role, but the answering host exists. Later heartbeats and
        // the second client of the web server change nothing.
        "10.1.0.250 new_host - roles=[] learning=true client:9000",
        "10.1.0.251 new_host - roles=[] learning=true server:9000",
        // After learning.
        "10.1.0.22 new_host - roles=[] learning=false client:80",
        "10.1.0.81 new_host - roles=[] learning=false server:53",
        "10.1.0.81 new_role dns roles=[\"dns\"] learning=false server:53",
    ];
    assert_eq!(got, want, "EVE kept in {}", r.dir.display());
    // The schema holds, and each line names a flow record of the same file.
    let errs = kizuki_tests::schema::check_lines(&r.events, &["inventory", "flow", "dns"]);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    let flow_ids: std::collections::HashSet<u64> = r
        .of_type("flow")
        .filter_map(|f| f["flow_id"].as_u64())
        .collect();
    for e in &inv {
        let id = e["flow_id"].as_u64().expect("flow_id");
        assert!(flow_ids.contains(&id), "no flow record for {e}");
        assert!(e.get("vlan").is_none(), "untagged capture: {e}");
    }
    // The alert is still raised once, for the role gained after learning.
    let alerts: Vec<_> = r
        .of_type("alert")
        .filter(|a| a["kizuki"]["detector"] == "new_server")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["dest_ip"], "10.1.0.81");
    assert_eq!(
        r.summary["eve_events"].as_u64(),
        Some(r.events.len() as u64)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The host key includes the VLAN ids: on the VLAN capture, the DNS server is a new host with
/// a new `dns` role once per VLAN context, each line carrying the `vlan` of its flow.
#[test]
fn inventory_events_carry_the_vlan_host_key() {
    let tmp = harness::tempdir("inventory-vlan");
    let cfg = tmp.join("inventory.toml");
    std::fs::write(&cfg, "[output]\ninventory = true\n").expect("write config");
    let pcap = pcaps().join("vlan.pcap");
    let r = harness::replay(&[&pcap], &["-c", cfg.to_str().expect("utf-8 path")]);
    let flow_vlan: std::collections::HashMap<u64, serde_json::Value> = r
        .of_type("flow")
        .filter_map(|f| Some((f["flow_id"].as_u64()?, f["vlan"].clone())))
        .collect();
    let mut contexts: Vec<String> = r
        .of_type("flow")
        .filter(|f| f["dest_ip"] == "10.0.2.53" && f["dest_port"] == 53)
        .map(|f| f["vlan"].to_string())
        .collect();
    contexts.sort();
    contexts.dedup();
    assert!(contexts.len() >= 3, "tagged and untagged DNS: {contexts:?}");
    let mut roles: Vec<String> = r
        .of_type("inventory")
        .filter(|e| e["src_ip"] == "10.0.2.53" && e["inventory"]["change"] == "new_role")
        .map(|e| {
            let id = e["flow_id"].as_u64().expect("flow_id");
            assert_eq!(
                flow_vlan.get(&id),
                Some(&e["vlan"]),
                "vlan of its flow: {e}"
            );
            assert_eq!(e["inventory"]["role"], "dns");
            e["vlan"].to_string()
        })
        .collect();
    roles.sort();
    assert_eq!(roles, contexts, "one new dns role per VLAN context");
    let errs = kizuki_tests::schema::check_lines(&r.events, &["inventory"]);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A ddns alert rises to `high` once the same host's traffic to its name also raises a
/// direct_ip or a beacon alert (DETECTIONS.md); with `[detectors.escalation]` off it stays.
#[test]
fn ddns_alerts_rise_when_direct_ip_or_beacon_alerts_share_their_name() {
    for with in ["direct_ip", "beacon"] {
        let tmp = harness::tempdir(&format!("escalation-{with}"));
        let sc = jcrat_scenarios::escalation_scenario(with).expect("known scenario");
        let pcap = tmp.join(format!("escalation-{with}.pcap"));
        std::fs::write(&pcap, sc.pcap_bytes()).expect("write pcap");
        let base = std::fs::read_to_string(pcaps().join("jcrat.toml")).expect("jcrat.toml");
        for on in [true, false] {
            let cfg = tmp.join(format!("on-{on}.toml"));
            let extra = if on {
                String::new()
            } else {
                "\n[detectors.escalation]\nenabled = false\n".to_string()
            };
            std::fs::write(&cfg, format!("{base}{extra}")).expect("write config");
            let r = harness::replay(&[&pcap], &["-c", cfg.to_str().expect("utf-8 path")]);
            let of = |det: &str| -> Vec<serde_json::Value> {
                r.of_type("alert")
                    .filter(|a| a["kizuki"]["detector"] == det)
                    .cloned()
                    .collect()
            };
            let (ddns, cause) = (of("ddns"), of(with));
            assert!(
                cause
                    .iter()
                    .any(|a| a["kizuki"]["name"] == "c2.evil.duckdns.org"),
                "{with}: no {with} alert on the name: {cause:?}"
            );
            let first = ddns.first().expect("a ddns alert");
            assert_eq!(first["kizuki"]["update"], false, "{first}");
            assert_eq!(first["kizuki"]["severity"], "medium", "{first}");
            let high: Vec<_> = ddns
                .iter()
                .filter(|a| a["kizuki"]["severity"] == "high")
                .collect();
            let counted = &r.summary["alert_escalations"];
            if !on {
                assert!(
                    high.is_empty(),
                    "{with}: raised with escalation off: {high:?}"
                );
                assert!(counted.get("ddns").is_none(), "{counted}");
                continue;
            }
            // Counted for the high-severity rule (an update is not in kizuki_alerts_total).
            assert_eq!(counted["ddns"], 1, "{}", r.summary);
            assert_eq!(counted["paas"], 0, "{}", r.summary);
            assert_eq!(high.len(), 1, "{with}: {ddns:?}");
            let up = high[0];
            assert_eq!(up["kizuki"]["update"], true, "{up}");
            assert_eq!(up["kizuki"]["dedupe_key"], first["kizuki"]["dedupe_key"]);
            assert_eq!(up["kizuki"]["escalated_by"]["detector"], with, "{up}");
            assert_eq!(up["kizuki"]["severity_before"], "medium", "{up}");
            assert_eq!(up["alert"]["severity"], 1, "{up}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
