//! Per-key streaming state: the beat ring plus what the last scoring and alerting decided.

use std::net::IpAddr;
use std::sync::Arc;

use super::ring::BeatRing;
use super::score::ScoreParts;
use crate::TsNanos;

/// Destination addresses remembered per name key (evidence of IP rotation).
pub(crate) const MAX_ADDRS: usize = 4;

/// In-session bursts measured before the session shape is judged.
pub(crate) const SHAPE_MIN_MEASURED: u16 = 4;
/// Measured bursts kept in the counts: at this many, all counts halve (a recent window).
pub(crate) const SHAPE_WINDOW: u16 = 64;
/// A burst lasting at least this long (first to last packet, ns) was a conversation of many
/// turns — keystrokes and echoes, paging output — not one request and its answer...
pub(crate) const LONG_BURST_NS: i64 = 1_000_000_000;
/// ... if it also kept the session busy for at least 1/LONG_BURST_DUTY of the time to the
/// next burst (a person is active much of the cycle; a check-in over a slow link that takes
/// a second, every minute, is not).
pub(crate) const LONG_BURST_DUTY: i64 = 10;

/// A key is interactive when at least 1/INTERACTIVE_SHARE of its measured bursts are long: a
/// timer's check-ins essentially never are, a terminal session's are most of the time, and
/// heavy-tailed think times make the share in a window swing (0.48–0.9 on a typing trace).
pub(crate) const INTERACTIVE_SHARE: u16 = 3;

/// Why a key's bursts do not look like callbacks, if they do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Session {
    /// Most bursts deliver bulk data from the server (streaming, feeds).
    Bulk,
    /// Most bursts last seconds (a human at a terminal).
    Interactive,
}

impl Session {
    pub fn as_str(self) -> &'static str {
        match self {
            Session::Bulk => "bulk",
            Session::Interactive => "interactive",
        }
    }
}

/// What the bursts inside one long flow carried: counts over the recent measured bursts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SessionShape {
    /// The last burst seen: its flow, start and the flow's bytes to the client before it.
    last_flow: u64,
    last_ts: TsNanos,
    last_toclient: u64,
    has_last: bool,
    measured: u16,
    bulk: u16,
    long: u16,
}

impl SessionShape {
    /// Notes a burst starting at `ts` on flow `flow_id`; `prev_ts` (the flow's packet before
    /// it) ends the previous burst, `toclient` are the flow's bytes to the client before it.
    /// The previous burst of the same flow is measured when the numbers are consistent; it is
    /// bulk when the server sent at least `bulk_bytes` in it (0: never).
    pub fn burst(
        &mut self,
        flow_id: u64,
        ts: TsNanos,
        prev_ts: TsNanos,
        toclient: u64,
        bulk_bytes: u64,
    ) {
        if self.has_last
            && self.last_flow == flow_id
            && prev_ts >= self.last_ts
            && prev_ts <= ts
            && toclient >= self.last_toclient
        {
            if self.measured >= SHAPE_WINDOW {
                self.measured /= 2;
                self.bulk /= 2;
                self.long /= 2;
            }
            self.measured += 1;
            self.bulk += u16::from(bulk_bytes > 0 && toclient - self.last_toclient >= bulk_bytes);
            let busy = prev_ts - self.last_ts;
            self.long += u16::from(
                busy >= LONG_BURST_NS && busy.saturating_mul(LONG_BURST_DUTY) >= ts - self.last_ts,
            );
        }
        self.last_flow = flow_id;
        self.last_ts = ts;
        self.last_toclient = toclient;
        self.has_last = true;
    }

