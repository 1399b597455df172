//! Application payloads: TLS ClientHello with SNI (and plausible server flights), HTTP/1.1
//! requests with Host and responses, NTP.

/// Parameters of a ClientHello.
#[derive(Clone, Debug)]
pub struct ClientHello<'a> {
    /// Server name (SNI extension); `None` leaves the extension out.
    pub sni: Option<&'a str>,
    /// 32 bytes of client random (and session id) are derived from this.
    pub seed: u64,
    /// Add a 1216-byte ML-KEM key share (as modern browsers do), making the hello ~1.8 KB.
    pub pq_key_share: bool,
    pub alpn: &'a [&'a str],
}

fn fill(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn ext(out: &mut Vec<u8>, typ: u16, body: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// A TLS record (type 22, handshake) holding one ClientHello.
pub fn tls_client_hello(ch: &ClientHello) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[0x03, 0x03]);
    body.extend_from_slice(&fill(ch.seed, 32));
    body.push(32);
    body.extend_from_slice(&fill(ch.seed.wrapping_add(1), 32));
    let suites = u16s(&[
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ]);
    body.extend_from_slice(&(suites.len() as u16).to_be_bytes());
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]);

    let mut exts = Vec::new();
    if let Some(name) = ch.sni {
        let n = name.as_bytes();
        let mut sn = Vec::new();
        sn.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
        sn.push(0);
        sn.extend_from_slice(&(n.len() as u16).to_be_bytes());
        sn.extend_from_slice(n);
        ext(&mut exts, 0x0000, &sn);
    }
    ext(&mut exts, 0x0017, &[]); // extended master secret
    ext(&mut exts, 0xff01, &[0]); // renegotiation info
    let groups = if ch.pq_key_share {
        u16s(&[0x11ec, 0x001d, 0x0017, 0x0018])
    } else {
        u16s(&[0x001d, 0x0017, 0x0018])
    };
    let mut g = (groups.len() as u16).to_be_bytes().to_vec();
    g.extend_from_slice(&groups);
    ext(&mut exts, 0x000a, &g);
    ext(&mut exts, 0x000b, &[1, 0]); // ec point formats
    ext(&mut exts, 0x0023, &[]); // session ticket
    if !ch.alpn.is_empty() {
        let mut l = Vec::new();
        for p in ch.alpn {
            l.push(p.len() as u8);
            l.extend_from_slice(p.as_bytes());
        }
        let mut a = (l.len() as u16).to_be_bytes().to_vec();
        a.extend_from_slice(&l);
        ext(&mut exts, 0x0010, &a);
    }
    ext(&mut exts, 0x0005, &[1, 0, 0, 0, 0]); // status request
    let sigs = u16s(&[
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ]);
    let mut s = (sigs.len() as u16).to_be_bytes().to_vec();
    s.extend_from_slice(&sigs);
    ext(&mut exts, 0x000d, &s);
    // key share
    let mut ks = Vec::new();
    if ch.pq_key_share {
        ks.extend_from_slice(&0x11ecu16.to_be_bytes());
        ks.extend_from_slice(&1216u16.to_be_bytes());
        ks.extend_from_slice(&fill(ch.seed.wrapping_add(2), 1216));
    }
    ks.extend_from_slice(&0x001du16.to_be_bytes());
    ks.extend_from_slice(&32u16.to_be_bytes());
    ks.extend_from_slice(&fill(ch.seed.wrapping_add(3), 32));
    let mut k = (ks.len() as u16).to_be_bytes().to_vec();
    k.extend_from_slice(&ks);
    ext(&mut exts, 0x0033, &k);
    ext(&mut exts, 0x002d, &[1, 1]); // psk key exchange modes
    ext(&mut exts, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // supported versions
    if ch.pq_key_share {
        ext(&mut exts, 0x0015, &[0u8; 300]); // padding, as browsers add
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);

    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    tls_record(22, 0x0301, &hs)
}

