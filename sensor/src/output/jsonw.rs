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
    /// Opens an object; its `{` is written with the first key (or by [`Obj::close`] when
    /// there is none), so that every key's prefix has one length.
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        Obj { out, first: true }
    }

    /// Writes `{"key":` (first key) or `,"key":` into the front of `buf`; returns the length,
    /// or None for a key too long for it. Keys are the writer's own ASCII literals: no
    /// escaping needed. Where this is inlined the key is a constant, so the length is too.
    #[inline(always)]
    fn key_into(&mut self, k: &[u8], buf: &mut [u8; KEY_BUF]) -> Option<usize> {
        let n = k.len();
        if n + 4 > KEY_BUF {
            return None;
        }
        buf[0] = if self.first { b'{' } else { b',' };
        self.first = false;
        buf[1] = b'"';
        buf[2..2 + n].copy_from_slice(k);
        buf[2 + n] = b'"';
        buf[3 + n] = b':';
        Some(4 + n)
    }

    /// The key, put together on the stack and appended in one step (one capacity check and
    /// no copy call, where writing it piece by piece took four).
    #[inline(always)]
    fn key(&mut self, k: &str) {
        let mut buf = [0u8; KEY_BUF];
        match self.key_into(k.as_bytes(), &mut buf) {
            Some(n) => self.out.extend_from_slice(&buf[..n]),
            None => self.long_key(k.as_bytes()),
        }
    }

    /// The key and a value already written as JSON in `v[..n]`, appended together (see
    /// [`append_front`]).
    #[inline(always)]
    fn fixed<const B: usize>(&mut self, k: &str, v: &[u8; B], n: usize) {
        let mut buf = [0u8; KEY_BUF];
        match self.key_into(k.as_bytes(), &mut buf) {
            Some(kn) => append_front(self.out, &buf, kn),
            None => self.long_key(k.as_bytes()),
        }
        append_front(self.out, v, n);
    }

    /// [`Obj::key`] for a key too long for its buffer, piece by piece.
    #[cold]
    fn long_key(&mut self, k: &[u8]) {
        self.out.push(if self.first { b'{' } else { b',' });
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

    /// A string value held in an [`analyzers::InlineStr`] (a community id, a history),
    /// written as [`Obj::str`] writes it. Clean text goes out with its key in one step, the
    /// fixed-size buffer copied whole.
    #[inline(always)]
    pub fn inline_str<const N: usize>(
        &mut self,
        k: &str,
        v: &analyzers::InlineStr<N>,
    ) -> &mut Self {
        let (bytes, len) = v.buffer();
        if N + 2 <= INLINE_STR_BUF && is_clean(&bytes[..len]) {
            let mut q = [0u8; INLINE_STR_BUF];
            q[0] = b'"';
            q[1..1 + N].copy_from_slice(bytes);
            q[1 + len] = b'"';
            self.fixed(k, &q, len + 2);
        } else {
            self.key(k);
            string_bytes(self.out, &bytes[..len]);
        }
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
        // (Calling its formatter, zmij, directly was measured: more instructions, not fewer.)
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
        let mut q = [0u8; QUOTED_IP_BUF];
        let n = quoted_ip_text(v, &mut q);
        self.fixed(k, &q, n);
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
        self.out.push(if self.first { b'{' } else { b',' });
        self.first = false;
        string(self.out, k);
        self.out.push(b':');
        let _ = serde_json::to_writer(&mut *self.out, v);
        self
    }

    pub fn close(&mut self) {
        if self.first {
            self.out.push(b'{');
        }
        self.out.push(b'}');
    }
}

/// Room for `{"key":` or `,"key":` on the stack (longer keys are written piece by piece).
const KEY_BUF: usize = 48;
/// An [`analyzers::InlineStr`] value with its quotes, at most (longer ones take the
/// general path).
const INLINE_STR_BUF: usize = 40;
/// The longest address text with its quotes.
const QUOTED_IP_BUF: usize = analyzers::net::IPV6_TEXT_MAX + 2;

