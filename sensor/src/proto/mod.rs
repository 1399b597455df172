//! Application-layer parsers: one module per protocol, parse / state / output kept apart.

pub mod dns;
pub mod http;
pub mod smtp;
pub mod tls;
