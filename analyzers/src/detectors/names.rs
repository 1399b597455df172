//! `ddns` and `paas`: names (DNS query, CNAME target, TLS SNI, HTTP Host) under dynamic-DNS
//! or PaaS/tunnel-service suffixes (J-CRAT: attackers' C2 on free dynamic DNS and cloud
//! hosting). The categorised suffix list is Kizuki's own (`analyzers/data/suffixes.txt`),
//! extendable per detector with `extra_suffixes`; registrable domains come from the Public
//! Suffix List (`psl` crate).
//!
//! One alert per (internal client, customer name), where the customer name is the label right
//! under the matched suffix plus the suffix (`evil.duckdns.org` for `a.b.evil.duckdns.org`).

use super::{
    add_vlan, check_common, new_alert, normalize_name, registrable, AllowConfig, Allowlist, Dedupe,
    HostKey,
};
use crate::net::Network;
use crate::{Alert, Analyzer, Event, Severity, TsNanos, Vlans};
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// The built-in list (see the file's header for the format).
pub const SUFFIX_DATA: &str = include_str!("../../data/suffixes.txt");

/// Built-in entries of one detector: (suffix, kind).
pub fn builtin_suffixes(detector: &str) -> Vec<(String, String)> {
    SUFFIX_DATA
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let det = it.next()?;
            let suffix = it.next()?;
            let kind = it.next().unwrap_or(det);
            (det == detector).then(|| (normalize_name(suffix), kind.to_string()))
        })
        .collect()
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SuffixConfig {
    pub enabled: bool,
    /// Use the built-in suffix list (`analyzers/data/suffixes.txt`).
    pub builtin: bool,
    /// More suffixes (`"example-ddns.net"`, or `"example-ddns.net kind"`).
    pub extra_suffixes: Vec<String>,
    /// Which names are checked.
    pub check_dns: bool,
    pub check_cname: bool,
    pub check_sni: bool,
    pub check_http_host: bool,
    pub cooldown_s: f64,
    pub max_alert_keys: usize,
    pub allow: AllowConfig,
}

impl Default for SuffixConfig {
    fn default() -> Self {
        SuffixConfig {
            enabled: true,
            builtin: true,
            extra_suffixes: Vec::new(),
            check_dns: true,
            check_cname: true,
            check_sni: true,
            check_http_host: true,
            cooldown_s: 3_600.0,
            max_alert_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl SuffixConfig {
    pub fn validate(&self, what: &str) -> Result<(), String> {
        check_common(
            what,
            self.cooldown_s,
            &[("max_alert_keys", self.max_alert_keys)],
        )?;
        for s in &self.extra_suffixes {
            let n = normalize_name(s.split_whitespace().next().unwrap_or(""));
            if n.is_empty() || !n.contains('.') && n.len() < 2 {
                return Err(format!("{what}.extra_suffixes: bad suffix {s:?}"));
            }
        }
        self.allow.compile(what).map(|_| ())
    }
}

/// Which detector an instance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Ddns,
    Paas,
}

impl Category {
    pub fn id(self) -> &'static str {
        match self {
            Category::Ddns => "ddns",
            Category::Paas => "paas",
        }
    }
}

pub struct SuffixDetector {
    cat: Category,
    cfg: SuffixConfig,
    net: Network,
    allow: Allowlist,
    suffixes: SuffixIndex,
    dedupe: Dedupe,
    pub alerts: u64,
}

/// The matched suffix (a key of `suffixes`) when `name` is strictly under one.
type SuffixMap = HashMap<String, String, foldhash::fast::RandomState>;

/// The suffix list, looked up per DNS name, CNAME target, SNI and Host (foldhash maps).
struct SuffixIndex {
    map: SuffixMap,
    /// The longest key (bytes): longer parts of a name are not looked up.
    max_len: usize,
    /// Every key's [`tail`]: a name can only be under a key whose tail is its own, so most
    /// names (under no listed provider) take one lookup here instead of one per dot.
    tails: HashSet<String, foldhash::fast::RandomState>,
    /// Some key is a single label: only then can a name's last label alone be a tail.
    single_label_keys: bool,
}

/// The last two labels of `name` (all of it if it has fewer).
fn tail(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) => match name[..i].rfind('.') {
            Some(j) => &name[j + 1..],
            None => name,
        },
        None => name,
    }
}

