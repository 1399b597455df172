//! One shard's flow table: bidirectional records, Zeek-style states, idle timeouts on packet
//! time, a cap with counted LRU evictions, periodic records of long flows.
//!
//! Flows live in four insertion-ordered maps (TCP, UDP, UDP name service, other) moved to the
//! back on every packet, so the front of each is its least recently active flow: expiry and
//! eviction pop fronts instead of sweeping the table. One timeout per map keeps that true; the
//! name-service map exists because DNS flows time out sooner (Zeek's `dns_session_timeout`).

use super::community_id::community_id_v1;
use super::conn_state::{
    tcp_conn_state, tcp_history_letter, tcp_transition, udp_conn_state, EndpointState, History,
};
use super::key::{is_likely_server_port, FlowKey};
use crate::decode::tcpflags::{ACK, FIN, RST, SYN};
use analyzers::{CloseReason, ConnState, Flow, NameSource, TsNanos, Vlans};
use hashlink::linked_hash_map::RawEntryMut;
use hashlink::LinkedHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

type Map<V> = LinkedHashMap<FlowKey, V, foldhash::fast::RandomState>;

/// Timeouts and limits of a table, in packet-time nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    pub max_flows: usize,
    pub tcp_timeout: i64,
    pub udp_timeout: i64,
    /// UDP flows on a name-service port ([`NAME_SERVICE_PORTS`]).
    pub dns_timeout: i64,
    pub icmp_timeout: i64,
    pub other_timeout: i64,
    pub tcp_linger: i64,
    /// 0 = no periodic records.
    pub update_interval: i64,
    /// Activity after at least this much idle time is a new burst (0 = no bursts).
    pub burst_gap: i64,
}

/// What the table needs of a packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    pub ts: TsNanos,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub vlan: Vlans,
    pub tunnel_depth: u8,
    pub ip_len: u32,
    pub payload_len: u32,
    /// TCP flags, sequence and ack numbers.
    pub tcp: Option<(u8, u32, u32)>,
}

#[derive(Clone, Copy, Debug, Default)]
struct SeqTrack {
    init: bool,
    acked_init: bool,
    /// Next expected sequence number.
    next: u32,
    /// Highest sequence number the peer acknowledged for this direction.
    acked: u32,
}

/// Per-flow state (index 0 = originator, 1 = responder).
pub struct FlowEntry {
    pub flow_id: u64,
    /// Tunnel layers around the first packet (a flow may be seen both inside and outside a
    /// tunnel, e.g. Teredo; Zeek keys flows without it too).
    tunnel_depth: u8,
    /// True when the originator is the key's `a` side.
    orig_is_a: bool,
    pub first_ts: TsNanos,
    pub last_ts: TsNanos,
    pkts: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
    flags: [u8; 2],
    ep: [EndpointState; 2],
    seq: [SeqTrack; 2],
    missed: u64,
    history: History,
    next_update: TsNanos,
    /// Set once the TCP connection is closed or reset: emit at this packet time
    /// ([`NOT_CLOSING`] until then; a plain i64 keeps the entry at 192 bytes, see
    /// [`FLOW_ENTRY_BYTES`]).
    close_at: TsNanos,
    /// TLS SNI / HTTP Host, when found.
    pub name: Option<Box<str>>,
    pub name_source: Option<NameSource>,
    /// Originator payload packets inspected for a name so far (bounded).
    pub name_tries: u8,
    /// Per-flow application state, if any: one pointer whatever the protocol.
    pub app: Option<Box<AppState>>,
}

/// Per-flow stream state of the protocols that need one (boxed in [`FlowEntry::app`]).
pub enum AppState {
    /// DNS over TCP: length-prefixed message framing.
    Dns(crate::proto::dns::TcpDnsState),
    /// SMTP: reassembly, commands, the message being parsed.
    Smtp(crate::proto::smtp::SmtpSession),
}

/// `close_at` of a flow that is not closing.
const NOT_CLOSING: TsNanos = TsNanos::MIN;

/// Size of a [`FlowEntry`]. With its 48-byte key and the table's two links a node is then
/// 256 bytes, the top of an allocator size class (mimalloc's classes go 256, 320, ...): one
/// byte more costs 64 bytes per live flow. A test holds it.
pub const FLOW_ENTRY_BYTES: usize = 192;

impl FlowEntry {
    fn is_closing(&self) -> bool {
        self.close_at != NOT_CLOSING
    }

