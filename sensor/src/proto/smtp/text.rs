//! Header text: RFC 2047 encoded words, RFC 2231 parameters (continuations, charsets),
//! `Content-Type` / `Content-Disposition` parameters, charsets through `encoding_rs`
//! (ISO-2022-JP, Shift_JIS, EUC-JP, UTF-8...). Everything is bounded by the caller's header cap;
//! nothing here allocates more than a small multiple of its input.

/// Longest decoded header value kept (characters).
pub const MAX_VALUE_CHARS: usize = 1024;

/// Bytes in `charset` to text; unknown charsets are read as UTF-8 (lossy).
pub fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    // RFC 2231 allows `charset*language` in encoded words.
    let label = charset.split('*').next().unwrap_or("").trim();
    match encoding_rs::Encoding::for_label(label.as_bytes()) {
        Some(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Raw header bytes (8-bit allowed, RFC 6532) to text.
pub fn raw_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        // Legacy Japanese mail sometimes carries raw Shift_JIS / EUC-JP; read as Shift_JIS.
        Err(_) => encoding_rs::SHIFT_JIS
            .decode_without_bom_handling(b)
            .0
            .into_owned(),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Base64 of a short value (header words), lenient: skips anything outside the alphabet.
pub fn b64_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut n = 0u8;
    for &c in s {
        let Some(v) = b64_value(c) else { continue };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

pub fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Quoted-printable bytes (`=XX`); `underscore_space` for RFC 2047 Q encoding.
pub fn qp_decode(s: &[u8], underscore_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'=' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if underscore_space && c == b'_' {
            b' '
        } else {
            c
        });
        i += 1;
    }
    out
}

/// One `=?charset?enc?text?=` at the start of `s`: (charset, decoded bytes, length used).
fn encoded_word(s: &[u8]) -> Option<(&[u8], Vec<u8>, usize)> {
    let rest = s.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|&c| c == b'?')?;
    let charset = &rest[..q1];
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest
        .get(text_start..)?
        .windows(2)
        .position(|w| w == b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    let bytes = match enc {
        b'B' | b'b' => b64_decode(text),
        b'Q' | b'q' => qp_decode(text, true),
        _ => return None,
    };
    Some((charset, bytes, 2 + text_start + text_len + 2))
}

/// Decodes RFC 2047 encoded words in a header value. Whitespace between adjacent encoded
/// words is dropped, and adjacent words in one charset are decoded together (a UTF-8
/// character or an ISO-2022-JP escape may span two words).
pub fn decode_words(value: &[u8]) -> String {
    let mut out = String::new();
    let mut pending: Option<(Vec<u8>, Vec<u8>)> = None; // (charset, bytes)
    let mut gap: Vec<u8> = Vec::new(); // whitespace after the last encoded word
    let mut plain: Vec<u8> = Vec::new();
    let flush_pending = |out: &mut String, p: &mut Option<(Vec<u8>, Vec<u8>)>| {
        if let Some((cs, b)) = p.take() {
            out.push_str(&decode_charset(&String::from_utf8_lossy(&cs), &b));
        }
    };
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'=' && value.get(i + 1) == Some(&b'?') {
            if let Some((cs, bytes, used)) = encoded_word(&value[i..]) {
                if !plain.is_empty() {
                    flush_pending(&mut out, &mut pending);
                    out.push_str(&raw_text(&plain));
                    plain.clear();
                }
                gap.clear();
                match &mut pending {
                    Some((pcs, pb)) if pcs.eq_ignore_ascii_case(cs) => pb.extend_from_slice(&bytes),
                    _ => {
                        flush_pending(&mut out, &mut pending);
                        pending = Some((cs.to_vec(), bytes));
                    }
                }
                i += used;
                continue;
            }
        }
        let c = value[i];
        if pending.is_some() && plain.is_empty() && (c == b' ' || c == b'\t') {
            gap.push(c);
        } else {
            if plain.is_empty() {
                flush_pending(&mut out, &mut pending);
                plain.append(&mut gap);
            }
            plain.push(c);
        }
        i += 1;
    }
    flush_pending(&mut out, &mut pending);
    plain.splice(0..0, gap.drain(..));
    out.push_str(&raw_text(&plain));
    clip(out)
}

/// Caps a value at [`MAX_VALUE_CHARS`] and removes line breaks.
pub fn clip(s: String) -> String {
    let s = if s.contains(['\r', '\n']) {
        s.replace(['\r', '\n'], "")
    } else {
        s
    };
    if s.chars().count() > MAX_VALUE_CHARS {
        s.chars().take(MAX_VALUE_CHARS).collect()
    } else {
        s
    }
}

/// A structured header (`Content-Type`, `Content-Disposition`): lower-case value and its
/// parameters (name lower case, raw value unquoted).
pub struct Structured {
    pub value: String,
    pub params: Vec<(String, Vec<u8>)>,
}

pub fn parse_structured(h: &[u8]) -> Structured {
    let mut parts = split_params(h).into_iter();
    let value = parts
        .next()
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut params = Vec::new();
    for p in parts.take(64) {
        let Some(eq) = p.iter().position(|&c| c == b'=') else {
            continue;
        };
        let name = String::from_utf8_lossy(&p[..eq])
            .trim()
            .to_ascii_lowercase();
        let mut v = trim(&p[eq + 1..]).to_vec();
        if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
            v = unquote(&v[1..v.len() - 1]);
        }
        params.push((name, v));
    }
    Structured { value, params }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

