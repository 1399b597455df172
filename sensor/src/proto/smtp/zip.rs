//! File types by magic bytes, and ZIP listings read from the central directory (or, when it
//! is out of reach, from the local file headers) without extracting anything: names, sizes,
//! the encrypted flag. An unencrypted entry that is itself a ZIP is listed too (one level),
//! inflated within a fixed cap when it is compressed.

use analyzers::ArchiveEntry;
use std::io::Read;

/// Entries listed per archive at most (the listing is then marked truncated).
pub const MAX_ENTRIES: usize = 256;
/// Largest nested archive inflated for its listing.
pub const MAX_NESTED_BYTES: usize = 8 << 20;

/// A file type recognised from its first bytes.
pub fn magic(b: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| b.starts_with(m);
    if starts(b"MZ") {
        Some("pe")
    } else if starts(b"\x7fELF") {
        Some("elf")
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        Some("zip")
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        Some("7z")
    } else if starts(b"Rar!\x1a\x07") {
        Some("rar")
    } else if starts(b"%PDF-") {
        Some("pdf")
    } else if starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        Some("ole")
    } else if starts(b"\x1f\x8b") {
        Some("gzip")
    } else if starts(b"MSCF") {
        Some("cab")
    } else if starts(b"L\0\0\0\x01\x14\x02\0") {
        Some("lnk")
    } else if starts(b"\xff\xd8\xff") {
        Some("jpeg")
    } else if starts(b"\x89PNG") {
        Some("png")
    } else if starts(b"GIF8") {
        Some("gif")
    } else if b.get(0x8001..0x8006) == Some(b"CD001") {
        Some("iso")
    } else {
        None
    }
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What an archive listing found.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<ArchiveEntry>,
    pub truncated: bool,
}

struct Raw {
    name: String,
    flags: u16,
    method: u16,
    csize: u64,
    usize_: u64,
    local_off: Option<u64>,
}

fn entry_name(raw: &[u8], utf8_flag: bool) -> String {
    let s = if utf8_flag {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        // Not flagged: UTF-8 if it is valid, else the Japanese legacy code page
        // (Windows' "Send to compressed folder" writes Shift_JIS names).
        super::text::raw_text(raw)
    };
    super::text::clip(s)
}

/// The archive seen as two windows: its first `head` bytes and its last `tail` bytes of
/// `total` (they may overlap or be the same bytes).
pub struct Windows<'a> {
    pub head: &'a [u8],
    pub tail: &'a [u8],
    pub total: u64,
}

impl<'a> Windows<'a> {
    /// Bytes `[off, off + len)` of the archive if one window holds them.
    fn get(&self, off: u64, len: u64) -> Option<&'a [u8]> {
        let end = off.checked_add(len)?;
        if end <= self.head.len() as u64 {
            return self.head.get(off as usize..end as usize);
        }
        let tail_start = self.total.checked_sub(self.tail.len() as u64)?;
        if off >= tail_start && end <= self.total {
            return self
                .tail
                .get((off - tail_start) as usize..(end - tail_start) as usize);
        }
        None
    }
}

/// Lists a ZIP archive. `nested`: also list unencrypted ZIP entries (one level).
pub fn list(w: &Windows<'_>, nested: bool) -> Listing {
    let mut out = Listing::default();
    let raws = central_directory(w, &mut out.truncated)
        .unwrap_or_else(|| local_headers(w.head, &mut out.truncated));
    for r in raws {
        let encrypted = r.flags & 1 != 0 || r.method == 99;
        let data = if encrypted {
            None
        } else {
            r.local_off.and_then(|off| entry_data(w, off, &r))
        };
        let first = data.as_ref().map(|d| d.first(64));
        let mg = first.as_ref().and_then(|b| magic(b)).map(str::to_string);
        let is_zip = mg.as_deref() == Some("zip");
        out.entries.push(ArchiveEntry {
            name: r.name.clone(),
            size: r.usize_,
            encrypted,
            container: None,
            magic: mg,
        });
        if nested && is_zip {
            match data.and_then(|d| d.all(MAX_NESTED_BYTES)) {
                Some(bytes) => {
                    let inner = Windows {
                        head: &bytes,
                        tail: &bytes,
                        total: bytes.len() as u64,
                    };
                    let l = list(&inner, false);
                    out.truncated |= l.truncated;
                    for mut e in l.entries {
                        if out.entries.len() >= MAX_ENTRIES * 2 {
                            out.truncated = true;
                            break;
                        }
                        e.container = Some(r.name.clone());
                        out.entries.push(e);
                    }
                }
                None => out.truncated = true,
            }
        }
    }
    out
}

