//! `direct_ip`: an internal host connects to an external address that no DNS answer seen
//! (for any client) pointed to within a TTL-aware memory window (J-CRAT: malware with a
//! hard-coded C2 address never resolves a name).
//!
//! DNS memory: every A/AAAA record of an external address in a successful answer (CNAME
//! chains included: the chain's final records are in the same answer section) is remembered
//! until `answer_ts + min(memory_s, ttl + ttl_grace_s)`. The map is capped (`max_ips`, LRU,
//! evictions counted). Coverage (share of checked outbound flows whose destination was resolved) is
//! exported through [`DirectIp::coverage`] and the snapshot so operators see when the mirror
//! port misses DNS. A host seen using DoH gets `low` severity (its lookups are invisible).

use super::{
    add_vlan, check_common, new_alert, secs, AllowConfig, Allowlist, Bounded, Dedupe, HostKey,
};
use crate::net::Network;
use crate::{ipproto, Alert, Analyzer, CloseReason, ConnState, DnsTxn, Event, Flow, Severity};
use crate::{TsNanos, NANOS_PER_SEC};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectIpConfig {
    pub enabled: bool,
    /// Longest time an answered address is remembered, whatever its TTL (seconds).
    pub memory_s: f64,
    /// Clients keep using addresses past their TTL (browser/OS caches, open connections):
    /// an address is remembered for `ttl + ttl_grace_s`, capped by `memory_s`.
    pub ttl_grace_s: f64,
    /// An answer seen up to this long after the flow started still counts (clock skew
    /// between the query's and the connection's packets).
    pub answer_slack_s: f64,
    /// Addresses remembered at most (LRU beyond, evictions counted).
    pub max_ips: usize,
    /// Destination ports never checked (DNS, NTP, DHCP, NetBIOS, mDNS...).
    pub exclude_ports: Vec<u16>,
    /// Only flows that got an answer (TCP handshake completed, UDP reply seen).
    pub established_only: bool,
    /// Flow records are judged this long (packet time, after the next tick) after they
    /// arrive, so a DNS answer published late by another worker thread still counts
    /// (0 = judge at once). Everything pending is judged at the end of a replay.
    pub decision_delay_s: f64,
    /// Flow records waiting for judgement at most (the oldest is judged early when full).
    pub max_pending: usize,
    /// Skip flows from `network.proxies` (set when the proxy's own lookups are not mirrored).
    pub skip_proxies: bool,
    /// Hosts remembered as DoH users at most.
    pub max_doh_hosts: usize,
    /// Minimum packet time between two alerts (updates) for one (host, destination).
    pub cooldown_s: f64,
    pub max_alert_keys: usize,
    pub allow: AllowConfig,
}

impl Default for DirectIpConfig {
    fn default() -> Self {
        DirectIpConfig {
            enabled: true,
            memory_s: 86_400.0,
            ttl_grace_s: 3_600.0,
            answer_slack_s: 2.0,
            max_ips: 500_000,
            exclude_ports: vec![53, 67, 68, 123, 137, 138, 853, 5353],
            established_only: true,
            decision_delay_s: 5.0,
            max_pending: 100_000,
            skip_proxies: false,
            max_doh_hosts: 100_000,
            cooldown_s: 3_600.0,
            max_alert_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl DirectIpConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_common(
            "detectors.direct_ip",
            self.cooldown_s,
            &[
                ("max_ips", self.max_ips),
                ("max_doh_hosts", self.max_doh_hosts),
                ("max_alert_keys", self.max_alert_keys),
                ("max_pending", self.max_pending),
            ],
        )?;
        for (k, v) in [
            ("decision_delay_s", self.decision_delay_s),
            ("memory_s", self.memory_s),
            ("ttl_grace_s", self.ttl_grace_s),
            ("answer_slack_s", self.answer_slack_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("detectors.direct_ip.{k} must be >= 0, got {v}"));
            }
        }
        self.allow.compile("detectors.direct_ip").map(|_| ())
    }
}

/// TCP states in which the responder answered (handshake completed).
pub fn established(f: &Flow) -> bool {
    match f.proto {
        ipproto::TCP => matches!(
            f.conn_state,
            ConnState::SF
                | ConnState::S1
                | ConnState::S2
                | ConnState::S3
                | ConnState::RSTO
                | ConnState::RSTR
        ),
        _ => f.pkts_toclient > 0,
    }
}

struct Answered {
    first_ts: TsNanos,
    expires: TsNanos,
    /// The name the client asked (start of a CNAME chain).
    qname: String,
}

