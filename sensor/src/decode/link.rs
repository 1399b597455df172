//! Link layers and the ethertype chain (VLAN/QinQ, MPLS, PPPoE) down to IP.

use super::{ip, Context, Decoded, DropReason};

/// Link types the sensor decodes (pcap LINKTYPE_/DLT_ values in [`LinkType::from_dlt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    Ethernet,
    /// BSD loopback: 4-byte address family in host byte order (DLT_NULL).
    Null,
    /// OpenBSD loopback: 4-byte address family in network byte order (DLT_LOOP).
    Loop,
    /// Raw IP, version from the first nibble (DLT_RAW 12/14, LINKTYPE_RAW 101).
    Raw,
    Ipv4,
    Ipv6,
    LinuxSll,
    LinuxSll2,
    /// PPP with the HDLC-like address/control bytes optional (DLT_PPP 9, PPP_SERIAL 50).
    Ppp,
    /// FDDI (DLT_FDDI 10): frame control, two MAC addresses, then 802.2 LLC/SNAP.
    Fddi,
}

impl LinkType {
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 | 50 => LinkType::Ppp,
            10 => LinkType::Fddi,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

pub(super) const ETH_IPV4: u16 = 0x0800;
pub(super) const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD1: u16 = 0x9100;
const ETH_QINQ_OLD2: u16 = 0x9200;
const ETH_MPLS_UC: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub(super) fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

pub(super) fn decode_link(link: LinkType, frame: &[u8], ctx: Context) -> Decoded<'_> {
    match link {
        LinkType::Ethernet => ethernet(frame, ctx),
        LinkType::Raw => raw_ip(frame, ctx),
        LinkType::Ipv4 | LinkType::Ipv6 => ip::decode_ip(frame, ctx),
        LinkType::Null | LinkType::Loop => {
            let Some(af) = frame.get(..4) else {
                return Decoded::Drop(DropReason::Truncated);
            };
            let af = [af[0], af[1], af[2], af[3]];
            // DLT_NULL is host byte order of the capturing machine: accept either order.
            let family = if link == LinkType::Loop {
                u32::from_be_bytes(af)
            } else {
                let le = u32::from_le_bytes(af);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes(af)
                }
            };
            match family {
                // AF_INET everywhere; AF_INET6 differs per BSD (24, 28, 30), Linux 10.
                2 | 10 | 24 | 28 | 30 => raw_ip(&frame[4..], ctx),
                _ => Decoded::NonIp(ctx.outer),
            }
        }
        LinkType::LinuxSll => {
            // 16-byte header, protocol at 14.
            match be16(frame, 14) {
                Some(proto) => ethertype(proto, &frame[16..], ctx),
                None => Decoded::Drop(DropReason::Truncated),
            }
        }
        LinkType::LinuxSll2 => {
            // 20-byte header, protocol first.
            match (be16(frame, 0), frame.get(20..)) {
                (Some(proto), Some(rest)) => ethertype(proto, rest, ctx),
                _ => Decoded::Drop(DropReason::Truncated),
            }
        }
        LinkType::Ppp => ppp(frame, ctx),
        // Frame control (1 byte) and destination and source MACs (6 each).
        LinkType::Fddi => match frame.get(13..) {
            Some(rest) => llc_snap(rest, ctx),
            None => Decoded::Drop(DropReason::Truncated),
        },
    }
}

/// 802.2 LLC: IP rides in SNAP (DSAP/SSAP 0xAA, UI control, then a 3-byte OUI and the
/// ethertype); other SAPs (STP, NetBIOS...) are not IP.
fn llc_snap(b: &[u8], ctx: Context) -> Decoded<'_> {
    match (b.get(..3), be16(b, 6), b.get(8..)) {
        (Some([0xaa, 0xaa, 0x03]), Some(et), Some(rest)) => ethertype(et, rest, ctx),
        (Some([0xaa, 0xaa, 0x03]), _, _) => Decoded::Drop(DropReason::Truncated),
        (Some(_), _, _) => Decoded::NonIp(ctx.outer),
        (None, _, _) => Decoded::Drop(DropReason::Truncated),
    }
}

