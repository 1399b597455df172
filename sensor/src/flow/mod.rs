//! Bidirectional flow tracking.

pub mod community_id;
pub mod conn_state;
pub mod key;
pub mod table;
