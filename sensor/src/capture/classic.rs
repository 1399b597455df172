//! Classic pcap files (not pcapng) read straight from the file in large chunks.
//!
//! libpcap reads a savefile with two `fread`s per packet through a 4 KiB stdio buffer and
//! copies each packet once more into its own buffer: on a replay that was about a quarter of
//! the capture thread's instructions. This reader asks the kernel for 1 MiB at a time and
//! hands out packets as slices of that buffer. It takes only files libpcap has already
//! opened (so the file header is one libpcap accepts) in the plain 2.4 format, and it keeps
//! libpcap 1.10's rules for odd records — a captured length above the file's snapshot length
//! is cut to it, one above 256 KiB is an error — with libpcap's own wording for errors.
//! Anything else (pcapng, the old 2.0–2.3 and Kuznetzov variants, a BPF filter) stays with
//! libpcap. A test reads the same files both ways and compares packet for packet.

use super::ts_nanos;
use analyzers::TsNanos;
use pcap_file::pcap::PcapHeader;
use pcap_file::{Endianness, TsResolution};
use std::io::Read;
use std::ops::Range;
use std::path::Path;

/// Bytes asked of the kernel per read, reading one file.
pub(super) const READ_CHUNK: usize = 1 << 20;
/// The same for each of several files merged by time: they are all open (and their
/// buffers full) at once, so a replay of hundreds of files stays within tens of MB.
pub(super) const MERGE_READ_CHUNK: usize = 64 << 10;
/// libpcap's largest accepted captured length for the link types the sensor decodes
/// (`MAXIMUM_SNAPLEN`; only D-Bus, EBHSCR and USBPcap allow more).
const MAX_CAPLEN: u32 = 262_144;
/// File header and per-record header sizes.
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// One packet of the file: its time, length on the wire, and where its bytes are in
/// [`ClassicReader::data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub ts: TsNanos,
    pub wire_len: u32,
    pub bytes: Range<usize>,
}

pub(super) struct ClassicReader {
    file: std::fs::File,
    buf: Vec<u8>,
    /// Start of the next record in `buf`.
    start: usize,
    /// End of the bytes read into `buf`.
    end: usize,
    eof: bool,
    big_endian: bool,
    /// Fractions of a second are nanoseconds (else microseconds).
    nanos: bool,
    /// libpcap's `p->snapshot`: the header's snaplen, or the maximum when that is not positive.
    snapshot: u32,
}

impl ClassicReader {
    /// A reader positioned at the first record, or None when the file is not a plain
    /// classic pcap (version 2.4, standard magic) and libpcap should read it.
    /// `chunk`: the read size (the buffer grows past it only for a record larger than that).
    pub(super) fn open(path: &Path, chunk: usize) -> std::io::Result<Option<ClassicReader>> {
        let mut file = std::fs::File::open(path)?;
        let mut head = [0u8; FILE_HEADER];
        if file.read_exact(&mut head).is_err() {
            return Ok(None);
        }
        let Ok((_, h)) = PcapHeader::from_slice(&head) else {
            return Ok(None);
        };
        if (h.version_major, h.version_minor) != (2, 4) {
            return Ok(None);
        }
        // libpcap keeps the snapshot length as a C int: a non-positive one means "maximum".
        let snapshot = match i32::try_from(h.snaplen) {
            Ok(s) if s > 0 => h.snaplen,
            _ => MAX_CAPLEN,
        };
        Ok(Some(ClassicReader {
            file,
            buf: vec![0; chunk.max(RECORD_HEADER)],
            start: 0,
            end: 0,
            eof: false,
            big_endian: matches!(h.endianness, Endianness::Big),
            nanos: matches!(h.ts_resolution, TsResolution::NanoSecond),
            snapshot,
        }))
    }

    /// The bytes of a record returned by [`ClassicReader::next_record`].
    pub(super) fn data(&self, r: &Record) -> &[u8] {
        self.buf.get(r.bytes.clone()).unwrap_or_default()
    }

    /// The next record: Ok(None) at the end of the file, Err(libpcap's message) on a cut or
    /// damaged record.
    pub(super) fn next_record(&mut self) -> Result<Option<Record>, String> {
        match self.next_buffered() {
            Some(r) => Ok(Some(r)),
            None => self.next_slow(),
        }
    }

    /// The next record when the buffer already holds all of it and its lengths are sane:
    /// the per-packet path, kept free of reads and error text.
    #[inline(always)]
    fn next_buffered(&mut self) -> Option<Record> {
        let avail = self.buf.get(self.start..self.end)?;
        let h: &[u8; RECORD_HEADER] = avail.first_chunk()?;
        let (sec, frac, caplen, wire_len) = self.header(h);
        if caplen > MAX_CAPLEN {
            return None;
        }
        let whole = caplen as usize;
        if avail.len() - RECORD_HEADER < whole {
            return None;
        }
        let data_at = self.start + RECORD_HEADER;
        self.start = data_at + whole;
        Some(Record {
            ts: ts_nanos(sec, if self.nanos { frac } else { frac * 1000 }, true),
            wire_len,
            // Over-long records are cut to the snapshot length, as libpcap does.
            bytes: data_at..data_at + whole.min(self.snapshot as usize),
        })
    }

