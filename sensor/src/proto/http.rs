//! HTTP request Host extraction.
//!
//! From the first bytes a client sent on a TCP connection, decide whether it looks like an
//! HTTP/1.x request and, if so, which host it is for:
//! - absolute-form targets (`GET http://host/ HTTP/1.1`, sent to proxies) use the target's
//!   authority; RFC 9112 §3.2.2 says a server must then ignore `Host`, so do we;
//! - otherwise the first `Host` header (name case-insensitive, value trimmed of spaces/tabs);
//! - for `CONNECT` without a usable `Host`, the authority-form request target.
//!
//! The result is normalised: userinfo and `:port` removed (IPv6 literals keep their
//! brackets: `[2001:db8::1]`), lowercased, one trailing dot removed, at most 253 bytes, and
//! only characters legal in a URI host. Anything else yields `None`.
//!
//! The bytes are attacker-controlled: only the first [`MAX_HEAD_BYTES`] are examined, only
//! complete (newline-terminated) lines are trusted, scanning stops at the blank line ending
//! the header block, every access is bounds-checked, and no allocation depends on a
//! declared length (the only allocation is the returned name, at most 253 bytes).

use std::net::Ipv6Addr;

/// Request methods recognised as the start of an HTTP request.
const METHODS: [&[u8]; 9] = [
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
];

/// Whether a byte begins some method in [`METHODS`].
static METHOD_FIRST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < METHODS.len() {
        t[METHODS[i][0] as usize] = true;
        i += 1;
    }
    t
};

/// How much of the payload is searched for the request line and headers.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Longest DNS name in text form, without the trailing dot.
const MAX_HOST_LEN: usize = 253;
/// Longest authority considered (host + brackets + userinfo + port): anything longer is
/// rejected before doing any work on it.
const MAX_AUTHORITY_LEN: usize = 512;

/// The method token at the start of `payload`, if it is a known one followed by a space.
fn method_of(payload: &[u8]) -> Option<&'static [u8]> {
    // Most payloads asked about (TLS records, binary protocols) start with no method's
    // first letter: one table read instead of nine comparisons.
    if !payload
        .first()
        .is_some_and(|&b| METHOD_FIRST_BYTES[usize::from(b)])
    {
        return None;
    }
    METHODS
        .iter()
        .copied()
        .find(|m| payload.starts_with(m) && payload.get(m.len()) == Some(&b' '))
}

/// Cheap check: does `payload` start with a known method token followed by a space?
/// Methods are case-sensitive (RFC 9110 §9.1), so `get /` does not count.
pub fn looks_like_http_request(payload: &[u8]) -> bool {
    method_of(payload).is_some()
}

/// Iterates complete lines (terminated by LF, optional CR stripped). An unterminated tail
/// is not yielded: a header cut off by the capture may be truncated, so it's not trusted.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let nl = self.rest.iter().position(|&b| b == b'\n')?;
        let line = self.rest.get(..nl)?;
        self.rest = self.rest.get(nl + 1..).unwrap_or(&[]);
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// Strips leading and trailing optional whitespace (SP / HTAB).
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// For an absolute-form target (`scheme://authority[/path][?query]`), the authority.
fn absolute_form_authority(target: &[u8]) -> Option<&[u8]> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = target.get(..sep)?;
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )  (RFC 3986 §3.1)
    let (first, rest) = scheme.split_first()?;
    if !first.is_ascii_alphabetic()
        || !rest
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let after = target.get(sep + 3..)?;
    let end = after
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    after.get(..end)
}

/// Characters allowed in a URI reg-name (unreserved / pct-encoded / sub-delims).
fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// `:port` suffix check: empty (`host:` is valid URI syntax) or up to five digits.
fn valid_port(p: &[u8]) -> bool {
    p.len() <= 5 && p.iter().all(u8::is_ascii_digit)
}

fn ascii_lowercase_string(b: &[u8]) -> Option<String> {
    // Callers only pass ASCII, so this cannot fail; still no panic path if it did.
    std::str::from_utf8(b).ok().map(str::to_ascii_lowercase)
}

