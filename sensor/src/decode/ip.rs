//! IPv4/IPv6 with etherparse's lax slicing (copes with snaplen-truncated packets), fragment
//! detection, and the transport layer.

use super::{tunnel, Context, Decoded, DropReason, Fragment, Packet, Tcp, Transport, Udp};
use etherparse::{LaxIpSlice, TcpSlice, UdpSlice};
use std::net::IpAddr;

pub(super) fn decode_ip(b: &[u8], ctx: Context) -> Decoded<'_> {
    let ip = match LaxIpSlice::from_slice(b) {
        Ok((ip, _ext_err)) => ip,
        Err(etherparse::err::ip::LaxHeaderSliceError::Len(_)) => {
            return Decoded::Drop(DropReason::Truncated)
        }
        Err(_) => return Decoded::Drop(DropReason::BadIpHeader),
    };
    let src = ip.source_addr();
    let dst = ip.destination_addr();
    let payload = ip.payload();
    let proto = payload.ip_number.0;
    let captured = payload.payload;
    // Lengths from the headers, not the capture: bytes count what was on the wire.
    let (ip_len, header_len) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let hl = u32::from(h.ihl()) * 4;
            let total = u32::from(h.total_len());
            if total < hl {
                return Decoded::Drop(DropReason::BadIpHeader);
            }
            (total, hl)
        }
        LaxIpSlice::Ipv6(v6) => {
            let plen = u32::from(v6.header().payload_length());
            let ext_len = v6.extensions().slice().len() as u32;
            let total = if plen == 0 {
                // Jumbogram or unset: fall back to what was captured.
                40 + b.len().saturating_sub(40) as u32
            } else {
                40 + plen
            };
            (total, 40 + ext_len)
        }
    };
    let payload_len = ip_len.saturating_sub(header_len);

    if payload.fragmented {
        return fragment(
            &ip,
            b,
            ctx,
            src,
            dst,
            proto,
            header_len,
            captured,
            payload_len,
        );
    }
    decode_transport(ctx, src, dst, proto, ip_len, captured, payload_len)
}

#[allow(clippy::too_many_arguments)]
fn fragment<'a>(
    ip: &LaxIpSlice<'a>,
    whole: &[u8],
    ctx: Context,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    header_len: u32,
    data: &'a [u8],
    data_len: u32,
) -> Decoded<'a> {
    let (id, offset, more, header_len) = match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                u32::from(h.identification()),
                u32::from(h.fragments_offset().value()) * 8,
                h.more_fragments(),
                header_len,
            )
        }
        LaxIpSlice::Ipv6(_) => {
            let Some((id, off, more)) = ipv6_fragment_header(whole) else {
                return Decoded::Drop(DropReason::BadIpHeader);
            };
            // The reassembled datagram keeps the unfragmentable headers; the fragment
            // header itself (8 bytes) goes away.
            (id, off, more, header_len.saturating_sub(8))
        }
    };
    Decoded::Fragment(Fragment {
        ctx,
        src,
        dst,
        proto,
        id,
        offset,
        more,
        header_len,
        data,
        data_len,
    })
}

/// Finds the IPv6 Fragment header by walking the extension chain with every length checked
/// against the captured bytes. (etherparse's extension iterator can read past the validated
/// part of the chain on crafted input — found by fuzzing — so it is not used here.)
/// Returns (identification, offset in bytes, more fragments).
fn ipv6_fragment_header(b: &[u8]) -> Option<(u32, u32, bool)> {
    let mut next = *b.get(6)?;
    let mut off = 40usize;
    // Bounded: at most 16 extension headers are followed.
    for _ in 0..16 {
        match next {
            44 => {
                let h = b.get(off..off + 8)?;
                let frag = u16::from_be_bytes([h[2], h[3]]);
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                return Some((id, u32::from(frag >> 3) * 8, frag & 1 == 1));
            }
            0 | 43 | 60 => {
                let len = (usize::from(*b.get(off + 1)?) + 1) * 8;
                next = *b.get(off)?;
                off = off.checked_add(len)?;
            }
            51 => {
                let len = (usize::from(*b.get(off + 1)?) + 2) * 4;
                next = *b.get(off)?;
                off = off.checked_add(len)?;
            }
            _ => return None,
        }
    }
    None
}

/// Decodes the transport layer of an IP datagram (also used for reassembled datagrams).
/// `payload` is what was captured, `payload_len` what the IP header says.
pub fn decode_transport(
    ctx: Context,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ip_len: u32,
    payload: &[u8],
    payload_len: u32,
) -> Decoded<'_> {
    let transport = match proto {
        6 => {
            let tcp = match TcpSlice::from_slice(payload) {
                Ok(t) => t,
                Err(etherparse::err::tcp::HeaderSliceError::Len(_)) => {
                    return Decoded::Drop(DropReason::Truncated)
                }
                Err(_) => return Decoded::Drop(DropReason::BadTransport),
            };
            let hlen = tcp.header_slice().len() as u32;
            let flags = tcp.header_slice().get(13).copied().unwrap_or(0);
            Transport::Tcp(Tcp {
                sport: tcp.source_port(),
                dport: tcp.destination_port(),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags,
                payload: tcp.payload(),
                payload_len: payload_len.saturating_sub(hlen),
            })
        }
        17 => {
            let udp = match UdpSlice::from_slice_lax(payload) {
                Ok(u) => u,
                Err(_) => return Decoded::Drop(DropReason::Truncated),
            };
            let ulen = u32::from(udp.length());
            // UDP length disagreeing with IP's: trust the smaller sane one.
            let plen = if ulen >= 8 && ulen <= payload_len {
                ulen - 8
            } else {
                payload_len.saturating_sub(8)
            };
            let u = Udp {
                sport: udp.source_port(),
                dport: udp.destination_port(),
                payload: udp.payload(),
                payload_len: plen,
            };
            if let Some(inner) = tunnel::udp_tunnel(ctx, src, dst, ip_len, &u) {
                return inner;
            }
            Transport::Udp(u)
        }
        1 | 58 => match payload.get(..2) {
            Some(h) => Transport::Icmp {
                icmp_type: h[0],
                code: h[1],
            },
            None => return Decoded::Drop(DropReason::Truncated),
        },
        47 => return tunnel::gre(payload, ctx),
        4 | 41 => {
            // IP-in-IP / 6in4.
            let mut inner = ctx;
            inner.tunnel_depth += 1;
            if inner.tunnel_depth > super::MAX_TUNNEL_DEPTH {
                return Decoded::Drop(DropReason::TunnelDepth);
            }
            return decode_ip(payload, inner);
        }
        _ => Transport::Other,
    };
    Decoded::Packet(Packet {
        ctx,
        src,
        dst,
        proto,
        ip_len,
        transport,
    })
}
