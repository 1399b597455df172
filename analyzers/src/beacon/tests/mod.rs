//! Unit tests of the beacon analyzer on synthetic event streams.

mod calibrate;
mod detection;
mod gen;
mod streaming;
