//! The sink thread: writes EVE lines, counts events into metrics, keeps the DNS RTT
//! distribution (hdrhistogram) for the summary. Analyzers plug in here: they need the view
//! across all shards.

use super::merge::{Epoch, EpochMerger};
use super::SinkMsg;
use crate::config::Config;
use crate::output::alertmanager::AlertSender;
use crate::output::eve::{write_alert, write_dns, write_flow, write_smtp, EveWriter};
use crate::output::metrics::{proto_label, qtype_label, rcode_label, Metrics};
use analyzers::dnsnames::{rcode_name, rrtype_name};
use analyzers::{Alert, Analyzer, CloseReason, Event, TsNanos};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Distinct alerts kept for the end-of-run report.
pub const MAX_ALERT_LOG: usize = 10_000;

/// What the sink saw, for the end-of-run summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SinkReport {
    pub flows: u64,
    pub flows_by_proto: BTreeMap<String, u64>,
    pub flows_by_conn_state: BTreeMap<String, u64>,
    pub flow_updates: u64,
    pub flows_evicted: u64,
    pub tcp_payload_bytes: u64,
    pub tcp_missed_bytes: u64,
    pub dns_transactions: u64,
    pub dns_answered: u64,
    pub dns_unanswered: u64,
    pub dns_rcodes: BTreeMap<String, u64>,
    pub dns_rtt_ms_p50: Option<f64>,
    pub dns_rtt_ms_p90: Option<f64>,
    pub dns_rtt_ms_p99: Option<f64>,
    pub dns_rtt_ms_max: Option<f64>,
    pub alerts: u64,
    pub alert_updates: u64,
    pub alerts_by_detector: BTreeMap<String, u64>,
    /// Latest version of each alert (one per dedupe key, first [`MAX_ALERT_LOG`] keys), for
    /// `kizuki report`.
    #[serde(skip)]
    pub alert_log: Vec<serde_json::Value>,
    #[serde(skip)]
    alert_index: std::collections::HashMap<String, usize>,
    #[serde(skip)]
    keep_alert_log: bool,
    /// Each analyzer's final analyst view (`kizuki report`).
    pub analyzers: BTreeMap<String, serde_json::Value>,
    pub eve_events: u64,
    pub eve_write_errors: u64,
    pub eve_rotations: u64,
    pub eve_path: PathBuf,
}

/// What the sink thread owns.
pub(super) struct SinkSetup {
    pub rx: Receiver<SinkMsg>,
    /// Where spent event vectors go back to each worker (by source index).
    pub spare_events: Vec<crossbeam_channel::Sender<Vec<Event>>>,
    /// Event sources: the worker shards and the dispatcher.
    pub sources: usize,
    pub eve: EveWriter,
    pub metrics: Metrics,
    pub cfg: Config,
    pub live: bool,
    pub analyzers: Vec<Box<dyn Analyzer>>,
    pub am: Option<AlertSender>,
    /// Keep the latest version of each alert and the analyzers' final views for the report
    /// (`kizuki report`).
    pub keep_alert_log: bool,
}

/// What the sink hands the writer thread, in order: an epoch's EVE lines (in chunks of about
/// [`LINES_CHUNK`] bytes, so a huge epoch — every flow flushed at the end of a replay — never
/// sits in memory as text), then the epoch itself for the analyzers.
enum ToWriter {
    Lines(Buffers),
    Epoch(Epoch),
}

/// Serialised lines (each ends in `\n`) with each line's event time and end offset.
#[derive(Default)]
struct Buffers {
    lines: Vec<u8>,
    marks: Vec<(TsNanos, u32)>,
}

impl Buffers {
    fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}

/// Bytes of EVE text per chunk handed to the writer.
const LINES_CHUNK: usize = 1 << 20;

/// Messages in flight between the sink and the writer thread (back-pressure beyond that).
const EPOCHS_IN_FLIGHT: usize = 8;

