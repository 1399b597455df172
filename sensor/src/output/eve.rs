//! EVE JSON lines (Suricata-compatible envelope) for flow and DNS events. serde_json does
//! the escaping, so arbitrary bytes in names can never break a line.

use super::jsonw::{hex_byte_str, Obj};
use super::rotate::{RotatePolicy, RotatingFile};
use crate::timefmt::{eve_ts, write_eve_ts_bytes};
use analyzers::dnsnames::{rcode_name, rrtype_name};
use analyzers::{proto_name, Alert, DnsTxn, Flow, MailMessage, TsNanos, Vlans};
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    proto: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vec<u16>>,
    community_id: &'a str,
    #[serde(flatten)]
    body: T,
}

fn vlan_list(v: &Vlans) -> Option<Vec<u16>> {
    (!v.is_empty()).then(|| v.ids().collect())
}

#[cfg(test)]
#[derive(Serialize)]
struct FlowBody<'a> {
    flow: FlowObj<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpObj>,
}

#[cfg(test)]
#[derive(Serialize)]
struct FlowObj<'a> {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    payload_toserver: u64,
    payload_toclient: u64,
    start: String,
    end: String,
    age: i64,
    duration: f64,
    state: &'static str,
    reason: &'static str,
    conn_state: &'static str,
    history: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name_source: Option<&'static str>,
    tunnel_depth: u8,
    missed_bytes: u64,
}

#[cfg(test)]
#[derive(Serialize)]
struct TcpObj {
    tcp_flags: String,
    tcp_flags_ts: String,
    tcp_flags_tc: String,
}

#[cfg(test)]
#[derive(Serialize)]
struct DnsBody<'a> {
    dns: DnsObj<'a>,
}

#[cfg(test)]
#[derive(Serialize)]
struct DnsObj<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u16,
    rrname: &'a str,
    rrtype: Cow<'static, str>,
    rclass: u16,
    opcode: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<Cow<'static, str>>,
    answered: bool,
    query_seen: bool,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    answers: Vec<AnswerObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt: Option<f64>,
}

#[cfg(test)]
#[derive(Serialize)]
struct AnswerObj<'a> {
    rrname: &'a str,
    rrtype: Cow<'static, str>,
    ttl: u32,
    rdata: Cow<'a, str>,
}

/// Suricata's flow state names from Kizuki's close reason and conn_state.
fn flow_state(f: &Flow) -> &'static str {
    use analyzers::ConnState::*;
    match f.conn_state {
        SF | REJ | RSTO | RSTR | RSTOS0 | RSTRH | SH | SHR => "closed",
        S0 => "new",
        _ if f.pkts_toclient == 0 => "new",
        _ => "established",
    }
}

/// The serde form of a flow record: the reference the hand-written writer is tested against.
#[cfg(test)]
fn serde_flow(out: &mut Vec<u8>, f: &Flow) {
    let tcp = (f.proto == 6).then(|| TcpObj {
        tcp_flags: format!("{:02x}", f.tcp_flags_ts | f.tcp_flags_tc),
        tcp_flags_ts: format!("{:02x}", f.tcp_flags_ts),
        tcp_flags_tc: format!("{:02x}", f.tcp_flags_tc),
    });
    let e = Envelope {
        timestamp: eve_ts(f.first_ts),
        flow_id: f.flow_id,
        event_type: "flow",
        src_ip: f.src_ip,
        src_port: f.src_port,
        dest_ip: f.dest_ip,
        dest_port: f.dest_port,
        proto: proto_name(f.proto),
        vlan: vlan_list(&f.vlan),
        community_id: &f.community_id,
        body: FlowBody {
            flow: FlowObj {
                pkts_toserver: f.pkts_toserver,
                pkts_toclient: f.pkts_toclient,
                bytes_toserver: f.bytes_toserver,
                bytes_toclient: f.bytes_toclient,
                payload_toserver: f.payload_toserver,
                payload_toclient: f.payload_toclient,
                start: eve_ts(f.first_ts),
                end: eve_ts(f.last_ts),
                age: f.duration_ns() / 1_000_000_000,
                duration: f.duration_ns() as f64 / 1e9,
                state: flow_state(f),
                reason: f.reason.as_str(),
                conn_state: f.conn_state.as_str(),
                history: &f.history,
                server_name: f.server_name.as_deref(),
                server_name_source: f.server_name_source.map(|s| s.as_str()),
                tunnel_depth: f.tunnel_depth,
                missed_bytes: f.missed_bytes,
            },
            tcp,
        },
    };
    let _ = serde_json::to_writer(out, &e);
}

