//! Building a scenario: frames on a timeline plus the ledger of what a correct sensor must
//! report. Every legit packet sent through [`Scenario::send`] is accounted to its flow
//! (originator = sender of the flow's first packet; bytes = IP total length), so the expected
//! counts always agree with the pcap.

use crate::dnsmsg::{rcode_name, rrtype_name, DnsMsg};
use crate::expect::{Counts, ExpAnswer, ExpDns, ExpFlow, Expected};
use crate::pcapw::{LinkType, PcapWriter, TsResolution};
use crate::pkt::{self, Vlan};
use crate::tcpconn::{Seg, TcpConn};
use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::path::Path as FsPath;

/// Base packet time of every scenario: 2026-11-25T09:00:00Z.
pub const BASE_TS_NS: u64 = 1_795_597_200 * 1_000_000_000;

/// Kind of tunnel a path goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// UDP 4789, inner Ethernet.
    Vxlan { vni: u32 },
    /// GRE protocol 0x6558 (transparent Ethernet bridging).
    GreEth,
    /// GRE protocol 0x0800 / 0x86dd (inner IP, no Ethernet).
    GreIp,
    /// UDP 6081, inner Ethernet.
    Geneve { vni: u32 },
    /// UDP 4754 (RFC 8086), GRE, inner IP.
    GreInUdp,
    /// GRE 0x88be (type II) or 0x22eb (type III) mirror: every inner packet travels from
    /// `client_end` (the mirroring switch) to `server_end` (the collector).
    Erspan { version3: bool, session: u16 },
}

/// A tunnel between two endpoints; the client side of inner traffic sits behind `client_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub client_end: IpAddr,
    pub server_end: IpAddr,
}

/// Layers between the outermost Ethernet header (and its VLAN tags) and IP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum L2Encap {
    #[default]
    None,
    /// MPLS label stack, outer first.
    Mpls(Vec<u32>),
    /// PPPoE session id.
    Pppoe(u16),
}

/// How packets travel: VLAN tags on the outermost Ethernet header, MPLS/PPPoE, and an
/// optional tunnel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    pub vlans: Vec<Vlan>,
    pub l2: L2Encap,
    pub tunnel: Option<Tunnel>,
}

impl Path {
    pub fn plain() -> Self {
        Path::default()
    }
    pub fn vlans(v: &[Vlan]) -> Self {
        Path {
            vlans: v.to_vec(),
            ..Default::default()
        }
    }
    pub fn tunnel(t: Tunnel) -> Self {
        Path {
            tunnel: Some(t),
            ..Default::default()
        }
    }
    pub fn encap(vlans: &[Vlan], l2: L2Encap) -> Self {
        Path {
            vlans: vlans.to_vec(),
            l2,
            tunnel: None,
        }
    }
    /// VLAN ids as a flow key (the inner frames of tunnels are untagged here).
    fn key_vlans(&self) -> Vec<u16> {
        if self.tunnel.is_some() {
            vec![]
        } else {
            self.vlans.iter().map(|v| v.vid).collect()
        }
    }
    fn depth(&self) -> u8 {
        self.tunnel.is_some() as u8
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FlowKey {
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    proto: u8,
    vlan: Vec<u16>,
    depth: u8,
}

/// What the ledger knows of one flow.
#[derive(Clone, Debug)]
pub struct FlowAcc {
    key: FlowKey,
    counts: Counts,
    /// Counts if IP fragments were counted one by one.
    alt: Counts,
    pub conn_state: Option<String>,
    pub server_name: Option<(String, String)>,
    pub reversed_conn_state: Option<String>,
    pub note: String,
}

fn add(c: &mut Counts, to_server: bool, bytes: usize) {
    if to_server {
        c.pkts_toserver += 1;
        c.bytes_toserver += bytes as u64;
    } else {
        c.pkts_toclient += 1;
        c.bytes_toclient += bytes as u64;
    }
}

pub fn proto_name(p: u8) -> String {
    match p {
        pkt::PROTO_TCP => "TCP".into(),
        pkt::PROTO_UDP => "UDP".into(),
        pkt::PROTO_ICMP => "ICMP".into(),
        pkt::PROTO_ICMPV6 => "IPv6-ICMP".into(),
        n => n.to_string(),
    }
}

/// A scenario under construction.
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub link: LinkType,
    pub res: TsResolution,
    /// Current packet time.
    pub t_ns: u64,
    frames: Vec<(u64, Vec<u8>, Option<u32>)>,
    flows: Vec<FlowAcc>,
    dns: Vec<ExpDns>,
    pub allowed_extra_flows: Vec<serde_json::Value>,
    pub allowed_extra_dns: Vec<serde_json::Value>,
    pub min_decode_errors: u64,
    pub notes: Vec<String>,
    outer_ip_id: u16,
}

impl Scenario {
    pub fn new(name: &str, description: &str) -> Self {
        Scenario {
            name: name.into(),
            description: description.into(),
            link: LinkType::Ethernet,
            res: TsResolution::Micro,
            t_ns: BASE_TS_NS,
            frames: Vec::new(),
            flows: Vec::new(),
            dns: Vec::new(),
            allowed_extra_flows: Vec::new(),
            allowed_extra_dns: Vec::new(),
            min_decode_errors: 0,
            notes: Vec::new(),
            outer_ip_id: 0x3000,
        }
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.t_ns += ms * 1_000_000;
    }