/// The sink is two threads in a row so that serialising EVE and running the analyzers, the
/// two largest costs after decode, overlap: `sink` merges the shards' epochs, counts them
/// into metrics and serialises their EVE lines; `analyze` runs the analyzers over the same
/// epoch, then writes the epoch's lines followed by the alerts it raised. The file is written
/// by one thread in epoch order, so the output stays byte-identical from run to run.
pub(super) fn spawn(setup: SinkSetup) -> JoinHandle<SinkReport> {
    let SinkSetup {
        rx,
        spare_events,
        sources,
        eve,
        metrics,
        cfg,
        live,
        analyzers,
        am,
        keep_alert_log,
    } = setup;
    let esc = &cfg.detectors.escalation;
    for a in &analyzers {
        metrics.declare_detector(a.name());
        if esc.enabled && esc.raise.iter().any(|r| r == a.name()) {
            metrics.declare_escalation(a.name());
        }
    }
    let (epoch_tx, epoch_rx) = crossbeam_channel::bounded::<ToWriter>(EPOCHS_IN_FLIGHT);
    // Spent line buffers go back to the sink: a fresh multi-megabyte buffer per epoch costs
    // more in page faults (the allocator hands big blocks back to the kernel) than the
    // serialising itself.
    let (spent_tx, spent_rx) = crossbeam_channel::bounded::<Buffers>(EPOCHS_IN_FLIGHT + 2);
    let serialised_all = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(WriterSetup {
        rx: epoch_rx,
        serialised_all: serialised_all.clone(),
        spent: spent_tx,
        spare_events,
        eve,
        metrics: metrics.clone(),
        cfg: cfg.clone(),
        live,
        analyzers,
        am,
        keep_alert_log,
    });
    std::thread::Builder::new()
        .name("sink".into())
        .spawn(move || {
            let mut rep = SinkReport::default();
            // RTT in microseconds, 1 µs .. 1 h, 3 significant digits.
            let mut rtt = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds");
            let mut counters = EventCounters::new(&metrics);
            let mut merger = EpochMerger::new(sources);
            loop {
                let closed = match rx.recv() {
                    Ok(SinkMsg::Events { src, events }) => {
                        merger.events(src, events);
                        false
                    }
                    Ok(SinkMsg::Watermark { src, t }) => {
                        merger.watermark(src, t);
                        false
                    }
                    Ok(SinkMsg::Cut { src }) => {
                        merger.cut(src);
                        false
                    }
                    Ok(SinkMsg::Done { src }) => {
                        merger.done(src);
                        false
                    }
                    Err(_) => {
                        merger.finish_all();
                        true
                    }
                };
                let fresh = || {
                    let mut b = spent_rx.try_recv().unwrap_or_default();
                    b.lines.reserve(LINES_CHUNK + (LINES_CHUNK >> 3));
                    b
                };
                'epochs: while let Some(epoch) = merger.next() {
                    let mut out = fresh();
                    for ev in epoch.iter() {
                        if let Some(ts) = handle(
                            ev,
                            &cfg,
                            &mut counters,
                            &metrics,
                            &mut rep,
                            &mut rtt,
                            &mut out.lines,
                        ) {
                            out.lines.push(b'\n');
                            let end = u32::try_from(out.lines.len()).unwrap_or(u32::MAX);
                            out.marks.push((ts, end));
                            if out.lines.len() >= LINES_CHUNK {
                                let full = std::mem::replace(&mut out, fresh());
                                if epoch_tx.send(ToWriter::Lines(full)).is_err() {
                                    break 'epochs;
                                }
                            }
                        }
                    }
                    if !out.is_empty() && epoch_tx.send(ToWriter::Lines(out)).is_err() {
                        break;
                    }
                    if epoch_tx.send(ToWriter::Epoch(epoch)).is_err() {
                        break;
                    }
                }
                if closed {
                    break;
                }
            }
            // What is left for the analyze thread is all the work there is now.
            serialised_all.store(true, Ordering::Release);
            drop(epoch_tx);
            counters.fold_into(&mut rep);
            let w = writer.join().unwrap_or_default();
            rep.alerts = w.alerts;
            rep.alert_updates = w.alert_updates;
            rep.alerts_by_detector = w.alerts_by_detector;
            rep.alert_log = w.alert_log;
            rep.alert_index = w.alert_index;
            rep.analyzers = w.analyzers;
            rep.eve_events = w.eve_events;
            rep.eve_write_errors = w.eve_write_errors;
            rep.eve_rotations = w.eve_rotations;
            rep.eve_path = w.eve_path;
            if !rtt.is_empty() {
                let q = |p: f64| Some(rtt.value_at_quantile(p) as f64 / 1000.0);
                rep.dns_rtt_ms_p50 = q(0.5);
                rep.dns_rtt_ms_p90 = q(0.9);
                rep.dns_rtt_ms_p99 = q(0.99);
                rep.dns_rtt_ms_max = Some(rtt.max() as f64 / 1000.0);
            }
            rep
        })
        .expect("spawn sink thread")
}

