//! Beacon-detector evaluation: the label format written by `kizuki-gen beacon-eval`, reading
//! `beacon` / `dns_sinkhole_periodic` alerts out of `eve.json`, matching them to labels, and the
//! recall / precision report printed by `kizuki-eval-beacon`.
//!
//! Matching rules (documented here, relied on by the report):
//! - Alerts are folded by dedupe key (`kizuki.dedupe_key`, or detector|src|dest|port|name when
//!   absent), per pcap: an alert and its `update:true` refreshes count once.
//! - A `beacon` alert matches a malicious label when `src_ip` equals the label's source and
//!   (`dest_ip` is one of the label's destination IPs, or `kizuki.name` equals the label's name).
//!   Any expected detector is accepted for a `beacon` alert (a DNS-only beacon caught by the
//!   generic detector still counts).
//! - A `dns_sinkhole_periodic` alert matches a label whose expected detector is
//!   `dns_sinkhole_periodic` by `src_ip` + `kizuki.name` only.
//! - A label is detected when at least one distinct alert matches it. Recall is computed over
//!   `class == "detectable"` labels (jitter ≤ 50 %, missed ≤ 30 %, enough beats).
//! - Precision = distinct alerts matching a detectable or beyond-spec malicious label / all
//!   distinct beacon-family alerts. Everything else is a false positive, attributed to the
//!   benign class whose (src, dst IP or name) it matches, to `too_short` when it hits a
//!   must-not-fire beacon, or to `unlabeled`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Detector names this harness scores.
pub const DET_BEACON: &str = "beacon";
pub const DET_DNS: &str = "dns_sinkhole_periodic";

/// Label classes of malicious beacons.
pub const CLASS_DETECTABLE: &str = "detectable";
pub const CLASS_TOO_SHORT: &str = "too_short";
pub const CLASS_BEYOND: &str = "beyond_spec";

/// One malicious periodic source.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BeaconLabel {
    /// Unique within the corpus, e.g. `60s/tls/j25-symmetric/m10#3`.
    pub id: String,
    /// `tls` | `http` | `raw` (new TCP connection per beat), `keepalive` (one long TLS
    /// session), `rotating` (one name, several IPs, DNS lookup each beat), `alternating`
    /// (two periods), `dns_nxdomain` / `dns_sinkhole` (DNS-only).
    pub kind: String,
    /// `10s` | `60s` | `300s` | `1h` | `alt` (two alternating periods).
    pub period_class: String,
    /// Nominal sleep(s) of the implant; two values for `alternating`.
    pub periods_s: Vec<f64>,
    /// Mean slot-to-slot gap actually scheduled (missed slots included), seconds.
    pub mean_gap_s: f64,
    /// Jitter fraction (0, 0.1, 0.25, 0.5; 0.75 for beyond-spec).
    pub jitter: f64,
    /// `none` | `symmetric` (sleep × (1 + U[−j, j])) | `one_sided` (sleep × (1 − U[0, j]),
    /// Cobalt Strike style).
    pub jitter_kind: String,
    /// Fraction of slots with no traffic.
    pub missed: f64,
    /// Beats present in the capture.
    pub beats: u32,
    /// Scheduled slots (beats + missed).
    pub slots: u32,
    /// Packet time of the first and last beat (epoch seconds).
    pub first_ts: f64,
    pub last_ts: f64,
    pub src_ip: String,
    pub dst_ips: Vec<String>,
    pub dst_port: u16,
    /// `TCP` | `UDP`.
    pub proto: String,
    /// SNI / Host / queried name; `None` for direct-to-IP beacons.
    pub name: Option<String>,
    /// `beacon` | `dns_sinkhole_periodic`.
    pub expected_detector: String,
    /// `detectable` (in recall), `too_short` (must not fire), `beyond_spec` (jitter or missed
    /// beyond the targets: reported, not in recall, alerts on it are true positives).
    pub class: String,
}

/// One benign (src, destination) pair.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BenignLabel {
    /// `browsing`, `ntp`, `update_check`, `av_update`, `chat_keepalive`, `poisson_poller`,
    /// `streaming`, `long_flow`, `wpad_nxdomain`, `dns_typo`, `monitoring`.
    pub class: String,
    /// Whether this source is genuinely periodic (allowlist / prevalence territory).
    pub periodic: bool,
    pub src_ip: String,
    pub dst_ips: Vec<String>,
    pub dst_port: Option<u16>,
    pub name: Option<String>,
}

