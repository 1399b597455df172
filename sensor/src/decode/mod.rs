//! Packet decoding: link layer → VLAN/MPLS/PPPoE → tunnels (GRE, ERSPAN I/II/III, VXLAN,
//! Geneve, GRE-in-UDP, Teredo) → IPv4/IPv6 (etherparse) → TCP/UDP/ICMP.
//!
//! Decoding never panics on input: every read is bounds-checked and a packet that cannot be
//! decoded comes back as a [`DropReason`] to be counted. Fragments come back as
//! [`Fragment`]s for the worker's [`frag::Reassembler`]; the reassembled datagram is decoded
//! again from the transport layer with [`decode_transport`].

pub mod frag;
mod ip;
mod link;
mod tunnel;

use analyzers::Vlans;
use std::net::IpAddr;

pub use ip::decode_transport;
pub use link::LinkType;

/// How deep tunnels may nest before the packet is dropped (counted `tunnel_depth`).
pub const MAX_TUNNEL_DEPTH: u8 = 4;

/// Why a packet was not decoded. The metric label is [`DropReason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Captured bytes end inside a header.
    Truncated,
    /// IP header fields that cannot be right (version, IHL, lengths).
    BadIpHeader,
    /// TCP/UDP header that cannot be right (data offset, UDP length).
    BadTransport,
    /// A tunnel header that cannot be right or an unknown tunnel payload.
    BadTunnel,
    /// Tunnels nested deeper than [`MAX_TUNNEL_DEPTH`].
    TunnelDepth,
    /// The capture's link type is not decoded.
    UnsupportedLink,
    /// Fragment problems: overlap conflict, oversize datagram, reassembly table full, timeout.
    FragOverlap,
    FragTooBig,
    FragTableFull,
    FragTimeout,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::Truncated,
        DropReason::BadIpHeader,
        DropReason::BadTransport,
        DropReason::BadTunnel,
        DropReason::TunnelDepth,
        DropReason::UnsupportedLink,
        DropReason::FragOverlap,
        DropReason::FragTooBig,
        DropReason::FragTableFull,
        DropReason::FragTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadTransport => "bad_transport",
            DropReason::BadTunnel => "bad_tunnel",
            DropReason::TunnelDepth => "tunnel_depth",
            DropReason::UnsupportedLink => "unsupported_link",
            DropReason::FragOverlap => "frag_overlap",
            DropReason::FragTooBig => "frag_too_big",
            DropReason::FragTableFull => "frag_table_full",
            DropReason::FragTimeout => "frag_timeout",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The transport layer of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    /// ICMP/ICMPv6: type and code (Zeek's orig_p/resp_p).
    Icmp {
        icmp_type: u8,
        code: u8,
    },
    /// Another IP protocol (ESP, SCTP, GRE that is not decapsulated...).
    Other,
}

impl Transport<'_> {
    /// The same headers carrying `payload` instead (TCP and UDP; the others carry none).
    pub fn with_payload(self, payload: &[u8]) -> Transport<'_> {
        match self {
            Transport::Tcp(t) => Transport::Tcp(Tcp { payload, ..t }),
            Transport::Udp(u) => Transport::Udp(Udp { payload, ..u }),
            Transport::Icmp { icmp_type, code } => Transport::Icmp { icmp_type, code },
            Transport::Other => Transport::Other,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Payload bytes actually captured (may be shorter than `payload_len`).
    pub payload: &'a [u8],
    /// Payload length according to the IP header.
    pub payload_len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
    pub payload_len: u32,
}

pub mod tcpflags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// A UDP layer that carried a tunnel (VXLAN, Geneve, Teredo, GRE-in-UDP): its own flow is
/// tracked too, as Zeek logs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterUdp {
    pub vlan: Vlans,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub ip_len: u32,
}

