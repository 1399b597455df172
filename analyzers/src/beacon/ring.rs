//! Per-key bounded ring of beats, kept sorted by time so late (out-of-order) beats slot in
//! where they belong. A beat is 8 bytes: a millisecond offset from the ring's base time and
//! a size whose top bit tells connection starts from bursts inside a flow. The first
//! `INLINE_BEATS` beats live in the ring itself: most keys never get more (one-off
//! connections), and they then cost no allocation, no free on eviction and no second cache
//! miss per beat.

use smallvec::SmallVec;

use crate::TsNanos;

const NS_PER_MS: i64 = 1_000_000;
const BURST_BIT: u32 = 1 << 31;
/// Offsets are rebased before they reach this (about 24 days): no overflow, ever.
const REBASE_AT_MS: u32 = u32::MAX / 2;
/// Beats held without a heap buffer (the ring is no larger than with a `VecDeque`).
const INLINE_BEATS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BeatKind {
    /// A connection start (a flow's first packet) or a DNS query.
    Start,
    /// Activity resuming inside a long flow.
    Burst,
}

#[derive(Clone, Copy, Debug)]
struct Beat {
    off_ms: u32,
    size: u32,
}

impl Beat {
    fn kind(self) -> BeatKind {
        if self.size & BURST_BIT != 0 {
            BeatKind::Burst
        } else {
            BeatKind::Start
        }
    }
    fn bytes(self) -> u32 {
        self.size & !BURST_BIT
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// A new beat.
    Added,
    /// Within the merge window of a beat already held (same callback, or a repeated record).
    Merged,
    /// Older than everything in a full ring.
    Dropped,
}

#[derive(Debug, Default)]
pub(crate) struct BeatRing {
    base_ns: TsNanos,
    /// Oldest first.
    beats: SmallVec<[Beat; INLINE_BEATS]>,
}

impl BeatRing {
    pub fn len(&self) -> usize {
        self.beats.len()
    }

    pub fn heap_bytes(&self) -> usize {
        if self.beats.spilled() {
            self.beats.capacity() * std::mem::size_of::<Beat>()
        } else {
            0
        }
    }

    /// The newest `max` beats as (packet time ns, size with the burst bit), oldest first,
    /// for the state file.
    pub fn export(&self, max: usize) -> Vec<(TsNanos, u32)> {
        let skip = self.beats.len().saturating_sub(max);
        self.beats
            .iter()
            .skip(skip)
            .map(|b| (self.abs(b.off_ms), b.size))
            .collect()
    }

    /// Re-inserts a beat [`BeatRing::export`] wrote.
    pub fn import(&mut self, ts: TsNanos, size: u32, merge_ns: i64, cap: usize) -> Insert {
        let kind = Beat { off_ms: 0, size }.kind();
        self.insert(ts, u64::from(size & !BURST_BIT), kind, merge_ns, cap)
    }

    pub fn first_ns(&self) -> Option<TsNanos> {
        self.beats.first().map(|b| self.abs(b.off_ms))
    }

    fn abs(&self, off_ms: u32) -> TsNanos {
        self.base_ns + i64::from(off_ms) * NS_PER_MS
    }

