//! Offline replay: pcap/pcapng files (gzip-compressed too), several merged in timestamp order.

use super::{ts_nanos, CaptureError, PacketSource, Poll, RawPacket};
use crate::decode::LinkType;
use analyzers::TsNanos;
use pcap::{Capture, Offline, Precision};
use std::collections::BinaryHeap;
use std::io::Read;
use std::path::{Path, PathBuf};

struct Reader {
    path: PathBuf,
    cap: Capture<Offline>,
    link: LinkType,
    /// Decompressed copy of a .gz input, removed on drop.
    _tmp: Option<tempfile::NamedTempFile>,
    /// The packet read ahead (merge of several files).
    head: Option<(TsNanos, u32, Vec<u8>)>,
}

pub struct OfflineSource {
    readers: Vec<Reader>,
    /// Min-heap of (ts, reader index) over readers with a packet read ahead.
    heap: BinaryHeap<std::cmp::Reverse<(TsNanos, usize)>>,
    errors: Vec<String>,
    started: bool,
}

fn is_gzip(path: &Path) -> std::io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut magic)?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn open_one(path: &Path, bpf: &str) -> Result<Reader, CaptureError> {
    let err = |msg: String| CaptureError(format!("{}: {}", path.display(), msg));
    let gz = is_gzip(path).map_err(|e| err(e.to_string()))?;
    let tmp = if gz {
        // libpcap reads only plain files: inflate to a private temporary file.
        let mut t = tempfile::NamedTempFile::new().map_err(|e| err(e.to_string()))?;
        let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
        std::io::copy(&mut dec, t.as_file_mut()).map_err(|e| err(format!("bad gzip data: {e}")))?;
        Some(t)
    } else {
        None
    };
    let real = tmp.as_ref().map(|t| t.path()).unwrap_or(path);
    let mut cap = Capture::from_file_with_precision(real, Precision::Nano).map_err(|e| {
        err(match e {
            pcap::Error::PcapError(s) => s,
            other => other.to_string(),
        })
    })?;
    let dlt = cap.get_datalink();
    let link = LinkType::from_dlt(dlt.0).ok_or_else(|| {
        let name = dlt.get_name().unwrap_or_else(|_| "unknown".into());
        err(format!("unsupported link type {} ({name})", dlt.0))
    })?;
    if !bpf.is_empty() {
        cap.filter(bpf, true)
            .map_err(|e| err(format!("bad BPF filter {bpf:?}: {e}")))?;
    }
    Ok(Reader {
        path: path.to_path_buf(),
        cap,
        link,
        _tmp: tmp,
        head: None,
    })
}

impl OfflineSource {
    /// Opens every file up front so a bad one fails before any work is done.
    pub fn open(paths: &[PathBuf], bpf: &str) -> Result<Self, CaptureError> {
        if paths.is_empty() {
            return Err(CaptureError("no capture files given".into()));
        }
        let readers = paths
            .iter()
            .map(|p| open_one(p, bpf))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            readers,
            heap: BinaryHeap::new(),
            errors: Vec::new(),
            started: false,
        })
    }

    /// Reads the next packet of reader `i` into its `head`.
    fn advance(&mut self, i: usize) {
        let r = &mut self.readers[i];
        let mut buf = r.head.take().map(|(_, _, b)| b).unwrap_or_default();
        match r.cap.next_packet() {
            Ok(p) => {
                let ts = ts_nanos(p.header.ts.tv_sec, p.header.ts.tv_usec, true);
                buf.clear();
                buf.extend_from_slice(p.data);
                r.head = Some((ts, p.header.len, buf));
                self.heap.push(std::cmp::Reverse((ts, i)));
            }
            Err(pcap::Error::NoMorePackets) => {}
            Err(e) => {
                let msg = match e {
                    pcap::Error::PcapError(s) => s,
                    other => other.to_string(),
                };
                self.errors.push(format!("{}: {msg}", r.path.display()));
            }
        }
    }
}

impl PacketSource for OfflineSource {
    fn poll(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> Poll {
        if !self.started {
            self.started = true;
            for i in 0..self.readers.len() {
                self.advance(i);
            }
        }
        let Some(std::cmp::Reverse((_, i))) = self.heap.pop() else {
            return Poll::End;
        };
        if let Some((ts, wire_len, data)) = &self.readers[i].head {
            f(RawPacket {
                ts: *ts,
                wire_len: *wire_len,
                link: self.readers[i].link,
                data,
            });
        }
        self.advance(i);
        Poll::Packet
    }

    fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }
}
