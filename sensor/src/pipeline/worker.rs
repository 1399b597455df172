//! A worker shard: full decode, fragment reassembly, flow table, DNS, server names.

use super::{Batch, SinkMsg, WorkerMsg};
use crate::config::{secs_to_ns, Config};
use crate::decode::{Detached, Packet, Transport};
use crate::flow::key::icmp_flow_ports;
use crate::flow::table::{AppState, FlowTable, PacketMeta};
use crate::output::metrics::Metrics;
use crate::proto::dns::tcp::TcpDnsIssues;
use crate::proto::dns::transactions::DnsStats;
use crate::proto::dns::{parse_message, DnsEndpoints, DnsTracker, TcpDnsState};
use crate::proto::smtp::session::{Ctx as SmtpCtx, Endpoints as SmtpEndpoints};
use crate::proto::smtp::{GiveUp, Shared as SmtpShared, SmtpLimits, SmtpSession, SmtpStats};
use crate::proto::{http, tls};
use analyzers::{DnsTxn, Event, Flow, FlowBurst, MailMessage, NameSource, TsNanos, NANOS_PER_SEC};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;

/// Flow records handed to the sink per message while flushing at shutdown. The sink's queue
/// holds 64 messages, so this bounds what waits there (64 × 256 × 216 B ≈ 3.5 MB); at 1024 a
/// million-flow flush peaked ~20 MB higher.
const FLUSH_CHUNK: usize = 256;

/// Originator payload packets inspected for a TLS SNI / HTTP Host before giving up.
const NAME_TRIES: u8 = 3;

/// Empty event vectors a worker keeps for its next batches.
const SPARE_STASH: usize = 64;

pub(super) struct Worker {
    /// Recycled event vectors (see `pipeline::run`).
    pub spare_events: Option<crossbeam_channel::Receiver<Vec<Event>>>,
    /// Emptied vectors from `spare_events`, ready for the next batches.
    spare_stash: Vec<Vec<Event>>,
    shard: usize,
    flows: FlowTable,
    dns: DnsTracker,
    dns_ports: super::ports::PortSet,
    tcp_dns_max: usize,
    metrics: Metrics,
    flow_out: Vec<Flow>,
    dns_out: Vec<DnsTxn>,
    bursts: Vec<FlowBurst>,
    now: TsNanos,
    last_expire: TsNanos,
    // Counters already added to Prometheus (the rest is added per batch).
    published_active: i64,
    published_dns: DnsStats,
    dns_parse_errors: u64,
    tcp_issues: TcpDnsIssues,
    published_tcp_issues: TcpDnsIssues,
    /// SMTP ports (empty when `smtp.enabled` is false), limits and this shard's budget.
    smtp_ports: super::ports::PortSet,
    smtp_limits: SmtpLimits,
    smtp_shared: Arc<SmtpShared>,
    smtp_stats: SmtpStats,
    published_smtp: SmtpStats,
    published_unfinished: u64,
    published_smtp_bytes: i64,
    published_smtp_peak: i64,
    mail_out: Vec<MailMessage>,
}

impl Worker {
    pub(super) fn new(cfg: &Config, shard: usize, shards: usize, metrics: Metrics) -> Self {
        let per = |t: usize| t.div_ceil(shards.max(1)).max(1);
        Self {
            spare_events: None,
            spare_stash: Vec::new(),
            shard,
            flows: FlowTable::new(
                super::flow_limits(cfg, shards),
                shard as u64,
                shards as u64 + 1,
            ),
            dns: DnsTracker::new(secs_to_ns(cfg.dns.timeout_s), per(cfg.dns.max_pending)),
            dns_ports: super::ports::PortSet::new(&cfg.dns.ports),
            tcp_dns_max: cfg.dns.tcp_buffer_bytes,
            metrics,
            flow_out: Vec::new(),
            dns_out: Vec::new(),
            bursts: Vec::new(),
            now: i64::MIN,
            last_expire: i64::MIN,
            published_active: 0,
            published_dns: DnsStats::default(),
            dns_parse_errors: 0,
            tcp_issues: TcpDnsIssues::default(),
            published_tcp_issues: TcpDnsIssues::default(),
            smtp_ports: super::ports::PortSet::new(if cfg.smtp.enabled {
                &cfg.smtp.ports
            } else {
                &[]
            }),
            smtp_limits: SmtpLimits {
                session_buffer_bytes: cfg.smtp.session_buffer_bytes,
                inspect_bytes: cfg.smtp.inspect_bytes,
                max_message_bytes: cfg.smtp.max_message_bytes,
            },
            smtp_shared: Arc::new(SmtpShared::new(per(cfg.smtp.total_buffer_bytes))),
            smtp_stats: SmtpStats::default(),
            published_smtp: SmtpStats::default(),
            published_unfinished: 0,
            published_smtp_bytes: 0,
            published_smtp_peak: 0,
            mail_out: Vec::new(),
        }
    }