/// Labels of one pcap.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PcapLabels {
    pub file: String,
    pub start_ts: f64,
    pub duration_s: f64,
    pub packets: u64,
    pub bytes: u64,
    pub hosts: u32,
    pub beacons: Vec<BeaconLabel>,
    pub benign: Vec<BenignLabel>,
}

/// `labels.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Labels {
    pub version: u32,
    pub seed: u64,
    pub scale: String,
    pub pcaps: Vec<PcapLabels>,
}

/// One alert line of `eve.json` (beacon family only).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub pcap: String,
    pub detector: String,
    pub src_ip: String,
    pub dest_ip: Option<String>,
    pub dest_port: Option<u16>,
    pub name: Option<String>,
    pub period_s: Option<f64>,
    pub beats: Option<u64>,
    /// Packet time (epoch seconds) of the line.
    pub ts: Option<f64>,
    pub dedupe_key: String,
    pub update: bool,
}

impl Alert {
    /// Dedupe key scoped to its pcap.
    fn key(&self) -> (String, String) {
        (self.pcap.clone(), self.dedupe_key.clone())
    }
}

/// Parses EVE `timestamp` (`2026-11-25T19:55:12.123456+0000`) into epoch seconds.
pub fn parse_eve_ts(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        frac = format!("0.{}", &r[..n]).parse().ok()?;
        rest = &r[n..];
    }
    let mut off = 0i64;
    if rest.len() >= 5 && (rest.starts_with('+') || rest.starts_with('-')) {
        let hh: i64 = rest.get(1..3)?.parse().ok()?;
        let mm: i64 = rest.get(rest.len() - 2..)?.parse().ok()?;
        off = (hh * 3600 + mm * 60) * if rest.starts_with('-') { -1 } else { 1 };
    }
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - off) as f64 + frac)
}

/// Beacon-family alerts of one `eve.json`; also returns how many other alert lines were seen.
pub fn parse_alerts(pcap: &str, eve: &str) -> Result<(Vec<Alert>, usize), String> {
    let mut out = Vec::new();
    let mut others = 0;
    for (i, line) in eve.lines().enumerate() {
        if line.trim().is_empty() || !line.contains("\"alert\"") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("eve line {}: {e}", i + 1))?;
        if v["event_type"] != "alert" {
            continue;
        }
        let k = &v["kizuki"];
        let det = k["detector"].as_str().unwrap_or("");
        if det != DET_BEACON && det != DET_DNS {
            others += 1;
            continue;
        }
        let s = |x: &serde_json::Value| x.as_str().map(str::to_string);
        let src = s(&v["src_ip"]).unwrap_or_default();
        let dst = s(&v["dest_ip"]);
        let port = v["dest_port"].as_u64().map(|p| p as u16);
        let name = s(&k["name"]).filter(|n| !n.is_empty());
        let dedupe = match &k["dedupe_key"] {
            serde_json::Value::Null => format!(
                "{det}|{src}|{}|{}|{}",
                dst.as_deref().unwrap_or("-"),
                port.map(|p| p.to_string()).unwrap_or_default(),
                name.as_deref().unwrap_or("-")
            ),
            serde_json::Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        out.push(Alert {
            pcap: pcap.to_string(),
            detector: det.to_string(),
            src_ip: src,
            dest_ip: dst,
            dest_port: port,
            name,
            period_s: k["period_s"].as_f64(),
            beats: k["beats"].as_u64(),
            ts: v["timestamp"].as_str().and_then(parse_eve_ts),
            dedupe_key: dedupe,
            update: k["update"].as_bool().unwrap_or(false),
        });
    }
    Ok((out, others))
}

/// One dedupe key's alerts folded together.
#[derive(Clone, Debug, PartialEq)]
pub struct DistinctAlert {
    /// The first line seen (the raise, normally).
    pub first: Alert,
    /// Lines folded into it (1 + updates).
    pub lines: usize,
    /// Period of the most recent line that had one.
    pub last_period_s: Option<f64>,
    /// Whether the first line of the key was itself an update (a raise was never seen).
    pub orphan_update: bool,
}

