//! `volume` and `long_connection` (J-CRAT "traffic volume from proxy logs"; RITA's long
//! connections).
//!
//! - `volume` / volume spike: per internal host, bytes sent to external addresses per bucket
//!   (`bucket_s`) against the host's own baseline: an EWMA of the bucket totals and an EWMA of
//!   the absolute deviation (a streaming stand-in for the MAD). A bucket above
//!   `ewma + mad_k · max(deviation, 10 % of ewma)` and above `min_bucket_bytes`, once the host
//!   has `min_buckets` of history, alerts.
//! - `volume` / large upload: one flow that sent at least `large_upload_bytes` from an
//!   internal host to an external address.
//! - `volume` / ratio shift: a host whose buckets with traffic have been mostly downloads (an
//!   EWMA of its outbound share of external bytes at most `ratio_baseline_max`) sends more than
//!   it receives (share ≥ `ratio_share_min`) in a bucket with at least `ratio_min_bytes` out.
//!   A workstation turning into an uploader is exfiltration's shape even below a spike's
//!   threshold; a bucket that already raised a spike raises no ratio alert.
//! - `long_connection`: a flow between an internal and an external host lasting 1/4/8/12 h
//!   (RITA's grades, `grades_s`): low/medium/high/critical; each higher grade updates the alert.
//!
//! Bytes are IP bytes (wire lengths). Flow `update` records are cumulative: only the growth
//! since the flow's previous record is counted. Top talkers are exported by
//! [`Volume::top_talkers`] (capped top-K).

use crate::detectors::{
    add_vlan, check_common, check_pos, new_alert, secs, AllowConfig, Allowlist, Bounded, Dedupe,
    HostKey,
};
use crate::net::Network;
use crate::{Alert, Analyzer, CloseReason, Event, Flow, Severity, TsNanos, NANOS_PER_SEC};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    pub enabled: bool,
    /// Bucket length (seconds of packet time).
    pub bucket_s: f64,
    /// A bucket is judged this long after it ended, so flow records emitted late (TCP
    /// linger, other worker threads) still land in it. The last bucket is judged at the end
    /// of a replay.
    pub settle_s: f64,
    /// EWMA weight of the newest bucket (0 < alpha ≤ 1).
    pub ewma_alpha: f64,
    /// Deviations above the baseline that make a spike.
    pub mad_k: f64,
    /// Buckets of history before a host's spikes are judged (24 = a day of hourly buckets).
    pub min_buckets: u32,
    /// A spike must also be at least this many bytes.
    pub min_bucket_bytes: u64,
    /// One flow sending at least this much to the outside alerts (0 = off).
    pub large_upload_bytes: u64,
    /// Ratio shift: outbound bytes a bucket needs (0 = off). Buckets with at least a tenth
    /// of it in both directions together make the host's share baseline.
    pub ratio_min_bytes: u64,
    /// ... the bucket's outbound share of the host's external bytes that alerts,
    pub ratio_share_min: f64,
    /// ... when the host's baseline share (EWMA, `ewma_alpha`) is at most this.
    pub ratio_baseline_max: f64,
    /// Internal hosts tracked at most (LRU beyond, evictions counted).
    pub max_hosts: usize,
    /// Open flows whose reported bytes are remembered (for cumulative updates).
    pub max_tracked_flows: usize,
    /// Top talkers kept in the snapshot / gauge.
    pub top_k: usize,
    pub cooldown_s: f64,
    pub allow: AllowConfig,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            enabled: true,
            bucket_s: 3_600.0,
            settle_s: 60.0,
            ewma_alpha: 0.1,
            mad_k: 6.0,
            min_buckets: 24,
            min_bucket_bytes: 50 << 20,
            large_upload_bytes: 100 << 20,
            ratio_min_bytes: 20 << 20,
            ratio_share_min: 0.5,
            ratio_baseline_max: 0.2,
            max_hosts: 100_000,
            max_tracked_flows: 200_000,
            top_k: 10,
            cooldown_s: 3_600.0,
            allow: AllowConfig::default(),
        }
    }
}