    pub(super) fn run(
        mut self,
        rx: Receiver<WorkerMsg>,
        events: Sender<SinkMsg>,
        recycle: Sender<Batch>,
    ) {
        for msg in rx {
            match msg {
                WorkerMsg::Packets(mut batch) => {
                    for it in &batch.items {
                        let start = it.off as usize;
                        let end = start + it.len as usize;
                        let bytes = batch.data.get(start..end).unwrap_or(&[]);
                        self.item(it.ts, it.packet, bytes);
                    }
                    batch.clear();
                    let _ = recycle.try_send(batch);
                }
                WorkerMsg::Tick(now) => {
                    self.expire(now);
                    self.publish(&events);
                    // Everything up to `now` has been sent: the sink may merge this epoch.
                    let _ = events.send(SinkMsg::Watermark {
                        src: self.shard,
                        t: now,
                    });
                    continue;
                }
            }
            self.publish(&events);
        }
        // Input closed: end of replay or shutdown. Everything still open is reported, in
        // chunks so a million open flows never sit in memory twice.
        while self.flows.flush_some(&mut self.flow_out, FLUSH_CHUNK) > 0 {
            self.publish(&events);
            let _ = events.send(SinkMsg::Cut { src: self.shard });
        }
        self.dns.flush(&mut self.dns_out);
        self.publish(&events);
        let _ = events.send(SinkMsg::Done { src: self.shard });
    }

    fn expire(&mut self, now: TsNanos) {
        if now > self.now {
            self.now = now;
        }
        self.flows.expire(now, &mut self.flow_out);
        self.dns.expire(now, &mut self.dns_out);
        self.last_expire = now;
    }

    fn item(&mut self, ts: TsNanos, p: Detached, bytes: &[u8]) {
        if ts > self.now {
            self.now = ts;
            // Busy shards expire on their own packets too, at most once per second.
            if ts.saturating_sub(self.last_expire) >= NANOS_PER_SEC {
                self.expire(ts);
            }
        }
        self.ip_packet(ts, &p.with_payload(bytes));
    }

