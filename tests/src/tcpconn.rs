//! A TCP connection model that emits IP packets with consistent sequence and acknowledgement
//! numbers: handshake, data (segmented by MSS, acknowledged), FIN or RST closes.

use crate::pkt::{self, tcpflags::*, TcpFields};
use std::net::IpAddr;

/// One emitted packet of a connection.
#[derive(Clone, Debug)]
pub struct Seg {
    /// Sent by the client (the connection's initiator).
    pub from_client: bool,
    /// The IP packet.
    pub ip: Vec<u8>,
    /// Delay to apply before this packet (ns), as suggested by the model (0 = back-to-back).
    pub delay_ns: u64,
}

#[derive(Clone, Debug)]
struct Side {
    ip: IpAddr,
    port: u16,
    /// Next sequence number this side sends.
    next_seq: u32,
    /// Whether this side has seen the peer's SYN (so it can acknowledge).
    knows_peer: bool,
    ip_id: u16,
    /// Window in SYN / SYN-ACK (unscaled) and afterwards (scaled by 2^7, as negotiated).
    syn_window: u16,
    window: u16,
}

/// A TCP connection between a client and a server.
#[derive(Clone, Debug)]
pub struct TcpConn {
    c: Side,
    s: Side,
    pub mss: usize,
    /// Round-trip time used for delays between a packet and its answer.
    pub rtt_ns: u64,
}

impl TcpConn {
    /// A connection not yet opened. `cisn`/`sisn` are the initial sequence numbers.
    pub fn new(client: (IpAddr, u16), server: (IpAddr, u16), cisn: u32, sisn: u32) -> Self {
        TcpConn {
            c: Side {
                ip: client.0,
                port: client.1,
                next_seq: cisn,
                knows_peer: false,
                ip_id: (cisn >> 16) as u16,
                syn_window: 64240,
                window: 502,
            },
            s: Side {
                ip: server.0,
                port: server.1,
                next_seq: sisn,
                knows_peer: false,
                ip_id: (sisn >> 16) as u16,
                syn_window: 65160,
                window: 509,
            },
            mss: 1448,
            rtt_ns: 20_000_000,
        }
    }

    /// A connection already established (for mid-stream captures: no handshake will be seen).
    pub fn established(client: (IpAddr, u16), server: (IpAddr, u16), cseq: u32, sseq: u32) -> Self {
        let mut t = Self::new(client, server, cseq, sseq);
        t.c.knows_peer = true;
        t.s.knows_peer = true;
        t
    }

    pub fn client(&self) -> (IpAddr, u16) {
        (self.c.ip, self.c.port)
    }

    pub fn server(&self) -> (IpAddr, u16) {
        (self.s.ip, self.s.port)
    }

    fn emit(
        &mut self,
        from_client: bool,
        flags: u8,
        payload: &[u8],
        options: Vec<u8>,
        delay: u64,
    ) -> Seg {
        let (me, peer) = if from_client {
            (&mut self.c, &self.s)
        } else {
            (&mut self.s, &self.c)
        };
        let mut flags = flags;
        let ack = if me.knows_peer && flags & RST == 0 || flags & ACK != 0 {
            flags |= ACK;
            peer.next_seq
        } else {
            0
        };
        let f = TcpFields {
            sport: me.port,
            dport: peer.port,
            seq: me.next_seq,
            ack: if flags & ACK != 0 { ack } else { 0 },
            flags,
            window: if flags & RST != 0 && flags & ACK == 0 {
                0
            } else if flags & SYN != 0 {
                me.syn_window
            } else {
                me.window
            },
            options,
        };
        let seg = pkt::tcp_segment(me.ip, peer.ip, &f, payload);
        let ip = pkt::ip_packet(me.ip, peer.ip, pkt::PROTO_TCP, me.ip_id, &seg);
        me.ip_id = me.ip_id.wrapping_add(1);
        let mut consumed = payload.len() as u32;
        if flags & (SYN | FIN) != 0 {
            consumed += 1;
        }
        me.next_seq = me.next_seq.wrapping_add(consumed);
        Seg {
            from_client,
            ip,
            delay_ns: delay,
        }
    }

    /// One segment with the given flags (ACK is added once the side has seen the peer) and
    /// payload; sequence numbers advance.
    pub fn segment(&mut self, from_client: bool, flags: u8, payload: &[u8]) -> Seg {
        self.emit(from_client, flags, payload, vec![], 0)
    }

    /// Client SYN (with MSS / window-scale / SACK options).
    pub fn syn(&mut self) -> Seg {
        let o = pkt::syn_options(1460, 7);
        self.emit(true, SYN, &[], o, 0)
    }

    /// A retransmission of the client SYN (same sequence number), `after_ns` later.
    pub fn syn_retransmit(&mut self, after_ns: u64) -> Seg {
        self.c.next_seq = self.c.next_seq.wrapping_sub(1);
        let o = pkt::syn_options(1460, 7);
        self.emit(true, SYN, &[], o, after_ns)
    }

    /// Server SYN-ACK.
    pub fn syn_ack(&mut self) -> Seg {
        self.s.knows_peer = true;
        let o = pkt::syn_options(1460, 7);
        let d = self.rtt_ns;
        self.emit(false, SYN | ACK, &[], o, d)
    }