/// The serde form of a DNS record (test reference, as [`serde_flow`]).
#[cfg(test)]
fn serde_dns(out: &mut Vec<u8>, d: &DnsTxn) {
    let e = Envelope {
        timestamp: eve_ts(d.ts),
        flow_id: d.flow_id,
        event_type: "dns",
        src_ip: d.client_ip,
        src_port: d.client_port,
        dest_ip: d.server_ip,
        dest_port: d.server_port,
        proto: proto_name(d.proto),
        vlan: vlan_list(&d.vlan),
        community_id: &d.community_id,
        body: DnsBody {
            dns: DnsObj {
                kind: "transaction",
                id: d.id,
                rrname: &d.qname,
                rrtype: rrtype_name(d.qtype),
                rclass: d.qclass,
                opcode: d.opcode,
                rcode: d.rcode.map(rcode_name),
                answered: d.answered(),
                query_seen: d.query_seen,
                aa: d.authoritative,
                tc: d.truncated,
                rd: d.recursion_desired,
                ra: d.recursion_available,
                answers: d
                    .answers
                    .iter()
                    .map(|a| AnswerObj {
                        rrname: d.answer_name(a),
                        rrtype: rrtype_name(a.rtype),
                        ttl: a.ttl,
                        rdata: a.rdata(),
                    })
                    .collect(),
                rtt: d.rtt_ns.map(|n| n as f64 / 1e9),
            },
        },
    };
    let _ = serde_json::to_writer(out, &e);
}

/// The envelope's leading fields, as [`Envelope`] serialises them.
#[allow(clippy::too_many_arguments)]
fn envelope(
    o: &mut Obj<'_>,
    ts: TsNanos,
    flow_id: u64,
    event_type: &str,
    src: (IpAddr, u16),
    dest: (IpAddr, u16),
    proto: u8,
    vlan: &Vlans,
    community_id: &analyzers::CommunityId,
) {
    o.raw("timestamp", |b| ts_str(b, ts))
        .u64("flow_id", flow_id)
        .lit("event_type", event_type)
        .ip("src_ip", src.0)
        .u64("src_port", src.1.into())
        .ip("dest_ip", dest.0)
        .u64("dest_port", dest.1.into())
        .lit("proto", &proto_name(proto));
    if !vlan.is_empty() {
        o.raw("vlan", |b| {
            b.push(b'[');
            for (i, id) in vlan.ids().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
            }
            b.push(b']');
        });
    }
    o.inline_str("community_id", community_id);
}

#[inline(always)]
fn ts_str(b: &mut Vec<u8>, ts: TsNanos) {
    b.push(b'"');
    write_eve_ts_bytes(b, ts);
    b.push(b'"');
}

/// Serialises a flow event (one JSON object, no newline) into `out`.
pub fn write_flow(out: &mut Vec<u8>, f: &Flow) {
    let mut o = Obj::open(out);
    envelope(
        &mut o,
        f.first_ts,
        f.flow_id,
        "flow",
        (f.src_ip, f.src_port),
        (f.dest_ip, f.dest_port),
        f.proto,
        &f.vlan,
        &f.community_id,
    );
    o.raw("flow", |b| {
        let mut fo = Obj::open(b);
        fo.u64("pkts_toserver", f.pkts_toserver)
            .u64("pkts_toclient", f.pkts_toclient)
            .u64("bytes_toserver", f.bytes_toserver)
            .u64("bytes_toclient", f.bytes_toclient)
            .u64("payload_toserver", f.payload_toserver)
            .u64("payload_toclient", f.payload_toclient)
            .raw("start", |b| ts_str(b, f.first_ts))
            .raw("end", |b| ts_str(b, f.last_ts))
            .i64("age", f.duration_ns() / 1_000_000_000)
            .f64("duration", f.duration_ns() as f64 / 1e9)
            .lit("state", flow_state(f))
            .lit("reason", f.reason.as_str())
            .lit("conn_state", f.conn_state.as_str())
            .inline_str("history", &f.history)
            .opt_str("server_name", f.server_name.as_deref())
            .opt_str(
                "server_name_source",
                f.server_name_source.map(|s| s.as_str()),
            )
            .u64("tunnel_depth", f.tunnel_depth.into())
            .u64("missed_bytes", f.missed_bytes)
            .close();
    });
    if f.proto == 6 {
        o.raw("tcp", |b| {
            Obj::open(b)
                .raw("tcp_flags", |b| {
                    hex_byte_str(b, f.tcp_flags_ts | f.tcp_flags_tc)
                })
                .raw("tcp_flags_ts", |b| hex_byte_str(b, f.tcp_flags_ts))
                .raw("tcp_flags_tc", |b| hex_byte_str(b, f.tcp_flags_tc))
                .close();
        });
    }
    o.close();
}