    /// Reads more of the file for the next record, or says why there is none.
    #[cold]
    #[inline(never)]
    fn next_slow(&mut self) -> Result<Option<Record>, String> {
        let have = self.fill(RECORD_HEADER)?;
        if have == 0 {
            return Ok(None);
        }
        let Some(h) = self
            .buf
            .get(self.start..self.end)
            .and_then(|b| b.first_chunk())
        else {
            return Err(format!(
                "truncated dump file; tried to read {RECORD_HEADER} header bytes, only got {have}"
            ));
        };
        let (_, _, caplen, _) = self.header(h);
        if caplen > MAX_CAPLEN {
            return Err(if caplen > self.snapshot {
                format!(
                    "invalid packet capture length {caplen}, bigger than snaplen of {}",
                    self.snapshot
                )
            } else {
                format!(
                    "invalid packet capture length {caplen}, bigger than maximum of {MAX_CAPLEN}"
                )
            });
        }
        let whole = caplen as usize;
        let got = self.fill(RECORD_HEADER + whole)? - RECORD_HEADER;
        if got < whole {
            // libpcap reports the snapshot-sized read first when the record is over-long.
            let kept = whole.min(self.snapshot as usize);
            let tried = if got < kept { kept } else { whole };
            return Err(format!(
                "truncated dump file; tried to read {tried} captured bytes, only got {got}"
            ));
        }
        Ok(self.next_buffered())
    }

    /// (seconds, fraction, captured length, wire length) of a record header.
    #[inline(always)]
    fn header(&self, h: &[u8; RECORD_HEADER]) -> (i64, i64, u32, u32) {
        let word = |i: usize| {
            let b = [h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]];
            if self.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        // libpcap 1.10 keeps the time fields as signed 32-bit numbers when the file is in
        // the machine's byte order, and as unsigned ones when it swaps them.
        let time = |w: u32| {
            if self.big_endian == cfg!(target_endian = "big") {
                i64::from(w as i32)
            } else {
                i64::from(w)
            }
        };
        (time(word(0)), time(word(1)), word(2), word(3))
    }

    /// Makes at least `need` bytes available from `start` unless the file ends first;
    /// returns how many are available (at most what is buffered).
    fn fill(&mut self, need: usize) -> Result<usize, String> {
        if self.end - self.start >= need || self.eof {
            return Ok(self.end - self.start);
        }
        // Move the partial record to the front, and make room for all of it: `need` is at
        // most a record header plus the largest record libpcap accepts.
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        while self.end < need {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("error reading dump file: {e}")),
            }
        }
        Ok(self.end)
    }
}

#[cfg(test)]
mod tests {
    //! The reader against libpcap itself, on well-formed and damaged files.
    use super::*;
    use pcap::{Capture, Precision};

    /// A classic pcap file written by hand.
    struct File {
        big: bool,
        nanos: bool,
        snaplen: u32,
        bytes: Vec<u8>,
    }

    impl File {
        fn new(big: bool, nanos: bool, snaplen: u32) -> Self {
            let mut f = File {
                big,
                nanos,
                snaplen,
                bytes: Vec::new(),
            };
            let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
            f.u32(magic);
            f.u16(2);
            f.u16(4);
            f.u32(0);
            f.u32(0);
            f.u32(f.snaplen);
            f.u32(1);
            f
        }
        /// A number in the file's byte order, given both ways.
        fn put<const N: usize>(&mut self, be: [u8; N], le: [u8; N]) {
            self.bytes
                .extend_from_slice(if self.big { &be } else { &le });
        }
        fn u16(&mut self, v: u16) {
            self.put(v.to_be_bytes(), v.to_le_bytes());
        }
        fn u32(&mut self, v: u32) {
            self.put(v.to_be_bytes(), v.to_le_bytes());
        }
        fn record(&mut self, sec: u32, frac: u32, caplen: u32, len: u32, fill: usize) -> &mut Self {
            self.u32(sec);
            self.u32(frac);
            self.u32(caplen);
            self.u32(len);
            let n = self.bytes.len();
            self.bytes.extend((0..fill).map(|i| (i * 7 + n) as u8));
            self
        }
    }

    type Seen = (Vec<(TsNanos, u32, Vec<u8>)>, Option<String>);