impl VolumeConfig {
    pub fn validate(&self) -> Result<(), String> {
        let w = "detectors.volume";
        check_common(
            w,
            self.cooldown_s,
            &[
                ("max_hosts", self.max_hosts),
                ("max_tracked_flows", self.max_tracked_flows),
            ],
        )?;
        check_pos(&format!("{w}.bucket_s"), self.bucket_s)?;
        check_pos(&format!("{w}.mad_k"), self.mad_k)?;
        if !(self.settle_s.is_finite() && self.settle_s >= 0.0) {
            return Err(format!("{w}.settle_s must be >= 0, got {}", self.settle_s));
        }
        for (k, v) in [
            ("ratio_share_min", self.ratio_share_min),
            ("ratio_baseline_max", self.ratio_baseline_max),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{w}.{k} must be in [0, 1], got {v}"));
            }
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return Err(format!(
                "{w}.ewma_alpha must be in (0, 1], got {}",
                self.ewma_alpha
            ));
        }
        self.allow.compile(w).map(|_| ())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LongConnectionConfig {
    pub enabled: bool,
    /// Duration grades in seconds (ascending): low, medium, high, critical.
    pub grades_s: Vec<f64>,
    /// Destination ports never reported (e.g. push-notification services).
    pub exclude_ports: Vec<u16>,
    pub max_keys: usize,
    pub allow: AllowConfig,
}

impl Default for LongConnectionConfig {
    fn default() -> Self {
        LongConnectionConfig {
            enabled: true,
            grades_s: vec![3_600.0, 14_400.0, 28_800.0, 43_200.0],
            exclude_ports: Vec::new(),
            max_keys: 100_000,
            allow: AllowConfig::default(),
        }
    }
}

impl LongConnectionConfig {
    pub fn validate(&self) -> Result<(), String> {
        let w = "detectors.long_connection";
        check_common(w, 0.0, &[("max_keys", self.max_keys)])?;
        if self.grades_s.is_empty() || self.grades_s.len() > 4 {
            return Err(format!("{w}.grades_s needs 1 to 4 durations"));
        }
        for g in &self.grades_s {
            check_pos(&format!("{w}.grades_s"), *g)?;
        }
        if self.grades_s.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("{w}.grades_s must be ascending"));
        }
        self.allow.compile(w).map(|_| ())
    }
}

struct HostVol {
    bucket: i64,
    /// Bytes out to, and in from, external hosts in the open bucket.
    bytes: u64,
    bytes_in: u64,
    last_bucket_bytes: u64,
    ewma: f64,
    dev: f64,
    buckets: u32,
    /// EWMA of the outbound share of buckets with traffic, and how many made it.
    share_ewma: f64,
    share_buckets: u32,
    /// (out, in) bytes of later buckets not yet judged (records arrive out of order across
    /// workers).
    pending: std::collections::BTreeMap<i64, (u64, u64)>,
}

/// Adds (out, in) bytes.
fn add_pair(to: &mut (u64, u64), (o, i): (u64, u64)) {
    to.0 = to.0.saturating_add(o);
    to.1 = to.1.saturating_add(i);
}

/// Later buckets buffered per host at most (beyond, bytes join the latest one).
const MAX_PENDING_BUCKETS: usize = 16;

struct LongState {
    grade: usize,
    first_ts: TsNanos,
    flows: u64,
}

pub struct Volume {
    vcfg: VolumeConfig,
    lcfg: LongConnectionConfig,
    net: Network,
    vallow: Allowlist,
    lallow: Allowlist,
    bucket_ns: i64,
    grades: Vec<i64>,
    hosts: Bounded<HostKey, HostVol>,
    /// flow_id → (outbound, inbound) bytes already counted.
    reported: Bounded<u64, (u64, u64)>,
    long: Bounded<String, LongState>,
    dedupe: Dedupe,
    settle: i64,
    last_tick: TsNanos,
    rolled_upto: i64,
    pub alerts: u64,
}

const GRADE_SEVERITY: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

impl Volume {
    pub fn new(
        vcfg: VolumeConfig,
        lcfg: LongConnectionConfig,
        net: Network,
    ) -> Result<Self, String> {
        vcfg.validate()?;
        lcfg.validate()?;
        Ok(Volume {
            vallow: vcfg.allow.compile("detectors.volume")?,
            lallow: lcfg.allow.compile("detectors.long_connection")?,
            net,
            bucket_ns: secs(vcfg.bucket_s).max(1),
            grades: lcfg.grades_s.iter().map(|g| secs(*g)).collect(),
            hosts: Bounded::new(vcfg.max_hosts),
            reported: Bounded::new(vcfg.max_tracked_flows),
            long: Bounded::new(lcfg.max_keys),
            dedupe: Dedupe::new(vcfg.cooldown_s, vcfg.max_hosts),
            settle: secs(vcfg.settle_s).max(0),
            last_tick: i64::MIN,
            rolled_upto: i64::MIN,
            alerts: 0,
            vcfg,
            lcfg,
        })
    }