/// Normalises an authority (`host[:port]`, no userinfo) to a host name; see module docs.
fn normalize_authority(auth: &[u8]) -> Option<String> {
    if auth.is_empty() || auth.len() > MAX_AUTHORITY_LEN {
        return None;
    }
    if let Some(after_open) = auth.strip_prefix(b"[") {
        // IP literal: "[v6]" optionally followed by ":port".
        let close = after_open.iter().position(|&b| b == b']')?;
        let inner = after_open.get(..close)?;
        let rest = after_open.get(close + 1..)?;
        match rest.split_first() {
            None => {}
            Some((b':', port)) if valid_port(port) => {}
            _ => return None,
        }
        let text = std::str::from_utf8(inner).ok()?;
        text.parse::<Ipv6Addr>().ok()?;
        return Some(format!("[{}]", text.to_ascii_lowercase()));
    }

    let colons = auth.iter().filter(|&&b| b == b':').count();
    let host = match colons {
        0 => auth,
        1 => {
            let i = auth.iter().position(|&b| b == b':')?;
            if !valid_port(auth.get(i + 1..)?) {
                return None;
            }
            auth.get(..i)?
        }
        _ => {
            // Unbracketed IPv6 is invalid in Host, but some clients send it; only accept
            // it if it really is an IPv6 address, and render it bracketed.
            let text = std::str::from_utf8(auth).ok()?;
            text.parse::<Ipv6Addr>().ok()?;
            return Some(format!("[{}]", text.to_ascii_lowercase()));
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN || !host.iter().all(|&b| is_reg_name_byte(b)) {
        return None;
    }
    ascii_lowercase_string(host)
}

/// The host the first HTTP request in `payload` is for, normalised; see the module docs.
///
/// Returns `None` if `payload` does not start with a complete request line of a known
/// method and an `HTTP/` version, or no acceptable host is found in the examined bytes.
pub fn request_host(payload: &[u8]) -> Option<String> {
    let method = method_of(payload)?;
    let head = payload.get(..MAX_HEAD_BYTES).unwrap_or(payload);
    let mut lines = Lines { rest: head };

    // Request line: METHOD SP request-target SP HTTP-version
    let request_line = lines.next()?;
    let after_method = request_line.get(method.len() + 1..)?;
    let sp = after_method.iter().position(|&b| b == b' ')?;
    let target = after_method.get(..sp)?;
    let version = after_method.get(sp + 1..)?;
    if target.is_empty() || !version.starts_with(b"HTTP/") {
        return None;
    }

    if let Some(auth) = absolute_form_authority(target) {
        // Only a URI authority may carry userinfo ("user:pw@host"); drop it. In a Host
        // header or CONNECT target an "@" is simply invalid (rejected below).
        let auth = match auth.iter().rposition(|&b| b == b'@') {
            Some(i) => auth.get(i + 1..)?,
            None => auth,
        };
        return normalize_authority(auth);
    }

    let mut host_value: Option<&[u8]> = None;
    for line in lines {
        if line.is_empty() {
            break; // end of the header block
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue; // obsolete line folding: continuation of the previous field
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        // No whitespace is allowed between field name and colon (RFC 9112 §5.1), so
        // "Host :" is not a Host header.
        if line
            .get(..colon)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"host"))
        {
            // The first Host wins; a request with several is invalid anyway.
            host_value = line.get(colon + 1..).map(trim_ows);
            break;
        }
    }

    let from_header = host_value.and_then(normalize_authority);
    if from_header.is_none() && method == b"CONNECT" {
        return normalize_authority(target);
    }
    from_header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(p: &[u8]) -> Option<String> {
        request_host(p)
    }

    #[test]
    fn methods() {
        for m in [
            "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
        ] {
            let p = format!("{m} / HTTP/1.1\r\n");
            assert!(looks_like_http_request(p.as_bytes()), "{m}");
        }
        for p in [
            &b"get / HTTP/1.1"[..],
            b"GET",
            b"GET/",
            b"GETX / HTTP/1.1",
            b"PROPFIND / HTTP/1.1",
            b" GET / HTTP/1.1",
            b"",
            b"\x16\x03\x01\x00\x10\x01",
        ] {
            assert!(!looks_like_http_request(p), "{p:?}");
        }
        assert!(looks_like_http_request(b"GET "));
    }

    #[test]
    fn simple_host_header() {
        assert_eq!(
            host(b"GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            host(b"GET /x HTTP/1.0\r\nUser-Agent: a\r\nhOsT:\t example.org:8080 \t\r\nAccept: */*\r\n\r\n")
                .as_deref(),
            Some("example.org")
        );
        // Bare LF line endings.
        assert_eq!(
            host(b"POST /a HTTP/1.1\nHost: a.b.\nContent-Length: 0\n\n").as_deref(),
            Some("a.b")
        );
        // Headers end without a blank line because the payload ends: still fine.
        assert_eq!(
            host(b"HEAD / HTTP/1.1\r\nHost: a.example\r\n").as_deref(),
            Some("a.example")
        );
        // First Host wins.
        assert_eq!(
            host(b"GET / HTTP/1.1\r\nHost: one.example\r\nHost: two.example\r\n\r\n").as_deref(),
            Some("one.example")
        );
    }

    #[test]
    fn ip_hosts_and_ports() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"192.0.2.1", Some("192.0.2.1")),
            (b"192.0.2.1:80", Some("192.0.2.1")),
            (b"[2001:DB8::1]", Some("[2001:db8::1]")),
            (b"[2001:db8::1]:8443", Some("[2001:db8::1]")),
            (b"[::ffff:192.0.2.1]:80", Some("[::ffff:192.0.2.1]")),
            (b"2001:db8::1", Some("[2001:db8::1]")), // unbracketed but unambiguous
            (b"host:", Some("host")),
            (b"[2001:db8::1", None),
            (b"[2001:db8::1]x", None),
            (b"[2001:db8::1]:http", None),
            (b"[not-ipv6]", None),
            (b"[]", None),
            (b"a:b:c", None),
            (b"host:80:80", None),
            (b"host:123456", None),
            (b"host:-1", None),
            (b":80", None),
            (b"", None),
            (b".", None),
        ];
        for (value, want) in cases {
            let mut p = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            p.extend_from_slice(value);
            p.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                host(&p).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn rejects_bad_values() {
        let bad: &[&[u8]] = &[
            b"exa mple.com",
            b"exa\x01mple.com",
            b"exa\x7fmple.com",
            b"a\tb",
            b"a\rb",
            b"ex/ample",
            b"ex?ample",
            b"ex#ample",
            b"ex<ample>",
            b"user@host.example",
            "b\u{fc}cher.de".as_bytes(),
            b"\xff\xfe",
        ];
        for value in bad {
            let mut p = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            p.extend_from_slice(value);
            p.extend_from_slice(b"\r\n\r\n");
            assert_eq!(host(&p), None, "{:?}", String::from_utf8_lossy(value));
        }
        let ok = "a".repeat(253);
        let p = format!("GET / HTTP/1.1\r\nHost: {ok}\r\n\r\n");
        assert_eq!(host(p.as_bytes()), Some(ok.clone()));
        let p = format!("GET / HTTP/1.1\r\nHost: {ok}.:80\r\n\r\n");
        assert_eq!(host(p.as_bytes()), Some(ok));
        let long = "a".repeat(254);
        let p = format!("GET / HTTP/1.1\r\nHost: {long}\r\n\r\n");
        assert_eq!(host(p.as_bytes()), None);
        let huge = "a".repeat(100_000);
        let p = format!("GET / HTTP/1.1\r\nHost: {huge}\r\n\r\n");
        assert_eq!(host(p.as_bytes()), None);
    }

    #[test]
    fn absolute_form_overrides_host() {
        assert_eq!(
            host(b"GET http://Proxy.Target.example:8080/path?q HTTP/1.1\r\nHost: other\r\n\r\n")
                .as_deref(),
            Some("proxy.target.example")
        );
        assert_eq!(
            host(b"GET https://user:pw@secure.example/ HTTP/1.1\r\n\r\n").as_deref(),
            Some("secure.example")
        );
        assert_eq!(
            host(b"GET http://[2001:db8::2]:3128 HTTP/1.1\r\n\r\n").as_deref(),
            Some("[2001:db8::2]")
        );
        assert_eq!(
            host(b"POST ftp://files.example?x HTTP/1.1\r\n\r\n").as_deref(),
            Some("files.example")
        );
        // Absolute-form with an unusable authority: no fallback to Host.
        assert_eq!(
            host(b"GET file:///etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n"),
            None
        );
        // A path containing "://" is origin-form, Host is used.
        assert_eq!(
            host(b"GET /redirect?to=http://x.example/ HTTP/1.1\r\nHost: h.example\r\n\r\n")
                .as_deref(),
            Some("h.example")
        );
        // Invalid scheme characters: not absolute-form.
        assert_eq!(
            host(b"GET 1http://x.example/ HTTP/1.1\r\nHost: h.example\r\n\r\n").as_deref(),
            Some("h.example")
        );
    }

    #[test]
    fn connect() {
        assert_eq!(
            host(b"CONNECT Tunnel.Example:443 HTTP/1.1\r\n\r\n").as_deref(),
            Some("tunnel.example")
        );
        assert_eq!(
            host(b"CONNECT [2001:db8::3]:443 HTTP/1.1\r\nUser-Agent: x\r\n\r\n").as_deref(),
            Some("[2001:db8::3]")
        );
        // Host present: Host is used.
        assert_eq!(
            host(b"CONNECT a.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n").as_deref(),
            Some("b.example")
        );
        // Host unusable: fall back to the target.
        assert_eq!(
            host(b"CONNECT a.example:443 HTTP/1.1\r\nHost: b\x01\r\n\r\n").as_deref(),
            Some("a.example")
        );
        // Not CONNECT: no fallback to an origin-form target.
        assert_eq!(host(b"GET a.example:443 HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn header_block_boundaries() {
        // Host after the blank line is body, not a header.
        assert_eq!(
            host(b"POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nHost: body.example\r\n"),
            None
        );
        // Unterminated last line (cut by the capture) is not trusted.
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: partial.exa"), None);
        // Request line alone, cut.
        assert_eq!(host(b"GET / HTTP/1.1"), None);
        assert_eq!(host(b"CONNECT a.example:443 HTTP/1.1"), None);
        // Host beyond the examined window.
        let mut p = b"GET / HTTP/1.1\r\n".to_vec();
        while p.len() < MAX_HEAD_BYTES {
            p.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        p.extend_from_slice(b"Host: far.example\r\n\r\n");
        assert_eq!(host(&p), None);
    }

    #[test]
    fn header_name_matching() {
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost : x.example\r\n\r\n"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\nX-Host: x.example\r\n\r\n"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\nHostname: x.example\r\n\r\n"), None);
        // A folded continuation line that looks like Host is not a header.
        assert_eq!(
            host(b"GET / HTTP/1.1\r\nX-A: b\r\n Host: x.example\r\n\r\n"),
            None
        );
        // Lines without a colon are skipped.
        assert_eq!(
            host(b"GET / HTTP/1.1\r\ngarbage\r\nHOST:y.example\r\n\r\n").as_deref(),
            Some("y.example")
        );
        // Empty Host value.
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost:   \r\n\r\n"), None);
    }

    #[test]
    fn malformed_request_lines() {
        for p in [
            &b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"[..], // empty target
            b"GET / FTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /\r\nHost: a\r\n\r\n", // HTTP/0.9 style
            b"GET \r\n",
            b"GET ",
            b"GET \n\n\n",
        ] {
            assert_eq!(host(p), None, "{:?}", String::from_utf8_lossy(p));
        }
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
    }

    #[test]
    fn random_buffers_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        // Bias the alphabet towards bytes that matter to the parser.
        let alphabet = b"GET CONNECT HTTP/1.1\r\n:Host[]@.:/0123456789abcdef\t \x00\xff";
        for i in 0..20_000 {
            let len = (rng.next() % 300) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r.is_multiple_of(3) {
                        (r >> 32) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            match i % 3 {
                0 => {
                    let mut p = b"GET ".to_vec();
                    p.append(&mut buf);
                    buf = p;
                }
                1 => {
                    let mut p = b"CONNECT ".to_vec();
                    p.append(&mut buf);
                    buf = p;
                }
                _ => {}
            }
            let _ = looks_like_http_request(&buf);
            if let Some(h) = request_host(&buf) {
                assert!(!h.is_empty() && h.len() <= MAX_HOST_LEN + 2, "{h:?}");
                assert!(h.bytes().all(|b| (0x21..0x7f).contains(&b)), "{h:?}");
                assert_eq!(h, h.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn mutated_valid_requests_never_panic() {
        let mut rng = Rng(7);
        let seeds: [&[u8]; 3] = [
            b"GET / HTTP/1.1\r\nHost: www.example.com:8080\r\nAccept: */*\r\n\r\n",
            b"GET http://u@[2001:db8::1]:80/x HTTP/1.1\r\n\r\n",
            b"CONNECT example.net:443 HTTP/1.1\r\n\r\n",
        ];
        for i in 0..20_000 {
            let mut p = seeds[i % seeds.len()].to_vec();
            for _ in 0..(1 + rng.next() % 3) {
                let idx = (rng.next() as usize) % p.len();
                p[idx] = (rng.next() >> 24) as u8;
            }
            let cut = (rng.next() as usize) % (p.len() + 1);
            let _ = request_host(&p[..cut]);
        }
    }
}
