//! The pipeline: one capture/dispatch thread, N worker shards, one sink thread.
//!
//! ```text
//! source ──► dispatch ──(bounded batches)──► worker × N ──(events)──► sink (EVE, metrics)
//! ```
//! Dispatch hashes the (VLAN, IP pair) of each packet symmetrically, so both directions of a
//! connection, its fragments and its DNS transactions land on one shard. Replay applies
//! back-pressure (never drops); live capture drops whole batches when a worker's queue is
//! full and counts them (`kizuki_capture_drops_total{stage="queue"}`).

mod analyze;
mod dispatch;
mod merge;
mod ports;
mod sink;
pub mod state;
mod worker;

pub use dispatch::shard_of;
pub use sink::SinkReport;

use crate::capture::{PacketSource, Poll};
use crate::config::{secs_to_ns, Config};
use crate::decode::Detached;
use crate::flow::table::FlowLimits;
use crate::output::alertmanager::AlertSender;
use crate::output::eve::EveWriter;
use crate::output::metrics::Metrics;
use analyzers::{Event, TsNanos};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How packets are paced and what happens when workers fall behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Files as fast as possible; back-pressure, never drop.
    ReplayMax,
    /// Files at the capture's own pace; back-pressure.
    ReplayRealtime,
    /// Live interface; drops (counted) when workers fall behind.
    Live,
}

/// One decoded packet inside a batch. Headers travel decoded (the worker does not parse
/// the frame again); only the payload bytes a worker will read are copied, into
/// `data[off..off + len]` of the batch.
#[derive(Clone, Copy, Debug)]
struct WorkItem {
    ts: TsNanos,
    off: u32,
    len: u32,
    /// Headers, payload detached (fragments arrive reassembled: the dispatcher does that).
    packet: Detached,
}

/// Work for one worker, in allocations that are recycled.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<WorkItem>,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }
}

enum WorkerMsg {
    Packets(Batch),
    /// Packet time advanced to this instant (expire flows, DNS, fragments).
    Tick(TsNanos),
}

enum SinkMsg {
    /// Records from source `src` (a worker shard, or the dispatcher's tunnel table).
    Events { src: usize, events: Vec<Event> },
    /// Source `src` has sent everything up to packet time `t`.
    Watermark { src: usize, t: TsNanos },
    /// Source `src` cut an epoch without a tick: its final flush goes out in pieces, so a
    /// million open flows never wait in the sink all at once.
    Cut { src: usize },
    /// Source `src` is finished.
    Done { src: usize },
}

/// Per-shard share of the configured totals.
fn per_shard(total: usize, shards: usize) -> usize {
    total.div_ceil(shards.max(1)).max(1)
}

pub fn flow_limits(cfg: &Config, shards: usize) -> FlowLimits {
    FlowLimits {
        max_flows: per_shard(cfg.flow.max_flows, shards),
        tcp_timeout: secs_to_ns(cfg.flow.tcp_timeout_s),
        udp_timeout: secs_to_ns(cfg.flow.udp_timeout_s),
        dns_timeout: secs_to_ns(cfg.flow.dns_timeout_s),
        icmp_timeout: secs_to_ns(cfg.flow.icmp_timeout_s),
        other_timeout: secs_to_ns(cfg.flow.other_timeout_s),
        tcp_linger: secs_to_ns(cfg.flow.tcp_close_linger_s),
        update_interval: secs_to_ns(cfg.flow.update_interval_s),
        burst_gap: secs_to_ns(cfg.flow.burst_gap_s),
    }
}

/// What a finished run reports.
pub struct RunReport {
    pub sink: SinkReport,
    pub packets: u64,
    pub first_ts: Option<TsNanos>,
    pub last_ts: Option<TsNanos>,
    pub source_errors: Vec<String>,
    pub interrupted: bool,
    pub wall: Duration,
}

/// Where a run's records go and how it is stopped.
/// Spent event vectors on their way back to each worker: an epoch returns a few hundred
/// batches at once, and a batch that finds the channel full is freed by the analyze thread.
const SPARE_EVENT_VECS: usize = 256;

