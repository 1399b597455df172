//! Hand-built packet headers: Ethernet (802.1Q / QinQ tags), Linux SLL, IPv4, IPv6, TCP, UDP,
//! ICMP, IPv4/IPv6 fragmentation, VXLAN and GRE encapsulation. Every length and checksum is
//! computed; the builders never pad or truncate unless asked (see [`pad_ethernet`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;
pub const ETH_VLAN: u16 = 0x8100;
pub const ETH_QINQ: u16 = 0x88a8;
pub const ETH_TEB: u16 = 0x6558;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_GRE: u8 = 47;
pub const PROTO_ICMPV6: u8 = 58;
pub const PROTO_IPV6_FRAG: u8 = 44;

pub const VXLAN_PORT: u16 = 4789;

/// TCP flag bits.
pub mod tcpflags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// One VLAN tag: its TPID (0x8100 or 0x88a8) and the VLAN id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    pub tpid: u16,
    pub vid: u16,
}

impl Vlan {
    pub fn dot1q(vid: u16) -> Self {
        Vlan {
            tpid: ETH_VLAN,
            vid,
        }
    }
    pub fn qinq(vid: u16) -> Self {
        Vlan {
            tpid: ETH_QINQ,
            vid,
        }
    }
}

/// A stable, locally administered unicast MAC derived from an IP address.
pub fn mac_for(ip: IpAddr) -> Mac {
    let mut h: u32 = 0x811c_9dc5;
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    for b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    let h = h.to_be_bytes();
    [0x02, 0x5a, h[0], h[1], h[2], h[3]]
}

// ---------------------------------------------------------------------------------------------
// Checksums

/// One's-complement sum of 16-bit big-endian words (odd trailing byte padded with zero).
pub fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
        // Fold early so very large inputs never overflow.
        if sum > 0xffff_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [b] = chunks.remainder() {
        sum = sum.wrapping_add((*b as u32) << 8);
    }
    sum
}

/// Folds a one's-complement sum and complements it.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Internet checksum of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
    fold(ones_sum(data, 0))
}

/// Sum of the TCP/UDP/ICMPv6 pseudo-header.
fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut sum = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = ones_sum(&s.octets(), sum);
            sum = ones_sum(&d.octets(), sum);
            sum = sum.wrapping_add(proto as u32);
            sum = sum.wrapping_add(len as u32);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum = ones_sum(&s.octets(), sum);
            sum = ones_sum(&d.octets(), sum);
            sum = sum.wrapping_add((len as u32) >> 16);
            sum = sum.wrapping_add((len as u32) & 0xffff);
            sum = sum.wrapping_add(proto as u32);
        }
        _ => panic!("mixed IPv4/IPv6 addresses {src} {dst}"),
    }
    sum
}

/// Transport checksum over pseudo-header + segment (the checksum field must be zero).
pub fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    fold(ones_sum(
        segment,
        pseudo_sum(src, dst, proto, segment.len()),
    ))
}

// ---------------------------------------------------------------------------------------------
// Network layer

/// IPv4 header fields the builders let a caller choose.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Fields {
    pub id: u16,
    pub ttl: u8,
    pub tos: u8,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
}

impl Default for Ipv4Fields {
    fn default() -> Self {
        Ipv4Fields {
            id: 0,
            ttl: 64,
            tos: 0,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
        }
    }
}

/// A 20-byte IPv4 header with a correct checksum for a payload of `payload_len` bytes.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    f: &Ipv4Fields,
) -> [u8; 20] {
    let total = 20 + payload_len;
    assert!(total <= 0xffff, "IPv4 packet too long: {total}");
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = f.tos;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&f.id.to_be_bytes());
    let mut ff = f.frag_offset & 0x1fff;
    if f.dont_fragment {
        ff |= 0x4000;
    }
    if f.more_fragments {
        ff |= 0x2000;
    }
    h[6..8].copy_from_slice(&ff.to_be_bytes());
    h[8] = f.ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = inet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// IPv4 packet = header + payload.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, f: &Ipv4Fields, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(20 + payload.len());
    v.extend_from_slice(&ipv4_header(src, dst, proto, payload.len(), f));
    v.extend_from_slice(payload);
    v
}

/// A 40-byte IPv6 header.
pub fn ipv6_header(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    payload_len: usize,
    hop_limit: u8,
    flow_label: u32,
) -> [u8; 40] {
    assert!(payload_len <= 0xffff, "IPv6 payload too long");
    let mut h = [0u8; 40];
    let vtf: u32 = (6 << 28) | (flow_label & 0xf_ffff);
    h[0..4].copy_from_slice(&vtf.to_be_bytes());
    h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    h[6] = next_header;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

/// IPv6 packet = header + payload.
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(40 + payload.len());
    v.extend_from_slice(&ipv6_header(
        src,
        dst,
        next_header,
        payload.len(),
        hop_limit,
        0,
    ));
    v.extend_from_slice(payload);
    v
}

