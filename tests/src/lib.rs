//! Shared code for Kizuki's end-to-end tests and its scenario-pcap generator.

pub mod appproto;
pub mod dnsmsg;
pub mod expect;
pub mod generate;
pub mod harness;
pub mod pcapw;
pub mod pkt;
pub mod scenario;
pub mod scenarios;
pub mod tcpconn;
