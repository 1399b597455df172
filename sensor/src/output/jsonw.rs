//! A small JSON object writer for the high-volume EVE records (flow, dns, inventory).
//!
//! serde_json's derive path allocated a `String` per timestamp, per hex flag and per answer
//! list, and walked every field through its generic serializer; on the bench capture that was
//! a fifth of the sink thread. This writer appends straight into the line buffer. Its output is
//! byte-for-byte what serde_json writes for the same values (strings that need escaping, and
//! all floats, are handed to serde_json itself), which the tests in `eve.rs` check against the
//! serde structs on hostile names.

use std::net::IpAddr;

/// Appends `"key":value` pairs to a JSON object under construction in `out`.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object (`{`); [`Obj::close`] writes the `}`.
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    #[inline(always)]
    fn key(&mut self, k: &str) {
        // Keys are the writer's own ASCII literals: no escaping needed. `,"key":` is put
        // together on the stack (the key is a constant where this is inlined) and appended
        // in one step: one capacity check instead of four.
        let k = k.as_bytes();
        let mut buf = [0u8; 64];
        if k.len() > buf.len() - 4 {
            return self.long_key(k);
        }
        let start = usize::from(self.first);
        self.first = false;
        let n = k.len();
        buf[0] = b',';
        buf[1] = b'"';
        buf[2..2 + n].copy_from_slice(&k[..n]);
        buf[2 + n] = b'"';
        buf[3 + n] = b':';
        self.out.extend_from_slice(&buf[start..4 + n]);
    }

    /// [`Obj::key`] for a key too long for its buffer, piece by piece.
    #[cold]
    fn long_key(&mut self, k: &[u8]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k);
        self.out.extend_from_slice(b"\":");
    }

    #[inline(always)]
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        string(self.out, v);
        self
    }

    /// A string value given as the bytes of a `str` (a [`analyzers::CommunityId`]), written
    /// as [`Obj::str`] writes it without checking the UTF-8 again.
    #[inline(always)]
    pub fn str_bytes(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        string_bytes(self.out, v);
        self
    }

    /// A string value of the sensor's own vocabulary (event types, enum and protocol
    /// names): ASCII with nothing JSON escapes, so it is copied without the check
    /// [`string`] makes. Text from packets or from a `String` field goes through `str`.
    #[inline(always)]
    pub fn lit(&mut self, k: &str, v: &str) -> &mut Self {
        debug_assert!(is_clean(v.as_bytes()), "{v:?} needs escaping");
        self.key(k);
        quoted(self.out, v.as_bytes());
        self
    }

    #[inline(always)]
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.str(k, v);
        }
        self
    }

    #[inline(always)]
    pub fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    #[inline(always)]
    pub fn i64(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    pub fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        // serde_json's float formatting (and `null` for non-finite values), exactly.
        let _ = serde_json::to_writer(&mut *self.out, &v);
        self
    }

    #[inline(always)]
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    #[inline(always)]
    pub fn ip(&mut self, k: &str, v: IpAddr) -> &mut Self {
        self.key(k);
        quoted_ip(self.out, v);
        self
    }

    /// A raw value the caller has already written as JSON (`f` appends it).
    #[inline(always)]
    pub fn raw(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.key(k);
        f(self.out);
        self
    }

    /// Any key (escaped, unlike the writer's literals) with a serde_json value, as a
    /// flattened map's entries are written.
    pub fn value(&mut self, k: &str, v: &serde_json::Value) -> &mut Self {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(b':');
        let _ = serde_json::to_writer(&mut *self.out, v);
        self
    }

    pub fn close(&mut self) {
        self.out.push(b'}');
    }
}

/// Appends `s` as a JSON string. Clean printable text (the common case) is copied as it is;
/// anything with a quote, backslash or control byte goes through serde_json's escaper.
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    string_bytes(out, s.as_bytes());
}

/// [`string`] for the bytes of a `str` (no UTF-8 check on the clean path; anything else is
/// read as UTF-8, lossily, which for a `str`'s bytes changes nothing).
#[inline]
pub fn string_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if is_clean(b) {
        quoted(out, b);
    } else {
        let _ = serde_json::to_writer(&mut *out, &*String::from_utf8_lossy(b));
    }
}

