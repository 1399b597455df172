//! A streaming MIME parser for one message: lines in, attachments out. Nested multiparts
//! (a stack of boundaries), `message/rfc822` parts, base64 / quoted-printable / identity
//! bodies decoded on the fly into a SHA-256 and a bounded inspection window. Nothing grows
//! with the message: lines, headers, boundaries, parts and windows all have caps.

use super::text::{b64_value, clip, decode_words, parse_structured, raw_text};
use super::zip;
use super::Acct;
use analyzers::MailAttachment;
use sha2::{Digest, Sha256};

/// Longest line handled as a line; longer ones are body data (never a boundary or header).
pub const MAX_LINE: usize = 8 * 1024;
/// Header bytes kept per entity (the rest of the block is skipped).
const MAX_HEADER_BYTES: usize = 32 * 1024;
const MAX_HEADERS: usize = 128;
/// Multipart nesting depth followed.
const MAX_DEPTH: usize = 16;
/// Attachments recorded per message.
pub const MAX_ATTACHMENTS: usize = 64;
/// Last bytes of a large attachment kept for the ZIP central directory.
const TAIL_BYTES: usize = 64 * 1024;
/// Budget is taken in steps of this size.
const GROW_STEP: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Identity,
    Base64,
    Qp,
}

/// The decoded bytes of one attachment: hash, size, first `inspect` bytes and last
/// [`TAIL_BYTES`], budget permitting.
struct Inspector {
    name: Option<String>,
    content_type: String,
    hash: Sha256,
    size: u64,
    head: Vec<u8>,
    head_cap: usize,
    /// Budget reserved for `head` (grown in steps).
    head_reserved: usize,
    tail: Vec<u8>,
    tail_pos: usize,
    tail_full: bool,
    tail_ok: bool,
    memory_short: bool,
}

impl Inspector {
    fn write(&mut self, mut b: &[u8], acct: &mut Acct) {
        self.hash.update(b);
        self.size += b.len() as u64;
        if self.head.len() < self.head_cap {
            let want = (self.head_cap - self.head.len()).min(b.len());
            if self.head.len() + want > self.head_reserved {
                let step = GROW_STEP.min(self.head_cap - self.head_reserved).max(want);
                if acct.take(step) {
                    self.head_reserved += step;
                } else {
                    self.memory_short = true;
                    self.head_cap = self.head.len();
                }
            }
            let n = want.min(self.head_reserved - self.head.len());
            self.head.extend_from_slice(&b[..n]);
            b = &b[n..];
        }
        if b.is_empty() || !self.tail_ok {
            return;
        }
        if self.tail.is_empty() {
            if !acct.take(TAIL_BYTES) {
                self.tail_ok = false;
                self.memory_short = true;
                return;
            }
            self.tail = vec![0; TAIL_BYTES];
        }
        if b.len() >= TAIL_BYTES {
            b = &b[b.len() - TAIL_BYTES..];
        }
        while !b.is_empty() {
            let n = (TAIL_BYTES - self.tail_pos).min(b.len());
            self.tail[self.tail_pos..self.tail_pos + n].copy_from_slice(&b[..n]);
            self.tail_pos = (self.tail_pos + n) % TAIL_BYTES;
            if self.tail_pos == 0 {
                self.tail_full = true;
            }
            b = &b[n..];
        }
    }

