//! Live capture from an interface: promiscuous mode, snaplen, kernel buffer, BPF filter,
//! non-blocking reads (libpcap's timeout does not fire on an idle link) and drop counters.

use super::{ts_nanos, CaptureError, CaptureStats, PacketSource, Poll, RawPacket};
use crate::decode::LinkType;
use pcap::{Active, Capture, Precision};

pub struct LiveOptions {
    pub interface: String,
    pub snaplen: i32,
    pub promisc: bool,
    pub buffer_mb: i32,
    pub bpf: String,
}

pub struct LiveSource {
    cap: Capture<Active>,
    link: LinkType,
    nanos: bool,
}

impl LiveSource {
    pub fn open(o: &LiveOptions) -> Result<Self, CaptureError> {
        let err = |m: String| CaptureError(format!("interface {}: {m}", o.interface));
        let inactive = Capture::from_device(o.interface.as_str())
            .map_err(|e| err(e.to_string()))?
            .promisc(o.promisc)
            .snaplen(o.snaplen)
            .buffer_size(o.buffer_mb.saturating_mul(1 << 20))
            .timeout(100)
            .precision(Precision::Nano);
        // Nanosecond timestamps are not available everywhere: fall back to microseconds.
        let (cap, nanos) = match inactive.open() {
            Ok(c) => (c, true),
            Err(_) => {
                let c = Capture::from_device(o.interface.as_str())
                    .map_err(|e| err(e.to_string()))?
                    .promisc(o.promisc)
                    .snaplen(o.snaplen)
                    .buffer_size(o.buffer_mb.saturating_mul(1 << 20))
                    .timeout(100)
                    .open()
                    .map_err(|e| err(e.to_string()))?;
                (c, false)
            }
        };
        let mut cap = cap.setnonblock().map_err(|e| err(e.to_string()))?;
        let dlt = cap.get_datalink();
        let link = LinkType::from_dlt(dlt.0)
            .ok_or_else(|| err(format!("unsupported link type {}", dlt.0)))?;
        if !o.bpf.is_empty() {
            cap.filter(&o.bpf, true)
                .map_err(|e| err(format!("bad BPF filter {:?}: {e}", o.bpf)))?;
        }
        Ok(Self { cap, link, nanos })
    }
}

impl PacketSource for LiveSource {
    fn poll(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> Poll {
        match self.cap.next_packet() {
            Ok(p) => {
                f(RawPacket {
                    ts: ts_nanos(p.header.ts.tv_sec, p.header.ts.tv_usec, self.nanos),
                    wire_len: p.header.len,
                    link: self.link,
                    data: p.data,
                });
                Poll::Packet
            }
            Err(pcap::Error::TimeoutExpired) => Poll::Idle,
            Err(pcap::Error::NoMorePackets) => Poll::End,
            Err(_) => Poll::Idle,
        }
    }

    fn stats(&mut self) -> Option<CaptureStats> {
        self.cap.stats().ok().map(|s| CaptureStats {
            received: u64::from(s.received),
            kernel_dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}
