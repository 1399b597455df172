//! One SMTP session: both directions reassembled in sequence order (a few early segments
//! held, within the session cap and the shared budget), the client's commands and the
//! server's replies matched in order (pipelining), DATA (dot-unstuffed) and BDAT chunks fed to
//! the MIME parser, STARTTLS ends inspection.

use super::mime::MessageParser;
use super::text::{envelope_address, raw_text};
use super::{Acct, GiveUp, Shared, SmtpLimits, SmtpStats};
use crate::flow::community_id::community_id_v1;
use analyzers::{MailMessage, TsNanos, Vlans};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Out-of-order segments held per direction.
const MAX_EARLY_SEGMENTS: usize = 32;
/// Command and reply lines kept (longer ones are cut).
const MAX_CMD_LINE: usize = 4096;
const MAX_REPLY_LINE: usize = 512;
/// Commands awaiting a reply.
const MAX_PENDING: usize = 128;
/// Recipients kept per message.
const MAX_RCPT: usize = 100;

/// Who the session is between, for the records.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub vlan: Vlans,
    pub flow_id: u64,
}

/// What a push needs besides the bytes.
pub struct Ctx<'a> {
    pub ts: TsNanos,
    pub ep: Endpoints,
    pub limits: &'a SmtpLimits,
    pub stats: &'a mut SmtpStats,
    pub out: &'a mut Vec<MailMessage>,
}

#[derive(Debug, Default)]
struct Dir {
    next: Option<u32>,
    early: Vec<(u32, Vec<u8>)>,
    early_bytes: usize,
    lost: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
enum Dot {
    LineStart,
    Mid,
    Dot,
    DotCr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Command,
    Data(Dot),
    Bdat { remaining: u64, last: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Data,
    StartTls,
    Other,
}

struct Msg {
    parser: MessageParser,
    size: u64,
    truncated: bool,
    transfer: &'static str,
}

pub struct SmtpSession {
    acct: Acct,
    dirs: [Dir; 2],
    cline: Vec<u8>,
    cline_over: bool,
    sline: Vec<u8>,
    mode: Mode,
    pending: VecDeque<Cmd>,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    msg: Option<Box<Msg>>,
    /// STARTTLS accepted (or TLS bytes seen): nothing more is inspected.
    tls: bool,
    /// Parsing given up for good (budget or cap).
    dead: bool,
    starttls_asked: bool,
    trans_depth: u32,
    pipelined: bool,
    /// Bytes of line/header buffers reserved on the budget.
    buffers_reserved: usize,
}

/// What a session costs before it buffers anything (charged to the budget).
pub const SESSION_BASE_BYTES: usize = std::mem::size_of::<SmtpSession>() + 64;

impl SmtpSession {
    /// A new session; when the budget cannot pay for it, it is created given up (counted).
    pub fn new(shared: Arc<Shared>, stats: &mut SmtpStats) -> Self {
        let mut acct = Acct::new(shared);
        let dead = !acct.take(SESSION_BASE_BYTES);
        if dead {
            stats.give_up(GiveUp::Memory);
        }
        SmtpSession {
            acct,
            dirs: [Dir::default(), Dir::default()],
            cline: Vec::new(),
            cline_over: false,
            sline: Vec::new(),
            mode: Mode::Command,
            pending: VecDeque::new(),
            helo: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            msg: None,
            tls: false,
            dead,
            starttls_asked: false,
            trans_depth: 0,
            pipelined: false,
            buffers_reserved: 0,
        }
    }

    /// STARTTLS took over the session.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Adds a segment (`seq` = its first payload byte); `to_server`: sent by the client.
    pub fn push(&mut self, to_server: bool, seq: u32, payload: &[u8], ctx: &mut Ctx<'_>) {
        let d = usize::from(!to_server);
        if self.tls || self.dead || self.dirs[d].lost || payload.is_empty() {
            return;
        }
        match self.dirs[d].next {
            None => self.dirs[d].next = Some(seq),
            Some(next) if (seq.wrapping_sub(next) as i32) > 0 => {
                self.hold(d, seq, payload, ctx);
                return;
            }
            Some(_) => {}
        }
        self.deliver(d, seq, payload, ctx);
        while let Some(next) = self.dirs[d].next {
            let Some(i) = self.dirs[d]
                .early
                .iter()
                .position(|(s, _)| (s.wrapping_sub(next) as i32) <= 0)
            else {
                break;
            };
            let (s, b) = self.dirs[d].early.swap_remove(i);
            self.dirs[d].early_bytes -= b.len();
            self.acct.give(b.len());
            if !self.dirs[d].lost && !self.tls && !self.dead {
                self.deliver(d, s, &b, ctx);
            }
        }
        self.reconcile(ctx);
    }

