//! Prometheus metrics. Labels come only from small fixed sets (drop stage, decode reason,
//! protocol, top DNS qtypes + `other`, rcode names + `other`), so the number of series is
//! bounded whatever the traffic; IPs and names go to EVE, never to labels.

use crate::decode::DropReason;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// DNS query types with their own label value; all others are `other`.
pub const QTYPE_LABELS: &[&str] = &[
    "A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "HTTPS", "SVCB", "ANY", "NULL",
    "DS", "DNSKEY", "CAA",
];
/// Response codes with their own label value; all others are `other`.
pub const RCODE_LABELS: &[&str] = &[
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "NOTAUTH",
    "BADVERS",
];

pub fn qtype_label(name: &str) -> &'static str {
    QTYPE_LABELS
        .iter()
        .find(|l| **l == name)
        .copied()
        .unwrap_or("other")
}

pub fn rcode_label(name: &str) -> &'static str {
    RCODE_LABELS
        .iter()
        .find(|l| **l == name)
        .copied()
        .unwrap_or("other")
}

pub fn proto_label(proto: u8) -> &'static str {
    match proto {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmp6",
        _ => "other",
    }
}

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub packets: IntCounter,
    pub bytes: IntCounter,
    pub non_ip: IntCounter,
    pub capture_drops: IntCounterVec,
    pub decode_errors: IntCounterVec,
    pub fragments_reassembled: IntCounter,
    pub flows_active: IntGauge,
    pub flows: IntCounterVec,
    pub flow_evictions: IntCounter,
    pub dns_queries: IntCounterVec,
    pub dns_response_seconds: Histogram,
    pub dns_unanswered: IntCounter,
    pub dns_parse_errors: IntCounter,
    pub dns_tcp_give_ups: IntCounterVec,
    pub dns_pending_overflow: IntCounter,
    pub events: IntCounterVec,
    pub alerts: IntCounterVec,
    pub packet_lag_seconds: prometheus::Gauge,
    pub packet_time_seconds: prometheus::Gauge,
    pub build_info: IntGaugeVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are static and unique: registration cannot fail.
    let _ = r.register(Box::new(c.clone()));
    c
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let counter = |n: &str, h: &str| reg(&r, IntCounter::new(n, h).expect("metric"));
        let counter_vec = |n: &str, h: &str, l: &[&str]| {
            reg(&r, IntCounterVec::new(Opts::new(n, h), l).expect("metric"))
        };
        let m = Metrics {
            packets: counter("kizuki_packets_total", "Packets captured."),
            bytes: counter(
                "kizuki_bytes_total",
                "Bytes captured, as on the wire (frame length).",
            ),
            non_ip: counter(
                "kizuki_non_ip_packets_total",
                "Frames without IP (ARP, LLDP, STP...).",
            ),
            capture_drops: counter_vec(
                "kizuki_capture_drops_total",
                "Packets lost before analysis, by stage: kernel (socket buffer), interface, queue (workers behind).",
                &["stage"],
            ),
            decode_errors: counter_vec(
                "kizuki_decode_errors_total",
                "Packets not decoded, by reason.",
                &["reason"],
            ),
            fragments_reassembled: counter(
                "kizuki_fragments_reassembled_total",
                "IP datagrams reassembled from fragments.",
            ),
            flows_active: reg(
                &r,
                IntGauge::new("kizuki_flows_active", "Flows currently tracked.").expect("metric"),
            ),
            flows: counter_vec(
                "kizuki_flows_total",
                "Flow records emitted (final records, not periodic updates), by protocol.",
                &["proto"],
            ),
            flow_evictions: counter(
                "kizuki_flow_evictions_total",
                "Flows pushed out of a full flow table.",
            ),
            dns_queries: counter_vec(
                "kizuki_dns_queries_total",
                "Answered DNS transactions by query type and response code.",
                &["qtype", "rcode"],
            ),
            dns_response_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "kizuki_dns_response_seconds",
                        "Time from DNS query to response.",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                        2.5, 5.0,
                    ]),
                )
                .expect("metric"),
            ),
            dns_unanswered: counter(
                "kizuki_dns_unanswered_total",
                "DNS queries without a response within the timeout.",
            ),
            dns_parse_errors: counter(
                "kizuki_dns_parse_errors_total",
                "Packets on DNS ports that did not parse as DNS.",
            ),
            dns_tcp_give_ups: counter_vec(
                "kizuki_dns_tcp_give_ups_total",
                "DNS-over-TCP stream directions given up, by reason (gap, oversize).",
                &["reason"],
            ),
            dns_pending_overflow: counter(
                "kizuki_dns_pending_overflow_total",
                "Pending DNS queries flushed early because the table was full.",
            ),
            events: counter_vec(
                "kizuki_events_total",
                "EVE events written, by event type.",
                &["event_type"],
            ),
            alerts: counter_vec(
                "kizuki_alerts_total",
                "Alerts raised (updates of an ongoing alert not counted), by detector and severity.",
                &["detector", "severity"],
            ),
            packet_lag_seconds: reg(
                &r,
                prometheus::Gauge::new(
                    "kizuki_packet_lag_seconds",
                    "Wall-clock time minus the newest packet time (live capture).",
                )
                .expect("metric"),
            ),
            packet_time_seconds: reg(
                &r,
                prometheus::Gauge::new(
                    "kizuki_packet_time_seconds",
                    "Newest packet timestamp seen (Unix seconds).",
                )
                .expect("metric"),
            ),
            build_info: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("kizuki_build_info", "Build information (always 1)."),
                    &["version"],
                )
                .expect("metric"),
            ),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Pre-create the fixed label sets so dashboards see zeros, not gaps.
        for s in ["kernel", "interface", "queue"] {
            m.capture_drops.with_label_values(&[s]);
        }
        for d in DropReason::ALL {
            m.decode_errors.with_label_values(&[d.as_str()]);
        }
        m.decode_errors.with_label_values(&["dns"]);
        for p in ["tcp", "udp", "icmp", "icmp6", "other"] {
            m.flows.with_label_values(&[p]);
        }
        for e in ["flow", "dns", "alert"] {
            m.events.with_label_values(&[e]);
        }
        m
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let enc = prometheus::TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