impl SuffixIndex {
    fn new(map: SuffixMap) -> Self {
        SuffixIndex {
            max_len: map.keys().map(String::len).max().unwrap_or(0),
            tails: map.keys().map(|k| tail(k).to_string()).collect(),
            single_label_keys: map.keys().any(|k| !k.contains('.')),
            map,
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn kind(&self, suffix: &str) -> Option<&str> {
        self.map.get(suffix).map(String::as_str)
    }

    /// The longest key `name` is strictly under.
    fn find<'a>(&self, name: &'a str) -> Option<&'a str> {
        // A key k that name is under (name = "….k") ends in name's last two labels when k
        // has two or more, and is name's last label when it has one. The two last dots by a
        // byte scan from the end (`rfind` costs more than the lookups on names this short).
        let b = name.as_bytes();
        let (mut last, mut second) = (None, None);
        for i in (0..b.len()).rev() {
            if b[i] == b'.' {
                if last.is_some() {
                    second = Some(i);
                    break;
                }
                last = Some(i);
            }
        }
        let last = last?;
        let tail2 = second.map_or(name, |j| &name[j + 1..]);
        let under_a_tail = self.tails.contains(tail2)
            || (self.single_label_keys && self.tails.contains(&name[last + 1..]));
        if !under_a_tail {
            return None;
        }
        // Walk the suffixes of the name (what follows each dot) from the longest proper one,
        // starting where they get no longer than `max_len`.
        let start = name.len().saturating_sub(self.max_len.saturating_add(1));
        for (i, &b) in name.as_bytes().iter().enumerate().skip(start) {
            if b == b'.' {
                let rest = name.get(i + 1..)?;
                if self.map.contains_key(rest) {
                    return Some(rest);
                }
            }
        }
        None
    }
}