/// An IP packet of the right version for the addresses, with IPv4 identification `ip_id`
/// (DF set) or IPv6 hop limit 64.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, ip_id: u16, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(
            s,
            d,
            proto,
            &Ipv4Fields {
                id: ip_id,
                ..Default::default()
            },
            payload,
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s, d, proto, 64, payload),
        _ => panic!("mixed IPv4/IPv6 addresses {src} {dst}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Transport layer

/// UDP header + payload with the checksum computed over the pseudo-header.
pub fn udp_segment(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    let mut c = transport_checksum(src, dst, PROTO_UDP, &v);
    if c == 0 {
        c = 0xffff;
    }
    v[6..8].copy_from_slice(&c.to_be_bytes());
    v
}

/// A whole IP/UDP packet.
pub fn udp_packet(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    ip_id: u16,
    payload: &[u8],
) -> Vec<u8> {
    ip_packet(
        src,
        dst,
        PROTO_UDP,
        ip_id,
        &udp_segment(src, dst, sport, dport, payload),
    )
}

/// TCP header fields.
#[derive(Clone, Debug, Default)]
pub struct TcpFields {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Raw option bytes; the builder pads them with NOPs to a multiple of 4 (at most 40).
    pub options: Vec<u8>,
}

/// Options a typical SYN / SYN-ACK carries: MSS, NOP, window scale, NOP, NOP, SACK permitted.
pub fn syn_options(mss: u16, wscale: u8) -> Vec<u8> {
    let m = mss.to_be_bytes();
    vec![2, 4, m[0], m[1], 1, 3, 3, wscale, 1, 1, 4, 2]
}

/// TCP header (+ options) + payload with a correct checksum.
pub fn tcp_segment(src: IpAddr, dst: IpAddr, f: &TcpFields, payload: &[u8]) -> Vec<u8> {
    let mut opts = f.options.clone();
    while opts.len() & 3 != 0 {
        opts.push(1);
    }
    assert!(opts.len() <= 40, "TCP options too long");
    let hlen = 20 + opts.len();
    let mut v = Vec::with_capacity(hlen + payload.len());
    v.extend_from_slice(&f.sport.to_be_bytes());
    v.extend_from_slice(&f.dport.to_be_bytes());
    v.extend_from_slice(&f.seq.to_be_bytes());
    v.extend_from_slice(&f.ack.to_be_bytes());
    v.push(((hlen / 4) as u8) << 4);
    v.push(f.flags);
    v.extend_from_slice(&f.window.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&opts);
    v.extend_from_slice(payload);
    let c = transport_checksum(src, dst, PROTO_TCP, &v);
    v[16..18].copy_from_slice(&c.to_be_bytes());
    v
}

/// ICMPv4 echo request (type 8) or reply (type 0).
pub fn icmpv4_echo(reply: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![if reply { 0 } else { 8 }, 0, 0, 0];
    v.extend_from_slice(&ident.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(payload);
    let c = inet_checksum(&v);
    v[2..4].copy_from_slice(&c.to_be_bytes());
    v
}

/// ICMPv6 echo request (128) or reply (129), checksummed over the pseudo-header.
pub fn icmpv6_echo(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    reply: bool,
    ident: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![if reply { 129 } else { 128 }, 0, 0, 0];
    v.extend_from_slice(&ident.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(payload);
    let c = transport_checksum(src.into(), dst.into(), PROTO_ICMPV6, &v);
    v[2..4].copy_from_slice(&c.to_be_bytes());
    v
}

// ---------------------------------------------------------------------------------------------
// Link layer

/// EtherType for an IP packet, from its version nibble.
pub fn ethertype_of(ip: &[u8]) -> u16 {
    match ip.first().map(|b| b >> 4) {
        Some(6) => ETH_IPV6,
        _ => ETH_IPV4,
    }
}

/// Ethernet II frame with zero or more VLAN tags (outer first). Not padded.
pub fn ethernet(dst: Mac, src: Mac, vlans: &[Vlan], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    for t in vlans {
        v.extend_from_slice(&t.tpid.to_be_bytes());
        v.extend_from_slice(&(t.vid & 0x0fff).to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Pads an Ethernet frame to the 60-byte minimum (without FCS) with zero bytes, as a NIC does.
/// The padding is not part of the IP packet: sensors must use the IP total length.
pub fn pad_ethernet(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

/// Linux "cooked" capture (SLL, DLT 113) header + payload. `packet_type`: 0 = to us,
/// 4 = sent by us.
pub fn sll(packet_type: u16, src: Mac, protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + payload.len());
    v.extend_from_slice(&packet_type.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    v.extend_from_slice(&6u16.to_be_bytes());
    v.extend_from_slice(&src);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

// ---------------------------------------------------------------------------------------------
// Fragmentation

/// Splits an (unfragmented, option-less) IPv4 packet into fragments carrying at most
/// `max_payload` bytes each (rounded down to a multiple of 8). Fragments come back in order.
pub fn fragment_ipv4(packet: &[u8], max_payload: usize) -> Vec<Vec<u8>> {
    assert_eq!(
        packet[0], 0x45,
        "only option-less IPv4 headers are fragmented here"
    );
    let chunk = (max_payload / 8) * 8;
    assert!(chunk >= 8);
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let id = u16::from_be_bytes([packet[4], packet[5]]);
    let payload = &packet[20..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let f = Ipv4Fields {
            id,
            ttl: packet[8],
            tos: packet[1],
            dont_fragment: false,
            more_fragments: end < payload.len(),
            frag_offset: (off / 8) as u16,
        };
        out.push(ipv4(src, dst, packet[9], &f, &payload[off..end]));
        off = end;
    }
    out
}

/// Splits an IPv6 packet whose next header is the upper layer (no extension headers) into
/// fragments with a Fragment header each, at most `max_payload` fragmentable bytes each
/// (rounded down to a multiple of 8). Fragments come back in order.
pub fn fragment_ipv6(packet: &[u8], max_payload: usize, ident: u32) -> Vec<Vec<u8>> {
    let chunk = (max_payload / 8) * 8;
    assert!(chunk >= 8);
    let next = packet[6];
    let hop = packet[7];
    let mut s = [0u8; 16];
    s.copy_from_slice(&packet[8..24]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&packet[24..40]);
    let payload = &packet[40..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut fh = vec![next, 0];
        let m = if end < payload.len() { 1u16 } else { 0 };
        fh.extend_from_slice(&(((off / 8) as u16) << 3 | m).to_be_bytes());
        fh.extend_from_slice(&ident.to_be_bytes());
        fh.extend_from_slice(&payload[off..end]);
        out.push(ipv6(s.into(), d.into(), PROTO_IPV6_FRAG, hop, &fh));
        off = end;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tunnels

/// The 8-byte VXLAN header (I flag, 24-bit VNI).
pub fn vxlan_header(vni: u32) -> [u8; 8] {
    let v = (vni & 0xff_ffff) << 8;
    let mut h = [0u8; 8];
    h[0] = 0x08;
    h[4..8].copy_from_slice(&v.to_be_bytes());
    h
}

/// Outer IP/UDP(4789)/VXLAN packet carrying `inner_frame` (an Ethernet frame).
pub fn vxlan_packet(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    outer_sport: u16,
    vni: u32,
    ip_id: u16,
    inner_frame: &[u8],
) -> Vec<u8> {
    let mut payload = vxlan_header(vni).to_vec();
    payload.extend_from_slice(inner_frame);
    udp_packet(
        outer_src,
        outer_sport,
        outer_dst,
        VXLAN_PORT,
        ip_id,
        &payload,
    )
}

/// Outer IP/GRE packet (basic 4-byte GRE header, no key/seq/checksum) with protocol type
/// `proto_type` (0x6558 for Ethernet, 0x0800 / 0x86dd for IP).
pub fn gre_packet(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    proto_type: u16,
    ip_id: u16,
    inner: &[u8],
) -> Vec<u8> {
    let mut payload = vec![0u8, 0];
    payload.extend_from_slice(&proto_type.to_be_bytes());
    payload.extend_from_slice(inner);
    ip_packet(outer_src, outer_dst, PROTO_GRE, ip_id, &payload)
}

pub const ETH_MPLS: u16 = 0x8847;
pub const ETH_PPPOE_SESSION: u16 = 0x8864;
pub const ETH_ERSPAN_II: u16 = 0x88be;
pub const ETH_ERSPAN_III: u16 = 0x22eb;
pub const GENEVE_PORT: u16 = 6081;
pub const GRE_IN_UDP_PORT: u16 = 4754;

/// An MPLS label stack (outer first; the last entry gets the bottom-of-stack bit) followed by
/// `payload`.
pub fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 * labels.len() + payload.len());
    for (i, l) in labels.iter().enumerate() {
        let bos = (i + 1 == labels.len()) as u32;
        let e = (l & 0xf_ffff) << 12 | bos << 8 | 64;
        v.extend_from_slice(&e.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// PPPoE session header + PPP protocol field (0x0021 IPv4 / 0x0057 IPv6) + IP packet.
pub fn pppoe_session(session: u16, ip: &[u8]) -> Vec<u8> {
    let ppp_proto: u16 = if ethertype_of(ip) == ETH_IPV6 {
        0x0057
    } else {
        0x0021
    };
    let mut v = vec![0x11, 0x00];
    v.extend_from_slice(&session.to_be_bytes());
    v.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(&ppp_proto.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

/// Outer IP/UDP(6081)/Geneve (no options, protocol 0x6558) packet carrying an Ethernet frame.
pub fn geneve_packet(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    outer_sport: u16,
    vni: u32,
    ip_id: u16,
    inner_frame: &[u8],
) -> Vec<u8> {
    let mut payload = vec![0u8, 0];
    payload.extend_from_slice(&ETH_TEB.to_be_bytes());
    payload.extend_from_slice(&((vni & 0xff_ffff) << 8).to_be_bytes());
    payload.extend_from_slice(inner_frame);
    udp_packet(
        outer_src,
        outer_sport,
        outer_dst,
        GENEVE_PORT,
        ip_id,
        &payload,
    )
}

/// Outer IP/UDP(4754)/GRE packet (RFC 8086) carrying an IP packet.
pub fn gre_in_udp_packet(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    outer_sport: u16,
    ip_id: u16,
    inner_ip: &[u8],
) -> Vec<u8> {
    let mut payload = vec![0u8, 0];
    payload.extend_from_slice(&ethertype_of(inner_ip).to_be_bytes());
    payload.extend_from_slice(inner_ip);
    udp_packet(
        outer_src,
        outer_sport,
        outer_dst,
        GRE_IN_UDP_PORT,
        ip_id,
        &payload,
    )
}

/// Outer IP/GRE(with sequence number)/ERSPAN type II (`version3` = false) or type III packet
/// carrying a mirrored Ethernet frame.
pub fn erspan_packet(
    outer_src: IpAddr,
    outer_dst: IpAddr,
    version3: bool,
    session: u16,
    seq: u32,
    ip_id: u16,
    inner_frame: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x10u8, 0]; // S bit: sequence number present
    p.extend_from_slice(
        &(if version3 {
            ETH_ERSPAN_III
        } else {
            ETH_ERSPAN_II
        })
        .to_be_bytes(),
    );
    p.extend_from_slice(&seq.to_be_bytes());
    let ver: u16 = if version3 { 2 } else { 1 };
    p.extend_from_slice(&(ver << 12).to_be_bytes()); // version, VLAN 0
    p.extend_from_slice(&(session & 0x3ff).to_be_bytes()); // COS 0, En 0, T 0, session id
    if version3 {
        p.extend_from_slice(&seq.wrapping_mul(1000).to_be_bytes()); // timestamp
        p.extend_from_slice(&[0, 0, 0, 0]); // SGT 0, P/FT/HW ID/D/Gra/O = 0
    } else {
        p.extend_from_slice(&[0, 0, 0, 0]); // reserved, index
    }
    p.extend_from_slice(inner_frame);
    ip_packet(outer_src, outer_dst, PROTO_GRE, ip_id, &p)
}

/// IPv6 packet with a Hop-by-Hop Options header and a Destination Options header (PadN
/// options only) before the upper layer; `upper` must be checksummed for `src`/`dst`.
pub fn ipv6_with_ext(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, upper: &[u8]) -> Vec<u8> {
    // Each header: next header, hdr ext len (0 = 8 bytes), PadN option filling 6 bytes.
    let mut p = vec![60, 0, 1, 4, 0, 0, 0, 0];
    p.extend_from_slice(&[proto, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(upper);
    ipv6(src, dst, 0, 64, &p)
}

/// Rewrites the IPv4 identification of a packet and fixes the header checksum.
pub fn set_ipv4_id(ip: &mut [u8], id: u16) {
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[10] = 0;
    ip[11] = 0;
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let c = inet_checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// Reading back (for accounting and self-checks)

/// The flow-relevant fields of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpSummary {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Source / destination port (TCP, UDP), 0 otherwise.
    pub sport: u16,
    pub dport: u16,
    /// IP total length (IPv4 total length, IPv6 40 + payload length).
    pub ip_len: usize,
    pub tcp_flags: u8,
}

/// Parses an unfragmented IPv4/IPv6 packet built by this module.
pub fn summarize(ip: &[u8]) -> IpSummary {
    let (src, dst, proto, l4, ip_len): (IpAddr, IpAddr, u8, &[u8], usize) = match ip[0] >> 4 {
        4 => {
            let ihl = (ip[0] & 0x0f) as usize * 4;
            (
                Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]).into(),
                Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]).into(),
                ip[9],
                &ip[ihl..],
                u16::from_be_bytes([ip[2], ip[3]]) as usize,
            )
        }
        6 => {
            let mut s = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            let mut d = [0u8; 16];
            d.copy_from_slice(&ip[24..40]);
            // Skip hop-by-hop, routing and destination options headers.
            let mut nh = ip[6];
            let mut rest = &ip[40..];
            while matches!(nh, 0 | 43 | 60) && rest.len() >= 8 {
                let len = (rest[1] as usize + 1) * 8;
                nh = rest[0];
                rest = &rest[len.min(rest.len())..];
            }
            (
                Ipv6Addr::from(s).into(),
                Ipv6Addr::from(d).into(),
                nh,
                rest,
                40 + u16::from_be_bytes([ip[4], ip[5]]) as usize,
            )
        }
        v => panic!("not an IP packet (version {v})"),
    };
    let (sport, dport) = if matches!(proto, PROTO_TCP | PROTO_UDP) && l4.len() >= 4 {
        (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        )
    } else {
        (0, 0)
    };
    let tcp_flags = if proto == PROTO_TCP && l4.len() >= 14 {
        l4[13]
    } else {
        0
    };
    IpSummary {
        src,
        dst,
        proto,
        sport,
        dport,
        ip_len,
        tcp_flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_udp_checksums_verify() {
        let p = udp_packet(v4("10.0.0.1"), 1234, v4("10.0.0.2"), 53, 7, b"hello world");
        assert_eq!(inet_checksum(&p[..20]), 0);
        let seg = &p[20..];
        assert_eq!(
            fold(ones_sum(
                seg,
                pseudo_sum(v4("10.0.0.1"), v4("10.0.0.2"), PROTO_UDP, seg.len())
            )),
            0
        );
        let sp = SlicedPacket::from_ip(&p).unwrap();
        match sp.transport {
            Some(TransportSlice::Udp(u)) => {
                assert_eq!(u.destination_port(), 53);
                assert_eq!(u.payload(), b"hello world");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tcp_checksum_matches_etherparse() {
        let src = v4("192.168.1.2");
        let dst = v4("192.168.1.3");
        let f = TcpFields {
            sport: 40000,
            dport: 80,
            seq: 1000,
            ack: 2000,
            flags: tcpflags::ACK | tcpflags::PSH,
            window: 512,
            options: vec![],
        };
        let p = ip_packet(src, dst, PROTO_TCP, 1, &tcp_segment(src, dst, &f, b"GET /"));
        let sp = SlicedPacket::from_ip(&p).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &sp.net else {
            panic!()
        };
        let Some(TransportSlice::Tcp(t)) = sp.transport else {
            panic!()
        };
        let h = t.to_header();
        let want = h
            .calc_checksum_ipv4(&ip.header().to_header(), t.payload())
            .unwrap();
        assert_eq!(t.checksum(), want);
    }

    #[test]
    fn ipv6_fragments_cover_payload() {
        let s: Ipv6Addr = "fd00::1".parse().unwrap();
        let d: Ipv6Addr = "fd00::2".parse().unwrap();
        let payload = vec![0xabu8; 300];
        let p = udp_packet(s.into(), 5000, d.into(), 53, 0, &payload);
        let frags = fragment_ipv6(&p, 128, 0x1234);
        assert_eq!(frags.len(), 3);
        let total: usize = frags.iter().map(|f| f.len() - 48).sum();
        assert_eq!(total, p.len() - 40);
    }

    #[test]
    fn ipv4_fragment_offsets() {
        let p = udp_packet(v4("10.0.0.1"), 53, v4("10.0.0.2"), 4000, 99, &[1u8; 300]);
        let frags = fragment_ipv4(&p, 100);
        assert_eq!(frags.len(), 4);
        for (i, f) in frags.iter().enumerate() {
            assert_eq!(inet_checksum(&f[..20]), 0);
            let ff = u16::from_be_bytes([f[6], f[7]]);
            assert_eq!(ff & 0x1fff, (i * 12) as u16);
            assert_eq!(ff & 0x2000 != 0, i < 3);
        }
    }
}
