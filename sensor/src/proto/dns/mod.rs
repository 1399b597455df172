//! DNS over UDP and TCP (port 53 by default): `parser` turns bytes into a message,
//! `tcp` splits length-prefixed streams into messages, `transactions` matches queries with
//! responses; `wire` reads the common simple messages directly (hickory for the rest).

pub mod parser;
pub mod tcp;
pub mod transactions;
mod wire;

pub use parser::{parse_message, DnsMessage};
pub use tcp::TcpDnsState;
pub use transactions::{DnsEndpoints, DnsTracker};
