//! Prevalence: how many distinct sources beacon (periodically, by the same key kind) to one
//! destination. Fleet-wide periodic software (NTP pools, update checks, telemetry, chat
//! heartbeats) is benign far more often than not; a destination many hosts beacon to gets
//! its score scaled down.

use std::collections::HashMap;
use std::net::IpAddr;

use super::key::DestId;
use crate::TsNanos;

struct Entry {
    sources: Vec<IpAddr>,
    /// When the latest new source was added.
    grown: TsNanos,
    last: TsNanos,
}

pub(crate) struct Prevalence {
    map: HashMap<DestId, Entry>,
    max_entries: usize,
    /// Sources kept per destination (beyond it the factor is at its floor anyway).
    max_sources: usize,
    min_sources: usize,
    scale: f64,
    floor: f64,
}

impl Prevalence {
    pub fn new(max_entries: usize, min_sources: usize, scale: f64, floor: f64) -> Self {
        // √(min/n) reaches the floor at n = min·(scale/floor)²; keep that many sources.
        let reach = (min_sources as f64 * (scale / floor.max(1e-3)).powi(2)).ceil() as usize;
        Prevalence {
            map: HashMap::new(),
            max_entries,
            max_sources: reach.clamp(min_sources, 4 * min_sources.max(1)),
            min_sources,
            scale,
            floor,
        }
    }

    /// Notes that `src` beacons to `dest`.
    pub fn observe(&mut self, dest: &DestId, src: IpAddr, now: TsNanos) {
        if let Some(e) = self.map.get_mut(dest) {
            e.last = e.last.max(now);
            if e.sources.len() < self.max_sources && !e.sources.contains(&src) {
                e.sources.push(src);
                e.grown = now;
            }
        } else if self.map.len() < self.max_entries {
            self.map.insert(
                dest.clone(),
                Entry {
                    sources: vec![src],
                    grown: now,
                    last: now,
                },
            );
        }
    }

    /// Distinct periodic sources seen for `dest`.
    pub fn sources(&self, dest: &DestId) -> usize {
        self.map.get(dest).map_or(0, |e| e.sources.len())
    }

    /// How long (ns) the set of sources in repeated contact with `dest` has not grown.
    pub fn stable_for(&self, dest: &DestId, now: TsNanos) -> Option<i64> {
        self.map.get(dest).map(|e| now.saturating_sub(e.grown))
    }

    /// 1.0 below `min_sources`; `scale·√(min/n)` (not below `floor`) from there.
    pub fn factor(&self, dest: &DestId) -> f64 {
        let n = self.sources(dest);
        if n < self.min_sources {
            1.0
        } else {
            (self.scale * (self.min_sources as f64 / n as f64).sqrt()).max(self.floor)
        }
    }

    /// Forgets destinations no source has been in repeated contact with since `before`.
    pub fn prune(&mut self, before: TsNanos) {
        self.map.retain(|_, e| e.last >= before);
    }

    pub fn approx_bytes(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<(DestId, Entry)>() + 1)
            + self
                .map
                .values()
                .map(|e| e.sources.capacity() * 17)
                .sum::<usize>()
    }
}
