//! Zeek's per-endpoint TCP states, history letters and `conn_state` (the vocabulary of
//! Zeek's `conn.log`, reimplemented from its documented semantics).

use crate::decode::tcpflags::*;
use analyzers::ConnState;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointState {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    /// Active without a SYN seen (connection picked up mid-stream).
    Partial,
    Established,
    Closed,
    Reset,
    /// Sent a FIN, then a RST (Zeek: RESET whose previous state is CLOSED). Counts as
    /// [`EndpointState::Reset`], except that a FIN from the peer afterwards turns it back into
    /// [`EndpointState::Closed`]: Zeek takes that as normal termination.
    ResetAfterFin,
}

impl EndpointState {
    /// Reset, whether or not a FIN came first.
    pub fn is_reset(self) -> bool {
        matches!(self, EndpointState::Reset | EndpointState::ResetAfterFin)
    }
}

/// Updates both endpoints for a TCP packet from `me` (the other is `peer`).
///
/// Zeek's rules around the close: a reset endpoint changes no more; a RST from an endpoint
/// that already sent its FIN is ignored when the peer has closed too (the FIN exchange was
/// complete); and when an endpoint that sent a FIN and then a RST sees the peer's FIN (sent from
/// an established or partial state), it counts as closed again, so the connection is `SF`.
pub fn tcp_transition(me: &mut EndpointState, peer: &mut EndpointState, flags: u8, len: u32) {
    use EndpointState::*;
    let before = *me;
    if before.is_reset() {
        return;
    }
    if flags & RST != 0 {
        *me = match before {
            Closed if *peer == Closed => Closed,
            Closed => ResetAfterFin,
            // FIN+RST in one packet before the connection is up: Zeek closes, then resets.
            Inactive | SynSent if flags & FIN != 0 => ResetAfterFin,
            _ => Reset,
        };
        return;
    }
    if flags & SYN != 0 {
        if flags & ACK != 0 {
            if matches!(*me, Inactive | Partial) {
                *me = SynAckSent;
            }
        } else if *me == Inactive {
            *me = SynSent;
        }
    } else if flags & FIN == 0 && (flags & ACK != 0 || len > 0) {
        match (*me, *peer) {
            (Inactive, _) => *me = Partial,
            (SynSent, SynAckSent) | (SynSent, Established) => {
                *me = Established;
                *peer = Established;
            }
            (SynAckSent, Established) | (SynAckSent, SynSent) if flags & ACK != 0 => {
                *me = Established;
            }
            _ => {}
        }
    }
    if flags & FIN != 0 {
        if matches!(before, Established | Partial) && *peer == ResetAfterFin {
            *peer = Closed;
        }
        *me = Closed;
    }
}

/// Zeek's `conn_state` for a TCP connection.
pub fn tcp_conn_state(
    os: EndpointState,
    rs: EndpointState,
    orig_size: u64,
    resp_size: u64,
    history: &str,
) -> ConnState {
    use EndpointState::*;
    let o_inactive = matches!(os, Inactive | Partial);
    let r_inactive = matches!(rs, Inactive | Partial);
    if rs.is_reset() {
        if matches!(os, SynSent | SynAckSent) || (os.is_reset() && orig_size == 0 && resp_size == 0)
        {
            ConnState::REJ
        } else if o_inactive {
            ConnState::RSTRH
        } else {
            ConnState::RSTR
        }
    } else if os.is_reset() {
        if r_inactive {
            if rstos0_history(history) {
                ConnState::RSTOS0
            } else {
                ConnState::OTH
            }
        } else {
            ConnState::RSTO
        }
    } else if rs == Closed && os == Closed {
        ConnState::SF
    } else if os == Closed {
        if r_inactive {
            ConnState::SH
        } else {
            ConnState::S2
        }
    } else if rs == Closed {
        if o_inactive {
            ConnState::SHR
        } else {
            ConnState::S3
        }
    } else if os == SynSent && rs == Inactive {
        ConnState::S0
    } else if os == Established && rs == Established {
        ConnState::S1
    } else {
        ConnState::OTH
    }
}

/// Zeek: `/\^?S[^HAFGIQ]*R.*/` — originator sent a SYN then a RST, with no reply.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        if c == 'R' {
            return true;
        }
        if "HAFGIQ".contains(c) {
            return false;
        }
    }
    false
}

/// Zeek's `conn_state` for UDP: which sides were active.
pub fn udp_conn_state(orig_active: bool, resp_active: bool) -> ConnState {
    match (orig_active, resp_active) {
        (true, true) => ConnState::SF,
        (true, false) => ConnState::S0,
        (false, true) => ConnState::SHR,
        (false, false) => ConnState::OTH,
    }
}

