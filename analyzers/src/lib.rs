//! Kizuki analyzers: pure functions of events and packet time. No I/O, no wall clock, no
//! threads — every analyzer is unit-testable on synthetic event streams.
#![forbid(unsafe_code)]

pub mod dnsnames;
pub mod event;

pub use event::*;

/// One analyzer: consumes events in (roughly) packet-time order and emits alerts.
pub trait Analyzer: Send {
    /// Stable id used in config sections and metrics.
    fn name(&self) -> &'static str;
    fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>);
    /// Called as packet time advances (at least once per second of packet time when events
    /// flow, and at shutdown with the final time).
    fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>);
    /// An analyst's view of the analyzer's state (top candidates...), for `kizuki report`.
    fn snapshot(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}
