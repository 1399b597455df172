//! Severity that rises when two findings meet (DETECTIONS.md, ddns/paas: "severity rises when
//! combined with periodicity or direct_ip"). A dynamic-DNS or PaaS name alone is common
//! (home routers, hobby sites, cloud apps); the same host calling it like clockwork, or
//! reaching it without a DNS lookup, is how C2 on free infrastructure looks.
//!
//! [`Escalation`] runs over the alerts of all analyzers, in their final order, before they are
//! written. It remembers the latest `raise` alert (ddns, paas) per (client, customer name:
//! `evil.duckdns.org` for `c2.evil.duckdns.org`, the unit of its dedupe key) and the names
//! the `with` alerts (beacon, dns_sinkhole_periodic, direct_ip) carried per client, for
//! `window_s` of packet time:
//! - a `with` alert whose name is the remembered name or under it (`x.evil.duckdns.org` for
//!   `evil.duckdns.org`) re-raises that alert once as an update at `high`, right after the
//!   alert that caused it, with `escalated_by` and `severity_before` in its evidence;
//! - a `raise` alert for a name a `with` alert already carried is raised at `high` in place.
//!
//! The client is the source address (beacon keys carry no VLAN). Both tables are bounded
//! (LRU, `max_names`); the state is not kept across restarts.

use super::{check_common, check_pos, secs, Bounded};
use crate::{Alert, Severity, TsNanos};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    pub enabled: bool,
    /// Detectors whose alerts are raised.
    pub raise: Vec<String>,
    /// Detectors whose alerts, for the same client and name, raise them.
    pub with: Vec<String>,
    /// How long (packet time) either side is remembered.
    pub window_s: f64,
    /// (client, name) pairs remembered at most, for each side (LRU beyond).
    pub max_names: usize,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            enabled: true,
            raise: vec!["ddns".into(), "paas".into()],
            with: vec![
                "beacon".into(),
                "dns_sinkhole_periodic".into(),
                "direct_ip".into(),
            ],
            window_s: 86_400.0,
            max_names: 10_000,
        }
    }
}

impl EscalationConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_pos("detectors.escalation.window_s", self.window_s)?;
        check_common(
            "detectors.escalation",
            0.0,
            &[("max_names", self.max_names)],
        )
    }
}

/// A `with` alert remembered for a client and name.
struct Signal {
    ts: TsNanos,
    detector: &'static str,
    dedupe_key: String,
}

/// A `raise` alert remembered for re-raising, and whether it already was.
struct Raised {
    ts: TsNanos,
    alert: Alert,
    escalated: bool,
}

pub struct Escalation {
    cfg: EscalationConfig,
    window: TsNanos,
    raised: Bounded<(IpAddr, String), Raised>,
    signals: Bounded<(IpAddr, String), Signal>,
    /// Alerts raised to `high` (in place or as updates).
    pub escalations: u64,
}

/// A name in the form the detectors compare (lower case, no trailing dot).
fn norm(name: &str) -> String {
    super::normalize_name(name)
}

/// The name and its parent domains of two labels or more, longest first
/// (`a.evil.duckdns.org`, `evil.duckdns.org`, `duckdns.org`).
fn self_and_parents(name: &str) -> impl Iterator<Item = &str> {
    std::iter::once(name)
        .chain(name.match_indices('.').map(move |(i, _)| &name[i + 1..]))
        .filter(|n| n.contains('.'))
        .take(16)
}

