//! TLS ClientHello SNI extraction.
//!
//! Given the first bytes a client sent on a TCP connection, find the `server_name`
//! extension (RFC 6066, extension 0) of its ClientHello and return the `host_name` entry.
//! Only what is needed for that is parsed: record headers (content type 22, legacy version
//! 0x0300..=0x0304), the handshake header (type 1), then session id, cipher suites,
//! compression methods and the extension list are walked by their length prefixes.
//!
//! Robustness rules (the bytes are attacker-controlled):
//! - every read is bounds-checked; malformed input yields `None`, never a panic;
//! - a ClientHello split over several handshake records is reassembled, but only from bytes
//!   actually present in `payload` and never more than [`MAX_HELLO_BYTES`]; declared lengths
//!   are never used to size an allocation;
//! - a ClientHello cut short by the capture (snaplen, first segment only) still yields the
//!   name as long as the whole `server_name` extension is present.
//!
//! [`sni_string`] is what the flow table should use: it also handles a name split across
//! records and returns only plausible, normalised host names.

use std::borrow::Cow;
use std::ops::Range;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;
/// TLSPlaintext.length must not exceed 2^14; allow the TLSCiphertext slack (2^14 + 2048) too,
/// so an odd but real client isn't dropped, while nonsense lengths are rejected early.
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Upper bound on reassembled ClientHello bytes. Real ones (even with post-quantum key
/// shares and padding) are a few KiB.
pub const MAX_HELLO_BYTES: usize = 64 * 1024;
/// Upper bound on handshake records looked at. Splitting a ClientHello into many tiny
/// records is a known DPI-evasion trick, so be generous; the work stays bounded by the
/// payload size anyway.
const MAX_RECORDS: usize = 2048;
/// Longest DNS name in text form, without the trailing dot.
const MAX_HOSTNAME_LEN: usize = 253;

/// Bounds-checked big-endian reader over a slice. `base` is the offset of `buf` inside the
/// whole handshake body, so positions can be reported in body coordinates.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }

    fn u24(&mut self) -> Option<usize> {
        let s = self.take(3)?;
        Some(u32::from_be_bytes([0, *s.first()?, *s.get(1)?, *s.get(2)?]) as usize)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Range (in body coordinates) of the next `n` bytes, consuming them.
    fn take_range(&mut self, n: usize) -> Option<Range<usize>> {
        let start = self.base.checked_add(self.pos)?;
        self.take(n)?;
        Some(start..start.checked_add(n)?)
    }

    /// A reader over the next `n` bytes, consuming them.
    fn sub(&mut self, n: usize) -> Option<Reader<'a>> {
        let base = self.base.checked_add(self.pos)?;
        let buf = self.take(n)?;
        Some(Reader { buf, pos: 0, base })
    }

    /// A reader over at most the next `n` bytes (fewer if the input is truncated).
    fn sub_upto(&mut self, n: usize) -> Reader<'a> {
        let n = n.min(self.remaining());
        self.sub(n).unwrap_or(Reader {
            buf: &[],
            pos: 0,
            base: self.base,
        })
    }
}

/// A handshake record found in the payload.
struct Record {
    /// Offset of the fragment's first byte in the payload.
    start: usize,
    /// Declared fragment length.
    len: usize,
    /// Bytes of the fragment actually present (`<= len`, `>= 1`).
    avail: usize,
}

/// Parses a TLS handshake record header at `off`. `None` if not a plausible one.
fn record_at(payload: &[u8], off: usize) -> Option<Record> {
    let hdr = payload.get(off..off.checked_add(5)?)?;
    let &[ctype, major, minor, hi, lo] = hdr else {
        return None;
    };
    if ctype != CONTENT_HANDSHAKE || major != 3 || minor > 4 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    // Zero-length handshake fragments are forbidden (RFC 8446 §5.1).
    if len == 0 || len > MAX_RECORD_LEN {
        return None;
    }
    let start = off + 5;
    let avail = len.min(payload.len().saturating_sub(start));
    if avail == 0 {
        return None;
    }
    Some(Record { start, len, avail })
}

