//! Deterministic merging of the workers' event streams in the sink.
//!
//! Each source (a worker shard, or the dispatcher for tunnel flows) sends its events and,
//! after every packet-time tick, a watermark. Events between two watermarks form an epoch.
//! The sink takes epoch k of every source together, orders it by event time, and only then
//! ticks the analyzers to the watermark. So analyzers see the same sequence on every run of
//! a replay, whatever the thread scheduling, and never see an event of a second the
//! analyzers were already ticked past.

use analyzers::{Event, TsNanos};
use std::collections::VecDeque;

#[derive(Default)]
struct Source {
    /// Batches since the last watermark, in arrival order.
    current: Vec<Vec<Event>>,
    /// Finished pieces: `Some(t)` ended by a watermark at `t`, `None` by a cut (final flush)
    /// or by the end of the source.
    ready: VecDeque<(Option<TsNanos>, Vec<Vec<Event>>)>,
    done: bool,
}

pub(super) struct EpochMerger {
    sources: Vec<Source>,
}

/// One merged epoch: the sources' batches as they arrived, an index that visits their events
/// in time order, then the watermark to tick to (`None`: no tick — a piece of the final flush,
/// or the end). Events are a few hundred bytes each: ordering an index instead of moving them
/// keeps the merge off the memory bus.
#[derive(Default)]
pub(super) struct Epoch {
    parts: Vec<Vec<Event>>,
    /// The source of each part.
    part_src: Vec<usize>,
    /// (part, index in part), in time order.
    order: Vec<(u32, u32)>,
    pub watermark: Option<TsNanos>,
}

impl Epoch {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// The batches themselves with their sources (to recycle their memory once the events
    /// were used).
    pub fn into_parts(self) -> impl Iterator<Item = (usize, Vec<Event>)> {
        self.part_src.into_iter().zip(self.parts)
    }

    /// The events in time order.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.order.iter().filter_map(|&(p, i)| {
            self.parts
                .get(p as usize)
                .and_then(|part| part.get(i as usize))
        })
    }
}

impl EpochMerger {
    pub fn new(sources: usize) -> Self {
        Self {
            sources: (0..sources.max(1)).map(|_| Source::default()).collect(),
        }
    }

    pub fn events(&mut self, src: usize, evs: Vec<Event>) {
        if let Some(s) = self.sources.get_mut(src) {
            if !evs.is_empty() {
                s.current.push(evs);
            }
        }
    }

    pub fn watermark(&mut self, src: usize, t: TsNanos) {
        if let Some(s) = self.sources.get_mut(src) {
            let evs = std::mem::take(&mut s.current);
            s.ready.push_back((Some(t), evs));
        }
    }

    /// Source `src` ends a piece of its final flush here (no tick).
    pub fn cut(&mut self, src: usize) {
        if let Some(s) = self.sources.get_mut(src) {
            let evs = std::mem::take(&mut s.current);
            s.ready.push_back((None, evs));
        }
    }

    /// The source will send nothing more.
    pub fn done(&mut self, src: usize) {
        if let Some(s) = self.sources.get_mut(src) {
            let evs = std::mem::take(&mut s.current);
            if !evs.is_empty() {
                s.ready.push_back((None, evs));
            }
            s.done = true;
        }
    }

    /// Marks every source finished (their channel closed).
    pub fn finish_all(&mut self) {
        for i in 0..self.sources.len() {
            if !self.sources[i].done {
                self.done(i);
            }
        }
    }

    /// The next epoch every source has completed, if any. Watermarked pieces go first, the
    /// earliest watermark of all; a source whose next piece is untimed (it is flushing) takes
    /// no part in them. Once no source has a watermark left, the next untimed piece of every
    /// source forms an epoch without a tick. The pairing depends only on each source's own
    /// sequence, so the result is the same on every run.
    pub fn next(&mut self) -> Option<Epoch> {
        if self.sources.iter().any(|s| !s.done && s.ready.is_empty()) {
            return None;
        }
        let fronts = || self.sources.iter().filter_map(|s| s.ready.front());
        // Every source finished and drained.
        fronts().next()?;
        let t = fronts().filter_map(|e| e.0).min();
        let mut parts = Vec::new();
        let mut part_src = Vec::new();
        for (src, s) in self.sources.iter_mut().enumerate() {
            if s.ready.front().is_some_and(|e| e.0 == t) {
                if let Some((_, evs)) = s.ready.pop_front() {
                    part_src.resize(part_src.len() + evs.len(), src);
                    parts.extend(evs);
                }
            }
        }
        let total = parts.iter().map(Vec::len).sum();
        // (time, part, position) packed into one u128 that orders the same way (the time's
        // sign bit flipped so it compares as unsigned): one integer compare per step instead
        // of a tuple's three. The keys are unique, so an unstable sort is deterministic.
        let mut keyed: Vec<u128> = Vec::with_capacity(total);
        for (p, part) in parts.iter().enumerate() {
            for (i, ev) in part.iter().enumerate() {
                keyed.push(order_key(ev.ts(), p as u32, i as u32));
            }
        }
        // Ties in time keep arrival order (source order, then batch order, then position),
        // so the sequence is the same on every run.
        keyed.sort_unstable();
        Some(Epoch {
            parts,
            part_src,
            order: keyed
                .into_iter()
                .map(|k| ((k >> 32) as u32, k as u32))
                .collect(),
            watermark: t,
        })
    }
}

