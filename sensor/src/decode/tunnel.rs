//! Tunnel decapsulation: GRE (incl. PPTP enhanced GRE), ERSPAN I/II/III, VXLAN, Geneve,
//! GRE-in-UDP and Teredo. etherparse has none of these; the headers are small and fixed.

use super::link::{be16, ethernet, ethertype, ppp, raw_ip, ETH_IPV4, ETH_IPV6};
use super::{Context, Decoded, DropReason, OuterUdp, Udp, MAX_TUNNEL_DEPTH};
use std::net::IpAddr;

pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
pub const GRE_IN_UDP_PORT: u16 = 4754;

const GRE_TEB: u16 = 0x6558;
const GRE_ERSPAN_2: u16 = 0x88be;
const GRE_ERSPAN_3: u16 = 0x22eb;
const GRE_PPP: u16 = 0x880b;

fn deeper(mut ctx: Context) -> Result<Context, DropReason> {
    ctx.tunnel_depth += 1;
    if ctx.tunnel_depth > MAX_TUNNEL_DEPTH {
        Err(DropReason::TunnelDepth)
    } else {
        Ok(ctx)
    }
}

/// Inner frames of a tunnel keep only VLAN tags found inside; the outer ones described the
/// transport network, not the tunneled hosts (Zeek does the same).
fn inner_ctx(ctx: Context) -> Result<Context, DropReason> {
    let mut c = deeper(ctx)?;
    c.vlan = Default::default();
    Ok(c)
}

/// GRE payload of an IP packet (protocol 47).
pub(super) fn gre(b: &[u8], ctx: Context) -> Decoded<'_> {
    let (Some(flags), Some(proto)) = (be16(b, 0), be16(b, 2)) else {
        return Decoded::Drop(DropReason::Truncated);
    };
    let version = flags & 0x7;
    let mut len = 4usize;
    let seq_present = flags & 0x1000 != 0;
    match version {
        0 => {
            if flags & 0x8000 != 0 {
                len += 4; // checksum + reserved
            }
            if flags & 0x2000 != 0 {
                len += 4; // key
            }
            if seq_present {
                len += 4;
            }
        }
        1 => {
            // PPTP enhanced GRE: key always, sequence and ack optional.
            len += 4;
            if seq_present {
                len += 4;
            }
            if flags & 0x0080 != 0 {
                len += 4;
            }
        }
        _ => return Decoded::Drop(DropReason::BadTunnel),
    }
    let Some(rest) = b.get(len..) else {
        return Decoded::Drop(DropReason::Truncated);
    };
    let ctx = match inner_ctx(ctx) {
        Ok(c) => c,
        Err(r) => return Decoded::Drop(r),
    };
    match proto {
        ETH_IPV4 | ETH_IPV6 => raw_ip(rest, ctx),
        GRE_TEB => ethernet(rest, ctx),
        GRE_ERSPAN_2 => {
            // ERSPAN type I has no sequence number and no ERSPAN header; type II has both.
            if seq_present {
                match rest.get(8..) {
                    Some(eth) => ethernet(eth, ctx),
                    None => Decoded::Drop(DropReason::Truncated),
                }
            } else {
                ethernet(rest, ctx)
            }
        }
        GRE_ERSPAN_3 => {
            // 12-byte header; O flag (bit 0 of byte 11) adds an 8-byte platform subheader.
            let Some(&b11) = rest.get(11) else {
                return Decoded::Drop(DropReason::Truncated);
            };
            let hlen = if b11 & 0x01 != 0 { 20 } else { 12 };
            match rest.get(hlen..) {
                Some(eth) => ethernet(eth, ctx),
                None => Decoded::Drop(DropReason::Truncated),
            }
        }
        GRE_PPP => ppp(rest, ctx),
        other => ethertype(other, rest, ctx),
    }
}

/// UDP-borne tunnels, by well-known port. `None`: not a tunnel (or not recognisably one), so
/// the UDP packet stands on its own.
pub(super) fn udp_tunnel<'a>(
    ctx: Context,
    src: IpAddr,
    dst: IpAddr,
    ip_len: u32,
    u: &Udp<'a>,
) -> Option<Decoded<'a>> {
    let is = |port| u.dport == port || u.sport == port;
    // DNS is never a tunnel, whatever the other port (a water-torture flood could pick
    // tunnel ports to hide its queries in `bad_tunnel`).
    if is(53) {
        return None;
    }
    let outer = OuterUdp {
        vlan: ctx.vlan,
        src,
        dst,
        sport: u.sport,
        dport: u.dport,
        ip_len,
    };
    let mut with_outer = ctx;
    with_outer.outer.push(outer);
    let inner = udp_tunnel_payload(with_outer, u)?;
    // A bad payload loses the inner packet, not the tunnel's own flows.
    Some(match inner {
        Decoded::Drop(r) => Decoded::TunnelDrop(r, with_outer.outer),
        d => d,
    })
}

/// The inside of a UDP tunnel packet (`None`: not a tunnel after all).
fn udp_tunnel_payload<'a>(with_outer: Context, u: &Udp<'a>) -> Option<Decoded<'a>> {
    let p = u.payload;
    if u.dport == VXLAN_PORT {
        // Flags byte must have the I bit; 8-byte header.
        if p.len() < 8 || p[0] & 0x08 == 0 {
            return None;
        }
        return Some(match inner_ctx(with_outer) {
            Ok(c) => ethernet(&p[8..], c),
            Err(r) => Decoded::Drop(r),
        });
    }
    if u.dport == GENEVE_PORT {
        let ver = p.first()? >> 6;
        if ver != 0 {
            return None;
        }
        let hlen = 8 + usize::from(p[0] & 0x3f) * 4;
        let proto = be16(p, 2)?;
        let inner = p.get(hlen..)?;
        return Some(match inner_ctx(with_outer) {
            Ok(c) => match proto {
                GRE_TEB => ethernet(inner, c),
                ETH_IPV4 | ETH_IPV6 => raw_ip(inner, c),
                _ => Decoded::Drop(DropReason::BadTunnel),
            },
            Err(r) => Decoded::Drop(r),
        });
    }
    if u.dport == GRE_IN_UDP_PORT {
        return Some(match deeper(with_outer) {
            // gre() itself adds a tunnel level; undo ours so GRE-in-UDP counts once.
            Ok(_) => gre(p, with_outer),
            Err(r) => Decoded::Drop(r),
        });
    }
    // Teredo: port 3544 talks to the server; relays and peers use any port, so any UDP
    // payload that is exactly one well-formed IPv6 packet is taken as Teredo (as Zeek's
    // protocol detection does).
    let inner = teredo_payload(p)?;
    Some(match inner_ctx(with_outer) {
        Ok(c) => raw_ip(inner, c),
        Err(r) => Decoded::Drop(r),
    })
}

/// Teredo (RFC 4380): optional authentication and origin indication headers, then an IPv6
/// packet whose payload length must match what is left (else it is plain UDP on 3544).
fn teredo_payload(mut p: &[u8]) -> Option<&[u8]> {
    if be16(p, 0)? == 0x0001 {
        let id_len = usize::from(*p.get(2)?);
        let au_len = usize::from(*p.get(3)?);
        p = p.get(4 + id_len + au_len + 9..)?;
    }
    if be16(p, 0)? == 0x0000 {
        p = p.get(8..)?;
    }
    if p.first()? >> 4 != 6 || p.len() < 40 {
        return None;
    }
    let plen = usize::from(be16(p, 4)?);
    (40 + plen == p.len()).then_some(p)
}
