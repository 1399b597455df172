//! Alertmanager v2 client: pushes analyzer alerts to `POST /api/v2/alerts`.
//!
//! ```text
//! sink thread ──try_send──► bounded channel ──► alertmanager thread ──HTTP/1.1 POST──► Alertmanager
//!  (never blocks; a full        (queue_size)       active alerts by label set,
//!   channel is a counted drop)                     batches, retries, resolution
//! ```
//! - One Alertmanager alert per distinct label set (`alertname`, `detector`, `severity`,
//!   `sensor`, `src`, `dst`, `name`): detector updates of the same behaviour (same dedupe key,
//!   or the same labels) refresh one alert.
//! - Every update pushes `endsAt` to `last update + resolve_after_s`, so an alert the sensor
//!   stops refreshing (crash, network loss) still resolves on its own. When an alert has been
//!   quiet for `resolve_after_s` (wall clock), the client sends it once more with
//!   `endsAt = now`: the resolution. Active alerts are re-sent every `resend_interval_s` so a
//!   restarted Alertmanager learns them again.
//! - Alerts waiting to be sent (new, updated, resolved) are batched (`batch_size` per POST, at
//!   most one round every `send_interval_s`). A failed POST keeps them queued and backs off
//!   exponentially (up to 60 s); the queue is bounded by `max_pending` tracked alerts: beyond
//!   it new alerts are dropped and counted. Every outcome is a `kizuki_alertmanager_*` metric.
//! - Plain HTTP only (a hand-written HTTP/1.1 client on `std::net`): for TLS or
//!   authentication put a local relay (stunnel, nginx, an Alertmanager on the tap box) in
//!   front. See docs/deployment.md.

use super::metrics::Metrics;
use crate::config::AlertmanagerConfig;
use crate::timefmt::eve_ts;
use analyzers::Alert;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `alertname` of every alert the sensor pushes (rules use `Kizuki*` names of their own).
pub const ALERTNAME: &str = "KizukiDetection";
/// Longest evidence annotation (bytes of JSON); longer evidence is cut and marked.
const MAX_EVIDENCE: usize = 4096;
/// Longest label value taken from the wire (names).
const MAX_LABEL: usize = 256;

/// One alert as handed from the sink to the client thread.
#[derive(Clone, Debug, PartialEq)]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// When the behaviour started (packet time of the first alert), Unix nanoseconds.
    pub starts_at: i64,
    /// True for the first alert of a dedupe key (not an update).
    pub new: bool,
}