/// History letters seen, in order of first occurrence (upper case = originator). Stored
/// inline: no heap allocation per flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    letters: [u8; HISTORY_MAX],
    len: u8,
    /// Bitmask of (letter, direction) already recorded.
    seen: u32,
    /// Retransmission counts per direction, for Zeek's scaled repeats (1, 10, 100...).
    retrans: [u32; 2],
}

/// Longest history kept: each of 9 letters once per direction plus a few scaled repeats.
const HISTORY_MAX: usize = 24;

const LETTERS: &[u8] = b"SHADFRQIT^";

impl History {
    /// Records `letter` (upper-case form) for the originator (`orig`) or responder once.
    pub fn add(&mut self, letter: u8, orig: bool) {
        let Some(i) = LETTERS.iter().position(|&l| l == letter) else {
            return;
        };
        let bit = 1u32 << (i * 2 + usize::from(!orig));
        if self.seen & bit != 0 {
            return;
        }
        self.seen |= bit;
        self.push(letter, orig);
    }

    fn push(&mut self, letter: u8, orig: bool) {
        let n = usize::from(self.len);
        if n < HISTORY_MAX {
            self.letters[n] = if orig {
                letter
            } else {
                letter.to_ascii_lowercase()
            };
            self.len += 1;
        }
    }

    /// A retransmission: recorded at the 1st, 10th, 100th... occurrence, as Zeek does.
    pub fn retransmission(&mut self, orig: bool) {
        let n = &mut self.retrans[usize::from(!orig)];
        *n = n.saturating_add(1);
        let c = *n;
        if c == 1 || c == 10 || c == 100 || c == 1000 || c == 10_000 {
            self.push(b'T', orig);
        }
    }

    /// The roles were flipped at the start: history begins with `^`.
    pub fn flipped(&mut self) {
        if self.len == 0 {
            self.push(b'^', true);
        } else if self.letters[0] != b'^' && usize::from(self.len) < HISTORY_MAX {
            let n = usize::from(self.len);
            self.letters.copy_within(0..n, 1);
            self.letters[0] = b'^';
            self.len += 1;
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.letters()).unwrap_or("")
    }

    /// The letters as bytes (ASCII).
    pub fn letters(&self) -> &[u8] {
        self.letters
            .get(..usize::from(self.len))
            .unwrap_or_default()
    }
}

