//! `[beacon]` configuration. Every field has a default chosen for an enterprise SPAN port;
//! `docs/beacon.md` explains each one.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BeaconConfig {
    /// Run the `beacon` analyzer at all. Default `true`: it is the headline detector.
    /// `enabled`, the spelling every other detector section uses, is accepted too.
    #[serde(alias = "enabled")]
    pub enable: bool,
    /// Also track periodic DNS lookups answered by a sinkhole (`dns_sinkhole_periodic`).
    /// Default `true`: J-CRAT's dormant-C2 sign, cheap (only sinkholed answers are tracked).
    pub dns_sinkhole: bool,
    /// Minimum beats (after merging) before a key can alert. Default `6`: five gaps is the
    /// fewest on which a period and its jitter can both be estimated; RITA needs only 4
    /// timestamps, which over-fires on short coincidences.
    pub min_beats: usize,
    /// Minimum observed span, in periods, before a key can alert. Default `3.0`: a pattern
    /// seen for less than three periods is not a behaviour yet.
    pub min_span_periods: f64,
    /// Most keys tracked at once (all kinds together); least recently active keys are
    /// evicted beyond it and counted. Default `100_000`: ≤ 100 MB worst case (see docs).
    pub max_keys: usize,
    /// Beats kept per key (newest win). Default `64`: enough for ±50 % jitter and 30 %
    /// missed beats to reach significance, 512 bytes per key. Clamped to 8..=1024.
    pub ring_size: usize,
    /// Total score (0..1) at which a key alerts. Default `0.7`: a clean beacon scores
    /// ≥ 0.85, the hardest supported one (±50 % jitter, 30 % missed) ≈ 0.72–0.8, Poisson
    /// and bursty traffic ≤ 0.6.
    pub score_threshold: f64,
    /// Minimum significance (nats: BIC of the best periodic model minus BIC of the best
    /// Poisson/bursty model) to alert at a 60 s period; `+ ln(60 s / P)` for other periods
    /// (floored at 3/4 of it), then tightened as `·(1 + 8/gaps)` for small samples.
    /// Default `8.0`: a Bayes factor ≈ 3000; no seeded Poisson or bursty stream ever passes
    /// (docs/beacon.md, calibration).
    pub min_significance: f64,
    /// Shortest period reported. Default `1.0` s: faster is a stream, not a beacon.
    pub min_period_s: f64,
    /// Longest period reported. Default `7200.0` s: beyond 2 h the ring (64 beats) would
    /// need days of history and benign daily/hourly jobs dominate.
    pub max_period_s: f64,
    /// Beats of one key closer than this merge into one (A+AAAA lookups, a callback that
    /// opens two connections, repeated flow records). Default `0.5` s, half the min period.
    pub merge_window_s: f64,
    /// Largest jitter the periodic models accept, as the uniform half-width relative to the
    /// period (0.5 = ±50 %). Default `0.5`: Cobalt Strike/Empire top out there; a looser
    /// model would start explaining Poisson traffic.
    pub jitter_tolerance: f64,
    /// Least time between two alerts (first alert, then updates) for one key. Default
    /// `900.0` s: one update per quarter hour shows the beacon is alive without flooding.
    pub cooldown_s: f64,
    /// Keys without a beat for this long are dropped. Default `21600.0` s (6 h): three max
    /// periods, so a 2 h beacon survives two missed beats.
    pub idle_timeout_s: f64,
    /// Sources never tracked (CIDRs or addresses), e.g. scanners, monitoring hosts.
    /// Default empty.
    pub allow_src_cidrs: Vec<String>,
    /// Destinations never tracked (CIDRs or addresses), e.g. internal monitoring targets.
    /// Default empty.
    pub allow_dest_cidrs: Vec<String>,
    /// Also track flows whose destination is inside `network.internal`. Default `false`:
    /// C2 calls out of the network, while internal periodic traffic (monitoring pings, AD,
    /// printers, backups) is plentiful and benign; the sensor adds `network.internal` to
    /// `allow_dest_cidrs` unless this is set. DNS-only keys are not affected.
    pub internal_destinations: bool,
    /// Names (SNI, Host, resolved name, DNS qname) never tracked, matched as suffixes on
    /// label boundaries. Default empty: site-specific (update services, telemetry).
    pub allow_name_suffixes: Vec<String>,
    /// Destination ports never tracked as flows. Default `[53, 67, 68, 123, 137, 138, 1900,
    /// 5353, 5355]`: DNS (scored from DNS transactions instead), DHCP renewals, NTP polls,
    /// NetBIOS, SSDP, mDNS and LLMNR are periodic by design and local.
    pub ignore_dest_ports: Vec<u16>,
    /// Extra sinkhole answers (CIDRs or addresses) besides 127.0.0.0/8, 0.0.0.0, ::1 and ::.
    /// Default empty.
    pub sinkholes: Vec<String>,
    /// A destination (IP:port/proto, name or qname) periodic from at least this many
    /// distinct sources gets its score scaled down. Default `5`.
    pub prevalence_min_sources: usize,
    /// In-session bursts in which the server sent at least this many IP bytes are bulk; a
    /// key most of whose bursts are bulk is streaming, not beaconing, and does not alert.
    /// Default `1500`: more than one full-size packet, where a check-in answer without
    /// tasking is a few hundred bytes. `0` turns the rule off (see docs: implants that pad
    /// every answer).
    pub session_bulk_bytes: u64,
    /// Scale at exactly `prevalence_min_sources` sources; it shrinks as √(min/n) beyond.
    /// Default `0.6`: a perfect beacon (1.0) then scores 0.6 < 0.7, so fleet-wide periodic
    /// software does not alert on periodicity alone.
    pub prevalence_scale: f64,
    /// Lowest prevalence scale. Default `0.3`.
    pub prevalence_floor: f64,
    /// Most (client, address) → name mappings learnt from DNS answers. Default `100_000`
    /// (≈ 10 MB).
    pub name_map_max: usize,
    /// A DNS mapping is kept at least this long, whatever its TTL. Default `300.0` s: clients
    /// keep using addresses past short TTLs.
    pub name_ttl_min_s: f64,
    /// ... and at most this long. Default `86400.0` s.
    pub name_ttl_max_s: f64,
    /// Cap of the top-K candidate score gauge the sensor exports. Default `20`.
    pub top_k: usize,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        Self {
            enable: true,
            dns_sinkhole: true,
            min_beats: 6,
            min_span_periods: 3.0,
            max_keys: 100_000,
            ring_size: 64,
            score_threshold: 0.7,
            min_significance: 8.0,
            min_period_s: 1.0,
            max_period_s: 7200.0,
            merge_window_s: 0.5,
            jitter_tolerance: 0.5,
            cooldown_s: 900.0,
            idle_timeout_s: 21600.0,
            allow_src_cidrs: Vec::new(),
            allow_dest_cidrs: Vec::new(),
            internal_destinations: false,
            allow_name_suffixes: Vec::new(),
            ignore_dest_ports: vec![53, 67, 68, 123, 137, 138, 1900, 5353, 5355],
            sinkholes: Vec::new(),
            prevalence_min_sources: 5,
            session_bulk_bytes: 1500,
            prevalence_scale: 0.6,
            prevalence_floor: 0.3,
            name_map_max: 100_000,
            name_ttl_min_s: 300.0,
            name_ttl_max_s: 86400.0,
            top_k: 20,
        }
    }
}