impl Escalation {
    pub fn new(cfg: EscalationConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Escalation {
            window: secs(cfg.window_s),
            raised: Bounded::new(cfg.max_names),
            signals: Bounded::new(cfg.max_names),
            escalations: 0,
            cfg,
        })
    }

    fn is_raise(&self, det: &str) -> bool {
        self.cfg.raise.iter().any(|d| d == det)
    }

    fn is_with(&self, det: &str) -> bool {
        self.cfg.with.iter().any(|d| d == det)
    }

    /// Goes over `alerts` in order: raises some in place and inserts the re-raised ones right
    /// after the alert that caused them.
    pub fn apply(&mut self, alerts: &mut Vec<Alert>) {
        if !self.cfg.enabled || alerts.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(alerts.len());
        for mut a in alerts.drain(..) {
            let (Some(src), Some(name)) = (a.src_ip, Self::name_of(&a)) else {
                out.push(a);
                continue;
            };
            if self.is_raise(a.detector) {
                self.on_raise(src, name, &mut a);
                out.push(a);
            } else if self.is_with(a.detector) {
                let extra = self.on_with(src, &name, &a);
                out.push(a);
                out.extend(extra);
            } else {
                out.push(a);
            }
        }
        *alerts = out;
    }

    /// The name an alert is about: a ddns/paas alert's customer name (`evil.duckdns.org`,
    /// the unit its dedupe key counts) when it has one, else its `name`.
    fn name_of(a: &Alert) -> Option<String> {
        let customer = a.evidence.get("customer_name").and_then(|v| v.as_str());
        customer.or(a.name.as_deref()).map(norm)
    }

    /// Two findings at most `window` apart, either way round.
    fn within(window: TsNanos, a: TsNanos, b: TsNanos) -> bool {
        a.saturating_sub(b) <= window && b.saturating_sub(a) <= window
    }

    /// A ddns/paas alert: raised now if a signal for its name (or a name under it) is
    /// remembered; kept for a later signal otherwise.
    fn on_raise(&mut self, src: IpAddr, name: String, a: &mut Alert) {
        let signal = self
            .signals
            .get(&(src, name.clone()))
            .filter(|s| Self::within(self.window, s.ts, a.ts))
            .map(|s| (s.detector, s.dedupe_key.clone(), s.ts));
        if let Some((det, key, ts)) = &signal {
            Self::mark(a, det, key, *ts);
            self.escalations += 1;
        }
        let r = Raised {
            ts: a.ts,
            alert: a.clone(),
            escalated: signal.is_some(),
        };
        self.raised.insert((src, name), r);
    }

    /// A beacon/direct_ip alert with a name: re-raises the remembered ddns/paas alerts of that
    /// name or a parent of it (once each), and is remembered under each of those names.
    fn on_with(&mut self, src: IpAddr, name: &str, w: &Alert) -> Vec<Alert> {
        let mut extra = Vec::new();
        for n in self_and_parents(name) {
            let key = (src, n.to_string());
            let signal = Signal {
                ts: w.ts,
                detector: w.detector,
                dedupe_key: w.dedupe_key.clone(),
            };
            self.signals.insert(key.clone(), signal);
            let window = self.window;
            let Some(r) = self.raised.get_mut(&key) else {
                continue;
            };
            if r.escalated || !Self::within(window, r.ts, w.ts) {
                continue;
            }
            r.escalated = true;
            let mut up = r.alert.clone();
            up.ts = w.ts.max(up.ts);
            up.update = true;
            Self::mark(&mut up, w.detector, &w.dedupe_key, w.ts);
            self.escalations += 1;
            extra.push(up);
        }
        extra
    }

    /// Sets `high` and notes why.
    fn mark(a: &mut Alert, det: &str, key: &str, ts: TsNanos) {
        if a.severity < Severity::High {
            a.evidence
                .insert("severity_before".into(), a.severity.as_str().into());
            a.severity = Severity::High;
        }
        let why = match det {
            "direct_ip" => "reached without a DNS lookup",
            "beacon" => "periodic callbacks",
            "dns_sinkhole_periodic" => "periodic lookups answered by a sinkhole",
            _ => "another detector",
        };
        if !a.signature.contains(why) {
            a.signature.push_str(" + ");
            a.signature.push_str(why);
        }
        a.evidence.insert(
            "escalated_by".into(),
            json!({"detector": det, "dedupe_key": key, "ts": ts as f64 / 1e9}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NANOS_PER_SEC;

    fn alert(det: &'static str, src: &str, name: Option<&str>, t: i64, sev: Severity) -> Alert {
        Alert {
            ts: t * NANOS_PER_SEC,
            detector: det,
            severity: sev,
            signature: format!("KIZUKI {det}"),
            src_ip: Some(src.parse().unwrap()),
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            name: name.map(str::to_string),
            evidence: serde_json::Map::new(),
            dedupe_key: format!("{det}|{src}|{}", name.unwrap_or("-")),
            update: false,
        }
    }

    fn esc() -> Escalation {
        Escalation::new(EscalationConfig::default()).unwrap()
    }

    fn run(e: &mut Escalation, v: Vec<Alert>) -> Vec<Alert> {
        let mut v = v;
        e.apply(&mut v);
        v
    }

    #[test]
    fn a_later_beacon_on_a_name_under_the_ddns_name_re_raises_it_once() {
        let mut e = esc();
        let first = run(
            &mut e,
            vec![alert(
                "ddns",
                "10.0.0.5",
                Some("c2.evil.duckdns.org"),
                10,
                Severity::Medium,
            )],
        );
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].severity, Severity::Medium);
        let b = alert(
            "beacon",
            "10.0.0.5",
            Some("C2.Evil.DuckDNS.org."),
            900,
            Severity::Medium,
        );
        let out = run(&mut e, vec![b.clone()]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], b, "the causing alert is untouched and first");
        let up = &out[1];
        assert_eq!(up.detector, "ddns");
        assert!(up.update);
        assert_eq!(up.severity, Severity::High);
        assert_eq!(up.dedupe_key, first[0].dedupe_key);
        assert_eq!(up.ts, 900 * NANOS_PER_SEC);
        assert_eq!(up.evidence["severity_before"], "medium");
        assert_eq!(up.evidence["escalated_by"]["detector"], "beacon");
        assert!(up.signature.contains("periodic callbacks"));
        // Once only.
        let again = run(&mut e, vec![b]);
        assert_eq!(again.len(), 1);
        assert_eq!(e.escalations, 1);
    }

    #[test]
    fn a_ddns_alert_after_a_direct_ip_alert_on_its_name_is_raised_in_place() {
        let mut e = esc();
        let out = run(
            &mut e,
            vec![
                alert(
                    "direct_ip",
                    "10.0.0.5",
                    Some("x.evil.ddns.net"),
                    5,
                    Severity::Low,
                ),
                alert(
                    "ddns",
                    "10.0.0.5",
                    Some("x.evil.ddns.net"),
                    6,
                    Severity::Medium,
                ),
            ],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].detector, "direct_ip");
        assert_eq!(
            out[0].severity,
            Severity::Low,
            "the signal itself is not raised"
        );
        assert_eq!(out[1].severity, Severity::High);
        assert!(!out[1].update);
        assert_eq!(out[1].evidence["escalated_by"]["detector"], "direct_ip");
        // Nothing more to re-raise later: it already is high.
        let later = run(
            &mut e,
            vec![alert(
                "beacon",
                "10.0.0.5",
                Some("x.evil.ddns.net"),
                60,
                Severity::High,
            )],
        );
        assert_eq!(later.len(), 1);
    }

    #[test]
    fn other_hosts_other_names_and_old_findings_do_not_raise() {
        let mut e = esc();
        let day = 86_400;
        let out = run(
            &mut e,
            vec![
                alert(
                    "ddns",
                    "10.0.0.5",
                    Some("evil.duckdns.org"),
                    0,
                    Severity::Medium,
                ),
                // Another client.
                alert(
                    "beacon",
                    "10.0.0.6",
                    Some("evil.duckdns.org"),
                    10,
                    Severity::Medium,
                ),
                // A parent of the name, not a name under it.
                alert(
                    "beacon",
                    "10.0.0.5",
                    Some("duckdns.org"),
                    10,
                    Severity::Medium,
                ),
                // A sibling.
                alert(
                    "beacon",
                    "10.0.0.5",
                    Some("good.duckdns.org"),
                    10,
                    Severity::Medium,
                ),
                // A detector that does not raise.
                alert(
                    "dns_tunnel",
                    "10.0.0.5",
                    Some("evil.duckdns.org"),
                    10,
                    Severity::Medium,
                ),
                // Past the window.
                alert(
                    "beacon",
                    "10.0.0.5",
                    Some("evil.duckdns.org"),
                    day + 1,
                    Severity::Medium,
                ),
            ],
        );
        assert_eq!(out.len(), 6, "{out:?}");
        assert!(out.iter().all(|a| a.severity == Severity::Medium));
        assert_eq!(e.escalations, 0);
    }

    #[test]
    fn disabled_changes_nothing() {
        let mut e = Escalation::new(EscalationConfig {
            enabled: false,
            ..Default::default()
        })
        .unwrap();
        let v = vec![
            alert(
                "ddns",
                "10.0.0.5",
                Some("a.duckdns.org"),
                0,
                Severity::Medium,
            ),
            alert(
                "beacon",
                "10.0.0.5",
                Some("a.duckdns.org"),
                1,
                Severity::Medium,
            ),
        ];
        assert_eq!(run(&mut e, v.clone()), v);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let mut e = Escalation::new(EscalationConfig {
            max_names: 100,
            ..Default::default()
        })
        .unwrap();
        for i in 0..10_000 {
            let n = format!("h{i}.duckdns.org");
            let v = vec![
                alert("ddns", "10.0.0.5", Some(&n), i, Severity::Medium),
                alert("beacon", "10.0.0.7", Some(&n), i, Severity::Medium),
            ];
            run(&mut e, v);
        }
        assert!(e.raised.len() <= 100 && e.signals.len() <= 100);
    }

    #[test]
    fn bad_config_is_refused_with_the_key() {
        let bad = EscalationConfig {
            max_names: 0,
            ..Default::default()
        };
        assert!(Escalation::new(bad).err().unwrap().contains("max_names"));
    }

    #[test]
    fn parents_stop_at_two_labels() {
        let v: Vec<&str> = self_and_parents("a.b.duckdns.org").collect();
        assert_eq!(v, ["a.b.duckdns.org", "b.duckdns.org", "duckdns.org"]);
        assert_eq!(self_and_parents("localhost").count(), 0);
    }
}