/// `b` between quotes, for bytes known to need no escaping.
#[inline(always)]
fn quoted(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(b);
    out.push(b'"');
}

/// An address as a JSON string.
pub fn quoted_ip(out: &mut Vec<u8>, v: IpAddr) {
    out.push(b'"');
    ip(out, v);
    out.push(b'"');
}

/// No byte needs escaping (none below 0x20, no `"`, no `\`). Eight bytes a step: the bit
/// tricks `(x - 0x01..) & !x & 0x80..` (some byte is zero) and `(x - 0x20..) & !x & 0x80..`
/// (some byte is below 0x20) are exact as yes/no answers; the tail byte by byte. This runs
/// on every string of every flow and DNS record.
fn is_clean(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        // Always 8 bytes; zeros otherwise would only send the text to serde_json.
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
        let quote = x ^ (LO * u64::from(b'"'));
        let backslash = x ^ (LO * u64::from(b'\\'));
        let hits = (x.wrapping_sub(LO * 0x20) & !x)
            | (quote.wrapping_sub(LO) & !quote)
            | (backslash.wrapping_sub(LO) & !backslash);
        if hits & HI != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// Appends the text form of an address exactly as `Display` writes it, without `fmt`.
pub fn ip(out: &mut Vec<u8>, v: IpAddr) {
    analyzers::net::push_ip_bytes(out, v);
}

/// Appends a byte as two lower-case hex digits (`{:02x}`), quoted.
pub fn hex_byte_str(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[b'"', HEX[(b >> 4) as usize], HEX[(b & 15) as usize], b'"']);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json_on_hostile_text() {
        for s in [
            "",
            "plain.example.com",
            "quote\"d",
            "back\\slash",
            "ctl\u{1}\u{1f}\n\t\r\u{8}\u{c}",
            "del\u{7f}",
            "日本語.example",
            "\u{202e}exe.txt",
        ] {
            let mut a = Vec::new();
            string(&mut a, s);
            assert_eq!(a, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn addresses_and_numbers_match_display_and_serde() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.12.3",
            "::",
            "fe80::1",
            "::ffff:1.2.3.4",
        ] {
            let v: IpAddr = s.parse().unwrap();
            let mut a = Vec::new();
            ip(&mut a, v);
            assert_eq!(String::from_utf8(a).unwrap(), v.to_string());
        }
        let mut out = Vec::new();
        Obj::open(&mut out)
            .u64("a", u64::MAX)
            .i64("b", -5)
            .f64("c", 0.1)
            .f64("d", f64::NAN)
            .bool("e", true)
            .raw("f", |o| hex_byte_str(o, 0x1b))
            .opt_str("g", None)
            .close();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{{\"a\":{},\"b\":-5,\"c\":{},\"d\":null,\"e\":true,\"f\":\"1b\"}}",
                u64::MAX,
                serde_json::to_string(&0.1f64).unwrap()
            )
        );
    }

    #[test]
    fn keys_of_any_length_are_written_whole() {
        // Keys around the stack buffer's limit (60 bytes) and past it, first and not first.
        for len in [1usize, 59, 60, 61, 200] {
            let k = "k".repeat(len);
            let mut out = Vec::new();
            Obj::open(&mut out).u64(&k, 1).bool(&k, false).close();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{{\"{k}\":1,\"{k}\":false}}"),
                "{len}"
            );
        }
    }

    #[test]
    fn clean_check_matches_serde_json_at_every_position() {
        // Every ASCII byte at every offset of strings up to 19 bytes (chunks and tails).
        for len in 1..20 {
            for pos in 0..len {
                for b in 0u8..=0x7f {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let s = std::str::from_utf8(&v).unwrap();
                    let mut a = Vec::new();
                    string(&mut a, s);
                    assert_eq!(a, serde_json::to_vec(s).unwrap(), "{s:?}");
                    let clean = b >= 0x20 && b != b'"' && b != b'\\';
                    assert_eq!(is_clean(&v), clean, "{v:?}");
                }
            }
        }
        // Multi-byte UTF-8 (bytes above 0x7f) is clean text.
        assert!(is_clean("日本語.example.com\u{7f}\u{202e}".as_bytes()));
        assert!(!is_clean("日本語.example.com\u{1f}".as_bytes()));
    }
}