    /// Inserts a beat keeping time order. Beats within `merge_ns` of a held beat merge into
    /// it (keeping the larger size). The oldest beat leaves when the ring exceeds `cap`.
    pub fn insert(
        &mut self,
        ts: TsNanos,
        bytes: u64,
        kind: BeatKind,
        merge_ns: i64,
        cap: usize,
    ) -> Insert {
        let size = (bytes.min(u64::from(!BURST_BIT)) as u32)
            | if kind == BeatKind::Burst {
                BURST_BIT
            } else {
                0
            };
        if self.beats.is_empty() {
            self.base_ns = ts;
            self.beats.push(Beat { off_ms: 0, size });
            return Insert::Added;
        }
        if ts < self.base_ns {
            if self.beats.len() >= cap && ts < self.first_ns().unwrap_or(ts) - merge_ns {
                return Insert::Dropped;
            }
            // Move the base back by whole milliseconds: offsets stay exact.
            let shift_ms = (self.base_ns - ts + NS_PER_MS - 1) / NS_PER_MS;
            let shift = u32::try_from(shift_ms).unwrap_or(u32::MAX);
            if self
                .beats
                .last()
                .map_or(0, |b| b.off_ms)
                .saturating_add(shift)
                >= REBASE_AT_MS
            {
                return Insert::Dropped; // older than ~24 days before the newest beat
            }
            for b in self.beats.iter_mut() {
                b.off_ms += shift;
            }
            self.base_ns -= i64::from(shift) * NS_PER_MS;
        }
        let mut off = (ts - self.base_ns) / NS_PER_MS;
        if off >= i64::from(REBASE_AT_MS) {
            // Rebase forward on the oldest beat.
            let front = self.beats.first().map_or(0, |b| b.off_ms);
            for b in self.beats.iter_mut() {
                b.off_ms -= front;
            }
            self.base_ns += i64::from(front) * NS_PER_MS;
            off = (ts - self.base_ns) / NS_PER_MS;
            if off >= i64::from(REBASE_AT_MS) {
                // A gap of weeks: start over from this beat.
                self.beats.clear();
                self.base_ns = ts;
                off = 0;
            }
        }
        let off = off as u32;
        let merge_ms = (merge_ns / NS_PER_MS).max(0) as u32;
        let pos = self.beats.partition_point(|b| b.off_ms < off);
        for nb in [pos.checked_sub(1), Some(pos)].into_iter().flatten() {
            if let Some(b) = self.beats.get_mut(nb) {
                if b.off_ms.abs_diff(off) <= merge_ms {
                    if (size & !BURST_BIT) > b.bytes() && b.kind() == kind {
                        b.size = size;
                    }
                    return Insert::Merged;
                }
            }
        }
        if self.beats.len() >= cap {
            if pos == 0 {
                return Insert::Dropped;
            }
            self.beats.remove(0);
            self.beats.insert(pos - 1, Beat { off_ms: off, size });
        } else {
            if self.beats.len() == self.beats.capacity() {
                // Grow by doubling but never past the cap.
                let want = (self.beats.len() * 2).max(4).min(cap);
                self.beats
                    .reserve_exact(want.saturating_sub(self.beats.len()));
            }
            self.beats.insert(pos, Beat { off_ms: off, size });
        }
        Insert::Added
    }

    /// Beat times in seconds relative to the ring's base (sub-millisecond precision lost,
    /// nothing else).
    pub fn times_s(&self, out: &mut Vec<f64>) {
        out.clear();
        out.extend(self.beats.iter().map(|b| f64::from(b.off_ms) / 1000.0));
    }

    /// Sizes of the beats of the more common kind (sizes of connection starts and of bursts
    /// are not comparable: a flow's bytes vs one packet's length).
    pub fn sizes(&self, out: &mut Vec<f64>) {
        out.clear();
        let bursts = self
            .beats
            .iter()
            .filter(|b| b.kind() == BeatKind::Burst)
            .count();
        let kind = if bursts * 2 > self.beats.len() {
            BeatKind::Burst
        } else {
            BeatKind::Start
        };
        out.extend(
            self.beats
                .iter()
                .filter(|b| b.kind() == kind)
                .map(|b| f64::from(b.bytes())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn sorted_merge_and_cap() {
        let mut r = BeatRing::default();
        let m = S / 2;
        assert_eq!(r.insert(100 * S, 10, BeatKind::Start, m, 4), Insert::Added);
        assert_eq!(r.insert(120 * S, 10, BeatKind::Start, m, 4), Insert::Added);
        // late beat before the base
        assert_eq!(
            r.insert(90 * S + 7, 10, BeatKind::Start, m, 4),
            Insert::Added
        );
        assert_eq!(r.insert(110 * S, 10, BeatKind::Burst, m, 4), Insert::Added);
        // repeated record of the same start
        assert_eq!(
            r.insert(110 * S + 1000, 99, BeatKind::Burst, m, 4),
            Insert::Merged
        );
        let mut t = Vec::new();
        r.times_s(&mut t);
        let rel: Vec<f64> = t.iter().map(|x| x - t[0]).collect();
        assert_eq!(rel, vec![0.0, 10.0, 20.0, 30.0]);
        assert_eq!(r.first_ns(), Some(90 * S)); // whole-ms base, the 7 ns are below precision
                                                // full: a new beat pushes out the oldest; an older-than-all beat is dropped
        assert_eq!(r.insert(130 * S, 10, BeatKind::Start, m, 4), Insert::Added);
        assert_eq!(r.len(), 4);
        assert_eq!(r.first_ns(), Some(100 * S));
        assert_eq!(r.insert(50 * S, 10, BeatKind::Start, m, 4), Insert::Dropped);
        assert!(r.heap_bytes() <= 4 * 8 + 64);
    }
}