fn central_directory(w: &Windows<'_>, truncated: &mut bool) -> Option<Vec<Raw>> {
    // End of central directory: 22 bytes + a comment of up to 64 KiB, at the end.
    let t = w.tail;
    if (t.len() as u64) < w.total.min(22) || t.len() < 22 {
        return None;
    }
    let lo = t.len().saturating_sub(22 + 65_535);
    let eocd = (lo..=t.len() - 22)
        .rev()
        .find(|&i| t[i..].starts_with(b"PK\x05\x06"))?;
    let count = u16le(t, eocd + 10)? as usize;
    let size = u64::from(u32le(t, eocd + 12)?);
    let offset = u64::from(u32le(t, eocd + 16)?);
    if size == 0xffff_ffff || offset == 0xffff_ffff {
        return None; // ZIP64: read the local headers instead.
    }
    // Data before the archive (self-extractors) shifts every offset by the same amount.
    let eocd_abs = w.total - (t.len() - eocd) as u64;
    let shift = eocd_abs.checked_sub(offset.checked_add(size)?)?;
    let cd = w.get(offset + shift, size)?;
    let mut raws = Vec::new();
    let mut at = 0usize;
    while at + 46 <= cd.len() && cd[at..].starts_with(b"PK\x01\x02") {
        if raws.len() >= MAX_ENTRIES {
            *truncated = true;
            break;
        }
        let flags = u16le(cd, at + 8)?;
        let n = usize::from(u16le(cd, at + 28)?);
        let e = usize::from(u16le(cd, at + 30)?);
        let c = usize::from(u16le(cd, at + 32)?);
        let name = cd.get(at + 46..at + 46 + n)?;
        raws.push(Raw {
            name: entry_name(name, flags & 0x800 != 0),
            flags,
            method: u16le(cd, at + 10)?,
            csize: u64::from(u32le(cd, at + 20)?),
            usize_: u64::from(u32le(cd, at + 24)?),
            local_off: Some(u64::from(u32le(cd, at + 42)?) + shift),
        });
        at += 46 + n + e + c;
    }
    if raws.len() < count.min(MAX_ENTRIES) {
        *truncated = true;
    }
    Some(raws)
}

/// Walks the local file headers from the start (archives whose end is out of reach).
fn local_headers(b: &[u8], truncated: &mut bool) -> Vec<Raw> {
    let mut raws = Vec::new();
    let mut at = 0usize;
    while let Some(h) = b.get(at..at + 30) {
        if !h.starts_with(b"PK\x03\x04") {
            break;
        }
        if raws.len() >= MAX_ENTRIES {
            *truncated = true;
            break;
        }
        let (Some(flags), Some(method), Some(cs), Some(us), Some(n), Some(e)) = (
            u16le(h, 6),
            u16le(h, 8),
            u32le(h, 18),
            u32le(h, 22),
            u16le(h, 26),
            u16le(h, 28),
        ) else {
            break;
        };
        let (n, e) = (usize::from(n), usize::from(e));
        let Some(name) = b.get(at + 30..at + 30 + n) else {
            *truncated = true;
            break;
        };
        raws.push(Raw {
            name: entry_name(name, flags & 0x800 != 0),
            flags,
            method,
            csize: u64::from(cs),
            usize_: u64::from(us),
            local_off: Some(at as u64),
        });
        let data = at + 30 + n + e;
        if flags & 8 != 0 && cs == 0 {
            // Sizes follow the data (streamed archive): find the next header.
            match b
                .get(data..)
                .and_then(|r| r.windows(4).position(|w| w == b"PK\x03\x04"))
            {
                Some(p) => at = data + p,
                None => break,
            }
        } else {
            at = data.saturating_add(cs as usize);
        }
    }
    if at < b.len() && !b[at..].starts_with(b"PK\x01\x02") && !raws.is_empty() {
        *truncated = true;
    }
    raws
}