    /// The internal host, the external peer and the bytes the internal host sent out and
    /// received.
    fn orient(&self, f: &Flow) -> Option<(IpAddr, IpAddr, (u64, u64))> {
        if self.net.is_outbound(f.src_ip, f.dest_ip) {
            Some((f.src_ip, f.dest_ip, (f.bytes_toserver, f.bytes_toclient)))
        } else if self.net.is_outbound(f.dest_ip, f.src_ip) {
            Some((f.dest_ip, f.src_ip, (f.bytes_toclient, f.bytes_toserver)))
        } else {
            None
        }
    }

    /// The `k` hosts that sent the most in the last complete bucket (host label, bytes).
    pub fn top_talkers(&self, k: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(u64, &HostKey)> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.last_bucket_bytes > 0)
            .map(|(key, h)| (h.last_bucket_bytes, key))
            .collect();
        if k == 0 {
            return Vec::new();
        }
        // Only hosts at or above the k-th largest count can be in the result: label (and
        // sort) those, not every host (this runs at every metrics update).
        if v.len() > k {
            v.select_nth_unstable_by(k - 1, |a, b| b.0.cmp(&a.0));
            let kth = v[k - 1].0;
            v.retain(|&(bytes, _)| bytes >= kth);
        }
        let mut top: Vec<(String, u64)> = v.into_iter().map(|(b, key)| (key.label(), b)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(k);
        top
    }

    /// Judges `key`'s buckets before `upto` in index order (alerting on spikes) and updates
    /// its baseline; empty buckets in between count as zeros.
    fn roll(&mut self, key: HostKey, upto: i64, out: &mut Vec<Alert>) {
        loop {
            let Some(h) = self.hosts.get_mut(&key) else {
                return;
            };
            if h.bucket >= upto {
                return;
            }
            let x = h.bytes as f64;
            let (mean, dev, n) = (h.ewma, h.dev, h.buckets);
            let threshold = mean + self.vcfg.mad_k * dev.max(0.1 * mean);
            let spike = n >= self.vcfg.min_buckets
                && h.bytes >= self.vcfg.min_bucket_bytes
                && x > threshold;
            let bucket_start = h.bucket.saturating_mul(self.bucket_ns);
            let closed_bytes = h.bytes;
            let closed = (h.bytes, h.bytes_in);
            let total = closed.0.saturating_add(closed.1);
            let share = closed.0 as f64 / total.max(1) as f64;
            let (base_share, share_n) = (h.share_ewma, h.share_buckets);
            let ratio_min = self.vcfg.ratio_min_bytes;
            let shift = ratio_min > 0
                && !spike
                && share_n >= self.vcfg.min_buckets
                && closed.0 >= ratio_min
                && share >= self.vcfg.ratio_share_min
                && base_share <= self.vcfg.ratio_baseline_max;
            let a = self.vcfg.ewma_alpha;
            if ratio_min > 0 && total >= ratio_min / 10 {
                h.share_ewma = if share_n == 0 {
                    share
                } else {
                    a * share + (1.0 - a) * h.share_ewma
                };
                h.share_buckets = share_n.saturating_add(1);
            }
            let step = |h: &mut HostVol, x: f64| {
                if h.buckets == 0 {
                    h.ewma = x;
                    h.dev = 0.0;
                } else {
                    h.dev = a * (x - h.ewma).abs() + (1.0 - a) * h.dev;
                    h.ewma = a * x + (1.0 - a) * h.ewma;
                }
                h.buckets = h.buckets.saturating_add(1);
            };
            step(h, x);
            let next = h
                .pending
                .keys()
                .next()
                .copied()
                .map_or(upto, |k| k.min(upto));
            for _ in 0..(next - h.bucket - 1).clamp(0, 64) {
                step(h, 0.0);
            }
            h.last_bucket_bytes = if next - h.bucket == 1 {
                closed_bytes
            } else {
                0
            };
            h.bucket = next;
            (h.bytes, h.bytes_in) = h.pending.remove(&next).unwrap_or((0, 0));
            if shift && !self.vallow.src(key.ip) {
                self.ratio_alert(key, bucket_start, closed, (base_share, share_n), out);
            }
            if spike && !self.vallow.src(key.ip) {
                self.spike_alert(
                    key,
                    bucket_start,
                    closed_bytes,
                    (mean, dev, threshold, n),
                    out,
                );
            }
        }
    }