    pub fn advance_ns(&mut self, ns: u64) {
        self.t_ns += ns;
    }

    /// Frames the IP packet for the scenario's link type and path (no accounting).
    pub fn frame(&mut self, path: &Path, from_client: bool, ip: &[u8]) -> Vec<u8> {
        let (outer_ip, outer_src, outer_dst) = self.outer_ip(path, from_client, ip);
        self.l2_frame(path, from_client, outer_ip, outer_src, outer_dst)
    }

    /// The IP packet on the wire for `ip` on `path` (its tunnel packet, if any) and the
    /// addresses the link layer frames it between.
    fn outer_ip(&mut self, path: &Path, from_client: bool, ip: &[u8]) -> (Vec<u8>, IpAddr, IpAddr) {
        let s = pkt::summarize(ip);
        match path.tunnel {
            None => (ip.to_vec(), s.src, s.dst),
            Some(t) => {
                let mirrored = matches!(t.kind, TunnelKind::Erspan { .. });
                let (a, b) = if from_client || mirrored {
                    (t.client_end, t.server_end)
                } else {
                    (t.server_end, t.client_end)
                };
                self.outer_ip_id = self.outer_ip_id.wrapping_add(1);
                let id = self.outer_ip_id;
                let inner_eth = || {
                    pkt::ethernet(
                        pkt::mac_for(s.dst),
                        pkt::mac_for(s.src),
                        &[],
                        pkt::ethertype_of(ip),
                        ip,
                    )
                };
                // Entropy source port from the inner 5-tuple (symmetric).
                let entropy_port = {
                    let (lo, hi) = if (s.src, s.sport) < (s.dst, s.dport) {
                        ((s.src, s.sport), (s.dst, s.dport))
                    } else {
                        ((s.dst, s.dport), (s.src, s.sport))
                    };
                    let h = format!("{lo:?}{hi:?}{}", s.proto)
                        .bytes()
                        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
                    49152 + (h % 16384) as u16
                };
                let outer = match t.kind {
                    TunnelKind::Vxlan { vni } => {
                        pkt::vxlan_packet(a, b, entropy_port, vni, id, &inner_eth())
                    }
                    TunnelKind::Geneve { vni } => {
                        pkt::geneve_packet(a, b, entropy_port, vni, id, &inner_eth())
                    }
                    TunnelKind::GreInUdp => pkt::gre_in_udp_packet(a, b, entropy_port, id, ip),
                    TunnelKind::Erspan { version3, session } => {
                        let seq = id as u32;
                        pkt::erspan_packet(a, b, version3, session, seq, id, &inner_eth())
                    }
                    TunnelKind::GreEth => pkt::gre_packet(a, b, pkt::ETH_TEB, id, &inner_eth()),
                    TunnelKind::GreIp => pkt::gre_packet(a, b, pkt::ethertype_of(ip), id, ip),
                };
                (outer, a, b)
            }
        }
    }