/// An answer's record data as a JSON string: an A/AAAA record's address is written from
/// `addr` (it has no text of its own), anything else from `data`.
fn rdata(b: &mut Vec<u8>, a: &analyzers::DnsAnswer) {
    match a.addr {
        Some(ip) if a.data.is_empty() => super::jsonw::quoted_ip(b, ip),
        _ => super::jsonw::string(b, &a.data),
    }
}

/// Serialises a DNS transaction event into `out`.
pub fn write_dns(out: &mut Vec<u8>, d: &DnsTxn) {
    let mut o = Obj::open(out);
    envelope(
        &mut o,
        d.ts,
        d.flow_id,
        "dns",
        (d.client_ip, d.client_port),
        (d.server_ip, d.server_port),
        d.proto,
        &d.vlan,
        &d.community_id,
    );
    o.raw("dns", |b| {
        let mut q = Obj::open(b);
        q.lit("type", "transaction")
            .u64("id", d.id.into())
            .str("rrname", &d.qname)
            .lit("rrtype", &rrtype_name(d.qtype))
            .u64("rclass", d.qclass.into())
            .u64("opcode", d.opcode.into());
        if let Some(rc) = d.rcode {
            q.lit("rcode", &rcode_name(rc));
        }
        q.bool("answered", d.answered())
            .bool("query_seen", d.query_seen)
            .bool("aa", d.authoritative)
            .bool("tc", d.truncated)
            .bool("rd", d.recursion_desired)
            .bool("ra", d.recursion_available)
            .raw("answers", |b| {
                b.push(b'[');
                for (i, a) in d.answers.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    Obj::open(b)
                        .str("rrname", d.answer_name(a))
                        .lit("rrtype", &rrtype_name(a.rtype))
                        .u64("ttl", a.ttl.into())
                        .raw("rdata", |b| rdata(b, a))
                        .close();
                }
                b.push(b']');
            });
        if let Some(n) = d.rtt_ns {
            q.f64("rtt", n as f64 / 1e9);
        }
        q.close();
    });
    o.close();
}

#[derive(Serialize)]
struct SmtpBody {
    smtp: serde_json::Value,
    email: serde_json::Value,
}

/// Serialises one mail message (`event_type:"smtp"`): the envelope under `smtp`, headers and
/// attachments under `email`, as Suricata splits them.
pub fn write_smtp(out: &mut Vec<u8>, m: &MailMessage) {
    use serde_json::json;
    let atts: Vec<serde_json::Value> = m
        .attachments
        .iter()
        .map(|a| {
            let entries: Vec<serde_json::Value> = a
                .entries
                .iter()
                .map(|e| {
                    let mut o = json!({"name": e.name, "size": e.size, "encrypted": e.encrypted});
                    if let Some(c) = &e.container {
                        o["container"] = json!(c);
                    }
                    if let Some(g) = &e.magic {
                        o["magic"] = json!(g);
                    }
                    o
                })
                .collect();
            let mut o = json!({
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "magic": a.magic,
                "truncated": a.truncated,
            });
            if a.magic.as_deref() == Some("zip") || !entries.is_empty() {
                o["encrypted"] = json!(a.encrypted);
                o["entries"] = json!(entries);
                o["entries_truncated"] = json!(a.entries_truncated);
            }
            o
        })
        .collect();
    let e = Envelope {
        timestamp: eve_ts(m.ts),
        flow_id: m.flow_id,
        event_type: "smtp",
        src_ip: m.src_ip,
        src_port: m.src_port,
        dest_ip: m.dest_ip,
        dest_port: m.dest_port,
        proto: proto_name(analyzers::ipproto::TCP),
        vlan: vlan_list(&m.vlan),
        community_id: &m.community_id,
        body: SmtpBody {
            smtp: json!({
                "helo": m.helo,
                "mail_from": m.mail_from,
                "rcpt_to": m.rcpt_to,
                "transfer": m.transfer,
                "pipelined": m.pipelined,
                "trans_depth": m.trans_depth,
            }),
            email: json!({
                "from": m.header_from,
                "to": m.header_to,
                "subject": m.subject,
                "message_id": m.message_id,
                "size": m.size,
                "truncated": m.truncated,
                "attachments": atts,
            }),
        },
    };
    let _ = serde_json::to_writer(out, &e);
}

