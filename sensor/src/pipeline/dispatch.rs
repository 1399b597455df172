//! The capture thread's half: decode enough to shard, batch, hand to workers, keep the
//! packet-time clock, and track the outer UDP flows of tunnels (their packets are sharded by
//! the inner hosts, so no single worker sees all of an outer flow).

use super::{Batch, Mode, SinkMsg, WorkItem, WorkerMsg};
use crate::capture::{CaptureStats, RawPacket};
use crate::config::{secs_to_ns, Config};
use crate::decode::frag::{FragStats, Reassembled, Reassembler};
use crate::decode::{decode, decode_transport, Decoded, DropReason, Packet, Transport};
use crate::flow::table::{FlowTable, PacketMeta};
use crate::output::metrics::Metrics;
use crate::proto::{http, tls};
use analyzers::{Event, TsNanos, Vlans, NANOS_PER_SEC};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::hash::{BuildHasher, Hash, Hasher};

/// Ticks come every second of packet time, and also after this many packets: an epoch's
/// records wait in the sink until every shard has reached its tick, so at 300 k packets/s a
/// one-second epoch held ~100 MB of records. Counting packets keeps replays deterministic
/// (the same packets give the same ticks, whatever the worker count).
const TICK_EVERY_PACKETS: u32 = 1 << 16;
use std::net::IpAddr;
use std::time::Duration;