    fn finish(self, truncated: bool, acct: &mut Acct) -> (MailAttachment, bool) {
        let mg = zip::magic(&self.head);
        let mut att = MailAttachment {
            name: self.name,
            content_type: self.content_type,
            size: self.size,
            sha256: if truncated {
                String::new()
            } else {
                hex(&self.hash.finalize())
            },
            magic: mg.map(str::to_string),
            entries: Vec::new(),
            encrypted: false,
            entries_truncated: false,
            truncated,
        };
        if mg == Some("zip") {
            let tail: Vec<u8> = if self.size as usize == self.head.len() {
                Vec::new()
            } else if self.tail_full {
                let mut t = self.tail[self.tail_pos..].to_vec();
                t.extend_from_slice(&self.tail[..self.tail_pos]);
                t
            } else {
                self.tail[..self.tail_pos].to_vec()
            };
            let tail_ref: &[u8] = if tail.is_empty() && self.size as usize == self.head.len() {
                &self.head
            } else {
                &tail
            };
            let l = zip::list(
                &zip::Windows {
                    head: &self.head,
                    tail: tail_ref,
                    total: self.size,
                },
                true,
            );
            att.encrypted = l.entries.iter().any(|e| e.encrypted);
            att.entries = l.entries;
            att.entries_truncated = l.truncated || self.memory_short;
        }
        acct.give(self.head_reserved);
        if !self.tail.is_empty() {
            acct.give(TAIL_BYTES);
        }
        (att, self.memory_short)
    }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

enum State {
    /// Reading an entity's header block.
    Headers,
    /// Inside a leaf body (decoded into the inspector when it is an attachment).
    Body,
    /// Preamble / epilogue of a multipart: skipped until a boundary.
    Skip,
}

/// The top-level header fields a message record keeps.
#[derive(Debug, Default)]
pub struct TopHeaders {
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub message_id: Option<String>,
}

pub struct MessageParser {
    state: State,
    boundaries: Vec<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    header_bytes: usize,
    /// The first (top-level) header block has been read.
    top_done: bool,
    pub top: TopHeaders,
    line: Vec<u8>,
    /// The current line was already passed on in pieces (too long).
    line_split: bool,
    enc: Enc,
    /// An attachment being decoded.
    sink: Option<Inspector>,
    pending_crlf: bool,
    b64: (u32, u8),
    qp_carry: Vec<u8>,
    pub attachments: Vec<MailAttachment>,
    pub attachments_dropped: u64,
    /// Attachments whose window was cut by the total memory budget.
    pub memory_short: u64,
    inspect_bytes: usize,
}

impl MessageParser {
    pub fn new(inspect_bytes: usize) -> Self {
        MessageParser {
            state: State::Headers,
            boundaries: Vec::new(),
            headers: Vec::new(),
            header_bytes: 0,
            top_done: false,
            top: TopHeaders::default(),
            line: Vec::new(),
            line_split: false,
            enc: Enc::Identity,
            sink: None,
            pending_crlf: false,
            b64: (0, 0),
            qp_carry: Vec::new(),
            attachments: Vec::new(),
            attachments_dropped: 0,
            memory_short: 0,
            inspect_bytes,
        }
    }

    /// Bytes held in line and header buffers (inspection windows are accounted apart).
    pub fn buffered(&self) -> usize {
        self.line.capacity()
            + self.qp_carry.capacity()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.capacity() + v.capacity())
                .sum::<usize>()
            + self.boundaries.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Message bytes (dot-unstuffed), in order.
    pub fn feed(&mut self, mut data: &[u8], acct: &mut Acct) {
        while !data.is_empty() {
            match data.iter().position(|&c| c == b'\n') {
                Some(i) => {
                    let (piece, rest) = data.split_at(i + 1);
                    data = rest;
                    if self.line.len() + piece.len() > MAX_LINE {
                        self.overlong(&piece[..piece.len() - 1], true, acct);
                        continue;
                    }
                    self.line.extend_from_slice(&piece[..piece.len() - 1]);
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    let line = std::mem::take(&mut self.line);
                    if self.line_split {
                        self.line_split = false;
                        self.body_piece(&line, true, acct);
                    } else {
                        self.on_line(&line, acct);
                    }
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    if self.line.len() + data.len() > MAX_LINE {
                        self.overlong(data, false, acct);
                    } else {
                        self.line.extend_from_slice(data);
                    }
                    data = &[];
                }
            }
        }
    }