#[cfg(test)]
#[derive(Serialize)]
struct AlertEvent<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<Cow<'static, str>>,
    alert: AlertObj<'a>,
    kizuki: KizukiObj<'a>,
}

#[cfg(test)]
#[derive(Serialize)]
struct AlertObj<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'static str,
    severity: u8,
}

#[cfg(test)]
#[derive(Serialize)]
struct KizukiObj<'a> {
    detector: &'static str,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    dedupe_key: &'a str,
    update: bool,
    #[serde(flatten)]
    evidence: &'a serde_json::Map<String, serde_json::Value>,
}

/// Stable Suricata-style signature ids per detector (gid 9xxx is Kizuki's).
pub fn signature_id(detector: &str) -> u32 {
    const IDS: &[&str] = &[
        "beacon",
        "dns_sinkhole_periodic",
        "direct_ip",
        "proxy_bypass",
        "dns_bypass",
        "ddns",
        "paas",
        "dns_tunnel",
        "dga",
        "volume",
        "long_connection",
        "op25b",
        "mail_bruteforce",
        "new_server",
        "mail_attachment",
    ];
    9_100_000
        + IDS
            .iter()
            .position(|d| *d == detector)
            .map_or(999, |i| i as u32 + 1)
}

fn category(detector: &str) -> &'static str {
    match detector {
        "beacon" | "dns_sinkhole_periodic" => "Command and Control",
        "dns_tunnel" | "volume" | "long_connection" => "Exfiltration",
        "new_server" => "Asset Inventory",
        "mail_attachment" => "Malicious Mail",
        _ => "Policy Violation",
    }
}

/// Serialises an alert event into `out`: the hand-written writer, byte-for-byte what
/// [`serde_alert`] prints (the evidence values go through serde_json).
pub fn write_alert(out: &mut Vec<u8>, a: &Alert) {
    let mut o = Obj::open(out);
    o.raw("timestamp", |b| ts_str(b, a.ts));
    if let Some(id) = a.evidence.get("flow_id").and_then(|v| v.as_u64()) {
        o.u64("flow_id", id);
    }
    o.str("event_type", "alert");
    if let Some(ip) = a.src_ip {
        o.ip("src_ip", ip);
    }
    if let Some(p) = a.src_port {
        o.u64("src_port", p.into());
    }
    if let Some(ip) = a.dest_ip {
        o.ip("dest_ip", ip);
    }
    if let Some(p) = a.dest_port {
        o.u64("dest_port", p.into());
    }
    if let Some(p) = a.proto {
        o.str("proto", &proto_name(p));
    }
    o.raw("alert", |b| {
        Obj::open(b)
            .str("action", "allowed")
            .u64("gid", 1)
            .u64("signature_id", signature_id(a.detector).into())
            .u64("rev", 1)
            .str("signature", &a.signature)
            .str("category", category(a.detector))
            .u64("severity", a.severity.suricata_level().into())
            .close();
    });
    o.raw("kizuki", |b| {
        let mut k = Obj::open(b);
        k.str("detector", a.detector)
            .str("severity", a.severity.as_str())
            .opt_str("name", a.name.as_deref())
            .str("dedupe_key", &a.dedupe_key)
            .bool("update", a.update);
        // Flattened, as `#[serde(flatten)]` writes a map: its keys may need escaping.
        for (key, v) in &a.evidence {
            k.value(key, v);
        }
        k.close();
    });
    o.close();
}

