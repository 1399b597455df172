//! The event model shared by the sensor (which produces events from packets) and the
//! analyzers (which consume them). Plain data, no I/O: analyzers stay pure and testable on
//! synthetic streams.

use std::net::IpAddr;

/// Packet time in nanoseconds since the Unix epoch. Packet timestamps are the only clock.
pub type TsNanos = i64;

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Short text held inline (at most `N` bytes, whole characters): the per-record strings of
/// the sensor's own making. Every flow and DNS record carries a community id and every flow
/// a Zeek history; as `String`s each was a heap allocation on the worker, a cache miss in
/// the sink and a free on another thread, per record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

/// A Community ID: `1:` and the base64 of a SHA-1 digest, 30 ASCII bytes.
pub type CommunityId = InlineStr<31>;

/// A Zeek connection history (each letter once per direction plus scaled repeats).
pub type HistoryText = InlineStr<24>;

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> InlineStr<N> {
    /// Bytes held.
    pub const CAP: usize = N;

    /// The text `s`, cut to `N` bytes at a character boundary.
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(N).min(usize::from(u8::MAX));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self::holding(&s.as_bytes()[..end])
    }

    /// Text from ASCII bytes (what the sensor's base64 and history write); None for
    /// anything else or anything longer than `N`.
    pub fn from_ascii(b: &[u8]) -> Option<Self> {
        if b.len() > N.min(usize::from(u8::MAX)) || !b.is_ascii() {
            return None;
        }
        Some(Self::holding(b))
    }

    /// `b` (whole characters, at most `N` and 255 bytes: the callers check).
    fn holding(b: &[u8]) -> Self {
        let mut t = InlineStr {
            len: b.len() as u8,
            bytes: [0; N],
        };
        t.bytes[..b.len()].copy_from_slice(b);
        t
    }

    /// The text's bytes, without the UTF-8 check [`InlineStr::as_str`] makes (they are
    /// always whole characters of a `&str`, or ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The whole buffer and how much of it is the text: a writer can copy the fixed-size
    /// array (plain moves) and keep the text's length of it.
    pub fn buffer(&self) -> (&[u8; N], usize) {
        (&self.bytes, usize::from(self.len).min(N))
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters of a `&str` are ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl<const N: usize> std::ops::Deref for InlineStr<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> std::fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> std::fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> From<&str> for InlineStr<N> {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl<const N: usize> From<String> for InlineStr<N> {
    fn from(s: String) -> Self {
        Self::new(&s)
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> PartialEq<str> for InlineStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// IP protocol numbers the sensor names in its output.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// Suricata's names for IP protocols (`proto` in the EVE envelope).
pub fn proto_name(proto: u8) -> std::borrow::Cow<'static, str> {
    match proto {
        ipproto::TCP => "TCP".into(),
        ipproto::UDP => "UDP".into(),
        ipproto::ICMP => "ICMP".into(),
        ipproto::ICMPV6 => "IPv6-ICMP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        132 => "SCTP".into(),
        other => other.to_string().into(),
    }
}

/// Up to two VLAN ids (outer first), as Zeek's `id.ctx.vlan` / `id.ctx.inner_vlan`.
/// Deeper tags (QinQinQ) are not part of the key, as in Zeek.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vlans {
    pub outer: Option<u16>,
    pub inner: Option<u16>,
}

/// One word for the hasher, not two discriminants and two ids: VLANs are part of every flow
/// key and host key, hashed on every packet. Equal values give equal words (and unequal
/// values unequal ones: bit 16 says an id is there).
impl std::hash::Hash for Vlans {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let id = |v: Option<u16>| v.map_or(0, |v| u32::from(v) | 1 << 16);
        state.write_u64(u64::from(id(self.outer)) | u64::from(id(self.inner)) << 32);
    }
}

impl Vlans {
    pub fn push(&mut self, id: u16) {
        if self.outer.is_none() {
            self.outer = Some(id);
        } else if self.inner.is_none() {
            self.inner = Some(id);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.outer.is_none()
    }
    pub fn ids(&self) -> impl Iterator<Item = u16> {
        self.outer.into_iter().chain(self.inner)
    }
}

/// Zeek's `conn_state` vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    S0,
    S1,
    SF,
    REJ,
    S2,
    S3,
    RSTO,
    RSTR,
    RSTOS0,
    RSTRH,
    SH,
    SHR,
    OTH,
}

impl ConnState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }
}