    /// A line longer than [`MAX_LINE`]: body data in pieces (headers: dropped).
    fn overlong(&mut self, piece: &[u8], ends_line: bool, acct: &mut Acct) {
        let buffered = std::mem::take(&mut self.line);
        let mut piece = piece;
        if ends_line && piece.last() == Some(&b'\r') {
            piece = &piece[..piece.len() - 1];
        }
        if matches!(self.state, State::Body) {
            self.body_piece(&buffered, false, acct);
            self.body_piece(piece, ends_line, acct);
        }
        self.line_split = !ends_line;
        self.line = buffered;
        self.line.clear();
    }

    fn on_line(&mut self, line: &[u8], acct: &mut Acct) {
        if line.starts_with(b"--") && !self.boundaries.is_empty() && self.boundary(line, acct) {
            return;
        }
        match self.state {
            State::Headers => self.header_line(line, acct),
            State::Body => self.body_piece(line, true, acct),
            State::Skip => {}
        }
    }

    /// A boundary line of any open multipart (innermost first)?
    fn boundary(&mut self, line: &[u8], acct: &mut Acct) -> bool {
        for i in (0..self.boundaries.len()).rev() {
            let b = &self.boundaries[i];
            let Some(rest) = line[2..].strip_prefix(b.as_slice()) else {
                continue;
            };
            let close = rest.starts_with(b"--");
            let rest = if close { &rest[2..] } else { rest };
            if !rest.iter().all(|c| *c == b' ' || *c == b'\t') {
                continue;
            }
            self.end_leaf(false, acct);
            if close {
                self.boundaries.truncate(i);
                self.state = State::Skip;
            } else {
                self.boundaries.truncate(i + 1);
                self.start_headers();
            }
            return true;
        }
        false
    }

    fn start_headers(&mut self) {
        self.state = State::Headers;
        self.headers.clear();
        self.header_bytes = 0;
    }

    fn header_line(&mut self, line: &[u8], acct: &mut Acct) {
        if line.is_empty() {
            self.end_headers(acct);
            return;
        }
        if self.header_bytes + line.len() > MAX_HEADER_BYTES {
            return;
        }
        self.header_bytes += line.len();
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = self.headers.last_mut() {
                v.extend_from_slice(line);
            }
            return;
        }
        if self.headers.len() >= MAX_HEADERS {
            return;
        }
        if let Some(c) = line.iter().position(|&c| c == b':') {
            let name = String::from_utf8_lossy(&line[..c])
                .trim()
                .to_ascii_lowercase();
            let v = &line[c + 1..];
            let v = v.strip_prefix(b" ").unwrap_or(v);
            self.headers.push((name, v.to_vec()));
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn end_headers(&mut self, acct: &mut Acct) {
        if !self.top_done {
            self.top_done = true;
            let get = |n: &str| self.header(n).map(decode_words);
            self.top = TopHeaders {
                subject: get("subject"),
                from: get("from"),
                to: get("to"),
                message_id: self
                    .header("message-id")
                    .map(|v| clip(raw_text(v).trim().to_string())),
            };
        }
        let ct = self.header("content-type").map(parse_structured);
        let cd = self.header("content-disposition").map(parse_structured);
        let ctype = ct
            .as_ref()
            .map(|c| c.value.clone())
            .filter(|v| v.contains('/'))
            .unwrap_or_else(|| "text/plain".into());
        self.enc = match self
            .header("content-transfer-encoding")
            .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("base64") => Enc::Base64,
            Some("quoted-printable") => Enc::Qp,
            _ => Enc::Identity,
        };
        if ctype.starts_with("multipart/") {
            if let Some(b) = ct.as_ref().and_then(|c| c.param("boundary")) {
                if !b.is_empty() && self.boundaries.len() < MAX_DEPTH {
                    self.boundaries
                        .push(b.into_bytes().into_iter().take(200).collect());
                    self.state = State::Skip;
                    return;
                }
            }
        }
        if ctype == "message/rfc822" && self.enc == Enc::Identity {
            // A forwarded message: its own headers and parts follow.
            self.start_headers();
            return;
        }
        let name = cd
            .as_ref()
            .and_then(|c| c.param("filename"))
            .or_else(|| ct.as_ref().and_then(|c| c.param("name")))
            .filter(|n| !n.is_empty());
        let is_attachment = name.is_some()
            || cd.as_ref().is_some_and(|c| c.value == "attachment")
            || !(ctype.starts_with("text/") || ctype.starts_with("multipart/"));
        self.state = State::Body;
        self.pending_crlf = false;
        self.b64 = (0, 0);
        self.qp_carry.clear();
        if is_attachment {
            if self.attachments.len() >= MAX_ATTACHMENTS {
                self.attachments_dropped += 1;
                return;
            }
            self.sink = Some(Inspector {
                name: name.map(clip),
                content_type: clip(ctype),
                hash: Sha256::new(),
                size: 0,
                head: Vec::new(),
                head_cap: self.inspect_bytes,
                head_reserved: 0,
                tail: Vec::new(),
                tail_pos: 0,
                tail_full: false,
                tail_ok: true,
                memory_short: false,
            });
        }
        let _ = acct;
    }