    /// Frames an IP packet for the capture's link type and `path`'s layer 2.
    fn l2_frame(
        &mut self,
        path: &Path,
        from_client: bool,
        outer_ip: Vec<u8>,
        outer_src: IpAddr,
        outer_dst: IpAddr,
    ) -> Vec<u8> {
        match self.link {
            LinkType::Ethernet => {
                let (et, payload) = match &path.l2 {
                    L2Encap::None => (pkt::ethertype_of(&outer_ip), outer_ip),
                    L2Encap::Mpls(labels) => (pkt::ETH_MPLS, pkt::mpls(labels, &outer_ip)),
                    L2Encap::Pppoe(sid) => {
                        (pkt::ETH_PPPOE_SESSION, pkt::pppoe_session(*sid, &outer_ip))
                    }
                };
                pkt::pad_ethernet(pkt::ethernet(
                    pkt::mac_for(outer_dst),
                    pkt::mac_for(outer_src),
                    &path.vlans,
                    et,
                    &payload,
                ))
            }
            LinkType::LinuxSll => {
                assert!(path.vlans.is_empty(), "no VLAN tags on SLL here");
                assert_eq!(path.l2, L2Encap::None, "no MPLS/PPPoE on SLL here");
                pkt::sll(
                    if from_client { 4 } else { 0 },
                    pkt::mac_for(outer_src),
                    pkt::ethertype_of(&outer_ip),
                    &outer_ip,
                )
            }
            LinkType::RawIp => {
                assert!(path.vlans.is_empty(), "no VLAN tags on raw IP");
                assert_eq!(path.l2, L2Encap::None, "no MPLS/PPPoE on raw IP");
                outer_ip
            }
            LinkType::Other(n) => panic!("cannot frame for link type {n}"),
        }
    }

    /// Appends a raw frame (as captured) at the current time; `orig_len` > data length means
    /// the capture cut the frame.
    pub fn push_frame(&mut self, data: Vec<u8>, orig_len: Option<u32>) {
        self.frames.push((self.t_ns, data, orig_len));
    }

    fn flow_index(&self, k: &FlowKey) -> Option<(usize, bool)> {
        self.flows
            .iter()
            .position(|f| &f.key == k)
            .map(|i| (i, true))
            .or_else(|| {
                self.flows
                    .iter()
                    .position(|f| {
                        f.key.proto == k.proto
                            && f.key.vlan == k.vlan
                            && f.key.depth == k.depth
                            && (f.key.src, f.key.sport, f.key.dst, f.key.dport)
                                == (k.dst, k.dport, k.src, k.sport)
                    })
                    .map(|i| (i, false))
            })
    }

    /// Accounts `ip` to its flow (creating the flow with this packet's sender as originator).
    /// `alt_parts`: IP lengths of the fragments actually sent for this packet, if fragmented.
    fn account(&mut self, path: &Path, ip: &[u8], alt_parts: Option<&[usize]>) {
        let s = pkt::summarize(ip);
        let k = FlowKey {
            src: s.src,
            sport: s.sport,
            dst: s.dst,
            dport: s.dport,
            proto: s.proto,
            vlan: path.key_vlans(),
            depth: path.depth(),
        };
        let (i, to_server) = match self.flow_index(&k) {
            Some(x) => x,
            None => {
                self.flows.push(FlowAcc {
                    key: k,
                    counts: Counts::default(),
                    alt: Counts::default(),
                    conn_state: None,
                    server_name: None,
                    reversed_conn_state: None,
                    note: String::new(),
                });
                (self.flows.len() - 1, true)
            }
        };
        let f = &mut self.flows[i];
        add(&mut f.counts, to_server, s.ip_len);
        match alt_parts {
            None => add(&mut f.alt, to_server, s.ip_len),
            Some(parts) => {
                for &p in parts {
                    add(&mut f.alt, to_server, p);
                }
            }
        }
    }

    /// Sends one legit IP packet at the current time and accounts it.
    pub fn send(&mut self, path: &Path, from_client: bool, ip: &[u8]) {
        let fr = self.frame(path, from_client, ip);
        self.push_frame(fr, None);
        self.account(path, ip, None);
    }

    /// Sends an IP packet without accounting it (junk, ICMP left to `allowed_extra_flows`).
    pub fn send_unaccounted(&mut self, path: &Path, from_client: bool, ip: &[u8]) {
        let fr = self.frame(path, from_client, ip);
        self.push_frame(fr, None);
    }