/// Why a flow record was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Idle longer than the protocol's timeout (packet time).
    Timeout,
    /// TCP closed (FIN both ways or RST), after a short linger for late packets.
    Closed,
    /// Pushed out of a full flow table.
    Evicted,
    /// End of replay or SIGINT/SIGTERM.
    Shutdown,
    /// Periodic record of a still-active long flow (the flow goes on).
    Update,
}

impl CloseReason {
    /// Suricata's `flow.reason` vocabulary where it has one.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Timeout => "timeout",
            CloseReason::Closed => "closed",
            CloseReason::Evicted => "forced",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Update => "update",
        }
    }
}

/// Where a flow's server name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameSource {
    TlsSni,
    HttpHost,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::TlsSni => "tls_sni",
            NameSource::HttpHost => "http_host",
        }
    }
}

/// A bidirectional flow record. `src` is the originator (the side that sent the first packet,
/// or the SYN sender), as in Zeek's `id.orig_h`.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub flow_id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    /// IP protocol number.
    pub proto: u8,
    pub vlan: Vlans,
    /// Number of tunnel layers the packets were found inside (0 = not tunneled).
    pub tunnel_depth: u8,
    pub first_ts: TsNanos,
    pub last_ts: TsNanos,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    /// IP bytes (Zeek's `orig_ip_bytes`): IP total length, not link-layer bytes.
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    /// Transport payload bytes each way (TCP from sequence numbers when seen, else summed).
    pub payload_toserver: u64,
    pub payload_toclient: u64,
    /// OR of TCP flags seen each way.
    pub tcp_flags_ts: u8,
    pub tcp_flags_tc: u8,
    /// Zeek-style history string (e.g. `ShADadFf`).
    pub history: HistoryText,
    pub conn_state: ConnState,
    pub reason: CloseReason,
    /// TLS SNI or HTTP Host seen on the flow, if any.
    pub server_name: Option<String>,
    pub server_name_source: Option<NameSource>,
    /// Community ID v1 (`1:base64`).
    pub community_id: CommunityId,
    /// Bytes the originator/responder acknowledged that the sensor never saw (capture loss).
    pub missed_bytes: u64,
}

impl Flow {
    pub fn duration_ns(&self) -> i64 {
        self.last_ts.saturating_sub(self.first_ts)
    }
}

/// One DNS resource record of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Owner name. Empty when it is the question's name ([`DnsTxn::answer_name`] gives
    /// the text either way): that is most answers, which then carry no string for it.
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    /// Presentation form of the data (target name, text...). Empty for an A/AAAA record:
    /// its text is `addr`'s ([`DnsAnswer::rdata`]), so the most common answers carry no
    /// string of their own.
    pub data: String,
    /// The address of an A/AAAA record, decoded once by the sensor's DNS parser so that
    /// analyzers need not parse `data` again.
    pub addr: Option<IpAddr>,
}

impl DnsTxn {
    /// The owner name of answer `a` of this transaction.
    pub fn answer_name<'a>(&'a self, a: &'a DnsAnswer) -> &'a str {
        if a.name.is_empty() {
            &self.qname
        } else {
            &a.name
        }
    }
}

impl DnsAnswer {
    /// The record data as text: `data`, or the address of an A/AAAA record.
    pub fn rdata(&self) -> std::borrow::Cow<'_, str> {
        match self.addr {
            Some(ip) if self.data.is_empty() => ip.to_string().into(),
            _ => self.data.as_str().into(),
        }
    }
}