/// The history letter Zeek records for a TCP packet (None: nothing new to record).
pub fn tcp_history_letter(flags: u8, payload_len: u32) -> Option<u8> {
    let syn = flags & SYN != 0;
    let fin = flags & FIN != 0;
    let rst = flags & RST != 0;
    if syn && (fin || rst) {
        return Some(b'Q');
    }
    if fin && rst {
        return Some(b'I');
    }
    if syn {
        return Some(if flags & ACK != 0 { b'H' } else { b'S' });
    }
    if rst {
        return Some(b'R');
    }
    if fin {
        return Some(b'F');
    }
    if payload_len > 0 {
        return Some(b'D');
    }
    if flags & ACK != 0 {
        return Some(b'A');
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use EndpointState::*;

    fn run(pkts: &[(bool, u8, u32)]) -> ConnState {
        let (mut o, mut r) = (Inactive, Inactive);
        let mut h = History::default();
        let (mut os, mut rs) = (0u64, 0u64);
        for &(orig, flags, len) in pkts {
            if orig {
                tcp_transition(&mut o, &mut r, flags, len);
                os += u64::from(len);
            } else {
                tcp_transition(&mut r, &mut o, flags, len);
                rs += u64::from(len);
            }
            if let Some(l) = tcp_history_letter(flags, len) {
                h.add(l, orig);
            }
        }
        tcp_conn_state(o, r, os, rs, h.as_str())
    }

    #[test]
    fn zeek_states() {
        let syn = SYN;
        let synack = SYN | ACK;
        let ack = ACK;
        let fin = FIN | ACK;
        let rst = RST | ACK;
        let hs = [(true, syn, 0), (false, synack, 0), (true, ack, 0)];
        let mut sf = hs.to_vec();
        sf.extend([
            (true, ack, 10),
            (false, ack, 20),
            (true, fin, 0),
            (false, fin, 0),
        ]);
        assert_eq!(run(&sf), ConnState::SF);
        assert_eq!(run(&hs), ConnState::S1);
        assert_eq!(run(&[(true, syn, 0)]), ConnState::S0);
        assert_eq!(run(&[(true, syn, 0), (false, rst, 0)]), ConnState::REJ);
        let mut rsto = hs.to_vec();
        rsto.push((true, rst, 0));
        assert_eq!(run(&rsto), ConnState::RSTO);
        let mut rstr = hs.to_vec();
        rstr.push((false, rst, 0));
        assert_eq!(run(&rstr), ConnState::RSTR);
        assert_eq!(run(&[(true, syn, 0), (true, RST, 0)]), ConnState::RSTOS0);
        assert_eq!(run(&[(true, ack, 10), (false, ack, 10)]), ConnState::OTH);
        assert_eq!(run(&[(true, fin, 0)]), ConnState::SH);
        let mut s2 = hs.to_vec();
        s2.push((true, fin, 0));
        assert_eq!(run(&s2), ConnState::S2);
        let mut s3 = hs.to_vec();
        s3.push((false, fin, 0));
        assert_eq!(run(&s3), ConnState::S3);
        assert_eq!(run(&[(false, fin, 0)]), ConnState::SHR);
        assert_eq!(run(&[(true, ack, 5), (false, rst, 0)]), ConnState::RSTRH);
    }

    /// Zeek's close rules around a RST that follows a FIN.
    #[test]
    fn rst_after_fin() {
        let (syn, synack, ack) = (SYN, SYN | ACK, ACK);
        let fin = FIN | ACK;
        let hs = [
            (true, syn, 0),
            (false, synack, 0),
            (true, ack, 0),
            (true, ack, 10),
        ];
        let with = |tail: &[(bool, u8, u32)]| {
            let mut v = hs.to_vec();
            v.extend_from_slice(tail);
            run(&v)
        };
        // tls/irc-starttls.pcap: FIN, data back, RST, the peer's FIN, RST again: SF.
        assert_eq!(
            with(&[
                (true, fin, 0),
                (false, ack | PSH, 31),
                (true, RST, 0),
                (false, fin, 0),
                (true, RST, 0),
            ]),
            ConnState::SF
        );
        // Same from the responder's side.
        assert_eq!(
            with(&[(false, fin, 0), (false, RST, 0), (true, fin, 0)]),
            ConnState::SF
        );
        // FIN then RST with no FIN from the peer: still an abort.
        assert_eq!(with(&[(true, fin, 0), (true, RST, 0)]), ConnState::RSTO);
        assert_eq!(
            with(&[(true, fin, 0), (true, RST, 0), (false, ack, 5)]),
            ConnState::RSTO
        );
        // A RST after both FINs changes nothing.
        assert_eq!(
            with(&[(true, fin, 0), (false, fin, 0), (true, RST, 0)]),
            ConnState::SF
        );
        assert_eq!(
            with(&[(true, fin, 0), (false, fin, 0), (false, RST | ACK, 0)]),
            ConnState::SF
        );
        // FIN and RST in one packet is a RST (Zeek closes only on a FIN without RST): the
        // peer's FIN does not undo it.
        assert_eq!(
            with(&[(true, FIN | RST | ACK, 0), (false, fin, 0)]),
            ConnState::RSTO
        );
        // The peer's RST (not a FIN) after our FIN: responder abort.
        assert_eq!(with(&[(true, fin, 0), (false, RST, 0)]), ConnState::RSTR);

        // The endpoint that reverts must have sent FIN then RST, not just RST.
        let (mut o, mut r) = (Established, Established);
        tcp_transition(&mut o, &mut r, RST, 0);
        tcp_transition(&mut r, &mut o, fin, 0);
        assert_eq!((o, r), (Reset, Closed));
        let (mut o, mut r) = (Established, Established);
        tcp_transition(&mut o, &mut r, fin, 0);
        tcp_transition(&mut o, &mut r, RST, 0);
        assert_eq!(o, ResetAfterFin);
        // Further RSTs keep what the first one recorded.
        tcp_transition(&mut o, &mut r, RST, 0);
        assert_eq!(o, ResetAfterFin);
        assert_eq!(tcp_conn_state(o, r, 10, 0, "ShADFR"), ConnState::RSTO);
        // A FIN from a peer that is not established (here: only a SYN sent) does not revert.
        let (mut o, mut r) = (ResetAfterFin, SynSent);
        tcp_transition(&mut r, &mut o, fin, 0);
        assert_eq!((o, r), (ResetAfterFin, Closed));
        // A partial (mid-stream) peer does.
        let (mut o, mut r) = (ResetAfterFin, Partial);
        tcp_transition(&mut r, &mut o, fin, 0);
        assert_eq!((o, r), (Closed, Closed));
    }

    #[test]
    fn history_letters() {
        let mut h = History::default();
        h.add(b'S', true);
        h.add(b'H', false);
        h.add(b'A', true);
        h.add(b'D', true);
        h.add(b'D', true);
        h.add(b'D', false);
        h.add(b'F', true);
        h.add(b'F', false);
        assert_eq!(h.as_str(), "ShADdFf");
    }
}
