//! IPv4/IPv6 fragment reassembly with bounded memory.
//!
//! Bounds: at most `max_datagrams` datagrams and `max_bytes` buffered bytes per reassembler
//! (the pipeline divides the configured totals by the shard count); a datagram larger than
//! 65,535 payload bytes is dropped; a datagram not completed within the timeout (packet
//! time) is dropped. Overlapping fragments keep the first copy of each byte (the most common
//! OS policy) and are counted. Every drop is counted by reason.

use super::{Context, Fragment};
use analyzers::{TsNanos, Vlans};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

const MAX_DATAGRAM_PAYLOAD: u32 = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    vlan: Vlans,
    depth: u8,
}

struct Pending {
    first_ts: TsNanos,
    ctx: Context,
    header_len: u32,
    /// Payload length, known once the last fragment (MF=0) arrived.
    total: Option<u32>,
    data: Vec<u8>,
    /// Covered byte ranges, sorted and merged.
    covered: Vec<(u32, u32)>,
    fragments: u32,
}

/// A datagram put back together.
#[derive(Debug)]
pub struct Reassembled {
    pub ctx: Context,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// IP length of the whole datagram (unfragmentable header + payload).
    pub ip_len: u32,
    pub payload: Vec<u8>,
    pub fragments: u32,
}

/// Counted problems, read by the worker into metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragStats {
    pub reassembled: u64,
    pub overlaps: u64,
    pub too_big: u64,
    pub table_full: u64,
    pub timeouts: u64,
}

pub struct Reassembler {
    pending: HashMap<Key, Pending>,
    /// Insertion order for expiry and eviction: (first_ts, key). Entries whose datagram is
    /// gone (or was re-created later) are skipped when popped.
    order: VecDeque<(TsNanos, Key)>,
    bytes: usize,
    max_datagrams: usize,
    max_bytes: usize,
    timeout_ns: i64,
    pub stats: FragStats,
}

