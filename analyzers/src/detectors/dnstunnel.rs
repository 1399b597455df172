//! `dns_tunnel` and `dga`: DNS-borne C2 signs.
//!
//! - `dns_tunnel`, per (client, registrable domain) and tumbling window: unique subdomains
//!   (RITA grades 100/500/800/1000 a day), long names/labels (> 52-char label or > 90-char
//!   name), label entropy, TXT/NULL volume, answer volume (data carried back in large
//!   answers: TXT, NULL, CNAME, MX chains rather than addresses).
//! - `dga`, per client and tumbling window: distinct NXDOMAIN names whose registrable label
//!   looks random, spread over several registrable domains (Slips: ≥ 10 per window).
//!
//! State is bounded: keys are LRU-capped (evictions counted), per-key sets are capped.

use super::{
    add_vlan, check_common, check_pos, entropy, entropy_skipping, new_alert, normalized,
    registrable, secs, AllowConfig, Allowlist, Bounded, Dedupe, HostKey,
};
use crate::{Alert, Analyzer, DnsTxn, Event, Severity, TsNanos};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use std::hash::BuildHasher;

const QTYPE_NULL: u16 = 10;
const QTYPE_TXT: u16 = 16;
const RCODE_NXDOMAIN: u16 = 3;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsTunnelConfig {
    pub enabled: bool,
    /// Counting window (seconds, tumbling per client/domain).
    pub window_s: f64,
    /// Unique subdomains of one registrable domain from one client in a window that alert.
    pub unique_subdomains: usize,
    /// ... and that make it `high`.
    pub unique_subdomains_high: usize,
    /// A label longer than this, or a name longer than `long_name`, is "long".
    pub long_label: usize,
    pub long_name: usize,
    /// Long names in a window that alert.
    pub long_names_min: u64,
    /// TXT/NULL queries in a window that alert (with at least 10 unique subdomains).
    pub txt_null_min: u64,
    /// Answer data bytes in a window that alert (with at least 10 unique subdomains and
    /// answers of `answer_mean_min` bytes on average: address answers are 4 or 16).
    pub answer_bytes_min: u64,
    pub answer_mean_min: u64,
    /// Subdomain hashes kept per key at most.
    pub max_subdomains_per_key: usize,
    /// (client, domain) keys tracked at most (LRU beyond, evictions counted).
    pub max_keys: usize,
    pub cooldown_s: f64,
    pub allow: AllowConfig,
}

impl Default for DnsTunnelConfig {
    fn default() -> Self {
        DnsTunnelConfig {
            enabled: true,
            window_s: 3_600.0,
            unique_subdomains: 100,
            unique_subdomains_high: 500,
            long_label: 52,
            long_name: 90,
            long_names_min: 10,
            txt_null_min: 50,
            answer_bytes_min: 20_000,
            answer_mean_min: 100,
            max_subdomains_per_key: 1_000,
            max_keys: 5_000,
            cooldown_s: 3_600.0,
            allow: AllowConfig::default(),
        }
    }
}