    /// Is this packet (travelling a→b when `forward`) from the originator?
    pub fn is_orig(&self, forward: bool) -> bool {
        forward == self.orig_is_a
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct FlowStats {
    pub created: u64,
    pub evicted: u64,
    pub timed_out: u64,
    pub closed: u64,
}

/// UDP ports whose flows take [`FlowLimits::dns_timeout`]: DNS, NetBIOS name service, mDNS,
/// LLMNR (the ports Zeek's DNS analyzer, and so its `dns_session_timeout`, covers).
pub const NAME_SERVICE_PORTS: [u16; 4] = [53, 137, 5353, 5355];

/// Which map a flow lives in (an index into [`FlowTable::maps`]).
const TCP: usize = 0;
const UDP: usize = 1;
const NAME_SERVICE: usize = 2;
const OTHER: usize = 3;

fn class_of(proto: u8, sport: u16, dport: u16) -> usize {
    match proto {
        6 => TCP,
        17 if NAME_SERVICE_PORTS.contains(&sport) || NAME_SERVICE_PORTS.contains(&dport) => {
            NAME_SERVICE
        }
        17 => UDP,
        _ => OTHER,
    }
}

pub struct FlowTable {
    /// Indexed by [`class_of`]: TCP, UDP, UDP name service, other.
    maps: [Map<FlowEntry>; 4],
    /// (emit time, key) of closed TCP flows, in time order.
    closing: VecDeque<(TsNanos, FlowKey)>,
    limits: FlowLimits,
    next_id: u64,
    id_stride: u64,
    pub stats: FlowStats,
    /// Most flows held since memory was last released (see `release_free_nodes`).
    high_water: usize,
}

/// Tables that never held this many flows keep their free nodes (not worth a rehash).
const RELEASE_MIN_PEAK: usize = 1 << 16;

fn new_map() -> Map<FlowEntry> {
    LinkedHashMap::with_hasher(foldhash::fast::RandomState::default())
}

impl FlowTable {
    /// `shard`/`shards` make flow ids unique across shards (id ≡ shard mod shards).
    pub fn new(limits: FlowLimits, shard: u64, shards: u64) -> Self {
        Self {
            maps: [new_map(), new_map(), new_map(), new_map()],
            closing: VecDeque::new(),
            limits,
            next_id: shard + 1,
            id_stride: shards.max(1),
            stats: FlowStats::default(),
            high_water: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.maps.iter().map(|m| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The idle timeout of a flow of this class and protocol.
    fn timeout_for(limits: &FlowLimits, class: usize, proto: u8) -> i64 {
        match (class, proto) {
            (TCP, _) => limits.tcp_timeout,
            (UDP, _) => limits.udp_timeout,
            (NAME_SERVICE, _) => limits.dns_timeout,
            (_, 1 | 58) => limits.icmp_timeout,
            _ => limits.other_timeout,
        }
    }

    /// The timeout a map's front is judged by: the "other" map mixes ICMP and the rest, so
    /// it uses the larger of the two.
    fn map_timeout(&self, class: usize) -> i64 {
        match class {
            OTHER => self.limits.icmp_timeout.max(self.limits.other_timeout),
            c => Self::timeout_for(&self.limits, c, 6),
        }
    }

    /// Accounts one packet. Records pushed out by this packet (evictions, a reused TCP
    /// tuple, periodic updates) go to `out`.
    pub fn track(&mut self, p: &PacketMeta, out: &mut Vec<Flow>) -> Tracked<'_> {
        let (key, forward) = FlowKey::new(p.src, p.sport, p.dst, p.dport, p.proto, p.vlan);
        // A new SYN on a closed connection's tuple starts a new connection (port reuse).
        if let Some((flags, _, _)) = p.tcp {
            if flags & (SYN | ACK) == SYN {
                let reuse = self.maps[TCP]
                    .get(&key)
                    .is_some_and(|e| e.is_closing() && e.is_orig(forward));
                if reuse {
                    if let Some(e) = self.maps[TCP].remove(&key) {
                        self.stats.closed += 1;
                        out.push(e.to_flow(&key, CloseReason::Closed));
                    }
                }
            }
        }
        // Make room only when the table is full and this is a new flow (rare): the common
        // path below hashes the key once.
        let class = class_of(p.proto, p.sport, p.dport);
        if self.len() >= self.limits.max_flows && !self.maps[class].contains_key(&key) {
            while self.len() >= self.limits.max_flows {
                if !self.evict_oldest(out) {
                    break;
                }
            }
        }
        let limits = self.limits;
        let timeout = Self::timeout_for(&limits, class, p.proto);
        let map = &mut self.maps[class];
        let (e, created) = match map.raw_entry_mut().from_key(&key) {
            RawEntryMut::Occupied(mut o) => {
                o.to_back();
                // Past its linger or its idle timeout, the flow is over even if no tick has
                // expired it yet (ticks come once a second, and only with packets): this
                // packet starts a new one, as Zeek's timers, which run before each packet,
                // would have it.
                let e = o.get();
                let over = if e.is_closing() && e.close_at <= p.ts {
                    Some(CloseReason::Closed)
                } else if p.ts.saturating_sub(e.last_ts) > timeout {
                    Some(CloseReason::Timeout)
                } else {
                    None
                };
                match over {
                    None => (o.into_mut(), false),
                    Some(reason) => {
                        let id = self.next_id;
                        self.next_id += self.id_stride;
                        self.stats.created += 1;
                        match reason {
                            CloseReason::Closed => self.stats.closed += 1,
                            _ => self.stats.timed_out += 1,
                        }
                        let old = o.replace_value(new_entry(p, forward, id, &limits));
                        out.push(old.to_flow(&key, reason));
                        (o.into_mut(), true)
                    }
                }
            }
            RawEntryMut::Vacant(v) => {
                let id = self.next_id;
                self.next_id += self.id_stride;
                self.stats.created += 1;
                (v.insert(key, new_entry(p, forward, id, &limits)).1, true)
            }
        };
        let orig = e.is_orig(forward);
        let burst =
            !created && limits.burst_gap > 0 && p.ts.saturating_sub(e.last_ts) >= limits.burst_gap;
        let before = BurstContext {
            prev_ts: e.last_ts,
            bytes_toserver: e.bytes[0],
            bytes_toclient: e.bytes[1],
        };
        e.account(p, orig, limits.tcp_linger, &key, &mut self.closing);
        if limits.update_interval > 0 && p.ts >= e.next_update {
            out.push(e.to_flow(&key, CloseReason::Update));
            e.next_update = p.ts + limits.update_interval;
        }
        Tracked {
            entry: e,
            orig,
            burst,
            before,
        }
    }

    /// Which map's front (its least recently active flow) is the oldest of them.
    fn oldest_map(&self) -> Option<usize> {
        self.maps
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.front().map(|(_, e)| (e.last_ts, i)))
            .min()
            .map(|(_, i)| i)
    }

    fn evict_oldest(&mut self, out: &mut Vec<Flow>) -> bool {
        let Some(i) = self.oldest_map() else {
            return false;
        };
        if let Some((k, e)) = self.maps[i].pop_front() {
            self.stats.evicted += 1;
            out.push(e.to_flow(&k, CloseReason::Evicted));
            return true;
        }
        false
    }

    /// Emits flows idle past their timeout, and closed TCP flows past their linger.
    pub fn expire(&mut self, now: TsNanos, out: &mut Vec<Flow>) {
        while let Some(&(at, key)) = self.closing.front() {
            if at > now {
                break;
            }
            self.closing.pop_front();
            if self.maps[TCP]
                .get(&key)
                .is_some_and(|e| e.is_closing() && e.close_at == at)
            {
                if let Some(e) = self.maps[TCP].remove(&key) {
                    self.stats.closed += 1;
                    out.push(e.to_flow(&key, CloseReason::Closed));
                }
            }
        }
        for class in [TCP, UDP, NAME_SERVICE, OTHER] {
            let timeout = self.map_timeout(class);
            let map = &mut self.maps[class];
            let mut n = 0;
            while map
                .front()
                .is_some_and(|(_, e)| now.saturating_sub(e.last_ts) > timeout)
            {
                if let Some((k, e)) = map.pop_front() {
                    n += 1;
                    out.push(e.to_flow(&k, CloseReason::Timeout));
                }
            }
            self.stats.timed_out += n;
        }
        let len = self.len();
        if len > self.high_water {
            self.high_water = len;
        } else if self.high_water >= RELEASE_MIN_PEAK && len < self.high_water / 4 {
            self.release_free_nodes();
        }
    }

    /// Emits every flow (end of replay, shutdown).
    pub fn flush(&mut self, out: &mut Vec<Flow>) {
        while self.flush_some(out, usize::MAX) > 0 {}
    }

    /// Emits up to `max` flows; returns how many. Flushing a large table in chunks keeps
    /// the records in flight (and so peak memory) bounded.
    pub fn flush_some(&mut self, out: &mut Vec<Flow>, max: usize) -> usize {
        // Least recently active first across the maps, so the analyzers get a
        // shard's open flows in time order (TCP then UDP put a replay's DNS flows last).
        let mut n = 0;
        while n < max {
            let Some(i) = self.oldest_map() else {
                break;
            };
            let Some((k, e)) = self.maps[i].pop_front() else {
                break;
            };
            n += 1;
            let reason = if e.is_closing() {
                CloseReason::Closed
            } else {
                CloseReason::Shutdown
            };
            out.push(e.to_flow(&k, reason));
        }
        if self.is_empty() {
            self.closing.clear();
        }
        self.release_free_nodes();
        n
    }

    /// hashlink keeps removed nodes on a free list for reuse and never shrinks its index on
    /// its own: after a flush, or when the table has shrunk to a quarter of its peak (a flood
    /// timed out), hand that memory back. Shrinking rehashes only when the index halves, so
    /// calling this per flush chunk costs O(n) over the whole flush.
    fn release_free_nodes(&mut self) {
        for map in &mut self.maps {
            map.shrink_to_fit();
        }
        self.high_water = self.len();
    }
}

/// What [`FlowTable::track`] found for a packet.
/// A flow's state just before a packet: when its previous packet was seen and its IP byte
/// counters. For a burst, the difference to the previous burst's context is what that burst
/// carried and how long it lasted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BurstContext {
    pub prev_ts: TsNanos,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
}

pub struct Tracked<'a> {
    pub entry: &'a mut FlowEntry,
    /// The packet came from the originator.
    pub orig: bool,
    /// The packet resumed activity after at least the burst gap.
    pub burst: bool,
    /// The flow as it was just before this packet (for burst events).
    pub before: BurstContext,
}

fn new_entry(p: &PacketMeta, forward: bool, id: u64, limits: &FlowLimits) -> FlowEntry {
    // Originator: the sender of the first packet, unless the ports say the first packet
    // came from the server (Zeek's likely_server_ports heuristic).
    let flip = match p.tcp {
        Some((flags, _, _)) => {
            let pure_syn = flags & (SYN | ACK) == SYN;
            !pure_syn
                && is_likely_server_port(6, p.sport)
                && (!is_likely_server_port(6, p.dport) || (flags & SYN == 0 && p.sport > p.dport))
        }
        None if p.proto == 17 => {
            is_likely_server_port(17, p.sport) && !is_likely_server_port(17, p.dport)
        }
        // ICMP: the first sender is the originator (Zeek does not flip ICMP).
        None => false,
    };
    let mut history = History::default();
    if flip {
        history.flipped();
    }
    FlowEntry {
        flow_id: id,
        tunnel_depth: p.tunnel_depth,
        orig_is_a: forward != flip,
        first_ts: p.ts,
        last_ts: p.ts,
        pkts: [0; 2],
        bytes: [0; 2],
        payload: [0; 2],
        flags: [0; 2],
        ep: [EndpointState::Inactive; 2],
        seq: [SeqTrack::default(); 2],
        missed: 0,
        history,
        next_update: p.ts + limits.update_interval,
        close_at: NOT_CLOSING,
        name: None,
        name_source: None,
        name_tries: 0,
        app: None,
    }
}

/// Serial-number comparison (RFC 1982) for TCP sequence numbers.
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// A forward jump larger than this is a new sequence space (garbage or a reused port), not
/// lost data.
const MAX_GAP: u32 = 1 << 24;

impl FlowEntry {
    fn account(
        &mut self,
        p: &PacketMeta,
        orig: bool,
        linger: i64,
        key: &FlowKey,
        closing: &mut VecDeque<(TsNanos, FlowKey)>,
    ) {
        let d = usize::from(!orig);
        if p.ts > self.last_ts {
            self.last_ts = p.ts;
        }
        self.pkts[d] += 1;
        self.bytes[d] += u64::from(p.ip_len);
        let Some((flags, seq, ack)) = p.tcp else {
            self.payload[d] += u64::from(p.payload_len);
            if p.proto == 17 && p.payload_len > 0 {
                self.history.add(b'D', orig);
            }
            return;
        };
        self.flags[d] |= flags;
        let (me, peer) = if orig {
            let [a, b] = &mut self.ep;
            (a, b)
        } else {
            let [a, b] = &mut self.ep;
            (b, a)
        };
        // A FIN while the peer has sent nothing yet closes the connection as far as it will
        // go (Zeek's half-finished close: "close complete" with an inactive peer).
        let half_finished = flags & FIN != 0
            && *peer == EndpointState::Inactive
            && !matches!(*me, EndpointState::Closed);
        tcp_transition(me, peer, flags, p.payload_len);
        if let Some(l) = tcp_history_letter(flags, p.payload_len) {
            self.history.add(l, orig);
        }
        // Payload accounting from sequence numbers: retransmissions are not counted twice,
        // forward jumps are data the sensor missed.
        let st = &mut self.seq[d];
        let start = if flags & SYN != 0 {
            seq.wrapping_add(1)
        } else {
            seq
        };
        if !st.init {
            st.init = true;
            st.next = start;
        }
        if p.payload_len > 0 {
            let end = start.wrapping_add(p.payload_len);
            if !seq_lt(st.next, end) {
                self.history.retransmission(orig);
            } else {
                let from = if seq_lt(st.next, start) {
                    let gap = start.wrapping_sub(st.next);
                    if gap < MAX_GAP {
                        self.missed += u64::from(gap);
                    }
                    start
                } else {
                    st.next
                };
                self.payload[d] += u64::from(end.wrapping_sub(from));
                st.next = end;
            }
        } else if flags & SYN != 0 && seq_lt(st.next, start) {
            st.next = start;
        }
        // The ACK covers the other direction's data: remember the highest, so data that was
        // acknowledged but never seen counts as capture loss when the flow ends (Zeek's
        // capture-loss idea; judged at the end, so SPAN reordering of an ACK ahead of its
        // data is not loss).
        if flags & ACK != 0 && flags & RST == 0 {
            let o = &mut self.seq[1 - d];
            if !o.acked_init || seq_lt(o.acked, ack) {
                o.acked = ack;
                o.acked_init = true;
            }
        }
        let closed = |s: EndpointState| matches!(s, EndpointState::Closed | EndpointState::Reset);
        if !self.is_closing()
            && (flags & RST != 0 || half_finished || (closed(self.ep[0]) && closed(self.ep[1])))
            && flags & (RST | FIN) != 0
        {
            let at = p.ts + linger;
            self.close_at = at;
            closing.push_back((at, *key));
        }
    }

