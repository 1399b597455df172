//! Turning a scored key into an EVE alert or a report candidate.

use serde_json::{json, Map, Value};
use std::net::IpAddr;

use super::key::{BeaconKey, KeyKind};
use super::score::ScoreParts;
use super::state::{KeyState, Scored};
use crate::{proto_name, Alert, Severity, TsNanos};

/// One tracked key as the `kizuki report` view and the top-K gauge see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// `beacon` or `dns_sinkhole_periodic`.
    pub detector: &'static str,
    pub key_kind: KeyKind,
    /// Human key, e.g. `10.0.0.5 -> 203.0.113.7:443/TCP`, `10.0.0.5 -> c2.example`,
    /// `10.0.0.5 dns parked.example`.
    pub key: String,
    pub src_ip: IpAddr,
    pub dest_ip: Option<IpAddr>,
    pub dest_port: Option<u16>,
    pub proto: Option<u8>,
    pub name: Option<String>,
    pub period_s: f64,
    pub secondary_period_s: Option<f64>,
    pub jitter: f64,
    /// Beats seen since the key was created.
    pub beats: u64,
    pub missed_beats_ratio: f64,
    /// Significance of the periodic model over Poisson/bursty, nats.
    pub significance: f64,
    pub score: ScoreParts,
    /// 1 while beats keep coming; decays once the key has been silent for > 4 periods.
    pub freshness: f64,
    /// Passes every alert condition at its last scoring.
    pub passes: bool,
    /// An alert was raised for this key.
    pub alerted: bool,
    /// `bulk` or `interactive` when the key's in-session bursts rule out callbacks.
    pub session: Option<&'static str>,
    /// Unix seconds.
    pub first_seen: f64,
    pub last_seen: f64,
}

pub(crate) fn secs(ts: TsNanos) -> f64 {
    ts as f64 / 1e9
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// 1 while the key is live, then halves every 4 periods of silence.
pub(crate) fn freshness(now: TsNanos, last_seen: TsNanos, period: f64) -> f64 {
    let idle = secs(now.saturating_sub(last_seen)).max(0.0);
    let grace = 4.0 * period.max(1.0);
    if idle <= grace {
        1.0
    } else {
        0.5f64.powf((idle - grace) / grace)
    }
}

/// (dest_ip, dest_port, proto, name) of a key for alerts and candidates.
fn endpoints(
    key: &BeaconKey,
    st: &KeyState,
) -> (Option<IpAddr>, Option<u16>, Option<u8>, Option<String>) {
    match key {
        BeaconKey::Pair {
            dst, port, proto, ..
        } => (
            Some(*dst),
            Some(*port),
            Some(*proto),
            st.alias.as_deref().map(str::to_string),
        ),
        BeaconKey::Name { name, .. } => (
            None,
            (st.port != 0).then_some(st.port),
            (st.proto != 0).then_some(st.proto),
            Some(name.to_string()),
        ),
        BeaconKey::Dns { qname, .. } => (None, None, None, Some(qname.to_string())),
    }
}

pub(crate) fn candidate(key: &BeaconKey, st: &KeyState, r: &Scored, now: TsNanos) -> Candidate {
    let (dest_ip, dest_port, proto, name) = endpoints(key, st);
    Candidate {
        detector: key.kind().detector(),
        key_kind: key.kind(),
        key: key.to_string(),
        src_ip: key.src(),
        dest_ip,
        dest_port,
        proto,
        name,
        period_s: r.period,
        secondary_period_s: r.secondary,
        jitter: r.jitter,
        beats: u64::from(st.beats),
        missed_beats_ratio: r.missed,
        significance: r.significance,
        score: r.parts,
        freshness: freshness(now, st.last_seen, r.period),
        passes: r.passes,
        alerted: st.alerted,
        session: r.session.map(|x| x.as_str()),
        first_seen: secs(st.first_seen),
        last_seen: secs(st.last_seen),
    }
}

fn severity(kind: KeyKind, total: f64) -> Severity {
    let base = if total >= 0.9 {
        Severity::High
    } else if total >= 0.8 {
        Severity::Medium
    } else {
        Severity::Low
    };
    if kind == KeyKind::Dns {
        // A name answered by a sinkhole/NXDOMAIN yet polled like clockwork: dormant C2.
        match base {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            _ => Severity::Critical,
        }
    } else {
        base
    }
}

fn human_period(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1}m", s / 60.0)
    } else {
        format!("{s:.1}s")
    }
}