    fn ip_packet(&mut self, ts: TsNanos, p: &Packet<'_>) {
        // IPv6 "no next header" carries nothing (e.g. Teredo bubbles): not a conversation.
        if p.proto == 59 {
            return;
        }
        let v6 = p.src.is_ipv6();
        let (sport, dport, tcp, payload_len) = match p.transport {
            Transport::Tcp(t) => (
                t.sport,
                t.dport,
                Some((t.flags, t.seq, t.ack)),
                t.payload_len,
            ),
            Transport::Udp(u) => (u.sport, u.dport, None, u.payload_len),
            Transport::Icmp { icmp_type, code } => {
                let (s, d) = icmp_flow_ports(v6, icmp_type, code);
                (s, d, None, 0)
            }
            Transport::Other => (0, 0, None, 0),
        };
        let meta = PacketMeta {
            ts,
            src: p.src,
            dst: p.dst,
            sport,
            dport,
            proto: p.proto,
            vlan: p.ctx.vlan,
            tunnel_depth: p.ctx.tunnel_depth,
            ip_len: p.ip_len,
            payload_len,
            tcp,
        };
        let tracked = self.flows.track(&meta, &mut self.flow_out);
        let (entry, orig) = (tracked.entry, tracked.orig);
        if tracked.burst {
            let ((src_ip, src_port), (dest_ip, dest_port)) = if orig {
                ((p.src, sport), (p.dst, dport))
            } else {
                ((p.dst, dport), (p.src, sport))
            };
            self.bursts.push(FlowBurst {
                ts,
                flow_id: entry.flow_id,
                src_ip,
                src_port,
                dest_ip,
                dest_port,
                proto: p.proto,
                vlan: p.ctx.vlan,
                server_name: entry.name.as_deref().map(str::to_string),
                from_originator: orig,
                ip_len: p.ip_len,
                flow_start: entry.first_ts,
                prev_ts: tracked.before.prev_ts,
                flow_bytes_toserver: tracked.before.bytes_toserver,
                flow_bytes_toclient: tracked.before.bytes_toclient,
            });
        }
        let ep = DnsEndpoints {
            src: p.src,
            sport,
            dst: p.dst,
            dport,
            proto: p.proto,
            vlan: p.ctx.vlan,
            flow_id: entry.flow_id,
        };
        match p.transport {
            Transport::Udp(u) if self.dns_ports.either(u.dport, u.sport) => {
                match parse_message(u.payload) {
                    Some(m) => self.dns.on_message(ts, &ep, m, &mut self.dns_out),
                    None => self.dns_parse_errors += 1,
                }
            }
            Transport::Tcp(t)
                if !t.payload.is_empty() && self.smtp_ports.either(t.dport, t.sport) =>
            {
                // The client sends to the SMTP port (the originator when both ends use one).
                let to_server =
                    if self.smtp_ports.contains(t.dport) && self.smtp_ports.contains(t.sport) {
                        orig
                    } else {
                        self.smtp_ports.contains(t.dport)
                    };
                if entry.app.is_none() {
                    self.smtp_stats.sessions += 1;
                    entry.app = Some(Box::new(AppState::Smtp(SmtpSession::new(
                        self.smtp_shared.clone(),
                        &mut self.smtp_stats,
                    ))));
                }
                let Some(AppState::Smtp(st)) = entry.app.as_deref_mut() else {
                    return;
                };
                let seq = if t.flags & crate::decode::tcpflags::SYN != 0 {
                    t.seq.wrapping_add(1)
                } else {
                    t.seq
                };
                let (client, client_port, server, server_port) = if to_server {
                    (p.src, sport, p.dst, dport)
                } else {
                    (p.dst, dport, p.src, sport)
                };
                let mut ctx = SmtpCtx {
                    ts,
                    ep: SmtpEndpoints {
                        client,
                        client_port,
                        server,
                        server_port,
                        vlan: p.ctx.vlan,
                        flow_id: entry.flow_id,
                    },
                    limits: &self.smtp_limits,
                    stats: &mut self.smtp_stats,
                    out: &mut self.mail_out,
                };
                st.push(to_server, seq, t.payload, &mut ctx);
            }
            Transport::Tcp(t) if !t.payload.is_empty() => {
                if self.dns_ports.either(t.dport, t.sport) {
                    let app = entry
                        .app
                        .get_or_insert_with(|| Box::new(AppState::Dns(TcpDnsState::default())));
                    let AppState::Dns(st) = app.as_mut() else {
                        return;
                    };
                    let seq = if t.flags & crate::decode::tcpflags::SYN != 0 {
                        t.seq.wrapping_add(1)
                    } else {
                        t.seq
                    };
                    let (dns, out, errs) =
                        (&mut self.dns, &mut self.dns_out, &mut self.dns_parse_errors);
                    st.push(
                        usize::from(!orig),
                        seq,
                        t.payload,
                        self.tcp_dns_max,
                        &mut self.tcp_issues,
                        |m| match parse_message(m) {
                            Some(msg) => dns.on_message(ts, &ep, msg, out),
                            None => *errs += 1,
                        },
                    );
                } else if orig && entry.name.is_none() && entry.name_tries < NAME_TRIES {
                    entry.name_tries += 1;
                    let found = if tls::looks_like_client_hello(t.payload) {
                        tls::sni_string(t.payload).map(|n| (n, NameSource::TlsSni))
                    } else if http::looks_like_http_request(t.payload) {
                        http::request_host(t.payload).map(|n| (n, NameSource::HttpHost))
                    } else {
                        None
                    };
                    if let Some((name, src)) = found {
                        entry.name = Some(name.into_boxed_str());
                        entry.name_source = Some(src);
                        entry.name_tries = NAME_TRIES;
                    }
                }
            }
            _ => {}
        }
    }