/// Folds alerts by (pcap, dedupe key), keeping input order of first appearance.
pub fn distinct(alerts: &[Alert]) -> Vec<DistinctAlert> {
    let mut idx: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut out: Vec<DistinctAlert> = Vec::new();
    for a in alerts {
        match idx.get(&a.key()) {
            Some(&i) => {
                let d = &mut out[i];
                d.lines += 1;
                if a.period_s.is_some() {
                    d.last_period_s = a.period_s;
                }
                if let (Some(t), Some(f)) = (a.ts, d.first.ts) {
                    if t < f {
                        d.first.ts = Some(t);
                    }
                }
            }
            None => {
                idx.insert(a.key(), out.len());
                out.push(DistinctAlert {
                    first: a.clone(),
                    lines: 1,
                    last_period_s: a.period_s,
                    orphan_update: a.update,
                });
            }
        }
    }
    out
}

/// Whether an alert is about this malicious label.
pub fn matches_beacon(a: &Alert, l: &BeaconLabel) -> bool {
    if a.src_ip != l.src_ip {
        return false;
    }
    let name_eq = matches!((&a.name, &l.name), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y));
    match a.detector.as_str() {
        DET_DNS => l.expected_detector == DET_DNS && name_eq,
        DET_BEACON => {
            name_eq
                || a.dest_ip
                    .as_ref()
                    .is_some_and(|d| l.dst_ips.iter().any(|x| x == d))
        }
        _ => false,
    }
}

/// Whether an alert is about this benign pair (same src, and dest IP or name).
pub fn matches_benign(a: &Alert, b: &BenignLabel) -> bool {
    if a.src_ip != b.src_ip {
        return false;
    }
    let name_eq = matches!((&a.name, &b.name), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y));
    name_eq
        || a.dest_ip
            .as_ref()
            .is_some_and(|d| b.dst_ips.iter().any(|x| x == d))
}

/// Detected / total.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Rate {
    pub detected: usize,
    pub total: usize,
    /// `detected / total`, `None` when total is 0.
    pub recall: Option<f64>,
    /// Median of (first alert − first beat) / mean gap over detected labels.
    pub median_periods_to_alert: Option<f64>,
    /// Median |alert period − mean gap| / mean gap over detected single-period labels.
    pub median_period_rel_err: Option<f64>,
}

/// Per-label outcome.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LabelResult {
    pub pcap: String,
    pub id: String,
    pub class: String,
    pub detected: bool,
    /// Distinct alerts matching it.
    pub alerts: usize,
    pub detectors: Vec<String>,
    pub periods_to_alert: Option<f64>,
    pub period_rel_err: Option<f64>,
}

/// One false positive.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FalsePositive {
    pub pcap: String,
    pub class: String,
    pub detector: String,
    pub src_ip: String,
    pub dest_ip: Option<String>,
    pub dest_port: Option<u16>,
    pub name: Option<String>,
    pub period_s: Option<f64>,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub overall: Rate,
    /// `(dimension, value) → rate` over detectable labels, in display order.
    pub by_condition: Vec<(String, String, Rate)>,
    pub too_short: Rate,
    pub beyond_spec: Rate,
    pub alert_lines: usize,
    pub distinct_alerts: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    /// `true_positives / distinct_alerts`, `None` without alerts.
    pub precision: Option<f64>,
    pub fp_by_class: BTreeMap<String, usize>,
    pub fps: Vec<FalsePositive>,
    pub labels: Vec<LabelResult>,
    pub other_alerts: usize,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn rate<'a>(it: impl Iterator<Item = &'a LabelResult>) -> Rate {
    let v: Vec<&LabelResult> = it.collect();
    let total = v.len();
    let detected = v.iter().filter(|r| r.detected).count();
    Rate {
        detected,
        total,
        recall: (total > 0).then(|| detected as f64 / total as f64),
        median_periods_to_alert: median(v.iter().filter_map(|r| r.periods_to_alert).collect()),
        median_period_rel_err: median(v.iter().filter_map(|r| r.period_rel_err).collect()),
    }
}

fn pct(x: f64) -> String {
    format!("{}%", (x * 100.0).round() as i64)
}

/// Condition tags of a label, as (dimension, value).
pub fn conditions(l: &BeaconLabel) -> Vec<(&'static str, String)> {
    vec![
        ("period", l.period_class.clone()),
        ("jitter", pct(l.jitter)),
        ("jitter_kind", l.jitter_kind.clone()),
        ("missed", pct(l.missed)),
        ("kind", l.kind.clone()),
        ("detector", l.expected_detector.clone()),
    ]
}

