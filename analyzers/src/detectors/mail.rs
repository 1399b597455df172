//! `op25b` and `mail_bruteforce` (J-CRAT: outbound SMTP from hosts that are not mail servers;
//! password attacks on mail and remote-access services).
//!
//! - `op25b`: an internal host not in `network.mail_servers` opens TCP to an external address
//!   on port 25 (Outbound Port 25 Blocking policy). One alert per host, updated.
//! - `mail_bruteforce`: one source opens at least `min_connections` connections to one server's
//!   mail/auth ports (25/465/587/110/143/993/995, plus `extra_ports` such as 22/3389) within
//!   `window_s`. Either direction (an outside attacker on an internal server, or an internal
//!   host attacking outside).

use super::{
    add_vlan, check_common, check_pos, direct_ip::established, new_alert, secs, AllowConfig,
    Allowlist, Bounded, Dedupe, HostKey,
};
use crate::net::Network;
use crate::{ipproto, Alert, Analyzer, CloseReason, Event, Flow, Severity, TsNanos};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Op25bConfig {
    pub enabled: bool,
    /// SMTP ports that only mail servers may use towards the internet.
    pub ports: Vec<u16>,
    pub cooldown_s: f64,
    pub max_alert_keys: usize,
    pub allow: AllowConfig,
}

impl Default for Op25bConfig {
    fn default() -> Self {
        Op25bConfig {
            enabled: true,
            ports: vec![25],
            cooldown_s: 3_600.0,
            max_alert_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl Op25bConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_common(
            "detectors.op25b",
            self.cooldown_s,
            &[("max_alert_keys", self.max_alert_keys)],
        )?;
        self.allow.compile("detectors.op25b").map(|_| ())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailBruteforceConfig {
    pub enabled: bool,
    /// Mail and mail-auth ports.
    pub ports: Vec<u16>,
    /// More ports counted the same way (e.g. `[22, 3389]` for SSH / RDP).
    pub extra_ports: Vec<u16>,
    /// Counting window (seconds, tumbling per source/server pair).
    pub window_s: f64,
    /// Connections in one window that raise the alert.
    pub min_connections: u64,
    /// (source, server) pairs tracked at most (LRU beyond, evictions counted).
    pub max_keys: usize,
    pub cooldown_s: f64,
    pub allow: AllowConfig,
}

impl Default for MailBruteforceConfig {
    fn default() -> Self {
        MailBruteforceConfig {
            enabled: true,
            ports: vec![25, 465, 587, 110, 143, 993, 995],
            extra_ports: Vec::new(),
            window_s: 300.0,
            min_connections: 20,
            max_keys: 100_000,
            cooldown_s: 3_600.0,
            allow: AllowConfig::default(),
        }
    }
}

impl MailBruteforceConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_common(
            "detectors.mail_bruteforce",
            self.cooldown_s,
            &[
                ("max_keys", self.max_keys),
                ("min_connections", self.min_connections as usize),
            ],
        )?;
        check_pos("detectors.mail_bruteforce.window_s", self.window_s)?;
        self.allow.compile("detectors.mail_bruteforce").map(|_| ())
    }
}

pub struct Op25b {
    net: Network,
    allow: Allowlist,
    ports: Vec<u16>,
    dedupe: Dedupe,
    pub alerts: u64,
}

impl Op25b {
    pub fn new(cfg: Op25bConfig, net: Network) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Op25b {
            allow: cfg.allow.compile("detectors.op25b")?,
            net,
            ports: cfg.ports.clone(),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_alert_keys),
            alerts: 0,
        })
    }

    fn on_flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        if f.proto != ipproto::TCP
            || !self.ports.contains(&f.dest_port)
            || !self.net.is_outbound(f.src_ip, f.dest_ip)
            || self.net.mail_servers.contains(f.src_ip)
            || self.allow.any(Some(f.src_ip), Some(f.dest_ip), None)
        {
            return;
        }
        let host = HostKey::new(f.vlan, f.src_ip);
        let key = format!("op25b|{}", host.label());
        let Some(hit) = self.dedupe.hit(&key, f.last_ts) else {
            return;
        };
        let est = established(f);
        let mut a = new_alert(
            f.last_ts,
            "op25b",
            if est {
                Severity::High
            } else {
                Severity::Medium
            },
            format!(
                "KIZUKI outbound SMTP from non-mail-server {} to {}",
                f.src_ip, f.dest_ip
            ),
            key,
            hit,
        );
        a.src_ip = Some(f.src_ip);
        a.src_port = Some(f.src_port);
        a.dest_ip = Some(f.dest_ip);
        a.dest_port = Some(f.dest_port);
        a.proto = Some(f.proto);
        a.evidence.insert("flow_id".into(), f.flow_id.into());
        a.evidence.insert("established".into(), est.into());
        a.evidence
            .insert("conn_state".into(), f.conn_state.as_str().into());
        a.evidence
            .insert("bytes_toserver".into(), f.bytes_toserver.into());
        add_vlan(&mut a, f.vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for Op25b {
    fn save_state(&self) -> serde_json::Value {
        serde_json::json!({ "dedupe": self.dedupe.save() })
    }

    fn write_state(&self, out: &mut Vec<u8>) -> bool {
        self.dedupe.write_state(out)
    }

    fn load_state(&mut self, state: &serde_json::Value) {
        self.dedupe.load(&state["dedupe"]);
    }

    fn name(&self) -> &'static str {
        "op25b"
    }
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Event::Flow(f) = ev {
            if f.reason != CloseReason::Update {
                self.on_flow(f, out);
            }
        }
    }
    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}
    fn snapshot(&self) -> serde_json::Value {
        json!({"alerts": self.alerts, "suppressed": self.dedupe.suppressed})
    }
}