/// What judging a flow needs, kept while its decision waits for late DNS: a fraction of a
/// whole [`Flow`], and no copies of its strings but the server name.
struct Pending {
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    proto: u8,
    vlan: crate::Vlans,
    first_ts: TsNanos,
    last_ts: TsNanos,
    update: bool,
    flow_id: u64,
    conn_state: &'static str,
    bytes_toserver: u64,
    bytes_toclient: u64,
    server_name: Option<String>,
}

impl Pending {
    fn of(f: &Flow) -> Self {
        Pending {
            src_ip: f.src_ip,
            src_port: f.src_port,
            dest_ip: f.dest_ip,
            dest_port: f.dest_port,
            proto: f.proto,
            vlan: f.vlan,
            first_ts: f.first_ts,
            last_ts: f.last_ts,
            update: f.reason == CloseReason::Update,
            flow_id: f.flow_id,
            conn_state: f.conn_state.as_str(),
            bytes_toserver: f.bytes_toserver,
            bytes_toclient: f.bytes_toclient,
            server_name: f.server_name.clone(),
        }
    }
}

pub struct DirectIp {
    cfg: DirectIpConfig,
    net: Network,
    allow: Allowlist,
    doh_names: Vec<String>,
    answers: Bounded<IpAddr, Answered>,
    doh_hosts: Bounded<HostKey, TsNanos>,
    dedupe: Dedupe,
    memory: i64,
    grace: i64,
    slack: i64,
    delay: i64,
    pending: std::collections::VecDeque<(TsNanos, Pending)>,
    last_tick: TsNanos,
    /// Packet time of the first successful answer seen (how long DNS has been visible).
    dns_since: Option<TsNanos>,
    /// Outbound flows checked / whose destination had been resolved.
    pub checked: u64,
    pub resolved: u64,
    pub alerts: u64,
}

