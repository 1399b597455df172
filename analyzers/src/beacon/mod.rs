//! `beacon` and `dns_sinkhole_periodic`: streaming, jitter-robust detection of periodic
//! callbacks (C2 beaconing) by IP pair, by name, and over DNS.
//!
//! Pipeline: events become *beats* (connection starts, bursts inside long flows, sinkholed
//! DNS lookups) on up to three keys; each key keeps a bounded, time-sorted ring of beats;
//! keys with new beats are re-scored on packet-time ticks (`period` fits a comb / two-period
//! model against Poisson and bursty null models, `score` adds RITA-style dispersion, size
//! and coverage views); a key alerts once, then updates the same alert at most once per
//! cooldown. See `docs/beacon.md` for the algorithm and every constant.
//!
//! Pure code: no I/O, no wall clock, no threads, no randomness.

mod alert;
mod cidr;
mod config;
mod key;
mod names;
pub(crate) mod period;
mod persist;
mod prevalence;
mod ring;
pub(crate) mod score;
mod state;
mod stats;
#[cfg(test)]
mod tests;

pub use alert::Candidate;
pub use cidr::{normalize_name, Cidr, CidrSet, NameSuffixes};
pub use config::BeaconConfig;
pub use key::KeyKind;
pub use score::ScoreParts;

use std::net::IpAddr;
use std::sync::Arc;

use crate::lru::Lru;
use crate::{ipproto, Alert, Analyzer, DnsTxn, Event, Flow, FlowBurst, TsNanos};
use key::{share, BeaconKey, KeyRef};
use names::ResolvedNames;
use prevalence::Prevalence;
use ring::{BeatKind, Insert};
use state::{KeyState, Scored};

/// A key is re-scored at most this often (ns of packet time).
const RESCORE_MIN_NS: i64 = 1_000_000_000;
/// ... and at most this often when its last fit was clearly not periodic (significance below
/// −min_significance).
const NONPERIODIC_RESCORE_NS: i64 = 30_000_000_000;
/// Housekeeping (idle keys, expired names, stale prevalence) every this many ns.
const SWEEP_NS: i64 = 60_000_000_000;
/// Beats from one source before it counts towards its destination's prevalence: repeated
/// contact, not a single visit (3: two gaps, the least that can repeat).
const PREVALENCE_MIN_BEATS: usize = 3;
/// A destination that other sources call too (2 ..< `prevalence_min_sources` in repeated
/// contact) is judged once no new source has joined for this long (ns of packet time):
/// fleet software starts over tens of minutes (boots, logins), and the first hosts of a
/// fleet must not alert before the rest show up. Alerts wait, they are not dropped.
const PREVALENCE_SETTLE_NS: i64 = 1_800_000_000_000;
/// Destinations are remembered this long after their last repeated contact (ns): fleet
/// software is a property of the network that outlives nights and weekends; forgetting it
/// with the keys (`idle_timeout_s`) made every morning a cold start.
const PREVALENCE_MEMORY_NS: i64 = 7 * 86_400_000_000_000;
/// TCP bursts whose first packet is at most this long (IPv4 / IPv6 IP length) carry no
/// payload: ACKs, FINs, TCP keep-alive probes. They are not callbacks.
const TCP_CONTROL_MAX_V4: u32 = 59;
const TCP_CONTROL_MAX_V6: u32 = 79;

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BeaconStats {
    /// Keys tracked now (all kinds).
    pub tracked_keys: u64,
    /// Keys pushed out by the `max_keys` cap (LRU).
    pub evicted_keys: u64,
    /// Keys dropped after `idle_timeout_s` without beats.
    pub expired_keys: u64,
    /// First alerts.
    pub alerts_raised: u64,
    /// Updates of alerts already raised.
    pub alerts_updated: u64,
    /// (client, address) → name mappings held.
    pub name_mappings: u64,
}

#[derive(Default)]
struct Scratch {
    times: Vec<f64>,
    gaps: Vec<f64>,
    sizes: Vec<f64>,
    tmp: Vec<f64>,
}