fn unquote(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut esc = false;
    for &c in b {
        if esc {
            out.push(c);
            esc = false;
        } else if c == b'\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits on `;` outside quoted strings.
fn split_params(h: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let (mut q, mut esc) = (false, false);
    for &c in h {
        if esc {
            esc = false;
        } else if q && c == b'\\' {
            esc = true;
        } else if c == b'"' {
            q = !q;
        } else if c == b';' && !q {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// `%XX` decoding of an RFC 2231 extended value.
fn pct_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

impl Structured {
    /// A parameter decoded: RFC 2231 (`name*=charset'lang'%XX`, `name*0*=`, `name*1=`...)
    /// first, else the plain value with RFC 2047 words decoded (common in Japanese mail).
    pub fn param(&self, name: &str) -> Option<String> {
        let star = format!("{name}*");
        if let Some((_, v)) = self.params.iter().find(|(n, _)| *n == star) {
            return Some(clip(ext_value(v, None).1));
        }
        // Continuations: name*0, name*0*, name*1...
        let mut segs: Vec<(u32, bool, &[u8])> = Vec::new();
        for (n, v) in &self.params {
            let Some(rest) = n.strip_prefix(&star) else {
                continue;
            };
            let (num, enc) = match rest.strip_suffix('*') {
                Some(r) => (r, true),
                None => (rest, false),
            };
            if let Ok(i) = num.parse::<u32>() {
                segs.push((i, enc, v));
            }
        }
        if !segs.is_empty() {
            segs.sort_by_key(|s| s.0);
            let mut charset: Option<String> = None;
            let mut bytes = Vec::new();
            for (i, enc, v) in segs {
                if enc {
                    if i == 0 {
                        let (cs, _) = ext_value(v, Some(&mut bytes));
                        charset = Some(cs);
                    } else {
                        bytes.extend_from_slice(&pct_decode(v));
                    }
                } else {
                    bytes.extend_from_slice(v);
                }
            }
            let text = match charset {
                Some(cs) if !cs.is_empty() => decode_charset(&cs, &bytes),
                _ => raw_text(&bytes),
            };
            return Some(clip(text));
        }
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| decode_words(v))
    }
}

/// `charset'lang'%XX...`: (charset, text); when `raw_into` is given, the undecoded bytes are
/// appended there instead (continuations decode all segments together).
fn ext_value(v: &[u8], raw_into: Option<&mut Vec<u8>>) -> (String, String) {
    let mut it = v.splitn(3, |&c| c == b'\'');
    let (cs, data) = match (it.next(), it.next(), it.next()) {
        (Some(cs), Some(_lang), Some(data)) => (String::from_utf8_lossy(cs).into_owned(), data),
        _ => (String::new(), v),
    };
    let bytes = pct_decode(data);
    match raw_into {
        Some(buf) => {
            buf.extend_from_slice(&bytes);
            (cs, String::new())
        }
        None => {
            let text = if cs.is_empty() {
                raw_text(&bytes)
            } else {
                decode_charset(&cs, &bytes)
            };
            (cs, text)
        }
    }
}

/// The address inside `<...>` of a MAIL FROM / RCPT TO argument (or the first word).
pub fn envelope_address(arg: &[u8]) -> String {
    let arg = trim(arg);
    let addr = match (
        arg.iter().position(|&c| c == b'<'),
        arg.iter().position(|&c| c == b'>'),
    ) {
        (Some(s), Some(e)) if e > s => &arg[s + 1..e],
        _ => arg.split(|c| c.is_ascii_whitespace()).next().unwrap_or(&[]),
    };
    let s = raw_text(addr);
    s.chars().take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2047_words() {
        assert_eq!(decode_words(b"=?UTF-8?B?5pel5pys6Kqe?="), "日本語");
        assert_eq!(
            decode_words(b"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=.txt"),
            "日本語.txt"
        );
        // Split inside a UTF-8 character, joined by folding whitespace.
        assert_eq!(
            decode_words(b"=?UTF-8?B?5pel5pys?= =?UTF-8?B?6Kqe?="),
            "日本語"
        );
        assert_eq!(
            decode_words(b"=?iso-8859-1?Q?caf=E9_au_lait?= x"),
            "café au lait x"
        );
        assert_eq!(decode_words(b"plain  text"), "plain  text");
        assert_eq!(decode_words(b"=?bogus"), "=?bogus");
    }

    #[test]
    fn rfc2231_params() {
        let s = parse_structured(
            b"attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.exe; size=3",
        );
        assert_eq!(s.value, "attachment");
        assert_eq!(s.param("filename").unwrap(), "日本語.exe");
        let s = parse_structured(
            b"attachment; filename*0*=ISO-2022-JP''%1B%24B%46%7C; filename*1*=%4B%5C%1B%28B; filename*2=.zip",
        );
        assert_eq!(s.param("filename").unwrap(), "日本.zip");
        let s = parse_structured(b"application/zip; name=\"a \\\"b\\\";c.zip\"");
        assert_eq!(s.value, "application/zip");
        assert_eq!(s.param("name").unwrap(), "a \"b\";c.zip");
        let s =
            parse_structured(b"attachment; filename=\"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=.pdf\"");
        assert_eq!(s.param("filename").unwrap(), "日本語.pdf");
    }

    #[test]
    fn envelope() {
        assert_eq!(envelope_address(b" <a@b.example> SIZE=100"), "a@b.example");
        assert_eq!(envelope_address(b"<>"), "");
        assert_eq!(envelope_address(b"x@y"), "x@y");
    }
}