    fn ratio_alert(
        &mut self,
        key: HostKey,
        bucket_start: TsNanos,
        (bytes_out, bytes_in): (u64, u64),
        (base_share, n): (f64, u32),
        out: &mut Vec<Alert>,
    ) {
        let dkey = format!("volume|ratio|{}", key.label());
        let Some(hit) = self.dedupe.hit(&dkey, bucket_start + self.bucket_ns) else {
            return;
        };
        let share = bytes_out as f64 / bytes_out.saturating_add(bytes_in).max(1) as f64;
        let signature = format!(
            "KIZUKI upload/download shift from {}: {:.0} % of {} s's external bytes sent (baseline {:.0} %)",
            key.ip,
            share * 100.0,
            self.vcfg.bucket_s,
            base_share * 100.0
        );
        let bucket = (key, bucket_start, bytes_out, n);
        let mut al = self.bucket_alert(
            "ratio_shift",
            Severity::Medium,
            signature,
            dkey,
            hit,
            bucket,
        );
        let ev = &mut al.evidence;
        ev.insert("bytes_in".into(), bytes_in.into());
        let thousandths = |x: f64| json!((x * 1000.0).round() / 1000.0);
        ev.insert("outbound_share".into(), thousandths(share));
        ev.insert("baseline_share".into(), thousandths(base_share));
        self.alerts += 1;
        out.push(al);
    }

    fn spike_alert(
        &mut self,
        key: HostKey,
        bucket_start: TsNanos,
        closed_bytes: u64,
        (mean, dev, threshold, n): (f64, f64, f64, u32),
        out: &mut Vec<Alert>,
    ) {
        let dkey = format!("volume|spike|{}", key.label());
        let Some(hit) = self.dedupe.hit(&dkey, bucket_start + self.bucket_ns) else {
            return;
        };
        let x = closed_bytes as f64;
        let ratio = if mean > 0.0 { x / mean } else { f64::INFINITY };
        let sev = if ratio >= 20.0 {
            Severity::High
        } else {
            Severity::Medium
        };
        let signature = format!(
            "KIZUKI outbound volume spike from {}: {} bytes in {} s (baseline {:.0})",
            key.ip, closed_bytes, self.vcfg.bucket_s, mean
        );
        let bucket = (key, bucket_start, closed_bytes, n);
        let mut al = self.bucket_alert("spike", sev, signature, dkey, hit, bucket);
        let ev = &mut al.evidence;
        ev.insert("baseline_ewma".into(), json!(mean.round()));
        ev.insert("baseline_deviation".into(), json!(dev.round()));
        ev.insert("threshold".into(), json!(threshold.round()));
        self.alerts += 1;
        out.push(al);
    }

    /// A judged bucket's alert with the evidence spikes and ratio shifts share; `bucket` is
    /// (host, bucket start, bytes out, buckets of history).
    fn bucket_alert(
        &self,
        kind: &'static str,
        sev: Severity,
        signature: String,
        dkey: String,
        hit: super::detectors::Hit,
        (key, bucket_start, bytes_out, n): (HostKey, TsNanos, u64, u32),
    ) -> Alert {
        let mut al = new_alert(
            bucket_start + self.bucket_ns,
            "volume",
            sev,
            signature,
            dkey,
            hit,
        );
        al.src_ip = Some(key.ip);
        let ev = &mut al.evidence;
        ev.insert("kind".into(), kind.into());
        ev.insert("bucket_start".into(), json!(bucket_start as f64 / 1e9));
        ev.insert("bucket_s".into(), json!(self.vcfg.bucket_s));
        ev.insert("bytes_out".into(), bytes_out.into());
        ev.insert("history_buckets".into(), n.into());
        add_vlan(&mut al, key.vlan);
        al
    }