    /// A segment ahead of a hole: held within bounds, else the direction is given up.
    fn hold(&mut self, d: usize, seq: u32, payload: &[u8], ctx: &mut Ctx<'_>) {
        let dir = &self.dirs[d];
        let fits = dir.early.len() < MAX_EARLY_SEGMENTS
            && self.buffers_reserved + dir.early_bytes + payload.len()
                <= ctx.limits.session_buffer_bytes;
        if fits && self.acct.take(payload.len()) {
            let dir = &mut self.dirs[d];
            dir.early_bytes += payload.len();
            dir.early.push((seq, payload.to_vec()));
            return;
        }
        ctx.stats
            .give_up(if fits { GiveUp::Memory } else { GiveUp::Gap });
        self.lose(d, ctx);
    }

    /// Gives a direction up: held segments freed, an open message closed as truncated.
    fn lose(&mut self, d: usize, ctx: &mut Ctx<'_>) {
        let dir = &mut self.dirs[d];
        dir.lost = true;
        let held = std::mem::take(&mut dir.early_bytes);
        dir.early = Vec::new();
        self.acct.give(held);
        if d == 0 {
            self.finish_message(true, ctx);
        }
    }

    fn deliver(&mut self, d: usize, seq: u32, payload: &[u8], ctx: &mut Ctx<'_>) {
        let Some(next) = self.dirs[d].next else {
            return;
        };
        let mut data = payload;
        let diff = seq.wrapping_sub(next) as i32;
        if diff < 0 {
            let dup = diff.unsigned_abs() as usize;
            if dup >= data.len() {
                return; // a retransmission
            }
            ctx.stats.give_up(GiveUp::Overlap);
            data = &data[dup..];
        }
        self.dirs[d].next = Some(seq.wrapping_add(payload.len() as u32));
        if d == 0 {
            self.client_bytes(data, ctx);
        } else {
            self.server_bytes(data, ctx);
        }
    }

    /// Line and header buffers against the session cap and the shared budget.
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let now = self.cline.capacity()
            + self.sline.capacity()
            + self
                .msg
                .as_ref()
                .map_or(0, |m| std::mem::size_of::<Msg>() + m.parser.buffered());
        if now > self.buffers_reserved {
            let over_cap = now + self.dirs[0].early_bytes + self.dirs[1].early_bytes
                > ctx.limits.session_buffer_bytes;
            if over_cap || !self.acct.take(now - self.buffers_reserved) {
                ctx.stats.give_up(if over_cap {
                    GiveUp::Oversize
                } else {
                    GiveUp::Memory
                });
                self.kill(ctx);
                return;
            }
        } else {
            self.acct.give(self.buffers_reserved - now);
        }
        self.buffers_reserved = now;
    }

    /// Stops parsing the session for good, releasing what it holds.
    fn kill(&mut self, ctx: &mut Ctx<'_>) {
        self.finish_message(true, ctx);
        self.dead = true;
        for d in 0..2 {
            let held = std::mem::take(&mut self.dirs[d].early_bytes);
            self.dirs[d].early = Vec::new();
            self.acct.give(held);
        }
        self.cline = Vec::new();
        self.sline = Vec::new();
        let r = std::mem::take(&mut self.buffers_reserved);
        self.acct.give(r);
    }

    fn skip_tls(&mut self, ctx: &mut Ctx<'_>) {
        if !self.tls {
            ctx.stats.starttls += 1;
        }
        self.finish_message(true, ctx);
        self.kill(ctx);
        self.dead = false;
        self.tls = true;
    }