    /// Bytes acknowledged by a peer but never seen (a gap of 1 is a FIN's sequence number).
    fn acked_unseen(&self) -> u64 {
        self.seq
            .iter()
            .filter(|t| t.init && t.acked_init && seq_lt(t.next, t.acked))
            .map(|t| t.acked.wrapping_sub(t.next))
            .filter(|&gap| gap > 1 && gap < MAX_GAP)
            .map(u64::from)
            .sum()
    }

    fn conn_state(&self, proto: u8) -> ConnState {
        match proto {
            6 => tcp_conn_state(
                self.ep[0],
                self.ep[1],
                self.payload[0],
                self.payload[1],
                self.history.as_str(),
            ),
            17 => udp_conn_state(self.pkts[0] > 0, self.pkts[1] > 0),
            _ => ConnState::OTH,
        }
    }

    /// The record of this flow as it stands.
    pub fn to_flow(&self, key: &FlowKey, reason: CloseReason) -> Flow {
        let (src_ip, src_port, dest_ip, dest_port) = if self.orig_is_a {
            (key.a_ip, key.a_port, key.b_ip, key.b_port)
        } else {
            (key.b_ip, key.b_port, key.a_ip, key.a_port)
        };
        Flow {
            flow_id: self.flow_id,
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            proto: key.proto,
            vlan: key.vlan,
            tunnel_depth: self.tunnel_depth,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            pkts_toserver: self.pkts[0],
            pkts_toclient: self.pkts[1],
            bytes_toserver: self.bytes[0],
            bytes_toclient: self.bytes[1],
            payload_toserver: self.payload[0],
            payload_toclient: self.payload[1],
            tcp_flags_ts: self.flags[0],
            tcp_flags_tc: self.flags[1],
            history: analyzers::HistoryText::from_ascii(self.history.letters()).unwrap_or_default(),
            conn_state: self.conn_state(key.proto),
            reason,
            server_name: self.name.as_deref().map(str::to_string),
            server_name_source: self.name_source,
            community_id: community_id_v1(0, src_ip, dest_ip, key.proto, src_port, dest_port),
            missed_bytes: self.missed + self.acked_unseen(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_entry_and_key_fit_a_256_byte_node() {
        assert_eq!(std::mem::size_of::<FlowEntry>(), FLOW_ENTRY_BYTES);
        assert_eq!(std::mem::size_of::<FlowKey>(), 48);
        // hashlink's node: key, value, two links.
        const _: () = assert!(FLOW_ENTRY_BYTES + 48 + 16 <= 256);
    }

    fn limits(max: usize) -> FlowLimits {
        FlowLimits {
            max_flows: max,
            tcp_timeout: 300_000_000_000,
            udp_timeout: 60_000_000_000,
            dns_timeout: 10_000_000_000,
            icmp_timeout: 60_000_000_000,
            other_timeout: 60_000_000_000,
            tcp_linger: 5_000_000_000,
            update_interval: 0,
            burst_gap: 1_000_000_000,
        }
    }

    /// A TCP packet of the one test connection 10.0.0.1:40000 → 10.0.0.2:80 (`fwd`: from the
    /// client).
    fn tcp_pkt(ts: i64, fwd: bool, flags: u8, seq: u32, ack: u32, len: u32) -> PacketMeta {
        let (s, sp, d, dp) = if fwd {
            ("10.0.0.1", 40000, "10.0.0.2", 80)
        } else {
            ("10.0.0.2", 80, "10.0.0.1", 40000)
        };
        let mut m = udp(ts, s, sp, d, dp);
        m.proto = 6;
        m.tcp = Some((flags, seq, ack));
        m.payload_len = len;
        m
    }

    fn udp(ts: i64, src: &str, sport: u16, dst: &str, dport: u16) -> PacketMeta {
        PacketMeta {
            ts,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport,
            dport,
            proto: 17,
            vlan: Vlans::default(),
            tunnel_depth: 0,
            ip_len: 100,
            payload_len: 72,
            tcp: None,
        }
    }

    #[test]
    fn memory_is_handed_back_after_a_flood_times_out() {
        let n = RELEASE_MIN_PEAK as u32 * 2;
        let mut t = FlowTable::new(limits(n as usize + 1), 0, 1);
        let mut out = Vec::new();
        for i in 0..n {
            let src = std::net::Ipv4Addr::from(0x0a00_0000 | i).to_string();
            t.track(&udp(i64::from(i), &src, 1000, "10.255.0.1", 514), &mut out);
        }
        assert_eq!(t.len(), n as usize);
        assert!(t.maps[UDP].capacity() >= n as usize);
        // Half time out: still above a quarter of the peak, the nodes are kept for reuse.
        t.expire(i64::from(n / 2) - 1 + 60_000_000_001, &mut out);
        assert_eq!(t.len(), n as usize / 2);
        assert!(t.maps[UDP].capacity() >= n as usize);
        // All of them: the index shrinks (and hashlink's free list is dropped with it).
        t.expire(i64::from(n) + 60_000_000_001, &mut out);
        assert!(t.is_empty());
        assert!(
            t.maps[UDP].capacity() < 1024,
            "capacity {}",
            t.maps[UDP].capacity()
        );
        assert_eq!(out.len(), n as usize);
    }

    #[test]
    fn udp_bidirectional_and_timeout() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        t.track(&udp(0, "10.0.0.1", 5555, "10.0.0.9", 514), &mut out);
        t.track(&udp(1, "10.0.0.9", 514, "10.0.0.1", 5555), &mut out);
        assert_eq!(t.len(), 1);
        t.expire(30_000_000_000, &mut out);
        assert!(out.is_empty());
        t.expire(61_000_000_001, &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.src_ip.to_string(), "10.0.0.1");
        assert_eq!((f.pkts_toserver, f.pkts_toclient), (1, 1));
        assert_eq!(f.conn_state, ConnState::SF);
        assert_eq!(f.reason, CloseReason::Timeout);
    }

    #[test]
    fn response_first_is_flipped() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        t.track(&udp(0, "10.0.0.53", 53, "10.0.0.1", 5555), &mut out);
        t.flush(&mut out);
        assert_eq!(out[0].src_ip.to_string(), "10.0.0.1");
        assert_eq!(out[0].conn_state, ConnState::SHR);
        assert_eq!(out[0].history, "^d");
    }

    #[test]
    fn acked_but_unseen_data_is_capture_loss() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        let tcp = tcp_pkt;
        t.track(&tcp(0, true, SYN, 100, 0, 0), &mut out);
        t.track(&tcp(1, false, SYN | ACK, 500, 101, 0), &mut out);
        t.track(&tcp(2, true, ACK, 101, 501, 100), &mut out);
        // The server acknowledges 1000 more bytes the sensor never saw.
        t.track(&tcp(3, false, ACK, 501, 1201, 0), &mut out);
        t.flush(&mut out);
        assert_eq!(out[0].missed_bytes, 1000);
    }