    /// Sends `frags` (fragments of `full`) in the order given by `order`, `gap_ns` apart,
    /// accounting `full` once (a reassembling sensor sees one datagram).
    pub fn send_fragments(
        &mut self,
        path: &Path,
        from_client: bool,
        full: &[u8],
        frags: &[Vec<u8>],
        order: &[usize],
        gap_ns: u64,
    ) {
        for (n, &i) in order.iter().enumerate() {
            if n > 0 {
                self.advance_ns(gap_ns);
            }
            let fr = self.frame(path, from_client, &frags[i]);
            self.push_frame(fr, None);
        }
        let parts: Vec<usize> = frags.iter().map(|f| pkt::summarize(f).ip_len).collect();
        self.account(path, full, Some(&parts));
    }

    /// Sends `ip` through `path`'s tunnel with the tunnel's own IPv4 packet cut into
    /// fragments of at most `max_payload` bytes (a mirror session whose transport MTU is
    /// smaller than the mirrored frames), accounting the inner packet once.
    pub fn send_outer_fragmented(
        &mut self,
        path: &Path,
        from_client: bool,
        ip: &[u8],
        max_payload: usize,
    ) {
        assert!(
            path.tunnel.is_some(),
            "only a tunnel packet has an outer packet"
        );
        let (outer, a, b) = self.outer_ip(path, from_client, ip);
        for f in pkt::fragment_ipv4(&outer, max_payload) {
            let fr = self.l2_frame(path, from_client, f, a, b);
            self.push_frame(fr, None);
            self.advance_ns(20_000);
        }
        self.account(path, ip, None);
    }

    /// Sends TCP segments, applying each segment's delay first.
    pub fn tcp(&mut self, path: &Path, segs: Vec<Seg>) {
        for s in segs {
            self.advance_ns(s.delay_ns);
            self.send(path, s.from_client, &s.ip);
        }
    }

    fn find_flow(
        &mut self,
        path: &Path,
        proto: u8,
        a: (IpAddr, u16),
        b: (IpAddr, u16),
    ) -> &mut FlowAcc {
        let k = FlowKey {
            src: a.0,
            sport: a.1,
            dst: b.0,
            dport: b.1,
            proto,
            vlan: path.key_vlans(),
            depth: path.depth(),
        };
        let (i, _) = self
            .flow_index(&k)
            .unwrap_or_else(|| panic!("{}: no flow {k:?}", self.name));
        &mut self.flows[i]
    }

    /// The ledger entry of a TCP connection.
    pub fn tcp_flow(&mut self, path: &Path, c: &TcpConn) -> &mut FlowAcc {
        self.find_flow(path, pkt::PROTO_TCP, c.client(), c.server())
    }

    /// The ledger entry of a UDP flow.
    pub fn udp_flow(&mut self, path: &Path, a: (IpAddr, u16), b: (IpAddr, u16)) -> &mut FlowAcc {
        self.find_flow(path, pkt::PROTO_UDP, a, b)
    }

    /// Sets conn_state (and a note) of a TCP connection's flow.
    pub fn tcp_state(&mut self, path: &Path, c: &TcpConn, state: &str, note: &str) {
        let f = self.tcp_flow(path, c);
        f.conn_state = Some(state.into());
        f.note = note.into();
    }

    /// Sets the server name of a TCP connection's flow.
    pub fn tcp_name(&mut self, path: &Path, c: &TcpConn, name: &str, source: &str) {
        self.tcp_flow(path, c).server_name = Some((name.into(), source.into()));
    }

