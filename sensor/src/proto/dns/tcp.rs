//! DNS over TCP: 2-byte length-prefixed messages, several per segment or one split over
//! several segments. Bytes are appended in sequence order; a gap (lost segment) resets the
//! direction's buffer, a retransmission is skipped, and the buffer is bounded.

/// Per-flow DNS-over-TCP state, both directions (0 = originator).
#[derive(Debug, Default)]
pub struct TcpDnsState {
    buf: [Vec<u8>; 2],
    next_seq: [Option<u32>; 2],
    /// After a gap the message boundaries are unknown: the direction is given up.
    lost: [bool; 2],
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
        let mut data = payload;
        match self.next_seq[dir] {
            None => {}
            Some(next) => {
                let diff = seq.wrapping_sub(next) as i32;
                if diff > 0 {
                    // Lost bytes: whatever was buffered can no longer be framed.
                    issues.gaps += 1;
                    self.lost[dir] = true;
                    self.buf[dir] = Vec::new();
                    return;
                } else if diff < 0 {
                    let dup = diff.unsigned_abs() as usize;
                    if dup >= data.len() {
                        return;
                    }
                    data = &data[dup..];
                }
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
    fn gap_and_oversize_are_counted() {
        let mut s = TcpDnsState::default();
        let mut issues = TcpDnsIssues::default();
        let data = framed(&[b"aaaa"]);
        s.push(0, 0, &data[..3], 100, &mut issues, |_| {});
        s.push(0, 10, &data[3..], 100, &mut issues, |_| {
            panic!("framing after a gap")
        });
        assert_eq!(issues.gaps, 1);
        s.push(1, 0, &[0xff; 200], 100, &mut issues, |_| {});
        assert_eq!(issues.oversize, 1);
    }
}
