//! Hand-encoded DNS messages (RFC 1035): header, questions, A/AAAA/CNAME/PTR/NS/TXT/MX/SOA/OPT
//! records, name compression. Also the presentation form of answers as the EVE contract writes
//! them (`rdata`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
    pub const HTTPS: u16 = 65;
}

pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const REFUSED: u8 = 5;
}

/// Record data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ns(String),
    Ptr(String),
    Mx(u16, String),
    /// Character strings (each ≤ 255 bytes).
    Txt(Vec<Vec<u8>>),
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// EDNS OPT pseudo-record (class = UDP payload size); no options.
    Opt,
    Raw(u16, Vec<u8>),
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Cname(_) => rtype::CNAME,
            RData::Ns(_) => rtype::NS,
            RData::Ptr(_) => rtype::PTR,
            RData::Mx(..) => rtype::MX,
            RData::Txt(_) => rtype::TXT,
            RData::Soa { .. } => rtype::SOA,
            RData::Opt => rtype::OPT,
            RData::Raw(t, _) => *t,
        }
    }

    /// Presentation form as written in EVE `answers[].rdata` (names without the trailing dot).
    pub fn presentation(&self) -> String {
        match self {
            RData::A(a) => a.to_string(),
            RData::Aaaa(a) => a.to_string(),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => n.clone(),
            RData::Mx(p, n) => format!("{p} {n}"),
            RData::Txt(parts) => parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
                .join(""),
            RData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => format!("{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"),
            RData::Opt => String::new(),
            RData::Raw(_, b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        }
    }
}

/// A resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    pub name: String,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

impl Rr {
    pub fn new(name: &str, ttl: u32, data: RData) -> Self {
        Rr {
            name: name.to_string(),
            class: 1,
            ttl,
            data,
        }
    }
    /// EDNS(0) OPT record advertising `udp_size`.
    pub fn opt(udp_size: u16) -> Self {
        Rr {
            name: ".".to_string(),
            class: udp_size,
            ttl: 0,
            data: RData::Opt,
        }
    }
}

/// A DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsMsg {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub rcode: u8,
    pub questions: Vec<(String, u16, u16)>,
    pub answers: Vec<Rr>,
    pub authority: Vec<Rr>,
    pub additional: Vec<Rr>,
}

impl DnsMsg {
    /// A recursive query (RD set) for `name`/`qtype`, class IN, with an EDNS OPT if `edns`.
    pub fn query(id: u16, name: &str, qtype: u16, edns: bool) -> Self {
        DnsMsg {
            id,
            qr: false,
            opcode: 0,
            aa: false,
            tc: false,
            rd: true,
            ra: false,
            rcode: 0,
            questions: vec![(name.to_string(), qtype, 1)],
            answers: vec![],
            authority: vec![],
            additional: if edns { vec![Rr::opt(1232)] } else { vec![] },
        }
    }

    /// The response to `q` (same id and question, QR+RA set, RD copied, OPT echoed).
    pub fn response(q: &DnsMsg, rcode: u8, answers: Vec<Rr>) -> Self {
        let edns = q.additional.iter().any(|r| r.data == RData::Opt);
        DnsMsg {
            id: q.id,
            qr: true,
            opcode: q.opcode,
            aa: false,
            tc: false,
            rd: q.rd,
            ra: true,
            rcode,
            questions: q.questions.clone(),
            answers,
            authority: vec![],
            additional: if edns { vec![Rr::opt(1232)] } else { vec![] },
        }
    }

    pub fn with_authority(mut self, rrs: Vec<Rr>) -> Self {
        self.authority = rrs;
        self
    }

    pub fn qname(&self) -> &str {
        &self.questions[0].0
    }

    pub fn qtype(&self) -> u16 {
        self.questions[0].1
    }

    /// Wire encoding with name compression.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.buf.extend_from_slice(&self.id.to_be_bytes());
        let mut f: u16 = 0;
        if self.qr {
            f |= 0x8000;
        }
        f |= ((self.opcode & 0x0f) as u16) << 11;
        if self.aa {
            f |= 0x0400;
        }
        if self.tc {
            f |= 0x0200;
        }
        if self.rd {
            f |= 0x0100;
        }
        if self.ra {
            f |= 0x0080;
        }
        f |= (self.rcode & 0x0f) as u16;
        e.buf.extend_from_slice(&f.to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ] {
            e.buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        for (name, t, c) in &self.questions {
            e.name(name);
            e.buf.extend_from_slice(&t.to_be_bytes());
            e.buf.extend_from_slice(&c.to_be_bytes());
        }
        for rr in self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
        {
            e.rr(rr);
        }
        e.buf
    }