/// Shard of a packet: a symmetric hash of (VLAN, IP pair), so both directions, fragments and
/// DNS transactions of a host pair meet on one worker.
pub fn shard_of(vlan: Vlans, a: IpAddr, b: IpAddr, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = foldhash::fast::FixedState::with_seed(0x6b69_7a75_6b69).build_hasher();
    hash_vlans_as_derived(vlan, &mut h);
    lo.hash(&mut h);
    hi.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

/// What `#[derive(Hash)]` on `Vlans` fed the hasher (`Vlans` now hashes as one word): the
/// shard of a host pair, and so every flow id a capture gets, stays what it was.
fn hash_vlans_as_derived(v: Vlans, h: &mut impl Hasher) {
    for id in [v.outer, v.inner] {
        match id {
            None => h.write_isize(0),
            Some(x) => {
                h.write_isize(1);
                h.write_u16(x);
            }
        }
    }
}

/// Counters kept locally and added to Prometheus once per tick (no shared-cache-line
/// traffic per packet).
#[derive(Default)]
struct LocalCounts {
    packets: u64,
    bytes: u64,
    non_ip: u64,
    decode: [u64; DropReason::ALL.len()],
    queue_drops: u64,
}

pub(super) struct Dispatcher {
    /// Worker shards; the dispatcher is event source number `shard_count` for the sink.
    shard_count: usize,
    dns_ports: super::ports::PortSet,
    /// SMTP ports whose TCP payload workers reassemble (empty when SMTP is off).
    smtp_ports: super::ports::PortSet,
    mode: Mode,
    senders: Vec<Sender<WorkerMsg>>,
    recycle: Receiver<Batch>,
    pending: Vec<Batch>,
    batch_size: usize,
    ev_tx: Sender<SinkMsg>,
    metrics: Metrics,
    tunnels: FlowTable,
    tunnel_out: Vec<analyzers::Flow>,
    /// IPv4/IPv6 reassembly, for every shard (see [`Dispatcher::packet`]).
    frags: Reassembler,
    published_frag: FragStats,
    now: Option<TsNanos>,
    first_ts: Option<TsNanos>,
    next_tick: TsNanos,
    /// Packets since the last tick (see [`TICK_EVERY_PACKETS`]).
    since_tick: u32,
    total_packets: u64,
    counts: LocalCounts,
    last_kernel: CaptureStats,
    idle_base: Option<TsNanos>,
}

impl Dispatcher {
    pub(super) fn new(
        cfg: &Config,
        mode: Mode,
        senders: Vec<Sender<WorkerMsg>>,
        recycle: Receiver<Batch>,
        ev_tx: Sender<SinkMsg>,
        metrics: Metrics,
    ) -> Self {
        let n = senders.len();
        let mut limits = super::flow_limits(cfg, 1);
        // Tunnels are few; a small share of the cap is plenty.
        limits.max_flows = (cfg.flow.max_flows / 64).max(1024);
        Self {
            shard_count: n,
            dns_ports: super::ports::PortSet::new(&cfg.dns.ports),
            smtp_ports: super::ports::PortSet::new(if cfg.smtp.enabled {
                &cfg.smtp.ports
            } else {
                &[]
            }),
            mode,
            pending: (0..n).map(|_| Batch::default()).collect(),
            senders,
            recycle,
            batch_size: cfg.pipeline.batch_size,
            ev_tx,
            metrics,
            // Ids ≡ 0 mod (n + 1) would collide with worker 0: use a separate stride class.
            tunnels: FlowTable::new(limits, n as u64, n as u64 + 1),
            tunnel_out: Vec::new(),
            frags: Reassembler::new(
                cfg.fragments.max_datagrams,
                cfg.fragments.max_bytes,
                secs_to_ns(cfg.fragments.timeout_s),
            ),
            published_frag: FragStats::default(),
            now: None,
            first_ts: None,
            next_tick: 0,
            since_tick: 0,
            total_packets: 0,
            counts: LocalCounts::default(),
            last_kernel: CaptureStats::default(),
            idle_base: None,
        }
    }

    pub(super) fn packet(&mut self, p: RawPacket<'_>) {
        self.total_packets += 1;
        self.counts.packets += 1;
        self.counts.bytes += u64::from(p.wire_len);
        self.idle_base = None;
        let now = match self.now {
            Some(n) if n >= p.ts => n,
            _ => {
                self.now = Some(p.ts);
                p.ts
            }
        };
        if self.first_ts.is_none() {
            self.first_ts = Some(p.ts);
            self.next_tick = p.ts + NANOS_PER_SEC;
        }
        let shards = self.senders.len();
        let mut decoded = decode(p.link, p.data);
        self.track_tunnels(p.ts, &decoded, 0);
        // Fragments are put back together here, before sharding: a whole datagram may be a
        // tunnel packet (ERSPAN or VXLAN mirror traffic fragmented on its way to the sensor)
        // whose inner hosts choose the shard, which no worker could tell from a fragment. A
        // datagram may hold a fragment in turn (both the inner and the outer packet
        // fragmented): one more round.
        let (whole, inner_whole);
        if let Decoded::Fragment(f) = decoded {
            let Some(r) = self.frags.add(p.ts, &f) else {
                return self.maybe_tick(now);
            };
            whole = r;
            decoded = self.decode_whole(p.ts, &whole);
        }
        if let Decoded::Fragment(f) = decoded {
            let Some(r) = self.frags.add(p.ts, &f) else {
                return self.maybe_tick(now);
            };
            inner_whole = r;
            decoded = self.decode_whole(p.ts, &inner_whole);
        }
        let (shard, packet, bytes) = match decoded {
            Decoded::Packet(pk) => (
                shard_of(pk.ctx.vlan, pk.src, pk.dst, shards),
                pk.detached(),
                self.payload_to_keep(&pk),
            ),
            // Fragments three layers deep: not reassembled.
            Decoded::Fragment(_) => {
                self.counts.decode[DropReason::TunnelDepth.index()] += 1;
                return self.maybe_tick(now);
            }
            Decoded::NonIp(_) => {
                self.counts.non_ip += 1;
                return self.maybe_tick(now);
            }
            Decoded::Drop(r) | Decoded::TunnelDrop(r, _) => {
                self.counts.decode[r.index()] += 1;
                return self.maybe_tick(now);
            }
        };
        let b = &mut self.pending[shard];
        let off = b.data.len() as u32;
        b.data.extend_from_slice(bytes);
        b.items.push(WorkItem {
            ts: p.ts,
            off,
            len: bytes.len() as u32,
            packet,
        });
        if b.items.len() >= self.batch_size {
            self.send(shard);
        }
        self.maybe_tick(now);
    }

    /// The payload bytes a worker will read: DNS messages, SMTP sessions (reassembled for the
    /// mail parser), and the first bytes of what looks like a TLS ClientHello or an HTTP
    /// request (server names). Everything else is counted from the headers alone, so it is
    /// not copied.
    fn payload_to_keep<'a>(&self, pk: &Packet<'a>) -> &'a [u8] {
        let dns = |s: u16, d: u16| self.dns_ports.either(s, d);
        match pk.transport {
            Transport::Udp(u) if dns(u.sport, u.dport) => u.payload,
            Transport::Tcp(t) if !t.payload.is_empty() => {
                if dns(t.sport, t.dport)
                    || self.smtp_ports.either(t.dport, t.sport)
                    || tls::looks_like_client_hello(t.payload)
                    || http::looks_like_http_request(t.payload)
                {
                    t.payload
                } else {
                    &[]
                }
            }
            _ => &[],
        }
    }

    /// Decodes a reassembled datagram's transport and tracks the tunnel layers found inside
    /// it (the layers around it were tracked with each of its fragments).
    fn decode_whole<'a>(&mut self, ts: TsNanos, r: &'a Reassembled) -> Decoded<'a> {
        let len = r.payload.len() as u32;
        let d = decode_transport(r.ctx, r.src, r.dst, r.proto, r.ip_len, &r.payload, len);
        self.track_tunnels(ts, &d, r.ctx.outer.iter().count());
        d
    }

    /// Counts the packet in the flows of the UDP tunnel layers around it, from the
    /// `skip`-th on.
    fn track_tunnels(&mut self, ts: TsNanos, decoded: &Decoded<'_>, skip: usize) {
        let outer = match decoded {
            Decoded::Packet(pk) => pk.ctx.outer,
            Decoded::Fragment(f) => f.ctx.outer,
            Decoded::NonIp(o) | Decoded::TunnelDrop(_, o) => *o,
            Decoded::Drop(_) => return,
        };
        for (depth, o) in outer.iter().enumerate().skip(skip) {
            let meta = PacketMeta {
                ts,
                src: o.src,
                dst: o.dst,
                sport: o.sport,
                dport: o.dport,
                proto: 17,
                vlan: o.vlan,
                tunnel_depth: depth as u8,
                ip_len: o.ip_len,
                payload_len: o.ip_len.saturating_sub(28),
                tcp: None,
            };
            self.tunnels.track(&meta, &mut self.tunnel_out);
        }
    }

    fn maybe_tick(&mut self, now: TsNanos) {
        self.since_tick += 1;
        if now >= self.next_tick || self.since_tick >= TICK_EVERY_PACKETS {
            self.tick(now);
        }
    }

    fn fresh_batch(&self) -> Batch {
        self.recycle.try_recv().unwrap_or_else(|_| Batch {
            data: Vec::with_capacity(self.batch_size * 64),
            items: Vec::with_capacity(self.batch_size),
        })
    }

    fn send(&mut self, shard: usize) {
        if self.pending[shard].items.is_empty() {
            return;
        }
        let fresh = self.fresh_batch();
        let batch = std::mem::replace(&mut self.pending[shard], fresh);
        if self.mode == Mode::Live {
            match self.senders[shard].try_send(WorkerMsg::Packets(batch)) {
                Ok(()) => {}
                Err(TrySendError::Full(WorkerMsg::Packets(mut b))) => {
                    // The one place packets are dropped: a worker that fell behind.
                    self.counts.queue_drops += b.items.len() as u64;
                    b.clear();
                    self.pending[shard] = b;
                }
                Err(_) => {}
            }
        } else {
            // Replay: wait for the worker (back-pressure), never drop.
            let _ = self.senders[shard].send(WorkerMsg::Packets(batch));
        }
    }

    /// Packet time reached `now`: hand over partial batches, let every worker expire state.
    fn tick(&mut self, now: TsNanos) {
        for s in 0..self.senders.len() {
            self.send(s);
            let msg = WorkerMsg::Tick(now);
            if self.mode == Mode::Live {
                let _ = self.senders[s].try_send(msg);
            } else {
                let _ = self.senders[s].send(msg);
            }
        }
        self.tunnels.expire(now, &mut self.tunnel_out);
        self.frags.expire(now);
        self.emit_tunnels();
        let _ = self.ev_tx.send(SinkMsg::Watermark {
            src: self.shard_count,
            t: now,
        });
        self.publish_counts();
        self.metrics.packet_time_seconds.set(now as f64 / 1e9);
        self.since_tick = 0;
        // A tick forced by the packet count keeps the one-second grid.
        if now >= self.next_tick {
            self.next_tick = now + NANOS_PER_SEC;
        }
    }

    fn emit_tunnels(&mut self) {
        if !self.tunnel_out.is_empty() {
            let ev = self.tunnel_out.drain(..).map(Event::Flow).collect();
            let _ = self.ev_tx.send(SinkMsg::Events {
                src: self.shard_count,
                events: ev,
            });
        }
    }

    fn publish_counts(&mut self) {
        let c = std::mem::take(&mut self.counts);
        let m = &self.metrics;
        m.packets.inc_by(c.packets);
        m.bytes.inc_by(c.bytes);
        m.non_ip.inc_by(c.non_ip);
        for r in DropReason::ALL {
            let n = c.decode[r.index()];
            if n > 0 {
                m.decode_errors.with_label_values(&[r.as_str()]).inc_by(n);
            }
        }
        let f = self.frags.stats;
        let pf = std::mem::replace(&mut self.published_frag, f);
        m.fragments_reassembled
            .inc_by(f.reassembled - pf.reassembled);
        for (label, now, before) in [
            ("frag_overlap", f.overlaps, pf.overlaps),
            ("frag_too_big", f.too_big, pf.too_big),
            ("frag_table_full", f.table_full, pf.table_full),
            ("frag_timeout", f.timeouts, pf.timeouts),
        ] {
            if now > before {
                m.decode_errors
                    .with_label_values(&[label])
                    .inc_by(now - before);
            }
        }
        if c.queue_drops > 0 {
            m.capture_drops
                .with_label_values(&["queue"])
                .inc_by(c.queue_drops);
        }
    }

    /// A quiet live link: packet time advances with the wall clock since the last packet.
    pub(super) fn idle(&mut self, quiet_for: Duration) {
        let Some(now) = self.now else {
            return;
        };
        let base = *self.idle_base.get_or_insert(now);
        let t = base + quiet_for.as_nanos() as i64;
        if t >= self.next_tick {
            self.now = Some(t);
            self.tick(t);
        }
    }

    pub(super) fn capture_stats(&mut self, s: CaptureStats) {
        let m = &self.metrics;
        let dk = s
            .kernel_dropped
            .saturating_sub(self.last_kernel.kernel_dropped);
        let di = s.if_dropped.saturating_sub(self.last_kernel.if_dropped);
        m.capture_drops.with_label_values(&["kernel"]).inc_by(dk);
        m.capture_drops.with_label_values(&["interface"]).inc_by(di);
        self.last_kernel = s;
    }

    pub(super) fn update_lag(&self) {
        if let (Some(now), Ok(wall)) = (
            self.now,
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH),
        ) {
            let lag = wall.as_nanos() as i64 - now;
            self.metrics.packet_lag_seconds.set(lag.max(0) as f64 / 1e9);
        }
    }

    /// End of input: everything still queued goes to the workers, which flush on close.
    pub(super) fn finish(mut self) -> (u64, Option<TsNanos>, Option<TsNanos>) {
        if let Some(now) = self.now {
            self.tick(now);
        }
        for s in 0..self.senders.len() {
            self.send(s);
        }
        self.senders.clear();
        self.tunnels.flush(&mut self.tunnel_out);
        self.emit_tunnels();
        let _ = self.ev_tx.send(SinkMsg::Done {
            src: self.shard_count,
        });
        self.publish_counts();
        (self.total_packets, self.first_ts, self.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Vlans` as it was declared, with the derived `Hash` shards were computed from.
    #[derive(Hash)]
    struct DerivedVlans {
        outer: Option<u16>,
        inner: Option<u16>,
    }

    #[test]
    fn shards_hash_vlans_as_the_derive_did() {
        for (outer, inner) in [
            (None, None),
            (Some(0), None),
            (Some(100), Some(200)),
            (Some(4095), Some(1)),
        ] {
            let hash = |f: &dyn Fn(&mut foldhash::fast::FoldHasher)| {
                let mut h = foldhash::fast::FixedState::with_seed(7).build_hasher();
                f(&mut h);
                h.finish()
            };
            let old = hash(&|h| DerivedVlans { outer, inner }.hash(h));
            let new = hash(&|h| hash_vlans_as_derived(Vlans { outer, inner }, h));
            assert_eq!(old, new, "{outer:?} {inner:?}");
        }
    }
}