impl SuffixDetector {
    pub fn new(cat: Category, cfg: SuffixConfig, net: Network) -> Result<Self, String> {
        let what = format!("detectors.{}", cat.id());
        cfg.validate(&what)?;
        let mut suffixes = SuffixMap::default();
        if cfg.builtin {
            suffixes.extend(builtin_suffixes(cat.id()));
        }
        for s in &cfg.extra_suffixes {
            let mut it = s.split_whitespace();
            let suf = normalize_name(it.next().unwrap_or(""));
            let kind = it.next().unwrap_or("user").to_string();
            suffixes.insert(suf, kind);
        }
        Ok(SuffixDetector {
            cat,
            allow: cfg.allow.compile(&what)?,
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_alert_keys),
            cfg,
            net,
            suffixes: SuffixIndex::new(suffixes),
            alerts: 0,
        })
    }

    pub fn suffix_count(&self) -> usize {
        self.suffixes.len()
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        ts: TsNanos,
        vlan: Vlans,
        client: IpAddr,
        dest: Option<(IpAddr, u16, u8)>,
        raw_name: &str,
        source: &'static str,
        out: &mut Vec<Alert>,
    ) {
        if !self.net.is_internal(client) {
            return;
        }
        let name = super::normalized(raw_name);
        let Some(suffix) = self.suffixes.find(&name) else {
            return;
        };
        if self.allow.name(&name) || self.allow.src(client) {
            return;
        }
        if let Some((d, _, _)) = dest {
            if self.allow.dest(d) {
                return;
            }
        }
        let head = &name[..name.len() - suffix.len() - 1];
        if head == "www" {
            // The provider's own web site.
            return;
        }
        let customer = format!("{}.{suffix}", head.rsplit('.').next().unwrap_or(head));
        let kind = self.suffixes.kind(suffix).unwrap_or_default().to_string();
        let host = HostKey::new(vlan, client);
        let det = self.cat.id();
        let key = format!("{det}|{}|{customer}", host.label());
        let Some(hit) = self.dedupe.hit(&key, ts) else {
            return;
        };
        let sev = match (self.cat, kind.as_str()) {
            (Category::Ddns, _) => Severity::Medium,
            (Category::Paas, "tunnel") => Severity::Medium,
            (Category::Paas, _) => Severity::Low,
        };
        let what = match self.cat {
            Category::Ddns => "dynamic-DNS",
            Category::Paas if kind == "tunnel" => "tunnel-service",
            Category::Paas => "PaaS/hosting",
        };
        let mut a = new_alert(
            ts,
            det,
            sev,
            format!("KIZUKI {what} name {customer} ({source})"),
            key,
            hit,
        );
        a.src_ip = Some(client);
        if let Some((d, p, proto)) = dest {
            a.dest_ip = Some(d);
            a.dest_port = Some(p);
            a.proto = Some(proto);
        }
        a.name = Some(name.to_string());
        let ev = &mut a.evidence;
        ev.insert("suffix".into(), suffix.into());
        ev.insert("kind".into(), kind.into());
        ev.insert("customer_name".into(), customer.into());
        ev.insert("registrable_domain".into(), json!(registrable(&name)));
        ev.insert("name_source".into(), source.into());
        add_vlan(&mut a, vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for SuffixDetector {
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
        self.cat.id()
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        match ev {
            Event::Dns(d) => {
                let dest = Some((d.server_ip, d.server_port, d.proto));
                if self.cfg.check_dns {
                    self.check(d.ts, d.vlan, d.client_ip, dest, &d.qname, "dns_query", out);
                }
                if self.cfg.check_cname {
                    for an in d.answers.iter().filter(|a| a.rtype == 5) {
                        self.check(d.ts, d.vlan, d.client_ip, dest, &an.data, "dns_cname", out);
                    }
                }
            }
            Event::Flow(f) => {
                let Some(n) = &f.server_name else { return };
                let (ok, src) = match f.server_name_source {
                    Some(crate::NameSource::HttpHost) => (self.cfg.check_http_host, "http_host"),
                    _ => (self.cfg.check_sni, "tls_sni"),
                };
                if ok {
                    let dest = Some((f.dest_ip, f.dest_port, f.proto));
                    self.check(f.last_ts, f.vlan, f.src_ip, dest, n, src, out);
                }
            }
            Event::Burst(b) => {
                if let (Some(n), true) = (&b.server_name, self.cfg.check_sni) {
                    let dest = Some((b.dest_ip, b.dest_port, b.proto));
                    self.check(b.ts, b.vlan, b.src_ip, dest, n, "tls_sni", out);
                }
            }
            Event::Mail(_) => {}
        }
    }

    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}

    fn snapshot(&self) -> serde_json::Value {
        json!({
            "alerts": self.alerts,
            "suffixes": self.suffixes.len(),
            "suppressed": self.dedupe.suppressed,
            "dedupe_evictions": self.dedupe.evictions(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::*;

    fn ddns() -> SuffixDetector {
        SuffixDetector::new(
            Category::Ddns,
            SuffixConfig::default(),
            Network::default_model(),
        )
        .unwrap()
    }

    #[test]
    fn find_walks_from_the_longest_proper_suffix() {
        // The walk before the length bound: every dot, left to right.
        // Where the match starts in the name.
        fn reference(m: &SuffixMap, name: &str) -> Option<usize> {
            let mut rest = name;
            while let Some(i) = rest.find('.') {
                rest = &rest[i + 1..];
                if m.contains_key(rest) {
                    return Some(name.len() - rest.len());
                }
            }
            None
        }
        // With a single-label key and without one (the last label alone is then never looked up).
        for keys in [
            &["duckdns.org", "org", "a.b.c.example", "x.y"][..],
            &["duckdns.org", "a.b.c.example", "x.y"][..],
        ] {
            check_find(keys, reference);
        }
    }

    fn check_find(keys: &[&str], reference: fn(&SuffixMap, &str) -> Option<usize>) {
        let mut m = SuffixMap::default();
        for s in keys {
            m.insert(s.to_string(), String::new());
        }
        let index = SuffixIndex::new(m.clone());
        for n in [
            "duckdns.org",
            "a.duckdns.org",
            ".duckdns.org",
            "q.a.b.c.example",
            "a.b.c.example",
            "zz.b.c.example",
            "long-label-longer-than-any-suffix.x.y",
            "x.y",
            "w.x.y.",
            "日本.duckdns.org",
            "b.c.example",
            "c.example",
            "org",
            "x.org",
            "a.x.org",
            "",
            ".",
            "..",
        ] {
            let found = index.find(n).map(|f| n.len() - f.len());
            assert_eq!(found, reference(&m, n), "{keys:?} {n:?}");
        }
    }

    #[test]
    fn builtin_list_parses() {
        let d = builtin_suffixes("ddns");
        assert!(d.iter().any(|(s, _)| s == "duckdns.org"));
        let p = builtin_suffixes("paas");
        assert!(p
            .iter()
            .any(|(s, k)| s == "trycloudflare.com" && k == "tunnel"));
        assert!(p
            .iter()
            .any(|(s, k)| s == "herokuapp.com" && k == "hosting"));
        assert!(d.len() > 40 && p.len() > 30);
    }

    #[test]
    fn dns_query_fires_once_per_customer() {
        let mut d = ddns();
        let mut out = Vec::new();
        d.on_event(&dns_a(1, "10.0.0.5", "duckdns.org", &[]), &mut out); // provider site
        d.on_event(&dns_a(1, "10.0.0.5", "www.duckdns.org", &[]), &mut out);
        d.on_event(&dns_a(1, "10.0.0.5", "notduckdns.org", &[]), &mut out);
        d.on_event(&dns_a(1, "198.51.100.1", "x.duckdns.org", &[]), &mut out); // external client
        assert!(out.is_empty());
        d.on_event(&dns_a(2, "10.0.0.5", "C2.Evil.DuckDNS.org.", &[]), &mut out);
        d.on_event(&dns_a(3, "10.0.0.5", "c3.evil.duckdns.org", &[]), &mut out);
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.detector, "ddns");
        assert_eq!(a.name.as_deref(), Some("c2.evil.duckdns.org"));
        assert_eq!(a.evidence["customer_name"], json!("evil.duckdns.org"));
        assert_eq!(a.evidence["registrable_domain"], json!("evil.duckdns.org"));
        d.on_event(&dns_a(3, "fd00::5", "other.ddns.net", &[]), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn cname_sni_and_allowlist() {
        let cfg = SuffixConfig {
            extra_suffixes: vec!["corp-tunnels.example tunnel".into()],
            allow: AllowConfig {
                names: vec!["ourapp.herokuapp.com".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut d = SuffixDetector::new(Category::Paas, cfg, Network::default_model()).unwrap();
        let mut out = Vec::new();
        let mut ev = dns_a(1, "10.0.0.5", "www.innocent.example", &[]);
        if let Event::Dns(t) = &mut ev {
            t.answers = vec![answer(
                "www.innocent.example",
                5,
                60,
                "api.ourapp.herokuapp.com",
            )];
        }
        d.on_event(&ev, &mut out);
        assert!(out.is_empty(), "allowlisted CNAME target");
        if let Event::Dns(t) = &mut ev {
            t.answers = vec![answer(
                "www.innocent.example",
                5,
                60,
                "random-words.trycloudflare.com",
            )];
        }
        d.on_event(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, Severity::Medium);
        assert_eq!(out[0].evidence["name_source"], json!("dns_cname"));
        let mut f = flow(5, "10.0.0.6", "203.0.113.5", 443, 1, 6);
        f.server_name = Some("x.corp-tunnels.example".into());
        d.on_event(&Event::Flow(f), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].evidence["kind"], json!("tunnel"));
        assert_eq!(out[1].dest_port, Some(443));
        let mut f = flow(5, "10.0.0.6", "203.0.113.5", 443, 1, 6);
        f.server_name = Some("foo.github.io".into());
        f.vlan.push(3);
        d.on_event(&Event::Flow(f), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].severity, Severity::Low);
        assert_eq!(out[2].evidence["vlan"], json!([3]));
    }
}