/// What the writer thread owns.
struct WriterSetup {
    rx: Receiver<ToWriter>,
    /// Set once the sink has serialised and handed over its last epoch.
    serialised_all: Arc<AtomicBool>,
    spent: crossbeam_channel::Sender<Buffers>,
    spare_events: Vec<crossbeam_channel::Sender<Vec<Event>>>,
    eve: EveWriter,
    metrics: Metrics,
    cfg: Config,
    live: bool,
    analyzers: Vec<Box<dyn Analyzer>>,
    am: Option<AlertSender>,
    keep_alert_log: bool,
}

/// The second sink stage: analyzers, alerts, the EVE file, analyzer state.
fn spawn_writer(setup: WriterSetup) -> JoinHandle<SinkReport> {
    let WriterSetup {
        rx,
        serialised_all,
        spent,
        spare_events,
        mut eve,
        metrics,
        cfg,
        live,
        mut analyzers,
        am,
        keep_alert_log,
    } = setup;
    std::thread::Builder::new()
        .name("analyze".into())
        .spawn(move || {
            let mut rep = SinkReport {
                keep_alert_log,
                eve_path: eve.path().to_path_buf(),
                ..Default::default()
            };
            // State kept across restarts (alert cooldowns, inventory): loaded before the
            // first event, saved periodically and at exit.
            let state_file = eve
                .path()
                .parent()
                .and_then(|d| super::state::path(&cfg.output.state_file, d));
            if let Some(p) = &state_file {
                super::state::load(p, &mut analyzers);
            }
            let state_every = Duration::from_secs_f64(cfg.output.state_save_interval_s);
            let mut last_state_save = Instant::now();
            let mut last_flush = Instant::now();
            let mut out = AnalyzeOut {
                line: Vec::with_capacity(1024),
                ..Default::default()
            };
            let mut alerts = Vec::new();
            let mut escalation = crate::detect::escalation(&cfg);
            let mut now = i64::MIN;
            let mut last_views = Instant::now();
            // Which thread runs which analyzer over each epoch.
            let group_of = super::analyze::groups(&analyzers, cfg.pipeline.analyze_threads);
            // Once the sink is done, the epochs still queued here (the analyzers lag the
            // sink by up to EPOCHS_IN_FLIGHT) and the final flush run with the cores the
            // workers and the sink no longer use; the output does not depend on the split.
            let tail_group_of =
                super::analyze::groups(&analyzers, super::analyze::tail_threads(&cfg.pipeline));
            // SIGHUP: an external rotator moved the file; reopen it.
            let hup = Arc::new(AtomicBool::new(false));
            let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone());
            loop {
                if hup.swap(false, Ordering::Relaxed) {
                    eve.reopen();
                }
                let closed = match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(ToWriter::Lines(mut b)) => {
                        eve.write_serialised_lines(&b.lines, &b.marks);
                        b.lines.clear();
                        b.marks.clear();
                        // A full return channel just drops the buffers.
                        let _ = spent.try_send(b);
                        false
                    }
                    Ok(ToWriter::Epoch(events)) => {
                        let watermark = events.watermark;
                        if let Some(t) = watermark {
                            now = now.max(t);
                        }
                        let groups = if serialised_all.load(Ordering::Acquire) {
                            &tail_group_of
                        } else {
                            &group_of
                        };
                        super::analyze::run_epoch(
                            &mut analyzers,
                            groups,
                            &events,
                            watermark.map(|_| now),
                            &mut alerts,
                        );
                        if watermark.is_some() && last_views.elapsed() >= VIEWS_EVERY {
                            publish_views(&analyzers, &metrics);
                            last_views = Instant::now();
                        }
                        recycle(events, &spare_events);
                        false
                    }
                    Err(RecvTimeoutError::Timeout) => false,
                    Err(RecvTimeoutError::Disconnected) => true,
                };
                out.records(&mut analyzers, &mut eve, &metrics);
                if let Some(e) = escalation.as_mut() {
                    e.apply(&mut alerts);
                }
                out.alerts(&mut alerts, &mut eve, &metrics, &mut rep, am.as_ref());
                if live && last_flush.elapsed() >= Duration::from_millis(500) {
                    eve.flush();
                    last_flush = Instant::now();
                }
                if let Some(p) = &state_file {
                    if !state_every.is_zero() && last_state_save.elapsed() >= state_every {
                        save_state(p, &analyzers, now);
                        last_state_save = Instant::now();
                    }
                }
                if closed {
                    break;
                }
            }
            // Final evaluation at the last packet time, then the analysts' views.
            if now > i64::MIN {
                super::analyze::run_final_tick(&mut analyzers, &tail_group_of, now, &mut alerts);
            }
            out.records(&mut analyzers, &mut eve, &metrics);
            if let Some(e) = escalation.as_mut() {
                e.apply(&mut alerts);
            }
            // The state file (megabytes for a large inventory, then an fsync) is written
            // while the last alerts go to the EVE file: the two share nothing.
            std::thread::scope(|s| {
                let saving = state_file.as_ref().map(|p| {
                    let a = &mut analyzers;
                    s.spawn(move || save_state(p, a, now))
                });
                out.alerts(&mut alerts, &mut eve, &metrics, &mut rep, am.as_ref());
                eve.flush();
                if let Some(Err(e)) = saving.map(|h| h.join()) {
                    std::panic::resume_unwind(e);
                }
            });
            publish_views(&analyzers, &metrics);
            // Only `kizuki report` reads the analysts' views.
            for a in analyzers.iter().filter(|_| rep.keep_alert_log) {
                let snap = a.snapshot();
                if !snap.is_null() {
                    rep.analyzers.insert(a.name().to_string(), snap);
                }
            }
            // Freeing the analyzers' tables (a million nodes and more) is not on the way
            // to the summary; a replay's process may exit before it is done.
            let _ = std::thread::Builder::new()
                .name("analyze-free".into())
                .spawn(move || drop(analyzers));
            rep.eve_events = eve.lines;
            rep.eve_write_errors = eve.write_errors();
            rep.eve_rotations = eve.rotations();
            rep
        })
        .expect("spawn analyze thread")
}

