//! Offline replay: pcap/pcapng files (gzip-compressed too), several merged in timestamp order.
//!
//! libpcap opens every file and reads every one it accepts, except a plain classic pcap
//! without a BPF filter, which [`ClassicReader`] then reads in large chunks (the same packets
//! and errors, without libpcap's per-packet `fread`s). libpcap (1.10) refuses a pcapng whose interfaces
//! differ in link type or snaplen, either at open or when it meets the odd interface
//! mid-file. Such a file is read (again) with the `pcap-file` crate's pcapng reader
//! ([`NgReader`]), which takes the link type and timestamp resolution (`if_tsresol`,
//! `if_tsoffset`) of each packet's own interface. A mid-file switch skips the packets libpcap
//! already delivered. BPF filters need libpcap, so a filter on such a file is an error.

use super::classic::{ClassicReader, MERGE_READ_CHUNK, READ_CHUNK};
use super::{ts_nanos, CaptureError, PacketSource, Poll, RawPacket};
use crate::decode::LinkType;
use analyzers::TsNanos;
use pcap::{Capture, Offline, Precision};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::{
    ENHANCED_PACKET_BLOCK, INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK,
    SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{Endianness, PcapError};
use std::collections::BinaryHeap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// First four bytes of a pcapng file (Section Header Block type; the same in both byte orders).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Packet bytes kept per packet (libpcap's maximum snaplen); the rest counts as not captured.
const MAX_CAPLEN: usize = 262_144;
/// Interfaces accepted per pcapng section (each one is kept in memory).
const MAX_INTERFACES: usize = 4096;

/// The one-line problem reported when the fallback reader would have to ignore a filter.
fn bpf_unsupported(path: &Path) -> String {
    format!(
        "{}: BPF filter not supported for this pcapng (mixed interfaces)",
        path.display()
    )
}

/// A packet read ahead: (time, length on the wire, link type, bytes).
type Head = (TsNanos, u32, LinkType, Vec<u8>);

enum Src {
    Pcap {
        cap: Capture<Offline>,
        link: LinkType,
        /// Packets libpcap handed out so far (skipped by a mid-file switch to [`NgReader`]).
        delivered: u64,
    },
    /// A plain classic pcap without a filter, read directly (see [`ClassicReader`]).
    Classic {
        rd: Box<ClassicReader>,
        link: LinkType,
    },
    Ng(Box<NgReader>),
    /// End of file, or a problem already reported.
    Done,
}

struct Reader {
    path: PathBuf,
    /// The file actually read (the inflated copy of a .gz input).
    real: PathBuf,
    pcapng: bool,
    has_bpf: bool,
    src: Src,
    /// Decompressed copy of a .gz input, removed on drop.
    _tmp: Option<tempfile::NamedTempFile>,
    /// The packet read ahead (merge of several files).
    head: Option<Head>,
}

pub struct OfflineSource {
    readers: Vec<Reader>,
    /// Min-heap of (ts, reader index) over readers with a packet read ahead.
    heap: BinaryHeap<std::cmp::Reverse<(TsNanos, usize)>>,
    errors: Vec<String>,
    started: bool,
}

/// The first (up to) four bytes of a file.
fn magic(path: &Path) -> std::io::Result<[u8; 4]> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < magic.len() {
        match f.read(&mut magic[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(magic)
}

fn pcap_msg(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s,
        other => other.to_string(),
    }
}

/// libpcap's refusal of a pcapng whose interfaces differ ("an interface has a snapshot
/// length 8192 different from the snapshot length of the first interface", same for type).
fn libpcap_refuses_interfaces(msg: &str) -> bool {
    msg.contains("different from the") && msg.contains("of the first interface")
}

fn open_one(path: &Path, bpf: &str, chunk: usize) -> Result<Reader, CaptureError> {
    let err = |msg: String| CaptureError(format!("{}: {}", path.display(), msg));
    let head = magic(path).map_err(|e| err(e.to_string()))?;
    let gz = head[..2] == [0x1f, 0x8b];
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
    let real = tmp.as_ref().map(|t| t.path()).unwrap_or(path).to_path_buf();
    let pcapng = if gz {
        magic(&real).map_err(|e| err(e.to_string()))? == PCAPNG_MAGIC
    } else {
        head == PCAPNG_MAGIC
    };
    let has_bpf = !bpf.is_empty();
    let src = match Capture::from_file_with_precision(&real, Precision::Nano) {
        Ok(mut cap) => {
            let dlt = cap.get_datalink();
            let link = LinkType::from_dlt(dlt.0).ok_or_else(|| {
                let name = dlt.get_name().unwrap_or_else(|_| "unknown".into());
                err(format!("unsupported link type {} ({name})", dlt.0))
            })?;
            if has_bpf {
                cap.filter(bpf, true)
                    .map_err(|e| err(format!("bad BPF filter {bpf:?}: {e}")))?;
            }
            match ClassicReader::open(&real, chunk).map_err(|e| err(e.to_string()))? {
                Some(rd) if !has_bpf => Src::Classic {
                    rd: Box::new(rd),
                    link,
                },
                _ => Src::Pcap {
                    cap,
                    link,
                    delivered: 0,
                },
            }
        }
        Err(e) => {
            let msg = pcap_msg(e);
            if !pcapng {
                return Err(err(msg));
            }
            // libpcap refused this pcapng. If pcap-file reads it up to its first packet,
            // use that; otherwise the file is broken and libpcap's reason stands.
            let ng = NgReader::open(&real, 0).map_err(|_| err(msg))?;
            if has_bpf {
                return Err(CaptureError(bpf_unsupported(path)));
            }
            Src::Ng(Box::new(ng))
        }
    };
    Ok(Reader {
        path: path.to_path_buf(),
        real,
        pcapng,
        has_bpf,
        src,
        _tmp: tmp,
        head: None,
    })
}

impl Reader {
    /// Reads the next packet into `buf`: Ok(None) at the end, Err(line) on a problem (the
    /// reader then stops).
    fn next_packet(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(TsNanos, u32, LinkType)>, String> {
        loop {
            match &mut self.src {
                Src::Done => return Ok(None),
                Src::Classic { rd, link } => {
                    return match rd.next_record() {
                        Ok(Some(rec)) => {
                            buf.clear();
                            buf.extend_from_slice(rd.data(&rec));
                            Ok(Some((rec.ts, rec.wire_len, *link)))
                        }
                        Ok(None) => {
                            self.src = Src::Done;
                            Ok(None)
                        }
                        Err(m) => {
                            self.src = Src::Done;
                            Err(format!("{}: {m}", self.path.display()))
                        }
                    };
                }
                Src::Ng(ng) => {
                    let r = ng.next_into(buf);
                    if !matches!(r, Ok(Some(_))) {
                        self.src = Src::Done;
                    }
                    return r.map_err(|m| format!("{}: {m}", self.path.display()));
                }
                Src::Pcap {
                    cap,
                    link,
                    delivered,
                } => {
                    let (msg, skip) = match cap.next_packet() {
                        Ok(p) => {
                            let ts = ts_nanos(p.header.ts.tv_sec, p.header.ts.tv_usec, true);
                            buf.clear();
                            buf.extend_from_slice(p.data);
                            *delivered += 1;
                            return Ok(Some((ts, p.header.len, *link)));
                        }
                        Err(pcap::Error::NoMorePackets) => {
                            self.src = Src::Done;
                            return Ok(None);
                        }
                        Err(e) => (pcap_msg(e), *delivered),
                    };
                    self.src = Src::Done;
                    if !(self.pcapng && libpcap_refuses_interfaces(&msg)) {
                        return Err(format!("{}: {msg}", self.path.display()));
                    }
                    if self.has_bpf {
                        return Err(bpf_unsupported(&self.path));
                    }
                    // Read on with pcap-file, past what libpcap already delivered.
                    let ng = NgReader::open(&self.real, skip)
                        .map_err(|m| format!("{}: {m}", self.path.display()))?;
                    self.src = Src::Ng(Box::new(ng));
                }
            }
        }
    }
}

impl OfflineSource {
    /// Opens every file up front so a bad one fails before any work is done.
    pub fn open(paths: &[PathBuf], bpf: &str) -> Result<Self, CaptureError> {
        if paths.is_empty() {
            return Err(CaptureError("no capture files given".into()));
        }
        let chunk = if paths.len() == 1 {
            READ_CHUNK
        } else {
            MERGE_READ_CHUNK
        };
        let readers = paths
            .iter()
            .map(|p| open_one(p, bpf, chunk))
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
        let mut buf = r.head.take().map(|h| h.3).unwrap_or_default();
        match r.next_packet(&mut buf) {
            Ok(Some((ts, wire_len, link))) => {
                r.head = Some((ts, wire_len, link, buf));
                self.heap.push(std::cmp::Reverse((ts, i)));
            }
            Ok(None) => {}
            Err(msg) => self.errors.push(msg),
        }
    }
}

impl PacketSource for OfflineSource {
    fn poll(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> Poll {
        // One classic pcap: no merge, so the packet goes out as a slice of the read buffer.
        if let [r] = self.readers.as_mut_slice() {
            if let Src::Classic { rd, link } = &mut r.src {
                match rd.next_record() {
                    Ok(Some(rec)) => {
                        f(RawPacket {
                            ts: rec.ts,
                            wire_len: rec.wire_len,
                            link: *link,
                            data: rd.data(&rec),
                        });
                        return Poll::Packet;
                    }
                    Ok(None) => {}
                    Err(m) => self.errors.push(format!("{}: {m}", r.path.display())),
                }
                r.src = Src::Done;
                return Poll::End;
            }
        }
        if !self.started {
            self.started = true;
            for i in 0..self.readers.len() {
                self.advance(i);
            }
        }
        let Some(std::cmp::Reverse((_, i))) = self.heap.pop() else {
            return Poll::End;
        };
        if let Some((ts, wire_len, link, data)) = &self.readers[i].head {
            f(RawPacket {
                ts: *ts,
                wire_len: *wire_len,
                link: *link,
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

// ---- pcapng through pcap-file -------------------------------------------------------------

/// `if_tsresol`: units per second are 10^n (`Dec`) or 2^n (`Bin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsResol {
    Dec(u8),
    Bin(u8),
}

impl TsResol {
    fn from_option(v: u8) -> Self {
        if v & 0x80 != 0 {
            TsResol::Bin(v & 0x7f)
        } else {
            TsResol::Dec(v)
        }
    }
}

/// What a packet needs from its interface's description.
#[derive(Clone, Copy, Debug)]
struct NgIface {
    /// None: a link type the sensor does not decode (`dlt`).
    link: Option<LinkType>,
    dlt: u32,
    snaplen: u32,
    resol: TsResol,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
}

/// Packet timestamp in nanoseconds from the raw 64-bit count of the interface's units.
fn ng_ts_nanos(raw: u64, resol: TsResol, offset_s: i64) -> TsNanos {
    let raw = u128::from(raw);
    let ns: u128 = match resol {
        TsResol::Dec(d) if d <= 9 => raw * 10u128.pow(u32::from(9 - d)),
        TsResol::Dec(d) => 10u128
            .checked_pow(u32::from(d - 9))
            .map_or(0, |div| raw / div),
        // raw < 2^64, so raw * 10^9 < 2^94; the shift is at most 127.
        TsResol::Bin(b) => (raw * 1_000_000_000) >> b.min(127),
    };
    let total = i128::try_from(ns)
        .unwrap_or(i128::MAX)
        .saturating_add(i128::from(offset_s) * 1_000_000_000);
    i64::try_from(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or(i64::MAX)
}

fn rd_u16(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(s)
    } else {
        u16::from_le_bytes(s)
    })
}

fn rd_u32(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

fn ng_error(e: PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated pcapng file (a block is cut short or larger than 8 MB)".into()
        }
        PcapError::IoError(io) => io.to_string(),
        PcapError::IncompleteBuffer => "truncated pcapng file".into(),
        other => format!("bad pcapng data: {other}"),
    }
}

/// What one pcapng block amounts to.
enum NgBlock {
    Skip,
    NewSection,
    NewInterface,
    /// Interface index, raw timestamp (None for a Simple Packet Block), length on the wire.
    Packet(usize, Option<u64>, u32),
}

/// A pcapng file read with pcap-file, block by block. Framing, byte order, sections and
/// interface descriptions are pcap-file's; packet blocks are decoded here so that the
/// timestamp units come from the interface (pcap-file assumes nanoseconds).
struct NgReader {
    rd: PcapNgReader<std::fs::File>,
    /// Interfaces of the current section, by index.
    ifaces: Vec<NgIface>,
    /// Timestamp of the previous packet (Simple Packet Blocks carry none).
    last_ts: TsNanos,
    /// A packet read ahead when the reader was opened.
    peeked: Option<Head>,
}

impl NgReader {
    /// Opens `path`, skips `skip` packets and reads the next one ahead, so a file pcap-file
    /// cannot read either fails here.
    fn open(path: &Path, skip: u64) -> Result<NgReader, String> {
        let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let rd = PcapNgReader::new(f).map_err(ng_error)?;
        let mut ng = NgReader {
            rd,
            ifaces: Vec::new(),
            last_ts: 0,
            peeked: None,
        };
        let mut buf = Vec::new();
        for _ in 0..skip {
            if ng.next_into(&mut buf)?.is_none() {
                return Ok(ng);
            }
        }
        if let Some((ts, wire_len, link)) = ng.next_into(&mut buf)? {
            ng.peeked = Some((ts, wire_len, link, buf));
        }
        Ok(ng)
    }

    /// The next packet into `buf`: Ok(None) at the end of the file.
    fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<(TsNanos, u32, LinkType)>, String> {
        if let Some((ts, wire_len, link, mut data)) = self.peeked.take() {
            std::mem::swap(buf, &mut data);
            return Ok(Some((ts, wire_len, link)));
        }
        loop {
            let big = matches!(self.rd.section().endianness, Endianness::Big);
            let got = {
                let Some(block) = self.rd.next_raw_block() else {
                    return Ok(None);
                };
                let block = block.map_err(ng_error)?;
                packet_block(block.type_, &block.body, big, buf)?
            };
            let (iface, raw_ts, wire_len) = match got {
                NgBlock::Skip => continue,
                NgBlock::NewSection => {
                    self.ifaces.clear();
                    continue;
                }
                NgBlock::NewInterface => {
                    if self.ifaces.len() >= MAX_INTERFACES {
                        return Err(format!(
                            "more than {MAX_INTERFACES} interfaces in one pcapng section"
                        ));
                    }
                    if let Some(idb) = self.rd.interfaces().last() {
                        self.ifaces.push(describe(idb));
                    }
                    continue;
                }
                NgBlock::Packet(i, ts, len) => (i, ts, len),
            };
            let Some(ifc) = self.ifaces.get(iface).copied() else {
                return Err(format!(
                    "packet on interface {iface}, which has no Interface Description Block"
                ));
            };
            let Some(link) = ifc.link else {
                return Err(format!(
                    "unsupported link type {} (interface {iface})",
                    ifc.dlt
                ));
            };
            let ts = match raw_ts {
                Some(raw) => ng_ts_nanos(raw, ifc.resol, ifc.offset_s),
                None => {
                    // Simple Packet Block: captured length also capped by the snaplen.
                    if ifc.snaplen > 0 {
                        buf.truncate(usize::try_from(ifc.snaplen).unwrap_or(usize::MAX));
                    }
                    self.last_ts
                }
            };
            self.last_ts = ts;
            return Ok(Some((ts, wire_len, link)));
        }
    }
}

/// The sensor's view of an Interface Description Block.
fn describe(
    idb: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock<'_>,
) -> NgIface {
    let dlt = u32::from(idb.linktype);
    let mut resol = TsResol::Dec(6);
    let mut offset_s = 0i64;
    for o in &idb.options {
        match o {
            InterfaceDescriptionOption::IfTsResol(v) => resol = TsResol::from_option(*v),
            // The field is signed in the pcapng specification.
            InterfaceDescriptionOption::IfTsOffset(s) => offset_s = *s as i64,
            _ => {}
        }
    }
    NgIface {
        link: i32::try_from(dlt).ok().and_then(LinkType::from_dlt),
        dlt,
        snaplen: idb.snaplen,
        resol,
        offset_s,
    }
}

/// Decodes a block body; a packet's bytes go to `buf` (capped at [`MAX_CAPLEN`]).
fn packet_block(ty: u32, body: &[u8], big: bool, buf: &mut Vec<u8>) -> Result<NgBlock, String> {
    let bad = |what: &str| format!("bad pcapng data: {what}");
    let copy = |buf: &mut Vec<u8>, data: &[u8]| {
        buf.clear();
        buf.extend_from_slice(&data[..data.len().min(MAX_CAPLEN)]);
    };
    match ty {
        SECTION_HEADER_BLOCK => Ok(NgBlock::NewSection),
        INTERFACE_DESCRIPTION_BLOCK => Ok(NgBlock::NewInterface),
        ENHANCED_PACKET_BLOCK | PACKET_BLOCK => {
            let short = || bad("packet block shorter than its header");
            let iface = if ty == ENHANCED_PACKET_BLOCK {
                rd_u32(body, 0, big).ok_or_else(short)?
            } else {
                // Obsolete Packet Block: 16-bit interface id, then a 16-bit drop count.
                u32::from(rd_u16(body, 0, big).ok_or_else(short)?)
            };
            let hi = rd_u32(body, 4, big).ok_or_else(short)?;
            let lo = rd_u32(body, 8, big).ok_or_else(short)?;
            let caplen = rd_u32(body, 12, big).ok_or_else(short)?;
            let wire_len = rd_u32(body, 16, big).ok_or_else(short)?;
            let data = usize::try_from(caplen)
                .ok()
                .and_then(|n| body.get(20..20usize.checked_add(n)?))
                .ok_or_else(|| bad("captured length exceeds the packet block"))?;
            copy(buf, data);
            let iface = usize::try_from(iface).unwrap_or(usize::MAX);
            Ok(NgBlock::Packet(
                iface,
                Some((u64::from(hi) << 32) | u64::from(lo)),
                wire_len,
            ))
        }
        SIMPLE_PACKET_BLOCK => {
            let wire_len =
                rd_u32(body, 0, big).ok_or_else(|| bad("simple packet block too short"))?;
            let data = body.get(4..).unwrap_or_default();
            let n = data
                .len()
                .min(usize::try_from(wire_len).unwrap_or(usize::MAX));
            copy(buf, &data[..n]);
            Ok(NgBlock::Packet(0, None, wire_len))
        }
        _ => Ok(NgBlock::Skip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds pcapng files byte by byte (either byte order).
    struct Ng {
        big: bool,
        out: Vec<u8>,
    }

    impl Ng {
        fn new(big: bool) -> Self {
            let mut ng = Ng {
                big,
                out: Vec::new(),
            };
            ng.section();
            ng
        }
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn u32(&self, v: u32) -> [u8; 4] {
            if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn block(&mut self, ty: u32, mut body: Vec<u8>) -> &mut Self {
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            let total = u32::try_from(body.len() + 12).expect("small block");
            let (t, l) = (self.u32(ty), self.u32(total));
            self.out.extend_from_slice(&t);
            self.out.extend_from_slice(&l);
            self.out.extend_from_slice(&body);
            self.out.extend_from_slice(&l);
            self
        }
        fn section(&mut self) -> &mut Self {
            let mut b = self.u32(0x1A2B3C4D).to_vec();
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&[0xff; 8]);
            self.block(SECTION_HEADER_BLOCK, b)
        }
        /// An interface; `tsresol` adds an if_tsresol option, `offset` an if_tsoffset.
        fn iface(
            &mut self,
            dlt: u16,
            snaplen: u32,
            tsresol: Option<u8>,
            offset: Option<i64>,
        ) -> &mut Self {
            let mut b = self.u16(dlt).to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&self.u32(snaplen));
            if let Some(r) = tsresol {
                b.extend_from_slice(&self.u16(9));
                b.extend_from_slice(&self.u16(1));
                b.extend_from_slice(&[r, 0, 0, 0]);
            }
            if let Some(o) = offset {
                b.extend_from_slice(&self.u16(14));
                b.extend_from_slice(&self.u16(8));
                let o = if self.big {
                    o.to_be_bytes()
                } else {
                    o.to_le_bytes()
                };
                b.extend_from_slice(&o);
            }
            b.extend_from_slice(&[0, 0, 0, 0]);
            self.block(INTERFACE_DESCRIPTION_BLOCK, b)
        }
        fn epb(&mut self, iface: u32, raw_ts: u64, data: &[u8]) -> &mut Self {
            let mut b = self.u32(iface).to_vec();
            b.extend_from_slice(&self.u32((raw_ts >> 32) as u32));
            b.extend_from_slice(&self.u32(raw_ts as u32));
            let n = u32::try_from(data.len()).expect("small");
            b.extend_from_slice(&self.u32(n));
            b.extend_from_slice(&self.u32(n + 4));
            b.extend_from_slice(data);
            self.block(ENHANCED_PACKET_BLOCK, b)
        }
        fn pb(&mut self, iface: u16, raw_ts: u64, data: &[u8]) -> &mut Self {
            let mut b = self.u16(iface).to_vec();
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&self.u32((raw_ts >> 32) as u32));
            b.extend_from_slice(&self.u32(raw_ts as u32));
            let n = u32::try_from(data.len()).expect("small");
            b.extend_from_slice(&self.u32(n));
            b.extend_from_slice(&self.u32(n));
            b.extend_from_slice(data);
            self.block(PACKET_BLOCK, b)
        }
        fn spb(&mut self, data: &[u8]) -> &mut Self {
            let mut b = self.u32(u32::try_from(data.len()).expect("small")).to_vec();
            b.extend_from_slice(data);
            self.block(SIMPLE_PACKET_BLOCK, b)
        }
        fn write(&self, dir: &tempfile::TempDir, name: &str) -> PathBuf {
            let p = dir.path().join(name);
            std::fs::write(&p, &self.out).expect("write test pcapng");
            p
        }
    }

    /// Every packet of `src`: (ts, wire_len, link, first byte), then the errors.
    type Seen = Vec<(TsNanos, u32, LinkType, u8)>;

    fn drain(src: &mut OfflineSource) -> (Seen, Vec<String>) {
        let mut out = Vec::new();
        while src.poll(&mut |p| {
            out.push((
                p.ts,
                p.wire_len,
                p.link,
                p.data.first().copied().unwrap_or(0),
            ))
        }) == Poll::Packet
        {}
        (out, src.take_errors())
    }

    const S: i64 = 1_700_000_000;
    const NS: i64 = 1_000_000_000;

    /// Ethernet with the default (µs) resolution, raw IP in ms, raw IP in 2^-20 s with an
    /// offset: three interfaces, three snaplens, two link types.
    fn mixed(ng: &mut Ng) -> &mut Ng {
        ng.iface(1, 65535, None, None)
            .iface(101, 128, Some(3), None)
            .iface(101, 256, Some(0x80 | 20), Some(100))
    }

    #[test]
    fn mixed_interfaces_read_with_their_own_link_and_clock() {
        let dir = tempfile::tempdir().expect("tempdir");
        for big in [false, true] {
            let mut ng = Ng::new(big);
            mixed(&mut ng)
                .epb(0, (S as u64) * 1_000_000 + 5, &[1; 60])
                .epb(1, (S as u64) * 1000 + 7, &[2; 20])
                .epb(2, ((S as u64 - 100) << 20) | (1 << 19), &[3; 40])
                .pb(1, (S as u64 + 1) * 1000, &[4; 20])
                .spb(&[5; 30]);
            let p = ng.write(&dir, if big { "be.pcapng" } else { "le.pcapng" });
            let mut src = OfflineSource::open(&[p], "").expect("open mixed pcapng");
            let (pkts, errs) = drain(&mut src);
            assert!(errs.is_empty(), "{errs:?}");
            assert_eq!(
                pkts,
                vec![
                    (S * NS + 5_000, 64, LinkType::Ethernet, 1),
                    (S * NS + 7_000_000, 24, LinkType::Raw, 2),
                    (S * NS + 500_000_000, 44, LinkType::Raw, 3),
                    ((S + 1) * NS, 20, LinkType::Raw, 4),
                    // Simple Packet Block: interface 0, time of the previous packet.
                    ((S + 1) * NS, 30, LinkType::Ethernet, 5),
                ],
                "big endian: {big}"
            );
        }
    }

    #[test]
    fn libpcap_failing_mid_file_hands_over_without_repeating_packets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ng = Ng::new(false);
        ng.iface(1, 65535, None, None)
            .epb(0, 1_000_000, &[1; 60])
            .epb(0, 2_000_000, &[2; 60])
            .iface(1, 8192, None, None)
            .epb(1, 3_000_000, &[3; 60])
            .epb(0, 4_000_000, &[4; 60]);
        let p = ng.write(&dir, "late.pcapng");
        let mut src = OfflineSource::open(std::slice::from_ref(&p), "").expect("open");
        let (pkts, errs) = drain(&mut src);
        assert!(errs.is_empty(), "{errs:?}");
        let firsts: Vec<u8> = pkts.iter().map(|p| p.3).collect();
        assert_eq!(firsts, vec![1, 2, 3, 4]);
        assert_eq!(pkts[3].0, 4 * NS);

        // With a filter, the file cannot be read as asked: one clear line.
        let mut src = OfflineSource::open(&[p], "udp").expect("libpcap opens the first part");
        let (_, errs) = drain(&mut src);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].ends_with(
                "late.pcapng: BPF filter not supported for this pcapng (mixed interfaces)"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn gzip_and_merge_with_a_plain_pcap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ng = Ng::new(false);
        ng.iface(1, 65535, Some(9), None)
            .iface(1, 1500, Some(9), None)
            .epb(0, 10 * NS as u64, &[1; 60])
            .epb(1, 30 * NS as u64, &[3; 60]);
        let gz = dir.path().join("mixed.pcapng.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).expect("create"),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut enc, &ng.out).expect("gzip");
        enc.finish().expect("gzip");
        // Classic pcap, µs, one packet between the two above.
        let mut pcap = Vec::new();
        for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        for v in [20u32, 0, 60, 60] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend_from_slice(&[2; 60]);
        let plain = dir.path().join("plain.pcap");
        std::fs::write(&plain, &pcap).expect("write");
        let mut src = OfflineSource::open(&[gz.clone(), plain], "").expect("open");
        let (pkts, errs) = drain(&mut src);
        assert!(errs.is_empty(), "{errs:?}");
        let order: Vec<(TsNanos, u8)> = pkts.iter().map(|p| (p.0, p.3)).collect();
        assert_eq!(order, vec![(10 * NS, 1), (20 * NS, 2), (30 * NS, 3)]);

        // A filter on a file libpcap refuses outright (or part way) is reported, never ignored.
        let r = OfflineSource::open(&[gz], "tcp");
        let msg = match r {
            Err(e) => e.0,
            Ok(mut src) => drain(&mut src).1.join("\n"),
        };
        assert!(
            msg.contains("BPF filter not supported for this pcapng (mixed interfaces)"),
            "{msg}"
        );
    }

    #[test]
    fn hostile_pcapng_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut good = Ng::new(false);
        mixed(&mut good).epb(0, 1, &[1; 60]).epb(1, 2, &[2; 20]);
        // Cut at every length, flip bytes: never a panic; errors name the file.
        let name = "cut.pcapng";
        for cut in (0..good.out.len()).step_by(3) {
            let mut bytes = good.out[..cut].to_vec();
            if cut > 40 {
                bytes[cut / 2] ^= 0xff;
            }
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).expect("write");
            match OfflineSource::open(&[p], "") {
                Err(e) => assert!(e.0.contains(name), "{}", e.0),
                Ok(mut src) => {
                    let (_, errs) = drain(&mut src);
                    assert!(errs.iter().all(|e| e.contains(name)), "{errs:?}");
                }
            }
        }
        // A packet on an interface that was never described, an oversized captured length,
        // an undecodable link type on the second interface.
        let mut ng = Ng::new(false);
        mixed(&mut ng).epb(7, 1, &[1; 60]);
        let p = ng.write(&dir, "noif.pcapng");
        let (_, errs) = drain(&mut OfflineSource::open(&[p], "").expect("open"));
        assert!(
            errs.len() == 1 && errs[0].contains("no Interface Description Block"),
            "{errs:?}"
        );
        let mut ng = Ng::new(false);
        mixed(&mut ng).epb(1, 1, &[1; 8]);
        let n = ng.out.len();
        // Captured length field of the last EPB (40 bytes: type, length, iface, ts, ts, caplen).
        ng.out[n - 20..n - 16].copy_from_slice(&1000u32.to_le_bytes());
        let p = ng.write(&dir, "caplen.pcapng");
        let (_, errs) = drain(&mut OfflineSource::open(&[p], "").expect("open"));
        assert!(
            errs.len() == 1 && errs[0].contains("captured length"),
            "{errs:?}"
        );
        let mut ng = Ng::new(false);
        ng.iface(1, 65535, None, None)
            .iface(147, 100, None, None)
            .epb(0, 1, &[1; 60])
            .epb(1, 2, &[2; 20]);
        let p = ng.write(&dir, "dlt.pcapng");
        let (pkts, errs) = drain(&mut OfflineSource::open(&[p], "").expect("open"));
        assert_eq!(pkts.len(), 1);
        assert!(
            errs.len() == 1 && errs[0].contains("unsupported link type 147"),
            "{errs:?}"
        );
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(ng_ts_nanos(5, TsResol::Dec(0), 0), 5 * NS);
        assert_eq!(ng_ts_nanos(5, TsResol::Dec(6), 0), 5_000);
        assert_eq!(ng_ts_nanos(5, TsResol::Dec(9), 0), 5);
        assert_eq!(ng_ts_nanos(5_000, TsResol::Dec(12), 0), 5);
        assert_eq!(ng_ts_nanos(u64::MAX, TsResol::Dec(127), 0), 0);
        assert_eq!(ng_ts_nanos(3 << 9, TsResol::Bin(10), 0), 1_500_000_000);
        assert_eq!(ng_ts_nanos(1, TsResol::Bin(0), -1), 0);
        assert_eq!(ng_ts_nanos(u64::MAX, TsResol::Dec(0), i64::MAX), i64::MAX);
        assert_eq!(ng_ts_nanos(0, TsResol::Dec(0), i64::MIN), i64::MIN);
        assert_eq!(TsResol::from_option(0x8a), TsResol::Bin(10));
    }

    /// The Zeek trace whose interfaces have different snaplens (when the corpus is present).
    #[test]
    fn zeek_ldap_modify_request_trace() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/pcaps/zeek/traces/ldap/modify-request.pcapng");
        if !p.is_file() {
            eprintln!("{} absent; skipped", p.display());
            return;
        }
        let mut src = OfflineSource::open(&[p], "").expect("open the ldap trace");
        let (pkts, errs) = drain(&mut src);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(!pkts.is_empty());
        assert!(pkts.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        // Every packet has a 2010s-2030s timestamp: the units were read right.
        assert!(pkts
            .iter()
            .all(|p| p.0 > 1_300_000_000 * NS && p.0 < 2_000_000_000 * NS));
    }
}
