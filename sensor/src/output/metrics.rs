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
    pub tcp_payload_bytes: IntCounter,
    pub tcp_missed_bytes: IntCounter,
    pub dns_queries: IntCounterVec,
    pub dns_response_seconds: Histogram,
    pub dns_unanswered: IntCounter,
    pub dns_parse_errors: IntCounter,
    pub dns_tcp_give_ups: IntCounterVec,
    pub dns_pending_overflow: IntCounter,
    pub smtp_sessions: IntCounter,
    pub smtp_messages: IntCounter,
    pub smtp_attachments: IntCounter,
    pub smtp_starttls: IntCounter,
    pub smtp_give_ups: IntCounterVec,
    pub smtp_buffer_bytes: IntGauge,
    pub smtp_buffer_peak_bytes: IntGauge,
    pub mail_attachment_alerts: IntCounterVec,
    pub events: IntCounterVec,
    pub alerts: IntCounterVec,
    pub alert_escalations: IntCounterVec,
    pub packet_lag_seconds: prometheus::Gauge,
    pub packet_time_seconds: prometheus::Gauge,
    pub build_info: IntGaugeVec,
    pub alertmanager_sent: IntCounter,
    pub alertmanager_errors: IntCounter,
    pub alertmanager_dropped: IntCounterVec,
    pub alertmanager_resolved: IntCounter,
    pub alertmanager_queue_length: IntGauge,
    pub alertmanager_queue_capacity: IntGauge,
    pub alertmanager_active: IntGauge,
    pub alertmanager_last_success: prometheus::Gauge,
    process: ProcessMetrics,
    /// Gauges analyzers export ([`analyzers::GAUGES`]), by name.
    pub analyzer_gauges: Vec<(&'static str, prometheus::GaugeVec)>,
    /// The latest inventory snapshot, served at `/inventory` (JSON).
    pub inventory_view: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
    /// Set once an HTTP server can serve `/inventory`: building the snapshot of tens of
    /// thousands of hosts is not free, so nobody pays for it when nobody can read it.
    pub inventory_view_wanted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// `process_*` metrics (Prometheus client conventions), read from `/proc/self` at each scrape.
#[derive(Clone)]
struct ProcessMetrics {
    cpu_seconds: prometheus::Counter,
    resident_bytes: IntGauge,
    virtual_bytes: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    start_time: prometheus::Gauge,
    threads: IntGauge,
}

/// Linux `USER_HZ`: clock ticks per second in `/proc/*/stat` (100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

impl ProcessMetrics {
    fn new(r: &Registry) -> Self {
        let g = |n: &str, h: &str| reg(r, IntGauge::new(n, h).expect("metric"));
        Self {
            cpu_seconds: reg(
                r,
                prometheus::Counter::new(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                )
                .expect("metric"),
            ),
            resident_bytes: g(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_bytes: g(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: g("process_open_fds", "Number of open file descriptors."),
            max_fds: g(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            start_time: reg(
                r,
                prometheus::Gauge::new(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                )
                .expect("metric"),
            ),
            threads: g("process_threads", "Number of OS threads in the process."),
        }
    }

    /// Refreshes from `/proc/self`; anything unreadable keeps its last value.
    fn update(&self) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name (which may hold spaces).
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] is field 3 (state): field n is f[n - 3].
            let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(s)) = (num(14), num(15)) {
                let cpu = (u + s) as f64 / USER_HZ;
                let d = cpu - self.cpu_seconds.get();
                if d > 0.0 {
                    self.cpu_seconds.inc_by(d);
                }
            }
            if let Some(t) = num(20) {
                self.threads.set(t as i64);
            }
            if let Some(v) = num(23) {
                self.virtual_bytes.set(v as i64);
            }
            if let Some(start) = num(22) {
                if self.start_time.get() == 0.0 {
                    if let Some(btime) = boot_time() {
                        self.start_time.set(btime + start as f64 / USER_HZ);
                    }
                }
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
            {
                self.resident_bytes.set(kb * 1024);
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries.
            self.open_fds.set((dir.count() as i64 - 1).max(0));
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            if let Some(v) = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<i64>().ok())
            {
                self.max_fds.set(v);
            }
        }
    }
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())
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
            tcp_payload_bytes: counter(
                "kizuki_tcp_payload_bytes_total",
                "TCP payload bytes seen, from sequence numbers of finished flows.",
            ),
            tcp_missed_bytes: counter(
                "kizuki_tcp_missed_bytes_total",
                "TCP bytes a peer acknowledged or skipped past that the sensor never saw (capture loss estimate: missed / (missed + payload)).",
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
            smtp_sessions: counter(
                "kizuki_smtp_sessions_total",
                "SMTP sessions whose bytes were parsed (a payload seen on an smtp.ports port).",
            ),
            smtp_messages: counter(
                "kizuki_smtp_messages_total",
                "Mail messages parsed from plaintext SMTP (DATA or BDAT).",
            ),
            smtp_attachments: counter(
                "kizuki_smtp_attachments_inspected_total",
                "Mail attachments decoded, hashed and inspected.",
            ),
            smtp_starttls: counter(
                "kizuki_smtp_starttls_sessions_total",
                "SMTP sessions no longer inspected because STARTTLS took over.",
            ),
            smtp_give_ups: counter_vec(
                "kizuki_smtp_give_ups_total",
                "SMTP parsing given up, by reason (gap, overlap, oversize, message_size, memory, unfinished).",
                &["reason"],
            ),
            smtp_buffer_bytes: reg(
                &r,
                IntGauge::new(
                    "kizuki_smtp_buffer_bytes",
                    "Bytes held by SMTP reassembly, line/header buffers and inspection windows.",
                )
                .expect("metric"),
            ),
            smtp_buffer_peak_bytes: reg(
                &r,
                IntGauge::new(
                    "kizuki_smtp_buffer_peak_bytes",
                    "Most bytes SMTP parsing held at once (sum of the workers' peaks).",
                )
                .expect("metric"),
            ),
            mail_attachment_alerts: counter_vec(
                "kizuki_mail_attachment_alerts_total",
                "mail_attachment alerts (new, not updates) by reason; one alert may carry several.",
                &["reason"],
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
            alert_escalations: counter_vec(
                "kizuki_alert_escalations_total",
                "Alerts raised to high by [detectors.escalation] (a ddns/paas name that also \
                 beacons or is reached without DNS), by the raised alert's detector. Most are \
                 updates, which kizuki_alerts_total does not count.",
                &["detector"],
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
                    Opts::new(
                        "kizuki_build_info",
                        "Build information: version and target architecture/OS (always 1).",
                    ),
                    &["version", "arch", "os"],
                )
                .expect("metric"),
            ),
            alertmanager_sent: counter(
                "kizuki_alertmanager_alerts_sent_total",
                "Alerts delivered to Alertmanager (new, refreshed and resolved ones).",
            ),
            alertmanager_errors: counter(
                "kizuki_alertmanager_errors_total",
                "Failed POSTs to Alertmanager (connection, timeout, HTTP error); retried with back-off.",
            ),
            alertmanager_dropped: counter_vec(
                "kizuki_alertmanager_dropped_total",
                "Alerts never delivered to Alertmanager, by reason: channel_full (client thread behind), queue_full (max_pending reached), rejected (HTTP 4xx).",
                &["reason"],
            ),
            alertmanager_resolved: counter(
                "kizuki_alertmanager_resolved_total",
                "Resolutions delivered to Alertmanager (alerts that went quiet).",
            ),
            alertmanager_queue_length: reg(
                &r,
                IntGauge::new(
                    "kizuki_alertmanager_queue_length",
                    "Alerts waiting to be sent or retried.",
                )
                .expect("metric"),
            ),
            alertmanager_queue_capacity: reg(
                &r,
                IntGauge::new(
                    "kizuki_alertmanager_queue_capacity",
                    "Alerts the client tracks at most (alertmanager.max_pending; 0 = push off).",
                )
                .expect("metric"),
            ),
            alertmanager_active: reg(
                &r,
                IntGauge::new(
                    "kizuki_alertmanager_active_alerts",
                    "Alerts currently firing in Alertmanager as pushed by this sensor.",
                )
                .expect("metric"),
            ),
            alertmanager_last_success: reg(
                &r,
                prometheus::Gauge::new(
                    "kizuki_alertmanager_last_success_timestamp_seconds",
                    "Unix time of the last successful POST to Alertmanager (0 = never).",
                )
                .expect("metric"),
            ),
            process: ProcessMetrics::new(&r),
            analyzer_gauges: analyzers::GAUGES
                .iter()
                .map(|(name, help, labels)| {
                    (
                        *name,
                        reg(
                            &r,
                            prometheus::GaugeVec::new(Opts::new(*name, *help), labels)
                                .expect("metric"),
                        ),
                    )
                })
                .collect(),
            inventory_view: Default::default(),
            inventory_view_wanted: Default::default(),
            registry: r,
        };
        m.build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS,
            ])
            .set(1);
        for reason in ["channel_full", "queue_full", "rejected"] {
            m.alertmanager_dropped.with_label_values(&[reason]);
        }
        m.process.update();
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
        for r in ["gap", "oversize"] {
            m.dns_tcp_give_ups.with_label_values(&[r]);
        }
        for g in crate::proto::smtp::GiveUp::ALL {
            m.smtp_give_ups.with_label_values(&[g.as_str()]);
        }
        for r in analyzers::detectors::mail_attachment::Reason::ALL {
            m.mail_attachment_alerts.with_label_values(&[r.as_str()]);
        }
        for e in ["flow", "dns", "alert", "smtp"] {
            m.events.with_label_values(&[e]);
        }
        m
    }

    /// Pre-creates `kizuki_alerts_total{detector, severity}` at zero for a detector, so its
    /// series exist (and rates work) before its first alert.
    pub fn declare_detector(&self, detector: &str) {
        for s in ["info", "low", "medium", "high", "critical"] {
            self.alerts.with_label_values(&[detector, s]);
        }
    }

    /// Pre-creates `kizuki_alert_escalations_total{detector}` at zero.
    pub fn declare_escalation(&self, detector: &str) {
        self.alert_escalations.with_label_values(&[detector]);
    }

    /// Sets the analyzer gauges from fresh readings: each labelled family that has readings
    /// is replaced whole, so series of hosts that left the top-K disappear.
    pub fn set_analyzer_gauges(&self, readings: &[analyzers::GaugeReading]) {
        for (name, vec) in &self.analyzer_gauges {
            let mut first = true;
            for r in readings.iter().filter(|r| r.metric == *name) {
                if first {
                    vec.reset();
                    first = false;
                }
                let labels: Vec<&str> = r.labels.iter().map(String::as_str).collect();
                if let Ok(g) = vec.get_metric_with_label_values(&labels) {
                    g.set(r.value);
                }
            }
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        self.process.update();
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
