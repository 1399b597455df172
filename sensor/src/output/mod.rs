//! Sinks: EVE JSON lines, the Prometheus registry and its HTTP endpoint, the run summary.

pub mod alertmanager;
pub mod eve;
pub mod http;
pub mod jsonw;
pub mod metrics;
pub mod report;
pub mod rotate;
pub mod summary;
