//! A direct reader for the DNS messages nearly all traffic consists of: one question, answers
//! of type A, AAAA, CNAME, NS or PTR with plain names, no authority records and at most an
//! empty EDNS OPT record. It builds the [`DnsMessage`] straight from the bytes, without
//! hickory's record tree and name objects (most of the DNS cost on a worker).
//!
//! Anything else — another record type, an authority section, EDNS options, a label outside
//! the plain set, a name or pointer hickory would refuse — returns `None`, and the caller
//! parses the message with hickory as before. So this reader never decides what a message
//! means; a test compares it with hickory on real and mutated messages.

use super::parser::{DnsMessage, MAX_ANSWERS};
use analyzers::DnsAnswer;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
/// Longest name on the wire this reader takes (RFC 1035 §2.3.4 allows 255).
/// (hickory allows 255 bytes; a little less here leaves its own rule to it).
const MAX_NAME_WIRE: usize = 250;
/// Compression pointers followed per name at most.
const MAX_POINTERS: usize = 32;

/// The message when this reader covers it (see the module doc), else `None`.
pub fn parse_simple(b: &[u8]) -> Option<DnsMessage> {
    let h = b.get(..12)?;
    let be = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let (flags, qd, an, ns, ar) = (be(2), be(4), be(6), be(8), be(10));
    let opcode = ((flags >> 11) & 0xf) as u8;
    if qd != 1 || ns != 0 || ar > 1 || opcode != 0 || usize::from(an) > MAX_ANSWERS {
        return None;
    }
    let mut pos = 12;
    let qname = read_name(b, &mut pos)?;
    let qtype = u16_at(b, pos)?;
    let qclass = u16_at(b, pos + 2)?;
    pos += 4;
    let mut answers = Vec::with_capacity(usize::from(an));
    for _ in 0..an {
        // A pointer to offset 12 is the question's name itself (the usual answer owner):
        // no text to build (the empty name means the question's).
        let name = if b.get(pos..pos + 2) == Some(&[0xc0, 0x0c][..]) {
            pos += 2;
            String::new()
        } else {
            super::parser::answer_owner(read_name(b, &mut pos)?, Some(&qname))
        };
        let rtype = u16_at(b, pos)?;
        let ttl = u32_at(b, pos + 4)?;
        let len = usize::from(u16_at(b, pos + 8)?);
        let start = pos + 10;
        let end = start.checked_add(len).filter(|&e| e <= b.len())?;
        let rdata = &b[start..end];
        let (data, addr) = match rtype {
            TYPE_A => {
                let o: [u8; 4] = rdata.try_into().ok()?;
                (String::new(), Some(IpAddr::V4(Ipv4Addr::from(o))))
            }
            TYPE_AAAA => {
                let o: [u8; 16] = rdata.try_into().ok()?;
                (String::new(), Some(IpAddr::V6(Ipv6Addr::from(o))))
            }
            TYPE_CNAME | TYPE_NS | TYPE_PTR => {
                let mut p = start;
                let target = read_name(b, &mut p)?;
                // The name must fill the record data exactly.
                if p != end {
                    return None;
                }
                (target, None)
            }
            _ => return None,
        };
        answers.push(DnsAnswer {
            name,
            rtype,
            ttl,
            data,
            addr,
        });
        pos = end;
    }
    if ar == 1 {
        // Only an OPT record (EDNS) with no options, extended rcode bits or version: it
        // changes nothing hickory would report. Bytes: root name, type, class (payload
        // size), extended rcode, version, flags (2), data length (2).
        let opt = b.get(pos..pos + 11)?;
        let rtype = u16::from_be_bytes([opt[1], opt[2]]);
        if opt[0] != 0 || rtype != TYPE_OPT || opt[5] != 0 || opt[6] != 0 || opt[9..11] != [0, 0] {
            return None;
        }
        pos += 11;
    }
    if pos != b.len() {
        return None;
    }
    Some(DnsMessage {
        id: be(0),
        response: flags & 0x8000 != 0,
        opcode,
        rcode: flags & 0xf,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        qname: Some(qname),
        qtype,
        qclass,
        answers,
        partial: false,
    })
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Reads the name at `*pos` (following compression pointers, each to before the previous
/// place, so no loop) and moves `*pos` past it. Its text as `parser::name_text` prints plain names; `None` for
/// the root, a label outside the plain set (`[A-Za-z0-9_]`, then also `-`; or a leading
/// `*`), an `xn--` label, or anything malformed.
fn read_name(b: &[u8], pos: &mut usize) -> Option<String> {
    let mut text = Vec::with_capacity(32);
    let mut at = *pos;
    let mut resume = None;
    let mut limit = *pos;
    let mut wire = 1usize;
    let mut hops = 0;
    loop {
        let len = *b.get(at)?;
        match len >> 6 {
            0 if len == 0 => {
                at += 1;
                break;
            }
            0 => {
                let len = usize::from(len);
                let label = b.get(at + 1..at + 1 + len)?;
                wire += len + 1;
                if wire > MAX_NAME_WIRE || !plain_label(label) {
                    return None;
                }
                if !text.is_empty() {
                    text.push(b'.');
                }
                text.extend_from_slice(label);
                at += 1 + len;
            }
            3 => {
                let target = usize::from(u16_at(b, at)? & 0x3fff);
                hops += 1;
                if target >= limit || hops > MAX_POINTERS {
                    return None;
                }
                resume.get_or_insert(at + 2);
                at = target;
                limit = target;
            }
            _ => return None,
        }
    }
    if text.is_empty() {
        return None;
    }
    *pos = resume.unwrap_or(at);
    String::from_utf8(text).ok()
}

/// A label `parser::name_text` prints as its bytes (see `plain_name_text` there).
fn plain_label(label: &[u8]) -> bool {
    let Some((&first, rest)) = label.split_first() else {
        return false;
    };
    BYTE_CLASS[usize::from(first)] & FIRST != 0
        && rest.iter().all(|&c| BYTE_CLASS[usize::from(c)] & REST != 0)
        && !label.starts_with(b"xn--")
}

/// May start a plain label: `[A-Za-z0-9_*]`.
const FIRST: u8 = 1;
/// May follow in one: `[A-Za-z0-9_-]`.
const REST: u8 = 2;
/// [`FIRST`] / [`REST`] per byte: one load a byte instead of a chain of range tests.
const BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[b] = FIRST | REST;
        } else if c == b'-' {
            t[b] = REST;
        } else if c == b'*' {
            t[b] = FIRST;
        }
        b += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dns::parser::parse_with_hickory;

    /// xorshift: deterministic test randomness.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const PLAIN: &[&[u8]] = &[
        b"www", b"Example", b"com", b"_sip", b"cdn-1", b"a", b"*", b"UPPER", b"9z", b"t_u",
    ];
    /// Labels hickory prints otherwise (escaped, decoded) or refuses.
    const OTHER: &[&[u8]] = &[
        b"xn--bcher-kva",
        b"-x",
        b"sp ace",
        b"\xe6\x97\xa5",
        b"a.b",
        b"",
    ];

    fn name(r: &mut Rng, out: &mut Vec<u8>) {
        for _ in 0..1 + r.below(4) {
            let l = if r.below(12) == 0 {
                OTHER[r.below(OTHER.len() as u64) as usize]
            } else {
                PLAIN[r.below(PLAIN.len() as u64) as usize]
            };
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
    }

    /// A message as resolvers write them: the question name at 12, answers naming it by a
    /// pointer (or in full), CNAME chains, sometimes other types, EDNS or authority records.
    fn message(r: &mut Rng) -> Vec<u8> {
        let an = r.below(5) as u16;
        let ns = u16::from(r.below(12) == 0);
        let ar = u16::from(r.below(3) == 0);
        let mut b = vec![0u8; 12];
        b[0..2].copy_from_slice(&(r.next() as u16).to_be_bytes());
        let flags: u16 = if r.below(2) == 0 {
            0x0100
        } else {
            0x8180 | r.below(6) as u16
        } | if r.below(20) == 0 {
            (r.below(16) as u16) << 11
        } else {
            0
        };
        b[2..4].copy_from_slice(&flags.to_be_bytes());
        b[4..6].copy_from_slice(&1u16.to_be_bytes());
        b[6..8].copy_from_slice(&an.to_be_bytes());
        b[8..10].copy_from_slice(&ns.to_be_bytes());
        b[10..12].copy_from_slice(&ar.to_be_bytes());
        name(r, &mut b);
        let qtype = [1u16, 28, 5, 16, 12][r.below(5) as usize];
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        let mut last_target = 12usize;
        for _ in 0..an + ns {
            if r.below(3) == 0 {
                name(r, &mut b);
            } else {
                b.extend_from_slice(&(0xc000 | last_target as u16).to_be_bytes());
            }
            let rtype =
                [1u16, 1, 1, 28, 28, 5, 5, 2, 12, 16, 15, 1, 1, 28, 5][r.below(15) as usize];
            b.extend_from_slice(&rtype.to_be_bytes());
            b.extend_from_slice(&1u16.to_be_bytes());
            b.extend_from_slice(&(r.next() as u32).to_be_bytes());
            let rdata: Vec<u8> = match rtype {
                1 => (0..4).map(|_| r.next() as u8).collect(),
                28 => (0..16)
                    .map(|i| {
                        if i < 8 && r.below(2) == 0 {
                            0
                        } else {
                            r.next() as u8
                        }
                    })
                    .collect(),
                2 | 5 | 12 => {
                    let mut n = Vec::new();
                    if r.below(2) == 0 {
                        n.push(b"cdn".len() as u8);
                        n.extend_from_slice(b"cdn");
                        n.extend_from_slice(&(0xc000 | last_target as u16).to_be_bytes());
                    } else {
                        name(r, &mut n);
                    }
                    n
                }
                _ => vec![3, b'a', b'b', b'c'],
            };
            if matches!(rtype, 2 | 5 | 12) {
                last_target = b.len() + 2;
            }
            b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            b.extend_from_slice(&rdata);
        }
        if ar == 1 {
            let ext = if r.below(6) == 0 { 1 } else { 0 };
            let opts: &[u8] = if r.below(4) == 0 {
                &[0, 10, 0, 2, 1, 2]
            } else {
                &[]
            };
            b.push(0);
            b.extend_from_slice(&41u16.to_be_bytes());
            b.extend_from_slice(&1232u16.to_be_bytes());
            b.extend_from_slice(&[ext, 0, if r.below(2) == 0 { 0x80 } else { 0 }, 0]);
            b.extend_from_slice(&(opts.len() as u16).to_be_bytes());
            b.extend_from_slice(opts);
        }
        b
    }

    /// Wherever this reader answers, hickory (the parser the sensor had) answers the same:
    /// over generated messages and random damage to them.
    #[test]
    fn agrees_with_hickory_where_it_answers() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let (mut fast, mut total) = (0, 0);
        for i in 0..40_000 {
            let mut b = message(&mut r);
            if i % 2 == 1 {
                for _ in 0..1 + r.below(3) {
                    let at = r.below(b.len() as u64) as usize;
                    b[at] = r.next() as u8;
                }
                if r.below(4) == 0 {
                    b.truncate(r.below(b.len() as u64) as usize);
                }
            }
            total += 1;
            if let Some(m) = parse_simple(&b) {
                fast += 1;
                assert_eq!(Some(m), parse_with_hickory(&b), "message {i}: {b:02x?}");
            }
        }
        // The generator makes plenty of messages of each kind.
        assert!(
            fast > total / 10,
            "only {fast} of {total} took the direct path"
        );
    }

    #[test]
    fn reads_a_response_with_edns_and_a_cname_chain() {
        let mut b = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1];
        b.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        // www.example.com CNAME cdn.example.com (pointer into the question).
        b.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6]);
        b.extend_from_slice(b"\x03cdn\xc0\x10");
        // cdn.example.com A 192.0.2.7 (pointer to the CNAME target).
        let target = 12 + 21 + 12;
        b.extend_from_slice(&[
            0xc0,
            target as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            1,
            0,
            0,
            4,
            192,
            0,
            2,
            7,
        ]);
        b.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        let m = parse_simple(&b).expect("a simple message");
        assert_eq!(Some(m.clone()), parse_with_hickory(&b));
        assert_eq!(m.qname.as_deref(), Some("www.example.com"));
        assert_eq!(m.answers[0].data, "cdn.example.com");
        assert_eq!(m.answers[1].name, "cdn.example.com");
        assert_eq!(m.answers[1].addr, Some("192.0.2.7".parse().unwrap()));
        // An option in the OPT record, a TXT answer, a forward pointer: hickory's.
        let mut opt = b.clone();
        opt.truncate(opt.len() - 2);
        opt.extend_from_slice(&[0, 4, 0, 10, 0, 0]);
        assert!(parse_simple(&opt).is_none());
        let mut fwd = b.clone();
        fwd[34] = 0xc0;
        fwd[35] = 200;
        assert!(parse_simple(&fwd).is_none());
    }
}