/// Builds the Alertmanager labels and annotations of an analyzer alert.
pub fn to_am_alert(a: &Alert, sensor: &str) -> AmAlert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".into(), ALERTNAME.to_string());
    labels.insert("detector".into(), a.detector.to_string());
    labels.insert("severity".into(), a.severity.as_str().to_string());
    if !sensor.is_empty() {
        labels.insert("sensor".into(), sensor.to_string());
    }
    if let Some(ip) = a.src_ip {
        labels.insert("src".into(), ip.to_string());
    }
    if let Some(ip) = a.dest_ip {
        labels.insert("dst".into(), ip.to_string());
    }
    if let Some(n) = &a.name {
        labels.insert("name".into(), cut(n, MAX_LABEL));
    }
    let mut ann = BTreeMap::new();
    ann.insert("summary".into(), cut(&a.signature, 1024));
    let dst = match (a.dest_ip, a.dest_port) {
        (Some(ip), Some(p)) => format!(" -> {ip} port {p}"),
        (Some(ip), None) => format!(" -> {ip}"),
        _ => String::new(),
    };
    let src = a
        .src_ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".into());
    let name = a
        .name
        .as_deref()
        .map(|n| format!(" ({})", cut(n, MAX_LABEL)))
        .unwrap_or_default();
    ann.insert(
        "description".into(),
        format!(
            "Kizuki detector {} ({}) on {src}{dst}{name}: {}",
            a.detector,
            a.severity.as_str(),
            cut(&a.signature, 512)
        ),
    );
    let mut ev = serde_json::to_string(&a.evidence).unwrap_or_default();
    if ev.len() > MAX_EVIDENCE {
        ev = format!("{}...(truncated)", cut(&ev, MAX_EVIDENCE));
    }
    ann.insert("evidence".into(), ev);
    ann.insert("dedupe_key".into(), cut(&a.dedupe_key, 512));
    let first = a
        .evidence
        .get("first_seen")
        .and_then(|v| v.as_f64())
        .map(|s| (s * 1e9) as i64)
        .filter(|t| *t > 0 && *t <= a.ts);
    AmAlert {
        labels,
        annotations: ann,
        starts_at: first.unwrap_or(a.ts),
        new: !a.update,
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The sink's handle: never blocks; a full channel is counted and the alert dropped.
#[derive(Clone)]
pub struct AlertSender {
    tx: Sender<AmAlert>,
    sensor: Arc<str>,
    metrics: Metrics,
}

impl AlertSender {
    pub fn send(&self, a: &Alert) {
        match self.tx.try_send(to_am_alert(a, &self.sensor)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self
                .metrics
                .alertmanager_dropped
                .with_label_values(&["channel_full"])
                .inc(),
        }
    }
}

/// The client thread. Dropping it sends what is still queued (one attempt) and joins.
pub struct AlertmanagerClient {
    sender: AlertSender,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Where to POST, parsed from `http://host[:port][/prefix]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                format!("alertmanager.url {url:?}: https is not supported, put a local relay in front (docs/deployment.md)")
            } else {
                format!("alertmanager.url {url:?}: must start with http://")
            }
        })?;
        let (hostport, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if hostport.is_empty() || hostport.contains('@') {
            return Err(format!(
                "alertmanager.url {url:?}: no host (user info not supported)"
            ));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h, p),
                Err(_) if hostport.starts_with('[') && hostport.ends_with(']') => (hostport, 80),
                Err(_) => return Err(format!("alertmanager.url {url:?}: bad port {p:?}")),
            },
            _ => (hostport, 80),
        };
        Ok(Endpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: format!("{prefix}/api/v2/alerts"),
        })
    }
}

impl AlertmanagerClient {
    /// Starts the client when `alertmanager.url` is set; `Ok(None)` when it is empty.
    pub fn start(cfg: &AlertmanagerConfig, metrics: &Metrics) -> Result<Option<Self>, String> {
        if cfg.url.is_empty() {
            return Ok(None);
        }
        let ep = Endpoint::parse(&cfg.url)?;
        let sensor: Arc<str> = if cfg.sensor.is_empty() {
            hostname().into()
        } else {
            cfg.sensor.as_str().into()
        };
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_size.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        metrics
            .alertmanager_queue_capacity
            .set(cfg.max_pending as i64);
        let mut state = State::new(cfg.clone(), ep, metrics.clone());
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("alertmanager".into())
            .spawn(move || state.run(rx, &st))
            .map_err(|e| format!("alertmanager thread: {e}"))?;
        Ok(Some(Self {
            sender: AlertSender {
                tx,
                sensor,
                metrics: metrics.clone(),
            },
            stop,
            thread: Some(thread),
        }))
    }

    pub fn sender(&self) -> AlertSender {
        self.sender.clone()
    }
}

impl Drop for AlertmanagerClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kizuki".into())
}

/// One tracked Alertmanager alert (one label set).
struct Entry {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: i64,
    last_update: Instant,
    /// Wall time (Unix ns) of the last update.
    last_update_wall: i64,
    /// Set when it went quiet: the resolution to send, then forget.
    resolved_at: Option<i64>,
    dirty: bool,
    last_sent: Option<Instant>,
}

struct State {
    cfg: AlertmanagerConfig,
    ep: Endpoint,
    m: Metrics,
    active: HashMap<String, Entry>,
    failures: u32,
    next_send: Instant,
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// RFC 3339 (UTC, `Z`) as Alertmanager wants it.
fn rfc3339(ns: i64) -> String {
    let s = eve_ts(ns);
    match s.strip_suffix("+0000") {
        Some(b) => format!("{b}Z"),
        None => s,
    }
}

fn label_key(labels: &BTreeMap<String, String>) -> String {
    let mut k = String::new();
    for (n, v) in labels {
        k.push_str(n);
        k.push('\u{1}');
        k.push_str(v);
        k.push('\u{2}');
    }
    k
}

impl State {
    fn new(cfg: AlertmanagerConfig, ep: Endpoint, m: Metrics) -> Self {
        Self {
            cfg,
            ep,
            m,
            active: HashMap::new(),
            failures: 0,
            next_send: Instant::now(),
        }
    }

    fn run(&mut self, rx: Receiver<AmAlert>, stop: &AtomicBool) {
        let tick = Duration::from_millis(100);
        loop {
            let mut closed = false;
            match rx.recv_timeout(tick) {
                Ok(a) => self.ingest(a),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
            while let Ok(a) = rx.try_recv() {
                self.ingest(a);
            }
            if stop.load(Ordering::Relaxed) {
                // Shutdown: what is queued gets one more try (alerts stay firing until their
                // endsAt; a stopped sensor is not a resolved behaviour).
                self.flush(true);
                self.gauges();
                return;
            }
            self.maintain();
            self.flush(false);
            self.gauges();
            if closed {
                // The sink is gone but the process lives on (replay --linger): keep
                // refreshing and resolving until stopped.
                std::thread::sleep(tick);
            }
        }
    }

    fn ingest(&mut self, a: AmAlert) {
        let key = label_key(&a.labels);
        let now = Instant::now();
        let wall = wall_ns();
        if let Some(e) = self.active.get_mut(&key) {
            if e.resolved_at.is_some() {
                // Came back after a resolution: a new firing period.
                e.starts_at = a.starts_at.min(wall);
            }
            e.annotations = a.annotations;
            e.last_update = now;
            e.last_update_wall = wall;
            e.resolved_at = None;
            e.dirty = true;
            return;
        }
        if self.active.len() >= self.cfg.max_pending {
            // Make room: forget a resolution not yet delivered, else drop the newcomer.
            let victim = self
                .active
                .iter()
                .filter(|(_, e)| e.resolved_at.is_some())
                .map(|(k, _)| k.clone())
                .next();
            match victim {
                Some(k) => {
                    self.active.remove(&k);
                    self.m
                        .alertmanager_dropped
                        .with_label_values(&["queue_full"])
                        .inc();
                }
                None => {
                    self.m
                        .alertmanager_dropped
                        .with_label_values(&["queue_full"])
                        .inc();
                    return;
                }
            }
        }
        self.active.insert(
            key,
            Entry {
                labels: a.labels,
                annotations: a.annotations,
                starts_at: a.starts_at.min(wall),
                last_update: now,
                last_update_wall: wall,
                resolved_at: None,
                dirty: true,
                last_sent: None,
            },
        );
    }

    /// Quiet alerts become resolutions; long-unsent active ones are re-sent.
    fn maintain(&mut self) {
        let now = Instant::now();
        let resolve = Duration::from_secs_f64(self.cfg.resolve_after_s);
        let resend = Duration::from_secs_f64(self.cfg.resend_interval_s);
        let wall = wall_ns();
        for e in self.active.values_mut() {
            if e.resolved_at.is_none() && now.duration_since(e.last_update) >= resolve {
                e.resolved_at = Some(wall);
                e.dirty = true;
            } else if e.resolved_at.is_none()
                && e.last_sent.is_some_and(|t| now.duration_since(t) >= resend)
            {
                e.dirty = true;
            }
        }
    }

    fn ends_at(&self, e: &Entry) -> i64 {
        match e.resolved_at {
            Some(t) => t,
            None => e.last_update_wall + (self.cfg.resolve_after_s * 1e9) as i64,
        }
    }

    fn alert_json(&self, e: &Entry) -> serde_json::Value {
        let mut v = serde_json::json!({
            "labels": e.labels,
            "annotations": e.annotations,
            "startsAt": rfc3339(e.starts_at),
            "endsAt": rfc3339(self.ends_at(e)),
        });
        if !self.cfg.generator_url.is_empty() {
            v["generatorURL"] = self.cfg.generator_url.clone().into();
        }
        v
    }

    /// Sends the queued alerts in batches; on failure keeps them and backs off.
    fn flush(&mut self, last_chance: bool) {
        let now = Instant::now();
        if !last_chance && now < self.next_send {
            return;
        }
        let mut keys: Vec<String> = self
            .active
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        // Oldest updates first so a backlog drains fairly.
        keys.sort_by_key(|k| self.active[k].last_update);
        for chunk in keys.chunks(self.cfg.batch_size.max(1)) {
            let body = serde_json::Value::Array(
                chunk
                    .iter()
                    .map(|k| self.alert_json(&self.active[k]))
                    .collect(),
            );
            let body = serde_json::to_vec(&body).unwrap_or_default();
            match post(&self.ep, &body, Duration::from_secs_f64(self.cfg.timeout_s)) {
                Ok(status) if (200..300).contains(&status) => {
                    self.failures = 0;
                    self.m.alertmanager_sent.inc_by(chunk.len() as u64);
                    self.m.alertmanager_last_success.set(wall_ns() as f64 / 1e9);
                    let sent_at = Instant::now();
                    for k in chunk {
                        let done = match self.active.get_mut(k) {
                            Some(e) => {
                                e.dirty = false;
                                e.last_sent = Some(sent_at);
                                e.resolved_at.is_some()
                            }
                            None => false,
                        };
                        if done {
                            self.active.remove(k);
                            self.m.alertmanager_resolved.inc();
                        }
                    }
                }
                Ok(status) if (400..500).contains(&status) => {
                    // Rejected: retrying the same payload cannot help.
                    self.m.alertmanager_errors.inc();
                    self.m
                        .alertmanager_dropped
                        .with_label_values(&["rejected"])
                        .inc_by(chunk.len() as u64);
                    eprintln!(
                        "kizuki: alertmanager {}:{}{} rejected {} alerts (HTTP {status})",
                        self.ep.host,
                        self.ep.port,
                        self.ep.path,
                        chunk.len()
                    );
                    for k in chunk {
                        let resolved = match self.active.get_mut(k) {
                            Some(e) => {
                                e.dirty = false;
                                e.last_sent = Some(Instant::now());
                                e.resolved_at.is_some()
                            }
                            None => false,
                        };
                        if resolved {
                            self.active.remove(k);
                        }
                    }
                }
                Ok(_) | Err(_) => {
                    self.m.alertmanager_errors.inc();
                    self.failures = self.failures.saturating_add(1);
                    let backoff =
                        self.cfg.send_interval_s.max(0.1) * 2f64.powi(self.failures.min(10) as i32);
                    self.next_send = Instant::now() + Duration::from_secs_f64(backoff.min(60.0));
                    return;
                }
            }
        }
        self.next_send = Instant::now() + Duration::from_secs_f64(self.cfg.send_interval_s);
    }

    fn gauges(&self) {
        let queued = self.active.values().filter(|e| e.dirty).count();
        let firing = self
            .active
            .values()
            .filter(|e| e.resolved_at.is_none())
            .count();
        self.m.alertmanager_queue_length.set(queued as i64);
        self.m.alertmanager_active.set(firing as i64);
    }
}

/// One HTTP/1.1 POST of a JSON body; returns the status code.
pub fn post(ep: &Endpoint, body: &[u8], timeout: Duration) -> Result<u16, String> {
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", ep.host))?
        .collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut s) => {
                s.set_read_timeout(Some(timeout))
                    .map_err(|e| e.to_string())?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| e.to_string())?;
                let host = if ep.host.contains(':') {
                    format!("[{}]:{}", ep.host, ep.port)
                } else {
                    format!("{}:{}", ep.host, ep.port)
                };
                let head = format!(
                    "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kizuki/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    ep.path,
                    env!("CARGO_PKG_VERSION"),
                    body.len()
                );
                s.write_all(head.as_bytes())
                    .and_then(|_| s.write_all(body))
                    .map_err(|e| format!("send: {e}"))?;
                // The status line is all we need; read until it is complete.
                let mut buf = Vec::with_capacity(256);
                let mut chunk = [0u8; 512];
                while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
                    match s.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
                let line = String::from_utf8_lossy(&buf);
                let status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok())
                    .ok_or_else(|| format!("bad response {:?}", cut(&line, 80)))?;
                return Ok(status);
            }
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use analyzers::Severity;
    use std::net::TcpListener;

    fn alert(update: bool) -> Alert {
        let mut evidence = serde_json::Map::new();
        evidence.insert("score".into(), serde_json::json!({"total": 0.9}));
        Alert {
            ts: 1_700_000_000_000_000_000,
            detector: "beacon",
            severity: Severity::High,
            signature: "Periodic connections".into(),
            src_ip: Some("10.0.0.5".parse().unwrap()),
            src_port: None,
            dest_ip: Some("203.0.113.7".parse().unwrap()),
            dest_port: Some(443),
            proto: Some(6),
            name: Some("c2.example".into()),
            evidence,
            dedupe_key: "beacon|10.0.0.5|203.0.113.7|443".into(),
            update,
        }
    }

    #[test]
    fn labels_and_annotations() {
        let a = to_am_alert(&alert(false), "tap1");
        assert_eq!(a.labels["alertname"], ALERTNAME);
        assert_eq!(a.labels["detector"], "beacon");
        assert_eq!(a.labels["severity"], "high");
        assert_eq!(a.labels["sensor"], "tap1");
        assert_eq!(a.labels["src"], "10.0.0.5");
        assert_eq!(a.labels["dst"], "203.0.113.7");
        assert_eq!(a.labels["name"], "c2.example");
        assert_eq!(a.annotations["summary"], "Periodic connections");
        let ev: serde_json::Value = serde_json::from_str(&a.annotations["evidence"]).unwrap();
        assert_eq!(ev["score"]["total"], 0.9);
        assert!(a.new);
        assert!(!to_am_alert(&alert(true), "").labels.contains_key("sensor"));
    }

    #[test]
    fn endpoint_parsing() {
        let e = Endpoint::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 9093, "/api/v2/alerts")
        );
        let e = Endpoint::parse("http://am.local/prefix/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("am.local", 80, "/prefix/api/v2/alerts")
        );
        let e = Endpoint::parse("http://[::1]:9093").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9093));
        assert!(Endpoint::parse("https://x").unwrap_err().contains("relay"));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://x:notaport").is_err());
    }

    #[test]
    fn rfc3339_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    }

    /// A fake Alertmanager that records bodies; the first `fail` requests get HTTP 503.
    fn fake_am(fail: usize) -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let Ok(k) = s.read(&mut chunk) else {
                        break None;
                    };
                    if k == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if body.len() >= len {
                            break Some(body.to_string());
                        }
                    }
                };
                n += 1;
                if n <= fail {
                    let _ = s.write_all(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n");
                    continue;
                }
                if let Some(b) = body {
                    g.lock().unwrap().push(serde_json::from_str(&b).unwrap());
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        (url, got)
    }

    fn cfg(url: String) -> AlertmanagerConfig {
        AlertmanagerConfig {
            url,
            sensor: "t".into(),
            resolve_after_s: 0.6,
            send_interval_s: 0.1,
            ..Default::default()
        }
    }

    fn wait_for(mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn pushes_refreshes_and_resolves() {
        let (url, got) = fake_am(1);
        let m = Metrics::new();
        let c = AlertmanagerClient::start(&cfg(url), &m).unwrap().unwrap();
        let s = c.sender();
        s.send(&alert(false));
        s.send(&alert(true));
        // First POST fails (503), the retry delivers one alert (two updates coalesced),
        // then the resolution follows once it is quiet.
        wait_for(|| m.alertmanager_resolved.get() == 1);
        let bodies = got.lock().unwrap().clone();
        assert!(bodies.len() >= 2, "{bodies:?}");
        let first = &bodies[0].as_array().unwrap()[0];
        assert_eq!(bodies[0].as_array().unwrap().len(), 1, "{bodies:?}");
        assert_eq!(first["labels"]["detector"], "beacon");
        let last = &bodies[bodies.len() - 1].as_array().unwrap()[0];
        // Firing: endsAt ahead; resolution: endsAt now (already past).
        let now = rfc3339(wall_ns());
        assert!(first["endsAt"].as_str().unwrap() > first["startsAt"].as_str().unwrap());
        assert!(last["endsAt"].as_str().unwrap() <= now.as_str(), "{last}");
        assert_eq!(first["startsAt"], last["startsAt"]);
        assert_eq!(m.alertmanager_errors.get(), 1);
        assert_eq!(m.alertmanager_resolved.get(), 1);
        drop(c);
        assert_eq!(m.alertmanager_active.get(), 0);
    }

    #[test]
    fn full_channel_is_counted_not_blocking() {
        let m = Metrics::new();
        // Unreachable Alertmanager, channel of 1: the sink never waits.
        let mut c = cfg("http://127.0.0.1:1".into());
        c.queue_size = 1;
        c.send_interval_s = 5.0;
        let client = AlertmanagerClient::start(&c, &m).unwrap().unwrap();
        let s = client.sender();
        let t = Instant::now();
        for i in 0..1000 {
            let mut a = alert(false);
            a.name = Some(format!("n{i}"));
            s.send(&a);
        }
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(
            m.alertmanager_dropped
                .with_label_values(&["channel_full"])
                .get()
                > 0
        );
    }
}