    /// `Some` when most measured bursts were bulk, or at least a third long.
    pub fn verdict(&self) -> Option<Session> {
        if self.measured < SHAPE_MIN_MEASURED {
            None
        } else if 2 * self.bulk > self.measured {
            Some(Session::Bulk)
        } else if INTERACTIVE_SHARE * self.long >= self.measured {
            Some(Session::Interactive)
        } else {
            None
        }
    }
}

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
    /// The key's bursts look like streaming or a human session, not callbacks: no alert.
    pub session: Option<Session>,
    /// Would pass, but the destination's prevalence is not settled yet: alert held.
    pub held: bool,
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
    /// Name keys: recent destination addresses; DNS keys: the resolver. The first is held
    /// inline: most name keys only ever see one address, DNS keys one resolver.
    pub addrs: smallvec::SmallVec<[IpAddr; 1]>,
    /// DNS keys: answers seen — NXDOMAIN, loopback/unspecified, configured sinkhole.
    pub answers: [u16; 3],
    /// Bursts inside long flows: what they carried and how long they lasted.
    pub shape: SessionShape,
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
            addrs: smallvec::SmallVec::new(),
            answers: [0; 3],
            shape: SessionShape::default(),
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
            + if self.addrs.spilled() {
                self.addrs.capacity() * std::mem::size_of::<IpAddr>()
            } else {
                0
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Feeds `n` bursts 10 s apart on `flow`, each lasting `dur_ns` and bringing `down` bytes.
    fn feed(sh: &mut SessionShape, flow: u64, t0: i64, n: usize, dur_ns: i64, down: u64) -> i64 {
        let mut t = t0;
        let mut bytes = sh.last_toclient;
        let mut prev = t0 - S;
        for _ in 0..n {
            sh.burst(flow, t, prev, bytes, 1500);
            prev = t + dur_ns;
            bytes += down;
            t += 10 * S;
        }
        t
    }

    #[test]
    fn session_shape_verdicts() {
        let mut sh = SessionShape::default();
        feed(&mut sh, 1, 0, SHAPE_MIN_MEASURED as usize, 50_000_000, 5000);
        // The first burst only sets the mark: one short of the minimum measured.
        assert_eq!(sh.verdict(), None);
        let t = feed(&mut sh, 1, 100 * S, 1, 50_000_000, 5000);
        assert_eq!(sh.verdict(), Some(Session::Bulk));
        // Small, quick exchanges take over the recent window.
        feed(&mut sh, 1, t, 3 * SHAPE_WINDOW as usize, 50_000_000, 100);
        assert_eq!(sh.verdict(), None);
        let mut sh = SessionShape::default();
        feed(&mut sh, 2, 0, 10, 2 * S, 300);
        assert_eq!(sh.verdict(), Some(Session::Interactive));
        // 1.2 s check-ins (a slow link) every 60 s: long, but the session is mostly idle.
        let mut sh = SessionShape::default();
        let (mut t, mut prev) = (0, -S);
        for _ in 0..10 {
            sh.burst(3, t, prev, 0, 1500);
            prev = t + 1_200_000_000;
            t += 60 * S;
        }
        assert_eq!((sh.measured, sh.long), (9, 0));
        assert_eq!(sh.verdict(), None);
    }

    #[test]
    fn session_shape_ignores_other_flows_and_inconsistent_counters() {
        let mut sh = SessionShape::default();
        // Alternating flows: never the same flow twice in a row, nothing measured.
        for i in 0..20i64 {
            sh.burst(
                (i % 2) as u64,
                i * 10 * S,
                i * 10 * S - S,
                10_000 * i as u64,
                1500,
            );
        }
        assert_eq!(sh.measured, 0);
        // Counters going backwards or a previous packet before the last burst: skipped.
        sh.burst(9, 0, -S, 5000, 1500);
        sh.burst(9, 10 * S, 5 * S, 100, 1500);
        sh.burst(9, 20 * S, 5 * S, 200, 1500);
        assert_eq!(sh.measured, 0);
        sh.burst(9, 30 * S, 20 * S + S / 2, 300, 1500);
        assert_eq!((sh.measured, sh.bulk, sh.long), (1, 0, 0));
    }
}