impl DnsTunnelConfig {
    pub fn validate(&self) -> Result<(), String> {
        let w = "detectors.dns_tunnel";
        check_common(
            w,
            self.cooldown_s,
            &[
                ("max_keys", self.max_keys),
                ("max_subdomains_per_key", self.max_subdomains_per_key),
                ("unique_subdomains", self.unique_subdomains),
                ("long_names_min", self.long_names_min as usize),
                ("txt_null_min", self.txt_null_min as usize),
                ("answer_bytes_min", self.answer_bytes_min as usize),
            ],
        )?;
        check_pos(&format!("{w}.window_s"), self.window_s)?;
        self.allow.compile(w).map(|_| ())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DgaConfig {
    pub enabled: bool,
    /// Counting window (seconds, tumbling per client).
    pub window_s: f64,
    /// Distinct random-looking NXDOMAIN names in a window that alert.
    pub nxdomain_min: usize,
    /// ... spread over at least this many registrable domains.
    pub min_domains: usize,
    /// Labels shorter than this never look random.
    pub min_label_len: usize,
    /// Clients tracked at most (LRU beyond, evictions counted).
    pub max_clients: usize,
    /// NXDOMAIN names kept per client at most.
    pub max_names_per_client: usize,
    pub cooldown_s: f64,
    pub allow: AllowConfig,
}

impl Default for DgaConfig {
    fn default() -> Self {
        DgaConfig {
            enabled: true,
            window_s: 3_600.0,
            nxdomain_min: 10,
            min_domains: 5,
            min_label_len: 7,
            max_clients: 50_000,
            max_names_per_client: 1_024,
            cooldown_s: 3_600.0,
            allow: AllowConfig::default(),
        }
    }
}

impl DgaConfig {
    pub fn validate(&self) -> Result<(), String> {
        let w = "detectors.dga";
        check_common(
            w,
            self.cooldown_s,
            &[
                ("max_clients", self.max_clients),
                ("max_names_per_client", self.max_names_per_client),
                ("nxdomain_min", self.nxdomain_min),
            ],
        )?;
        check_pos(&format!("{w}.window_s"), self.window_s)?;
        self.allow.compile(w).map(|_| ())
    }
}

/// Sets of names (subdomains, NXDOMAIN names, domains) hold 64-bit hashes of them: seeded
/// (the names are the attacker's), and the sets hash those hashes with foldhash.
type HashSet64 = HashSet<u64, foldhash::fast::RandomState>;

fn hash64(seed: &foldhash::fast::RandomState, s: &str) -> u64 {
    seed.hash_one(s)
}

/// Hashes inline before the first spill into a [`HashSet64`].
const INLINE_HASHES: usize = 8;

/// A set of name hashes that starts inline: most (client, domain) and client keys see a
/// handful of names in their window, and a key made and evicted per query (a busy mirror
/// port fills the key cap) then costs no set allocation.
#[derive(Default)]
struct NameHashes {
    inline: smallvec::SmallVec<[u64; INLINE_HASHES]>,
    spilled: Option<HashSet64>,
}

impl NameHashes {
    fn len(&self) -> usize {
        self.spilled
            .as_ref()
            .map_or(self.inline.len(), HashSet::len)
    }

    fn contains(&self, h: u64) -> bool {
        match &self.spilled {
            Some(s) => s.contains(&h),
            None => self.inline.contains(&h),
        }
    }

    /// True when `h` was not in the set.
    fn insert(&mut self, h: u64) -> bool {
        if let Some(s) = &mut self.spilled {
            return s.insert(h);
        }
        if self.inline.contains(&h) {
            return false;
        }
        if self.inline.len() < INLINE_HASHES {
            self.inline.push(h);
        } else {
            let mut s: HashSet64 = self.inline.drain(..).collect();
            s.insert(h);
            self.spilled = Some(s);
        }
        true
    }
}

/// Heuristic: does a DNS label look machine-generated? Scores vowel scarcity, long runs of
/// non-vowels, high entropy, letters mixed with digits, and length.
pub fn looks_random(label: &str, min_len: usize) -> bool {
    let b = label.as_bytes();
    if b.len() < min_len.max(1) {
        return false;
    }
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let vowels = b
        .iter()
        .filter(|c| {
            matches!(
                c.to_ascii_lowercase(),
                b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
            )
        })
        .count();
    let mut run = 0usize;
    let mut max_run = 0usize;
    for c in b {
        let v = matches!(
            c.to_ascii_lowercase(),
            b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
        );
        if c.is_ascii_alphanumeric() && !v {
            run += 1;
            max_run = max_run.max(run);
        } else {
            run = 0;
        }
    }
    let mut score = 0;
    if letters > 0 && (vowels as f64) < 0.22 * letters as f64 {
        score += 1;
    }
    if max_run >= 5 {
        score += 1;
    }
    if entropy(label) >= 3.2 {
        score += 1;
    }
    if letters > 0 && digits > 0 && digits as f64 >= 0.15 * b.len() as f64 {
        score += 1;
    }
    if b.len() >= 16 {
        score += 1;
    }
    score >= 2
}

/// The length of `name`'s longest label (`split('.')` then the longest part).
fn longest_label(name: &str) -> usize {
    let (mut max, mut run) = (0, 0);
    for &b in name.as_bytes() {
        if b == b'.' {
            max = max.max(run);
            run = 0;
        } else {
            run += 1;
        }
    }
    max.max(run)
}

/// Names never analysed: reverse zones, local names, single labels.
fn skip_name(name: &str) -> bool {
    // By the last byte first: most names end in none of these suffixes' letters.
    let skipped_zone = match name.as_bytes().last() {
        Some(b'a') => name.ends_with(".arpa"),
        Some(b'l') => name.ends_with(".local") || name.ends_with(".internal"),
        Some(b'n') => name.ends_with(".localdomain"),
        _ => false,
    };
    skipped_zone || !name.contains('.')
}

/// Names kept per (client, domain) key as an alert's samples.
const TUNNEL_SAMPLES: usize = 3;

struct TunnelState {
    window_start: TsNanos,
    subdomains: NameHashes,
    /// Unique subdomains seen (saturates at the set's cap).
    queries: u64,
    long_names: u64,
    txt_null: u64,
    /// Answered queries, and the bytes of their answers' data.
    answered: u64,
    answer_bytes: u64,
    max_answer_bytes: u64,
    max_label: usize,
    max_name: usize,
    entropy_sum: f64,
    entropy_n: u64,
    /// The first names with a subdomain, for the alert. Inline: most keys are made for one
    /// or two queries and evicted, and a vector was an allocation (and a free) each.
    samples: smallvec::SmallVec<[Box<str>; TUNNEL_SAMPLES]>,
    severity: Option<Severity>,
}

impl TunnelState {
    fn new(t: TsNanos) -> Self {
        TunnelState {
            window_start: t,
            subdomains: NameHashes::default(),
            queries: 0,
            long_names: 0,
            txt_null: 0,
            answered: 0,
            answer_bytes: 0,
            max_answer_bytes: 0,
            max_label: 0,
            max_name: 0,
            entropy_sum: 0.0,
            entropy_n: 0,
            samples: smallvec::SmallVec::new(),
            severity: None,
        }
    }
}

/// Bytes of data in a response's answers: the presentation text of each record's data (TXT
/// strings, target names, NULL as hex), an address's 4 or 16 bytes.
fn answer_bytes(d: &DnsTxn) -> u64 {
    d.answers
        .iter()
        .map(|a| match a.addr {
            Some(std::net::IpAddr::V4(_)) => 4,
            Some(std::net::IpAddr::V6(_)) => 16,
            None => a.data.len() as u64,
        })
        .sum()
}

pub struct DnsTunnel {
    cfg: DnsTunnelConfig,
    allow: Allowlist,
    window: i64,
    /// By (client, seeded hash of the registrable domain): no copy of the domain per key,
    /// and the alert takes the domain from the query that raised it.
    keys: Bounded<(HostKey, u64), TunnelState>,
    dedupe: Dedupe,
    seed: foldhash::fast::RandomState,
    pub alerts: u64,
}

impl DnsTunnel {
    pub fn new(cfg: DnsTunnelConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(DnsTunnel {
            allow: cfg.allow.compile("detectors.dns_tunnel")?,
            window: secs(cfg.window_s),
            keys: Bounded::new(cfg.max_keys),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_keys),
            seed: Default::default(),
            alerts: 0,
            cfg,
        })
    }

    fn on_dns(&mut self, d: &DnsTxn, out: &mut Vec<Alert>) {
        let name = normalized(&d.qname);
        if skip_name(&name)
            || self
                .allow
                .any(Some(d.client_ip), Some(d.server_ip), Some(&name))
        {
            return;
        }
        let Some(reg) = registrable(&name) else {
            return;
        };
        let sub = if name.len() > reg.len() {
            &name[..name.len() - reg.len() - 1]
        } else {
            ""
        };
        let host = HostKey::new(d.vlan, d.client_ip);
        let cfg = &self.cfg;
        let window = self.window;
        let st = self
            .keys
            .entry((host, hash64(&self.seed, reg)), || TunnelState::new(d.ts));
        if d.ts.saturating_sub(st.window_start) > window {
            *st = TunnelState::new(d.ts);
        }
        st.queries += 1;
        let new_sub = !sub.is_empty()
            && st.subdomains.len() < cfg.max_subdomains_per_key
            && st.subdomains.insert(hash64(&self.seed, sub));
        let max_label = longest_label(&name);
        st.max_label = st.max_label.max(max_label);
        st.max_name = st.max_name.max(name.len());
        if max_label > cfg.long_label || name.len() > cfg.long_name {
            st.long_names += 1;
        }
        if d.qtype == QTYPE_TXT || d.qtype == QTYPE_NULL {
            st.txt_null += 1;
        }
        if d.answered() {
            let bytes = answer_bytes(d);
            st.answered += 1;
            st.answer_bytes = st.answer_bytes.saturating_add(bytes);
            st.max_answer_bytes = st.max_answer_bytes.max(bytes);
        }
        // Entropy of the subdomain's characters without the dots between its labels, over
        // the distinct subdomains (a name asked again would only weight the mean).
        if new_sub {
            let (h, n) = entropy_skipping(sub, b'.');
            if n >= 8 {
                st.entropy_sum += h;
                st.entropy_n += 1;
            }
        }
        if st.samples.len() < TUNNEL_SAMPLES && !sub.is_empty() {
            st.samples.push(name.as_ref().into());
        }
        let uniq = st.subdomains.len();
        let mut reasons = Vec::new();
        if uniq >= cfg.unique_subdomains {
            reasons.push("unique_subdomains");
        }
        if st.long_names >= cfg.long_names_min {
            reasons.push("long_names");
        }
        if st.txt_null >= cfg.txt_null_min && uniq >= 10 {
            reasons.push("txt_null_volume");
        }
        if st.answer_bytes >= cfg.answer_bytes_min
            && st.answer_bytes >= cfg.answer_mean_min.saturating_mul(st.answered)
            && uniq >= 10
        {
            reasons.push("answer_volume");
        }
        if reasons.is_empty() {
            return;
        }
        let sev = if uniq >= cfg.unique_subdomains_high || reasons.len() >= 2 {
            Severity::High
        } else {
            Severity::Medium
        };
        let key = format!("dns_tunnel|{}|{reg}", host.label());
        if st.severity.is_some_and(|s| s < sev) {
            self.dedupe.escalate(&key);
        }
        let Some(hit) = self.dedupe.hit(&key, d.ts) else {
            return;
        };
        st.severity = Some(sev);
        let mean_entropy = (st.entropy_n > 0).then(|| st.entropy_sum / st.entropy_n as f64);
        let mut a = new_alert(
            d.ts,
            "dns_tunnel",
            sev,
            format!(
                "KIZUKI possible DNS tunnel to {reg} ({})",
                reasons.join(", ")
            ),
            key,
            hit,
        );
        a.src_ip = Some(d.client_ip);
        a.src_port = Some(d.client_port);
        a.dest_ip = Some(d.server_ip);
        a.dest_port = Some(d.server_port);
        a.proto = Some(d.proto);
        a.name = Some(reg.to_string());
        let ev = &mut a.evidence;
        ev.insert("reasons".into(), json!(reasons));
        ev.insert("registrable_domain".into(), reg.into());
        ev.insert("unique_subdomains".into(), uniq.into());
        ev.insert(
            "unique_subdomains_capped".into(),
            (uniq >= cfg.max_subdomains_per_key).into(),
        );
        ev.insert("queries".into(), st.queries.into());
        ev.insert("long_names".into(), st.long_names.into());
        ev.insert("txt_null_queries".into(), st.txt_null.into());
        ev.insert("answer_bytes".into(), st.answer_bytes.into());
        ev.insert("max_answer_bytes".into(), st.max_answer_bytes.into());
        ev.insert("max_label_len".into(), st.max_label.into());
        ev.insert("max_name_len".into(), st.max_name.into());
        ev.insert(
            "mean_subdomain_entropy".into(),
            json!(mean_entropy.map(|e| (e * 1000.0).round() / 1000.0)),
        );
        ev.insert("window_start".into(), json!(st.window_start as f64 / 1e9));
        ev.insert("samples".into(), json!(st.samples.as_slice()));
        add_vlan(&mut a, d.vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for DnsTunnel {
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
        "dns_tunnel"
    }
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Event::Dns(d) = ev {
            self.on_dns(d, out);
        }
    }
    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}
    fn snapshot(&self) -> serde_json::Value {
        json!({
            "alerts": self.alerts,
            "keys": self.keys.len(),
            "key_evictions": self.keys.evictions(),
            "suppressed": self.dedupe.suppressed,
        })
    }
}

struct DgaState {
    window_start: TsNanos,
    nx_names: NameHashes,
    nx_total: u64,
    random_names: u64,
    domains: NameHashes,
    samples: Vec<String>,
    last_server: Option<(std::net::IpAddr, u16, u8)>,
}

impl DgaState {
    fn new(t: TsNanos) -> Self {
        DgaState {
            window_start: t,
            nx_names: NameHashes::default(),
            nx_total: 0,
            random_names: 0,
            domains: NameHashes::default(),
            samples: Vec::new(),
            last_server: None,
        }
    }
}

pub struct Dga {
    cfg: DgaConfig,
    allow: Allowlist,
    window: i64,
    clients: Bounded<HostKey, DgaState>,
    dedupe: Dedupe,
    seed: foldhash::fast::RandomState,
    pub alerts: u64,
}

impl Dga {
    pub fn new(cfg: DgaConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Dga {
            allow: cfg.allow.compile("detectors.dga")?,
            window: secs(cfg.window_s),
            clients: Bounded::new(cfg.max_clients),
            dedupe: Dedupe::new(cfg.cooldown_s, cfg.max_clients),
            seed: Default::default(),
            alerts: 0,
            cfg,
        })
    }