    /// Records a DNS transaction expectation.
    #[allow(clippy::too_many_arguments)]
    pub fn expect_dns(
        &mut self,
        path: &Path,
        proto: u8,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        q: &DnsMsg,
        resp: Option<&DnsMsg>,
        note: &str,
    ) {
        let answers = resp
            .map(|r| {
                r.answers
                    .iter()
                    .map(|rr| ExpAnswer {
                        rrname: rr.name.trim_end_matches('.').to_string(),
                        rrtype: rrtype_name(rr.data.rtype()),
                        ttl: rr.ttl,
                        rdata: rr.data.presentation(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.dns.push(ExpDns {
            src_ip: client.0.to_string(),
            src_port: client.1,
            dest_ip: server.0.to_string(),
            dest_port: server.1,
            proto: proto_name(proto),
            vlan: path.key_vlans(),
            id: q.id,
            rrname: q.qname().trim_end_matches('.').to_string(),
            rrtype: rrtype_name(q.qtype()),
            rcode: resp.map(|r| rcode_name(r.rcode)),
            answers,
            tc: resp.map(|r| r.tc),
            note: note.into(),
        });
    }

    /// A DNS exchange over UDP: the query (if `send_query`) then, `rtt_ms` later, the
    /// response (if any). Records the transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn dns_udp(
        &mut self,
        path: &Path,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        q: &DnsMsg,
        resp: Option<&DnsMsg>,
        send_query: bool,
        rtt_ms: u64,
        note: &str,
    ) {
        let ip_id = q.id ^ 0x5a5a;
        if send_query {
            let p = pkt::udp_packet(client.0, client.1, server.0, server.1, ip_id, &q.encode());
            self.send(path, true, &p);
        }
        if let Some(r) = resp {
            self.advance_ms(rtt_ms);
            let p = pkt::udp_packet(
                server.0,
                server.1,
                client.0,
                client.1,
                ip_id ^ 0xffff,
                &r.encode(),
            );
            self.send(path, false, &p);
        }
        self.expect_dns(path, pkt::PROTO_UDP, client, server, q, resp, note);
        self.advance_ms(3);
    }

    /// The expected-file view of the ledger. Panics when a TCP flow has no conn_state.
    pub fn expected(&self) -> Expected {
        let flows = self
            .flows
            .iter()
            .map(|f| {
                let state = match (&f.conn_state, f.key.proto) {
                    (Some(s), _) => s.clone(),
                    (None, pkt::PROTO_UDP) => {
                        if f.counts.pkts_toclient > 0 {
                            "SF".into()
                        } else {
                            "S0".into()
                        }
                    }
                    (None, _) => panic!("{}: flow {:?} has no conn_state", self.name, f.key),
                };
                ExpFlow {
                    src_ip: f.key.src.to_string(),
                    src_port: f.key.sport,
                    dest_ip: f.key.dst.to_string(),
                    dest_port: f.key.dport,
                    proto: proto_name(f.key.proto),
                    vlan: f.key.vlan.clone(),
                    pkts_toserver: f.counts.pkts_toserver,
                    pkts_toclient: f.counts.pkts_toclient,
                    bytes_toserver: f.counts.bytes_toserver,
                    bytes_toclient: f.counts.bytes_toclient,
                    conn_state: state,
                    server_name: f.server_name.as_ref().map(|s| s.0.clone()),
                    server_name_source: f.server_name.as_ref().map(|s| s.1.clone()),
                    tunnel_depth: (f.key.depth > 0).then_some(f.key.depth),
                    alt_counts: (f.alt != f.counts).then(|| f.alt.clone()),
                    reversed_conn_state: f.reversed_conn_state.clone(),
                    note: f.note.clone(),
                }
            })
            .collect();
        Expected {
            scenario: self.name.clone(),
            pcap: format!("{}.pcap", self.name),
            description: self.description.clone(),
            linktype: self.link.dlt(),
            flows,
            dns: self.dns.clone(),
            allowed_extra_flows: self.allowed_extra_flows.clone(),
            allowed_extra_dns: self.allowed_extra_dns.clone(),
            min_decode_errors: self.min_decode_errors,
            notes: self.notes.clone(),
        }
    }

    /// The pcap file bytes.
    pub fn pcap_bytes(&self) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), self.link, self.res, 262144).expect("pcap header");
        for (ts, data, orig) in &self.frames {
            w.write(*ts, data, *orig).expect("write to memory");
        }
        w.into_inner().expect("flush to memory")
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Writes `<dir>/<name>.pcap` and `<dir>/<name>.expected.json`.
    pub fn write_to(&self, dir: &FsPath) -> io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(dir)?;
        let mut f = BufWriter::new(std::fs::File::create(
            dir.join(format!("{}.pcap", self.name)),
        )?);
        f.write_all(&self.pcap_bytes())?;
        f.flush()?;
        std::fs::write(
            dir.join(format!("{}.expected.json", self.name)),
            self.expected().to_pretty_json(),
        )
    }
}