/// `kizuki_events_total{type}` children resolved once: a label lookup per event costs a
/// hash of the label values.
/// The same for `kizuki_flows_total{proto}` and `kizuki_dns_queries_total{qtype,rcode}`
/// (both label sets are small fixed vocabularies, so the cache is bounded).
struct EventCounters {
    flow: prometheus::IntCounter,
    dns: prometheus::IntCounter,
    smtp: prometheus::IntCounter,
    flows_by_proto: Children<&'static str>,
    /// `kizuki_dns_queries_total` children by (qtype, rcode) number: naming both per
    /// record cost more than the count. At most [`MAX_CODE_PAIRS`] pairs are kept.
    dns_queries: Children<(u16, u16)>,
    /// The summary's per-protocol, per-state and per-rcode counts, by their static names
    /// (or number), folded into the report's string-keyed maps at the end.
    tally_proto: Tally<&'static str>,
    tally_state: Tally<&'static str>,
    tally_rcode: Tally<u16>,
}

/// (qtype, rcode) pairs whose counter is kept; hostile traffic can make many more.
const MAX_CODE_PAIRS: usize = 4096;

type Tally<K> = std::collections::HashMap<K, u64, foldhash::fast::RandomState>;

/// Counter children by label values, on foldhash: SipHash of the labels cost about what
/// the `with_label_values` lookup it replaces did.
type Children<K> =
    std::collections::HashMap<K, prometheus::IntCounter, foldhash::fast::RandomState>;