/// A DNS query matched with its response (or not answered within the timeout).
#[derive(Clone, Debug, PartialEq)]
pub struct DnsTxn {
    /// Time of the query (or of the response if the query was not seen).
    pub ts: TsNanos,
    pub flow_id: u64,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    /// IP protocol of the transport (UDP or TCP).
    pub proto: u8,
    pub vlan: Vlans,
    pub community_id: CommunityId,
    pub id: u16,
    pub qname: String,
    pub qtype: u16,
    pub qclass: u16,
    pub opcode: u8,
    /// Response code (extended with EDNS when present); `None` if unanswered.
    pub rcode: Option<u16>,
    pub answers: Vec<DnsAnswer>,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    /// Round-trip time query → response.
    pub rtt_ns: Option<i64>,
    /// The query was seen (false: a response without its query).
    pub query_seen: bool,
}

impl DnsTxn {
    pub fn answered(&self) -> bool {
        self.rcode.is_some()
    }
}

/// Severity of an alert, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    /// Suricata's numeric severity (1 = highest).
    pub fn suricata_level(self) -> u8 {
        match self {
            Severity::Critical => 1,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::Info => 4,
        }
    }
}

/// An analyzer's finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub ts: TsNanos,
    /// Detector id, e.g. `beacon`, `direct_ip`.
    pub detector: &'static str,
    pub severity: Severity,
    /// Human one-liner (EVE `alert.signature`).
    pub signature: String,
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dest_ip: Option<IpAddr>,
    pub dest_port: Option<u16>,
    pub proto: Option<u8>,
    pub name: Option<String>,
    /// Detector-specific evidence, written under the EVE `kizuki` object.
    pub evidence: serde_json::Map<String, serde_json::Value>,
    /// Stable key: one ongoing behaviour has one key (updates reuse it).
    pub dedupe_key: String,
    /// True when this updates an alert already raised with the same key.
    pub update: bool,
}

/// Activity resuming inside a flow that was idle for at least the configured burst gap
/// (`flow.burst_gap_s`): one event per burst after the first, emitted live when the burst
/// starts. Connection starts come from [`Flow::first_ts`]; bursts make keep-alives and
/// callbacks inside one long session visible without waiting for the flow to end.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowBurst {
    /// Time of the first packet of the burst.
    pub ts: TsNanos,
    pub flow_id: u64,
    /// Originator side of the flow (not necessarily the sender of this packet).
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: u8,
    pub vlan: Vlans,
    /// TLS SNI / HTTP Host of the flow, when known.
    pub server_name: Option<String>,
    /// True when the packet that started the burst came from the originator.
    pub from_originator: bool,
    /// IP length of the packet that started the burst.
    pub ip_len: u32,
    /// When the flow started.
    pub flow_start: TsNanos,
    /// Time of the flow's packet before this one: the end of the previous burst (or of the
    /// connection's opening exchange).
    pub prev_ts: TsNanos,
    /// The flow's IP bytes each way before this packet. The difference between two bursts of
    /// one flow is what the earlier burst carried.
    pub flow_bytes_toserver: u64,
    pub flow_bytes_toclient: u64,
}

/// One entry of an archive attachment, listed from its headers without extracting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Path inside the archive (decoded: UTF-8 flag, else UTF-8 if valid, else Shift_JIS).
    pub name: String,
    /// Uncompressed size the header declares.
    pub size: u64,
    /// Encrypted entry (ZipCrypto or AES): the name stays readable, the content does not.
    pub encrypted: bool,
    /// For an entry of a nested archive (one level): the name of that archive in the outer one.
    pub container: Option<String>,
    /// File type by magic bytes when the entry's first bytes were readable (`pe`, `elf`...).
    pub magic: Option<String>,
}