/// An entry's stored bytes, when a window holds them.
struct EntryData<'a> {
    method: u16,
    data: &'a [u8],
    size: u64,
}

impl EntryData<'_> {
    /// The first `n` uncompressed bytes (stored or deflated), if readable.
    fn first(&self, n: usize) -> Vec<u8> {
        match self.method {
            0 => self.data[..self.data.len().min(n)].to_vec(),
            8 => {
                let mut out = Vec::new();
                let _ = flate2::read::DeflateDecoder::new(self.data)
                    .take(n as u64)
                    .read_to_end(&mut out);
                out
            }
            _ => Vec::new(),
        }
    }

    /// All of it, if it inflates to at most `cap` bytes.
    fn all(&self, cap: usize) -> Option<Vec<u8>> {
        if self.size > cap as u64 {
            return None;
        }
        match self.method {
            0 => Some(self.data.to_vec()),
            8 => {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(self.data)
                    .take(cap as u64 + 1)
                    .read_to_end(&mut out)
                    .ok()?;
                (out.len() <= cap).then_some(out)
            }
            _ => None,
        }
    }
}

fn entry_data<'a>(w: &Windows<'a>, off: u64, r: &Raw) -> Option<EntryData<'a>> {
    let h = w.get(off, 30)?;
    if !h.starts_with(b"PK\x03\x04") {
        return None;
    }
    let n = u64::from(u16le(h, 26)?);
    let e = u64::from(u16le(h, 28)?);
    let start = off + 30 + n + e;
    // Prefer the central directory's size (the local one may be 0 with a data descriptor).
    let len = if r.csize > 0 {
        r.csize
    } else {
        u64::from(u32le(h, 18)?)
    };
    let data = w.get(start, len).or_else(|| {
        // Partly in reach: what the window holds (enough for magic bytes).
        let avail = (w.head.len() as u64).checked_sub(start)?;
        w.get(start, avail.min(len))
    })?;
    Some(EntryData {
        method: r.method,
        data,
        size: r.usize_,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A small ZIP writer for tests: (name, data, encrypted flag, deflate).
    pub fn build_zip(files: &[(&str, &[u8], bool, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data, enc, deflate) in files {
            let body = if *deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.to_vec()
            };
            let flags: u16 = if *enc { 1 } else { 0 } | 0x800;
            let method: u16 = if *deflate { 8 } else { 0 };
            let off = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // time, date, crc
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            cd.extend_from_slice(b"PK\x01\x02");
            cd.extend_from_slice(&[20, 0, 20, 0]);
            cd.extend_from_slice(&flags.to_le_bytes());
            cd.extend_from_slice(&method.to_le_bytes());
            cd.extend_from_slice(&[0; 8]);
            cd.extend_from_slice(&(body.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0; 12]);
            cd.extend_from_slice(&off.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn all(b: &[u8]) -> Windows<'_> {
        Windows {
            head: b,
            tail: b,
            total: b.len() as u64,
        }
    }

    #[test]
    fn lists_encrypted_and_nested() {
        let inner = build_zip(&[("payload.exe", b"MZ\x90\0", false, true)]);
        let z = build_zip(&[
            ("report.txt.exe", b"secret", true, false),
            ("inner.zip", &inner, false, true),
            ("readme.txt", b"hello", false, false),
        ]);
        let l = list(&all(&z), true);
        let names: Vec<_> = l.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["report.txt.exe", "inner.zip", "payload.exe", "readme.txt"]
        );
        assert!(l.entries[0].encrypted);
        assert_eq!(l.entries[2].container.as_deref(), Some("inner.zip"));
        assert_eq!(l.entries[2].magic.as_deref(), Some("pe"));
        assert!(!l.truncated);
        // Only the head in reach: local headers.
        let head = &z[..z.len() - 30];
        let w = Windows {
            head,
            tail: &[],
            total: z.len() as u64,
        };
        let l = list(&w, false);
        assert_eq!(l.entries.len(), 3);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let z = build_zip(&[("a.exe", b"MZ", false, false)]);
        for cut in 0..z.len() {
            let _ = list(&all(&z[..cut]), true);
            let mut m = z.clone();
            m[cut] ^= 0xff;
            let _ = list(&all(&m), true);
        }
    }
}