pub(crate) fn build(
    key: &BeaconKey,
    st: &KeyState,
    r: &Scored,
    now: TsNanos,
    update: bool,
) -> Alert {
    let (dest_ip, dest_port, proto, name) = endpoints(key, st);
    let kind = key.kind();
    let mut ev = Map::new();
    ev.insert("key_kind".into(), json!(kind.as_str()));
    ev.insert("period_s".into(), json!(round(r.period, 3)));
    if let Some(p2) = r.secondary {
        ev.insert("secondary_period_s".into(), json!(round(p2, 3)));
    }
    ev.insert("jitter".into(), json!(round(r.jitter, 3)));
    ev.insert("beats".into(), json!(st.beats));
    ev.insert("missed_beats_ratio".into(), json!(round(r.missed, 3)));
    ev.insert("significance".into(), json!(round(r.significance, 1)));
    let p = &r.parts;
    ev.insert(
        "score".into(),
        json!({
            "total": round(p.total, 3),
            "dispersion": round(p.dispersion, 3),
            "period": round(p.period, 3),
            "size": p.size.map(|s| round(s, 3)),
            "coverage": round(p.coverage, 3),
            "prevalence_factor": round(p.prevalence_factor, 3),
        }),
    );
    ev.insert("prevalence_sources".into(), json!(r.prevalence_sources));
    ev.insert("first_seen".into(), json!(round(secs(st.first_seen), 6)));
    ev.insert("last_seen".into(), json!(round(secs(st.last_seen), 6)));
    match kind {
        KeyKind::Name => {
            let ips: Vec<Value> = st.addrs.iter().map(|a| json!(a.to_string())).collect();
            ev.insert("dest_ips".into(), Value::Array(ips));
        }
        KeyKind::Dns => {
            ev.insert(
                "answers".into(),
                json!({"nxdomain": st.answers[0], "local": st.answers[1], "sinkhole": st.answers[2]}),
            );
            if let Some(r) = st.addrs.first() {
                ev.insert("resolver".into(), json!(r.to_string()));
            }
        }
        KeyKind::Pair => {}
    }
    let every = human_period(r.period);
    let also = r
        .secondary
        .map(|p| format!(" and {}", human_period(p)))
        .unwrap_or_default();
    let signature = match key {
        BeaconKey::Pair {
            src,
            dst,
            port,
            proto,
        } => format!(
            "KIZUKI beacon {src} -> {dst}:{port}/{} every {every}{also} (jitter {:.0}%)",
            proto_name(*proto),
            r.jitter * 100.0
        ),
        BeaconKey::Name { src, name } => format!(
            "KIZUKI beacon {src} -> {name} every {every}{also} (jitter {:.0}%)",
            r.jitter * 100.0
        ),
        BeaconKey::Dns { client, qname } => {
            let what = if st.answers[0] >= st.answers[1] + st.answers[2] {
                "NXDOMAIN"
            } else {
                "sinkholed"
            };
            format!("KIZUKI periodic DNS lookups of {what} name {qname} from {client} every {every}{also}")
        }
    };
    Alert {
        ts: now,
        detector: kind.detector(),
        severity: severity(kind, p.total),
        signature,
        src_ip: Some(key.src()),
        src_port: None,
        dest_ip,
        dest_port,
        proto,
        name,
        evidence: ev,
        dedupe_key: key.dedupe_key(),
        update,
    }
}