impl EventCounters {
    fn new(m: &Metrics) -> Self {
        Self {
            flow: m.events.with_label_values(&["flow"]),
            dns: m.events.with_label_values(&["dns"]),
            smtp: m.events.with_label_values(&["smtp"]),
            flows_by_proto: Default::default(),
            dns_queries: Default::default(),
            tally_proto: Default::default(),
            tally_state: Default::default(),
            tally_rcode: Default::default(),
        }
    }

    /// Adds the tallies to the report's maps.
    fn fold_into(&self, rep: &mut SinkReport) {
        for (k, n) in &self.tally_proto {
            *rep.flows_by_proto.entry((*k).to_string()).or_default() += n;
        }
        for (k, n) in &self.tally_state {
            *rep.flows_by_conn_state.entry((*k).to_string()).or_default() += n;
        }
        for (rc, n) in &self.tally_rcode {
            *rep.dns_rcodes
                .entry(rcode_name(*rc).into_owned())
                .or_default() += n;
        }
    }

    fn flow_proto(&mut self, m: &Metrics, proto: &'static str) -> &prometheus::IntCounter {
        child(&mut self.flows_by_proto, &m.flows, proto, &[proto])
    }

    /// Counts a DNS query of type `qtype` answered with `rcode`.
    fn dns_query(&mut self, m: &Metrics, qtype: u16, rcode: u16) {
        *self.tally_rcode.entry(rcode).or_default() += 1;
        if let Some(c) = self.dns_queries.get(&(qtype, rcode)) {
            c.inc();
            return;
        }
        let labels = [
            qtype_label(&rrtype_name(qtype)),
            rcode_label(&rcode_name(rcode)),
        ];
        let c = m.dns_queries.with_label_values(&labels);
        c.inc();
        if self.dns_queries.len() < MAX_CODE_PAIRS {
            self.dns_queries.insert((qtype, rcode), c);
        }
    }
}

/// The counter of `vec` for `labels`, resolved once and kept in `cache` under `key`.
fn child<'a, K: std::hash::Hash + Eq>(
    cache: &'a mut Children<K>,
    vec: &prometheus::IntCounterVec,
    key: K,
    labels: &[&str],
) -> &'a prometheus::IntCounter {
    cache
        .entry(key)
        .or_insert_with(|| vec.with_label_values(labels))
}

/// The analyze thread's per-record counters, resolved on first use and kept (as
/// [`EventCounters`] does for the sink): `kizuki_events_total{type}` of records and alerts,
/// `kizuki_alerts_total{detector,severity}`. Lazily, so a label set appears in `/metrics`
/// only once it has counted something, as before.
/// What the analyze thread keeps between epochs to write its own lines: the counters, the
/// line buffer, and the record buffer the analyzers' own buffers trade places with.
#[derive(Default)]
struct AnalyzeOut {
    counters: OutCounters,
    line: Vec<u8>,
    records: Vec<analyzers::Record>,
}

#[derive(Default)]
struct OutCounters {
    events: Children<&'static str>,
    alerts: Children<(&'static str, &'static str)>,
}

impl OutCounters {
    fn event(&mut self, m: &Metrics, event_type: &'static str) -> &prometheus::IntCounter {
        child(&mut self.events, &m.events, event_type, &[event_type])
    }