    fn on_flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        let Some((host_ip, peer, (total_out, total_in))) = self.orient(f) else {
            if f.reason != CloseReason::Update {
                self.reported.remove(&f.flow_id);
            }
            return;
        };
        self.check_long(f, f.last_ts, out);
        if !self.vcfg.enabled {
            return;
        }
        let (prev, prev_in) = if f.reason == CloseReason::Update {
            let p = self.reported.entry(f.flow_id, || (0, 0));
            let prev = *p;
            *p = (total_out.max(prev.0), total_in.max(prev.1));
            prev
        } else {
            self.reported.remove(&f.flow_id).unwrap_or((0, 0))
        };
        let delta = (
            total_out.saturating_sub(prev),
            total_in.saturating_sub(prev_in),
        );
        let key = HostKey::new(f.vlan, host_ip);
        let b = f.last_ts.div_euclid(self.bucket_ns);
        let h = self.hosts.entry(key, || HostVol {
            bucket: b,
            bytes: 0,
            bytes_in: 0,
            last_bucket_bytes: 0,
            ewma: 0.0,
            dev: 0.0,
            buckets: 0,
            share_ewma: 0.0,
            share_buckets: 0,
            pending: std::collections::BTreeMap::new(),
        });
        // Bytes go to their bucket if not judged yet, else to the oldest open one. Buckets
        // are judged on ticks, `settle_s` after they end, and all at the end of input.
        if b < h.bucket && h.buckets == 0 && h.pending.len() < MAX_PENDING_BUCKETS {
            // Nothing judged yet: an earlier record arrived late, start the host there.
            let (old_b, old) = (h.bucket, (h.bytes, h.bytes_in));
            add_pair(h.pending.entry(old_b).or_default(), old);
            h.bucket = b;
            (h.bytes, h.bytes_in) = delta;
        } else if b <= h.bucket {
            h.bytes = h.bytes.saturating_add(delta.0);
            h.bytes_in = h.bytes_in.saturating_add(delta.1);
        } else if h.pending.len() < MAX_PENDING_BUCKETS || h.pending.contains_key(&b) {
            add_pair(h.pending.entry(b).or_default(), delta);
        } else if let Some(mut last) = h.pending.last_entry() {
            add_pair(last.get_mut(), delta);
        }
        // Large single upload (cumulative over the flow's records).
        let big = self.vcfg.large_upload_bytes;
        if big > 0
            && total_out >= big
            && prev < big
            && !self
                .vallow
                .any(Some(host_ip), Some(peer), f.server_name.as_deref())
        {
            let dkey = format!("volume|upload|{}|{peer}", key.label());
            if let Some(hit) = self.dedupe.hit(&dkey, f.last_ts) {
                let mut a = new_alert(
                    f.last_ts,
                    "volume",
                    if total_out >= big.saturating_mul(10) {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    format!("KIZUKI large upload: {total_out} bytes from {host_ip} to {peer}"),
                    dkey,
                    hit,
                );
                a.src_ip = Some(host_ip);
                a.dest_ip = Some(peer);
                if host_ip == f.src_ip {
                    a.src_port = Some(f.src_port);
                    a.dest_port = Some(f.dest_port);
                } else {
                    a.src_port = Some(f.dest_port);
                    a.dest_port = Some(f.src_port);
                }
                a.proto = Some(f.proto);
                a.name = f.server_name.clone();
                let ev = &mut a.evidence;
                ev.insert("kind".into(), "large_upload".into());
                ev.insert("flow_id".into(), f.flow_id.into());
                ev.insert("bytes_out".into(), total_out.into());
                ev.insert(
                    "bytes_in".into(),
                    if host_ip == f.src_ip {
                        f.bytes_toclient
                    } else {
                        f.bytes_toserver
                    }
                    .into(),
                );
                ev.insert("duration_s".into(), json!(f.duration_ns() as f64 / 1e9));
                add_vlan(&mut a, f.vlan);
                self.alerts += 1;
                out.push(a);
            }
        }
    }