/// Scores `alerts` (all pcaps) against `labels`; `other_alerts` is carried into the report.
pub fn evaluate(labels: &Labels, alerts: &[Alert], other_alerts: usize) -> Report {
    let dist = distinct(alerts);
    let mut results: Vec<(LabelResult, &BeaconLabel)> = Vec::new();
    // Which distinct alerts are true positives / hit must-not-fire labels.
    let mut tp = vec![false; dist.len()];
    let mut short_hit = vec![false; dist.len()];
    for p in &labels.pcaps {
        for l in &p.beacons {
            let mut r = LabelResult {
                pcap: p.file.clone(),
                id: l.id.clone(),
                class: l.class.clone(),
                detected: false,
                alerts: 0,
                detectors: vec![],
                periods_to_alert: None,
                period_rel_err: None,
            };
            let mut first_ts: Option<f64> = None;
            let mut errs = Vec::new();
            let mut dets = BTreeSet::new();
            for (i, d) in dist.iter().enumerate() {
                if d.first.pcap != p.file || !matches_beacon(&d.first, l) {
                    continue;
                }
                r.alerts += 1;
                dets.insert(d.first.detector.clone());
                if l.class == CLASS_TOO_SHORT {
                    short_hit[i] = true;
                } else {
                    tp[i] = true;
                }
                if let Some(t) = d.first.ts {
                    first_ts = Some(first_ts.map_or(t, |f: f64| f.min(t)));
                }
                if let (Some(ps), 1) = (d.last_period_s, l.periods_s.len()) {
                    if l.mean_gap_s > 0.0 {
                        errs.push((ps - l.mean_gap_s).abs() / l.mean_gap_s);
                    }
                }
            }
            r.detected = r.alerts > 0;
            r.detectors = dets.into_iter().collect();
            if let Some(t) = first_ts {
                if l.mean_gap_s > 0.0 {
                    r.periods_to_alert = Some((t - l.first_ts) / l.mean_gap_s);
                }
            }
            r.period_rel_err = median(errs);
            results.push((r, l));
        }
    }

    let det: Vec<&(LabelResult, &BeaconLabel)> = results
        .iter()
        .filter(|(_, l)| l.class == CLASS_DETECTABLE)
        .collect();
    let overall = rate(det.iter().map(|(r, _)| r));
    // Condition groups in a stable, readable order.
    let mut keys: BTreeMap<(usize, String), (String, String)> = BTreeMap::new();
    for (_, l) in &det {
        for (di, (dim, val)) in conditions(l).into_iter().enumerate() {
            let order = match dim {
                "period" if l.period_class == "alt" => 1_000_000,
                "period" => l.periods_s.first().copied().unwrap_or(0.0) as i64,
                "jitter" | "missed" => (pct_of(&val) * 10.0) as i64,
                _ => 0,
            };
            keys.insert(
                (di, format!("{order:012}{val}")),
                (dim.to_string(), val.clone()),
            );
        }
    }
    let by_condition = keys
        .into_values()
        .map(|(dim, val)| {
            let rt = rate(
                det.iter()
                    .filter(|(_, l)| {
                        conditions(l)
                            .iter()
                            .any(|(d, v)| *d == dim.as_str() && *v == val)
                    })
                    .map(|(r, _)| r),
            );
            (dim, val, rt)
        })
        .collect();
    let too_short = rate(
        results
            .iter()
            .filter(|(_, l)| l.class == CLASS_TOO_SHORT)
            .map(|(r, _)| r),
    );
    let beyond_spec = rate(
        results
            .iter()
            .filter(|(_, l)| l.class == CLASS_BEYOND)
            .map(|(r, _)| r),
    );

    // False positives.
    let mut fps = Vec::new();
    let mut fp_by_class: BTreeMap<String, usize> = BTreeMap::new();
    for (i, d) in dist.iter().enumerate() {
        if tp[i] {
            continue;
        }
        let a = &d.first;
        let class = if short_hit[i] {
            CLASS_TOO_SHORT.to_string()
        } else {
            labels
                .pcaps
                .iter()
                .filter(|p| p.file == a.pcap)
                .flat_map(|p| p.benign.iter())
                .find(|b| matches_benign(a, b))
                .map(|b| b.class.clone())
                .unwrap_or_else(|| "unlabeled".to_string())
        };
        *fp_by_class.entry(class.clone()).or_default() += 1;
        fps.push(FalsePositive {
            pcap: a.pcap.clone(),
            class,
            detector: a.detector.clone(),
            src_ip: a.src_ip.clone(),
            dest_ip: a.dest_ip.clone(),
            dest_port: a.dest_port,
            name: a.name.clone(),
            period_s: d.last_period_s,
        });
    }
    let true_positives = tp.iter().filter(|x| **x).count();
    Report {
        overall,
        by_condition,
        too_short,
        beyond_spec,
        alert_lines: alerts.len(),
        distinct_alerts: dist.len(),
        true_positives,
        false_positives: fps.len(),
        precision: (!dist.is_empty()).then(|| true_positives as f64 / dist.len() as f64),
        fp_by_class,
        fps,
        labels: results.into_iter().map(|(r, _)| r).collect(),
        other_alerts,
    }
}