    fn on_dns(&mut self, d: &DnsTxn, out: &mut Vec<Alert>) {
        if d.rcode != Some(RCODE_NXDOMAIN) {
            return;
        }
        let name = normalized(&d.qname);
        if skip_name(&name)
            || self
                .allow
                .any(Some(d.client_ip), Some(d.server_ip), Some(&name))
        {
            return;
        }
        let reg: &str = registrable(&name).unwrap_or(&name);
        let label = reg.split('.').next().unwrap_or("");
        let random = looks_random(label, self.cfg.min_label_len);
        let host = HostKey::new(d.vlan, d.client_ip);
        let window = self.window;
        let cap = self.cfg.max_names_per_client;
        let st = self.clients.entry(host, || DgaState::new(d.ts));
        if d.ts.saturating_sub(st.window_start) > window {
            *st = DgaState::new(d.ts);
        }
        st.nx_total += 1;
        st.last_server = Some((d.server_ip, d.server_port, d.proto));
        let h = hash64(&self.seed, &name);
        if st.nx_names.contains(h) || st.nx_names.len() >= cap {
            return;
        }
        st.nx_names.insert(h);
        if !random {
            return;
        }
        st.random_names += 1;
        if st.domains.len() < cap {
            st.domains.insert(hash64(&self.seed, reg));
        }
        if st.samples.len() < 5 {
            st.samples.push(name.to_string());
        }
        if (st.random_names as usize) < self.cfg.nxdomain_min
            || st.domains.len() < self.cfg.min_domains
        {
            return;
        }
        let key = format!("dga|{}", host.label());
        let Some(hit) = self.dedupe.hit(&key, d.ts) else {
            return;
        };
        let sev = if st.random_names as usize >= self.cfg.nxdomain_min * 5 {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut a = new_alert(
            d.ts,
            "dga",
            sev,
            format!(
                "KIZUKI possible DGA: {} random-looking NXDOMAIN names from {}",
                st.random_names, d.client_ip
            ),
            key,
            hit,
        );
        a.src_ip = Some(d.client_ip);
        if let Some((ip, port, proto)) = st.last_server {
            a.dest_ip = Some(ip);
            a.dest_port = Some(port);
            a.proto = Some(proto);
        }
        a.name = Some(name.into_owned());
        let ev = &mut a.evidence;
        ev.insert("random_nxdomain_names".into(), st.random_names.into());
        ev.insert("distinct_nxdomain_names".into(), st.nx_names.len().into());
        ev.insert("nxdomain_responses".into(), st.nx_total.into());
        ev.insert("registrable_domains".into(), st.domains.len().into());
        ev.insert("window_start".into(), json!(st.window_start as f64 / 1e9));
        ev.insert("samples".into(), json!(st.samples));
        add_vlan(&mut a, d.vlan);
        self.alerts += 1;
        out.push(a);
    }
}

impl Analyzer for Dga {
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
        "dga"
    }
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Event::Dns(d) = ev {
            self.on_dns(d, out);
        }
    }
    fn on_tick(&mut self, _now: TsNanos, _out: &mut Vec<Alert>) {}
    fn snapshot(&self) -> serde_json::Value {
        json!({
            "alerts": self.alerts,
            "clients": self.clients.len(),
            "client_evictions": self.clients.evictions(),
            "suppressed": self.dedupe.suppressed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::detectors::testutil::*;

    #[test]
    fn name_hashes_is_a_set_across_the_spill() {
        let mut s = NameHashes::default();
        let mut reference = std::collections::HashSet::new();
        for i in 0..40u64 {
            let h = (i % 23).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(s.insert(h), reference.insert(h), "insert {i}");
            assert_eq!(s.len(), reference.len());
            assert!(s.contains(h));
        }
        assert!(!s.contains(1));
        assert!(
            s.spilled.is_some(),
            "23 distinct hashes spill past the inline ones"
        );
    }

    /// Deterministic pseudo-random lowercase/digit string.
    pub fn rand_label(seed: u64, len: usize) -> String {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize] as char
            })
            .collect()
    }

    #[test]
    fn skip_name_is_the_suffix_test() {
        let reference = |n: &str| {
            [".arpa", ".local", ".localdomain", ".internal"]
                .iter()
                .any(|s| n.ends_with(s))
                || !n.contains('.')
        };
        for n in [
            "",
            "a",
            "x.arpa",
            "arpa",
            "1.0.168.192.in-addr.arpa",
            "printer.local",
            "local",
            "a.localdomain",
            "a.internal",
            "corp.internal.example.com",
            "a.b",
            "evil.local.com",
            "x.ocal",
            "x.nal",
            "x.rpa",
            "x.localdomainn",
            "www.example.com",
        ] {
            assert_eq!(skip_name(n), reference(n), "{n:?}");
        }
    }

    #[test]
    fn longest_label_is_the_longest_split_part() {
        for n in [
            "",
            ".",
            "a",
            "a.bb.c",
            "aaa.b.",
            ".bbbb",
            "x..yy",
            "日本.語",
        ] {
            let want = n.split('.').map(str::len).max().unwrap_or(0);
            assert_eq!(longest_label(n), want, "{n:?}");
        }
    }

    #[test]
    fn randomness_heuristic() {
        for w in [
            "google",
            "facebook",
            "microsoftonline",
            "wikipedia",
            "cloudflare",
            "stackoverflow",
            "kizukisensor",
            "amazonaws",
            "windowsupdate",
            "example",
        ] {
            assert!(!looks_random(w, 7), "{w}");
        }
        for w in [
            "qxvbnrtlkw",
            "ywtkbeqrfmcijpf",
            "xj3kq9ptzw",
            "kdjfhw8e7rbx",
            "zzqpxkwtrm",
        ] {
            assert!(looks_random(w, 7), "{w}");
        }
        let hits = (0..200)
            .filter(|i| looks_random(&rand_label(*i, 12), 7))
            .count();
        assert!(hits > 160, "random 12-char labels: {hits}/200");
    }

    #[test]
    fn tunnel_unique_subdomains_and_window() {
        let mut d = DnsTunnel::new(DnsTunnelConfig {
            unique_subdomains: 20,
            window_s: 60.0,
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        // 15 per window: never 20.
        for i in 0..30 {
            let n = format!("{}.t.example.com", rand_label(i, 20));
            d.on_event(
                &Event::Dns(dns_txn(i as i64 * 5, "10.0.0.5", &n, 1, Some(0))),
                &mut out,
            );
        }
        assert!(out.is_empty());
        for i in 100..125 {
            let n = format!("{}.t.example.com", rand_label(i, 20));
            d.on_event(
                &Event::Dns(dns_txn(1000, "10.0.0.5", &n, 16, Some(0))),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1, "alerted once, then deduped");
        let a = &out[0];
        assert_eq!(a.detector, "dns_tunnel");
        assert_eq!(a.name.as_deref(), Some("example.com"));
        assert_eq!(a.evidence["unique_subdomains"], json!(20));
        // Same names again: nothing new.
        for i in 100..125 {
            let n = format!("{}.t.example.com", rand_label(i, 20));
            d.on_event(
                &Event::Dns(dns_txn(1001, "10.0.0.5", &n, 1, Some(0))),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
    }

    /// A query whose answer carries `rdata` in `n` records of type `rtype`.
    fn answered(t: i64, name: &str, qtype: u16, rtype: u16, rdata: &str, n: usize) -> Event {
        let mut d = dns_txn(t, "10.0.0.5", name, qtype, Some(0));
        d.answers = (0..n).map(|_| answer(name, rtype, 60, rdata)).collect();
        Event::Dns(d)
    }

    #[test]
    fn tunnel_answer_volume_needs_large_answers_not_many_addresses() {
        let mut d = DnsTunnel::new(DnsTunnelConfig::default()).unwrap();
        let mut out = Vec::new();
        // A busy CDN domain: 2000 lookups of 30 names, four addresses each (32 KB of
        // address bytes), and 30 answers of a 300-byte CNAME chain: small on average.
        for i in 0..2000 {
            let n = format!("img{}.cdn.example.com", i % 30);
            d.on_event(&answered(i, &n, 1, 1, "203.0.113.7", 4), &mut out);
        }
        for i in 0..30 {
            let n = format!("v{i}.cdn.example.com");
            let target = "x".repeat(300);
            d.on_event(&answered(3000 + i, &n, 1, 5, &target, 1), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // 30 CNAME lookups (fewer than `txt_null_min` TXT/NULL, far fewer than 100 unique
        // names) carrying 800 bytes back each: 24 KB.
        for i in 0..30 {
            let n = format!("{}.t.example.net", rand_label(i, 16));
            let data = rand_label(i + 99, 800);
            d.on_event(&answered(100 + i as i64, &n, 5, 5, &data, 1), &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.name.as_deref(), Some("example.net"));
        assert_eq!(a.evidence["reasons"], json!(["answer_volume"]));
        assert_eq!(a.evidence["answer_bytes"], json!(25 * 800));
        assert_eq!(a.evidence["max_answer_bytes"], json!(800));
    }

    #[test]
    fn tunnel_long_names_ipv6_and_allowlist() {
        let mut d = DnsTunnel::new(DnsTunnelConfig {
            long_names_min: 3,
            allow: AllowConfig {
                names: vec!["avqs.example".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        for i in 0..5 {
            let n = format!("{}.avqs.example", rand_label(i, 60));
            d.on_event(
                &Event::Dns(dns_txn(i as i64, "fd00::5", &n, 16, Some(0))),
                &mut out,
            );
            let n = format!("{}.10.in-addr.arpa", rand_label(i, 60));
            d.on_event(
                &Event::Dns(dns_txn(i as i64, "fd00::5", &n, 12, Some(0))),
                &mut out,
            );
        }
        assert!(out.is_empty());
        for i in 0..3 {
            let n = format!(
                "{}.{}.c2.example.net",
                rand_label(i, 60),
                rand_label(i + 9, 40)
            );
            d.on_event(
                &Event::Dns(dns_txn(i as i64, "fd00::5", &n, 16, Some(0))),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].src_ip, Some(ip("fd00::5")));
        assert_eq!(out[0].evidence["long_names"], json!(3));
        assert!(out[0].evidence["mean_subdomain_entropy"].as_f64().unwrap() > 4.0);
    }

    #[test]
    fn tunnel_memory_bounded() {
        let mut d = DnsTunnel::new(DnsTunnelConfig {
            max_keys: 100,
            max_subdomains_per_key: 50,
            unique_subdomains: 60,
            ..Default::default()
        })
        .unwrap();
        let mut out = Vec::new();
        for i in 0..5000u64 {
            let n = format!("{}.d{}.example", rand_label(i, 10), i % 300);
            d.on_event(
                &Event::Dns(dns_txn(1, "10.0.0.5", &n, 1, Some(0))),
                &mut out,
            );
        }
        assert_eq!(d.keys.len(), 100);
        assert!(d.keys.evictions() > 0);
        assert!(d.keys.iter().all(|(_, s)| s.subdomains.len() <= 50));
    }

    #[test]
    fn dga_fires_on_random_nxdomains_only() {
        let mut d = Dga::new(DgaConfig::default()).unwrap();
        let mut out = Vec::new();
        // Typos and a broken internal name: many NXDOMAINs, not random.
        for (i, n) in [
            "gogle.com",
            "faceboook.com",
            "wikipedai.org",
            "printer.corp.example",
        ]
        .iter()
        .enumerate()
        {
            for k in 0..10 {
                d.on_event(
                    &Event::Dns(dns_txn(i as i64 * 10 + k, "10.0.0.5", n, 1, Some(3))),
                    &mut out,
                );
            }
        }
        // Random names, but answered (not NXDOMAIN).
        for i in 0..20 {
            let n = format!("{}.com", rand_label(i, 12));
            d.on_event(
                &Event::Dns(dns_txn(100, "10.0.0.5", &n, 1, Some(0))),
                &mut out,
            );
        }
        assert!(out.is_empty());
        for i in 0..30 {
            let n = format!(
                "{}.{}",
                rand_label(1000 + i, 12),
                ["com", "net", "org", "info", "biz"][i as usize % 5]
            );
            d.on_event(
                &Event::Dns(dns_txn(200 + i as i64, "10.0.0.5", &n, 1, Some(3))),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detector, "dga");
        assert!(out[0].evidence["random_nxdomain_names"].as_u64().unwrap() >= 10);
        // Another VLAN, same address: its own counter.
        let mut t = dns_txn(300, "10.0.0.5", "qxvbnrtlkw.com", 1, Some(3));
        t.vlan.push(4);
        d.on_event(&Event::Dns(t), &mut out);
        assert_eq!(out.len(), 1);
    }
}
