//! DNS message parsing with hickory-proto, into the sensor's own small struct. When a
//! message is too damaged for a full parse (bad record data, truncated answers), the header
//! and question are still read so the transaction is not lost.

use analyzers::DnsAnswer;
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::IpAddr;

/// Answers kept per message (a hostile response may carry thousands).
pub const MAX_ANSWERS: usize = 64;
/// Longest rdata text kept.
const MAX_RDATA_CHARS: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub struct DnsMessage {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    /// With the EDNS extended bits when the full parse succeeded.
    pub rcode: u16,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub qname: Option<String>,
    pub qtype: u16,
    pub qclass: u16,
    pub answers: Vec<DnsAnswer>,
    /// Only header and question could be read.
    pub partial: bool,
}

/// Presentation form of a name: no trailing dot (root is ".").
pub fn name_text(n: &Name) -> String {
    if let Some(s) = plain_name_text(n) {
        return s;
    }
    let mut s = n.to_string();
    if s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    s
}

fn rdata_text(d: &RData) -> String {
    let mut s = match d {
        RData::CNAME(n) => name_text(&n.0),
        RData::NS(n) => name_text(&n.0),
        RData::PTR(n) => name_text(&n.0),
        RData::MX(mx) => name_text(&mx.exchange),
        // The most common records carry only their address (`DnsAnswer::addr`).
        RData::A(_) | RData::AAAA(_) => String::new(),
        other => other.to_string(),
    };
    if s.len() > MAX_RDATA_CHARS {
        let mut cut = MAX_RDATA_CHARS;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The text of a name whose labels hickory's `Display` would print unchanged (letters,
/// digits, `_`, `-` after the first byte, `*` first; no `xn--` label, which it decodes), built
/// without the formatter: nearly every name on the wire, and two per DNS message. `None`
/// sends the name to the general path.
fn plain_name_text(n: &Name) -> Option<String> {
    if n.is_root() {
        return None;
    }
    // Bytes first, one UTF-8 check at the end (every byte kept is ASCII): a check per label
    // cost more than the copy.
    let mut s = Vec::with_capacity(n.len());
    for label in n.iter() {
        let (&first, rest) = label.split_first()?;
        let inner = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if !(first.is_ascii_alphanumeric() || first == b'_' || first == b'*')
            || !rest.iter().all(|&b| inner(b))
            || label.starts_with(b"xn--")
        {
            return None;
        }
        if !s.is_empty() {
            s.push(b'.');
        }
        s.extend_from_slice(label);
    }
    String::from_utf8(s).ok()
}

/// Parses one DNS message; `None` if not even the header and question can be read.
pub fn parse_message(bytes: &[u8]) -> Option<DnsMessage> {
    if let Some(m) = super::wire::parse_simple(bytes) {
        return Some(m);
    }
    parse_with_hickory(bytes)
}

/// [`parse_message`] by hickory alone (what `wire` is tested against).
pub(super) fn parse_with_hickory(bytes: &[u8]) -> Option<DnsMessage> {
    match Message::from_vec(bytes) {
        Ok(m) => Some(from_full(&m)),
        Err(_) => parse_partial(bytes),
    }
}

fn from_full(m: &Message) -> DnsMessage {
    let md = &m.metadata;
    let q = m.queries.first();
    let qname = q.map(|q| name_text(&q.name));
    DnsMessage {
        id: md.id,
        response: md.message_type == MessageType::Response,
        opcode: u8::from(md.op_code),
        rcode: u16::from(md.response_code),
        aa: md.authoritative,
        tc: md.truncation,
        rd: md.recursion_desired,
        ra: md.recursion_available,
        qtype: q.map(|q| u16::from(q.query_type)).unwrap_or(0),
        qclass: q.map(|q| u16::from(q.query_class)).unwrap_or(0),
        answers: m
            .answers
            .iter()
            .take(MAX_ANSWERS)
            .map(|r| DnsAnswer {
                name: answer_owner(name_text(&r.name), qname.as_deref()),
                rtype: u16::from(r.record_type()),
                ttl: r.ttl,
                data: rdata_text(&r.data),
                addr: match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                },
            })
            .collect(),
        qname,
        partial: false,
    }
}

/// An answer's owner name as the event holds it: empty when it is the question's name.
pub(super) fn answer_owner(name: String, qname: Option<&str>) -> String {
    if qname == Some(name.as_str()) {
        String::new()
    } else {
        name
    }
}

/// Header by hand (12 fixed bytes), question with hickory's decoder.
fn parse_partial(b: &[u8]) -> Option<DnsMessage> {
    let h = b.get(..12)?;
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let qdcount = u16::from_be_bytes([h[4], h[5]]);
    let mut msg = DnsMessage {
        id: u16::from_be_bytes([h[0], h[1]]),
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: flags & 0xf,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        qname: None,
        qtype: 0,
        qclass: 0,
        answers: Vec::new(),
        partial: true,
    };
    if qdcount > 0 {
        let mut dec = BinDecoder::new(b);
        dec.read_slice(12).ok()?;
        if let Ok(q) = Query::read(&mut dec) {
            msg.qname = Some(name_text(&q.name));
            msg.qtype = u16::from(q.query_type);
            msg.qclass = u16::from(q.query_class);
        }
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_print_as_hickory_prints_them() {
        let slow = |n: &Name| {
            let mut s = n.to_string();
            if s.len() > 1 && s.ends_with('.') {
                s.pop();
            }
            s
        };
        let labels: &[&[u8]] = &[
            b"www",
            b"Example",
            b"COM",
            b"_sip",
            b"_tcp",
            b"*",
            b"a-b",
            b"-ab",
            b"a*",
            b"x_y",
            b"xn--bcher-kva",
            b"XN--abc",
            b"sp ace",
            b"quo\"te",
            b"back\\slash",
            b"dot.ted",
            b"\x00nul",
            b"\xff\xfe",
            b"\xe6\x97\xa5",
            b"9",
            b"a",
        ];
        let mut checked = 0;
        for a in labels {
            for b in labels {
                for fqdn in [false, true] {
                    let Ok(mut n) = Name::from_labels(vec![a.to_vec(), b.to_vec()]) else {
                        continue;
                    };
                    n.set_fqdn(fqdn);
                    assert_eq!(name_text(&n), slow(&n), "{:?}.{:?}", a, b);
                    checked += 1;
                }
            }
        }
        assert!(checked > 400, "only {checked} names built");
        for a in ["0.0.0.0", "93.184.216.34", "255.255.255.255", "10.0.0.1"] {
            let r = RData::A(hickory_proto::rr::rdata::A(a.parse().unwrap()));
            assert_eq!(rdata_text(&r), "");
            let mut out = Vec::new();
            crate::output::jsonw::ip(&mut out, a.parse().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), r.to_string());
        }
        for a in [
            "::",
            "::1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "fe80::1:0:0:2",
        ] {
            let r = RData::AAAA(hickory_proto::rr::rdata::AAAA(a.parse().unwrap()));
            assert_eq!(rdata_text(&r), "");
            let mut out = Vec::new();
            crate::output::jsonw::ip(&mut out, a.parse().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), r.to_string());
        }
        assert_eq!(name_text(&Name::root()), ".");
        let one = Name::from_labels(vec![b"a".to_vec()]).unwrap();
        assert_eq!(name_text(&one), "a");
    }

    /// example.com A query, id 0x1234, RD.
    const QUERY: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l',
        b'e', 3, b'c', b'o', b'm', 0, 0, 1, 0, 1,
    ];

    fn response() -> Vec<u8> {
        let mut r = QUERY.to_vec();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1; // ancount
        r.extend_from_slice(&[
            0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34,
        ]);
        r
    }

    #[test]
    fn query_and_response() {
        let q = parse_message(QUERY).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(!q.response);
        assert_eq!(q.qname.as_deref(), Some("example.com"));
        assert_eq!(q.qtype, 1);
        let r = parse_message(&response()).unwrap();
        assert!(r.response);
        assert_eq!(r.rcode, 0);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].data, "");
        assert_eq!(r.answers[0].addr, Some("93.184.216.34".parse().unwrap()));
        assert_eq!(r.answers[0].rdata(), "93.184.216.34");
        assert_eq!(r.answers[0].ttl, 3600);
        // The owner is the question's name: kept as the empty marker.
        assert_eq!(r.answers[0].name, "");
    }

    #[test]
    fn damaged_answer_keeps_question() {
        let mut r = response();
        r.truncate(r.len() - 2);
        let m = parse_message(&r).unwrap();
        assert!(m.partial);
        assert_eq!(m.qname.as_deref(), Some("example.com"));
        assert!(m.response);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for n in 0..5000usize {
            let mut b = response();
            for _ in 0..(n % 7 + 1) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (x as usize >> 8) % b.len();
                b[i] = (x >> 16) as u8;
            }
            let _ = parse_message(&b);
            let _ = parse_message(&b[..n % b.len()]);
        }
    }
}