    /// Body bytes of the current leaf; `ends_line`: a line break followed them.
    fn body_piece(&mut self, b: &[u8], ends_line: bool, acct: &mut Acct) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        match self.enc {
            Enc::Base64 => {
                let (mut acc, mut n) = self.b64;
                let mut out = [0u8; 3 * 256];
                let mut o = 0;
                for &c in b {
                    let Some(v) = b64_value(c) else { continue };
                    acc = (acc << 6) | u32::from(v);
                    n += 1;
                    if n == 4 {
                        out[o..o + 3].copy_from_slice(&[
                            (acc >> 16) as u8,
                            (acc >> 8) as u8,
                            acc as u8,
                        ]);
                        o += 3;
                        acc = 0;
                        n = 0;
                        if o == out.len() {
                            sink.write(&out, acct);
                            o = 0;
                        }
                    }
                }
                sink.write(&out[..o], acct);
                self.b64 = (acc, n);
            }
            Enc::Identity => {
                if self.pending_crlf {
                    sink.write(b"\r\n", acct);
                }
                sink.write(b, acct);
                self.pending_crlf = ends_line;
            }
            Enc::Qp => {
                if self.pending_crlf {
                    sink.write(b"\r\n", acct);
                    self.pending_crlf = false;
                }
                let mut data = std::mem::take(&mut self.qp_carry);
                data.extend_from_slice(b);
                let mut soft = false;
                if ends_line {
                    while data.last().is_some_and(|c| *c == b' ' || *c == b'\t') {
                        data.pop();
                    }
                    if data.last() == Some(&b'=') {
                        data.pop();
                        soft = true;
                    }
                } else {
                    // Keep an escape cut by the piece boundary for the next piece.
                    let l = data.len();
                    let keep = if l >= 1 && data[l - 1] == b'=' {
                        1
                    } else if l >= 2 && data[l - 2] == b'=' {
                        2
                    } else {
                        0
                    };
                    self.qp_carry = data.split_off(l - keep);
                }
                sink.write(&super::text::qp_decode(&data, false), acct);
                self.pending_crlf = ends_line && !soft;
            }
        }
    }

    fn end_leaf(&mut self, truncated: bool, acct: &mut Acct) {
        if let Some(mut sink) = self.sink.take() {
            if self.enc == Enc::Base64 {
                let (acc, n) = self.b64;
                match n {
                    2 => sink.write(&[(acc >> 4) as u8], acct),
                    3 => sink.write(&[(acc >> 10) as u8, (acc >> 2) as u8], acct),
                    _ => {}
                }
            }
            let (att, short) = sink.finish(truncated, acct);
            self.memory_short += u64::from(short);
            self.attachments.push(att);
        }
        self.b64 = (0, 0);
        self.pending_crlf = false;
    }

