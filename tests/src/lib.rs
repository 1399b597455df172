//! Shared code for Kizuki's end-to-end tests and its scenario-pcap generator.

pub mod harness;