/// The UDP layers that carried tunnels, outermost first. Two are kept: a tunnel inside a
/// tunnel (VXLAN in Geneve, as cloud mirroring nests them) logs both UDP flows; a third UDP
/// layer is still decoded through, but its own flow is not logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelUdps([Option<OuterUdp>; 2]);

impl TunnelUdps {
    /// Adds the next (inner) layer, if there is room.
    pub fn push(&mut self, o: OuterUdp) {
        if let Some(slot) = self.0.iter_mut().find(|s| s.is_none()) {
            *slot = Some(o);
        }
    }

    /// Outermost first.
    pub fn iter(&self) -> impl Iterator<Item = &OuterUdp> {
        self.0.iter().flatten()
    }

    pub fn first(&self) -> Option<&OuterUdp> {
        self.0[0].as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }
}

/// Where a packet sits: VLAN tags and tunnels around the innermost IP header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub vlan: Vlans,
    pub tunnel_depth: u8,
    pub outer: TunnelUdps,
}

/// A decoded IP packet (innermost IP layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub ctx: Context,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// IP total length from the header (IPv6: 40 + payload length), not the captured length.
    pub ip_len: u32,
    pub transport: Transport<'a>,
}

impl<'a> Packet<'a> {
    /// The transport payload bytes that were captured.
    pub fn payload(&self) -> &'a [u8] {
        match self.transport {
            Transport::Tcp(t) => t.payload,
            Transport::Udp(u) => u.payload,
            _ => &[],
        }
    }

    /// The headers a flow worker reads, without payload bytes and tunnel layers, to be
    /// stored apart from the frame (see [`Detached`]).
    pub fn detached(&self) -> Detached {
        Detached {
            vlan: self.ctx.vlan,
            tunnel_depth: self.ctx.tunnel_depth,
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            ip_len: self.ip_len,
            transport: self.transport.with_payload(&[]),
        }
    }
}

/// A packet's headers as they travel to a worker in a batch: without the payload (copied
/// apart, and only when a worker reads it) and without the tunnel layers (the dispatcher
/// tracks those flows): 96 bytes in a batch item instead of a [`Packet`]'s 208.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detached {
    vlan: Vlans,
    tunnel_depth: u8,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ip_len: u32,
    transport: Transport<'static>,
}

impl Detached {
    /// The packet again, with `payload` attached (tunnel layers left empty).
    pub fn with_payload(self, payload: &[u8]) -> Packet<'_> {
        Packet {
            ctx: Context {
                vlan: self.vlan,
                tunnel_depth: self.tunnel_depth,
                outer: TunnelUdps::default(),
            },
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            ip_len: self.ip_len,
            transport: self.transport.with_payload(payload),
        }
    }
}

/// An IP fragment waiting for reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub ctx: Context,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// IPv4 identification or IPv6 fragment header identification.
    pub id: u32,
    /// Offset of this fragment's data in the datagram payload, bytes.
    pub offset: u32,
    pub more: bool,
    /// Length of the IP header(s) before the fragmentable part (used for the datagram's
    /// IP length once reassembled).
    pub header_len: u32,
    pub data: &'a [u8],
    /// The fragment's data length according to its header (data may be shorter if truncated).
    pub data_len: u32,
}

/// What one frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Packet(Packet<'a>),
    Fragment(Fragment<'a>),
    /// A frame that carries no IP (ARP, LLDP, STP...): counted, not an error. Inside a UDP
    /// tunnel, the tunnel's own flow still counts.
    NonIp(TunnelUdps),
    Drop(DropReason),
    /// The payload of a UDP tunnel failed to decode: the drop is counted, and the tunnel's
    /// own UDP flows still count (they were well-formed).
    TunnelDrop(DropReason, TunnelUdps),
}

/// Decodes one captured frame.
pub fn decode(link: LinkType, frame: &[u8]) -> Decoded<'_> {
    link::decode_link(link, frame, Context::default())
}

#[cfg(test)]
mod tests;
