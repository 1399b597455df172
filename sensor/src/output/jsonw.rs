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

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        // Keys are the writer's own ASCII literals: no escaping needed.
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        string(self.out, v);
        self
    }

    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.str(k, v);
        }
        self
    }

    pub fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

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

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn ip(&mut self, k: &str, v: IpAddr) -> &mut Self {
        self.key(k);
        self.out.push(b'"');
        ip(self.out, v);
        self.out.push(b'"');
        self
    }

    /// A raw value the caller has already written as JSON (`f` appends it).
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
pub fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends the text form of an address exactly as `Display` writes it, without `fmt`.
pub fn ip(out: &mut Vec<u8>, v: IpAddr) {
    match v {
        IpAddr::V4(a) => ipv4(out, a.octets()),
        IpAddr::V6(a) => ipv6(out, a),
    }
}

fn ipv4(out: &mut Vec<u8>, octets: [u8; 4]) {
    let mut buf = [0u8; 15];
    let n = analyzers::net::ipv4_text(octets, &mut buf);
    out.extend_from_slice(buf.get(..n).unwrap_or_default());
}

/// std's rules: `::ffff:a.b.c.d` for v4-mapped, else lower-case hex groups with the first
/// longest run of two or more zero groups as `::`.
fn ipv6(out: &mut Vec<u8>, a: std::net::Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        ipv4(out, v4.octets());
        return;
    }
    let seg = a.segments();
    let (mut best, mut best_len, mut run) = (0usize, 0usize, 0usize);
    for (i, &s) in seg.iter().enumerate() {
        run = if s == 0 { run + 1 } else { 0 };
        if run > best_len {
            best_len = run;
            best = i + 1 - run;
        }
    }
    if best_len > 1 {
        hex_groups(out, &seg[..best]);
        out.extend_from_slice(b"::");
        hex_groups(out, &seg[best + best_len..]);
    } else {
        hex_groups(out, &seg);
    }
}

/// Groups as `{:x}` joined by `:`.
fn hex_groups(out: &mut Vec<u8>, groups: &[u16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        let mut b = [0u8; 4];
        let mut n = 0;
        // Digits from the highest non-zero nibble (at least one).
        for shift in [12u32, 8, 4, 0] {
            if g >> shift != 0 || shift == 0 {
                b[n] = HEX[((g >> shift) & 15) as usize];
                n += 1;
            }
        }
        out.extend_from_slice(&b[..n]);
    }
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
    fn addresses_match_display_on_every_zero_run_shape() {
        let check = |v: IpAddr| {
            let mut a = b"x".to_vec();
            ip(&mut a, v);
            assert_eq!(String::from_utf8(a).unwrap(), format!("x{v}"));
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..4 {
            // Every pattern of zero and non-zero groups, with groups of 1 to 4 hex digits.
            for mask in 0u32..256 {
                let r = next();
                let seg: [u16; 8] = std::array::from_fn(|i| {
                    let width = ((r >> (i * 2)) & 3) as u32 * 4 + 4;
                    let g = (r >> (16 + i * 5)) as u16 | 1;
                    if mask >> i & 1 == 1 {
                        g & ((1u32 << width) - 1) as u16
                    } else {
                        0
                    }
                });
                check(IpAddr::V6(std::net::Ipv6Addr::from(seg)));
            }
        }
        for _ in 0..5_000 {
            let r = next();
            check(IpAddr::V4(std::net::Ipv4Addr::from((r >> 32) as u32)));
            check(IpAddr::V4(std::net::Ipv4Addr::from(r as u32 & 0x0a0b_0c0d)));
            // v4-mapped and v4-compatible (the latter prints as plain groups).
            check(IpAddr::V6(
                std::net::Ipv4Addr::from(r as u32).to_ipv6_mapped(),
            ));
            check(IpAddr::V6(
                std::net::Ipv4Addr::from(r as u32).to_ipv6_compatible(),
            ));
            check(IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(r) << 64 | u128::from(next()),
            )));
        }
        for s in [
            "::",
            "::1",
            "1::",
            "::ffff:0.0.0.0",
            "::ffff:1.2.3.4",
            "::fffe:1.2.3.4",
            "64:ff9b::1.2.3.4",
            "1:0:0:1:0:0:0:1",
            "1:0:0:1:0:0:1:1",
            "0:1:0:1:0:1:0:1",
            "2001:db8:0:0:1:0:0:1",
            "fe80::ffff:ffff:ffff:ffff",
        ] {
            check(s.parse().unwrap());
        }
    }
}