    /// Long connection grading (flows, their updates and bursts carry the flow start).
    #[allow(clippy::too_many_arguments)]
    fn check_long_raw(
        &mut self,
        ts: TsNanos,
        first_ts: TsNanos,
        vlan: crate::Vlans,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        name: Option<&str>,
        flow_id: u64,
        out: &mut Vec<Alert>,
    ) {
        if !self.lcfg.enabled
            || self.lcfg.exclude_ports.contains(&dst.1)
            || !(self.net.is_outbound(src.0, dst.0) || self.net.is_outbound(dst.0, src.0))
        {
            return;
        }
        let dur = ts.saturating_sub(first_ts);
        let grade = self.grades.iter().filter(|g| dur >= **g).count();
        if grade == 0 || self.lallow.any(Some(src.0), Some(dst.0), name) {
            return;
        }
        let key = format!(
            "long_connection|{}|{}|{}|{proto}",
            HostKey::new(vlan, src.0).label(),
            dst.0,
            dst.1
        );
        let st = self.long.entry(key.clone(), || LongState {
            grade: 0,
            first_ts,
            flows: 0,
        });
        if grade <= st.grade {
            return;
        }
        let update = st.grade > 0;
        st.grade = grade;
        st.flows += 1;
        let hit = crate::detectors::Hit {
            update,
            count: st.flows,
            first_ts: st.first_ts,
        };
        let hours = dur as f64 / (3600.0 * NANOS_PER_SEC as f64);
        let mut a = new_alert(
            ts,
            "long_connection",
            GRADE_SEVERITY[grade - 1],
            format!(
                "KIZUKI long connection {}:{} -> {}:{} for {hours:.1} h",
                src.0, src.1, dst.0, dst.1
            ),
            key,
            hit,
        );
        a.src_ip = Some(src.0);
        a.src_port = Some(src.1);
        a.dest_ip = Some(dst.0);
        a.dest_port = Some(dst.1);
        a.proto = Some(proto);
        a.name = name.map(str::to_string);
        let ev = &mut a.evidence;
        ev.insert("flow_id".into(), flow_id.into());
        ev.insert("duration_s".into(), json!(dur as f64 / 1e9));
        ev.insert("grade_s".into(), json!(self.lcfg.grades_s[grade - 1]));
        ev.insert("flow_start".into(), json!(first_ts as f64 / 1e9));
        add_vlan(&mut a, vlan);
        self.alerts += 1;
        out.push(a);
    }

    fn check_long(&mut self, f: &Flow, ts: TsNanos, out: &mut Vec<Alert>) {
        self.check_long_raw(
            ts,
            f.first_ts,
            f.vlan,
            (f.src_ip, f.src_port),
            (f.dest_ip, f.dest_port),
            f.proto,
            f.server_name.as_deref(),
            f.flow_id,
            out,
        );
    }
}