/// The serde form of an alert: the reference [`write_alert`] is tested against.
#[cfg(test)]
fn serde_alert(out: &mut Vec<u8>, a: &Alert) {
    let e = AlertEvent {
        timestamp: eve_ts(a.ts),
        flow_id: a.evidence.get("flow_id").and_then(|v| v.as_u64()),
        event_type: "alert",
        src_ip: a.src_ip,
        src_port: a.src_port,
        dest_ip: a.dest_ip,
        dest_port: a.dest_port,
        proto: a.proto.map(proto_name),
        alert: AlertObj {
            action: "allowed",
            gid: 1,
            signature_id: signature_id(a.detector),
            rev: 1,
            signature: &a.signature,
            category: category(a.detector),
            severity: a.severity.suricata_level(),
        },
        kizuki: KizukiObj {
            detector: a.detector,
            severity: a.severity.as_str(),
            name: a.name.as_deref(),
            dedupe_key: &a.dedupe_key,
            update: a.update,
            evidence: &a.evidence,
        },
    };
    let _ = serde_json::to_writer(out, &e);
}

/// Appends EVE lines to `DIR/eve.json`, rotating, compressing and expiring old files as
/// the output policy says (see [`super::rotate`]).
pub struct EveWriter {
    file: RotatingFile,
    pub lines: u64,
}

impl EveWriter {
    pub fn create(dir: &Path, file: &str, policy: RotatePolicy) -> Result<Self, String> {
        Ok(Self {
            file: RotatingFile::open(dir.join(file), policy)?,
            lines: 0,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn write_errors(&self) -> u64 {
        self.file.errors
    }

    pub fn rotations(&self) -> u64 {
        self.file.rotations
    }

    /// Writes one serialised event (`line`, without newline) of event time `ts`.
    pub fn write_event(&mut self, line: &mut Vec<u8>, ts: i64) {
        if !line.is_empty() && self.file.write_line(line, ts) {
            self.lines += 1;
        }
    }

    /// Writes many serialised events, each ending in `\n` (see
    /// [`RotatingFile::write_lines_nl`]).
    pub fn write_serialised_lines(&mut self, lines: &[u8], marks: &[(i64, u32)]) {
        self.lines += self.file.write_lines_nl(lines, marks);
    }

    pub fn flush(&mut self) {
        self.file.flush();
    }

    /// Reopens the file (SIGHUP from an external log rotator).
    pub fn reopen(&mut self) {
        self.file.reopen();
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct InventoryEvent<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    src_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vec<u16>>,
    inventory: InventoryObj<'a>,
}

#[cfg(test)]
#[derive(Serialize)]
struct InventoryObj<'a> {
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    roles: &'a [&'static str],
    first_seen: String,
    last_seen: String,
    clients: u64,
    learning: bool,
    evidence: InventoryEvidence,
}

#[cfg(test)]
#[derive(Serialize)]
struct InventoryEvidence {
    seen_as: &'static str,
    peer: IpAddr,
    port: u16,
    proto: Cow<'static, str>,
}

/// Serialises an inventory change (`event_type:"inventory"`; `src_ip` = the host, `flow_id`
/// = the flow that showed the change) into `out`.
/// Serialises an inventory change (one JSON object, no newline) into `out`: the hand-written
/// writer, as for flows (the records are many on a first start).
pub fn write_inventory(out: &mut Vec<u8>, c: &analyzers::inventory::InventoryChange) {
    let mut o = Obj::open(out);
    o.raw("timestamp", |b| ts_str(b, c.ts))
        .u64("flow_id", c.evidence.flow_id)
        .lit("event_type", "inventory")
        .ip("src_ip", c.host.ip);
    if !c.host.vlan.is_empty() {
        o.raw("vlan", |b| {
            b.push(b'[');
            for (i, id) in c.host.vlan.ids().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
            }
            b.push(b']');
        });
    }
    o.raw("inventory", |b| {
        let mut io = Obj::open(b);
        io.lit("change", c.change.as_str())
            .opt_str("role", c.role)
            .raw("roles", |b| {
                b.push(b'[');
                for (i, r) in c.roles.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    super::jsonw::string(b, r);
                }
                b.push(b']');
            })
            .raw("first_seen", |b| ts_str(b, c.first_seen))
            .raw("last_seen", |b| ts_str(b, c.last_seen))
            .u64("clients", c.clients)
            .bool("learning", c.learning)
            .raw("evidence", |b| {
                Obj::open(b)
                    .lit("seen_as", c.evidence.seen_as)
                    .ip("peer", c.evidence.peer)
                    .u64("port", c.evidence.port.into())
                    .lit("proto", &proto_name(c.evidence.proto))
                    .close();
            });
        io.close();
    });
    o.close();
}

