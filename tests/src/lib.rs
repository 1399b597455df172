//! Shared code for Kizuki's end-to-end tests and its scenario-pcap generator.

pub mod appproto;
pub mod beacon_corpus;
pub mod beacon_eval;
pub mod dnsmsg;
pub mod expect;
pub mod floods;
pub mod generate;
pub mod harness;
pub mod jcrat_scenarios;
pub mod pcapw;
pub mod pkt;
pub mod scenario;
pub mod scenarios;
pub mod schema;
pub mod tcpconn;