    /// End of the message (`truncated`: cut short); closes the open attachment.
    pub fn finish(&mut self, truncated: bool, acct: &mut Acct) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if self.line_split {
                self.body_piece(&line, false, acct);
            } else {
                self.on_line(&line, acct);
            }
        }
        if !self.top_done && matches!(self.state, State::Headers) {
            self.end_headers(acct);
        }
        self.end_leaf(truncated, acct);
    }

    /// Releases any budget still held (message abandoned).
    pub fn abandon(&mut self, acct: &mut Acct) {
        if let Some(s) = self.sink.take() {
            let _ = s.finish(true, acct);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::Shared;
    use std::sync::Arc;

    fn parse(msg: &[u8], chunk: usize) -> (MessageParser, Acct) {
        let mut acct = Acct::new(Arc::new(Shared::new(1 << 30)));
        let mut p = MessageParser::new(1 << 20);
        for c in msg.chunks(chunk) {
            p.feed(c, &mut acct);
        }
        p.finish(false, &mut acct);
        (p, acct)
    }

    fn b64(data: &[u8]) -> String {
        use base64::Engine;
        let s = base64::engine::general_purpose::STANDARD.encode(data);
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[test]
    fn nested_multipart_base64_qp_and_names() {
        let zipb = zip::tests::build_zip(&[("report.txt.exe", b"MZ", true, false)]);
        let msg = format!(
            "From: =?UTF-8?B?5bGx55Sw?= <y@example.jp>\r\nSubject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhi=3D\r\n--inner--\r\n\
--outer\r\nContent-Type: application/zip; name=\"=?ISO-2022-JP?B?GyRCSnM5cD1xGyhC?=.zip\"\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n{}\r\n\
--outer\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''a%E2%80%AEgpj.exe\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nMZ=90=00ab=\r\ncd\r\n--outer--\r\nepilogue\r\n",
            b64(&zipb)
        );
        for chunk in [1, 7, 4096] {
            let (p, acct) = parse(msg.as_bytes(), chunk);
            assert_eq!(p.top.subject.as_deref(), Some("こんにちは"));
            assert_eq!(p.top.from.as_deref(), Some("山田 <y@example.jp>"));
            assert_eq!(p.attachments.len(), 2, "chunk {chunk}");
            let z = &p.attachments[0];
            assert_eq!(z.name.as_deref(), Some("報告書.zip"));
            assert_eq!(z.size, zipb.len() as u64);
            assert_eq!(z.magic.as_deref(), Some("zip"));
            assert!(z.encrypted);
            assert_eq!(z.entries[0].name, "report.txt.exe");
            let e = &p.attachments[1];
            assert_eq!(e.name.as_deref(), Some("a\u{202E}gpj.exe"));
            assert_eq!(e.magic.as_deref(), Some("pe"));
            assert_eq!(e.size, 8);
            assert_eq!(acct.held, 0);
        }
    }

    #[test]
    fn large_attachment_keeps_bounded_windows() {
        let mut body = vec![0u8; 3 << 20];
        body[..2].copy_from_slice(b"MZ");
        let msg = format!(
            "Subject: big\r\nContent-Type: application/octet-stream; name=big.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(&body)
        );
        let mut acct = Acct::new(Arc::new(Shared::new(1 << 30)));
        let mut p = MessageParser::new(256 << 10);
        let mut peak = 0;
        for c in msg.as_bytes().chunks(1460) {
            p.feed(c, &mut acct);
            peak = peak.max(acct.held);
        }
        p.finish(false, &mut acct);
        assert!(peak <= (256 << 10) + TAIL_BYTES, "{peak}");
        assert_eq!(p.attachments[0].size, body.len() as u64);
        assert_eq!(p.attachments[0].sha256, hex(&Sha256::digest(&body)),);
        assert_eq!(acct.held, 0);
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut acct = Acct::new(Arc::new(Shared::new(1 << 20)));
        let mut p = MessageParser::new(1 << 10);
        let junk: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        p.feed(b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: application/x; name*0*=x; name*1*=%\r\n\r\n", &mut acct);
        p.feed(&junk, &mut acct);
        p.feed(&[b'A'; 100_000], &mut acct);
        p.finish(true, &mut acct);
        assert_eq!(acct.held, 0);
    }
}