impl Reassembler {
    pub fn new(max_datagrams: usize, max_bytes: usize, timeout_ns: i64) -> Self {
        Self {
            pending: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_datagrams: max_datagrams.max(1),
            max_bytes: max_bytes.max(MAX_DATAGRAM_PAYLOAD as usize),
            timeout_ns,
            stats: FragStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds one fragment; returns the datagram when it is complete.
    pub fn add(&mut self, ts: TsNanos, f: &Fragment<'_>) -> Option<Reassembled> {
        self.expire(ts);
        let key = Key {
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
            vlan: f.ctx.vlan,
            depth: f.ctx.tunnel_depth,
        };
        let start = f.offset;
        let end = start.saturating_add(f.data_len);
        if end > MAX_DATAGRAM_PAYLOAD {
            self.stats.too_big += 1;
            self.remove(&key);
            return None;
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.max_datagrams
                || self.bytes + f.data_len as usize > self.max_bytes
            {
                if !self.evict_oldest() {
                    break;
                }
                self.stats.table_full += 1;
            }
            self.pending.insert(
                key,
                Pending {
                    first_ts: ts,
                    ctx: f.ctx,
                    header_len: f.header_len,
                    total: None,
                    data: Vec::new(),
                    covered: Vec::new(),
                    fragments: 0,
                },
            );
            self.order.push_back((ts, key));
        }
        let p = self.pending.get_mut(&key)?;
        p.fragments += 1;
        if !f.more {
            match p.total {
                Some(t) if t != end => {
                    // Two different "last" fragments: the datagram cannot be trusted.
                    self.stats.overlaps += 1;
                    self.remove(&key);
                    return None;
                }
                _ => p.total = Some(end),
            }
        }
        if f.offset == 0 {
            // IPv6: the first fragment's unfragmentable part defines the header length.
            p.header_len = f.header_len;
        }
        let grow = (end as usize).saturating_sub(p.data.len());
        if grow > 0 {
            p.data.resize(end as usize, 0);
            self.bytes += grow;
        }
        // Copy the bytes not yet covered (first copy wins); captured data may be shorter
        // than data_len (snaplen), the rest stays zero.
        let mut overlapped = false;
        let mut pos = start;
        for &(cs, ce) in &p.covered {
            if ce <= pos || cs >= end {
                continue;
            }
            overlapped = true;
            if cs > pos {
                copy_range(&mut p.data, f.data, start, pos, cs);
            }
            pos = pos.max(ce);
        }
        if pos < end {
            copy_range(&mut p.data, f.data, start, pos, end);
        }
        if overlapped {
            self.stats.overlaps += 1;
        }
        insert_range(&mut p.covered, start, end);
        let complete = matches!(p.total, Some(t) if p.covered.first() == Some(&(0, t)));
        if !complete {
            return None;
        }
        let p = self.pending.remove(&key)?;
        self.bytes = self.bytes.saturating_sub(p.data.len());
        self.stats.reassembled += 1;
        Some(Reassembled {
            ctx: p.ctx,
            src: key.src,
            dst: key.dst,
            proto: key.proto,
            ip_len: p.header_len + p.data.len() as u32,
            payload: p.data,
            fragments: p.fragments,
        })
    }

    /// Drops datagrams older than the timeout at packet time `now`.
    pub fn expire(&mut self, now: TsNanos) {
        while let Some(&(ts, key)) = self.order.front() {
            if now.saturating_sub(ts) <= self.timeout_ns {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&key).is_some_and(|p| p.first_ts == ts) {
                self.remove(&key);
                self.stats.timeouts += 1;
            }
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((ts, key)) = self.order.pop_front() {
            if self.pending.get(&key).is_some_and(|p| p.first_ts == ts) {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    fn remove(&mut self, key: &Key) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes = self.bytes.saturating_sub(p.data.len());
        }
    }
}

/// Copies datagram bytes [from, to) of a fragment starting at `frag_start`.
fn copy_range(dst: &mut [u8], src: &[u8], frag_start: u32, from: u32, to: u32) {
    let s = (from - frag_start) as usize;
    let e = ((to - frag_start) as usize).min(src.len());
    if s < e {
        if let Some(d) = dst.get_mut(from as usize..from as usize + (e - s)) {
            d.copy_from_slice(&src[s..e]);
        }
    }
}

fn insert_range(ranges: &mut Vec<(u32, u32)>, start: u32, end: u32) {
    if start >= end {
        return;
    }
    ranges.push((start, end));
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag<'a>(id: u32, offset: u32, more: bool, data: &'a [u8]) -> Fragment<'a> {
        Fragment {
            ctx: Context::default(),
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            proto: 17,
            id,
            offset,
            more,
            header_len: 20,
            data,
            data_len: data.len() as u32,
        }
    }

    #[test]
    fn out_of_order_reassembly() {
        let mut r = Reassembler::new(10, 1 << 20, 30_000_000_000);
        let a = [1u8; 16];
        let b = [2u8; 16];
        let c = [3u8; 5];
        assert!(r.add(0, &frag(7, 32, false, &c)).is_none());
        assert!(r.add(1, &frag(7, 0, true, &a)).is_none());
        let d = r.add(2, &frag(7, 16, true, &b)).expect("complete");
        assert_eq!(d.payload.len(), 37);
        assert_eq!(d.ip_len, 57);
        assert_eq!(&d.payload[..16], &a);
        assert_eq!(&d.payload[16..32], &b);
        assert_eq!(d.fragments, 3);
        assert!(r.is_empty());
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn overlap_first_wins_and_counts() {
        let mut r = Reassembler::new(10, 1 << 20, 30_000_000_000);
        assert!(r.add(0, &frag(1, 0, true, &[1; 16])).is_none());
        assert!(r.add(0, &frag(1, 8, true, &[9; 16])).is_none());
        let d = r.add(0, &frag(1, 24, false, &[3; 8])).unwrap();
        assert_eq!(&d.payload[..16], &[1; 16]);
        assert_eq!(&d.payload[16..24], &[9; 8]);
        assert_eq!(r.stats.overlaps, 1);
    }

    #[test]
    fn bounded_table_and_timeouts() {
        let mut r = Reassembler::new(2, 1 << 20, 1_000);
        for id in 0..10 {
            r.add(id as i64, &frag(id, 0, true, &[0; 8]));
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.stats.table_full, 8);
        r.expire(10_000);
        assert!(r.is_empty());
        assert_eq!(r.stats.timeouts, 2);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn oversize_dropped() {
        let mut r = Reassembler::new(10, 1 << 20, 1_000);
        assert!(r.add(0, &frag(1, 65_528, true, &[0; 16])).is_none());
        assert_eq!(r.stats.too_big, 1);
        assert!(r.is_empty());
    }
}