    fn alert(
        &mut self,
        m: &Metrics,
        detector: &'static str,
        severity: &'static str,
    ) -> &prometheus::IntCounter {
        child(
            &mut self.alerts,
            &m.alerts,
            (detector, severity),
            &[detector, severity],
        )
    }
}

/// Vectors with room for more events than this are freed rather than kept: a packet batch
/// makes tens of records, and the flush chunks of 1024 flows (end of a replay, a mass
/// expiry) must not stay pinned in the pools afterwards. Each worker's return channel and
/// stash then hold at most (256 + 64) × 256 × 216 B ≈ 18 MB.
const MAX_SPARE_EVENTS: usize = 256;

/// A vector with at most this many events goes back with them, for its worker to drop;
/// a larger one is emptied here.
const RETURN_WITH_EVENTS: usize = 64;

/// Hands an epoch's batches, events and all, back to the workers that filled them, which
/// empty them for reuse. Batches of the dispatcher (tunnel flows), oversized ones and those
/// meeting a full return channel are dropped here.
fn recycle(epoch: Epoch, spare: &[crossbeam_channel::Sender<Vec<Event>>]) {
    for (src, mut part) in epoch.into_parts() {
        if part.capacity() > MAX_SPARE_EVENTS {
            continue;
        }
        // Only small batches travel with their events, so the return channels pin little.
        if part.len() > RETURN_WITH_EVENTS {
            part.clear();
        }
        if let Some(tx) = spare.get(src) {
            let _ = tx.try_send(part);
        }
    }
}

fn save_state(path: &std::path::Path, analyzers: &[Box<dyn Analyzer>], now: i64) {
    if let Err(e) = super::state::save(path, analyzers, now) {
        eprintln!("kizuki: warning: state file not saved: {e}");
    }
}

/// How often (wall clock) analyzer gauges and the inventory view are refreshed.
const VIEWS_EVERY: Duration = Duration::from_secs(2);

/// Analyzer gauges into Prometheus, the inventory snapshot into the `/inventory` view.
fn publish_views(analyzers: &[Box<dyn Analyzer>], metrics: &Metrics) {
    let mut readings = Vec::new();
    for a in analyzers {
        a.gauges(&mut readings);
        if a.name() == "inventory" && metrics.inventory_view_wanted.load(Ordering::Relaxed) {
            if let Ok(mut v) = metrics.inventory_view.lock() {
                *v = a.snapshot();
            }
        }
    }
    metrics.set_analyzer_gauges(&readings);
}

impl AnalyzeOut {
    /// Writes the analyzers' non-alert records (inventory changes) in analyzer order, after the
    /// epoch's events and before its alerts: same points in the stream every run, so the output
    /// stays deterministic.
    fn records(&mut self, analyzers: &mut [Box<dyn Analyzer>], eve: &mut EveWriter, m: &Metrics) {
        self.records.clear();
        for a in analyzers.iter_mut() {
            a.drain_records(&mut self.records);
        }
        for r in self.records.iter() {
            self.line.clear();
            match r {
                analyzers::Record::Inventory(c) => {
                    crate::output::eve::write_inventory(&mut self.line, c)
                }
            }
            eve.write_event(&mut self.line, r.ts());
            self.counters.event(m, r.event_type()).inc();
        }
    }