/// The beacon analyzer. Create with [`BeaconAnalyzer::new`], feed through [`Analyzer`].
pub struct BeaconAnalyzer {
    cfg: BeaconConfig,
    allow_src: CidrSet,
    allow_dest: CidrSet,
    allow_names: NameSuffixes,
    sinkholes: CidrSet,
    keys: Lru<BeaconKey, KeyState>,
    names: ResolvedNames,
    prevalence: Prevalence,
    queue: Vec<u32>,
    now: TsNanos,
    next_sweep: TsNanos,
    expired: u64,
    raised: u64,
    updated: u64,
    scratch: Scratch,
}

impl BeaconAnalyzer {
    pub fn new(cfg: BeaconConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(BeaconAnalyzer {
            allow_src: CidrSet::parse(&cfg.allow_src_cidrs)?,
            allow_dest: CidrSet::parse(&cfg.allow_dest_cidrs)?,
            allow_names: NameSuffixes::new(&cfg.allow_name_suffixes),
            sinkholes: CidrSet::parse(&cfg.sinkholes)?,
            keys: Lru::new(cfg.max_keys),
            names: ResolvedNames::new(cfg.name_map_max, cfg.name_ttl_min_s, cfg.name_ttl_max_s),
            prevalence: Prevalence::new(
                cfg.max_keys,
                cfg.prevalence_min_sources,
                cfg.prevalence_scale,
                cfg.prevalence_floor,
            ),
            queue: Vec::new(),
            now: TsNanos::MIN,
            next_sweep: TsNanos::MIN,
            expired: 0,
            raised: 0,
            updated: 0,
            scratch: Scratch::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &BeaconConfig {
        &self.cfg
    }

    pub fn stats(&self) -> BeaconStats {
        BeaconStats {
            tracked_keys: self.keys.len() as u64,
            evicted_keys: self.keys.evicted(),
            expired_keys: self.expired,
            alerts_raised: self.raised,
            alerts_updated: self.updated,
            name_mappings: self.names.len() as u64,
        }
    }

    /// The `k` scored keys with the highest score × freshness, best first.
    pub fn top_candidates(&self, k: usize) -> Vec<Candidate> {
        let mut all: Vec<(f64, u32)> = self
            .keys
            .indices()
            .into_iter()
            .filter_map(|i| {
                let (_, st) = self.keys.get(i)?;
                let r = st.result.as_ref()?;
                Some((
                    r.parts.total * alert::freshness(self.now, st.last_seen, r.period),
                    i,
                ))
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(k);
        all.into_iter()
            .filter_map(|(_, i)| {
                let (key, st) = self.keys.get(i)?;
                Some(alert::candidate(key, st, st.result.as_ref()?, self.now))
            })
            .collect()
    }

    /// Estimated bytes held by the analyzer (keys, rings, names, prevalence). See
    /// `docs/beacon.md` for the per-key bound.
    pub fn approx_memory_bytes(&self) -> usize {
        let per_key: usize = self
            .keys
            .indices()
            .into_iter()
            .filter_map(|i| self.keys.get(i))
            .map(|(k, st)| k.heap_bytes() + st.heap_bytes())
            .sum();
        self.keys.table_bytes()
            + per_key
            + self.names.approx_bytes()
            + self.prevalence.approx_bytes()
            + self.queue.capacity() * 4
    }

    // ---- events → beats ----------------------------------------------------------------

    fn ignored_dest(&self, dst: IpAddr, port: u16, proto: u8) -> bool {
        let local = match dst {
            IpAddr::V4(a) => {
                a.is_multicast()
                    || a.is_broadcast()
                    || a.is_unspecified()
                    || a.is_loopback()
                    || a.is_link_local()
            }
            IpAddr::V6(a) => {
                a.is_multicast()
                    || a.is_unspecified()
                    || a.is_loopback()
                    || (a.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        local
            || (matches!(proto, ipproto::TCP | ipproto::UDP | 132)
                && self.cfg.ignore_dest_ports.contains(&port))
    }

    fn on_flow(&mut self, f: &Flow) {
        self.conn_beat(
            f.src_ip,
            f.dest_ip,
            f.dest_port,
            f.proto,
            f.first_ts,
            f.bytes_toserver,
            BeatKind::Start,
            f.server_name.as_deref(),
            None,
        );
    }

    fn on_burst(&mut self, b: &FlowBurst) {
        if b.proto == ipproto::TCP {
            let max = if b.src_ip.is_ipv4() {
                TCP_CONTROL_MAX_V4
            } else {
                TCP_CONTROL_MAX_V6
            };
            if b.ip_len <= max {
                // Not a beat, but it ends the previous burst: keep the session shape exact.
                self.control_burst(b);
                return;
            }
        }
        self.conn_beat(
            b.src_ip,
            b.dest_ip,
            b.dest_port,
            b.proto,
            b.ts,
            u64::from(b.ip_len),
            BeatKind::Burst,
            b.server_name.as_deref(),
            Some(b),
        );
    }

    /// A payload-less burst (ACK, FIN, TCP keep-alive probe) on a flow whose keys exist: it
    /// closes the previous burst for the session-shape counts, adds no beat, touches no LRU.
    fn control_burst(&mut self, b: &FlowBurst) {
        let pair = KeyRef::Pair {
            src: b.src_ip,
            dst: b.dest_ip,
            port: b.dest_port,
            proto: b.proto,
        };
        let given = normal_name(b.server_name.as_deref());
        let looked = match given {
            Some(_) => None,
            None => self.names.lookup(b.src_ip, b.dest_ip, b.ts),
        };
        let name_key = given
            .as_deref()
            .or(looked.as_deref())
            .map(|name| KeyRef::Name {
                src: b.src_ip,
                name,
            });
        let bulk = self.cfg.session_bulk_bytes;
        for k in std::iter::once(pair).chain(name_key) {
            if let Some(idx) = self.keys.find(self.keys.hash(&k), |x| x.as_ref() == k) {
                if let Some((_, st)) = self.keys.get_mut(idx) {
                    st.shape
                        .burst(b.flow_id, b.ts, b.prev_ts, b.flow_bytes_toclient, bulk);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn conn_beat(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        proto: u8,
        ts: TsNanos,
        bytes: u64,
        kind: BeatKind,
        server_name: Option<&str>,
        burst: Option<&FlowBurst>,
    ) {
        if self.ignored_dest(dst, port, proto)
            || self.allow_src.contains(src)
            || self.allow_dest.contains(dst)
        {
            return;
        }
        // The name borrowed (given) or the mapping's own `Arc` (looked up); an `Arc` is made
        // only when a new key or a changed alias keeps it.
        let given = normal_name(server_name);
        let looked = match given {
            Some(_) => None,
            None => self.names.lookup(src, dst, ts),
        };
        let name = given.as_deref().or(looked.as_deref());
        if name.is_some_and(|n| self.allow_names.matches(n)) {
            return;
        }
        let mut shared = looked.clone();
        let pair = KeyRef::Pair {
            src,
            dst,
            port,
            proto,
        };
        let bulk = self.cfg.session_bulk_bytes;
        if let Some(idx) = self.insert_beat(pair, &mut shared, ts, bytes, kind) {
            if let Some((_, st)) = self.keys.get_mut(idx) {
                if let Some(n) = name {
                    if st.alias.as_deref() != Some(n) {
                        st.alias = Some(share(&mut shared, n));
                    }
                }
                if let Some(b) = burst {
                    st.shape
                        .burst(b.flow_id, b.ts, b.prev_ts, b.flow_bytes_toclient, bulk);
                }
            }
        }
        if let Some(name) = name {
            let key = KeyRef::Name { src, name };
            if let Some(idx) = self.insert_beat(key, &mut shared, ts, bytes, kind) {
                if let Some((_, st)) = self.keys.get_mut(idx) {
                    st.port = port;
                    st.proto = proto;
                    st.note_addr(dst);
                    if let Some(b) = burst {
                        st.shape
                            .burst(b.flow_id, b.ts, b.prev_ts, b.flow_bytes_toclient, bulk);
                    }
                }
            }
        }
    }

    fn on_dns(&mut self, d: &DnsTxn) {
        if self.allow_src.contains(d.client_ip) {
            return;
        }
        let qname = cidr::normalized(&d.qname);
        if qname.is_empty() || self.allow_names.matches(&qname) {
            return;
        }
        // One shared copy of the name, made only if something keeps it.
        let mut shared: Option<Arc<str>> = None;
        let nx = d.rcode == Some(3);
        let (mut local, mut sink) = (false, false);
        let mut addrs: smallvec::SmallVec<[(IpAddr, u32); 4]> = smallvec::SmallVec::new();
        for a in &d.answers {
            if a.rtype != 1 && a.rtype != 28 {
                continue;
            }
            let Some(ip) = a.addr else {
                continue;
            };
            if ip.is_loopback() || ip.is_unspecified() {
                local = true;
            } else if self.sinkholes.contains(ip) {
                sink = true;
            } else {
                addrs.push((ip, a.ttl));
            }
        }
        if !local && !sink {
            for (ip, ttl) in addrs {
                self.names
                    .learn(d.client_ip, ip, &qname, &mut shared, d.ts, ttl);
            }
        }
        if self.cfg.dns_sinkhole && (nx || local || sink) {
            let key = KeyRef::Dns {
                client: d.client_ip,
                qname: &qname,
            };
            if let Some(idx) = self.insert_beat(key, &mut shared, d.ts, 0, BeatKind::Start) {
                if let Some((_, st)) = self.keys.get_mut(idx) {
                    let slot = if nx {
                        0
                    } else if local {
                        1
                    } else {
                        2
                    };
                    st.answers[slot] = st.answers[slot].saturating_add(1);
                    if st.addrs.first() != Some(&d.server_ip) {
                        st.addrs.clear();
                        st.addrs.push(d.server_ip);
                    }
                }
            }
        }
    }

    /// Adds a beat to `key` (created, its name from `shared` when that holds it, or touched in
    /// the LRU). Returns the key's slot.
    fn insert_beat(
        &mut self,
        key: KeyRef<'_>,
        shared: &mut Option<Arc<str>>,
        ts: TsNanos,
        bytes: u64,
        kind: BeatKind,
    ) -> Option<u32> {
        let cap = self.cfg.ring_cap();
        let merge_ns = (self.cfg.merge_window_s * 1e9) as i64;
        let hash = self.keys.hash(&key);
        let (idx, _) = self.keys.entry_by(
            hash,
            |k| k.as_ref() == key,
            || (key.to_key(shared), KeyState::default()),
        );
        let (_, st) = self.keys.get_mut(idx)?;
        if st.ring.insert(ts, bytes, kind, merge_ns, cap) == Insert::Added {
            st.beats = st.beats.saturating_add(1);
            st.first_seen = st.first_seen.min(ts);
            st.last_seen = st.last_seen.max(ts);
            st.dirty = true;
            if !st.queued {
                st.queued = true;
                self.queue.push(idx);
            }
        }
        Some(idx)
    }

    // ---- ticks → scores → alerts -------------------------------------------------------

    fn rescore_queue(&mut self, now: TsNanos, out: &mut Vec<Alert>) {
        let mut queue = std::mem::take(&mut self.queue);
        // Name and DNS keys first, so a pair key knows whether its name key explains it: a
        // stable partition (name/DNS, pair, slot gone), each key's kind read once.
        let (mut pairs, mut gone) = (Vec::new(), Vec::new());
        queue.retain(|&i| match self.keys.get(i).map(|(k, _)| k.kind()) {
            Some(KeyKind::Pair) => {
                pairs.push(i);
                false
            }
            Some(_) => true,
            None => {
                gone.push(i);
                false
            }
        });
        queue.append(&mut pairs);
        queue.append(&mut gone);
        for idx in queue.drain(..) {
            self.rescore(idx, now, out);
        }
        // Keep the allocation: the keys re-queued meanwhile move into it (in order), where a
        // fresh queue regrew from nothing every tick.
        queue.append(&mut self.queue);
        self.queue = queue;
    }

    fn covered_by_name(&self, key: &BeaconKey, alias: Option<&Arc<str>>) -> bool {
        let (BeaconKey::Pair { src, .. }, Some(name)) = (key, alias) else {
            return false;
        };
        let nk = KeyRef::Name { src: *src, name };
        self.keys
            .find(self.keys.hash(&nk), |k| k.as_ref() == nk)
            .and_then(|i| self.keys.get(i))
            .and_then(|(_, s)| s.result.as_ref())
            .is_some_and(|r| r.periodic)
    }

    fn rescore(&mut self, idx: u32, now: TsNanos, out: &mut Vec<Alert>) {
        let Some((key, st)) = self.keys.get(idx) else {
            return;
        };
        if !st.dirty {
            if let Some((_, st)) = self.keys.get_mut(idx) {
                st.queued = false;
            }
            return;
        }
        // Keys the Poisson/bursty models explain far better wait longer between scorings:
        // busy non-periodic pairs are where the scoring cost would go.
        let wait = if st
            .result
            .as_ref()
            .is_some_and(|r| r.significance < -self.cfg.min_significance || r.held)
        {
            NONPERIODIC_RESCORE_NS
        } else {
            RESCORE_MIN_NS
        };
        if st.last_scored != TsNanos::MIN && now - st.last_scored < wait {
            self.queue.push(idx); // still queued: try next tick
            return;
        }
        if st.alerted
            && now.saturating_sub(st.last_alert) < (self.cfg.cooldown_s * 1e9) as i64
            && st.result.as_ref().is_some_and(|r| r.passes)
        {
            // Nothing can be emitted before the cooldown ends; the next beat after it
            // re-queues the key (it stays dirty).
            if let Some((_, st)) = self.keys.get_mut(idx) {
                st.queued = false;
            }
            return;
        }
        let key = key.clone();
        let cfg = &self.cfg;
        let Some((_, st)) = self.keys.get_mut(idx) else {
            return;
        };
        st.dirty = false;
        st.queued = false;
        st.last_scored = now;
        // Prevalence counts every source in repeated contact with the destination (at least
        // PREVALENCE_MIN_BEATS beats), periodic or not yet: the first host of a fleet to
        // look periodic is then already judged against the whole fleet, not alerted on
        // before the others caught up.
        if st.ring.len() >= PREVALENCE_MIN_BEATS {
            self.prevalence.observe(&key.dest_id(), key.src(), now);
        }
        if st.ring.len() < cfg.min_beats.min(cfg.ring_cap()) {
            return;
        }
        let sc = &mut self.scratch;
        st.ring.times_s(&mut sc.times);
        sc.gaps.clear();
        sc.gaps.extend(sc.times.windows(2).map(|w| w[1] - w[0]));
        let span =
            sc.times.last().copied().unwrap_or(0.0) - sc.times.first().copied().unwrap_or(0.0);
        if key.kind() == KeyKind::Dns {
            sc.sizes.clear();
        } else {
            st.ring.sizes(&mut sc.sizes);
        }
        let Some(fit) = period::fit(&sc.gaps, cfg.jitter_tolerance) else {
            st.result = None;
            return;
        };
        let mut parts = score::combine(
            &fit,
            &mut sc.sizes,
            cfg.jitter_tolerance,
            cfg.min_significance,
            &mut sc.tmp,
        );
        let raw = parts.total;
        let in_range = fit.period >= cfg.min_period_s
            && fit.period <= cfg.max_period_s
            && span >= cfg.min_span_periods * fit.period
            && st.ring.len() >= cfg.min_beats;
        let significant = fit.significance
            >= score::required_significance(cfg.min_significance, sc.gaps.len(), fit.period);
        let dest = key.dest_id();
        let pf = self.prevalence.factor(&dest);
        parts.prevalence_factor = pf;
        parts.total = raw * pf;
        // Bursts inside a session that mostly deliver bulk data or last seconds are content
        // or a person, not a timer calling home: never periodic, never an alert.
        let session = st.shape.verdict();
        let callbacks = session.is_none();
        // Other sources call this destination too and the rest of a fleet may still show
        // up: hold the alert until the destination's prevalence has settled.
        let n = self.prevalence.sources(&dest);
        let held = n >= 2
            && n < cfg.prevalence_min_sources
            && self
                .prevalence
                .stable_for(&dest, now)
                .is_some_and(|a| a < PREVALENCE_SETTLE_NS);
        let ready = in_range && significant && callbacks && parts.total >= cfg.score_threshold;
        let held = ready && held;
        let passes = ready && !held;
        let scored = Scored {
            period: fit.period,
            secondary: fit.secondary,
            jitter: fit.jitter,
            missed: fit.missed,
            significance: fit.significance,
            parts,
            periodic: in_range && significant && callbacks && raw >= cfg.score_threshold,
            passes,
            prevalence_sources: n as u32,
            session,
            held,
        };
        match &mut st.result {
            Some(b) => **b = scored,
            None => st.result = Some(Box::new(scored)),
        }
        if held {
            // Re-tested (every NONPERIODIC_RESCORE_NS) until the hold ends, new beats or not.
            st.dirty = true;
            st.queued = true;
            self.queue.push(idx);
            return;
        }
        if !passes {
            return;
        }
        // Only now (nothing above changes a name key's result): most keys never get here.
        let alias = st.alias.clone();
        if self.covered_by_name(&key, alias.as_ref()) {
            return;
        }
        let cfg = &self.cfg;
        let Some((_, st)) = self.keys.get_mut(idx) else {
            return;
        };
        let cooldown_ns = (cfg.cooldown_s * 1e9) as i64;
        let update = if !st.alerted {
            false
        } else if now.saturating_sub(st.last_alert) >= cooldown_ns && st.beats > st.beats_at_alert {
            true
        } else {
            return;
        };
        st.alerted = true;
        st.last_alert = now;
        st.beats_at_alert = st.beats;
        let r = st.result.as_ref().expect("just scored");
        out.push(alert::build(&key, st, r, now, update));
        if update {
            self.updated += 1;
        } else {
            self.raised += 1;
        }
    }

    fn sweep(&mut self, now: TsNanos) {
        let idle_ns = (self.cfg.idle_timeout_s * 1e9) as i64;
        for idx in self.keys.indices() {
            if self
                .keys
                .get(idx)
                .is_some_and(|(_, st)| now.saturating_sub(st.last_seen) > idle_ns)
            {
                self.keys.remove(idx);
                self.expired += 1;
            }
        }
        self.names.prune(now);
        self.prevalence
            .prune(now.saturating_sub(idle_ns.max(PREVALENCE_MEMORY_NS)));
    }
}

/// A server name (SNI / Host) normalized, `None` when absent or empty.
fn normal_name(name: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    name.map(cidr::normalized).filter(|n| !n.is_empty())
}

/// The report view of one candidate.
fn candidate_json(c: &Candidate) -> serde_json::Value {
    serde_json::json!({
        "detector": c.detector,
        "key": c.key,
        "period_s": (c.period_s * 1000.0).round() / 1000.0,
        "secondary_period_s": c.secondary_period_s,
        "jitter": (c.jitter * 1000.0).round() / 1000.0,
        "beats": c.beats,
        "missed": (c.missed_beats_ratio * 1000.0).round() / 1000.0,
        "score": {
            "total": (c.score.total * 1000.0).round() / 1000.0,
            "dispersion": c.score.dispersion,
            "period": c.score.period,
            "size": c.score.size,
            "coverage": c.score.coverage,
            "prevalence_factor": c.score.prevalence_factor,
        },
        "alerted": c.alerted,
        "session": c.session,
    })
}

impl Analyzer for BeaconAnalyzer {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn snapshot(&self) -> serde_json::Value {
        let st = self.stats();
        serde_json::json!({
            "tracked_keys": st.tracked_keys,
            "evicted_keys": st.evicted_keys,
            "alerts_raised": st.alerts_raised,
            "alerts_updated": st.alerts_updated,
            "candidates": self
                .top_candidates(self.cfg.top_k)
                .iter()
                .map(candidate_json)
                .collect::<Vec<_>>(),
        })
    }

    fn save_state(&self) -> serde_json::Value {
        self.save()
    }

    fn load_state(&mut self, state: &serde_json::Value) {
        self.load(state);
    }

    fn gauges(&self, out: &mut Vec<crate::GaugeReading>) {
        out.push(crate::GaugeReading {
            metric: "kizuki_beacon_candidates",
            labels: Vec::new(),
            value: self.stats().tracked_keys as f64,
        });
        for c in self.top_candidates(self.cfg.top_k.min(crate::TOP_K)) {
            out.push(crate::GaugeReading {
                metric: "kizuki_beacon_top_score",
                labels: vec![
                    c.src_ip.to_string(),
                    c.dest_ip.map(|d| d.to_string()).unwrap_or_default(),
                    c.name.clone().unwrap_or_default(),
                ],
                value: c.score.total,
            });
        }
    }

    fn on_event(&mut self, ev: &Event, _out: &mut Vec<Alert>) {
        if !self.cfg.enable {
            return;
        }
        match ev {
            Event::Flow(f) => self.on_flow(f),
            Event::Burst(b) => self.on_burst(b),
            Event::Dns(d) => self.on_dns(d),
            Event::Mail(_) => {}
        }
    }

    fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>) {
        if !self.cfg.enable {
            return;
        }
        self.now = self.now.max(now);
        self.rescore_queue(now, out);
        if self.next_sweep == TsNanos::MIN {
            self.next_sweep = now + SWEEP_NS;
        } else if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + SWEEP_NS;
        }
    }
}