/// Total size (header + body) of the handshake message starting `body`, once its 4-byte
/// header is present.
fn handshake_total(body: &[u8]) -> Option<usize> {
    let &[_, a, b, c] = body.get(..4)? else {
        return None;
    };
    Some(4 + (u32::from_be_bytes([0, a, b, c]) as usize))
}

/// A fragment of reassembled handshake bytes: `body[body_off..body_off+len]` came from
/// `payload[payload_off..payload_off+len]`.
struct Frag {
    body_off: usize,
    payload_off: usize,
    len: usize,
}

/// The ClientHello handshake message bytes (possibly truncated).
enum Handshake<'a> {
    /// The message lies in one record: a slice of the payload starting at `payload_off`.
    Contiguous { body: &'a [u8], payload_off: usize },
    /// The message spans records and was copied together.
    Reassembled { body: Vec<u8>, frags: Vec<Frag> },
}

impl Handshake<'_> {
    fn body(&self) -> &[u8] {
        match self {
            Handshake::Contiguous { body, .. } => body,
            Handshake::Reassembled { body, .. } => body,
        }
    }

    /// Maps a body range back to the payload, if it lies within one record fragment.
    fn payload_range(&self, r: &Range<usize>) -> Option<Range<usize>> {
        match self {
            Handshake::Contiguous { payload_off, .. } => {
                Some(payload_off.checked_add(r.start)?..payload_off.checked_add(r.end)?)
            }
            Handshake::Reassembled { frags, .. } => frags.iter().find_map(|f| {
                let frag_end = f.body_off.checked_add(f.len)?;
                if r.start >= f.body_off && r.end <= frag_end {
                    let s = f.payload_off.checked_add(r.start - f.body_off)?;
                    Some(s..s.checked_add(r.end - r.start)?)
                } else {
                    None
                }
            }),
        }
    }
}

/// Collects the ClientHello handshake message from the leading handshake records.
fn collect_handshake(payload: &[u8]) -> Option<Handshake<'_>> {
    let first = record_at(payload, 0)?;
    let frag0 = payload.get(first.start..first.start.checked_add(first.avail)?)?;
    if *frag0.first()? != HANDSHAKE_CLIENT_HELLO {
        return None;
    }
    let need = handshake_total(frag0);

    // Fast path, no allocation: the message fits in the first record, or there is nothing
    // usable after it (record cut by the capture, or no further handshake record).
    let next_off = first.start.checked_add(first.len)?;
    let complete_in_first = need.is_some_and(|n| frag0.len() >= n);
    if complete_in_first || first.avail < first.len || record_at(payload, next_off).is_none() {
        let n = need.unwrap_or(frag0.len()).min(frag0.len());
        return Some(Handshake::Contiguous {
            body: frag0.get(..n)?,
            payload_off: first.start,
        });
    }

    // Slow path: concatenate consecutive handshake record fragments. The buffer only ever
    // holds bytes present in the payload, capped at MAX_HELLO_BYTES.
    let cap = payload.len().min(MAX_HELLO_BYTES);
    let mut body: Vec<u8> = Vec::with_capacity(need.unwrap_or(cap).min(cap));
    let mut frags: Vec<Frag> = Vec::new();
    let mut off = 0usize;
    while let Some(rec) = record_at(payload, off) {
        let room = MAX_HELLO_BYTES.saturating_sub(body.len());
        let take = rec.avail.min(room);
        let frag = payload.get(rec.start..rec.start.checked_add(take)?)?;
        frags.push(Frag {
            body_off: body.len(),
            payload_off: rec.start,
            len: frag.len(),
        });
        body.extend_from_slice(frag);
        if take < rec.len || frags.len() >= MAX_RECORDS {
            break; // truncated record, size cap, or too many records: stop here
        }
        if handshake_total(&body).is_some_and(|n| body.len() >= n) {
            break;
        }
        off = rec.start.checked_add(rec.len)?;
    }
    if let Some(n) = handshake_total(&body) {
        body.truncate(n);
    }
    Some(Handshake::Reassembled { body, frags })
}