fn pct_of(v: &str) -> f64 {
    v.trim_end_matches('%').parse().unwrap_or(0.0)
}

fn fmt_opt(x: Option<f64>, prec: usize) -> String {
    x.map_or("-".to_string(), |v| format!("{v:.prec$}"))
}

fn rate_row(out: &mut String, label: &str, r: &Rate) {
    let _ = writeln!(
        out,
        "  {:<30} {:>5}/{:<5} {:>7}  {:>13}  {:>10}",
        label,
        r.detected,
        r.total,
        fmt_opt(r.recall, 3),
        fmt_opt(r.median_periods_to_alert, 1),
        r.median_period_rel_err
            .map_or("-".to_string(), |e| format!("{:.1}%", e * 100.0)),
    );
}

/// The terminal table.
pub fn render(rep: &Report, benign_classes: &BTreeMap<String, (usize, bool)>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Recall over detectable beacons (jitter <= 50 %, missed <= 30 %, enough beats)"
    );
    let _ = writeln!(
        o,
        "  {:<30} {:>11} {:>7}  {:>13}  {:>10}",
        "condition", "detected", "recall", "periods→alert", "period err"
    );
    rate_row(&mut o, "OVERALL", &rep.overall);
    let mut last_dim = String::new();
    for (dim, val, r) in &rep.by_condition {
        if *dim != last_dim {
            let _ = writeln!(o, "  {}", "-".repeat(78));
            last_dim = dim.clone();
        }
        rate_row(&mut o, &format!("{dim}={val}"), r);
    }
    let _ = writeln!(o, "  {}", "-".repeat(78));
    rate_row(&mut o, "beyond_spec (not scored)", &rep.beyond_spec);
    let _ = writeln!(
        o,
        "  too_short (must not fire): {} of {} fired",
        rep.too_short.detected, rep.too_short.total
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Precision: {} ({} true / {} distinct alerts; {} alert lines incl. updates; {} other alerts ignored)",
        fmt_opt(rep.precision, 3),
        rep.true_positives,
        rep.distinct_alerts,
        rep.alert_lines,
        rep.other_alerts
    );
    let _ = writeln!(o, "False positives by class (labeled benign pairs):");
    for (class, (pairs, periodic)) in benign_classes {
        let _ = writeln!(
            o,
            "  {:<18} {:>4} FP   ({} pairs{})",
            class,
            rep.fp_by_class.get(class).copied().unwrap_or(0),
            pairs,
            if *periodic { ", periodic" } else { "" }
        );
    }
    for extra in [CLASS_TOO_SHORT, "unlabeled"] {
        let _ = writeln!(
            o,
            "  {:<18} {:>4} FP",
            extra,
            rep.fp_by_class.get(extra).copied().unwrap_or(0)
        );
    }
    let missed: Vec<&LabelResult> = rep
        .labels
        .iter()
        .filter(|r| r.class == CLASS_DETECTABLE && !r.detected)
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "Missed detectable beacons ({}):", missed.len());
        for r in missed.iter().take(25) {
            let _ = writeln!(o, "  {}: {}", r.pcap, r.id);
        }
        if missed.len() > 25 {
            let _ = writeln!(o, "  ... {} more (see --json)", missed.len() - 25);
        }
    }
    if !rep.fps.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "False positives ({}):", rep.fps.len());
        for f in rep.fps.iter().take(25) {
            let _ = writeln!(
                o,
                "  {} [{}] {} {} -> {}:{} {} period {}",
                f.pcap,
                f.class,
                f.detector,
                f.src_ip,
                f.dest_ip.as_deref().unwrap_or("-"),
                f.dest_port.map(|p| p.to_string()).unwrap_or("-".into()),
                f.name.as_deref().unwrap_or("-"),
                fmt_opt(f.period_s, 1)
            );
        }
    }
    o
}