/// A TLS record of `content_type` with `version` around `payload`.
pub fn tls_record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![content_type];
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A plausible TLS 1.3 server flight: ServerHello, ChangeCipherSpec, then `encrypted_len`
/// bytes of application-data records (certificate etc.).
pub fn tls_server_flight(seed: u64, encrypted_len: usize) -> Vec<u8> {
    let mut sh = vec![0x03, 0x03];
    sh.extend_from_slice(&fill(seed, 32));
    sh.push(32);
    sh.extend_from_slice(&fill(seed.wrapping_add(1), 32));
    sh.extend_from_slice(&[0x13, 0x01, 0]);
    let mut exts = Vec::new();
    ext(&mut exts, 0x002b, &[0x03, 0x04]);
    let mut ks = 0x001du16.to_be_bytes().to_vec();
    ks.extend_from_slice(&32u16.to_be_bytes());
    ks.extend_from_slice(&fill(seed.wrapping_add(2), 32));
    ext(&mut exts, 0x0033, &ks);
    sh.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    sh.extend_from_slice(&exts);
    let mut hs = vec![0x02];
    hs.extend_from_slice(&(sh.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&sh);
    let mut out = tls_record(22, 0x0303, &hs);
    out.extend_from_slice(&tls_record(20, 0x0303, &[1]));
    out.extend_from_slice(&tls_app_data(seed.wrapping_add(3), encrypted_len));
    out
}

/// `len` bytes (at least 5) of TLS application-data records.
pub fn tls_app_data(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut left = len.max(6);
    let mut s = seed;
    while left > 0 {
        let body = (left - 5).min(16384 + 256);
        out.extend_from_slice(&tls_record(23, 0x0303, &fill(s, body)));
        left -= body + 5;
        s = s.wrapping_add(1);
        if left > 0 && left < 6 {
            // Fold a tiny remainder into one last minimal record.
            out.extend_from_slice(&tls_record(23, 0x0303, &fill(s, 1)));
            left = 0;
        }
    }
    out
}

/// An HTTP/1.1 GET with a Host header.
pub fn http_get(host: &str, path: &str, user_agent: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// An HTTP/1.1 response with a body of `body_len` bytes.
pub fn http_response(status: u16, content_type: &str, body_len: usize, seed: u64) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        404 => "Not Found",
        _ => "Status",
    };
    let mut v = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: nginx\r\nContent-Type: {content_type}\r\n\
         Content-Length: {body_len}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let body: Vec<u8> = fill(seed, body_len)
        .into_iter()
        .map(|b| b"abcdefghijklmnopqrstuvwxyz0123456789 <>/=\n"[(b % 42) as usize])
        .collect();
    v.extend_from_slice(&body);
    v
}

/// A 48-byte NTPv4 client (mode 3) or server (mode 4) packet.
pub fn ntp(server: bool, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; 48];
    v[0] = if server { 0x24 } else { 0x23 }; // LI 0, VN 4, mode 4 / 3
    if server {
        v[1] = 2; // stratum
        v[2] = 3;
        v[3] = 0xe9;
        v[12..16].copy_from_slice(&[10, 0, 0, 1]);
    } else {
        v[2] = 6;
        v[3] = 0x20;
    }
    let r = fill(seed, 8);
    v[40..48].copy_from_slice(&r);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_lengths_consistent() {
        for pq in [false, true] {
            let r = tls_client_hello(&ClientHello {
                sni: Some("www.example.com"),
                seed: 1,
                pq_key_share: pq,
                alpn: &["h2", "http/1.1"],
            });
            let rec_len = u16::from_be_bytes([r[3], r[4]]) as usize;
            assert_eq!(rec_len, r.len() - 5);
            let hs_len = u32::from_be_bytes([0, r[6], r[7], r[8]]) as usize;
            assert_eq!(hs_len, r.len() - 9);
            assert!(r.windows(15).any(|w| w == b"www.example.com"));
            if pq {
                assert!(r.len() > 1500);
            }
        }
    }

    #[test]
    fn app_data_exact_length() {
        for n in [6, 7, 100, 16389, 20000, 40000] {
            let d = tls_app_data(3, n);
            assert!(d.len() == n || d.len() == n + 6, "{n} -> {}", d.len());
        }
    }
}