    #[test]
    fn bursts_after_idle_gap() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        let s = 1_000_000_000;
        let mut bursts = Vec::new();
        for ts in [0, s / 10, 5 * s, 5 * s + s / 2, 9 * s] {
            let r = t.track(&udp(ts, "10.0.0.1", 5555, "10.0.0.9", 9999), &mut out);
            bursts.push(r.burst);
        }
        // The first packet starts the flow (not a burst); 5 s and 9 s follow idle gaps.
        assert_eq!(bursts, vec![false, false, true, false, true]);
        // A burst sees the flow as it was before its first packet: the previous packet's
        // time (the end of the previous burst) and the byte counters so far.
        let r = t.track(&udp(15 * s, "10.0.0.9", 9999, "10.0.0.1", 5555), &mut out);
        assert!(r.burst);
        assert_eq!(
            r.before,
            BurstContext {
                prev_ts: 9 * s,
                bytes_toserver: 500,
                bytes_toclient: 0,
            }
        );
        let r = t.track(&udp(20 * s, "10.0.0.1", 5555, "10.0.0.9", 9999), &mut out);
        assert_eq!(r.before.prev_ts, 15 * s);
        assert_eq!(
            (r.before.bytes_toserver, r.before.bytes_toclient),
            (500, 100)
        );
    }

