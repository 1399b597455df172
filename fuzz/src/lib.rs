//! Shared fuzz entry points. `entry.rs` is also compiled into
//! `tests/tests/fuzz_regressions.rs`, so crash inputs replay through exactly the same code.

pub mod entry;
