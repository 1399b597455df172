//! Plaintext SMTP (ports 25 and 587 by default): TCP reassembly per session, command /
//! response tracking (pipelining, DATA, BDAT/CHUNKING, STARTTLS), a streaming MIME parser for
//! the message, and attachment facts (names, magic bytes, SHA-256, ZIP listings) handed to
//! the `mail_attachment` detector as [`analyzers::MailMessage`] events. See `docs/mail.md`.
//!
//! Memory: every buffer has a per-session cap, and all of a worker's SMTP buffers (held
//! out-of-order segments, line and header buffers, attachment inspection windows) draw on one
//! budget (`smtp.total_buffer_bytes` split over the workers). What does not fit is given up
//! and counted, never queued.

pub mod mime;
pub mod session;
pub mod text;
pub mod zip;

pub use session::SmtpSession;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Limits of one worker's SMTP parsing.
#[derive(Clone, Copy, Debug)]
pub struct SmtpLimits {
    /// Line, header and out-of-order buffers of one session.
    pub session_buffer_bytes: usize,
    /// Decoded bytes of an attachment kept for archive listing (the hash covers all).
    pub inspect_bytes: usize,
    /// Message bytes parsed at most; the rest of a message is skipped (counted).
    pub max_message_bytes: u64,
}

/// A worker's shared budget, and counters of sessions that ended while holding a message.
#[derive(Debug)]
pub struct Shared {
    cap: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    pub unfinished: AtomicU64,
}

impl Shared {
    pub fn new(cap: usize) -> Self {
        Shared {
            cap,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            unfinished: AtomicU64::new(0),
        }
    }
    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
    /// Most bytes ever held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
    pub fn cap(&self) -> usize {
        self.cap
    }
}

/// One session's account on the shared budget; whatever it still holds is returned on drop.
#[derive(Debug)]
pub struct Acct {
    shared: Arc<Shared>,
    pub held: usize,
}

impl Acct {
    pub fn new(shared: Arc<Shared>) -> Self {
        Acct { shared, held: 0 }
    }

    /// Reserves `n` bytes; false (nothing reserved) when the budget would be exceeded.
    pub fn take(&mut self, n: usize) -> bool {
        let s = &self.shared;
        let ok = s
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= s.cap)
            })
            .is_ok();
        if ok {
            self.held += n;
            s.peak
                .fetch_max(s.used.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        ok
    }

    pub fn give(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        self.shared.used.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Acct {
    fn drop(&mut self) {
        let n = self.held;
        self.give(n);
    }
}

/// Why parsing of a session (or part of it) was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// A hole in the stream that did not fill within the held-segment bounds.
    Gap,
    /// A segment overlapping bytes already taken (the first copy is kept).
    Overlap,
    /// A line or the session's buffers over their cap.
    Oversize,
    /// A message over `smtp.max_message_bytes` (the rest is not parsed).
    MessageSize,
    /// The worker's total SMTP budget was spent.
    Memory,
    /// The session ended (timeout, eviction, reset) inside a message.
    Unfinished,
}

impl GiveUp {
    pub const ALL: [GiveUp; 6] = [
        GiveUp::Gap,
        GiveUp::Overlap,
        GiveUp::Oversize,
        GiveUp::MessageSize,
        GiveUp::Memory,
        GiveUp::Unfinished,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::Gap => "gap",
            GiveUp::Overlap => "overlap",
            GiveUp::Oversize => "oversize",
            GiveUp::MessageSize => "message_size",
            GiveUp::Memory => "memory",
            GiveUp::Unfinished => "unfinished",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// Counters a worker publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmtpStats {
    pub sessions: u64,
    pub messages: u64,
    pub attachments: u64,
    pub starttls: u64,
    pub give_ups: [u64; 6],
}

impl SmtpStats {
    pub fn give_up(&mut self, g: GiveUp) {
        self.give_ups[g.index()] += 1;
    }
    pub fn give_ups(&self, g: GiveUp) -> u64 {
        self.give_ups[g.index()]
    }
}