/// A MIME leaf part of a message that is an attachment (a file name, `attachment`
/// disposition or a non-text body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailAttachment {
    /// Decoded file name (RFC 2231 / RFC 2047), if any.
    pub name: Option<String>,
    /// `type/subtype`, lower case (`application/octet-stream` when absent and not text).
    pub content_type: String,
    /// Decoded size in bytes (the whole part, even past the inspection window).
    pub size: u64,
    /// SHA-256 of the decoded content, lower-case hex (empty if the part was cut short).
    pub sha256: String,
    /// File type by magic bytes (`pe`, `elf`, `zip`, `7z`, `rar`, `pdf`, `ole`...).
    pub magic: Option<String>,
    /// Archive entries (ZIP), nested archives one level deep included.
    pub entries: Vec<ArchiveEntry>,
    /// Some archive entry is encrypted.
    pub encrypted: bool,
    /// The archive listing is incomplete (too many entries, window or memory limits).
    pub entries_truncated: bool,
    /// The part was cut short (message size limit or end of session before its end).
    pub truncated: bool,
}

/// One message carried by a plaintext SMTP session (DATA or BDAT).
#[derive(Clone, Debug, PartialEq)]
pub struct MailMessage {
    /// Time of the packet that ended the message.
    pub ts: TsNanos,
    pub flow_id: u64,
    /// SMTP client and server.
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub vlan: Vlans,
    pub community_id: CommunityId,
    /// HELO/EHLO argument.
    pub helo: Option<String>,
    /// Envelope sender (MAIL FROM, without brackets).
    pub mail_from: Option<String>,
    /// Envelope recipients (RCPT TO), capped.
    pub rcpt_to: Vec<String>,
    /// Header fields (decoded RFC 2047), capped.
    pub header_from: Option<String>,
    pub header_to: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// 1 for the first message of the session, 2 for the next...
    pub trans_depth: u32,
    /// `DATA` or `BDAT`.
    pub transfer: &'static str,
    /// Several commands sent before their responses (RFC 2920).
    pub pipelined: bool,
    /// Message bytes seen (after dot-unstuffing).
    pub size: u64,
    /// Parsing stopped at `smtp.max_message_bytes` or the session ended inside the message.
    pub truncated: bool,
    pub attachments: Vec<MailAttachment>,
}

/// What the sensor hands to analyzers.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Flow(Flow),
    Dns(DnsTxn),
    Burst(FlowBurst),
    /// Boxed: a message is the largest record (312 B) and rare; unboxed it sized every event.
    Mail(Box<MailMessage>),
}

impl Event {
    pub fn ts(&self) -> TsNanos {
        match self {
            Event::Flow(f) => f.last_ts,
            Event::Dns(d) => d.ts,
            Event::Burst(b) => b.ts,
            Event::Mail(m) => m.ts,
        }
    }
}

#[cfg(test)]
mod community_id_tests {
    use super::{CommunityId, HistoryText};

    #[test]
    fn holds_an_id_and_cuts_longer_text_at_a_character() {
        let id = CommunityId::new("1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(id.as_str(), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(id.len(), 30);
        assert_eq!(CommunityId::default().as_str(), "");
        // 30 ASCII bytes then a 3-byte character: it does not fit in 31, so it is dropped.
        let long = format!("{}€tail", "x".repeat(30));
        assert_eq!(CommunityId::new(&long).as_str(), "x".repeat(30));
        assert_eq!(CommunityId::from("1:é".to_string()), "1:é");
        assert_eq!(
            HistoryText::from_ascii(b"ShADadFf").unwrap_or_default(),
            "ShADadFf"
        );
        assert!(HistoryText::from_ascii(&[b'a'; 25]).is_none());
        assert!(HistoryText::from_ascii("é".as_bytes()).is_none());
    }
}

#[cfg(test)]
mod size_tests {
    /// Events sit by the hundred thousand in the vectors between threads: their size is
    /// memory in flight (docs/ARCHITECTURE.md, "Memory per live flow").
    #[test]
    fn an_event_stays_small() {
        let size = std::mem::size_of::<super::Event>();
        assert!(size <= 216, "Event grew to {size} bytes");
    }
}