impl BeaconConfig {
    /// Checks ranges and parses the CIDR lists; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |v: f64, k: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("beacon.{k}: must be > 0"))
            }
        };
        pos(self.min_period_s, "min_period_s")?;
        pos(self.max_period_s, "max_period_s")?;
        pos(self.cooldown_s, "cooldown_s")?;
        pos(self.idle_timeout_s, "idle_timeout_s")?;
        pos(self.name_ttl_min_s, "name_ttl_min_s")?;
        pos(self.name_ttl_max_s, "name_ttl_max_s")?;
        pos(self.min_span_periods, "min_span_periods")?;
        if self.max_period_s <= self.min_period_s {
            return Err("beacon.max_period_s: must exceed min_period_s".into());
        }
        if !(0.0..self.min_period_s).contains(&self.merge_window_s) {
            return Err("beacon.merge_window_s: must be in 0..min_period_s".into());
        }
        if !(self.jitter_tolerance > 0.0 && self.jitter_tolerance <= 1.0) {
            return Err("beacon.jitter_tolerance: must be in (0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return Err("beacon.score_threshold: must be in 0..=1".into());
        }
        if !self.min_significance.is_finite() {
            return Err("beacon.min_significance: must be finite".into());
        }
        if self.min_beats < 4 {
            return Err("beacon.min_beats: must be ≥ 4".into());
        }
        if self.max_keys == 0 || self.max_keys > u32::MAX as usize / 2 {
            return Err("beacon.max_keys: must be in 1..2^31".into());
        }
        if self.name_map_max == 0 || self.name_map_max > u32::MAX as usize / 2 {
            return Err("beacon.name_map_max: must be in 1..2^31".into());
        }
        for (k, v) in [
            ("prevalence_scale", self.prevalence_scale),
            ("prevalence_floor", self.prevalence_floor),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("beacon.{k}: must be in 0..=1"));
            }
        }
        if self.prevalence_min_sources < 2 {
            return Err("beacon.prevalence_min_sources: must be ≥ 2".into());
        }
        for (k, list) in [
            ("allow_src_cidrs", &self.allow_src_cidrs),
            ("allow_dest_cidrs", &self.allow_dest_cidrs),
            ("sinkholes", &self.sinkholes),
        ] {
            super::cidr::CidrSet::parse(list).map_err(|e| format!("beacon.{k}: {e}"))?;
        }
        Ok(())
    }

    pub(crate) fn ring_cap(&self) -> usize {
        self.ring_size.clamp(8, 1024)
    }
}
