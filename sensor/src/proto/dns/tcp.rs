//! DNS over TCP: 2-byte length-prefixed messages, several per segment or one split over
//! several segments. Bytes are appended in sequence order; segments that arrive early are held
//! (a few, bounded) until the gap before them fills; a gap that outlasts those bounds gives the
//! direction up (counted), a retransmission is skipped, and every buffer is bounded.

/// Early (out-of-order) segments held per direction.
const MAX_EARLY_SEGMENTS: usize = 8;

/// Per-flow DNS-over-TCP state, both directions (0 = originator).
#[derive(Debug, Default)]
pub struct TcpDnsState {
    buf: [Vec<u8>; 2],
    next_seq: [Option<u32>; 2],
    /// After a gap the message boundaries are unknown: the direction is given up.
    lost: [bool; 2],
    /// Segments that arrived before the bytes preceding them: (seq, payload).
    early: [Vec<(u32, Vec<u8>)>; 2],
}

/// Problems counted by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpDnsIssues {
    pub gaps: u64,
    pub oversize: u64,
}

impl TcpDnsState {
    /// Adds a segment's payload (`seq` = its first byte) from direction `dir` and calls
    /// `on_msg` for every complete message.
    pub fn push(
        &mut self,
        dir: usize,
        seq: u32,
        payload: &[u8],
        max_buffer: usize,
        issues: &mut TcpDnsIssues,
        mut on_msg: impl FnMut(&[u8]),
    ) {
        let dir = dir.min(1);
        if self.lost[dir] {
            return;
        }
        if let Some(next) = self.next_seq[dir] {
            if (seq.wrapping_sub(next) as i32) > 0 {
                // Arrived early: hold it until the gap fills, within bounds.
                let held: usize = self.early[dir].iter().map(|(_, b)| b.len()).sum();
                if self.early[dir].len() >= MAX_EARLY_SEGMENTS
                    || held + payload.len() + self.buf[dir].len() > max_buffer
                {
                    issues.gaps += 1;
                    self.lost[dir] = true;
                    self.buf[dir] = Vec::new();
                    self.early[dir] = Vec::new();
                    return;
                }
                self.early[dir].push((seq, payload.to_vec()));
                return;
            }
        }
        self.append(dir, seq, payload, max_buffer, issues, &mut on_msg);
        // Segments held back may now be in order.
        while let Some(next) = self.next_seq[dir] {
            let Some(i) = self.early[dir]
                .iter()
                .position(|(s, _)| (s.wrapping_sub(next) as i32) <= 0)
            else {
                break;
            };
            let (s, b) = self.early[dir].swap_remove(i);
            self.append(dir, s, &b, max_buffer, issues, &mut on_msg);
            if self.lost[dir] {
                break;
            }
        }
    }

    /// Appends an in-order (or overlapping) segment and frames complete messages.
    fn append(
        &mut self,
        dir: usize,
        seq: u32,
        payload: &[u8],
        max_buffer: usize,
        issues: &mut TcpDnsIssues,
        on_msg: &mut impl FnMut(&[u8]),
    ) {
        let mut data = payload;
        if let Some(next) = self.next_seq[dir] {
            let diff = seq.wrapping_sub(next) as i32;
            if diff < 0 {
                let dup = diff.unsigned_abs() as usize;
                if dup >= data.len() {
                    return;
                }
                data = &data[dup..];
            }
        }
        let seq_of_end = seq.wrapping_add(payload.len() as u32);
        self.next_seq[dir] = Some(seq_of_end);
        let buf = &mut self.buf[dir];
        if buf.len() + data.len() > max_buffer {
            issues.oversize += 1;
            self.lost[dir] = true;
            *buf = Vec::new();
            return;
        }
        buf.extend_from_slice(data);
        let mut at = 0usize;
        while let (Some(&h), Some(&l)) = (buf.get(at), buf.get(at + 1)) {
            let len = usize::from(u16::from_be_bytes([h, l]));
            let Some(msg) = buf.get(at + 2..at + 2 + len) else {
                break;
            };
            on_msg(msg);
            at += 2 + len;
        }
        buf.drain(..at);
        if buf.capacity() > 4096 && buf.is_empty() {
            buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.extend_from_slice(&(m.len() as u16).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    #[test]
    fn several_per_segment_and_split() {
        let mut s = TcpDnsState::default();
        let mut issues = TcpDnsIssues::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let data = framed(&[b"aaaa", b"bb", b"cccccc"]);
        // Segment 1: first two messages and half of the third.
        s.push(0, 1000, &data[..12], 1 << 16, &mut issues, |m| {
            got.push(m.to_vec())
        });
        assert_eq!(got, vec![b"aaaa".to_vec(), b"bb".to_vec()]);
        // Retransmission of segment 1: nothing new.
        s.push(0, 1000, &data[..12], 1 << 16, &mut issues, |m| {
            got.push(m.to_vec())
        });
        assert_eq!(got.len(), 2);
        s.push(0, 1012, &data[12..], 1 << 16, &mut issues, |m| {
            got.push(m.to_vec())
        });
        assert_eq!(got[2], b"cccccc".to_vec());
        assert_eq!(issues, TcpDnsIssues::default());
    }

    #[test]
    fn out_of_order_then_gap_and_oversize() {
        let mut s = TcpDnsState::default();
        let mut issues = TcpDnsIssues::default();
        let mut got = Vec::new();
        let data = framed(&[b"aaaa", b"bbbb"]);
        s.push(0, 0, &data[..3], 100, &mut issues, |m| got.push(m.to_vec()));
        // The second half arrives before the middle: held, then framed in order.
        s.push(0, 8, &data[8..], 100, &mut issues, |m| got.push(m.to_vec()));
        assert!(got.is_empty());
        s.push(0, 3, &data[3..8], 100, &mut issues, |m| {
            got.push(m.to_vec())
        });
        assert_eq!(got, vec![b"aaaa".to_vec(), b"bbbb".to_vec()]);
        // A hole that never fills: the held segments overflow and the direction is given up.
        for i in 0..=MAX_EARLY_SEGMENTS as u32 {
            s.push(0, 1000 + i * 10, &[0; 4], 100, &mut issues, |_| {
                panic!("after a gap")
            });
        }
        assert_eq!(issues.gaps, 1);
        s.push(1, 0, &[0xff; 200], 100, &mut issues, |_| {});
        assert_eq!(issues.oversize, 1);
    }
}
