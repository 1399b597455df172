//! Packet sources: offline files (pcap, pcapng, gzip, several merged by time) and live
//! interfaces, both opened by libpcap (the `pcap` crate; plain classic pcaps are then read
//! by `classic`). A source hands packets to a callback so the bytes are borrowed from the
//! reader's buffer, not copied twice.

mod classic;
pub mod live;
pub mod offline;

use crate::decode::LinkType;
use analyzers::TsNanos;

/// One captured packet as the pipeline sees it.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    pub ts: TsNanos,
    /// Length on the wire (may exceed `data.len()` with a small snaplen).
    pub wire_len: u32,
    pub link: LinkType,
    pub data: &'a [u8],
}

/// What a poll of the source produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// A packet was handed to the callback.
    Packet,
    /// Nothing right now (live capture on a quiet link).
    Idle,
    /// No more packets (end of all files).
    End,
}

/// A capture problem that ends the run: one line naming the file or interface.
#[derive(Debug)]
pub struct CaptureError(pub String);

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Kernel/interface drop counters of a live capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub received: u64,
    pub kernel_dropped: u64,
    pub if_dropped: u64,
}

pub trait PacketSource {
    /// Hands the next packet to `f`.
    fn poll(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> Poll;
    /// Drop counters from the kernel (live only).
    fn stats(&mut self) -> Option<CaptureStats> {
        None
    }
    /// Errors met along the way (e.g. a file truncated mid-record), one line each.
    fn take_errors(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Converts libpcap's timeval (seconds + micro- or nanoseconds) to nanoseconds.
pub(crate) fn ts_nanos(sec: i64, frac: i64, nanos: bool) -> TsNanos {
    let frac_ns = if nanos {
        frac
    } else {
        frac.saturating_mul(1_000)
    };
    sec.saturating_mul(1_000_000_000).saturating_add(frac_ns)
}
