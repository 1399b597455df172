//! Classic libpcap file writer (microsecond or nanosecond magic) and a small reader used by
//! self-checks. Streams to any `Write`; nothing is buffered beyond what the writer buffers.

use std::io::{self, Read, Write};

/// Link types this writer is used with (any DLT value may be given via `Other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB (1).
    Ethernet,
    /// DLT_RAW / LINKTYPE_RAW (101): IPv4 or IPv6, no link header.
    RawIp,
    /// DLT_LINUX_SLL (113).
    LinuxSll,
    Other(u32),
}

impl LinkType {
    pub fn dlt(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::LinuxSll => 113,
            LinkType::Other(n) => n,
        }
    }
    pub fn from_dlt(n: u32) -> Self {
        match n {
            1 => LinkType::Ethernet,
            101 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            n => LinkType::Other(n),
        }
    }
}

/// Timestamp resolution of the file (selects the magic number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    /// Magic 0xa1b2c3d4.
    Micro,
    /// Magic 0xa1b23c4d.
    Nano,
}

pub const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
pub const MAGIC_NANO: u32 = 0xa1b2_3c4d;

/// Writes a classic pcap file (little-endian, version 2.4).
pub struct PcapWriter<W: Write> {
    out: W,
    res: TsResolution,
    snaplen: u32,
    packets: u64,
    bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, link: LinkType, res: TsResolution, snaplen: u32) -> io::Result<Self> {
        let magic = match res {
            TsResolution::Micro => MAGIC_MICRO,
            TsResolution::Nano => MAGIC_NANO,
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs = 0
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link.dlt().to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            res,
            snaplen,
            packets: 0,
            bytes: 24,
        })
    }

    /// Writes one record: `data` as captured, `orig_len` the length on the wire
    /// (`None` = `data.len()`). Frames longer than the snaplen are cut to it.
    pub fn write(&mut self, ts_ns: u64, data: &[u8], orig_len: Option<u32>) -> io::Result<()> {
        let orig = orig_len.unwrap_or(data.len() as u32);
        let cap = data.len().min(self.snaplen as usize);
        let secs = ts_ns / 1_000_000_000;
        let frac = match self.res {
            TsResolution::Micro => (ts_ns % 1_000_000_000) / 1000,
            TsResolution::Nano => ts_ns % 1_000_000_000,
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(secs as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(frac as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig.max(cap as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&data[..cap])?;
        self.packets += 1;
        self.bytes += 16 + cap as u64;
        Ok(())
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes written so far (headers included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub ts_ns: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

/// A whole pcap file read back (little- or big-endian, µs or ns).
#[derive(Clone, Debug)]
pub struct PcapFile {
    pub link: LinkType,
    pub res: TsResolution,
    pub snaplen: u32,
    pub records: Vec<Record>,
}

/// Reads a classic pcap file completely.
pub fn read_pcap(mut r: impl Read) -> io::Result<PcapFile> {
    let mut all = Vec::new();
    r.read_to_end(&mut all)?;
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    if all.len() < 24 {
        return Err(bad("short pcap header"));
    }
    let m = u32::from_le_bytes(all[0..4].try_into().unwrap());
    let (le, res) = match m {
        MAGIC_MICRO => (true, TsResolution::Micro),
        MAGIC_NANO => (true, TsResolution::Nano),
        _ => match u32::from_be_bytes(all[0..4].try_into().unwrap()) {
            MAGIC_MICRO => (false, TsResolution::Micro),
            MAGIC_NANO => (false, TsResolution::Nano),
            _ => return Err(bad("not a pcap file")),
        },
    };
    let u32at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let snaplen = u32at(&all, 16);
    let link = LinkType::from_dlt(u32at(&all, 20) & 0x0fff_ffff);
    let mut records = Vec::new();
    let mut o = 24;
    while o < all.len() {
        if o + 16 > all.len() {
            return Err(bad("truncated record header"));
        }
        let secs = u32at(&all, o) as u64;
        let frac = u32at(&all, o + 4) as u64;
        let cap = u32at(&all, o + 8) as usize;
        let orig_len = u32at(&all, o + 12);
        o += 16;
        if o + cap > all.len() {
            return Err(bad("truncated record data"));
        }
        let ts_ns = secs * 1_000_000_000
            + match res {
                TsResolution::Micro => frac * 1000,
                TsResolution::Nano => frac,
            };
        records.push(Record {
            ts_ns,
            data: all[o..o + cap].to_vec(),
            orig_len,
        });
        o += cap;
    }
    Ok(PcapFile {
        link,
        res,
        snaplen,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_micro_and_nano() {
        for res in [TsResolution::Micro, TsResolution::Nano] {
            let mut w = PcapWriter::new(Vec::new(), LinkType::RawIp, res, 65535).unwrap();
            w.write(1_795_597_200_123_456_789, &[0x45, 0, 0, 20], Some(40))
                .unwrap();
            let bytes = w.into_inner().unwrap();
            let f = read_pcap(&bytes[..]).unwrap();
            assert_eq!(f.link, LinkType::RawIp);
            assert_eq!(f.res, res);
            let want = match res {
                TsResolution::Micro => 1_795_597_200_123_456_000,
                TsResolution::Nano => 1_795_597_200_123_456_789,
            };
            assert_eq!(f.records[0].ts_ns, want);
            assert_eq!(f.records[0].orig_len, 40);
            assert_eq!(f.records[0].data.len(), 4);
        }
    }

    #[test]
    fn pcap_file_crate_reads_our_output() {
        let mut w =
            PcapWriter::new(Vec::new(), LinkType::Ethernet, TsResolution::Nano, 65535).unwrap();
        w.write(5_000_000_001, &[0u8; 60], None).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.timestamp, std::time::Duration::new(5, 1));
        assert_eq!(p.data.len(), 60);
    }
}