    /// Writes the epoch's alerts after its records, counts them, hands them to the
    /// Alertmanager client and, for `kizuki report`, keeps the latest of each.
    fn alerts(
        &mut self,
        alerts: &mut Vec<Alert>,
        eve: &mut EveWriter,
        m: &Metrics,
        rep: &mut SinkReport,
        am: Option<&AlertSender>,
    ) {
        let AnalyzeOut {
            counters: c, line, ..
        } = self;
        for a in alerts.drain(..) {
            if let Some(am) = am {
                // Never blocks: a full channel is a counted drop.
                am.send(&a);
            }
            // Escalation re-raises as updates mostly: counted on their own, so a rule on
            // high-severity detections still sees them.
            if a.evidence.contains_key("escalated_by") {
                m.alert_escalations.with_label_values(&[a.detector]).inc();
            }
            if a.update {
                rep.alert_updates += 1;
            } else {
                rep.alerts += 1;
                *rep.alerts_by_detector
                    .entry(a.detector.to_string())
                    .or_default() += 1;
                c.alert(m, a.detector, a.severity.as_str()).inc();
                if a.detector == "mail_attachment" {
                    count_mail_reasons(m, &a);
                }
            }
            line.clear();
            write_alert(line, &a);
            eve.write_event(line, a.ts);
            // Only `kizuki report` reads the alert log: a sensor does not pay for it.
            if !rep.keep_alert_log {
                c.event(m, "alert").inc();
                continue;
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                match rep.alert_index.get(&a.dedupe_key) {
                    Some(&i) => rep.alert_log[i] = v,
                    None if rep.alert_log.len() < MAX_ALERT_LOG => {
                        rep.alert_index
                            .insert(a.dedupe_key.clone(), rep.alert_log.len());
                        rep.alert_log.push(v);
                    }
                    None => {}
                }
            }
            c.event(m, "alert").inc();
        }
    }
}

/// `kizuki_mail_attachment_alerts_total{reason}` from the alert's evidence.
fn count_mail_reasons(m: &Metrics, a: &Alert) {
    if let Some(rs) = a.evidence.get("reasons").and_then(|v| v.as_array()) {
        for r in rs.iter().filter_map(|r| r.as_str()) {
            if let Ok(c) = m.mail_attachment_alerts.get_metric_with_label_values(&[r]) {
                c.inc();
            }
        }
    }
}

/// Counts one event into the metrics and the report and appends its EVE line (no newline)
/// to `out`; returns the line's event time when it wrote one.
fn handle(
    ev: &Event,
    cfg: &Config,
    c: &mut EventCounters,
    m: &Metrics,
    rep: &mut SinkReport,
    rtt: &mut hdrhistogram::Histogram<u64>,
    out: &mut Vec<u8>,
) -> Option<TsNanos> {
    match ev {
        Event::Flow(f) => {
            if f.reason == CloseReason::Update {
                rep.flow_updates += 1;
            } else {
                rep.flows += 1;
                let p = proto_label(f.proto);
                *c.tally_proto.entry(p).or_default() += 1;
                *c.tally_state.entry(f.conn_state.as_str()).or_default() += 1;
                c.flow_proto(m, p).inc();
                if f.proto == 6 {
                    m.tcp_payload_bytes
                        .inc_by(f.payload_toserver + f.payload_toclient);
                    m.tcp_missed_bytes.inc_by(f.missed_bytes);
                    rep.tcp_payload_bytes += f.payload_toserver + f.payload_toclient;
                    rep.tcp_missed_bytes += f.missed_bytes;
                }
                if f.reason == CloseReason::Evicted {
                    rep.flows_evicted += 1;
                    m.flow_evictions.inc();
                }
            }
            if cfg.output.flow {
                write_flow(out, f);
                c.flow.inc();
                return Some(f.last_ts);
            }
            None
        }
        // Bursts feed the analyzers only; they are not EVE records.
        Event::Burst(_) => None,
        Event::Mail(mm) => {
            if cfg.smtp.log {
                write_smtp(out, mm);
                c.smtp.inc();
                return Some(mm.ts);
            }
            None
        }
        Event::Dns(d) => {
            rep.dns_transactions += 1;
            match d.rcode {
                Some(rc) => {
                    rep.dns_answered += 1;
                    c.dns_query(m, d.qtype, rc);
                }
                None => {
                    rep.dns_unanswered += 1;
                    m.dns_unanswered.inc();
                }
            }
            if let Some(ns) = d.rtt_ns {
                m.dns_response_seconds.observe(ns as f64 / 1e9);
                let _ = rtt.record((ns / 1_000).clamp(1, 3_600_000_000) as u64);
            }
            if cfg.output.dns {
                write_dns(out, d);
                c.dns.inc();
                return Some(d.ts);
            }
            None
        }
    }
}