    fn client_bytes(&mut self, mut data: &[u8], ctx: &mut Ctx<'_>) {
        while !data.is_empty() && !self.tls && !self.dead {
            match self.mode {
                Mode::Command => {
                    if self.starttls_asked && self.cline.is_empty() && data[0] == 0x16 {
                        // A TLS handshake where a command should be.
                        self.skip_tls(ctx);
                        return;
                    }
                    let (piece, rest, eol) = match data.iter().position(|&c| c == b'\n') {
                        Some(i) => (&data[..i], &data[i + 1..], true),
                        None => (data, &[][..], false),
                    };
                    data = rest;
                    if self.cline.len() + piece.len() > MAX_CMD_LINE {
                        if !self.cline_over {
                            ctx.stats.give_up(GiveUp::Oversize);
                        }
                        self.cline_over = true;
                        let room = MAX_CMD_LINE - self.cline.len();
                        self.cline
                            .extend_from_slice(&piece[..room.min(piece.len())]);
                    } else {
                        self.cline.extend_from_slice(piece);
                    }
                    if eol {
                        let mut line = std::mem::take(&mut self.cline);
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        self.cline_over = false;
                        self.command(&line, ctx);
                        line.clear();
                        if line.capacity() <= 1024 {
                            self.cline = line;
                        }
                    }
                }
                Mode::Data(dot) => data = self.data_bytes(dot, data, ctx),
                Mode::Bdat { remaining, last } => {
                    let n = (remaining.min(data.len() as u64)) as usize;
                    self.message_bytes(&data[..n], ctx);
                    data = &data[n..];
                    let remaining = remaining - n as u64;
                    self.mode = if remaining == 0 {
                        if last {
                            self.finish_message(false, ctx);
                        }
                        Mode::Command
                    } else {
                        Mode::Bdat { remaining, last }
                    };
                }
            }
        }
    }

    /// DATA content: dot-unstuffed into the message until `CRLF.CRLF`; returns what follows.
    fn data_bytes<'d>(&mut self, mut st: Dot, data: &'d [u8], ctx: &mut Ctx<'_>) -> &'d [u8] {
        let mut run = 0usize;
        let mut i = 0usize;
        while i < data.len() {
            let b = data[i];
            match st {
                Dot::LineStart if b == b'.' => {
                    self.message_bytes(&data[run..i], ctx);
                    run = i + 1;
                    st = Dot::Dot;
                }
                Dot::Dot if b == b'\r' => {
                    run = i + 1;
                    st = Dot::DotCr;
                }
                Dot::Dot | Dot::DotCr if b == b'\n' => {
                    self.mode = Mode::Command;
                    self.finish_message(false, ctx);
                    return &data[i + 1..];
                }
                Dot::DotCr => {
                    self.message_bytes(b"\r", ctx);
                    run = i;
                    st = if b == b'\n' { Dot::LineStart } else { Dot::Mid };
                }
                _ => st = if b == b'\n' { Dot::LineStart } else { Dot::Mid },
            }
            i += 1;
        }
        if run < data.len() && st != Dot::DotCr && st != Dot::Dot {
            self.message_bytes(&data[run..], ctx);
        }
        if self.mode != Mode::Command {
            self.mode = Mode::Data(st);
        }
        &[]
    }

    fn message_bytes(&mut self, b: &[u8], ctx: &mut Ctx<'_>) {
        let Some(m) = self.msg.as_mut() else {
            return;
        };
        if b.is_empty() {
            return;
        }
        let max = ctx.limits.max_message_bytes;
        let room = max.saturating_sub(m.size);
        m.size += b.len() as u64;
        if m.truncated {
            return;
        }
        let take = (room.min(b.len() as u64)) as usize;
        m.parser.feed(&b[..take], &mut self.acct);
        if take < b.len() {
            m.truncated = true;
            ctx.stats.give_up(GiveUp::MessageSize);
            m.parser.abandon(&mut self.acct);
        }
    }