    /// Sends finished records to the sink and adds this batch's counts to the metrics.
    fn publish(&mut self, events: &Sender<SinkMsg>) {
        if !self.flow_out.is_empty()
            || !self.dns_out.is_empty()
            || !self.bursts.is_empty()
            || !self.mail_out.is_empty()
        {
            // Spent records come back with their vectors: dropped here, where they were made.
            if let Some(r) = &self.spare_events {
                while let Ok(mut v) = r.try_recv() {
                    v.clear();
                    if self.spare_stash.len() < SPARE_STASH {
                        self.spare_stash.push(v);
                    }
                }
            }
            let mut ev = self.spare_stash.pop().unwrap_or_default();
            ev.reserve(
                self.flow_out.len() + self.dns_out.len() + self.bursts.len() + self.mail_out.len(),
            );
            // Bursts first: they happened while their flows were still open.
            ev.extend(self.bursts.drain(..).map(Event::Burst));
            ev.extend(self.mail_out.drain(..).map(|m| Event::Mail(Box::new(m))));
            ev.extend(self.flow_out.drain(..).map(Event::Flow));
            ev.extend(self.dns_out.drain(..).map(Event::Dns));
            let _ = events.send(SinkMsg::Events {
                src: self.shard,
                events: ev,
            });
        }
        let m = &self.metrics;
        let active = self.flows.len() as i64;
        m.flows_active.add(active - self.published_active);
        self.published_active = active;

        let d = self.dns.stats;
        m.dns_pending_overflow
            .inc_by(d.pending_overflow - self.published_dns.pending_overflow);
        self.published_dns = d;
        if self.dns_parse_errors > 0 {
            m.dns_parse_errors.inc_by(self.dns_parse_errors);
            m.decode_errors
                .with_label_values(&["dns"])
                .inc_by(self.dns_parse_errors);
            self.dns_parse_errors = 0;
        }
        let ti = self.tcp_issues;
        let pt = self.published_tcp_issues;
        if ti.gaps > pt.gaps {
            m.dns_tcp_give_ups
                .with_label_values(&["gap"])
                .inc_by(ti.gaps - pt.gaps);
        }
        if ti.oversize > pt.oversize {
            m.dns_tcp_give_ups
                .with_label_values(&["oversize"])
                .inc_by(ti.oversize - pt.oversize);
        }
        self.published_tcp_issues = ti;
        self.publish_smtp();
    }

    fn publish_smtp(&mut self) {
        let m = &self.metrics;
        let (s, p) = (self.smtp_stats, self.published_smtp);
        m.smtp_sessions.inc_by(s.sessions - p.sessions);
        m.smtp_messages.inc_by(s.messages - p.messages);
        m.smtp_attachments.inc_by(s.attachments - p.attachments);
        m.smtp_starttls.inc_by(s.starttls - p.starttls);
        for g in GiveUp::ALL {
            let n = s.give_ups(g) - p.give_ups(g);
            if n > 0 {
                m.smtp_give_ups.with_label_values(&[g.as_str()]).inc_by(n);
            }
        }
        self.published_smtp = s;
        let unf = self
            .smtp_shared
            .unfinished
            .load(std::sync::atomic::Ordering::Relaxed);
        if unf > self.published_unfinished {
            m.smtp_give_ups
                .with_label_values(&[GiveUp::Unfinished.as_str()])
                .inc_by(unf - self.published_unfinished);
            self.published_unfinished = unf;
        }
        let used = self.smtp_shared.used() as i64;
        m.smtp_buffer_bytes.add(used - self.published_smtp_bytes);
        self.published_smtp_bytes = used;
        let peak = self.smtp_shared.peak() as i64;
        m.smtp_buffer_peak_bytes
            .add(peak - self.published_smtp_peak);
        self.published_smtp_peak = peak;
    }
}