    fn with_libpcap(path: &Path) -> Seen {
        let mut cap = Capture::from_file_with_precision(path, Precision::Nano).expect("open");
        let mut out = Vec::new();
        loop {
            match cap.next_packet() {
                Ok(p) => out.push((
                    ts_nanos(p.header.ts.tv_sec, p.header.ts.tv_usec, true),
                    p.header.len,
                    p.data.to_vec(),
                )),
                Err(pcap::Error::NoMorePackets) => return (out, None),
                Err(pcap::Error::PcapError(e)) => return (out, Some(e)),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    fn with_classic(path: &Path, chunk: usize) -> Seen {
        let mut r = ClassicReader::open(path, chunk)
            .expect("open")
            .expect("classic");
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => out.push((rec.ts, rec.wire_len, r.data(&rec).to_vec())),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    fn same_as_libpcap(f: &File) -> Seen {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.pcap");
        std::fs::write(&p, &f.bytes).expect("write");
        let ours = with_classic(&p, READ_CHUNK);
        assert_eq!(
            ours,
            with_libpcap(&p),
            "big={} nanos={} snaplen={}",
            f.big,
            f.nanos,
            f.snaplen
        );
        // A merge's small chunks (the buffer grows for a 256 KiB record) read the same.
        assert_eq!(with_classic(&p, MERGE_READ_CHUNK), ours);
        ours
    }

    #[test]
    fn well_formed_files_in_every_byte_order_and_resolution() {
        for big in [false, true] {
            for nanos in [false, true] {
                let mut f = File::new(big, nanos, 65535);
                f.record(1_700_000_000, 999_999, 60, 60, 60)
                    .record(1_700_000_001, 0, 0, 0, 0)
                    .record(1_700_000_002, 5, 100, 1514, 100)
                    // Past 2038: libpcap 1.10 reads the seconds as signed.
                    .record(0x8000_0001, 7, 10, 10, 10)
                    // A fraction no writer should produce.
                    .record(5, 0xffff_fff0, 4, 4, 4);
                let (pkts, err) = same_as_libpcap(&f);
                assert_eq!((pkts.len(), err), (5, None));
            }
        }
    }

    #[test]
    fn packets_across_many_read_chunks() {
        let mut f = File::new(false, false, 262_144);
        for i in 0..3000u32 {
            let n = (i * 977) % 2000;
            f.record(i, i, n, n + 4, n as usize);
        }
        // One record as large as libpcap allows.
        f.record(9, 9, MAX_CAPLEN, MAX_CAPLEN, MAX_CAPLEN as usize);
        let (pkts, err) = same_as_libpcap(&f);
        assert_eq!((pkts.len(), err), (3001, None));
        assert!(f.bytes.len() > 2 * READ_CHUNK);
    }

    #[test]
    fn records_over_the_snapshot_length_are_cut_to_it() {
        let mut f = File::new(false, false, 64);
        f.record(1, 0, 100, 100, 100).record(2, 0, 64, 64, 64);
        let (pkts, _) = same_as_libpcap(&f);
        assert_eq!(pkts[0].2.len(), 64);
    }

    #[test]
    fn a_zero_or_negative_snaplen_means_the_maximum() {
        for snaplen in [0, 0x8000_0000] {
            let mut f = File::new(true, true, snaplen);
            f.record(1, 0, 3000, 3000, 3000);
            let (pkts, err) = same_as_libpcap(&f);
            assert_eq!((pkts.len(), err), (1, None));
        }
    }

    #[test]
    fn damaged_files_fail_with_libpcaps_words() {
        // (big-endian, nanoseconds, snaplen, records as (caplen, wire length, bytes written)).
        let file = |big, nanos, snaplen, records: &[(u32, u32, usize)]| {
            let mut f = File::new(big, nanos, snaplen);
            for (i, &(caplen, len, fill)) in records.iter().enumerate() {
                f.record(i as u32, 0, caplen, len, fill);
            }
            f
        };
        // A cut record header.
        let mut cut_header = file(false, false, 65535, &[(10, 10, 10)]);
        cut_header.bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        let cases = [
            cut_header,
            // Cut packet data.
            file(false, true, 65535, &[(10, 10, 10), (50, 50, 20)]),
            // An over-long record cut before, then after, the snapshot length.
            file(false, false, 64, &[(100, 100, 30)]),
            file(false, false, 64, &[(100, 100, 80)]),
            // Captured length beyond what libpcap accepts, within and beyond the snaplen.
            file(true, false, 65535, &[(300_000, 300_000, 0)]),
            file(true, false, 1_000_000, &[(300_000, 300_000, 0)]),
        ];
        for f in &cases {
            let (_, err) = same_as_libpcap(f);
            assert!(err.is_some());
        }
    }

    #[test]
    fn other_formats_are_left_to_libpcap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.pcap");
        let mut f = File::new(false, false, 65535);
        f.bytes[4] = 2;
        f.bytes[6] = 3; // version 2.3
        std::fs::write(&p, &f.bytes).expect("write");
        assert!(ClassicReader::open(&p, READ_CHUNK).expect("open").is_none());
        std::fs::write(&p, [0x0a, 0x0d, 0x0d, 0x0a, 0, 0]).expect("write");
        assert!(ClassicReader::open(&p, READ_CHUNK).expect("open").is_none());
    }
}