    #[test]
    fn cap_evicts_oldest() {
        let mut t = FlowTable::new(limits(3), 0, 1);
        let mut out = Vec::new();
        for i in 0..10u16 {
            t.track(
                &udp(i64::from(i), "10.0.0.1", 1000 + i, "10.0.0.2", 9999),
                &mut out,
            );
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.stats.evicted, 7);
        assert_eq!(out.len(), 7);
        assert_eq!(out[0].src_port, 1000);
        assert!(out.iter().all(|f| f.reason == CloseReason::Evicted));
    }

    #[test]
    fn final_flush_goes_oldest_first_across_protocols() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        let tcp = |ts, sport| {
            let mut m = udp(ts, "10.0.0.1", sport, "10.0.0.2", 443);
            m.proto = 6;
            m.tcp = Some((SYN, 1, 0));
            m
        };
        t.track(&udp(10, "10.0.0.1", 5000, "10.0.0.53", 53), &mut out);
        t.track(&tcp(20, 40000), &mut out);
        t.track(&udp(30, "10.0.0.1", 5001, "10.0.0.53", 53), &mut out);
        t.track(&tcp(40, 40001), &mut out);
        t.track(&udp(50, "10.0.0.1", 5000, "10.0.0.53", 53), &mut out); // first UDP again
        assert_eq!(t.flush_some(&mut out, 2), 2);
        assert_eq!(t.flush_some(&mut out, 10), 2);
        let ends: Vec<i64> = out.iter().map(|f| f.last_ts).collect();
        assert_eq!(ends, [20, 30, 40, 50]);
    }

    #[test]
    fn tcp_close_after_linger_and_port_reuse() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        let tcp = |ts, fwd, flags, seq, len| tcp_pkt(ts, fwd, flags, seq, 0, len);
        t.track(&tcp(0, true, SYN, 100, 0), &mut out);
        t.track(&tcp(1, false, SYN | ACK, 500, 0), &mut out);
        t.track(&tcp(2, true, ACK, 101, 0), &mut out);
        t.track(&tcp(3, true, ACK, 101, 10), &mut out);
        t.track(&tcp(4, true, ACK, 101, 10), &mut out); // retransmission
        t.track(&tcp(5, true, FIN | ACK, 111, 0), &mut out);
        t.track(&tcp(6, false, FIN | ACK, 501, 0), &mut out);
        t.expire(7, &mut out);
        assert!(out.is_empty(), "linger not over yet");
        t.track(&tcp(8, true, SYN, 9000, 0), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn_state, ConnState::SF);
        assert_eq!(out[0].payload_toserver, 10);
        assert_eq!(out[0].history, "ShADTFf");
        assert_eq!(out[0].missed_bytes, 0);
        t.flush(&mut out);
        assert_eq!(out[1].conn_state, ConnState::S0);
    }

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn name_service_flows_time_out_sooner_than_other_udp() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        t.track(&udp(0, "10.0.0.1", 5555, "10.0.0.53", 53), &mut out);
        t.track(&udp(0, "10.0.0.1", 5353, "224.0.0.251", 5353), &mut out);
        t.track(&udp(0, "10.0.0.1", 5556, "10.0.0.9", 514), &mut out);
        t.expire(10 * SEC, &mut out);
        assert!(out.is_empty(), "10 s idle is not over 10 s");
        t.expire(10 * SEC + 1, &mut out);
        let ports: Vec<u16> = out.iter().map(|f| f.dest_port).collect();
        assert_eq!(ports, [53, 5353]);
        assert!(out.iter().all(|f| f.reason == CloseReason::Timeout));
        assert_eq!(t.len(), 1, "the syslog flow keeps the UDP timeout");
        t.expire(60 * SEC + 1, &mut out);
        assert_eq!(out.len(), 3);
    }

    /// A packet after a flow's timeout or linger starts a new flow even if no tick expired
    /// the old one in between (ticks come with packets, once a second at most).
    #[test]
    fn a_packet_past_the_timeout_starts_a_new_flow_without_a_tick() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        t.track(&udp(0, "10.0.0.1", 5555, "10.0.0.53", 53), &mut out);
        t.track(&udp(SEC, "10.0.0.53", 53, "10.0.0.1", 5555), &mut out);
        t.track(&udp(5 * SEC, "10.0.0.1", 5555, "10.0.0.53", 53), &mut out);
        assert!(out.is_empty(), "within 10 s: the same flow");
        t.track(&udp(16 * SEC, "10.0.0.1", 5555, "10.0.0.53", 53), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].pkts_toserver, out[0].pkts_toclient), (2, 1));
        assert_eq!(out[0].reason, CloseReason::Timeout);
        assert_eq!(t.stats.timed_out, 1);
        assert_eq!(t.stats.created, 2);
        t.flush(&mut out);
        assert_eq!(out[1].first_ts, 16 * SEC);
        assert_eq!(out[1].pkts_toserver, 1);
        assert_ne!(out[0].flow_id, out[1].flow_id);
        // TCP: a RST from the far side 10 s after a reset (linger 5 s) is a new flow.
        out.clear();
        t.track(&tcp_pkt(20 * SEC, true, RST | ACK, 1, 1, 0), &mut out);
        t.track(&tcp_pkt(30 * SEC, false, RST | ACK, 1, 1, 0), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reason, CloseReason::Closed);
        assert_eq!(out[0].pkts_toclient, 0);
    }

    /// Zeek's half-finished close: a FIN while the peer has sent nothing closes the flow
    /// (picked up mid-stream, the FIN first): packets after the linger are a new flow.
    #[test]
    fn a_fin_before_the_peer_spoke_closes_after_the_linger() {
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        let tcp = |ts, fwd, flags| tcp_pkt(ts, fwd, flags, 1, 1, 0);
        t.track(&tcp(0, false, FIN | ACK), &mut out);
        t.track(&tcp(1, true, ACK), &mut out);
        t.track(&tcp(7 * SEC, true, FIN | ACK), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn_state, ConnState::SHR);
        assert_eq!(out[0].history, "^fA");
        assert_eq!((out[0].pkts_toserver, out[0].pkts_toclient), (1, 1));
        // Both sides active before the FIN: an ordinary half-close, still one flow.
        let mut t = FlowTable::new(limits(10), 0, 1);
        let mut out = Vec::new();
        t.track(&tcp(0, true, ACK), &mut out);
        t.track(&tcp(1, false, ACK), &mut out);
        t.track(&tcp(2, false, FIN | ACK), &mut out);
        t.track(&tcp(7 * SEC, true, ACK), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