/// Appends `a[..n]`: the whole array is copied (a fixed size, so plain vector moves and no
/// copy call) and the surplus cut off, cheaper for these few dozen bytes than an append of
/// a run-time length.
#[inline(always)]
fn append_front<const N: usize>(out: &mut Vec<u8>, a: &[u8; N], n: usize) {
    let start = out.len();
    out.extend_from_slice(a);
    out.truncate(start + n.min(N));
}

/// An address's text between quotes at the front of `buf`; returns the length.
#[inline(always)]
fn quoted_ip_text(v: IpAddr, buf: &mut [u8; QUOTED_IP_BUF]) -> usize {
    let mut t = [0u8; analyzers::net::IPV6_TEXT_MAX];
    let n = analyzers::net::ip_text(v, &mut t);
    buf[0] = b'"';
    buf[1..1 + analyzers::net::IPV6_TEXT_MAX].copy_from_slice(&t);
    buf[1 + n] = b'"';
    n + 2
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
    let mut q = [0u8; QUOTED_IP_BUF];
    let n = quoted_ip_text(v, &mut q);
    append_front(out, &q, n);
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
    fn floats_match_serde_json() {
        let mut vals = vec![
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-9,
            1.5e-5,
            123.456789012,
            1e21,
            1e22,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Durations and RTTs as the writer makes them: nanoseconds over 1e9.
        let mut n: u64 = 1;
        while n < 1 << 60 {
            vals.push(n as f64 / 1e9);
            vals.push((n * 7 + 3) as f64 / 1e9);
            n *= 3;
        }
        for v in vals {
            let mut out = Vec::new();
            Obj::open(&mut out).f64("v", v).close();
            let want = format!("{{\"v\":{}}}", serde_json::to_string(&v).unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v:?}");
        }
    }

    #[test]
    fn numbers_match_display() {
        let mut vals: Vec<u64> = vec![0, u64::MAX, u64::MAX - 1, i64::MAX as u64];
        for p in 0..20 {
            let t = 10u64.pow(p);
            vals.extend([t - 1, t, t + 1, t.saturating_mul(7) / 3]);
        }
        for v in vals {
            let mut out = Vec::new();
            Obj::open(&mut out).u64("n", v).close();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{{\"n\":{v}}}"));
            let i = v as i64;
            for i in [i, i.wrapping_neg(), i64::MIN] {
                let mut out = Vec::new();
                Obj::open(&mut out).i64("n", i).close();
                assert_eq!(String::from_utf8(out).unwrap(), format!("{{\"n\":{i}}}"));
            }
        }
        let mut out = Vec::new();
        Obj::open(&mut out).close();
        assert_eq!(out, b"{}");
    }

    #[test]
    fn inline_strings_match_serde_json() {
        fn check<const N: usize>(s: &str) {
            let v = analyzers::InlineStr::<N>::new(s);
            let mut out = Vec::new();
            Obj::open(&mut out).u64("a", 1).inline_str("s", &v).close();
            let want = format!(
                "{{\"a\":1,\"s\":{}}}",
                serde_json::to_string(v.as_str()).unwrap()
            );
            assert_eq!(String::from_utf8(out).unwrap(), want, "{N} {s:?}");
        }
        for s in [
            "",
            "1:abc+/=",
            "ShADadFf",
            "quote\"d",
            "ctl\u{1}",
            "日本",
            &"x".repeat(70),
        ] {
            check::<24>(s);
            check::<31>(s);
            check::<64>(s);
        }
    }

    #[test]
    fn keys_of_any_length_are_written_whole() {
        // Keys around the stack buffer's limit (44 bytes) and past it, first and not first.
        for len in [1usize, 43, 44, 45, 200] {
            let k = "k".repeat(len);
            let mut out = Vec::new();
            let ip: IpAddr = "fe80::1".parse().unwrap();
            Obj::open(&mut out)
                .u64(&k, 1)
                .bool(&k, false)
                .ip(&k, ip)
                .i64(&k, -2)
                .close();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{{\"{k}\":1,\"{k}\":false,\"{k}\":\"fe80::1\",\"{k}\":-2}}"),
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