/// Walks a (possibly truncated) ClientHello handshake message and returns the body range of
/// the first non-empty host_name in the server_name extension.
fn find_sni(body: &[u8]) -> Option<Range<usize>> {
    let mut r = Reader::new(body);
    if r.u8()? != HANDSHAKE_CLIENT_HELLO {
        return None;
    }
    let declared = r.u24()?;
    let complete = r.remaining() >= declared;
    let mut m = r.sub_upto(declared);

    // legacy_version: SSL 3.0 .. TLS 1.3 all use major 3.
    let version = m.u16()?;
    if version >> 8 != 3 || (version & 0xff) > 4 {
        return None;
    }
    m.take(32)?; // random
    let sid_len = usize::from(m.u8()?);
    if sid_len > 32 {
        return None;
    }
    m.take(sid_len)?;
    let cs_len = usize::from(m.u16()?);
    if cs_len < 2 || cs_len % 2 != 0 {
        return None;
    }
    m.take(cs_len)?;
    let cm_len = usize::from(m.u8()?);
    if cm_len == 0 {
        return None;
    }
    m.take(cm_len)?;

    // Extensions are optional (pre-TLS 1.0 style hellos): then there is no SNI.
    let ext_total = usize::from(m.u16()?);
    if complete && ext_total > m.remaining() {
        return None; // the message is all here and still too short: malformed
    }
    let mut exts = m.sub_upto(ext_total);
    while exts.remaining() >= 4 {
        let ext_type = exts.u16()?;
        let ext_len = usize::from(exts.u16()?);
        // If this extension is cut off, nothing after it is present either.
        let mut data = exts.sub(ext_len)?;
        if ext_type == EXT_SERVER_NAME {
            return host_name_in(&mut data);
        }
    }
    None
}

/// Parses ServerNameList and returns the first non-empty host_name entry.
fn host_name_in(data: &mut Reader<'_>) -> Option<Range<usize>> {
    let list_len = usize::from(data.u16()?);
    let mut list = data.sub(list_len)?;
    while list.remaining() > 0 {
        let name_type = list.u8()?;
        let name_len = usize::from(list.u16()?);
        let range = list.take_range(name_len)?;
        // Only host_name is defined; other types share the u16-length layout in practice.
        if name_type == NAME_TYPE_HOST_NAME {
            return (name_len > 0).then_some(range);
        }
    }
    None
}

/// Cheap first-bytes check: does `payload` start like a TLS handshake record carrying a
/// ClientHello? (content type 22, version 3.0..=3.4, non-zero length, handshake type 1)
pub fn looks_like_client_hello(payload: &[u8]) -> bool {
    record_at(payload, 0).is_some() && payload.get(5) == Some(&HANDSHAKE_CLIENT_HELLO)
}

/// The raw `host_name` of the ClientHello's server_name extension, borrowed from `payload`.
///
/// `payload` is the start of the client's TCP stream (one or more TLS records, possibly cut
/// short). Returns `None` if there is no well-formed ClientHello, no SNI, the SNI is not
/// fully present, or (rarely) the name itself is split across two TLS records; use
/// [`client_hello_sni_cow`] or [`sni_string`] to also cover that last case.
/// The bytes are not validated: they may be anything the client sent.
pub fn client_hello_sni(payload: &[u8]) -> Option<&[u8]> {
    let hs = collect_handshake(payload)?;
    let range = find_sni(hs.body())?;
    payload.get(hs.payload_range(&range)?)
}

/// Like [`client_hello_sni`], but also returns a name split across TLS records (copied).
pub fn client_hello_sni_cow(payload: &[u8]) -> Option<Cow<'_, [u8]>> {
    let hs = collect_handshake(payload)?;
    let range = find_sni(hs.body())?;
    if let Some(s) = hs.payload_range(&range).and_then(|r| payload.get(r)) {
        return Some(Cow::Borrowed(s));
    }
    Some(Cow::Owned(hs.body().get(range)?.to_vec()))
}