/// Raw IP: version from the first nibble.
pub(super) fn raw_ip(b: &[u8], ctx: Context) -> Decoded<'_> {
    match b.first().map(|v| v >> 4) {
        Some(4) | Some(6) => ip::decode_ip(b, ctx),
        Some(_) => Decoded::Drop(DropReason::BadIpHeader),
        None => Decoded::Drop(DropReason::Truncated),
    }
}

/// Ethernet II (with VLAN tags following).
pub(super) fn ethernet(frame: &[u8], ctx: Context) -> Decoded<'_> {
    match (be16(frame, 12), frame.get(14..)) {
        (Some(et), Some(rest)) if et >= 0x0600 => ethertype(et, rest, ctx),
        // 802.3 length field: 802.2 LLC follows (IP only inside SNAP; STP, CDP... are not).
        (Some(_), Some(rest)) => llc_snap(rest, ctx),
        _ => Decoded::Drop(DropReason::Truncated),
    }
}

/// Follows an ethertype chain to IP.
pub(super) fn ethertype(mut et: u16, mut b: &[u8], mut ctx: Context) -> Decoded<'_> {
    // Bounded: each round consumes at least 4 bytes of the frame.
    loop {
        match et {
            ETH_IPV4 | ETH_IPV6 => return ip::decode_ip(b, ctx),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD1 | ETH_QINQ_OLD2 => {
                let (Some(tci), Some(next)) = (be16(b, 0), be16(b, 2)) else {
                    return Decoded::Drop(DropReason::Truncated);
                };
                ctx.vlan.push(tci & 0x0fff);
                et = next;
                b = &b[4..];
            }
            ETH_MPLS_UC | ETH_MPLS_MC => return mpls(b, ctx),
            ETH_PPPOE_SESSION => {
                // 6-byte PPPoE header, then a 2-byte PPP protocol.
                let Some(rest) = b.get(6..) else {
                    return Decoded::Drop(DropReason::Truncated);
                };
                return ppp_protocol(rest, ctx);
            }
            _ => return Decoded::NonIp(ctx.outer),
        }
    }
}

/// MPLS label stack; the payload is guessed from its first nibble (IP) or taken as Ethernet
/// (pseudowire, after an optional all-zero control word).
fn mpls(mut b: &[u8], ctx: Context) -> Decoded<'_> {
    loop {
        let Some(entry) = be32(b, 0) else {
            return Decoded::Drop(DropReason::Truncated);
        };
        b = &b[4..];
        if entry & 0x100 != 0 {
            break;
        }
    }
    match b.first().map(|v| v >> 4) {
        Some(4) | Some(6) => ip::decode_ip(b, ctx),
        Some(0) => match b.get(4..) {
            Some(eth) => ethernet(eth, ctx),
            None => Decoded::Drop(DropReason::Truncated),
        },
        Some(_) => ethernet(b, ctx),
        None => Decoded::Drop(DropReason::Truncated),
    }
}

/// PPP framing: optional 0xff 0x03 address/control, then the protocol.
pub(super) fn ppp(b: &[u8], ctx: Context) -> Decoded<'_> {
    let b = if b.starts_with(&[0xff, 0x03]) {
        &b[2..]
    } else {
        b
    };
    ppp_protocol(b, ctx)
}

fn ppp_protocol(b: &[u8], ctx: Context) -> Decoded<'_> {
    // Protocol field may be compressed to one byte (odd value).
    let (proto, rest) = match b.first() {
        Some(&p) if p & 1 == 1 => (u16::from(p), &b[1..]),
        Some(_) => match be16(b, 0) {
            Some(p) => (p, &b[2..]),
            None => return Decoded::Drop(DropReason::Truncated),
        },
        None => return Decoded::Drop(DropReason::Truncated),
    };
    match proto {
        0x0021 | 0x0057 => raw_ip(rest, ctx),
        _ => Decoded::NonIp(ctx.outer),
    }
}