/// The serde form of an inventory change: the reference the writer is tested against.
#[cfg(test)]
fn serde_inventory(out: &mut Vec<u8>, c: &analyzers::inventory::InventoryChange) {
    let e = InventoryEvent {
        timestamp: eve_ts(c.ts),
        flow_id: c.evidence.flow_id,
        event_type: "inventory",
        src_ip: c.host.ip,
        vlan: vlan_list(&c.host.vlan),
        inventory: InventoryObj {
            change: c.change.as_str(),
            role: c.role,
            roles: &c.roles,
            first_seen: eve_ts(c.first_seen),
            last_seen: eve_ts(c.last_seen),
            clients: c.clients,
            learning: c.learning,
            evidence: InventoryEvidence {
                seen_as: c.evidence.seen_as,
                peer: c.evidence.peer,
                port: c.evidence.port,
                proto: proto_name(c.evidence.proto),
            },
        },
    };
    let _ = serde_json::to_writer(out, &e);
}

#[cfg(test)]
mod tests {
    use super::*;
    use analyzers::{CloseReason, ConnState, DnsAnswer, NameSource};

    const HOSTILE: [&str; 5] = [
        "",
        "www.example.com",
        "q\"uo\\te.example",
        "ctl\u{0}\u{1b}\n.example",
        "日本語\u{202e}.example",
    ];

    fn flow(i: usize, name: &str) -> Flow {
        Flow {
            flow_id: 1 << 60 | i as u64,
            src_ip: if i.is_multiple_of(2) {
                "10.1.2.3".parse().unwrap()
            } else {
                "2001:db8::1".parse().unwrap()
            },
            src_port: 40_000 + i as u16,
            dest_ip: "192.0.2.255".parse().unwrap(),
            dest_port: 443,
            proto: [6, 17, 1, 58, 47, 200][i % 6],
            vlan: Vlans {
                outer: (!i.is_multiple_of(3)).then_some(100),
                inner: (i % 3 > 1).then_some(4094),
            },
            tunnel_depth: (i % 3) as u8,
            first_ts: 1_795_636_512_123_456_789 + i as i64,
            last_ts: 1_795_636_600_000_000_001 + (i as i64) * 7_777_777,
            pkts_toserver: u64::MAX - i as u64,
            pkts_toclient: i as u64,
            bytes_toserver: 1500,
            bytes_toclient: 0,
            payload_toserver: 3,
            payload_toclient: 4,
            tcp_flags_ts: 0x1b,
            tcp_flags_tc: (i * 37) as u8,
            history: "ShADadFf".into(),
            conn_state: [ConnState::SF, ConnState::S0, ConnState::OTH][i % 3],
            reason: [
                CloseReason::Timeout,
                CloseReason::Update,
                CloseReason::Evicted,
            ][i % 3],
            server_name: (!name.is_empty()).then(|| name.to_string()),
            server_name_source: i.is_multiple_of(2).then_some(NameSource::HttpHost),
            community_id: format!("1:{name}").into(),
            missed_bytes: 9,
        }
    }

    fn dns(i: usize, name: &str) -> DnsTxn {
        DnsTxn {
            ts: -1 + i as i64 * 1_000_000_007,
            flow_id: i as u64,
            client_ip: "fe80::1".parse().unwrap(),
            client_port: 5353,
            server_ip: "8.8.8.8".parse().unwrap(),
            server_port: 53,
            proto: 17,
            vlan: Vlans {
                outer: (i % 2 == 1).then_some(7),
                inner: None,
            },
            community_id: "1:abc=".into(),
            id: u16::MAX,
            qname: name.into(),
            qtype: [1, 28, 16, 65_000][i % 4],
            qclass: 1,
            opcode: 0,
            rcode: [Some(0), None, Some(3), Some(4000)][i % 4],
            answers: (0..i % 3)
                .map(|k| DnsAnswer {
                    name: name.into(),
                    rtype: [1, 5, 99][k],
                    ttl: u32::MAX,
                    data: format!("{name}{k}"),
                    addr: None,
                })
                .collect(),
            authoritative: i.is_multiple_of(2),
            truncated: i.is_multiple_of(3),
            recursion_desired: true,
            recursion_available: false,
            rtt_ns: i.is_multiple_of(2).then_some(1_234_567 * i as i64),
            query_seen: i % 4 != 1,
        }
    }