/// Validates and normalises a raw SNI: printable ASCII without spaces, one trailing dot
/// removed, 1..=253 bytes, lowercased. `None` if implausible.
pub fn sanitize_sni(raw: &[u8]) -> Option<String> {
    let name = raw.strip_suffix(b".").unwrap_or(raw);
    if name.is_empty() || name.len() > MAX_HOSTNAME_LEN {
        return None;
    }
    if !name.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return None;
    }
    // All bytes are ASCII here, so this cannot fail; no panic path either way.
    let s = std::str::from_utf8(name).ok()?;
    Some(s.to_ascii_lowercase())
}

/// The ClientHello's SNI as a plausible host name (see [`sanitize_sni`]), or `None`.
pub fn sni_string(payload: &[u8]) -> Option<String> {
    sanitize_sni(&client_hello_sni_cow(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- builders ---------------------------------------------------------------------

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn sni_ext_entries(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (t, name) in entries {
            list.push(*t);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        ext(0, &data)
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        sni_ext_entries(&[(0, name)])
    }

    /// A ClientHello handshake message (with its 4-byte header).
    fn hello_with(sid: &[u8], suites: &[u8], comp: &[u8], exts: Option<&[Vec<u8>]>) -> Vec<u8> {
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[0xAB; 32]);
        b.push(sid.len() as u8);
        b.extend_from_slice(sid);
        b.extend_from_slice(&(suites.len() as u16).to_be_bytes());
        b.extend_from_slice(suites);
        b.push(comp.len() as u8);
        b.extend_from_slice(comp);
        if let Some(exts) = exts {
            let all: Vec<u8> = exts.concat();
            b.extend_from_slice(&(all.len() as u16).to_be_bytes());
            b.extend_from_slice(&all);
        }
        let mut m = vec![1];
        m.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(&b);
        m
    }

    fn hello(exts: &[Vec<u8>]) -> Vec<u8> {
        hello_with(&[7; 32], &[0x13, 0x01, 0xc0, 0x2f], &[0], Some(exts))
    }

    /// Wraps a handshake message in TLS records of at most `chunk` bytes each.
    fn records(hs: &[u8], version: u16, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for c in hs.chunks(chunk) {
            out.push(22);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    fn record(hs: &[u8]) -> Vec<u8> {
        records(hs, 0x0301, 1 << 14)
    }

    fn typical(name: &[u8]) -> Vec<u8> {
        record(&hello(&[
            ext(0xff01, &[0]),
            sni_ext(name),
            ext(0x000a, &[0, 4, 0, 0x1d, 0, 0x17]),
            ext(0x0015, &[0; 200]), // padding
        ]))
    }

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3 (Simple 1-RTT Handshake) ClientHello handshake message; SNI "server".
    const RFC8448_CH: &str = "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d \
        ff a2 1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 \
        00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00 0a 00 14 00 12 00 1d 00 \
        17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 23 00 00 00 33 00 26 00 24 00 1d 00 20 \
        99 38 1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 \
        9a af 2c 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 \
        06 04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c 00 02 40 01";

    // ---- happy paths ------------------------------------------------------------------

    #[test]
    fn rfc8448_client_hello() {
        let hs = hex(RFC8448_CH);
        assert_eq!(hs.len(), 196);
        let p = record(&hs);
        assert!(looks_like_client_hello(&p));
        assert_eq!(client_hello_sni(&p), Some(&b"server"[..]));
        assert_eq!(sni_string(&p).as_deref(), Some("server"));
    }

    #[test]
    fn typical_hello_all_record_versions() {
        let hs = hello(&[sni_ext(b"Example.COM.")]);
        for v in [0x0300u16, 0x0301, 0x0302, 0x0303, 0x0304] {
            let p = records(&hs, v, 1 << 14);
            assert!(looks_like_client_hello(&p), "{v:#x}");
            assert_eq!(client_hello_sni(&p), Some(&b"Example.COM."[..]));
            assert_eq!(sni_string(&p).as_deref(), Some("example.com"));
        }
        for v in [0x0305u16, 0x0200, 0x0403, 0xfeff] {
            let p = records(&hs, v, 1 << 14);
            assert!(!looks_like_client_hello(&p), "{v:#x}");
            assert_eq!(client_hello_sni(&p), None);
        }
    }

    #[test]
    fn sni_after_other_extensions_and_trailing_data() {
        let mut p = typical(b"www.example.org");
        assert_eq!(client_hello_sni(&p), Some(&b"www.example.org"[..]));
        // Application data / a second record after the hello does not matter.
        p.extend_from_slice(&[23, 3, 3, 0, 5, 1, 2, 3, 4, 5]);
        assert_eq!(sni_string(&p).as_deref(), Some("www.example.org"));
    }

    #[test]
    fn empty_session_id_and_first_of_several_names() {
        let hs = hello_with(
            &[],
            &[0, 0x2f],
            &[1, 0],
            Some(&[sni_ext_entries(&[(1, b"weird"), (0, b"a.b"), (0, b"c.d")])]),
        );
        assert_eq!(client_hello_sni(&record(&hs)), Some(&b"a.b"[..]));
    }

    #[test]
    fn no_extensions_or_no_sni() {
        let hs = hello_with(&[], &[0, 0x2f], &[0], None);
        assert_eq!(client_hello_sni(&record(&hs)), None);
        let hs = hello(&[ext(0x000a, &[0, 2, 0, 0x1d])]);
        assert_eq!(client_hello_sni(&record(&hs)), None);
        let hs = hello(&[]);
        assert_eq!(client_hello_sni(&record(&hs)), None);
    }

    #[test]
    fn hello_split_over_records() {
        let hs = hello(&[ext(0x0015, &[0; 300]), sni_ext(b"split.example")]);
        for chunk in [1usize, 2, 3, 4, 5, 7, 50, 100, 333] {
            let p = records(&hs, 0x0303, chunk);
            assert_eq!(
                sni_string(&p).as_deref(),
                Some("split.example"),
                "chunk {chunk}"
            );
            let borrowed = client_hello_sni(&p);
            // Borrowed form works unless the name straddles a record boundary.
            let start = hs.windows(13).position(|w| w == b"split.example").unwrap();
            let straddles = start / chunk != (start + 12) / chunk;
            let want = (!straddles).then_some(&b"split.example"[..]);
            assert_eq!(borrowed, want, "chunk {chunk}");
        }
        // More records than MAX_RECORDS: must give up cleanly, not panic.
        let big = hello(&[ext(0x0015, &[0; 3000]), sni_ext(b"late.example")]);
        let p = records(&big, 0x0303, 1);
        assert_eq!(sni_string(&p), None);
    }

    #[test]
    fn split_hello_stops_at_non_handshake_record() {
        let hs = hello(&[ext(0x0015, &[0; 100]), sni_ext(b"x.example")]);
        let mut p = records(&hs[..60], 0x0303, 60);
        p.extend_from_slice(&[23, 3, 3, 0, 4, 1, 2, 3, 4]); // app data, not handshake
        p.extend(records(&hs[60..], 0x0303, 1000));
        assert_eq!(client_hello_sni(&p), None);
    }

    // ---- truncation -------------------------------------------------------------------

    #[test]
    fn truncated_capture_still_yields_complete_sni() {
        // SNI first, then a big extension: cut the payload inside the big one.
        let hs = hello(&[sni_ext(b"cut.example"), ext(0x0015, &[0; 1000])]);
        let p = record(&hs);
        let sni_end = p
            .windows(11)
            .position(|w| w == b"cut.example")
            .map(|i| i + 11)
            .unwrap();
        for cut in sni_end..p.len() {
            assert_eq!(
                client_hello_sni(&p[..cut]),
                Some(&b"cut.example"[..]),
                "cut {cut}"
            );
        }
        // Any cut before the end of the SNI extension gives None (never a partial name).
        for cut in 0..sni_end {
            assert_eq!(client_hello_sni(&p[..cut]), None, "cut {cut}");
        }
    }

    #[test]
    fn truncated_split_hello() {
        let hs = hello(&[sni_ext(b"cut.example"), ext(0x0015, &[0; 1000])]);
        let p = records(&hs, 0x0303, 64);
        for cut in 0..p.len() {
            if let Some(s) = sni_string(&p[..cut]) {
                assert_eq!(s, "cut.example");
            }
        }
        assert_eq!(sni_string(&p[..400]).as_deref(), Some("cut.example"));
    }

    // ---- hostile inputs ---------------------------------------------------------------

    #[test]
    fn lengths_pointing_past_the_end() {
        let base = hello(&[sni_ext(b"a.example")]);
        // Handshake length larger than everything (complete-looking record).
        let mut hs = base.clone();
        hs[1..4].copy_from_slice(&[0xff, 0xff, 0xff]);
        // Declared huge: treated as truncated, SNI fully present, so still found.
        assert_eq!(client_hello_sni(&record(&hs)), Some(&b"a.example"[..]));

        // Session id length > 32.
        let mut hs = base.clone();
        hs[4 + 2 + 32] = 33;
        assert_eq!(client_hello_sni(&record(&hs)), None);

        // Cipher suites length odd / zero / huge.
        let cs_off = 4 + 2 + 32 + 1 + 32;
        for bad in [[0u8, 3], [0, 0], [0xff, 0xfe]] {
            let mut hs = base.clone();
            hs[cs_off..cs_off + 2].copy_from_slice(&bad);
            assert_eq!(client_hello_sni(&record(&hs)), None, "{bad:?}");
        }

        // Compression methods length zero.
        let cm_off = cs_off + 2 + 4;
        let mut hs = base.clone();
        hs[cm_off] = 0;
        assert_eq!(client_hello_sni(&record(&hs)), None);

        // Extensions total larger than the (complete) message.
        let ext_off = cm_off + 2;
        let mut hs = base.clone();
        hs[ext_off..ext_off + 2].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(client_hello_sni(&record(&hs)), None);

        // Extension length past the end.
        let mut hs = base.clone();
        hs[ext_off + 4..ext_off + 6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(client_hello_sni(&record(&hs)), None);

        // Server name list / name lengths past the extension.
        let mut hs = base.clone();
        hs[ext_off + 6..ext_off + 8].copy_from_slice(&[0x10, 0x00]);
        assert_eq!(client_hello_sni(&record(&hs)), None);
        let mut hs = base.clone();
        hs[ext_off + 9..ext_off + 11].copy_from_slice(&[0x00, 0xff]);
        assert_eq!(client_hello_sni(&record(&hs)), None);
    }

    #[test]
    fn zero_lengths() {
        // Empty host name.
        assert_eq!(client_hello_sni(&record(&hello(&[sni_ext(b"")]))), None);
        // Empty server_name extension (as sent by servers, or malformed).
        assert_eq!(client_hello_sni(&record(&hello(&[ext(0, &[])]))), None);
        // Empty list.
        assert_eq!(client_hello_sni(&record(&hello(&[ext(0, &[0, 0])]))), None);
        // Zero-length record.
        assert!(!looks_like_client_hello(&[22, 3, 1, 0, 0, 1]));
        assert_eq!(client_hello_sni(&[22, 3, 1, 0, 0, 1, 0, 0, 0]), None);
        // Zero-length handshake body.
        assert_eq!(client_hello_sni(&[22, 3, 1, 0, 4, 1, 0, 0, 0]), None);
    }

    #[test]
    fn huge_record_length_and_wrong_types() {
        let hs = hello(&[sni_ext(b"a.example")]);
        let mut p = record(&hs);
        p[3..5].copy_from_slice(&[0xff, 0xff]);
        assert!(!looks_like_client_hello(&p));
        assert_eq!(client_hello_sni(&p), None);

        let mut p = record(&hs);
        p[0] = 23; // application data
        assert_eq!(client_hello_sni(&p), None);
        let mut p = record(&hs);
        p[5] = 2; // ServerHello
        assert!(!looks_like_client_hello(&p));
        assert_eq!(client_hello_sni(&p), None);
        let mut p = record(&hs);
        p[9..11].copy_from_slice(&[0x01, 0x00]); // legacy_version 1.0 of something else
        assert_eq!(client_hello_sni(&p), None);
    }

    #[test]
    fn tiny_and_empty_inputs() {
        for n in 0..8 {
            let p = &[22u8, 3, 1, 0, 10, 1, 0, 0][..n];
            let _ = looks_like_client_hello(p);
            assert_eq!(client_hello_sni(p), None);
            assert_eq!(sni_string(p), None);
        }
        assert!(looks_like_client_hello(&[22, 3, 1, 0, 10, 1]));
        assert!(!looks_like_client_hello(&[22, 3, 1, 0, 10]));
        assert!(!looks_like_client_hello(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn sanitize_rules() {
        assert_eq!(sanitize_sni(b"A.B").as_deref(), Some("a.b"));
        assert_eq!(sanitize_sni(b"a.b.").as_deref(), Some("a.b"));
        assert_eq!(sanitize_sni(b"."), None);
        assert_eq!(sanitize_sni(b""), None);
        assert_eq!(sanitize_sni(b"a b"), None);
        assert_eq!(sanitize_sni(b"a\0b"), None);
        assert_eq!(sanitize_sni(b"a\x7fb"), None);
        assert_eq!(sanitize_sni("bücher.de".as_bytes()), None);
        assert_eq!(sanitize_sni(&[b'a'; 253]).map(|s| s.len()), Some(253));
        assert_eq!(sanitize_sni(&[b'a'; 254]), None);
        let mut dotted = vec![b'a'; 253];
        dotted.push(b'.');
        assert_eq!(sanitize_sni(&dotted).map(|s| s.len()), Some(253));
        // End to end: a hostile name is returned raw but rejected by sni_string.
        let p = typical(b"evil\r\nname");
        assert_eq!(client_hello_sni(&p), Some(&b"evil\r\nname"[..]));
        assert_eq!(sni_string(&p), None);
    }

    /// xorshift64*: deterministic pseudo-random bytes without external crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn byte(&mut self) -> u8 {
            (self.next() >> 56) as u8
        }
    }

    #[test]
    fn random_buffers_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000 {
            let len = (rng.next() % 600) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            // Make a good share of them look like handshake records to get past the
            // first checks.
            if i % 2 == 0 && buf.len() >= 6 {
                buf[0] = 22;
                buf[1] = 3;
                buf[2] %= 5;
                buf[5] = 1;
            }
            let _ = looks_like_client_hello(&buf);
            let _ = client_hello_sni(&buf);
            let _ = client_hello_sni_cow(&buf);
            if let Some(s) = sni_string(&buf) {
                assert!(!s.is_empty() && s.len() <= 253);
            }
        }
    }

    #[test]
    fn mutated_valid_hellos_never_panic() {
        let mut rng = Rng(42);
        let seeds = [
            typical(b"mutate.example"),
            records(&hello(&[sni_ext(b"m.example")]), 0x0303, 17),
            record(&hex(RFC8448_CH)),
        ];
        for i in 0..20_000 {
            let mut p = seeds[i % seeds.len()].clone();
            for _ in 0..(1 + rng.next() % 4) {
                let idx = (rng.next() as usize) % p.len();
                p[idx] = rng.byte();
            }
            let cut = (rng.next() as usize) % (p.len() + 1);
            let p = &p[..cut];
            let _ = client_hello_sni(p);
            let _ = sni_string(p);
        }
    }
}
