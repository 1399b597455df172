//! `proxy_bypass` and `dns_bypass` (J-CRAT: web and DNS traffic that skips the proxy and the
//! organisation's resolvers).
//!
//! - `proxy_bypass` (needs `network.proxies`): an internal host that is not a proxy opens TCP to
//!   an external address on a web port (`ports`, or every port with `any_port`).
//! - `dns_bypass` (needs `network.resolvers`): an internal host that is not a resolver talks
//!   to an external address on 53/853 (TCP or UDP), or to a DoH resolver (TLS SNI / HTTP Host
//!   in `doh_names`).
//!
//! One alert per (host, detector); later destinations update it (cooldown) and are counted.

use super::{
    add_vlan, check_common, direct_ip::established, new_alert, normalize_name, under_suffix,
    AllowConfig, Allowlist, Bounded, Dedupe, HostKey,
};
use crate::net::Network;
use crate::{ipproto, Alert, Analyzer, Event, Severity, TsNanos, Vlans};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use std::net::IpAddr;

/// Well-known public DoH endpoints (TLS server names), by their operators' documentation.
pub const DEFAULT_DOH_NAMES: &[&str] = &[
    "dns.google",
    "dns64.dns.google",
    "cloudflare-dns.com",
    "one.one.one.one",
    "1dot1dot1dot1.cloudflare-dns.com",
    "dns.quad9.net",
    "doh.opendns.com",
    "dns.opendns.com",
    "doh.familyshield.opendns.com",
    "dns.nextdns.io",
    "doh.cleanbrowsing.org",
    "dns.adguard-dns.com",
    "dns.adguard.com",
    "doh.mullvad.net",
    "dns.mullvad.net",
    "doh.dns.sb",
    "dns.twnic.tw",
    "doh.libredns.gr",
    "dns.controld.com",
    "freedns.controld.com",
    "doh.applied-privacy.net",
    "public.dns.iij.jp",
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyBypassConfig {
    /// Also needs `network.proxies` to be set.
    pub enabled: bool,
    /// Web ports checked.
    pub ports: Vec<u16>,
    /// Every TCP port (not only `ports`).
    pub any_port: bool,
    pub cooldown_s: f64,
    pub max_alert_keys: usize,
    pub allow: AllowConfig,
}

impl Default for ProxyBypassConfig {
    fn default() -> Self {
        ProxyBypassConfig {
            enabled: true,
            ports: vec![80, 443, 8080, 8443],
            any_port: false,
            cooldown_s: 3_600.0,
            max_alert_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl ProxyBypassConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_common(
            "detectors.proxy_bypass",
            self.cooldown_s,
            &[("max_alert_keys", self.max_alert_keys)],
        )?;
        self.allow.compile("detectors.proxy_bypass").map(|_| ())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsBypassConfig {
    /// Also needs `network.resolvers` to be set.
    pub enabled: bool,
    /// Plain DNS and DNS-over-TLS ports.
    pub ports: Vec<u16>,
    /// Flag DoH by TLS SNI / HTTP Host.
    pub doh: bool,
    /// DoH server names (each also matches its subdomains); replaces the built-in list.
    pub doh_names: Vec<String>,
    /// Added to `doh_names`.
    pub extra_doh_names: Vec<String>,
    pub cooldown_s: f64,
    pub max_alert_keys: usize,
    pub allow: AllowConfig,
}

impl Default for DnsBypassConfig {
    fn default() -> Self {
        DnsBypassConfig {
            enabled: true,
            ports: vec![53, 853],
            doh: true,
            doh_names: DEFAULT_DOH_NAMES.iter().map(|s| s.to_string()).collect(),
            extra_doh_names: Vec::new(),
            cooldown_s: 3_600.0,
            max_alert_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl DnsBypassConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_common(
            "detectors.dns_bypass",
            self.cooldown_s,
            &[("max_alert_keys", self.max_alert_keys)],
        )?;
        self.allow.compile("detectors.dns_bypass").map(|_| ())
    }

    /// `doh_names` + `extra_doh_names`, normalised.
    pub fn all_doh_names(&self) -> Vec<String> {
        self.doh_names
            .iter()
            .chain(&self.extra_doh_names)
            .map(|n| normalize_name(n))
            .filter(|n| !n.is_empty())
            .collect()
    }
}

/// Distinct destinations remembered per alert (for the evidence), at most.
const MAX_DESTS: usize = 32;

struct HostState {
    dests: HashSet<(IpAddr, u16)>,
    dest_count: u64,
}

/// Which of the two detectors an instance runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Proxy,
    Dns,
}

pub struct Bypass {
    kind: Kind,
    net: Network,
    allow: Allowlist,
    ports: Vec<u16>,
    any_port: bool,
    doh: bool,
    doh_names: Vec<String>,
    dedupe: Dedupe,
    hosts: Bounded<HostKey, HostState>,
    pub alerts: u64,
}

impl Bypass {
    pub fn proxy(cfg: ProxyBypassConfig, net: Network) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Bypass {
            kind: Kind::Proxy,
            allow: cfg.allow.compile("detectors.proxy_bypass")?,
            net,
            ports: cfg.ports.clone(),
            any_port: cfg.any_port,
            doh: false,
            doh_names: Vec::new(),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_alert_keys),
            hosts: Bounded::new(cfg.max_alert_keys),
            alerts: 0,
        })
    }

    pub fn dns(cfg: DnsBypassConfig, net: Network) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Bypass {
            kind: Kind::Dns,
            allow: cfg.allow.compile("detectors.dns_bypass")?,
            net,
            ports: cfg.ports.clone(),
            any_port: false,
            doh: cfg.doh,
            doh_names: cfg.all_doh_names(),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_alert_keys),
            hosts: Bounded::new(cfg.max_alert_keys),
            alerts: 0,
        })
    }

    fn detector(&self) -> &'static str {
        match self.kind {
            Kind::Proxy => "proxy_bypass",
            Kind::Dns => "dns_bypass",
        }
    }

    /// Why this connection is a bypass, if it is.
    #[allow(clippy::too_many_arguments)]
    fn classify(
        &self,
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
        proto: u8,
        name: Option<&str>,
    ) -> Option<&'static str> {
        if !self.net.is_outbound(src, dst) {
            return None;
        }
        match self.kind {
            Kind::Proxy => {
                if self.net.proxies.is_empty()
                    || self.net.proxies.contains(src)
                    || proto != ipproto::TCP
                    || !(self.any_port || self.ports.contains(&dport))
                {
                    return None;
                }
                Some("direct_web")
            }
            Kind::Dns => {
                if self.net.resolvers.is_empty()
                    || self.net.resolvers.contains(src)
                    || self.net.resolvers.contains(dst)
                {
                    return None;
                }
                if (proto == ipproto::TCP || proto == ipproto::UDP) && self.ports.contains(&dport) {
                    return Some(if dport == 853 {
                        "dot"
                    } else {
                        "external_resolver"
                    });
                }
                let n = normalize_name(name?);
                (self.doh && self.doh_names.iter().any(|d| under_suffix(&n, d))).then_some("doh")
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        ts: TsNanos,
        vlan: Vlans,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        name: Option<&str>,
        answered: bool,
        flow_id: Option<u64>,
        out: &mut Vec<Alert>,
    ) {
        let Some(why) = self.classify(src.0, dst.0, dst.1, proto, name) else {
            return;
        };
        if self.allow.any(Some(src.0), Some(dst.0), name) {
            return;
        }
        let host = HostKey::new(vlan, src.0);
        let st = self.hosts.entry(host, || HostState {
            dests: HashSet::new(),
            dest_count: 0,
        });
        if !st.dests.contains(&(dst.0, dst.1)) {
            st.dest_count += 1;
            if st.dests.len() < MAX_DESTS {
                st.dests.insert((dst.0, dst.1));
            }
        }
        let dest_count = st.dest_count;
        let mut sample: Vec<String> = st
            .dests
            .iter()
            .map(|(ip, p)| match ip {
                IpAddr::V6(_) => format!("[{ip}]:{p}"),
                IpAddr::V4(_) => format!("{ip}:{p}"),
            })
            .collect();
        sample.sort();
        let det = self.detector();
        let key = format!("{det}|{}", host.label());
        let Some(hit) = self.dedupe.hit(&key, ts) else {
            return;
        };
        let sev = if answered {
            Severity::Medium
        } else {
            Severity::Low
        };
        let sig = match why {
            "direct_web" => format!(
                "KIZUKI web traffic bypassing the proxy to {}:{}",
                dst.0, dst.1
            ),
            "doh" => format!(
                "KIZUKI DNS-over-HTTPS to {} bypassing the resolvers",
                name.unwrap_or("?")
            ),
            "dot" => format!("KIZUKI DNS-over-TLS to {} bypassing the resolvers", dst.0),
            _ => format!(
                "KIZUKI DNS to external resolver {} bypassing the resolvers",
                dst.0
            ),
        };
        let mut a = new_alert(ts, det, sev, sig, key, hit);
        a.src_ip = Some(src.0);
        a.src_port = Some(src.1);
        a.dest_ip = Some(dst.0);
        a.dest_port = Some(dst.1);
        a.proto = Some(proto);
        a.name = name.map(str::to_string);
        a.evidence.insert("reason".into(), why.into());
        a.evidence.insert("answered".into(), answered.into());
        a.evidence
            .insert("distinct_destinations".into(), dest_count.into());
        a.evidence.insert("destinations".into(), json!(sample));
        if let Some(id) = flow_id {
            a.evidence.insert("flow_id".into(), id.into());
        }
        add_vlan(&mut a, vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for Bypass {
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
        self.detector()
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        match ev {
            Event::Flow(f) => self.check(
                f.last_ts,
                f.vlan,
                (f.src_ip, f.src_port),
                (f.dest_ip, f.dest_port),
                f.proto,
                f.server_name.as_deref(),
                established(f),
                Some(f.flow_id),
                out,
            ),
            // Live: a long DoH / proxy-less session shows up before it ends.
            Event::Burst(b) if b.server_name.is_some() => self.check(
                b.ts,
                b.vlan,
                (b.src_ip, b.src_port),
                (b.dest_ip, b.dest_port),
                b.proto,
                b.server_name.as_deref(),
                true,
                Some(b.flow_id),
                out,
            ),
            _ => {}
        }
    }

    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}

    fn snapshot(&self) -> serde_json::Value {
        json!({
            "alerts": self.alerts,
            "hosts": self.hosts.len(),
            "suppressed": self.dedupe.suppressed,
            "dedupe_evictions": self.dedupe.evictions(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::*;
    use crate::net::NetworkConfig;

    fn net() -> Network {
        NetworkConfig {
            proxies: vec!["10.0.0.3".into()],
            resolvers: vec!["10.0.0.53".into()],
            ..Default::default()
        }
        .compile()
        .unwrap()
    }

    #[test]
    fn proxy_bypass_fires_for_non_proxy_only() {
        let mut d = Bypass::proxy(ProxyBypassConfig::default(), net()).unwrap();
        let mut out = Vec::new();
        d.on_event(&tcp_flow(1, "10.0.0.3", "203.0.113.1", 443, 1), &mut out); // the proxy
        d.on_event(&tcp_flow(1, "10.0.0.7", "10.0.0.3", 3128, 1), &mut out); // via proxy
        d.on_event(&tcp_flow(1, "10.0.0.7", "203.0.113.1", 22, 1), &mut out); // not web
        assert!(out.is_empty());
        d.on_event(&tcp_flow(2, "10.0.0.7", "203.0.113.1", 443, 1), &mut out);
        d.on_event(&tcp_flow(3, "10.0.0.7", "203.0.113.2", 80, 1), &mut out); // same host: deduped
        d.on_event(&tcp_flow(3, "fd00::7", "2001:db8::2", 8080, 1), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].detector, "proxy_bypass");
        assert_eq!(out[0].dest_port, Some(443));
        assert_eq!(out[1].src_ip, Some(ip("fd00::7")));
        // Without proxies configured: nothing.
        let mut d = Bypass::proxy(ProxyBypassConfig::default(), Network::default_model()).unwrap();
        out.clear();
        d.on_event(&tcp_flow(2, "10.0.0.7", "203.0.113.1", 443, 1), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn proxy_allowlist_and_any_port() {
        let cfg = ProxyBypassConfig {
            any_port: true,
            allow: AllowConfig {
                src: vec!["10.0.9.0/24".into()],
                names: vec!["windowsupdate.com".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut d = Bypass::proxy(cfg, net()).unwrap();
        let mut out = Vec::new();
        d.on_event(&tcp_flow(1, "10.0.9.1", "203.0.113.1", 443, 1), &mut out);
        let mut f = flow(1, "10.0.0.8", "203.0.113.1", 443, 1, 6);
        f.server_name = Some("dl.windowsupdate.com".into());
        d.on_event(&Event::Flow(f), &mut out);
        assert!(out.is_empty());
        d.on_event(&tcp_flow(1, "10.0.0.8", "203.0.113.1", 5000, 1), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn dns_bypass_plain_dot_and_doh() {
        let mut d = Bypass::dns(DnsBypassConfig::default(), net()).unwrap();
        let mut out = Vec::new();
        d.on_event(&udp_flow(1, "10.0.0.7", "10.0.0.53", 53), &mut out); // the resolver
        d.on_event(&udp_flow(1, "10.0.0.53", "8.8.8.8", 53), &mut out); // resolver upstream
        assert!(out.is_empty());
        d.on_event(&udp_flow(2, "10.0.0.7", "8.8.8.8", 53), &mut out);
        d.on_event(&tcp_flow(2, "10.0.0.8", "9.9.9.9", 853, 1), &mut out);
        let mut f = flow(2, "10.0.0.9", "104.16.248.249", 443, 1, 6);
        f.server_name = Some("Cloudflare-DNS.com.".into());
        d.on_event(&Event::Flow(f.clone()), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].evidence["reason"], json!("external_resolver"));
        assert_eq!(out[1].evidence["reason"], json!("dot"));
        assert_eq!(out[2].evidence["reason"], json!("doh"));
        assert_eq!(out[2].name.as_deref(), Some("Cloudflare-DNS.com."));
        // A later burst of the same DoH session is deduped.
        d.on_event(&burst(5, &f), &mut out);
        assert_eq!(out.len(), 3);
    }
}