    fn command(&mut self, line: &[u8], ctx: &mut Ctx<'_>) {
        let verb_end = line
            .iter()
            .position(|c| *c == b' ' || *c == b':')
            .unwrap_or(line.len());
        let verb = line[..verb_end].to_ascii_uppercase();
        let arg = &line[verb_end..];
        let upper = line.to_ascii_uppercase();
        if !self.pending.is_empty() && !self.dirs[1].lost {
            self.pipelined = true;
        }
        let mut cmd = Cmd::Other;
        match verb.as_slice() {
            b"HELO" | b"EHLO" => {
                let a = raw_text(arg);
                self.helo = Some(a.trim().chars().take(256).collect());
            }
            b"MAIL" if upper.starts_with(b"MAIL FROM:") => {
                self.finish_message(true, ctx);
                self.mail_from = Some(envelope_address(&line[10..]));
                self.rcpt_to.clear();
            }
            b"RCPT" if upper.starts_with(b"RCPT TO:") && self.rcpt_to.len() < MAX_RCPT => {
                self.rcpt_to.push(envelope_address(&line[8..]));
            }
            b"DATA" => {
                cmd = Cmd::Data;
                self.begin_message("DATA", ctx);
                self.mode = Mode::Data(Dot::LineStart);
            }
            b"BDAT" => {
                let mut words = arg
                    .split(|c| c.is_ascii_whitespace())
                    .filter(|w| !w.is_empty());
                let size = words
                    .next()
                    .and_then(|w| std::str::from_utf8(w).ok())
                    .and_then(|w| w.parse::<u64>().ok());
                let last = words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"LAST"));
                match size {
                    Some(n) => {
                        if self.msg.is_none() {
                            self.begin_message("BDAT", ctx);
                        }
                        self.mode = Mode::Bdat { remaining: n, last };
                        if n == 0 && last {
                            self.finish_message(false, ctx);
                            self.mode = Mode::Command;
                        }
                    }
                    None => {
                        ctx.stats.give_up(GiveUp::Oversize);
                        self.kill(ctx);
                        return;
                    }
                }
            }
            b"STARTTLS" => {
                cmd = Cmd::StartTls;
                self.starttls_asked = true;
            }
            b"RSET" => {
                if let Some(mut m) = self.msg.take() {
                    m.parser.abandon(&mut self.acct);
                }
                self.mode = Mode::Command;
                self.mail_from = None;
                self.rcpt_to.clear();
            }
            _ => {}
        }
        if self.pending.len() < MAX_PENDING {
            self.pending.push_back(cmd);
        }
    }

    fn server_bytes(&mut self, mut data: &[u8], ctx: &mut Ctx<'_>) {
        while !data.is_empty() && !self.tls && !self.dead {
            let (piece, rest, eol) = match data.iter().position(|&c| c == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            data = rest;
            let room = MAX_REPLY_LINE.saturating_sub(self.sline.len());
            self.sline
                .extend_from_slice(&piece[..room.min(piece.len())]);
            if eol {
                let line = std::mem::take(&mut self.sline);
                self.reply(&line, ctx);
                self.sline = line;
                self.sline.clear();
            }
        }
    }

    fn reply(&mut self, line: &[u8], ctx: &mut Ctx<'_>) {
        let code = match line.get(..3) {
            Some(c) if c.iter().all(u8::is_ascii_digit) => {
                u16::from(c[0] - b'0') * 100 + u16::from(c[1] - b'0') * 10 + u16::from(c[2] - b'0')
            }
            _ => return,
        };
        if line.get(3) == Some(&b'-') {
            return; // more lines of this reply follow
        }
        let Some(cmd) = self.pending.pop_front() else {
            return; // the greeting, or a reply we cannot place
        };
        match cmd {
            Cmd::StartTls if code == 220 => self.skip_tls(ctx),
            Cmd::StartTls => self.starttls_asked = false,
            // DATA refused: no message follows.
            Cmd::Data
                if code != 354
                    && matches!(self.mode, Mode::Data(_))
                    && self.msg.as_ref().is_some_and(|m| m.size == 0) =>
            {
                if let Some(mut m) = self.msg.take() {
                    m.parser.abandon(&mut self.acct);
                }
                self.trans_depth = self.trans_depth.saturating_sub(1);
                self.mode = Mode::Command;
            }
            _ => {}
        }
    }

    fn begin_message(&mut self, transfer: &'static str, ctx: &mut Ctx<'_>) {
        self.finish_message(true, ctx);
        self.trans_depth += 1;
        self.msg = Some(Box::new(Msg {
            parser: MessageParser::new(ctx.limits.inspect_bytes),
            size: 0,
            truncated: false,
            transfer,
        }));
    }

    /// Ends the open message (if any) and emits its record.
    fn finish_message(&mut self, truncated: bool, ctx: &mut Ctx<'_>) {
        let Some(mut m) = self.msg.take() else {
            return;
        };
        let truncated = truncated || m.truncated;
        m.parser.finish(truncated, &mut self.acct);
        let p = &mut m.parser;
        ctx.stats.messages += 1;
        ctx.stats.attachments += p.attachments.len() as u64;
        for _ in 0..p.memory_short {
            ctx.stats.give_up(GiveUp::Memory);
        }
        let ep = ctx.ep;
        let top = std::mem::take(&mut p.top);
        ctx.out.push(MailMessage {
            ts: ctx.ts,
            flow_id: ep.flow_id,
            src_ip: ep.client,
            src_port: ep.client_port,
            dest_ip: ep.server,
            dest_port: ep.server_port,
            vlan: ep.vlan,
            community_id: community_id_v1(
                0,
                ep.client,
                ep.server,
                6,
                ep.client_port,
                ep.server_port,
            ),
            helo: self.helo.clone(),
            mail_from: self.mail_from.clone(),
            rcpt_to: self.rcpt_to.clone(),
            header_from: top.from,
            header_to: top.to,
            subject: top.subject,
            message_id: top.message_id,
            trans_depth: self.trans_depth,
            transfer: m.transfer,
            pipelined: self.pipelined,
            size: m.size,
            truncated,
            attachments: std::mem::take(&mut p.attachments),
        });
    }
}