impl DirectIp {
    /// `doh_names`: TLS server names of DoH resolvers (a host using them gets low severity).
    pub fn new(cfg: DirectIpConfig, net: Network, doh_names: &[String]) -> Result<Self, String> {
        cfg.validate()?;
        let allow = cfg.allow.compile("detectors.direct_ip")?;
        Ok(DirectIp {
            allow,
            net,
            doh_names: doh_names.iter().map(|n| super::normalize_name(n)).collect(),
            answers: Bounded::new(cfg.max_ips),
            doh_hosts: Bounded::new(cfg.max_doh_hosts),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_alert_keys),
            memory: secs(cfg.memory_s),
            grace: secs(cfg.ttl_grace_s),
            slack: secs(cfg.answer_slack_s),
            delay: secs(cfg.decision_delay_s),
            pending: std::collections::VecDeque::new(),
            last_tick: i64::MIN,
            dns_since: None,
            checked: 0,
            resolved: 0,
            alerts: 0,
            cfg,
        })
    }

    /// Share of checked outbound flows whose destination was resolved (None before any).
    /// The sink exports it as the gauge `kizuki_dns_coverage_ratio`.
    pub fn coverage(&self) -> Option<f64> {
        (self.checked > 0).then(|| self.resolved as f64 / self.checked as f64)
    }

    fn on_dns(&mut self, d: &DnsTxn) {
        if d.rcode != Some(0) {
            return;
        }
        self.dns_since = Some(self.dns_since.map_or(d.ts, |t| t.min(d.ts)));
        let qname = super::normalized(&d.qname);
        for a in &d.answers {
            if a.rtype != 1 && a.rtype != 28 {
                continue;
            }
            let Some(ip) = a.addr else {
                continue;
            };
            // Only an external address can be the destination of a checked flow (`eligible`).
            // Internal answers (a Windows domain's own names, split-horizon DNS) would only
            // push the external ones out of a full table, and then their flows would alert.
            if !self.net.is_external(ip) {
                continue;
            }
            let keep = (a.ttl as i64 * NANOS_PER_SEC)
                .saturating_add(self.grace)
                .min(self.memory);
            let expires = d.ts.saturating_add(keep);
            let e = self.answers.entry(ip, || Answered {
                first_ts: d.ts,
                expires,
                qname: String::new(),
            });
            if e.expires < d.ts {
                // Expired entry seen again: a fresh resolution.
                e.first_ts = d.ts;
            }
            e.first_ts = e.first_ts.min(d.ts);
            e.expires = e.expires.max(expires);
            if e.qname != *qname {
                // In place: an address answers for many names in turn (CDNs, shared
                // hosting), and a fresh string per answer was an allocation and a free.
                e.qname.clear();
                e.qname.push_str(&qname);
            }
        }
    }

    /// The name that resolved to `ip` before `at`, if still remembered.
    pub fn resolved_name(&self, ip: IpAddr, at: TsNanos) -> Option<&str> {
        let e = self.answers.get(&ip)?;
        (e.first_ts <= at.saturating_add(self.slack) && e.expires >= at).then_some(e.qname.as_str())
    }

    fn note_doh(&mut self, vlan: crate::Vlans, src: IpAddr, name: Option<&str>, ts: TsNanos) {
        let Some(n) = name else { return };
        let n = super::normalized(n);
        if self.doh_names.iter().any(|d| super::under_suffix(&n, d)) {
            *self.doh_hosts.entry(HostKey::new(vlan, src), || ts) = ts;
        }
    }

    /// Cheap filters: is this flow subject to the check at all?
    fn eligible(&self, f: &Flow) -> bool {
        (f.proto == ipproto::TCP || f.proto == ipproto::UDP)
            && self.net.is_outbound(f.src_ip, f.dest_ip)
            && !self.cfg.exclude_ports.contains(&f.dest_port)
            && !self.net.resolvers.contains(f.dest_ip)
            && !(self.cfg.skip_proxies && self.net.proxies.contains(f.src_ip))
            && (!self.cfg.established_only || established(f))
    }

    fn on_flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        self.note_doh(f.vlan, f.src_ip, f.server_name.as_deref(), f.last_ts);
        if !self.eligible(f) {
            return;
        }
        if self.delay == 0 {
            return self.judge(&Pending::of(f), out);
        }
        if self.pending.len() >= self.cfg.max_pending {
            if let Some((_, old)) = self.pending.pop_front() {
                self.judge(&old, out);
            }
        }
        let due = self.last_tick.max(f.last_ts).saturating_add(self.delay);
        self.pending.push_back((due, Pending::of(f)));
    }

    fn judge(&mut self, f: &Pending, out: &mut Vec<Alert>) {
        let (src, dst) = (f.src_ip, f.dest_ip);
        let resolved = self.resolved_name(dst, f.first_ts).is_some();
        if !f.update {
            self.checked += 1;
            self.resolved += resolved as u64;
        }
        if resolved
            || self
                .allow
                .any(Some(src), Some(dst), f.server_name.as_deref())
        {
            return;
        }
        let host = HostKey::new(f.vlan, src);
        let mut key = String::with_capacity(48);
        key.push_str("direct_ip|");
        host.push_label(&mut key);
        key.push('|');
        crate::net::push_ip(&mut key, dst);
        let Some(hit) = self.dedupe.hit(&key, f.last_ts) else {
            return;
        };
        let doh = self.doh_hosts.get(&host).is_some();
        let sev = if doh || f.server_name.is_some() {
            Severity::Low
        } else {
            Severity::Medium
        };
        let mut a = new_alert(
            f.last_ts,
            "direct_ip",
            sev,
            format!("KIZUKI direct-to-IP connection without DNS lookup to {dst}"),
            key,
            hit,
        );
        a.src_ip = Some(src);
        a.src_port = Some(f.src_port);
        a.dest_ip = Some(dst);
        a.dest_port = Some(f.dest_port);
        a.proto = Some(f.proto);
        a.name = f.server_name.clone();
        let ev = &mut a.evidence;
        ev.insert("flow_id".into(), f.flow_id.into());
        ev.insert("conn_state".into(), f.conn_state.into());
        ev.insert("bytes_toserver".into(), f.bytes_toserver.into());
        ev.insert("bytes_toclient".into(), f.bytes_toclient.into());
        ev.insert("host_uses_doh".into(), doh.into());
        ev.insert("dns_coverage".into(), json!(self.coverage()));
        // A sensor that just started has not seen the lookups behind its hosts' cached
        // answers: a small value says the alert may be one of those (null: no answer yet).
        let visible = self
            .dns_since
            .map(|t| (f.first_ts.saturating_sub(t).max(0) as f64 / 1e9).round());
        ev.insert("dns_visible_for_s".into(), json!(visible));
        if let Some(e) = self.answers.get(&dst) {
            if e.first_ts > f.first_ts.saturating_add(self.slack) {
                // Resolved, but only after the connection had started (a lookup by another
                // client, or the host's own cached answer from before the sensor saw DNS).
                ev.insert("answer_after_flow_for".into(), e.qname.clone().into());
                ev.insert(
                    "answer_first_seen_at".into(),
                    json!(e.first_ts as f64 / 1e9),
                );
            } else {
                // Resolved once, but the answer had expired when the flow started.
                ev.insert("expired_answer_for".into(), e.qname.clone().into());
                ev.insert("answer_expired_at".into(), json!(e.expires as f64 / 1e9));
            }
        }
        add_vlan(&mut a, f.vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for DirectIp {
    fn save_state(&self) -> serde_json::Value {
        serde_json::json!({ "dedupe": self.dedupe.save() })
    }

    fn write_state(&self, out: &mut Vec<u8>) -> bool {
        self.dedupe.write_state(out)
    }

    fn load_state(&mut self, state: &serde_json::Value) {
        self.dedupe.load(&state["dedupe"]);
    }

    fn gauges(&self, out: &mut Vec<crate::GaugeReading>) {
        if let Some(c) = self.coverage() {
            out.push(crate::GaugeReading {
                metric: "kizuki_dns_coverage_ratio",
                labels: Vec::new(),
                value: c,
            });
        }
    }

    fn name(&self) -> &'static str {
        "direct_ip"
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        match ev {
            Event::Dns(d) => self.on_dns(d),
            Event::Flow(f) => self.on_flow(f, out),
            Event::Burst(b) => self.note_doh(b.vlan, b.src_ip, b.server_name.as_deref(), b.ts),
            Event::Mail(_) => {}
        }
    }

    fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>) {
        // The same time twice is the end of the input (the sink's final tick): judge all.
        let flush_all = now <= self.last_tick;
        self.last_tick = self.last_tick.max(now);
        while let Some((due, _)) = self.pending.front() {
            if !flush_all && *due > now {
                break;
            }
            if let Some((_, f)) = self.pending.pop_front() {
                self.judge(&f, out);
            }
        }
        // Drop expired answers from the cold end (bounded work per tick).
        for _ in 0..1024 {
            match self.answers.front() {
                Some((_, e)) if e.expires < now.saturating_sub(self.slack) => {
                    self.answers.pop_front();
                }
                _ => break,
            }
        }
    }

    fn snapshot(&self) -> serde_json::Value {
        json!({
            "dns_coverage": self.coverage(),
            "outbound_flows_checked": self.checked,
            "outbound_flows_resolved": self.resolved,
            "alerts": self.alerts,
            "remembered_ips": self.answers.len(),
            "remembered_ip_evictions": self.answers.evictions(),
            "doh_hosts": self.doh_hosts.len(),
            "pending_flows": self.pending.len(),
            "suppressed": self.dedupe.suppressed,
            "dedupe_evictions": self.dedupe.evictions(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::*;

    fn det(cfg: DirectIpConfig) -> DirectIp {
        let cfg = DirectIpConfig {
            decision_delay_s: 0.0,
            ..cfg
        };
        DirectIp::new(cfg, Network::default_model(), &["dns.google".to_string()]).unwrap()
    }

    #[test]
    fn late_dns_event_within_decision_delay_counts() {
        let mut d =
            DirectIp::new(DirectIpConfig::default(), Network::default_model(), &[]).unwrap();
        let mut out = Vec::new();
        d.on_tick(ts(10), &mut out);
        // The flow record arrives before the answer that preceded it (another worker).
        d.on_event(&tcp_flow(5, "10.0.0.5", "203.0.113.8", 443, 5), &mut out);
        d.on_event(&tcp_flow(5, "10.0.0.5", "203.0.113.9", 443, 5), &mut out);
        d.on_tick(ts(11), &mut out);
        d.on_event(
            &dns_a(4, "10.0.0.5", "x.example", &[("203.0.113.8", 300)]),
            &mut out,
        );
        assert!(out.is_empty());
        d.on_tick(ts(16), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dest_ip, Some(ip("203.0.113.9")));
        // End of input (same time twice) judges what is still pending.
        d.on_event(&tcp_flow(15, "10.0.0.5", "203.0.113.10", 443, 1), &mut out);
        d.on_tick(ts(16), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn unresolved_fires_resolved_does_not() {
        let mut d = det(DirectIpConfig::default());
        let mut out = Vec::new();
        d.on_event(
            &dns_a(0, "10.0.0.5", "www.example.com", &[("93.184.215.14", 300)]),
            &mut out,
        );
        d.on_event(&tcp_flow(1, "10.0.0.5", "93.184.215.14", 443, 5), &mut out);
        assert!(out.is_empty());
        d.on_event(&tcp_flow(2, "10.0.0.5", "198.51.100.9", 443, 5), &mut out);
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.detector, "direct_ip");
        assert_eq!(a.dest_ip, Some(ip("198.51.100.9")));
        assert_eq!(a.severity, Severity::Medium);
        assert_eq!(d.coverage(), Some(0.5));
        // Same host and destination again: deduped.
        d.on_event(&tcp_flow(30, "10.0.0.5", "198.51.100.9", 443, 5), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn ttl_expiry() {
        let mut d = det(DirectIpConfig {
            ttl_grace_s: 10.0,
            ..Default::default()
        });
        let mut out = Vec::new();
        d.on_event(
            &dns_a(0, "10.0.0.5", "short.example", &[("203.0.113.5", 60)]),
            &mut out,
        );
        d.on_event(&tcp_flow(65, "10.0.0.5", "203.0.113.5", 443, 5), &mut out);
        assert!(out.is_empty(), "within ttl + grace");
        d.on_event(&tcp_flow(80, "10.0.0.6", "203.0.113.5", 443, 5), &mut out);
        assert_eq!(out.len(), 1, "after ttl + grace");
        assert_eq!(
            out[0].evidence["expired_answer_for"],
            json!("short.example")
        );
        assert!(out[0].evidence.get("answer_after_flow_for").is_none());
        assert_eq!(out[0].evidence["dns_visible_for_s"], json!(80.0));
        // An answer first seen after the flow started is not called expired.
        d.on_event(
            &dns_a(100, "10.0.0.7", "late.example", &[("203.0.113.6", 60)]),
            &mut out,
        );
        d.on_event(&tcp_flow(90, "10.0.0.5", "203.0.113.6", 443, 5), &mut out);
        d.on_tick(200 * NANOS_PER_SEC, &mut out);
        let late = out.last().expect("alert for the flow before the answer");
        assert_eq!(late.dest_ip, Some("203.0.113.6".parse().unwrap()));
        assert_eq!(
            late.evidence["answer_after_flow_for"],
            json!("late.example")
        );
        assert_eq!(late.evidence["answer_first_seen_at"], json!(100.0));
        assert!(late.evidence.get("expired_answer_for").is_none());
        // memory_s caps a huge TTL.
        let mut d = det(DirectIpConfig {
            memory_s: 100.0,
            ..Default::default()
        });
        out.clear();
        d.on_event(
            &dns_a(0, "10.0.0.5", "long.example", &[("203.0.113.6", 604_800)]),
            &mut out,
        );
        d.on_event(&tcp_flow(200, "10.0.0.5", "203.0.113.6", 443, 5), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn answer_after_flow_start_does_not_count() {
        let mut d = det(DirectIpConfig::default());
        let mut out = Vec::new();
        d.on_event(
            &dns_a(50, "10.0.0.5", "late.example", &[("203.0.113.7", 300)]),
            &mut out,
        );
        // Flow started at t=10 and ended at t=60 (reported after the answer).
        let mut f = tcp_flow(60, "10.0.0.5", "203.0.113.7", 443, 5);
        if let Event::Flow(ff) = &mut f {
            ff.first_ts = 10 * NANOS_PER_SEC;
        }
        d.on_event(&f, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn cname_chain_feeds_memory() {
        let mut d = det(DirectIpConfig::default());
        let mut out = Vec::new();
        let mut ev = dns_a(0, "10.0.0.5", "shop.example.net", &[]);
        if let Event::Dns(t) = &mut ev {
            t.answers = vec![
                answer("shop.example.net", 5, 3600, "shop.cdn.example.net"),
                answer("shop.cdn.example.net", 5, 60, "edge.cdnprovider.example"),
                answer("edge.cdnprovider.example", 1, 20, "203.0.113.10"),
                answer("edge.cdnprovider.example", 28, 20, "2001:db8::10"),
            ];
        }
        d.on_event(&ev, &mut out);
        assert_eq!(
            d.resolved_name(ip("203.0.113.10"), 1),
            Some("shop.example.net")
        );
        d.on_event(&tcp_flow(5, "10.0.0.5", "203.0.113.10", 443, 5), &mut out);
        d.on_event(&tcp_flow(5, "fd00::5", "2001:db8::10", 443, 5), &mut out);
        assert!(out.is_empty());
        // IPv6 unresolved.
        d.on_event(&tcp_flow(5, "fd00::5", "2001:db8::99", 443, 5), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].src_ip, Some(ip("fd00::5")));
    }

    #[test]
    fn exclusions_and_allowlist() {
        let mut d = det(DirectIpConfig {
            allow: AllowConfig {
                dest: vec!["192.0.2.0/24".into()],
                ..Default::default()
            },
            ..Default::default()
        });
        let mut out = Vec::new();
        d.on_event(&tcp_flow(1, "10.0.0.5", "192.0.2.44", 443, 5), &mut out); // allowlisted
        d.on_event(&udp_flow(1, "10.0.0.5", "198.51.100.1", 123), &mut out); // NTP
        d.on_event(&tcp_flow(1, "10.0.0.5", "10.0.0.9", 443, 5), &mut out); // internal
        d.on_event(&tcp_flow(1, "10.0.0.5", "224.0.0.1", 443, 5), &mut out); // multicast
        d.on_event(&tcp_flow(1, "198.51.100.1", "10.0.0.5", 443, 5), &mut out); // inbound
        let mut s0 = tcp_flow(1, "10.0.0.5", "198.51.100.2", 443, 5);
        if let Event::Flow(f) = &mut s0 {
            f.conn_state = ConnState::S0;
        }
        d.on_event(&s0, &mut out); // not established
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn doh_host_gets_low_severity_and_vlans_are_separate_hosts() {
        let mut d = det(DirectIpConfig::default());
        let mut out = Vec::new();
        let mut doh = tcp_flow(1, "10.0.0.5", "8.8.8.8", 443, 5);
        if let Event::Flow(f) = &mut doh {
            f.server_name = Some("dns.google".into());
            f.vlan.push(10);
        }
        d.on_event(&doh, &mut out);
        assert_eq!(out.len(), 1, "the DoH flow itself is direct too");
        out.clear();
        let mut f10 = tcp_flow(5, "10.0.0.5", "198.51.100.3", 443, 5);
        if let Event::Flow(f) = &mut f10 {
            f.vlan.push(10);
        }
        let mut f20 = tcp_flow(5, "10.0.0.5", "198.51.100.3", 443, 5);
        if let Event::Flow(f) = &mut f20 {
            f.vlan.push(20);
        }
        d.on_event(&f10, &mut out);
        d.on_event(&f20, &mut out);
        assert_eq!(out.len(), 2, "same address on two VLANs = two hosts");
        assert_eq!(out[0].severity, Severity::Low);
        assert_eq!(out[1].severity, Severity::Medium);
        assert_eq!(out[0].evidence["vlan"], json!([10]));
    }

    #[test]
    fn memory_is_bounded() {
        let mut d = det(DirectIpConfig {
            max_ips: 100,
            max_alert_keys: 50,
            ..Default::default()
        });
        let mut out = Vec::new();
        for i in 0..10_000u32 {
            let a = std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string();
            d.on_event(
                &dns_a(i as i64, "10.0.0.5", "x.example", &[(&a, 300)]),
                &mut out,
            );
        }
        assert_eq!(d.answers.len(), 100);
        assert_eq!(d.answers.evictions(), 9_900);
        for i in 0..1000u32 {
            let a = std::net::Ipv4Addr::from(0x0c00_0000 + i).to_string();
            d.on_event(&tcp_flow(20_000, "10.0.0.5", &a, 443, 5), &mut out);
        }
        assert_eq!(d.dedupe.len(), 50);
    }

    /// A flood of internal answers (a domain's own names) leaves the table to the external
    /// addresses that outbound flows are checked against.
    #[test]
    fn internal_answers_do_not_push_external_ones_out() {
        let mut d = det(DirectIpConfig {
            max_ips: 100,
            ..Default::default()
        });
        let mut out = Vec::new();
        d.on_event(
            &dns_a(1, "10.0.0.5", "cdn.example", &[("203.0.113.10", 3600)]),
            &mut out,
        );
        for i in 0..10_000u32 {
            let a = std::net::Ipv4Addr::from(0x0a01_0000 + i).to_string();
            d.on_event(
                &dns_a(2, "10.0.0.5", "fs.corp.example", &[(&a, 3600)]),
                &mut out,
            );
        }
        assert_eq!(d.answers.len(), 1);
        assert_eq!(d.resolved_name(ip("203.0.113.10"), 3), Some("cdn.example"));
        d.on_event(&tcp_flow(3, "10.0.0.5", "203.0.113.10", 443, 5), &mut out);
        d.on_event(&tcp_flow(3, "10.0.0.5", "10.1.0.7", 445, 5), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