impl Analyzer for Volume {
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
        for (host, bytes) in self.top_talkers(crate::TOP_K) {
            out.push(crate::GaugeReading {
                metric: "kizuki_top_talker_bytes",
                labels: vec![host],
                value: bytes as f64,
            });
        }
    }

    fn name(&self) -> &'static str {
        "volume"
    }

    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        match ev {
            Event::Flow(f) => self.on_flow(f, out),
            Event::Burst(b) => self.check_long_raw(
                b.ts,
                b.flow_start,
                b.vlan,
                (b.src_ip, b.src_port),
                (b.dest_ip, b.dest_port),
                b.proto,
                b.server_name.as_deref(),
                b.flow_id,
                out,
            ),
            Event::Dns(_) | Event::Mail(_) => {}
        }
    }

    fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>) {
        if !self.vcfg.enabled {
            return;
        }
        // The same time twice is the end of the input (the sink's final tick): judge the open
        // buckets too.
        let b = if now <= self.last_tick {
            let latest = self
                .hosts
                .iter()
                .filter_map(|(_, h)| h.pending.keys().next_back().copied())
                .max()
                .unwrap_or(i64::MIN);
            (now.div_euclid(self.bucket_ns) + 1).max(latest.saturating_add(1))
        } else {
            now.saturating_sub(self.settle).div_euclid(self.bucket_ns)
        };
        self.last_tick = self.last_tick.max(now);
        if b <= self.rolled_upto {
            return;
        }
        self.rolled_upto = b;
        // Close every host's settled buckets (O(hosts) once per bucket).
        let keys: Vec<HostKey> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.bucket < b)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.roll(k, b, out);
        }
    }

    fn snapshot(&self) -> serde_json::Value {
        let top: Vec<serde_json::Value> = self
            .top_talkers(self.vcfg.top_k)
            .into_iter()
            .map(|(h, b)| json!({"host": h, "bytes_out": b}))
            .collect();
        json!({
            "alerts": self.alerts,
            "hosts": self.hosts.len(),
            "host_evictions": self.hosts.evictions(),
            "tracked_flows": self.reported.len(),
            "tracked_flow_evictions": self.reported.evictions(),
            "long_connections": self.long.len(),
            "top_talkers_last_bucket": top,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testutil::*;

    fn vol(bucket_s: f64, min_buckets: u32) -> Volume {
        Volume::new(
            VolumeConfig {
                bucket_s,
                settle_s: 0.0,
                min_buckets,
                min_bucket_bytes: 10_000,
                large_upload_bytes: 1_000_000,
                ..Default::default()
            },
            LongConnectionConfig::default(),
            Network::default_model(),
        )
        .unwrap()
    }

    fn out_flow(t: i64, src: &str, dst: &str, bytes: u64) -> Event {
        let mut f = flow(t, src, dst, 443, 1, 6);
        f.bytes_toserver = bytes;
        f.flow_id = t as u64 * 1000 + bytes % 997;
        Event::Flow(f)
    }

    #[test]
    fn top_talkers_is_the_sorted_prefix() {
        let mut v = vol(60.0, 5);
        let mut out = Vec::new();
        for i in 0..200u64 {
            // Many ties (7 distinct counts), so the cut falls inside a run of equal counts.
            let src = format!("10.0.{}.{}", i / 100, i % 100 + 1);
            v.on_event(
                &out_flow(5, &src, "203.0.113.1", (i % 7 + 1) * 1_000),
                &mut out,
            );
        }
        v.on_tick(ts(61), &mut out);
        let mut all: Vec<(String, u64)> = v
            .hosts
            .iter()
            .filter(|(_, h)| h.last_bucket_bytes > 0)
            .map(|(k, h)| (k.label(), h.last_bucket_bytes))
            .collect();
        assert_eq!(all.len(), 200);
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [0, 1, 5, 28, 29, 30, 100, 199, 200, 500] {
            let want: Vec<_> = all.iter().take(k).cloned().collect();
            assert_eq!(v.top_talkers(k), want, "k = {k}");
        }
    }

    #[test]
    fn spike_against_own_baseline() {
        let mut v = vol(60.0, 5);
        let mut out = Vec::new();
        // 10 minutes of ~5 kB/min from host A and ~200 kB/min from host B.
        for m in 0..10 {
            v.on_event(
                &out_flow(
                    m * 60 + 5,
                    "10.0.0.1",
                    "203.0.113.1",
                    5_000 + (m as u64 % 3) * 100,
                ),
                &mut out,
            );
            v.on_event(
                &out_flow(
                    m * 60 + 6,
                    "10.0.0.2",
                    "203.0.113.1",
                    200_000 + (m as u64 % 3) * 5_000,
                ),
                &mut out,
            );
            v.on_tick(ts(m * 60 + 60), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // A sends 150 kB in minute 10: a spike for A (B's normal is more, not a spike for B).
        v.on_event(&out_flow(605, "10.0.0.1", "203.0.113.1", 150_000), &mut out);
        v.on_event(&out_flow(606, "10.0.0.2", "203.0.113.1", 205_000), &mut out);
        v.on_tick(ts(660), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].detector, "volume");
        assert_eq!(out[0].src_ip, Some(ip("10.0.0.1")));
        assert_eq!(out[0].evidence["kind"], json!("spike"));
        assert_eq!(out[0].evidence["bytes_out"], json!(150_000));
        let top = v.top_talkers(1);
        assert_eq!(top[0].0, "10.0.0.2");
    }

    #[test]
    fn no_spike_before_history_and_inbound_counts_responder_upload() {
        let mut v = vol(60.0, 5);
        let mut out = Vec::new();
        v.on_event(&out_flow(5, "10.0.0.1", "203.0.113.1", 500_000), &mut out);
        v.on_tick(ts(61), &mut out);
        // Inbound flow: the internal responder's bytes_toclient are its upload.
        let mut f = flow(70, "203.0.113.1", "10.0.0.1", 22, 1, 6);
        f.bytes_toclient = 2_000_000;
        v.on_event(&Event::Flow(f), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["kind"], json!("large_upload"));
        assert_eq!(out[0].src_ip, Some(ip("10.0.0.1")));
        assert_eq!(out[0].dest_ip, Some(ip("203.0.113.1")));
        assert_eq!(out[0].dest_port, Some(50000));
    }

    /// A closed flow from `src` with `up` bytes out and `down` bytes back.
    fn two_way(t: i64, src: &str, up: u64, down: u64) -> Event {
        let mut f = flow(t, src, "203.0.113.9", 443, 1, 6);
        f.bytes_toserver = up;
        f.bytes_toclient = down;
        f.flow_id = t as u64;
        Event::Flow(f)
    }

    #[test]
    fn ratio_shift_when_a_downloader_turns_uploader_below_the_spike_threshold() {
        let mut v = Volume::new(
            VolumeConfig {
                bucket_s: 60.0,
                settle_s: 0.0,
                min_buckets: 5,
                ..Default::default()
            },
            LongConnectionConfig::default(),
            Network::default_model(),
        )
        .unwrap();
        let mut out = Vec::new();
        const MB: u64 = 1 << 20;
        // Ten minutes of a workstation: 1 MB up, 20 MB down a minute; a backup host that
        // always uploads.
        for m in 0..10 {
            v.on_event(&two_way(m * 60 + 5, "10.0.0.1", MB, 20 * MB), &mut out);
            v.on_event(&two_way(m * 60 + 6, "10.0.0.2", 30 * MB, MB), &mut out);
            v.on_tick(ts(m * 60 + 61), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // Both send 30 MB and get 5 MB back: below the 50 MB spike floor for both, a shift
        // only for the workstation.
        v.on_event(&two_way(605, "10.0.0.1", 30 * MB, 5 * MB), &mut out);
        v.on_event(&two_way(606, "10.0.0.2", 30 * MB, 5 * MB), &mut out);
        v.on_tick(ts(661), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a.detector, "volume");
        assert_eq!(a.src_ip, Some(ip("10.0.0.1")));
        assert_eq!(a.evidence["kind"], json!("ratio_shift"));
        assert_eq!(a.evidence["bytes_out"], json!(30 * MB));
        assert_eq!(a.evidence["bytes_in"], json!(5 * MB));
        assert_eq!(a.evidence["outbound_share"], json!(0.857));
        assert!(a.evidence["baseline_share"].as_f64().unwrap() < 0.06);
        // Too little out, or no history: nothing.
        let mut v = vol(60.0, 5);
        out.clear();
        v.on_event(&two_way(5, "10.0.0.3", 30 * MB, MB), &mut out);
        v.on_tick(ts(61), &mut out);
        assert!(out.iter().all(|a| a.evidence["kind"] != "ratio_shift"));
    }

    #[test]
    fn cumulative_updates_count_once() {
        let mut v = vol(3600.0, 5);
        let mut out = Vec::new();
        let mut f = flow(0, "10.0.0.1", "203.0.113.1", 443, 300, 6);
        f.reason = CloseReason::Update;
        f.bytes_toserver = 600_000;
        v.on_event(&Event::Flow(f.clone()), &mut out);
        f.last_ts = ts(600);
        f.bytes_toserver = 900_000;
        v.on_event(&Event::Flow(f.clone()), &mut out);
        assert!(out.is_empty());
        f.last_ts = ts(700);
        f.bytes_toserver = 1_200_000;
        f.reason = CloseReason::Closed;
        v.on_event(&Event::Flow(f.clone()), &mut out);
        assert_eq!(
            out.len(),
            1,
            "large upload once the cumulative total crosses"
        );
        let h = v
            .hosts
            .get(&HostKey::new(Default::default(), ip("10.0.0.1")))
            .unwrap();
        assert_eq!(h.bytes, 1_200_000, "deltas, not sums of cumulative totals");
        assert_eq!(v.reported.len(), 0);
    }

    #[test]
    fn long_connection_grades_update() {
        let mut v = vol(3600.0, 24);
        let mut out = Vec::new();
        let mut f = flow(0, "10.0.0.1", "203.0.113.1", 443, 1800, 6);
        f.reason = CloseReason::Update;
        v.on_event(&Event::Flow(f.clone()), &mut out);
        assert!(out.is_empty());
        v.on_event(&burst(3700, &f), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detector, "long_connection");
        assert_eq!(out[0].severity, Severity::Low);
        assert!(!out[0].update);
        f.last_ts = ts(3900);
        v.on_event(&Event::Flow(f.clone()), &mut out);
        assert_eq!(out.len(), 1, "same grade: no repeat");
        f.last_ts = ts(4 * 3600 + 10);
        v.on_event(&Event::Flow(f.clone()), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[1].update);
        assert_eq!(out[1].severity, Severity::Medium);
        // Internal-only long flows are not graded.
        let g = flow(0, "10.0.0.1", "10.0.0.2", 445, 50_000, 6);
        v.on_event(&Event::Flow(g), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn hosts_bounded() {
        let mut v = Volume::new(
            VolumeConfig {
                max_hosts: 10,
                max_tracked_flows: 10,
                ..Default::default()
            },
            LongConnectionConfig::default(),
            Network::default_model(),
        )
        .unwrap();
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let src = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            let mut f = flow(1, &src, "203.0.113.1", 443, 1, 6);
            f.reason = CloseReason::Update;
            f.flow_id = i as u64;
            v.on_event(&Event::Flow(f), &mut out);
        }
        assert_eq!(v.hosts.len(), 10);
        assert_eq!(v.reported.len(), 10);
        assert_eq!(v.hosts.evictions(), 990);
    }
}