/// Benign classes of the corpus: class → (pairs, periodic).
pub fn benign_classes(labels: &Labels) -> BTreeMap<String, (usize, bool)> {
    let mut m: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    for p in &labels.pcaps {
        for b in &p.benign {
            let e = m.entry(b.class.clone()).or_default();
            e.0 += 1;
            e.1 |= b.periodic;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon(id: &str, src: &str, dsts: &[&str], name: Option<&str>, det: &str) -> BeaconLabel {
        BeaconLabel {
            id: id.into(),
            kind: if det == DET_DNS {
                "dns_nxdomain"
            } else {
                "tls"
            }
            .into(),
            period_class: "60s".into(),
            periods_s: vec![60.0],
            mean_gap_s: 60.0,
            jitter: 0.25,
            jitter_kind: "symmetric".into(),
            missed: 0.1,
            beats: 30,
            slots: 33,
            first_ts: 1000.0,
            last_ts: 3000.0,
            src_ip: src.into(),
            dst_ips: dsts.iter().map(|s| s.to_string()).collect(),
            dst_port: 443,
            proto: "TCP".into(),
            name: name.map(str::to_string),
            expected_detector: det.into(),
            class: CLASS_DETECTABLE.into(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        pcap: &str,
        det: &str,
        src: &str,
        dst: Option<&str>,
        name: Option<&str>,
        key: &str,
        update: bool,
        ts: f64,
        period: f64,
    ) -> Alert {
        Alert {
            pcap: pcap.into(),
            detector: det.into(),
            src_ip: src.into(),
            dest_ip: dst.map(str::to_string),
            dest_port: Some(443),
            name: name.map(str::to_string),
            period_s: Some(period),
            beats: Some(10),
            ts: Some(ts),
            dedupe_key: key.into(),
            update,
        }
    }

    fn benign(class: &str, src: &str, dsts: &[&str], name: Option<&str>) -> BenignLabel {
        BenignLabel {
            class: class.into(),
            periodic: class == "ntp",
            src_ip: src.into(),
            dst_ips: dsts.iter().map(|s| s.to_string()).collect(),
            dst_port: Some(123),
            name: name.map(str::to_string),
        }
    }

    fn corpus() -> Labels {
        let mut short = beacon(
            "short",
            "10.0.0.9",
            &["198.18.0.9"],
            Some("s.example"),
            "beacon",
        );
        short.class = CLASS_TOO_SHORT.into();
        let mut beyond = beacon("beyond", "10.0.0.8", &["198.18.0.8"], None, "beacon");
        beyond.class = CLASS_BEYOND.into();
        beyond.jitter = 0.75;
        let mut alt = beacon(
            "alt",
            "10.0.0.7",
            &["198.18.0.7"],
            Some("alt.example"),
            "beacon",
        );
        alt.period_class = "alt".into();
        alt.periods_s = vec![30.0, 90.0];
        Labels {
            version: 1,
            seed: 1,
            scale: "small".into(),
            pcaps: vec![PcapLabels {
                file: "a.pcap".into(),
                start_ts: 0.0,
                duration_s: 3600.0,
                packets: 0,
                bytes: 0,
                hosts: 3,
                beacons: vec![
                    beacon(
                        "rot",
                        "10.0.0.1",
                        &["198.18.0.1", "198.18.0.2"],
                        Some("c2.example"),
                        "beacon",
                    ),
                    beacon("ip", "10.0.0.2", &["198.18.0.3"], None, "beacon"),
                    beacon(
                        "nx",
                        "10.0.0.3",
                        &["10.0.0.53"],
                        Some("nx.example"),
                        DET_DNS,
                    ),
                    short,
                    beyond,
                    alt,
                ],
                benign: vec![
                    benign(
                        "ntp",
                        "10.0.0.1",
                        &["192.0.2.123", "192.0.2.124"],
                        Some("pool.ntp.example"),
                    ),
                    benign(
                        "browsing",
                        "10.0.0.2",
                        &["198.51.100.7"],
                        Some("www.example"),
                    ),
                ],
            }],
        }
    }

    #[test]
    fn eve_timestamp_parses() {
        let t = parse_eve_ts("2026-11-25T19:55:12.123456+0000").unwrap();
        assert!((t - 1_795_636_512.123456).abs() < 1e-6, "{t}");
        let t2 = parse_eve_ts("2026-11-25T20:55:12+0100").unwrap();
        assert!((t2 - 1_795_636_512.0).abs() < 1e-6);
        assert_eq!(parse_eve_ts("garbage"), None);
    }

    #[test]
    fn matching_rules() {
        let c = corpus();
        let b = &c.pcaps[0].beacons;
        // Rotating C2: any of its IPs, or its name (name-only key without dest_ip).
        let a = alert(
            "a.pcap",
            "beacon",
            "10.0.0.1",
            Some("198.18.0.2"),
            None,
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(matches_beacon(&a, &b[0]));
        let a = alert(
            "a.pcap",
            "beacon",
            "10.0.0.1",
            None,
            Some("C2.example"),
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(matches_beacon(&a, &b[0]));
        // Wrong source.
        let a = alert(
            "a.pcap",
            "beacon",
            "10.0.0.2",
            Some("198.18.0.2"),
            None,
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(!matches_beacon(&a, &b[0]));
        // Name-less label: only the IP can match.
        let a = alert(
            "a.pcap",
            "beacon",
            "10.0.0.2",
            Some("198.18.0.3"),
            None,
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(matches_beacon(&a, &b[1]));
        // dns_sinkhole_periodic: src + name, only for DNS labels; beacon also accepted.
        let a = alert(
            "a.pcap",
            DET_DNS,
            "10.0.0.3",
            Some("10.0.0.53"),
            Some("nx.example"),
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(matches_beacon(&a, &b[2]));
        let a = alert(
            "a.pcap",
            DET_DNS,
            "10.0.0.1",
            None,
            Some("c2.example"),
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(!matches_beacon(&a, &b[0]));
        let a = alert(
            "a.pcap",
            "beacon",
            "10.0.0.3",
            None,
            Some("nx.example"),
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(matches_beacon(&a, &b[2]));
        // DNS alert without the name does not match by dest_ip.
        let a = alert(
            "a.pcap",
            DET_DNS,
            "10.0.0.3",
            Some("10.0.0.53"),
            None,
            "k",
            false,
            0.0,
            60.0,
        );
        assert!(!matches_beacon(&a, &b[2]));
    }

    #[test]
    fn updates_fold_into_one_distinct_alert() {
        let al = vec![
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                Some("198.18.0.1"),
                None,
                "k1",
                false,
                1500.0,
                59.0,
            ),
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                Some("198.18.0.1"),
                None,
                "k1",
                true,
                1600.0,
                60.5,
            ),
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                Some("198.18.0.1"),
                None,
                "k1",
                true,
                1700.0,
                60.0,
            ),
            // Same key in another pcap is another alert.
            alert(
                "b.pcap",
                "beacon",
                "10.0.0.1",
                Some("198.18.0.1"),
                None,
                "k1",
                false,
                1500.0,
                60.0,
            ),
        ];
        let d = distinct(&al);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].lines, 3);
        assert_eq!(d[0].last_period_s, Some(60.0));
        assert_eq!(d[0].first.ts, Some(1500.0));
        assert!(!d[0].orphan_update);
    }

    #[test]
    fn recall_precision_and_fp_classes() {
        let c = corpus();
        let al = vec![
            // Rotating beacon caught twice (IP key + name key): both true positives.
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                Some("198.18.0.1"),
                None,
                "ip1",
                false,
                1300.0,
                61.0,
            ),
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                None,
                Some("c2.example"),
                "nm1",
                false,
                1200.0,
                60.0,
            ),
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                None,
                Some("c2.example"),
                "nm1",
                true,
                1900.0,
                60.0,
            ),
            // NTP from the same host: FP of class ntp.
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.1",
                Some("192.0.2.124"),
                None,
                "ntp",
                false,
                1000.0,
                1024.0,
            ),
            // Too-short beacon fired: FP of class too_short.
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.9",
                Some("198.18.0.9"),
                None,
                "s",
                false,
                1000.0,
                60.0,
            ),
            // Beyond-spec beacon fired: a true positive, not in recall.
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.8",
                Some("198.18.0.8"),
                None,
                "b",
                false,
                1000.0,
                60.0,
            ),
            // Nobody's pair: unlabeled.
            alert(
                "a.pcap",
                "beacon",
                "10.0.0.77",
                Some("1.2.3.4"),
                None,
                "u",
                false,
                1000.0,
                5.0,
            ),
            // Alert on an unknown pcap is unlabeled too.
            alert(
                "zz.pcap",
                "beacon",
                "10.0.0.1",
                Some("198.18.0.1"),
                None,
                "ip1",
                false,
                1000.0,
                60.0,
            ),
            // Other detector's key on the DNS beacon, matched by name.
            alert(
                "a.pcap",
                DET_DNS,
                "10.0.0.3",
                None,
                Some("nx.example"),
                "d",
                false,
                1600.0,
                60.0,
            ),
        ];
        let r = evaluate(&c, &al, 2);
        // Detectable: rot, ip, nx, alt → rot + nx detected.
        assert_eq!(r.overall.total, 4);
        assert_eq!(r.overall.detected, 2);
        assert_eq!(r.overall.recall, Some(0.5));
        assert_eq!(r.distinct_alerts, 8);
        assert_eq!(r.true_positives, 4);
        assert_eq!(r.false_positives, 4);
        assert_eq!(r.precision, Some(0.5));
        assert_eq!(r.fp_by_class.get("ntp"), Some(&1));
        assert_eq!(r.fp_by_class.get("too_short"), Some(&1));
        assert_eq!(r.fp_by_class.get("unlabeled"), Some(&2));
        assert_eq!(r.too_short.detected, 1);
        assert_eq!(r.beyond_spec.detected, 1);
        assert_eq!(r.other_alerts, 2);
        // Timeliness: first alert for rot at 1200 s, first beat at 1000 s, 60 s gaps.
        let rot = r.labels.iter().find(|l| l.id == "rot").unwrap();
        assert_eq!(rot.alerts, 2);
        assert!((rot.periods_to_alert.unwrap() - 200.0 / 60.0).abs() < 1e-9);
        // Period error: median of |61-60|/60 and 0.
        assert!((rot.period_rel_err.unwrap() - 0.5 / 60.0).abs() < 1e-9);
        // Per-condition: the alternating label sits in period=alt, undetected.
        let alt = r
            .by_condition
            .iter()
            .find(|(d, v, _)| d == "period" && v == "alt")
            .unwrap();
        assert_eq!((alt.2.detected, alt.2.total), (0, 1));
        let p60 = r
            .by_condition
            .iter()
            .find(|(d, v, _)| d == "period" && v == "60s")
            .unwrap();
        assert_eq!((p60.2.detected, p60.2.total), (2, 3));
        let kinds: Vec<&str> = r
            .by_condition
            .iter()
            .filter(|(d, _, _)| d == "kind")
            .map(|(_, v, _)| v.as_str())
            .collect();
        assert_eq!(kinds, ["dns_nxdomain", "tls"]);
        // The table renders and mentions the classes.
        let t = render(&r, &benign_classes(&c));
        assert!(t.contains("OVERALL"));
        assert!(t.contains("ntp"));
        assert!(t.contains("unlabeled"));
    }

    #[test]
    fn no_alerts_gives_zero_recall_and_no_precision() {
        let c = corpus();
        let r = evaluate(&c, &[], 0);
        assert_eq!(r.overall.recall, Some(0.0));
        assert_eq!(r.precision, None);
        assert_eq!(r.false_positives, 0);
    }

    #[test]
    fn parses_eve_alert_lines() {
        let eve = r#"{"timestamp":"2026-11-25T19:55:12.000000+0000","event_type":"flow","src_ip":"10.0.0.1"}
{"timestamp":"2026-11-25T19:56:12.500000+0000","event_type":"alert","src_ip":"10.0.0.1","dest_ip":"198.18.0.1","dest_port":443,"alert":{"severity":2},"kizuki":{"detector":"beacon","name":"c2.example","period_s":60.2,"beats":12,"dedupe_key":"beacon:10.0.0.1:198.18.0.1:443:TCP","update":false}}
{"timestamp":"2026-11-25T19:57:12.500000+0000","event_type":"alert","src_ip":"10.0.0.1","kizuki":{"detector":"dns_sinkhole_periodic","name":"nx.example","period_s":60.0,"beats":12,"update":true}}
{"timestamp":"2026-11-25T19:57:12.500000+0000","event_type":"alert","src_ip":"10.0.0.1","kizuki":{"detector":"direct_ip"}}
"#;
        let (a, others) = parse_alerts("x.pcap", eve).unwrap();
        assert_eq!(others, 1);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].dest_ip.as_deref(), Some("198.18.0.1"));
        assert_eq!(a[0].dest_port, Some(443));
        assert_eq!(a[0].dedupe_key, "beacon:10.0.0.1:198.18.0.1:443:TCP");
        assert_eq!(a[0].beats, Some(12));
        assert!((a[0].ts.unwrap() - 1_795_636_572.5).abs() < 1e-6);
        assert_eq!(a[1].dest_ip, None);
        assert!(a[1].update);
        assert_eq!(
            a[1].dedupe_key,
            "dns_sinkhole_periodic|10.0.0.1|-||nx.example"
        );
    }
}
