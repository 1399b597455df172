//! Kizuki analyzers: pure functions of events and packet time. No I/O, no wall clock, no
//! threads — every analyzer is unit-testable on synthetic event streams.
#![forbid(unsafe_code)]

pub mod beacon;
pub mod detectors;
pub mod dnsnames;
pub mod event;
pub mod inventory;
pub(crate) mod lru;
pub mod net;
pub mod volume;

pub use event::*;

/// A non-alert EVE record an analyzer produces (the sink writes each type with its own
/// serialiser, after the epoch's events and before its alerts).
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// `event_type:"inventory"`: the passive inventory changed.
    Inventory(inventory::InventoryChange),
}

impl Record {
    /// Packet time of the record (its EVE `timestamp`).
    pub fn ts(&self) -> TsNanos {
        match self {
            Record::Inventory(c) => c.ts,
        }
    }
    /// Its EVE `event_type`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Record::Inventory(_) => "inventory",
        }
    }
}

/// One analyzer: consumes events in (roughly) packet-time order and emits alerts.
pub trait Analyzer: Send {
    /// Stable id used in config sections and metrics.
    fn name(&self) -> &'static str;
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>);
    /// Called as packet time advances (at least once per second of packet time when events
    /// flow, and at shutdown with the final time).
    fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>);
    /// Moves the non-alert records produced since the last call (in production order) to
    /// `out`. The sink calls it after every batch of `on_event`/`on_tick`, so what an analyzer
    /// buffers in between is one epoch's worth; it must still bound its buffer.
    fn drain_records(&mut self, _out: &mut Vec<Record>) {}
    /// An analyst's view of the analyzer's state (top candidates...), for `kizuki report`.
    fn snapshot(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Gauge readings for Prometheus (names from [`GAUGES`], label sets capped by the
    /// analyzer).
    fn gauges(&self, _out: &mut Vec<GaugeReading>) {}
    /// State worth keeping across a restart (alert cooldowns, alerted keys, inventory), as
    /// JSON with packet times in ns. Must be bounded. `Null` = nothing to keep.
    fn save_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// [`Analyzer::save_state`] as JSON text appended to `out`, for the state file; `false`
    /// (nothing to keep, or it could not be serialised) leaves no entry. An analyzer with a
    /// large state overrides it to serialise straight from its tables, without a `Value`
    /// tree; the text must be what `save_state` gives (objects' keys in sorted order).
    fn write_state(&self, out: &mut Vec<u8>) -> bool {
        let v = self.save_state();
        !v.is_null() && serde_json::to_writer(out, &v).is_ok()
    }
    /// Restores what [`Analyzer::save_state`] wrote, before the first event. Must accept any
    /// JSON (a corrupt or older file): whatever does not parse is skipped.
    fn load_state(&mut self, _state: &serde_json::Value) {}
}

/// A gauge value an analyzer exports.
#[derive(Clone, Debug, PartialEq)]
pub struct GaugeReading {
    pub metric: &'static str,
    pub labels: Vec<String>,
    pub value: f64,
}

/// Every gauge analyzers may export: (name, help, label names). The sensor registers these;
/// labelled ones carry at most [`TOP_K`] series (IPs and names only in capped top-K sets).
pub const GAUGES: &[(&str, &str, &[&str])] = &[
    (
        "kizuki_dns_coverage_ratio",
        "Share of outbound flows whose destination was resolved by a DNS answer the sensor saw.",
        &[],
    ),
    (
        "kizuki_inventory_hosts",
        "Internal hosts in the passive inventory, by inferred role (all = every host).",
        &["role"],
    ),
    (
        "kizuki_top_talker_bytes",
        "Outbound bytes in the last complete volume bucket of the top talkers (top-K, capped).",
        &["host"],
    ),
    (
        "kizuki_beacon_candidates",
        "Keys the beacon analyzer is tracking.",
        &[],
    ),
    (
        "kizuki_beacon_top_score",
        "Scores of the highest-scoring beacon candidates (top-K, capped).",
        &["src", "dest", "name"],
    ),
];

/// Cap on the series of any labelled analyzer gauge.
pub const TOP_K: usize = 10;
