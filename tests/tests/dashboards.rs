//! Structural checks on the Grafana dashboards and the Prometheus rules in `dashboards/`:
//! valid JSON, stable and unique uids, unique panel ids, a `datasource` variable (type
//! prometheus) used by every panel and target, a unit on every panel, the committed JSON
//! equal to what `dashboards/generate.py` writes, provisioning files present; `promtool
//! check rules`, `promtool test rules` (a unit test for every rule) and `promtool check
//! config` of the example Prometheus configuration.

mod common;

use common::*;
use kizuki_tests::harness;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::process::Command;

const UIDS: &[&str] = &["kizuki-detections", "kizuki-health", "kizuki-overview"];

#[test]
fn dashboards_are_well_formed() {
    let boards = dashboards();
    let uids: BTreeSet<String> = boards
        .iter()
        .map(|(f, d)| {
            let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{f}: no uid"));
            assert_eq!(format!("{uid}.json"), *f, "file name follows the uid");
            uid.to_string()
        })
        .collect();
    assert_eq!(uids.len(), boards.len(), "uids unique");
    assert_eq!(
        uids.iter().map(String::as_str).collect::<Vec<_>>(),
        UIDS,
        "stable uids (Grafana links and provisioning depend on them)"
    );
    for (f, d) in &boards {
        let text = d.to_string();
        assert!(
            !text.contains("DS_PROMETHEUS"),
            "{f}: ${{DS_PROMETHEUS}} breaks file provisioning"
        );
        assert!(
            d["__inputs"].is_null(),
            "{f}: export-for-sharing __inputs not allowed"
        );
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ds = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{f}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{f}");
        assert_eq!(ds["query"], "prometheus", "{f}");
        for v in &vars {
            if v["type"] == "query" {
                assert_eq!(
                    v["datasource"]["uid"], "${datasource}",
                    "{f}: variable {}",
                    v["name"]
                );
            }
        }
        let mut ids = HashSet::new();
        let ps = panels(d);
        assert!(ps.len() > 3, "{f}: too few panels");
        for p in &ps {
            let title = p["title"].as_str().unwrap_or("");
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{f}: panel {title:?} has no id"));
            assert!(ids.insert(id), "{f}: duplicate panel id {id} ({title:?})");
            assert!(!title.is_empty(), "{f}: panel {id} has no title");
            let gp = &p["gridPos"];
            for k in ["x", "y", "w", "h"] {
                assert!(gp[k].is_u64(), "{f}: panel {title:?} gridPos.{k}");
            }
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(
                p["datasource"]["type"], "prometheus",
                "{f}: panel {title:?}"
            );
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{f}: panel {title:?}"
            );
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(!unit.is_empty(), "{f}: panel {title:?} has no unit");
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{f}: panel {title:?} has no targets");
            let mut refs = HashSet::new();
            for t in &targets {
                assert_eq!(
                    t["datasource"]["uid"], "${datasource}",
                    "{f}: panel {title:?} target"
                );
                assert!(
                    refs.insert(t["refId"].to_string()),
                    "{f}: panel {title:?}: duplicate refId"
                );
                let e = t["expr"].as_str().unwrap_or("");
                assert!(!e.trim().is_empty(), "{f}: panel {title:?}: empty expr");
                assert!(
                    e.contains("$sensor") && e.contains("$job"),
                    "{f}: panel {title:?}: expr ignores the job/sensor variables: {e}"
                );
            }
        }
    }
}

#[test]
fn dashboards_match_generator() {
    if which("python3").is_none() {
        assert!(!in_ci(), "python3 missing under CI=true");
        println!("SKIPPED dashboards_match_generator: python3 missing");
        return;
    }
    let dir = DirGuard::new("dashgen");
    let root = harness::workspace_root();
    let st = Command::new("python3")
        .arg(root.join("dashboards/generate.py"))
        .arg("--out")
        .arg(&dir.0)
        .status()
        .expect("run generate.py");
    assert!(st.success());
    for uid in UIDS {
        let f = format!("{uid}.json");
        let gen: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.0.join(&f)).unwrap()).unwrap();
        let committed: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("dashboards/grafana").join(&f)).unwrap(),
        )
        .unwrap();
        assert!(
            gen == committed,
            "dashboards/grafana/{f} is stale: run `make dashboards`"
        );
    }
}

#[test]
fn provisioning_files() {
    let root = harness::workspace_root().join("dashboards/provisioning");
    let ds = std::fs::read_to_string(root.join("datasources/kizuki-prometheus.yml"))
        .expect("datasource provisioning");
    assert!(ds.contains("type: prometheus"));
    let db = std::fs::read_to_string(root.join("dashboards/kizuki.yml"))
        .expect("dashboard provisioning");
    assert!(db.contains("type: file") && db.contains("providers:"));
}

#[test]
fn every_rule_has_severity_annotations_and_a_unit_test() {
    let text = std::fs::read_to_string(rules_path()).unwrap();
    let tests =
        std::fs::read_to_string(rules_path().with_file_name("kizuki.rules_test.yml")).unwrap();
    let rules = rule_exprs();
    assert!(rules.len() >= 6, "rules: {rules:?}");
    // Each `- alert:` block has severity, summary and description.
    for block in text.split("- alert:").skip(1) {
        let name = block.split_whitespace().next().unwrap();
        assert!(block.contains("severity:"), "{name}: no severity label");
        assert!(block.contains("summary:"), "{name}: no summary");
        assert!(block.contains("description:"), "{name}: no description");
        assert!(
            tests.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - exp_labels"
            )),
            "{name}: no firing case in kizuki.rules_test.yml"
        );
        assert!(
            tests.contains(&format!("alertname: {name}\n        exp_alerts: []")),
            "{name}: no quiet case in kizuki.rules_test.yml"
        );
    }
}

#[test]
fn promtool_checks_and_unit_tests() {
    if skip_unless("promtool_checks_and_unit_tests", false, &["promtool"]) {
        return;
    }
    let root = harness::workspace_root();
    let run = |args: &[&str], dir: &std::path::Path| {
        let o = Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("promtool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "promtool {args:?} failed:\n{text}");
        text
    };
    let rules = root.join("dashboards/rules");
    let out = run(&["check", "rules", "kizuki.rules.yml"], &rules);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run(&["test", "rules", "kizuki.rules_test.yml"], &rules);
    assert!(out.contains("SUCCESS"), "{out}");
    run(
        &["check", "config", "prometheus.yml"],
        &root.join("dashboards/examples"),
    );
}