    /// A bare ACK from one side.
    pub fn ack(&mut self, from_client: bool) -> Seg {
        if from_client {
            self.c.knows_peer = true;
        }
        self.emit(from_client, ACK, &[], vec![], 50_000)
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Seg> {
        let a = self.syn();
        let b = self.syn_ack();
        let mut c = self.ack(true);
        c.delay_ns = 100_000;
        vec![a, b, c]
    }

    /// One data segment (PSH|ACK) of at most MSS bytes, no acknowledgement from the peer.
    pub fn data_seg(&mut self, from_client: bool, payload: &[u8]) -> Seg {
        self.emit(from_client, PSH | ACK, payload, vec![], 200_000)
    }

    /// `data` from one side cut into MSS-sized segments; the peer ACKs every second segment
    /// and the last one.
    pub fn send(&mut self, from_client: bool, data: &[u8]) -> Vec<Seg> {
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = data.chunks(self.mss).collect();
        let n = chunks.len();
        for (i, ch) in chunks.into_iter().enumerate() {
            let last = i + 1 == n;
            let flags = if last { PSH | ACK } else { ACK };
            let delay = if i == 0 { self.rtt_ns / 2 } else { 120_000 };
            out.push(self.emit(from_client, flags, ch, vec![], delay));
            if i % 2 == 1 || last {
                out.push(self.emit(!from_client, ACK, &[], vec![], 40_000));
            }
        }
        out
    }

    /// Like [`send`](Self::send) but with explicit segment boundaries (no coalescing): each
    /// element of `pieces` is one segment, and the peer ACKs each.
    pub fn send_pieces(&mut self, from_client: bool, pieces: &[&[u8]]) -> Vec<Seg> {
        let mut out = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            assert!(p.len() <= self.mss, "piece larger than MSS");
            let delay = if i == 0 { self.rtt_ns / 2 } else { 150_000 };
            out.push(self.emit(from_client, PSH | ACK, p, vec![], delay));
            out.push(self.emit(!from_client, ACK, &[], vec![], 40_000));
        }
        out
    }

    /// Request from the client, then response from the server.
    pub fn exchange(&mut self, request: &[u8], response: &[u8]) -> Vec<Seg> {
        let mut v = self.send(true, request);
        v.extend(self.send(false, response));
        v
    }

    /// A FIN (with ACK when the side has seen the peer, bare FIN otherwise).
    pub fn fin(&mut self, from_client: bool) -> Seg {
        self.emit(from_client, FIN, &[], vec![], 1_000_000)
    }

    /// Orderly close started by `client_first`'s side: FIN, ACK, FIN, ACK.
    pub fn close(&mut self, client_first: bool) -> Vec<Seg> {
        let a = self.fin(client_first);
        let b = self.ack(!client_first);
        let mut c = self.fin(!client_first);
        c.delay_ns = 200_000;
        let d = self.ack(client_first);
        vec![a, b, c, d]
    }

    /// A reset. `with_ack` sets ACK (RST|ACK) with the peer's next sequence number.
    pub fn rst(&mut self, from_client: bool, with_ack: bool) -> Seg {
        let flags = if with_ack { RST | ACK } else { RST };
        self.emit(from_client, flags, &[], vec![], 500_000)
    }

    /// The server's answer to a SYN on a closed port: RST|ACK, seq 0, ack = client ISN + 1.
    pub fn reject(&mut self) -> Seg {
        self.s.next_seq = 0;
        let d = self.rtt_ns;
        self.emit(false, RST | ACK, &[], vec![], d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkt::summarize;

    fn tcp_fields(ip: &[u8]) -> (u32, u32, u8) {
        let t = &ip[20..];
        (
            u32::from_be_bytes(t[4..8].try_into().unwrap()),
            u32::from_be_bytes(t[8..12].try_into().unwrap()),
            t[13],
        )
    }

    #[test]
    fn handshake_and_data_sequence_numbers() {
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let s: IpAddr = "10.0.0.2".parse().unwrap();
        let mut t = TcpConn::new((c, 40000), (s, 80), 1000, 5000);
        let h = t.handshake();
        assert_eq!(tcp_fields(&h[0].ip), (1000, 0, SYN));
        assert_eq!(tcp_fields(&h[1].ip), (5000, 1001, SYN | ACK));
        assert_eq!(tcp_fields(&h[2].ip), (1001, 5001, ACK));
        let d = t.send(true, &[7u8; 3000]);
        // 3 data segments (1448, 1448, 104), acks after the 2nd and 3rd.
        assert_eq!(d.len(), 5);
        assert_eq!(tcp_fields(&d[0].ip), (1001, 5001, ACK));
        assert_eq!(tcp_fields(&d[1].ip), (2449, 5001, ACK));
        assert_eq!(tcp_fields(&d[2].ip), (5001, 3897, ACK));
        assert_eq!(tcp_fields(&d[3].ip), (3897, 5001, PSH | ACK));
        assert_eq!(tcp_fields(&d[4].ip), (5001, 4001, ACK));
        let cl = t.close(true);
        assert_eq!(tcp_fields(&cl[0].ip), (4001, 5001, FIN | ACK));
        assert_eq!(tcp_fields(&cl[1].ip), (5001, 4002, ACK));
        assert_eq!(tcp_fields(&cl[2].ip), (5001, 4002, FIN | ACK));
        assert_eq!(tcp_fields(&cl[3].ip), (4002, 5002, ACK));
        assert_eq!(summarize(&cl[3].ip).ip_len, 40);
    }

    #[test]
    fn syn_then_fin_without_answer_has_no_ack() {
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let s: IpAddr = "10.0.0.2".parse().unwrap();
        let mut t = TcpConn::new((c, 40000), (s, 80), 1000, 5000);
        t.syn();
        let f = t.fin(true);
        assert_eq!(tcp_fields(&f.ip), (1001, 0, FIN));
        let r = t.rst(true, false);
        assert_eq!(tcp_fields(&r.ip).2, RST);
        let mut t2 = TcpConn::new((c, 40001), (s, 23), 77, 0);
        t2.syn();
        assert_eq!(tcp_fields(&t2.reject().ip), (0, 78, RST | ACK));
    }
}