    /// Encoding with the 2-byte length prefix used over TCP.
    pub fn encode_tcp(&self) -> Vec<u8> {
        let m = self.encode();
        let mut v = (m.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(&m);
        v
    }
}

#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
    /// Lower-cased suffix → offset of its first occurrence.
    seen: HashMap<String, u16>,
}

impl Encoder {
    fn name(&mut self, name: &str) {
        let name = name.trim_end_matches('.');
        if name.is_empty() {
            self.buf.push(0);
            return;
        }
        let labels: Vec<&str> = name.split('.').collect();
        for i in 0..labels.len() {
            let suffix = labels[i..].join(".").to_ascii_lowercase();
            if let Some(&off) = self.seen.get(&suffix) {
                self.buf.extend_from_slice(&(0xc000 | off).to_be_bytes());
                return;
            }
            if self.buf.len() < 0x3fff {
                self.seen.insert(suffix, self.buf.len() as u16);
            }
            let l = labels[i].as_bytes();
            assert!(!l.is_empty() && l.len() < 64, "bad label in {name:?}");
            self.buf.push(l.len() as u8);
            self.buf.extend_from_slice(l);
        }
        self.buf.push(0);
    }

    fn rr(&mut self, rr: &Rr) {
        self.name(&rr.name);
        self.buf.extend_from_slice(&rr.data.rtype().to_be_bytes());
        self.buf.extend_from_slice(&rr.class.to_be_bytes());
        self.buf.extend_from_slice(&rr.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match &rr.data {
            RData::A(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => self.name(n),
            RData::Mx(p, n) => {
                self.buf.extend_from_slice(&p.to_be_bytes());
                self.name(n);
            }
            RData::Txt(parts) => {
                for p in parts {
                    assert!(p.len() < 256);
                    self.buf.push(p.len() as u8);
                    self.buf.extend_from_slice(p);
                }
            }
            RData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => {
                self.name(mname);
                self.name(rname);
                for v in [serial, refresh, retry, expire, minimum] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Opt => {}
            RData::Raw(_, b) => self.buf.extend_from_slice(b),
        }
        let rdlen = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
}

/// Record type mnemonic as the EVE contract writes it (`TYPE<n>` when not listed here).
pub fn rrtype_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

/// Response code mnemonic as the EVE contract writes it.
pub fn rcode_name(r: u8) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// A typical negative-answer SOA for `zone`.
pub fn soa(zone: &str, ttl: u32) -> Rr {
    Rr::new(
        zone,
        ttl,
        RData::Soa {
            mname: format!("ns1.{zone}"),
            rname: format!("hostmaster.{zone}"),
            serial: 2026112501,
            refresh: 7200,
            retry: 3600,
            expire: 1209600,
            minimum: 300,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_points_back() {
        let q = DnsMsg::query(0x1234, "www.example.com", rtype::A, false);
        let r = DnsMsg::response(
            &q,
            0,
            vec![
                Rr::new(
                    "www.example.com",
                    60,
                    RData::Cname("edge.example.com".into()),
                ),
                Rr::new(
                    "edge.example.com",
                    60,
                    RData::A(Ipv4Addr::new(192, 0, 2, 1)),
                ),
            ],
        );
        let w = r.encode();
        // header 12, question: 3www7example3com0 = 17 + 4
        assert_eq!(&w[12..29], b"\x03www\x07example\x03com\x00");
        // answer 1 name is a pointer to offset 12
        assert_eq!(&w[33..35], &[0xc0, 12]);
        // CNAME target "edge" + pointer to "example.com" (offset 16)
        assert_eq!(&w[45..52], b"\x04edge\xc0\x10");
        assert_eq!(u16::from_be_bytes([w[6], w[7]]), 2);
    }

    #[test]
    fn tcp_prefix() {
        let q = DnsMsg::query(1, "a.b", rtype::AAAA, true);
        let t = q.encode_tcp();
        assert_eq!(u16::from_be_bytes([t[0], t[1]]) as usize, t.len() - 2);
    }
}