impl Drop for SmtpSession {
    fn drop(&mut self) {
        if let Some(mut m) = self.msg.take() {
            if m.size > 0 {
                self.acct
                    .shared()
                    .unfinished
                    .fetch_add(1, Ordering::Relaxed);
            }
            m.parser.abandon(&mut self.acct);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoints {
        Endpoints {
            client: "10.0.0.5".parse().unwrap(),
            client_port: 40000,
            server: "10.0.0.25".parse().unwrap(),
            server_port: 25,
            vlan: Vlans::default(),
            flow_id: 1,
        }
    }

    struct Run {
        s: SmtpSession,
        shared: Arc<Shared>,
        limits: SmtpLimits,
        stats: SmtpStats,
        out: Vec<MailMessage>,
        seq: [u32; 2],
    }

    impl Run {
        fn new(cap: usize) -> Self {
            let shared = Arc::new(Shared::new(cap));
            let mut stats = SmtpStats::default();
            Run {
                s: SmtpSession::new(shared.clone(), &mut stats),
                shared,
                limits: SmtpLimits {
                    session_buffer_bytes: 256 << 10,
                    inspect_bytes: 1 << 20,
                    max_message_bytes: 1 << 30,
                },
                stats,
                out: Vec::new(),
                seq: [1000, 5000],
            }
        }
        fn send(&mut self, client: bool, b: &[u8]) {
            let d = usize::from(!client);
            let seq = self.seq[d];
            self.seq[d] = seq.wrapping_add(b.len() as u32);
            self.at(client, seq, b);
        }
        fn at(&mut self, client: bool, seq: u32, b: &[u8]) {
            let mut ctx = Ctx {
                ts: 1,
                ep: ep(),
                limits: &self.limits,
                stats: &mut self.stats,
                out: &mut self.out,
            };
            self.s.push(client, seq, b, &mut ctx);
        }
    }

    const MSG: &str = "Subject: hi\r\nContent-Type: application/octet-stream; name=\"x.jpg\"\r\n\r\nMZ..\r\n..dot\r\n";

    #[test]
    fn data_dialogue_and_dot_unstuffing() {
        let mut r = Run::new(1 << 20);
        r.send(false, b"220 mx ESMTP\r\n");
        r.send(true, b"EHLO client\r\n");
        r.send(false, b"250-mx\r\n250 PIPELINING\r\n");
        r.send(true, b"MAIL FROM:<a@example.org>\r\n");
        r.send(false, b"250 ok\r\n");
        r.send(true, b"RCPT TO:<b@example.org>\r\n");
        r.send(false, b"250 ok\r\n");
        r.send(true, b"DATA\r\n");
        r.send(false, b"354 go\r\n");
        let body = format!("{MSG}.\r\nQUIT\r\n");
        for c in body.as_bytes().chunks(3) {
            r.send(true, c);
        }
        assert_eq!(r.out.len(), 1);
        let m = &r.out[0];
        assert_eq!(m.mail_from.as_deref(), Some("a@example.org"));
        assert_eq!(m.rcpt_to, ["b@example.org"]);
        assert_eq!(m.subject.as_deref(), Some("hi"));
        assert!(!m.pipelined);
        assert_eq!(m.attachments[0].magic.as_deref(), Some("pe"));
        // "MZ..\r\n.dot\r\n" (second line unstuffed), without the final CRLF of the part.
        assert_eq!(m.attachments[0].size, 10);
        assert_eq!(m.size as usize, MSG.len() - 1);
        drop(r.s);
        assert_eq!(r.shared.used(), 0);
    }

    #[test]
    fn pipelining_bdat_and_reordering() {
        let mut r = Run::new(1 << 20);
        r.send(true, b"EHLO c\r\n");
        r.send(false, b"250 CHUNKING\r\n");
        let chunk = MSG.as_bytes();
        let cmds = format!(
            "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nBDAT {} LAST\r\n",
            chunk.len()
        );
        let mut all = cmds.into_bytes();
        all.extend_from_slice(chunk);
        all.extend_from_slice(b"QUIT\r\n");
        // Segments of 10 bytes, each pair swapped (arrives out of order).
        let base = r.seq[0];
        let segs: Vec<(usize, &[u8])> = all
            .chunks(10)
            .enumerate()
            .map(|(i, c)| (i * 10, c))
            .collect();
        for pair in segs.chunks(2) {
            for (off, c) in pair.iter().rev() {
                r.at(true, base.wrapping_add(*off as u32), c);
            }
        }
        assert_eq!(r.out.len(), 1);
        let m = &r.out[0];
        assert!(m.pipelined);
        assert_eq!(m.transfer, "BDAT");
        assert_eq!(m.rcpt_to, ["b@y", "c@y"]);
        assert_eq!(m.attachments[0].name.as_deref(), Some("x.jpg"));
        assert_eq!(r.stats.give_ups, [0; 6]);
    }

    #[test]
    fn starttls_and_gaps() {
        let mut r = Run::new(1 << 20);
        r.send(true, b"EHLO c\r\nSTARTTLS\r\n");
        r.send(false, b"250 STARTTLS\r\n220 go ahead\r\n");
        assert!(r.s.is_tls());
        assert_eq!(r.stats.starttls, 1);
        r.send(true, b"\x16\x03\x01garbage");
        assert!(r.out.is_empty());

        let mut r = Run::new(1 << 20);
        r.send(true, b"MAIL FROM:<a@x>\r\nDATA\r\nSubject: x\r\n\r\n");
        for i in 0..=MAX_EARLY_SEGMENTS as u32 {
            r.at(true, 100_000 + i * 10, b"0123456789");
        }
        assert_eq!(r.stats.give_ups(GiveUp::Gap), 1);
        assert_eq!(r.out.len(), 1);
        assert!(r.out[0].truncated);
        assert_eq!(r.shared.used(), r.s.buffers_reserved + SESSION_BASE_BYTES);
    }

    #[test]
    fn session_size() {
        // Boxed in the flow entry; what the budget charges per session.
        const { assert!(SESSION_BASE_BYTES < 1024) };
    }

    #[test]
    fn budget_exhaustion_is_counted() {
        let mut r = Run::new(8 << 10);
        r.send(true, b"MAIL FROM:<a@x>\r\nDATA\r\n");
        let big = vec![b'A'; 20_000];
        r.send(true, b"Subject: ");
        r.send(true, &big);
        assert!(r.shared.peak() <= 8 << 10);
        drop(r.s);
        assert_eq!(r.shared.used(), 0);
    }
}