pub struct Outputs {
    pub metrics: Metrics,
    pub eve: EveWriter,
    /// Alertmanager push, if configured.
    pub alerts: Option<AlertSender>,
    /// Set by SIGINT/SIGTERM.
    pub stop: Arc<AtomicBool>,
    /// Keep each alert's latest version for the end-of-run report.
    pub keep_alert_log: bool,
}

/// Runs the whole pipeline over `source` until it ends or `stop` is set.
pub fn run(
    source: &mut dyn PacketSource,
    cfg: &Config,
    mode: Mode,
    workers: usize,
    out: Outputs,
) -> RunReport {
    let Outputs {
        metrics,
        eve,
        alerts,
        stop,
        keep_alert_log,
    } = out;
    let metrics = &metrics;
    let started = Instant::now();
    let workers = workers.max(1);
    let (ev_tx, ev_rx) = crossbeam_channel::bounded::<SinkMsg>(64);
    // Spent event vectors flow back from the analyze thread to the worker that filled them:
    // allocating each batch afresh cost the workers more in page faults than building the
    // records, and the worker empties them itself, so its records are freed by the thread
    // that allocated them (the allocator's cheap path; a free from another thread costs
    // several times more).
    let (spare_tx, spare_rx): (Vec<_>, Vec<_>) = (0..workers)
        .map(|_| crossbeam_channel::bounded::<Vec<analyzers::Event>>(SPARE_EVENT_VECS))
        .unzip();
    let sink = sink::spawn(sink::SinkSetup {
        rx: ev_rx,
        spare_events: spare_tx,
        sources: workers + 1,
        eve,
        metrics: metrics.clone(),
        cfg: cfg.clone(),
        live: mode == Mode::Live,
        analyzers: crate::detect::build(cfg),
        am: alerts,
        keep_alert_log,
    });

    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded::<Batch>(workers * 4 + 8);
    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for shard in 0..workers {
        let (tx, rx) = crossbeam_channel::bounded::<WorkerMsg>(cfg.pipeline.queue_batches);
        senders.push(tx);
        let mut w = worker::Worker::new(cfg, shard, workers, metrics.clone());
        w.spare_events = spare_rx.get(shard).cloned();
        let (etx, rtx) = (ev_tx.clone(), recycle_tx.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{shard}"))
                .spawn(move || w.run(rx, etx, rtx))
                .expect("spawn worker thread"),
        );
    }
    drop(recycle_tx);

    let mut d = dispatch::Dispatcher::new(cfg, mode, senders, recycle_rx, ev_tx, metrics.clone());
    let mut interrupted = false;
    let pace = PaceClock::default();
    let mut pace = if mode == Mode::ReplayRealtime {
        Some(pace)
    } else {
        None
    };
    let mut idle_since: Option<Instant> = None;
    let mut last_stats = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let r = source.poll(&mut |p| {
            if let Some(pc) = pace.as_mut() {
                pc.wait_for(p.ts);
            }
            d.packet(p);
        });
        match r {
            Poll::Packet => idle_since = None,
            Poll::End => break,
            Poll::Idle => {
                // A quiet live link: advance packet time with the wall clock so timeouts
                // still fire, and hand partial batches to the workers.
                let now = Instant::now();
                let since = *idle_since.get_or_insert(now);
                d.idle(now.duration_since(since));
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if mode == Mode::Live && last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            if let Some(s) = source.stats() {
                d.capture_stats(s);
            }
            d.update_lag();
        }
    }
    if let Some(s) = source.stats() {
        d.capture_stats(s);
    }
    let (packets, first_ts, last_ts) = d.finish();
    for h in handles {
        let _ = h.join();
    }
    let sink = sink.join().unwrap_or_default();
    RunReport {
        sink,
        packets,
        first_ts,
        last_ts,
        source_errors: source.take_errors(),
        interrupted,
        wall: started.elapsed(),
    }
}

/// `--speed 1x`: sleeps so packets are handed on at the capture's own pace.
#[derive(Default)]
struct PaceClock {
    origin: Option<(TsNanos, Instant)>,
}

impl PaceClock {
    fn wait_for(&mut self, ts: TsNanos) {
        let (t0, w0) = *self.origin.get_or_insert((ts, Instant::now()));
        let due = Duration::from_nanos(ts.saturating_sub(t0).max(0) as u64);
        let elapsed = w0.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}