struct PairState {
    window_start: TsNanos,
    count: u64,
    failed: u64,
    bytes_toserver: u64,
    ports: BTreeMap<u16, u64>,
}

pub struct MailBruteforce {
    cfg: MailBruteforceConfig,
    allow: Allowlist,
    window: i64,
    pairs: Bounded<(HostKey, IpAddr), PairState>,
    dedupe: Dedupe,
    pub alerts: u64,
}

impl MailBruteforce {
    pub fn new(cfg: MailBruteforceConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(MailBruteforce {
            allow: cfg.allow.compile("detectors.mail_bruteforce")?,
            window: secs(cfg.window_s),
            pairs: Bounded::new(cfg.max_keys),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_keys),
            alerts: 0,
            cfg,
        })
    }

    fn on_flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        if f.proto != ipproto::TCP
            || !(self.cfg.ports.contains(&f.dest_port)
                || self.cfg.extra_ports.contains(&f.dest_port))
            || crate::net::is_special(f.src_ip)
            || self.allow.any(Some(f.src_ip), Some(f.dest_ip), None)
        {
            return;
        }
        let src = HostKey::new(f.vlan, f.src_ip);
        let window = self.window;
        let st = self.pairs.entry((src, f.dest_ip), || PairState {
            window_start: f.first_ts,
            count: 0,
            failed: 0,
            bytes_toserver: 0,
            ports: BTreeMap::new(),
        });
        if f.first_ts.saturating_sub(st.window_start) > window {
            *st = PairState {
                window_start: f.first_ts,
                count: 0,
                failed: 0,
                bytes_toserver: 0,
                ports: BTreeMap::new(),
            };
        }
        st.count += 1;
        st.failed += !established(f) as u64;
        st.bytes_toserver = st.bytes_toserver.saturating_add(f.bytes_toserver);
        if st.ports.len() < 16 || st.ports.contains_key(&f.dest_port) {
            *st.ports.entry(f.dest_port).or_default() += 1;
        }
        if st.count < self.cfg.min_connections {
            return;
        }
        let (count, failed, bytes, start) =
            (st.count, st.failed, st.bytes_toserver, st.window_start);
        let top_port = st
            .ports
            .iter()
            .max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))
            .map(|(p, _)| *p)
            .unwrap_or(f.dest_port);
        let ports: serde_json::Map<String, serde_json::Value> = st
            .ports
            .iter()
            .map(|(p, n)| (p.to_string(), (*n).into()))
            .collect();
        let key = format!("mail_bruteforce|{}|{}", src.label(), f.dest_ip);
        let Some(hit) = self.dedupe.hit(&key, f.last_ts) else {
            return;
        };
        let sev = if count >= self.cfg.min_connections.saturating_mul(5) {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut a = new_alert(
            f.last_ts,
            "mail_bruteforce",
            sev,
            format!(
                "KIZUKI possible password attack: {count} connections from {} to {}:{top_port}",
                f.src_ip, f.dest_ip
            ),
            key,
            hit,
        );
        a.src_ip = Some(f.src_ip);
        a.dest_ip = Some(f.dest_ip);
        a.dest_port = Some(top_port);
        a.proto = Some(ipproto::TCP);
        let ev = &mut a.evidence;
        ev.insert("connections".into(), count.into());
        ev.insert("failed_connections".into(), failed.into());
        ev.insert("bytes_toserver".into(), bytes.into());
        ev.insert("window_start".into(), json!(start as f64 / 1e9));
        ev.insert("window_s".into(), json!(self.cfg.window_s));
        ev.insert("ports".into(), ports.into());
        add_vlan(&mut a, f.vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for MailBruteforce {
    fn save_state(&self) -> serde_json::Value {
        serde_json::json!({ "dedupe": self.dedupe.save() })
    }

    fn write_state(&self, out: &mut Vec<u8>) -> bool {
        self.dedupe.write_state(out)
    }

    fn load_state(&mut self, state: &serde_json::Value) {
        self.dedupe.load(&state["dedupe"]);
    }

    fn name(&self) -> &'static str {
        "mail_bruteforce"
    }
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Event::Flow(f) = ev {
            if f.reason != CloseReason::Update {
                self.on_flow(f, out);
            }
        }
    }
    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}
    fn snapshot(&self) -> serde_json::Value {
        json!({
            "alerts": self.alerts,
            "pairs": self.pairs.len(),
            "pair_evictions": self.pairs.evictions(),
            "suppressed": self.dedupe.suppressed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::*;
    use crate::net::NetworkConfig;
    use crate::ConnState;

    #[test]
    fn op25b_non_mail_server_only() {
        let net = NetworkConfig {
            mail_servers: vec!["10.0.0.25".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        let mut d = Op25b::new(Op25bConfig::default(), net).unwrap();
        let mut out = Vec::new();
        d.on_event(&tcp_flow(1, "10.0.0.25", "198.51.100.25", 25, 1), &mut out);
        d.on_event(&tcp_flow(1, "10.0.0.7", "10.0.0.25", 25, 1), &mut out);
        d.on_event(&tcp_flow(1, "10.0.0.7", "198.51.100.25", 587, 1), &mut out);
        assert!(out.is_empty());
        let mut f = flow(2, "10.0.0.7", "198.51.100.25", 25, 1, 6);
        f.conn_state = ConnState::REJ;
        d.on_event(&Event::Flow(f), &mut out);
        d.on_event(&tcp_flow(3, "10.0.0.7", "198.51.100.26", 25, 1), &mut out);
        assert_eq!(out.len(), 1, "one alert per host");
        assert_eq!(out[0].severity, Severity::Medium);
        assert_eq!(out[0].dest_port, Some(25));
        d.on_event(&tcp_flow(3, "fd00::7", "2001:db8::25", 25, 1), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].severity, Severity::High);
    }

    #[test]
    fn bruteforce_threshold_window_and_vlans() {
        let mut d = MailBruteforce::new(MailBruteforceConfig {
            min_connections: 5,
            window_s: 60.0,
            extra_ports: vec![22],
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        // 4 per 70 s windows: never 5 in one window.
        for i in 0..12 {
            d.on_event(
                &tcp_flow(i * 20, "203.0.113.9", "10.0.0.25", 993, 1),
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
        for i in 0..5 {
            d.on_event(
                &tcp_flow(1000 + i, "203.0.113.9", "10.0.0.25", 22, 1),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dest_port, Some(22));
        assert_eq!(out[0].evidence["connections"], json!(5));
        // Same address on another VLAN is another source.
        for i in 0..4 {
            let mut f = flow(1000 + i, "203.0.113.9", "10.0.0.25", 22, 1, 6);
            f.vlan.push(7);
            d.on_event(&Event::Flow(f), &mut out);
        }
        assert_eq!(out.len(), 1);
        // Port 80 is not counted.
        for i in 0..10 {
            d.on_event(
                &tcp_flow(2000 + i, "203.0.113.10", "10.0.0.80", 80, 1),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
    }
}