/// A record's place in an epoch as one integer: ordered by time, then part, then position.
fn order_key(ts: TsNanos, part: u32, pos: u32) -> u128 {
    let t = (ts as u64) ^ (1 << 63);
    (u128::from(t) << 64) | (u128::from(part) << 32) | u128::from(pos)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use analyzers::{DnsTxn, Vlans};

    pub(in crate::pipeline) fn dns(ts: TsNanos) -> Event {
        Event::Dns(DnsTxn {
            ts,
            flow_id: 0,
            client_ip: "10.0.0.1".parse().unwrap(),
            client_port: 1,
            server_ip: "10.0.0.2".parse().unwrap(),
            server_port: 53,
            proto: 17,
            vlan: Vlans::default(),
            community_id: Default::default(),
            id: 0,
            qname: String::new(),
            qtype: 1,
            qclass: 1,
            opcode: 0,
            rcode: None,
            answers: vec![],
            authoritative: false,
            truncated: false,
            recursion_desired: false,
            recursion_available: false,
            rtt_ns: None,
            query_seen: true,
        })
    }

    #[test]
    fn order_keys_sort_as_the_tuples() {
        let mut tuples = Vec::new();
        for ts in [i64::MIN, -5, -1, 0, 1, 7, 1 << 40, i64::MAX] {
            for part in [0u32, 1, u32::MAX] {
                for pos in [0u32, 3, u32::MAX] {
                    tuples.push((ts, part, pos));
                }
            }
        }
        let mut keys: Vec<u128> = tuples.iter().map(|&(t, p, i)| order_key(t, p, i)).collect();
        tuples.sort_unstable();
        keys.sort_unstable();
        let back: Vec<(u32, u32)> = keys.iter().map(|&k| ((k >> 32) as u32, k as u32)).collect();
        let want: Vec<(u32, u32)> = tuples.iter().map(|&(_, p, i)| (p, i)).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn epochs_wait_for_every_source_and_sort_by_time() {
        let mut m = EpochMerger::new(2);
        m.events(0, vec![dns(5), dns(9)]);
        m.watermark(0, 10);
        assert!(m.next().is_none(), "source 1 has not reached 10 yet");
        m.events(1, vec![dns(7)]);
        m.watermark(1, 10);
        let e = m.next().unwrap();
        assert_eq!(e.watermark, Some(10));
        assert_eq!(e.iter().map(Event::ts).collect::<Vec<_>>(), vec![5, 7, 9]);
        assert!(m.next().is_none());
        m.events(0, vec![dns(11)]);
        m.done(0);
        m.done(1);
        let e = m.next().unwrap();
        assert_eq!(e.watermark, None);
        assert_eq!(e.len(), 1);
        assert!(m.next().is_none());
    }

    #[test]
    fn final_flush_pieces_pair_by_position_after_the_last_watermarks() {
        let mut m = EpochMerger::new(2);
        m.events(0, vec![dns(1)]);
        m.watermark(0, 10);
        // Source 0 starts flushing; source 1 still has its last watermark to send.
        m.events(0, vec![dns(8), dns(3)]);
        m.cut(0);
        m.events(0, vec![dns(9)]);
        m.cut(0);
        m.done(0);
        assert!(m.next().is_none(), "source 1 has sent nothing yet");
        m.events(1, vec![dns(2)]);
        m.watermark(1, 10);
        let e = m.next().unwrap();
        assert_eq!(e.watermark, Some(10));
        assert_eq!(e.iter().map(Event::ts).collect::<Vec<_>>(), vec![1, 2]);
        assert!(m.next().is_none(), "source 1 is neither flushing nor done");
        m.events(1, vec![dns(4)]);
        m.cut(1);
        let e = m.next().unwrap();
        assert_eq!(e.watermark, None, "flush pieces are not ticks");
        assert_eq!(e.iter().map(Event::ts).collect::<Vec<_>>(), vec![3, 4, 8]);
        assert!(m.next().is_none(), "source 1 may still send a piece");
        m.done(1);
        let e = m.next().unwrap();
        assert_eq!(e.iter().map(Event::ts).collect::<Vec<_>>(), vec![9]);
        assert!(m.next().is_none());
    }
}
