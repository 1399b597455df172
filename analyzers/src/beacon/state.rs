//! Per-key streaming state: the beat ring plus what the last scoring and alerting decided.

use std::net::IpAddr;
use std::sync::Arc;

use super::ring::BeatRing;
use super::score::ScoreParts;
use crate::TsNanos;

/// Destination addresses remembered per name key (evidence of IP rotation).
pub(crate) const MAX_ADDRS: usize = 4;

/// Result of the last scoring of a key.
#[derive(Clone, Debug)]
pub(crate) struct Scored {
    pub period: f64,
    pub secondary: Option<f64>,
    pub jitter: f64,
    pub missed: f64,
    pub significance: f64,
    pub parts: ScoreParts,
    /// Periodic enough to alert before prevalence scaling (a name key in this state covers
    /// its pair keys, and counts the source for prevalence).
    pub periodic: bool,
    /// Passes every alert condition (after prevalence).
    pub passes: bool,
    pub prevalence_sources: u32,
}

#[derive(Debug)]
pub(crate) struct KeyState {
    pub ring: BeatRing,
    pub first_seen: TsNanos,
    pub last_seen: TsNanos,
    /// Beats accepted since the key was created (merged duplicates not counted).
    pub beats: u32,
    /// New beats since the last scoring.
    pub dirty: bool,
    /// In the rescoring queue.
    pub queued: bool,
    pub alerted: bool,
    pub last_scored: TsNanos,
    pub last_alert: TsNanos,
    pub beats_at_alert: u32,
    pub result: Option<Box<Scored>>,
    /// Pair keys: the name (SNI/Host/resolved) last seen on the pair.
    pub alias: Option<Arc<str>>,
    /// Name keys: the last destination service.
    pub port: u16,
    pub proto: u8,
    /// Name keys: recent destination addresses; DNS keys: the resolver.
    pub addrs: Vec<IpAddr>,
    /// DNS keys: answers seen — NXDOMAIN, loopback/unspecified, configured sinkhole.
    pub answers: [u16; 3],
}

impl Default for KeyState {
    fn default() -> Self {
        KeyState {
            ring: BeatRing::default(),
            first_seen: TsNanos::MAX,
            last_seen: TsNanos::MIN,
            beats: 0,
            dirty: false,
            queued: false,
            alerted: false,
            last_scored: TsNanos::MIN,
            last_alert: TsNanos::MIN,
            beats_at_alert: 0,
            result: None,
            alias: None,
            port: 0,
            proto: 0,
            addrs: Vec::new(),
            answers: [0; 3],
        }
    }
}

impl KeyState {
    pub fn note_addr(&mut self, ip: IpAddr) {
        if let Some(pos) = self.addrs.iter().position(|a| *a == ip) {
            self.addrs.remove(pos);
        } else if self.addrs.len() >= MAX_ADDRS {
            self.addrs.remove(0);
        }
        self.addrs.push(ip);
    }

    /// Heap bytes owned by this state (ring, result, address list).
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes()
            + self
                .result
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Scored>())
            + self.addrs.capacity() * std::mem::size_of::<IpAddr>()
    }
}
