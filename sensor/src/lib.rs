//! Kizuki sensor: capture → dispatch → worker shards (decode, flows, DNS) → analyzers → sinks.
#![forbid(unsafe_code)]

pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod output;
pub mod pipeline;
pub mod privdrop;
pub mod proto;
pub mod timefmt;