    #[test]
    fn hand_written_records_equal_the_serde_ones_byte_for_byte() {
        for i in 0..24 {
            let name = HOSTILE[i % HOSTILE.len()];
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_flow(&mut a, &flow(i, name));
            serde_flow(&mut b, &flow(i, name));
            assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_dns(&mut a, &dns(i, name));
            serde_dns(&mut b, &dns(i, name));
            assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            serde_json::from_slice::<serde_json::Value>(&a).expect("valid JSON");
        }
    }

    #[test]
    fn inventory_records_equal_the_serde_ones_byte_for_byte() {
        use analyzers::inventory::{Change, Evidence, InventoryChange};
        for i in 0..12usize {
            let f = flow(i, "");
            let c = InventoryChange {
                ts: f.first_ts,
                change: if i % 2 == 0 {
                    Change::NewHost
                } else {
                    Change::NewRole
                },
                host: analyzers::detectors::HostKey::new(f.vlan, f.src_ip),
                role: (i % 2 == 1).then_some("dns"),
                roles: ["dns", "web", "auth"][..i % 4].to_vec(),
                first_seen: f.first_ts - i as i64,
                last_seen: f.last_ts,
                clients: i as u64 * 1000,
                learning: i % 3 == 0,
                evidence: Evidence {
                    seen_as: ["client", "server"][i % 2],
                    peer: f.dest_ip,
                    port: f.dest_port,
                    proto: f.proto,
                    flow_id: f.flow_id,
                },
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_inventory(&mut a, &c);
            serde_inventory(&mut b, &c);
            assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        }
    }

    fn alert(i: usize, name: &str) -> Alert {
        use serde_json::json;
        let mut evidence = serde_json::Map::new();
        match i % 4 {
            0 => {}
            1 => {
                evidence.insert("flow_id".into(), json!(i as u64 * 1_000_003));
                evidence.insert("occurrences".into(), json!(i));
                evidence.insert("interval_s".into(), json!(0.1 + i as f64));
            }
            2 => {
                // Not a u64: no envelope flow_id, but still in the evidence.
                evidence.insert("flow_id".into(), json!(-(i as i64)));
                evidence.insert(
                    name.into(),
                    json!({"nested": [name, null, 1.5e300, {"k": true}]}),
                );
                evidence.insert("reasons".into(), json!(["encrypted_zip", name]));
            }
            _ => {
                evidence.insert("flow_id".into(), json!("12"));
                evidence.insert("detector".into(), json!(name));
                evidence.insert("nan".into(), json!(f64::NAN));
                evidence.insert("empty".into(), json!({}));
                evidence.insert("list".into(), json!([]));
            }
        }
        let f = flow(i, name);
        Alert {
            ts: f.first_ts - (i as i64) * 999_999_937,
            detector: [
                "beacon",
                "dns_tunnel",
                "new_server",
                "mail_attachment",
                "unknown",
            ][i % 5],
            severity: [
                analyzers::Severity::Info,
                analyzers::Severity::Low,
                analyzers::Severity::Medium,
                analyzers::Severity::High,
                analyzers::Severity::Critical,
            ][i % 5],
            signature: format!("sig {name}"),
            src_ip: (!i.is_multiple_of(3)).then_some(f.src_ip),
            src_port: i.is_multiple_of(2).then_some(f.src_port),
            dest_ip: (i % 5 != 1).then_some(f.dest_ip),
            dest_port: (i % 4 != 2).then_some(f.dest_port),
            proto: (i % 3 != 1).then_some(f.proto),
            name: (!i.is_multiple_of(2)).then(|| name.to_string()),
            evidence,
            dedupe_key: format!("k:{name}:{i}"),
            update: i % 3 == 2,
        }
    }

    #[test]
    fn alerts_equal_the_serde_ones_byte_for_byte() {
        for i in 0..40 {
            let a = alert(i, HOSTILE[i % HOSTILE.len()]);
            let (mut x, mut y) = (Vec::new(), Vec::new());
            write_alert(&mut x, &a);
            serde_alert(&mut y, &a);
            assert_eq!(String::from_utf8_lossy(&x), String::from_utf8_lossy(&y));
            serde_json::from_slice::<serde_json::Value>(&x).expect("valid JSON");
        }
    }
}
